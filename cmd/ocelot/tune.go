package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/ocelot-llm/ocelot"
)

func init() {
	register(&command{name: "tune", summary: "measure the accelerator's kernels on this device for a model and cache the fastest correct ones", run: runTune})
}

func runTune(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("tune", stderr)
	var e engineFlags
	e.register(fs)
	e.nCtx = 256 // the tuner needs no context; the cache is sized small
	fs.Lookup("c").DefValue = "256"
	quick := fs.Bool("quick", false, "fewer repetitions and tokens per prompt product: the tune a first run does, without its time bound")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ocelot tune -m M.gguf [--quick] [--device N] [-ngl N] [--json]")
		fmt.Fprintln(stderr, "\nFor each weight type and token class of the model's products (one token: decode; a few:")
		fmt.Fprintln(stderr, "batched decode; many: prompts), runs the default kernel and every candidate on the device,")
		fmt.Fprintln(stderr, "rejects any whose output differs from the generic kernel's beyond the conformance threshold,")
		fmt.Fprintln(stderr, "times the rest and caches the fastest for this device, driver and model shape. Later runs")
		fmt.Fprintln(stderr, "take the cached choice (--tune auto); `ocelot devices` lists what is cached.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	e.tune = "full"
	if *quick {
		e.tune = "quick"
	}
	if err := e.check(fs); err != nil {
		return err
	}
	m, err := e.load(stderr)
	if err != nil {
		return err
	}
	defer m.Close()
	rep, ok := m.Tuning()
	if !ok {
		return fmt.Errorf("tune: nothing to tune: %s runs no accelerator that tunes its kernels (try --backend opencl and -ngl 99)", m.Backend())
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printTune(stdout, rep)
	return nil
}

// printTune prints a tuner's report: a line per decision, then every
// candidate's time.
func printTune(w io.Writer, rep ocelot.TuneReport) {
	how := "full"
	if rep.Quick {
		how = "quick"
	}
	if rep.Partial {
		how += ", stopped at its time bound"
	}
	fmt.Fprintf(w, "tuned %s (%s) in %.1f s", rep.Device, how, rep.Took.Seconds())
	if rep.File != "" {
		fmt.Fprintf(w, "; cached in %s", rep.File)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "type\tclass\ttokens\tproducts\tdefault\tchosen\tdefault ms\tchosen ms\tspeed-up\t")
	for _, r := range rep.Rows {
		chosen := r.Chosen
		if chosen == "" {
			chosen = "(not measured)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t\n", r.Type, r.Class, r.Tokens, r.Products, r.Default, chosen,
			msText(r.DefaultTime), msText(r.ChosenTime), speedup(r.DefaultTime, r.ChosenTime))
	}
	tw.Flush()
	fmt.Fprintln(w, "\ncandidates (time of the model's products of that type and class, per pass):")
	for _, r := range rep.Rows {
		fmt.Fprintf(w, "  %s %s:", r.Type, r.Class)
		for _, c := range r.Candidates {
			if c.Rejected != "" {
				fmt.Fprintf(w, " %s (%s);", c.Name, c.Rejected)
			} else if c.Stopped {
				fmt.Fprintf(w, " %s > %s ms;", c.Name, msText(c.Time))
			} else {
				fmt.Fprintf(w, " %s %s ms;", c.Name, msText(c.Time))
			}
		}
		fmt.Fprintln(w)
	}
}

func msText(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f", float64(d.Microseconds())/1000)
}

func speedup(def, chosen time.Duration) string {
	if def == 0 || chosen == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f×", float64(def)/float64(chosen))
}
