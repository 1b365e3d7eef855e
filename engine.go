package ocelot

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ocelot-llm/ocelot/accel"
	"github.com/ocelot-llm/ocelot/graph"
	"github.com/ocelot-llm/ocelot/model"
	"github.com/ocelot-llm/ocelot/quant"
	"github.com/ocelot-llm/ocelot/ref"
)

// engine runs a model; seq is one sequence in it.
type engine interface {
	newSeq() (seq, error)
	backend() string // what runs the model, for reports
	device() string  // the device it runs on
	kvPlace() string // where the KV cache lives
	stats() Stats
	close() error
}

type seq interface {
	// eval appends tokens and returns the logits asked for; progress, if
	// not nil, learns after each micro-batch how many tokens are done.
	eval(ctx context.Context, tokens []int32, all bool, progress func(done int)) ([][]float32, error)
	// hidden is eval returning every position's final hidden state
	// (model.Hidden) instead of logits.
	hidden(ctx context.Context, tokens []int32) ([][]float32, error)
	pos() int
	truncate(n int) // forget every position from n on (n <= pos)
	// exportKV returns the raw K and V rows of cells [0, n) of every
	// layer; importKV writes such rows back and sets the position to n.
	exportKV(n int) (k, v [][]byte, err error)
	importKV(n int, k, v [][]byte) error
	// fork returns a new sequence holding this one's first n positions.
	fork(n int) (seq, error)
	// adopt may replace the sequence by a longer prefix of tokens that
	// another sequence holds (sharing its cache); it returns how many
	// positions of the sequence match tokens afterwards.
	adopt(tokens []int32) int
	// busy marks the sequence as generating, or no longer.
	busy(on bool)
	reset()
	close()
}

// refEngine is the reference transformer: plain float32, the definition
// of correct output.
type refEngine struct {
	net *ref.Model
	opt *Options
}

type refSeq struct {
	e  *refEngine
	st *ref.State
}

func (e *refEngine) newSeq() (seq, error) {
	if err := checkKVFits(e.net.Config, e.opt.NCtx, e.net.NLayer, e.opt.typeK, e.opt.typeV, accel.HostMemory().Free, "host memory"); err != nil {
		return nil, err
	}
	kv, err := ref.NewKVCache(e.net.Config, e.opt.NCtx, e.opt.typeK, e.opt.typeV)
	if err != nil {
		return nil, fmt.Errorf("ocelot: %w", err)
	}
	return &refSeq{e: e, st: &ref.State{KV: kv}}, nil
}

func (e *refEngine) backend() string { return "ref" }
func (e *refEngine) kvPlace() string { return "host memory" }
func (e *refEngine) device() string  { return "cpu (reference engine)" }
func (e *refEngine) close() error    { return nil }
func (e *refEngine) stats() Stats    { return Stats{} }

func (s *refSeq) eval(ctx context.Context, tokens []int32, all bool, progress func(done int)) ([][]float32, error) {
	o := s.e.opt
	if progress == nil {
		return s.e.net.Eval(ctx, s.st, tokens, o.NBatch, o.NUbatch, all, o.Threads)
	}
	if s.st.Pos+len(tokens) > s.st.KV.NCtx {
		return nil, fmt.Errorf("ocelot: %d tokens after %d cached need %d cells, but n_ctx is %d", len(tokens), s.st.Pos, s.st.Pos+len(tokens), s.st.KV.NCtx)
	}
	var out [][]float32
	done := 0
	err := model.Ubatches(ctx, tokens, o.NBatch, o.NUbatch, all, func(ub []int32, want model.Logits) error {
		logits, err := s.e.net.Forward(s.st, ub, want, o.Threads)
		out = append(out, logits...)
		if err == nil {
			done += len(ub)
			progress(done)
		}
		return err
	})
	return out, err
}
func (s *refSeq) hidden(ctx context.Context, tokens []int32) ([][]float32, error) {
	o := s.e.opt
	var out [][]float32
	err := model.Ubatches(ctx, tokens, o.NBatch, o.NUbatch, true, func(ub []int32, _ model.Logits) error {
		h, err := s.e.net.Forward(s.st, ub, model.Hidden, o.Threads)
		out = append(out, h...)
		return err
	})
	return out, err
}

func (s *refSeq) exportKV(n int) (k, v [][]byte, err error) {
	for l := range s.e.net.Layers {
		kl, vl := s.st.KV.Cells(l, n)
		k, v = append(k, bytes.Clone(kl)), append(v, bytes.Clone(vl))
	}
	return k, v, nil
}

