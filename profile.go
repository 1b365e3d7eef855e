package ocelot

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/ocelot-llm/ocelot/accel"
)

// OpTime is one row of a model's profile: an op (or fused op), the
// kernel that ran it where the backend names kernels, how often it ran
// and for how long on the device, and the backend it ran on.
type OpTime struct {
	Backend string
	accel.OpTime
}

// Profile returns the time every backend spent in each op since Load or
// ResetProfile, longest first. It is empty unless Options.Profile was set
// (and for the reference engine, which has no ops to time).
func (m *Model) Profile() []OpTime {
	e, ok := m.eng.(*graphEngine)
	if !ok || !m.opt.Profile {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []OpTime
	for _, b := range e.runner.Backends {
		if b == nil {
			continue
		}
		for _, t := range b.Profile() {
			out = append(out, OpTime{Backend: b.Name(), OpTime: t})
		}
	}
	sortOpTimes(out)
	return out
}

// ResetProfile clears the profile, to time a phase alone (after a
// warm-up, say).
func (m *Model) ResetProfile() {
	e, ok := m.eng.(*graphEngine)
	if !ok {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, b := range e.runner.Backends {
		if b != nil {
			b.ResetProfile()
		}
	}
}

// sortOpTimes orders a profile longest first, then by backend, op and
// kernel.
func sortOpTimes(p []OpTime) {
	sort.Slice(p, func(i, j int) bool {
		a, b := p[i], p[j]
		if a.Device != b.Device {
			return a.Device > b.Device
		}
		if a.Backend != b.Backend {
			return a.Backend < b.Backend
		}
		if a.Op != b.Op {
			return a.Op < b.Op
		}
		return a.Kernel < b.Kernel
	})
}

// WriteProfile prints a profile as a table: backend, op, kernel,
// launches, device milliseconds and their share of wall, the wall time
// of the work it covers; then the device's busy time, the rest of wall
// (host work and gaps between launches) and, for tokens > 0, launches
// per token.
func WriteProfile(w io.Writer, p []OpTime, wall time.Duration, tokens int) {
	if len(p) == 0 {
		fmt.Fprintln(w, "profile: no op was timed (the reference engine times nothing)")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "backend\top\tkernel\tlaunches\tdevice ms\tof wall\t")
	busy := map[string]time.Duration{}
	launches := 0
	for _, t := range p {
		busy[t.Backend] += t.Device
		launches += t.Launches
		kernel := t.Kernel
		if kernel == "" {
			kernel = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.3f\t%.1f%%\t\n", t.Backend, t.Op, kernel, t.Launches, ms(t.Device), share(t.Device, wall))
	}
	tw.Flush()
	var most time.Duration
	for b, d := range busy {
		fmt.Fprintf(w, "profile: %s busy %.3f ms of %.3f ms wall (%.1f%%)\n", b, ms(d), ms(wall), share(d, wall))
		most = max(most, d)
	}
	fmt.Fprintf(w, "profile: host work and gaps between launches: %.3f ms (%.1f%% of wall, beside the busiest backend)\n", ms(wall-most), share(wall-most, wall))
	if tokens > 0 {
		fmt.Fprintf(w, "profile: %d launches over %d tokens: %.1f per token\n", launches, tokens, float64(launches)/float64(tokens))
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func share(d, wall time.Duration) float64 {
	if wall <= 0 {
		return 0
	}
	return 100 * float64(d) / float64(wall)
}
