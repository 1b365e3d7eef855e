package ocelot

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ocelot-llm/ocelot/accel"
	"github.com/ocelot-llm/ocelot/graph"
)

// ErrKVFull is returned (wrapped) when the KV pool has no free page for a
// sequence that grows: every cell is held by live sessions. Close or
// Truncate sessions, or raise Options.Parallel.
var ErrKVFull = errors.New("the KV cache pool is full")

// The graph engine keeps one KV cache for all of its sequences: a pool of
// pages of graph.PageCells cells. A sequence holds a list of pages, its
// positions in order; a page may be held by several sequences (a fork, a
// shared prompt prefix), and is copied before one of them writes into it
// (copy on write). Sequences evaluate through one scheduler: whatever
// micro-batches concurrent sessions have submitted run together, as one
// graph over tokens of several sequences (continuous batching).

// kvPool is the engine's cache and the bookkeeping of its pages. It is
// guarded by graphEngine.mu.
type kvPool struct {
	kv   *graph.KV
	free []int32 // pages no sequence holds
	refs []int32 // sequences holding each page
}

// take returns a free page, held once.
func (p *kvPool) take() (int32, bool) {
	if len(p.free) == 0 {
		return 0, false
	}
	pg := p.free[len(p.free)-1]
	p.free = p.free[:len(p.free)-1]
	p.refs[pg] = 1
	return pg, true
}

// drop lets go of a page.
func (p *kvPool) drop(pg int32) {
	if p.refs[pg]--; p.refs[pg] == 0 {
		p.free = append(p.free, pg)
	}
}

// pagesFor is how many pages n positions take.
func pagesFor(n int) int { return (n + graph.PageCells - 1) / graph.PageCells }

// request is a sequence's evaluation waiting for, or in, the scheduler.
type request struct {
	s      *graphSeq
	ctx    context.Context
	tokens []int32
	all    bool // logits of every token (else of the last)
	hidden bool // hidden states of every token instead of logits
	done   int  // tokens evaluated
	out    [][]float32
	err    error
	over   bool // finished: done == len(tokens), or err set
}

// piece is the part of a request one step evaluates.
type piece struct {
	r    *request
	n    int // tokens
	rows int // output rows the step returns for it: its last (or every) token's, or none
}

// copyPage is a copy on write the step makes before its graph runs.
type copyPage struct{ src, dst int32 }

// coalesce is the longest a step waits for the sessions that are
// generating (between two tokens) to submit their next token, so that
// their tokens run together.
const coalesce = 2 * time.Millisecond

// submit evaluates r's tokens through the scheduler and reports progress
// (tokens done) after each step that took some of them. The caller that
// finds no step running runs the next one itself, with whatever every
// session has queued; the others wait for it.
func (e *graphEngine) submit(r *request, progress func(done int)) error {
	e.mu.Lock()
	e.queue = append(e.queue, r)
	r.s.queued = true
	e.cond.Broadcast()
	reported := 0
	for !r.over {
		if !e.running {
			e.runStep()
		} else {
			e.cond.Wait()
		}
		if progress != nil && r.done > reported && r.err == nil {
			reported = r.done
			e.mu.Unlock()
			progress(reported)
			e.mu.Lock()
		}
	}
	e.mu.Unlock()
	return r.err
}

// runStep runs one step of the scheduler; e.mu is held on entry and on
// return, and released while the graph runs.
func (e *graphEngine) runStep() {
	e.running = true
	if e.waiting() {
		deadline := time.Now().Add(coalesce)
		t := time.AfterFunc(coalesce, func() {
			e.mu.Lock()
			e.cond.Broadcast()
			e.mu.Unlock()
		})
		for e.waiting() && time.Now().Before(deadline) {
			e.cond.Wait()
		}
		t.Stop()
	}
	pieces, copies := e.pick()
	if len(pieces) > 0 {
		e.stat.Steps++
		e.stat.StepSeqs += int64(len(pieces))
		e.stat.MaxStepSeqs = max(e.stat.MaxStepSeqs, len(pieces))
		for _, pc := range pieces {
			e.stat.StepTokens += int64(pc.n)
		}
		e.mu.Unlock()
		out, err := e.step(pieces, copies)
		e.mu.Lock()
		e.settle(pieces, out, err)
	}
	e.running = false
	e.cond.Broadcast()
}

