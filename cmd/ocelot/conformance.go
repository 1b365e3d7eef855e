package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/ocelot-llm/ocelot/conformance"
	"github.com/ocelot-llm/ocelot/gguf"
)

func init() {
	register(&command{name: "conformance", summary: "compare every backend with the reference engine, op by op and end to end", run: runConformance})
}

func runConformance(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("conformance", stderr)
	var models multiFlag
	fs.Var(&models, "m", "model to run end to end (repeatable; default: generated tiny and small presets)")
	backend := fs.String("backend", "all", "cpu, opencl, or all")
	device := fs.Int("device", -1, "accelerator device index (default: the first GPU)")
	quick := fs.Bool("quick", false, "run a smaller set of cases")
	out := fs.String("o", "table", "output: table or json")
	threads := fs.Int("t", runtime.NumCPU(), "CPU threads")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ocelot conformance [-m M.gguf] [--backend cpu|opencl|all] [--device N] [--quick] [-o table|json]")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out != "table" && *out != "json" {
		return usagef("-o must be table or json, got %q", *out)
	}
	if *threads <= 0 {
		return usagef("-t must be positive, got %d", *threads)
	}
	o := conformance.Options{Backend: *backend, Device: *device, Quick: *quick, Threads: *threads,
		RequireAccel: os.Getenv("OCELOT_REQUIRE_OPENCL") == "1",
		Logf:         func(f string, a ...any) { fmt.Fprintf(stderr, "conformance: "+f+"\n", a...) }}
	for _, path := range models {
		f, err := gguf.Open(path)
		if err != nil {
			return err
		}
		n, err := f.ArchUint32("block_count")
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		o.Models = append(o.Models, conformance.Model{Name: filepath.Base(path), Path: path, NLayer: int(n)})
	}
	if len(o.Models) == 0 {
		dir, err := os.UserCacheDir()
		if err != nil {
			dir = os.TempDir()
		}
		o.ModelDir = filepath.Join(dir, "ocelot", "models")
	}
	r, err := conformance.Run(o)
	if err != nil {
		return err
	}
	if *out == "json" {
		if err := r.WriteJSON(stdout); err != nil {
			return err
		}
	} else {
		r.WriteTable(stdout)
	}
	if r.Failed > 0 {
		return fmt.Errorf("%d of %d checks failed", r.Failed, r.Failed+r.Passed)
	}
	return nil
}

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
