package main

import (
	"fmt"
	"io"
	"time"
)

// progressDelay is how long work runs before its progress line appears:
// short work prints nothing.
const progressDelay = time.Second

// progressEvery limits how often the line is redrawn.
const progressEvery = 100 * time.Millisecond

// progress draws one line of progress for long work ("prompt: 1024/2553
// tokens (40%)") on a terminal, redrawn in place and erased when the work
// is done. It draws nothing when its writer is not a terminal, under -q,
// or before the work has run progressDelay.
type progress struct {
	w          io.Writer
	on         bool
	what       string
	start, at  time.Time // when the work began; when the line was last drawn
	shown      bool
	delay      time.Duration
	unit       string
	bytesUnits bool // done and total are bytes: print them in MiB/GiB
}

// newProgress starts the progress of what on w (stderr), drawn only when w
// is a terminal and quiet is false.
func newProgress(w io.Writer, quiet bool, what string) *progress {
	return &progress{w: w, on: !quiet && isTerminal(w), what: what, start: time.Now(), delay: progressDelay}
}

// update redraws the line for done of total.
func (p *progress) update(done, total int64) {
	if p == nil || !p.on {
		return
	}
	now := time.Now()
	if now.Sub(p.start) < p.delay || (p.shown && now.Sub(p.at) < progressEvery && done < total) {
		return
	}
	pct := 0.0
	if total > 0 {
		pct = 100 * float64(done) / float64(total)
	}
	var amount string
	if p.bytesUnits {
		amount = fmt.Sprintf("%s/%s", sizeString(done), sizeString(total))
	} else {
		amount = fmt.Sprintf("%d/%d %s", done, total, p.unit)
	}
	fmt.Fprintf(p.w, "\r\033[K%s: %s (%.0f%%), %.1f s", p.what, amount, pct, now.Sub(p.start).Seconds())
	p.shown, p.at = true, now
}

// done erases the line, if it was drawn.
func (p *progress) done() {
	if p != nil && p.shown {
		fmt.Fprint(p.w, "\r\033[K")
		p.shown = false
	}
}

// sizeString prints a byte count in MiB below a GiB, else in GiB.
func sizeString(n int64) string {
	if n < 1<<30 {
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
}
