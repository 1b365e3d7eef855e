package accel

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
)

// task is one parallel piece of work: run computes items [lo, hi) on
// worker w (0 <= w < pool size), which may use that worker's scratch.
// Ops keep their task structs in the backend, so dispatching one does
// not allocate.
type task interface {
	run(w, lo, hi int)
}

// pool is a persistent set of worker goroutines. parallelFor hands them
// a task; the calling goroutine works as worker 0, the helpers as
// 1..n-1. Items are handed out in chunks through an atomic counter, so
// uneven items (causal attention rows, say) balance themselves. Between
// tasks a helper spins for a short while before it parks on its channel,
// because the ops of a forward pass follow each other within
// microseconds and waking a parked goroutine costs more than that.
type pool struct {
	n    int
	wake []chan struct{}
	// parked[i] is 1 while helper i sleeps on wake[i] (or is about to).
	parked []atomic.Int32
	gen    atomic.Uint64 // bumped once per task
	quit   atomic.Bool
	done   sync.WaitGroup // helpers finishing the current task
	exited sync.WaitGroup // helpers that have returned

	// The current task.
	t            task
	total, grain int
	next         atomic.Int64

	// fault holds the first panic of a task's run, recovered so that a
	// kernel bug fails the op instead of killing the process.
	fault atomic.Pointer[string]
}

// spinChecks is how many times an idle helper polls for the next task
// before it parks: on the order of tens of microseconds.
const spinChecks = 1 << 14

func newPool(n int) *pool {
	p := &pool{n: n, wake: make([]chan struct{}, n-1), parked: make([]atomic.Int32, n-1)}
	for i := range p.wake {
		p.wake[i] = make(chan struct{}, 1)
	}
	p.exited.Add(n - 1)
	for i := 0; i < n-1; i++ {
		go p.helper(i)
	}
	return p
}

// parallelFor runs t over items [0, n) in chunks of grain items and
// returns when all are done. With one worker, or no more than one chunk,
// it runs on the caller alone.
func (p *pool) parallelFor(n, grain int, t task) {
	if n <= 0 {
		return
	}
	grain = max(grain, 1)
	if p.n == 1 || n <= grain {
		p.t, p.total = t, n
		p.runChunk(0, 0, n)
		p.t = nil
		return
	}
	p.t, p.total, p.grain = t, n, grain
	p.next.Store(0)
	p.done.Add(p.n - 1)
	p.gen.Add(1)
	for i := range p.parked {
		if p.parked[i].CompareAndSwap(1, 0) {
			p.wake[i] <- struct{}{}
		}
	}
	p.work(0)
	p.done.Wait()
	p.t = nil
}

// work takes chunks of the current task until none is left.
func (p *pool) work(w int) {
	for {
		lo := int(p.next.Add(int64(p.grain))) - p.grain
		if lo >= p.total {
			return
		}
		p.runChunk(w, lo, min(lo+p.grain, p.total))
	}
}

// runChunk runs one chunk of the current task, turning a panic into the
// pool's fault and handing out no more chunks of the task.
func (p *pool) runChunk(w, lo, hi int) {
	defer func() {
		if r := recover(); r != nil {
			msg := fmt.Sprintf("%v\n%s", r, debug.Stack())
			p.fault.CompareAndSwap(nil, &msg)
			p.next.Store(int64(p.total))
		}
	}()
	p.t.run(w, lo, hi)
}

// takeFault returns (and clears) the panic a task raised, as an error.
func (p *pool) takeFault() error {
	if msg := p.fault.Swap(nil); msg != nil {
		return fmt.Errorf("internal error (a bug in ocelot; please report it): %s", *msg)
	}
	return nil
}

func (p *pool) helper(i int) {
	defer p.exited.Done()
	var seen uint64 // tasks done; gen counts tasks given
	for {
		// Wait for the next task: spin, then park.
		for spins := 0; p.gen.Load() == seen; spins++ {
			if p.quit.Load() {
				return
			}
			if spins&255 == 255 {
				runtime.Gosched()
			}
			if spins < spinChecks {
				continue
			}
			p.parked[i].Store(1)
			if p.quit.Load() {
				return
			}
			if p.gen.Load() != seen {
				// A task came while parking: unpark ourselves, or take
				// the token parallelFor is sending.
				if !p.parked[i].CompareAndSwap(1, 0) {
					<-p.wake[i]
				}
				break
			}
			<-p.wake[i] // parallelFor or close cleared parked
			spins = 0
		}
		if p.quit.Load() {
			return
		}
		seen++
		p.work(i + 1)
		p.done.Done()
	}
}

// close stops the helpers and waits for them to return.
func (p *pool) close() {
	if p.quit.Swap(true) {
		return
	}
	for i := range p.parked {
		if p.parked[i].CompareAndSwap(1, 0) {
			p.wake[i] <- struct{}{}
		}
	}
	p.exited.Wait()
}