// waiting reports whether a sequence that is decoding has not submitted
// its next token yet: one inside Generate, or one whose last evaluation
// was a single token less than coalesce ago (a decoding loop of Evals).
func (e *graphEngine) waiting() bool {
	now := time.Now()
	for s := range e.seqs {
		if !s.queued && (s.generating || now.Sub(s.decoded) < coalesce) {
			return true
		}
	}
	return false
}

// pick takes the next step's pieces from the queue (e.mu held): single
// tokens first (sessions generating), then longer requests, in order, up
// to NUbatch tokens in all; a request that got nothing last time goes
// first. It reserves the pages the pieces write, copying shared ones
// (the copies are returned for the step to make). Cancelled requests
// and requests the pool cannot hold are finished with their error.
func (e *graphEngine) pick() ([]piece, []copyPage) {
	order := slices.Clone(e.queue)
	if !e.starved {
		slices.SortStableFunc(order, func(a, b *request) int {
			return boolInt(len(a.tokens)-a.done > 1) - boolInt(len(b.tokens)-b.done > 1)
		})
	}
	budget := e.opt.NUbatch
	var pieces []piece
	var copies []copyPage
	e.starved = false
	hidden := false
	for _, r := range order {
		if err := r.ctx.Err(); err != nil {
			e.fail(r, err)
			continue
		}
		if len(pieces) > 0 && r.hidden != hidden {
			e.starved = true // embeddings and logits run in separate steps
			continue
		}
		n := min(len(r.tokens)-r.done, budget, e.chunk(r))
		if n == 0 {
			e.starved = true
			continue
		}
		cp, err := e.reserve(r.s, len(r.s.toks), n)
		if err != nil {
			e.fail(r, err)
			continue
		}
		copies = append(copies, cp...)
		hidden = r.hidden
		rows := 0
		switch {
		case r.all || r.hidden:
			rows = n
		case r.done+n == len(r.tokens):
			rows = 1
		}
		pieces = append(pieces, piece{r: r, n: n, rows: rows})
		budget -= n
	}
	return pieces, copies
}

