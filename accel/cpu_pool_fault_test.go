package accel

import (
	"strings"
	"testing"
)

type panicTask struct{ at int }

func (t panicTask) run(_, lo, hi int) {
	for i := lo; i < hi; i++ {
		if i == t.at {
			var s []int
			_ = s[i] // index out of range
		}
	}
}

// A panic inside a task, on the caller or on a helper, becomes an error
// and leaves the pool usable.
func TestPoolRecoversPanics(t *testing.T) {
	for _, threads := range []int{1, 2, 3} {
		p := newPool(threads)
		for _, at := range []int{0, 57, 99} {
			p.parallelFor(100, 4, panicTask{at: at})
			err := p.takeFault()
			if err == nil || !strings.Contains(err.Error(), "index out of range") {
				t.Fatalf("%d threads, panic at %d: err = %v", threads, at, err)
			}
		}
		p.parallelFor(100, 4, panicTask{at: -1})
		if err := p.takeFault(); err != nil {
			t.Fatalf("a clean task reported %v", err)
		}
		p.close()
	}
}
