package conformance

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
)

// Report is the result of a conformance run.
type Report struct {
	Device string `json:"device"`
	Cases  []Case `json:"cases"`
	E2E    []E2E  `json:"e2e"`
	Passed int    `json:"passed"`
	Failed int    `json:"failed"`
	// Skipped counts op cases a backend declines (run on the CPU instead).
	Skipped int `json:"skipped"`
}

// Tally counts passes and failures.
func (r *Report) Tally() {
	r.Passed, r.Failed, r.Skipped = 0, 0, 0
	for _, c := range r.Cases {
		switch {
		case c.Skipped:
			r.Skipped++
		case c.Pass:
			r.Passed++
		default:
			r.Failed++
		}
	}
	for _, e := range r.E2E {
		if e.Pass {
			r.Passed++
		} else {
			r.Failed++
		}
	}
}

// WriteJSON writes the report as JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes one line per case (op, shape, type, backend, NMSE,
// threshold, pass), the end-to-end results, and a summary. Failures carry
// their detail on the next line.
func (r *Report) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "device: %s\n\n", r.Device)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "OP\tSHAPE\tTYPE\tBACKEND\tNMSE\tTHRESHOLD\tRESULT")
	for _, c := range r.Cases {
		res := "pass"
		switch {
		case c.Skipped:
			res = "skip"
		case !c.Pass:
			res = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.3g\t%.0e\t%s\n", c.Op, c.Shape, c.Type, c.Backend, c.NMSE, c.Threshold, res)
		if !c.Pass {
			fmt.Fprintf(tw, "  -> %s\t\t\t\t\t\t\n", c.Detail)
		}
	}
	tw.Flush()
	if len(r.E2E) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "MODEL\tBACKEND\tNGL\tKV\tBATCH\tTHREADS\tMAX NMSE\tTOP-1\tMAX KL\tGREEDY\tRESULT")
		for _, e := range r.E2E {
			res := "pass"
			if !e.Pass {
				res = "FAIL"
			}
			greedy := "same"
			if !e.Greedy {
				greedy = "differs"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d/%d\t%d\t%.3g\t%.1f%%\t%.3g\t%s\t%s\n", e.Name, e.Backend, e.NGL, e.KV, e.NBatch, e.NUbatch, e.Threads, e.MaxNMSE, 100*e.Top1, e.MaxKL, greedy, res)
			if e.Err != "" {
				fmt.Fprintf(tw, "  -> error: %s\n", e.Err)
			}
			if e.Diff != "" {
				fmt.Fprintf(tw, "  -> %s\n", e.Diff)
			}
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "\n%d passed, %d failed, %d skipped\n", r.Passed, r.Failed, r.Skipped)
}