// chunk is how many of r's next tokens one micro-batch may take alone:
// up to the next boundary model.Ubatches would cut (logical batches of
// NBatch in micro-batches of NUbatch), so that a sequence evaluated
// alone is cut as before.
func (e *graphEngine) chunk(r *request) int {
	b := r.done / e.opt.NBatch * e.opt.NBatch
	u := b + (r.done-b)/e.opt.NUbatch*e.opt.NUbatch
	return min(u+e.opt.NUbatch, b+e.opt.NBatch, len(r.tokens)) - r.done
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// fail finishes a request with an error and takes it off the queue.
func (e *graphEngine) fail(r *request, err error) {
	r.err = err
	e.dequeue(r)
	e.trim(r.s)
}

// dequeue finishes a request (done, or failed with r.err) and takes it
// off the queue.
func (e *graphEngine) dequeue(r *request) {
	r.over, r.s.queued = true, false
	e.queue = slices.DeleteFunc(e.queue, func(q *request) bool { return q == r })
}

// reserve makes sure s holds its own pages for positions [pos, pos+n):
// new pages past its list, and a copy of every shared page it would
// write into.
func (e *graphEngine) reserve(s *graphSeq, pos, n int) ([]copyPage, error) {
	p := e.pool
	var copies []copyPage
	for i := pos / graph.PageCells; i < pagesFor(pos+n); i++ {
		if i < len(s.pages) && p.refs[s.pages[i]] == 1 {
			continue
		}
		pg, ok := p.take()
		if !ok {
			err := e.grow()
			if err != nil {
				used := len(p.refs) - len(p.free)
				return nil, fmt.Errorf("ocelot: %w: all %d cells (%d pages of %d) are held by %d sequences, and a larger pool does not fit: %v", ErrKVFull, used*graph.PageCells, used, graph.PageCells, len(e.seqs), err)
			}
			pg, _ = p.take()
		}
		if i < len(s.pages) {
			copies = append(copies, copyPage{src: s.pages[i], dst: pg})
			p.drop(s.pages[i])
			s.pages[i] = pg
		} else {
			s.pages = append(s.pages, pg)
		}
	}
	return copies, nil
}

// grow doubles the pool when every page is held (e.mu held, no step
// running): a new cache twice the size, holding the old one's cells at
// the same places, replaces it. Options.Parallel sizes the pool at
// first; it grows as long as memory allows, as separate caches per
// session did.
func (e *graphEngine) grow() error {
	p := e.pool
	old := p.kv
	cells := 2 * old.Cells
	if err := e.checkPool(cells); err != nil { // the old one is resident already
		return err
	}
	kv, err := e.allocKV(cells)
	if err != nil {
		return err
	}
	for l := range old.K {
		b := e.cacheBackend(l)
		for i, t := range []*graph.Tensor{old.K[l], old.V[l]} {
			nt := kv.K[l]
			if i == 1 {
				nt = kv.V[l]
			}
			buf := make([]byte, nt.Bytes())
			if err := b.Download(t, buf[:t.Bytes()]); err == nil {
				err = b.Upload(nt, buf)
			}
			if err != nil {
				freeKV(e, kv)
				return fmt.Errorf("%s: move %s to a larger pool: %w", b.Name(), t.Name, err)
			}
		}
	}
	freeKV(e, old)
	p.kv = kv
	n := cells / graph.PageCells
	for pg := n - 1; pg >= len(p.refs); pg-- {
		p.free = append(p.free, int32(pg))
	}
	p.refs = append(p.refs, make([]int32, n-len(p.refs))...)
	if e.opt.Logf != nil {
		e.opt.Logf("ocelot: the KV pool grew to %d cells (%d sequences hold %d)", cells, len(e.seqs), old.Cells)
	}
	return nil
}

// trim lets go of the pages past a sequence's positions.
func (e *graphEngine) trim(s *graphSeq) {
	keep := pagesFor(len(s.toks))
	for _, pg := range s.pages[min(keep, len(s.pages)):] {
		e.pool.drop(pg)
	}
	s.pages = s.pages[:min(keep, len(s.pages))]
}

// step makes the copies on write, then evaluates the pieces as one
// micro-batch (without e.mu: only the step's runner touches the pages
// and the cache meanwhile).
func (e *graphEngine) step(pieces []piece, copies []copyPage) ([]float32, error) {
	for _, c := range copies {
		for l := range e.pool.kv.K {
			b := e.cacheBackend(l)
			for _, t := range []*graph.Tensor{e.pool.kv.K[l], e.pool.kv.V[l]} {
				if err := b.CopyRows(t, int(c.dst)*graph.PageCells, int(c.src)*graph.PageCells, graph.PageCells); err != nil {
					return nil, fmt.Errorf("ocelot: %s: copy a shared page of %s: %w", b.Name(), t.Name, err)
				}
			}
		}
	}
	bt := &graph.Batch{}
	for i, pc := range pieces {
		r := pc.r
		first := len(bt.Tokens)
		bt.Tokens = append(bt.Tokens, r.tokens[r.done:r.done+pc.n]...)
		for j := range pc.n {
			bt.Pos = append(bt.Pos, int32(len(r.s.toks)+j))
			bt.Seq = append(bt.Seq, int32(i))
		}
		bt.Pages = append(bt.Pages, r.s.pages)
		for j := pc.n - pc.rows; j < pc.n; j++ { // the piece's last pc.rows tokens
			bt.Out = append(bt.Out, int32(first+j))
		}
		bt.Hidden = r.hidden
	}
	g, err := graph.BuildBatch(e.model, e.pool.kv, bt)
	if err != nil {
		return nil, err
	}
	if err := graph.Schedule(g, e.policy); err != nil {
		return nil, err
	}
	return e.runner.Run(&e.ctx, g)
}

// settle hands a step's results to its requests (e.mu held).
func (e *graphEngine) settle(pieces []piece, out []float32, err error) {
	width := e.model.Config.NVocab
	if len(pieces) > 0 && pieces[0].r.hidden {
		width = e.model.Config.NEmbd
	}
	for _, pc := range pieces {
		r := pc.r
		if err != nil {
			e.fail(r, err)
			continue
		}
		r.s.toks = append(r.s.toks, r.tokens[r.done:r.done+pc.n]...)
		r.done += pc.n
		for range pc.rows {
			r.out = append(r.out, out[:width:width])
			out = out[width:]
		}
		if r.done == len(r.tokens) {
			e.dequeue(r)
			if len(r.tokens) == 1 {
				r.s.decoded = time.Now()
			}
		}
	}
}

// Stats describes a graph engine's KV pool and scheduler.
type Stats struct {
	KVCells     int   // cells in the pool
	KVCellsUsed int   // cells held by sequences (a page several share counts once)
	Sequences   int   // live sessions' sequences
	Steps       int64 // micro-batches evaluated
	StepTokens  int64 // tokens over all of them
	StepSeqs    int64 // sequences over all of them (StepSeqs/Steps: sequences per micro-batch)
	MaxStepSeqs int   // the most sequences one micro-batch held
}

func (e *graphEngine) stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.stat
	st.Sequences = len(e.seqs)
	if e.pool != nil {
		st.KVCells = e.pool.kv.Cells
		st.KVCellsUsed = (len(e.pool.refs) - len(e.pool.free)) * graph.PageCells
	}
	return st
}

