package conformance

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/ocelot-llm/ocelot/accel"
	"github.com/ocelot-llm/ocelot/graph"
	"github.com/ocelot-llm/ocelot/synth"
)

// Options configure a conformance run.
type Options struct {
	// Models to run end to end; empty: the tiny and small presets,
	// generated into ModelDir.
	Models   []Model
	ModelDir string
	// Backend is "cpu", an accelerator's name, or "all" (the CPU and every
	// accelerator that opens here).
	Backend string
	Device  int // accelerator device (-1: its default)
	Quick   bool
	Threads int
	// RequireAccel makes "all" fail when no accelerator opens.
	RequireAccel bool
	Logf         func(format string, a ...any)
}

// DefaultModels generates (once) and returns the tiny and small presets.
func DefaultModels(dir string) ([]Model, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var out []Model
	for _, name := range []string{"tiny", "small"} {
		p, err := synth.PresetByName(name)
		if err != nil {
			return nil, err
		}
		path := filepath.Join(dir, fmt.Sprintf("conformance-%s-v%d.gguf", name, synth.FormatVersion))
		if _, err := os.Stat(path); err != nil {
			if err := synth.Generate(path, synth.DefaultOptions(p)); err != nil {
				return nil, err
			}
		}
		out = append(out, Model{Name: name, Path: path, NLayer: p.NLayer})
	}
	return out, nil
}

// Run runs the op cases on every selected backend, then the end-to-end
// configurations, and tallies the report.
func Run(o Options) (*Report, error) {
	if o.Threads <= 0 {
		o.Threads = runtime.NumCPU()
	}
	logf := o.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	models := o.Models
	if len(models) == 0 {
		var err error
		if models, err = DefaultModels(o.ModelDir); err != nil {
			return nil, fmt.Errorf("conformance: models: %w", err)
		}
	}
	r := &Report{Device: "cpu"}
	// The CPU backend, on every kernel path this machine can run.
	if o.Backend == "cpu" || o.Backend == "all" {
		for _, path := range cpuPaths() {
			restore, err := forcePath(path)
			if err != nil {
				return nil, err
			}
			cpu := accel.NewCPU(o.Threads)
			logf("op cases: cpu (%s kernels)", path)
			for _, c := range OpCases(cpu, graph.CPU, o.Quick) {
				c.Backend = "cpu/" + path.String()
				r.Cases = append(r.Cases, c)
			}
			cpu.Close()
			restore()
		}
		logf("end to end: cpu")
		r.E2E = append(r.E2E, RunE2E(Configs(models, "cpu", "", o.Quick), 48)...)
	}
	// Accelerators.
	var names []string
	switch o.Backend {
	case "cpu":
	case "all":
		names = accel.Registered()
	default:
		names = []string{o.Backend}
	}
	opened := 0
	for _, name := range names {
		b, _, err := accel.Select(name, accel.Config{Device: o.Device, Logf: logf})
		if err != nil {
			if o.Backend != "all" || o.RequireAccel {
				return nil, fmt.Errorf("conformance: %w", err)
			}
			logf("skipping %s: %v", name, err)
			continue
		}
		opened++
		r.Device = b.Device()
		logf("op cases: %s on %s", name, b.Device())
		r.Cases = append(r.Cases, OpCases(b, graph.Accel, o.Quick)...)
		// Every product kernel the backend's tuner may choose, forced in
		// turn: a tuned device runs them.
		if pf, ok := b.(accel.PathForcer); ok {
			for _, p := range pf.Paths() {
				if err := pf.ForcePath(p); err != nil {
					b.Close()
					return nil, fmt.Errorf("conformance: %s: %w", name, err)
				}
				logf("op cases: %s products on %s", name, p)
				for _, c := range MulMatCases(b, graph.Accel, o.Quick) {
					c.Backend = name + "/" + p
					r.Cases = append(r.Cases, c)
				}
			}
			if err := pf.ForcePath(""); err != nil {
				b.Close()
				return nil, fmt.Errorf("conformance: %s: %w", name, err)
			}
		}
		b.Close()
		dev := ""
		if o.Device >= 0 {
			dev = fmt.Sprint(o.Device)
		}
		logf("end to end: %s", name)
		r.E2E = append(r.E2E, RunE2E(Configs(models, name, dev, o.Quick), 48)...)
	}
	if o.Backend == "all" && o.RequireAccel && opened == 0 {
		return nil, fmt.Errorf("conformance: no accelerator opened (compiled in: %v)", accel.Registered())
	}
	r.Tally()
	return r, nil
}