func (s *refSeq) importKV(n int, k, v [][]byte) error {
	for l := range s.e.net.Layers {
		kl, vl := s.st.KV.Cells(l, n)
		if len(k[l]) != len(kl) || len(v[l]) != len(vl) {
			return fmt.Errorf("ocelot: layer %d: %d and %d bytes of K and V rows, want %d and %d", l, len(k[l]), len(v[l]), len(kl), len(vl))
		}
		copy(kl, k[l])
		copy(vl, v[l])
	}
	s.st.Pos = n
	return nil
}

// fork copies the cache: the reference engine keeps one cache per
// sequence.
func (s *refSeq) fork(n int) (seq, error) {
	k, v, err := s.exportKV(n)
	if err != nil {
		return nil, err
	}
	f, err := s.e.newSeq()
	if err != nil {
		return nil, err
	}
	if err := f.importKV(n, k, v); err != nil {
		return nil, err
	}
	return f, nil
}

// adopt shares nothing: the reference engine's sequences are separate.
func (s *refSeq) adopt([]int32) int { return 0 }
func (s *refSeq) busy(bool)         {}

func (s *refSeq) pos() int       { return s.st.Pos }
func (s *refSeq) truncate(n int) { s.st.Pos = n }
func (s *refSeq) reset()         { s.st.Pos = 0 }
func (s *refSeq) close()         { s.st = nil }

// graphEngine runs the op graph on the CPU backend and, where one was
// chosen, an accelerator.
type graphEngine struct {
	opt    *Options
	model  *graph.Model
	runner accel.Runner
	policy graph.Policy
	reason string // the backend selection's log line
	// release gives the memory-map pages of a weight's bytes back
	// (gguf.File.Release) once only the accelerator reads them.
	release func([]byte) error
	// products are the weights of the accelerator's matrix products, one
	// entry per product of a forward pass (what the tuner measures), and
	// tuned what it chose.
	products []*graph.Tensor
	tuned    *accel.TuneReport

	// mu guards the scheduler (queue, running, generating, starved),
	// the pool's pages and the sequences' pages and tokens. Graph runs
	// themselves happen one at a time (running), without it.
	mu      sync.Mutex
	cond    *sync.Cond
	queue   []*request
	running bool
	starved bool // the last step left a longer request out: it goes first
	pool    *kvPool
	seqs    map[*graphSeq]struct{}
	ctx     accel.Context // the steps' scratch memory
	stat    Stats         // the scheduler's counts
}