// exclusive runs f with no step running and none starting meanwhile (for
// reading or writing the cache outside a graph).
func (e *graphEngine) exclusive(f func() error) error {
	e.mu.Lock()
	for e.running {
		e.cond.Wait()
	}
	e.running = true
	e.mu.Unlock()
	err := f()
	e.mu.Lock()
	e.running = false
	e.cond.Broadcast()
	e.mu.Unlock()
	return err
}

// openPool allocates the engine's KV pool at the first sequence: NCtx
// cells (whole pages) for each of Options.Parallel sequences.
func (e *graphEngine) openPool() error {
	if e.pool != nil {
		return nil
	}
	cells := pagesFor(e.opt.NCtx) * graph.PageCells * e.opt.Parallel
	if err := e.checkPool(cells); err != nil {
		return err
	}
	kv, err := e.allocKV(cells)
	if err != nil {
		return err
	}
	n := cells / graph.PageCells
	p := &kvPool{kv: kv, refs: make([]int32, n)}
	for pg := n - 1; pg >= 0; pg-- {
		p.free = append(p.free, int32(pg))
	}
	e.pool = p
	return nil
}

// checkPool says whether a cache of cells cells fits where the policy
// puts each layer's.
func (e *graphEngine) checkPool(cells int) error {
	onAccel := 0
	for l := 0; l < e.policy.NLayer; l++ {
		if e.policy.CacheOnAccel(l) {
			onAccel++
		}
	}
	c := e.model.Config
	if err := checkKVFits(c, cells, c.NLayer-onAccel, e.opt.typeK, e.opt.typeV, accel.HostMemory().Free, "host memory"); err != nil {
		return err
	}
	if acc := e.runner.Backends[graph.Accel]; acc != nil && onAccel > 0 {
		return checkKVFits(c, cells, onAccel, e.opt.typeK, e.opt.typeV, acc.Memory().Free, acc.Device())
	}
	return nil
}

// allocKV makes a cache of cells cells resident where the policy puts
// each layer's.
func (e *graphEngine) allocKV(cells int) (*graph.KV, error) {
	kv := graph.NewKV(e.model.Config, cells, e.opt.typeK, e.opt.typeV)
	for l := range kv.K {
		b := e.cacheBackend(l)
		for _, t := range []*graph.Tensor{kv.K[l], kv.V[l]} {
			if err := b.Load(t); err != nil {
				freeKV(e, kv)
				return nil, fmt.Errorf("ocelot: %s: KV cache %s of %d bytes: %w", b.Name(), t.Name, t.Bytes(), err)
			}
		}
	}
	return kv, nil
}

// freeKV releases a cache's tensors wherever they are resident.
func freeKV(e *graphEngine, kv *graph.KV) {
	for l := range kv.K {
		for _, t := range []*graph.Tensor{kv.K[l], kv.V[l]} {
			for i, b := range e.runner.Backends {
				if b != nil && t.Bufs[i] != nil {
					b.Free(t)
				}
			}
		}
	}
}

// cacheBackend is the backend holding layer l's cache.
func (e *graphEngine) cacheBackend(l int) accel.Backend {
	if e.policy.CacheOnAccel(l) {
		return e.runner.Backends[graph.Accel]
	}
	return e.runner.Backends[graph.CPU]
}
