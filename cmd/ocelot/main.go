// Command ocelot runs Llama-family GGUF models: it describes model files,
// generates synthetic models, tokenizes text, runs and evaluates models,
// benchmarks them, lists devices and checks every backend against the
// reference engine, on the CPU and on OpenCL devices.
//
// Usage:
//
//	ocelot <command> [flags]
//
// Run "ocelot help" for the list of commands.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// command is one subcommand of the CLI. Each lives in its own file and
// registers itself in init.
type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

var commands = map[string]*command{}

func register(c *command) { commands[c.name] = c }

// usageError marks an error caused by the command line rather than by the
// work; main prints the command's usage after it.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// errInterrupted ends a command that Ctrl-C stopped, after it printed
// what it had; the process exits with 130, as shells expect.
var errInterrupted = errors.New("interrupted")

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

func main() {
	os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr))
}

// runMain runs the CLI and returns the process exit code: 0 on success,
// 1 when the work failed, 2 for a bad command line.
func runMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		printHelp(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "ocelot: unknown command %q\n", args[0])
		printHelp(stderr)
		return 2
	}
	err := c.run(args[1:], stdout, stderr)
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if errors.Is(err, errInterrupted) {
		fmt.Fprintf(stderr, "ocelot %s: interrupted\n", c.name)
		return 130
	}
	// The library's errors say "ocelot: ..." already.
	fmt.Fprintf(stderr, "ocelot %s: %s\n", c.name, strings.TrimPrefix(err.Error(), "ocelot: "))
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "run 'ocelot %s -h' for usage\n", c.name)
		return 2
	}
	return 1
}

func printHelp(w io.Writer) {
	fmt.Fprintln(w, "usage: ocelot <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, commands[n].summary)
	}
}

// newFlagSet returns a flag set for a subcommand whose parse errors come
// back as errors (printed once, by runMain) instead of exiting.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("ocelot "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args, turning a flag error into a usage error and
// rejecting stray positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := parseFlagsAllowArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// parseFlagsAllowArgs parses flags as parseFlags does but leaves the
// positional arguments (fs.Args) to the caller.
func parseFlagsAllowArgs(fs *flag.FlagSet, args []string) error {
	// Parse would print the usage itself on -h (and commands print theirs
	// to stderr directly): it is printed once, below.
	out, usage := fs.Output(), fs.Usage
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.SetOutput(out)
	fs.Usage = usage
	if errors.Is(err, flag.ErrHelp) {
		fs.Usage()
		return flag.ErrHelp
	}
	if err != nil {
		return usagef("%v", err)
	}
	return nil
}