func newGraphEngine(net *model.Model, opt *Options, release func([]byte) error) (*graphEngine, error) {
	e := &graphEngine{opt: opt, model: graph.NewModel(net), release: release, seqs: map[*graphSeq]struct{}{}}
	e.cond = sync.NewCond(&e.mu)
	cpu := accel.NewCPU(opt.Threads)
	cpu.SetProfiling(opt.Profile)
	e.runner.Backends[graph.CPU] = cpu
	if opt.CPUPrecision != "" {
		p, err := accel.ParsePrecision(opt.CPUPrecision)
		if err != nil {
			e.close()
			return nil, fmt.Errorf("ocelot: %w", err)
		}
		cpu.SetPrecision(p)
	}
	e.policy = graph.Policy{NLayer: net.NLayer, NGPULayers: opt.NGPULayers, KVOnHost: opt.NoKVOffload}
	dev := -1
	if opt.Device != "" {
		n, err := strconv.Atoi(opt.Device)
		if err != nil || n < 0 {
			e.close()
			return nil, fmt.Errorf("ocelot: device %q is not a device index (see ocelot devices)", opt.Device)
		}
		dev = n
	}
	acc, reason, err := accel.Select(opt.Backend, accel.Config{Device: dev, Profile: opt.Profile, Logf: opt.Logf})
	if err != nil {
		e.close()
		return nil, fmt.Errorf("ocelot: %w", err)
	}
	e.reason = reason
	if acc != nil {
		e.runner.Backends[graph.Accel] = acc
		e.policy.Accel, e.policy.Supports = acc.Name(), acc.Supports
		if !e.policy.KVOnHost && !acc.Caps().HoldsKV(opt.typeK, opt.typeV, net.HeadDim) {
			e.policy.KVOnHost = true
			e.reason += fmt.Sprintf("; KV cache %s/%s kept in host memory (%s cannot attend over it)", opt.TypeK, opt.TypeV, acc.Name())
		}
	}
	if opt.NGPULayers == AutoGPULayers {
		opt.NGPULayers = autoLayers(net, acc, opt)
		e.policy.NGPULayers = opt.NGPULayers
		e.reason += fmt.Sprintf("; -ngl auto: %d layers", opt.NGPULayers)
	}
	err = e.loadWeights()
	if err == nil {
		err = e.tune()
	}
	if err != nil && acc != nil && opt.Backend == "auto" {
		// The accelerator passed its self-test but failed while taking
		// the weights (out of memory, a driver fault): run on the CPU.
		e.dropAccel()
		e.reason = fmt.Sprintf("backend cpu: %s failed while loading the weights (%v)", acc.Name(), err)
		err = e.loadWeights()
	}
	if opt.Logf != nil {
		opt.Logf("%s", e.reason)
	}
	if err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

// tune lets an accelerator that tunes its kernels (accel.Tuner) choose
// them for the products it runs, as Options.Tune says.
func (e *graphEngine) tune() error {
	t, ok := e.runner.Backends[graph.Accel].(accel.Tuner)
	if !ok || len(e.products) == 0 || e.opt.Tune == "off" {
		return nil
	}
	o := accel.TuneOptions{Quick: e.opt.Tune != "full", Force: e.opt.Tune == "quick" || e.opt.Tune == "full",
		Model: e.opt.name, Progress: e.opt.OnTune}
	if !o.Force {
		o.Budget = QuickTuneBudget
	}
	rep, err := t.Tune(e.products, o)
	if err != nil {
		return fmt.Errorf("ocelot: %s: tuning: %w", e.runner.Backends[graph.Accel].Name(), err)
	}
	e.tuned = &rep
	return nil
}

// loadWeights makes every weight resident where the schedule reads it:
// all on the CPU (zero-copy from the file), and those of offloaded
// layers on the accelerator too. A one-token graph scheduled by the same
// policy says which.
//
// A weight uploaded to the accelerator that no CPU node reads in full
// gives its pages of the file's memory map back once it is uploaded
// (gguf.File.Release, handed in as e.release; llama.cpp likewise unmaps the ranges of its map
// that no CPU tensor uses). On a device that shares the host's memory
// (PoCL, phones) the device buffer is host memory too, and keeping the
// pages would hold the weights twice; on any other the pages are dead
// weight. A weight the CPU reads only by rows (GET_ROWS of the tied
// token_embd) is released too: the rows of the tokens it looks up page
// back in from the file as needed. A weight the CPU reads in full (a layer the
// schedule keeps there) keeps its pages. Releasing never changes a
// result: a released page of the read-only map is read again from the
// file if it is touched.
//
// Loading the model has already read every page (model.CheckFinite), so
// the pages of the weights to release are given back before the uploads
// begin, and each upload faults in only its own tensor's pages, given
// back when it is done; the largest weights go first, while the device
// holds least. The peak is then about the device's weights plus one
// tensor, not the device's weights plus the file.
func (e *graphEngine) loadWeights() error {
	for _, w := range e.model.Weights() {
		if err := e.runner.Backends[graph.CPU].Load(w); err != nil {
			return fmt.Errorf("ocelot: cpu: %s: %w", w.Name, err)
		}
	}
	acc := e.runner.Backends[graph.Accel]
	if acc == nil {
		return nil
	}
	probe := graph.NewKV(e.model.Config, 1, e.opt.typeK, e.opt.typeV)
	g, err := graph.Build(e.model, probe, []int32{0}, 0, model.LogitsLast)
	if err != nil {
		return err
	}
	if err := graph.Schedule(g, e.policy); err != nil {
		return err
	}
	var up []*graph.Tensor
	onAccel := map[*graph.Tensor]bool{}
	cpuReads := map[*graph.Tensor]bool{} // weights a CPU node reads in full
	e.products = e.products[:0]
	for _, n := range g.Nodes {
		if n.Backend == graph.Accel {
			for _, p := range append([]*graph.Tensor{n}, n.Parts...) {
				if p.Op == graph.OpMulMat && p.Src[0].Kind == graph.Weight {
					e.products = append(e.products, p.Src[0])
				}
			}
		}
		for _, s := range n.Inputs() {
			switch {
			case s.Kind != graph.Weight:
			case n.Backend == graph.Accel:
				if !onAccel[s] {
					onAccel[s] = true
					up = append(up, s)
				}
			case n.Op != graph.OpGetRows || s != n.Src[0]:
				cpuReads[s] = true
			}
		}
	}
	slices.SortStableFunc(up, func(a, b *graph.Tensor) int { return cmp.Compare(len(b.Data), len(a.Data)) })
	logged := false
	release := func(w *graph.Tensor) {
		if cpuReads[w] {
			return
		}
		if err := e.release(w.Data); err != nil && !logged && e.opt.Logf != nil {
			// Only memory is at stake: the weights stay correct.
			e.opt.Logf("ocelot: %s: the file's pages of %s stay resident: %v", acc.Name(), w.Name, err)
			logged = true
		}
	}
	for _, w := range up {
		release(w)
	}
	var total, done int64
	for _, w := range up {
		total += int64(len(w.Data))
	}
	for _, w := range up {
		if err := acc.Load(w); err != nil {
			return fmt.Errorf("ocelot: %s: upload %s: %w (try a smaller -ngl)", acc.Name(), w.Name, err)
		}
		release(w)
		if done += int64(len(w.Data)); e.opt.OnLoad != nil {
			e.opt.OnLoad(done, total)
		}
	}
	return nil
}

func (e *graphEngine) backend() string {
	if acc := e.runner.Backends[graph.Accel]; acc != nil && e.policy.NGPULayers > 0 {
		return acc.Name() + "+cpu"
	}
	return "cpu"
}

func (e *graphEngine) device() string {
	if acc := e.runner.Backends[graph.Accel]; acc != nil && e.policy.NGPULayers > 0 {
		return acc.Device()
	}
	return e.runner.Backends[graph.CPU].Device()
}

func (e *graphEngine) kvPlace() string {
	for l := 0; l < e.policy.NLayer; l++ {
		if e.policy.CacheOnAccel(l) {
			return "device memory"
		}
	}
	return "host memory"
}

// dropAccel closes the accelerator and runs everything on the CPU.
func (e *graphEngine) dropAccel() {
	if acc := e.runner.Backends[graph.Accel]; acc != nil {
		for _, w := range e.model.Weights() {
			if w.Bufs[graph.Accel] != nil {
				acc.Free(w)
			}
		}
		acc.Close()
	}
	e.runner.Backends[graph.Accel] = nil
	e.products, e.tuned = nil, nil
	e.policy.Accel, e.policy.Supports, e.policy.NGPULayers = "", nil, 0
	e.opt.NGPULayers = 0
}

func (e *graphEngine) close() error {
	e.ctx.Close()
	if e.pool != nil {
		freeKV(e, e.pool.kv)
		e.pool = nil
	}
	var first error
	for i, b := range e.runner.Backends {
		if b != nil {
			if err := b.Close(); err != nil && first == nil {
				first = err
			}
			e.runner.Backends[i] = nil
		}
	}
	return first
}

// graphSeq is one sequence of the graph engine: the pages of the
// engine's pool it holds and the tokens in them (guarded by e.mu).
type graphSeq struct {
	e          *graphEngine
	pages      []int32   // positions [i*PageCells, (i+1)*PageCells) sit in page pages[i]
	toks       []int32   // the tokens in the cache, by position
	generating bool      // inside Generate: the scheduler waits a moment for its next token
	queued     bool      // a request of it is in the scheduler's queue
	decoded    time.Time // when its last single-token evaluation finished
}

func (e *graphEngine) newSeq() (seq, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.openPool(); err != nil {
		return nil, err
	}
	s := &graphSeq{e: e}
	e.seqs[s] = struct{}{}
	return s, nil
}

func (s *graphSeq) eval(ctx context.Context, tokens []int32, all bool, progress func(done int)) ([][]float32, error) {
	return s.request(&request{s: s, ctx: ctx, tokens: tokens, all: all}, progress)
}

func (s *graphSeq) hidden(ctx context.Context, tokens []int32) ([][]float32, error) {
	return s.request(&request{s: s, ctx: ctx, tokens: tokens, hidden: true}, nil)
}

// request submits r, whose tokens must fit the sequence's n_ctx.
func (s *graphSeq) request(r *request, progress func(done int)) ([][]float32, error) {
	pos := s.pos()
	if n := pos + len(r.tokens); n > s.e.opt.NCtx {
		return nil, fmt.Errorf("ocelot: %d tokens after %d cached need %d positions, but n_ctx is %d", len(r.tokens), pos, n, s.e.opt.NCtx)
	}
	err := s.e.submit(r, progress)
	return r.out, err
}

// rowBytes is the byte size of one cell's row of a cache tensor.
func rowBytes(t *graph.Tensor) int {
	return int(t.Bytes() / int64(t.Shape[1]))
}

func (s *graphSeq) exportKV(n int) (k, v [][]byte, err error) {
	e := s.e
	err = e.exclusive(func() error {
		for l := range e.pool.kv.K {
			b := e.cacheBackend(l)
			for i, t := range []*graph.Tensor{e.pool.kv.K[l], e.pool.kv.V[l]} {
				buf := make([]byte, t.Bytes())
				if err := b.Download(t, buf); err != nil {
					return fmt.Errorf("ocelot: %s: read %s: %w", b.Name(), t.Name, err)
				}
				rb := rowBytes(t)
				rows := make([]byte, n*rb)
				s.pageRuns(n, func(pos, cell, cells int) {
					copy(rows[pos*rb:], buf[cell*rb:(cell+cells)*rb])
				})
				if i == 0 {
					k = append(k, rows)
				} else {
					v = append(v, rows)
				}
			}
		}
		return nil
	})
	return k, v, err
}

func (s *graphSeq) importKV(n int, k, v [][]byte) error {
	e := s.e
	return e.exclusive(func() error {
		e.mu.Lock()
		s.toks = s.toks[:0]
		e.trim(s)
		_, err := e.reserve(s, 0, n) // its own pages, new
		e.mu.Unlock()
		if err != nil {
			return err
		}
		for l := range e.pool.kv.K {
			b := e.cacheBackend(l)
			for i, t := range []*graph.Tensor{e.pool.kv.K[l], e.pool.kv.V[l]} {
				src := k[l]
				if i == 1 {
					src = v[l]
				}
				rb := rowBytes(t)
				if len(src) != n*rb {
					err = fmt.Errorf("ocelot: %s: %d bytes of rows, want %d", t.Name, len(src), n*rb)
				}
				buf := make([]byte, t.Bytes())
				if err == nil {
					err = b.Download(t, buf)
				}
				if err == nil {
					s.pageRuns(n, func(pos, cell, cells int) {
						copy(buf[cell*rb:], src[pos*rb:(pos+cells)*rb])
					})
				}
				if err == nil {
					err = b.Upload(t, buf)
				}
				if err != nil {
					e.mu.Lock()
					e.trim(s)
					e.mu.Unlock()
					return fmt.Errorf("ocelot: %s: write %s: %w", b.Name(), t.Name, err)
				}
			}
		}
		// The tokens themselves are the session's to know; the positions
		// are filled (prefix sharing never matches these placeholders: -1
		// is no token id).
		e.mu.Lock()
		defer e.mu.Unlock()
		for range n {
			s.toks = append(s.toks, -1)
		}
		return nil
	})
}

// pageRuns calls f for each run of consecutive cells holding positions
// [0, n) of the sequence: its first position, first cell and length.
func (s *graphSeq) pageRuns(n int, f func(pos, cell, cells int)) {
	for j := 0; j < n; j += graph.PageCells {
		f(j, int(s.pages[j/graph.PageCells])*graph.PageCells, min(graph.PageCells, n-j))
	}
}

func (s *graphSeq) pos() int {
	s.e.mu.Lock()
	defer s.e.mu.Unlock()
	return len(s.toks)
}

func (s *graphSeq) truncate(n int) {
	s.e.mu.Lock()
	defer s.e.mu.Unlock()
	s.toks = s.toks[:min(n, len(s.toks))]
	s.e.trim(s)
}

func (s *graphSeq) reset() { s.truncate(0) }

func (s *graphSeq) close() {
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.seqs[s]; !ok {
		return
	}
	s.toks = s.toks[:0]
	e.trim(s)
	delete(e.seqs, s)
	e.cond.Broadcast() // a step may be waiting for it
}

// fork returns a new sequence holding this one's first n positions: it
// shares their pages, which are copied only when one of the two writes
// into a shared page.
func (s *graphSeq) fork(n int) (seq, error) {
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	n = min(n, len(s.toks))
	f := &graphSeq{e: e, toks: slices.Clone(s.toks[:n]), pages: slices.Clone(s.pages[:pagesFor(n)])}
	for _, pg := range f.pages {
		e.pool.refs[pg]++
	}
	e.seqs[f] = struct{}{}
	return f, nil
}

// adopt looks for the live sequence sharing the longest prefix with
// tokens (at most all but the last of them) and, where that is longer
// than what this one holds, replaces this sequence by that prefix,
// sharing its pages (the prompt cache across sessions). It returns the
// positions this sequence now holds that match tokens.
func (s *graphSeq) adopt(tokens []int32) int {
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	own := commonPrefix(s.toks, tokens)
	if e.opt.NoPrefixReuse {
		return own
	}
	limit := len(tokens) - 1
	best, from := 0, (*graphSeq)(nil)
	for d := range e.seqs {
		if d == s {
			continue
		}
		if n := min(commonPrefix(d.toks, tokens), limit); n > best {
			best, from = n, d
		}
	}
	if from == nil || best <= own {
		return own
	}
	s.toks = s.toks[:0]
	e.trim(s)
	s.toks = append(s.toks, from.toks[:best]...)
	s.pages = append(s.pages[:0], from.pages[:pagesFor(best)]...)
	for _, pg := range s.pages {
		e.pool.refs[pg]++
	}
	return best
}

func commonPrefix(a, b []int32) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// busy marks the sequence as generating (or not): while it is, the
// scheduler waits a moment for its next token before it runs a step.
func (s *graphSeq) busy(on bool) {
	s.e.mu.Lock()
	defer s.e.mu.Unlock()
	s.setGenerating(on)
}

func (s *graphSeq) setGenerating(on bool) {
	if s.generating != on {
		s.generating = on
		s.e.cond.Broadcast()
	}
}

// DumpGraph prints the scheduled graph of a micro-batch of n tokens, with
// each op's placement (the reference engine has no graph).
func (m *Model) DumpGraph(w io.Writer, n int) error {
	e, ok := m.eng.(*graphEngine)
	if !ok {
		return fmt.Errorf("ocelot: backend %s runs no op graph (use --backend cpu, opencl or auto)", m.eng.backend())
	}
	n = max(n, 1)
	if n > e.opt.NCtx {
		return fmt.Errorf("ocelot: a micro-batch of %d tokens exceeds n_ctx %d", n, e.opt.NCtx)
	}
	// The graph stands for a session's first micro-batch: refuse it where
	// a session's cache would not fit, before building inputs of n tokens.
	c := e.model.Config
	if err := checkKVFits(c, n, c.NLayer, e.opt.typeK, e.opt.typeV, accel.HostMemory().Free, "host memory"); err != nil {
		return err
	}
	kv := graph.NewKV(c, n, e.opt.typeK, e.opt.typeV)
	g, err := graph.Build(e.model, kv, make([]int32, n), 0, model.LogitsLast)
	if err != nil {
		return err
	}
	if err := graph.Schedule(g, e.policy); err != nil {
		return err
	}
	e.runner.Fuse(g)
	g.Dump(w)
	return nil
}

// autoLayers counts how many layers, from the last down (and the output
// layer first), fit 90% of the accelerator's free memory with their KV
// cache and a scratch allowance. Without an accelerator it is 0; an
// accelerator that cannot say its memory gets everything.
func autoLayers(net *model.Model, acc accel.Backend, opt *Options) int {
	if acc == nil {
		return 0
	}
	free := acc.Memory().Free
	if free <= 0 {
		return net.NLayer + 1
	}
	budget := free * 9 / 10
	kvPerLayer, _ := model.KVBytes(net.Config, pagesFor(opt.NCtx)*graph.PageCells*opt.Parallel, 1, opt.typeK, opt.typeV)
	// Scratch: the largest activations of a micro-batch, a few times over.
	scratch, err := quant.MulSize(int64(opt.NUbatch), int64(max(net.NFF, net.NVocab)), 4*4)
	if err != nil {
		return 0
	}
	used := scratch
	outBytes := int64(len(net.Output.Data)) + int64(4*len(net.OutputNorm))
	if used+outBytes > budget {
		return 0
	}
	used += outBytes
	n := 0
	for l := net.NLayer - 1; l >= 0; l-- {
		ly := net.Layers[l]
		b := kvPerLayer
		for _, w := range []*model.Weight{ly.Wq, ly.Wk, ly.Wv, ly.Wo, ly.WGate, ly.WUp, ly.WDown} {
			b += int64(len(w.Data))
		}
		if used+b > budget {
			return n
		}
		used += b
		n++
	}
	return net.NLayer + 1
}
