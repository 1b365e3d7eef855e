package opencl

// The tuner. No fixed choice of GEMV or GEMM shape is fast on Adreno,
// Mali, Intel, AMD, NVIDIA and a CPU driver at once, so the backend
// measures on the device itself, with the model's own products: for each
// weight type and token class (one token, a few, a prompt) it runs the
// untuned choice and every candidate, checks each one's output against
// the generic GEMV (mul_mv1_*, mul_mv_*) within the conformance suite's
// matrix-product threshold, times the correct ones and keeps the fastest.
// The result is cached per device, driver, kernel variant, kernel source
// and the model's product shapes, beside the program binaries.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ocelot-llm/ocelot/accel"
	"github.com/ocelot-llm/ocelot/graph"
	"github.com/ocelot-llm/ocelot/internal/metric"
	"github.com/ocelot-llm/ocelot/quant"
)

// prodClass is a product's token class: each is tuned on its own.
type prodClass uint8

const (
	classOne  prodClass = iota // one token (decode)
	classFew                   // 2 to mmMin-1 tokens (batched decode, small micro-batches)
	classMany                  // mmMin tokens or more (prompts)
)

var classNames = [...]string{"one", "few", "many"}

func (c prodClass) String() string { return classNames[c] }

// prodKey is one decision of the tuner.
type prodKey struct {
	typ   quant.Type
	class prodClass
}

// vrKernel is one product kernel the tuner may choose: a shape of the
// vector-rows product (mul_vr in kernels.cl: rows per work-item and
// tokens per pass) or, gemm set, the wider tiled GEMM (mul_mm64_*).
type vrKernel struct {
	name         string // the kernel's name without the type suffix
	rows, tokens int
	gemm         bool
}

// vrKernels are the shapes kernels.cl instantiates (mul_vr<R>[x<T>]_*,
// mul_mm64_*).
var vrKernels = []vrKernel{{"mul_vr1", 1, 1, false}, {"mul_vr2", 2, 1, false}, {"mul_vr4", 4, 1, false},
	{"mul_vr2x4", 2, 4, false}, {"mul_vr4x2", 4, 2, false}, {"mul_mm64", mmTM, mmTN64, true}}

// vrTypes are the weight types mul_vr has kernels for.
var vrTypes = []quant.Type{quant.F32, quant.F16, quant.Q4_0, quant.Q8_0, quant.Q6_K}

// vrLocals are the local sizes tried for mul_vr (capped by the kernel's
// limit): a CPU driver runs a work-group per thread, where the group's
// size sets the grain of the work; a GPU wants whole warps.
var vrLocals = []int{1, 8, 64}

// prodChoice is a product kernel the tuner chose for one prodKey.
type prodChoice struct {
	vr    vrKernel
	local int
}

func (c prodChoice) String() string { return fmt.Sprintf("%s/%d", c.vr.name, c.local) }

// classOf is the token class of a product of rows tokens.
func (b *Backend) classOf(rows int) prodClass {
	switch {
	case rows <= 1:
		return classOne
	case rows < b.tune.mmMin:
		return classFew
	}
	return classMany
}

// tunedProd returns the tuner's kernel for products of weights of type t
// and rows tokens, if it chose one over the untuned paths.
func (b *Backend) tunedProd(t quant.Type, rows int) (prodChoice, bool) {
	c, ok := b.tune.prod[prodKey{t, b.classOf(rows)}]
	return c, ok
}

// untuned says whether products of type t and rows tokens take the
// built-in paths (row-group GEMV and its fusions, GEMMs): the tuner chose
// no other kernel for them.
func (b *Backend) untuned(t quant.Type, rows int) bool {
	_, ok := b.tunedProd(t, rows)
	return !ok
}

// mulMatVR enqueues product n (weights at s, activations at x, output at
// y) with the tuner's vector-rows kernel c.
func (b *Backend) mulMatVR(c prodChoice, w *graph.Tensor, s, x, y loc, rows int) error {
	k, m := w.Shape[0], w.Shape[1]
	if c.vr.gemm {
		return b.launch(c.vr.name+"_"+kernelSuffix(w.Type), [2]int{m, (rows + c.vr.tokens - 1) / c.vr.tokens}, [2]int{mmTM, 1},
			s.mem, s.off[0], s.off[1], s.off[2], s.off[3], x.mem, x.off[0], y.mem, y.off[0], uint32(k), uint32(m), uint32(rows),
			localMem(4*32*(mmTM+1)), localMem(4*32*(c.vr.tokens+1)))
	}
	return b.launch(c.vr.name+"_"+kernelSuffix(w.Type), [2]int{(m + c.vr.rows - 1) / c.vr.rows, 1}, [2]int{c.local, 1},
		s.mem, s.off[0], s.off[1], s.off[2], s.off[3], x.mem, x.off[0], y.mem, y.off[0], uint32(k), uint32(m), uint32(rows))
}

// tuneShape is one distinct product of the model: a resident weight of
// its shape and how many of that shape one forward pass runs.
type tuneShape struct {
	w     *graph.Tensor
	count int
}

// tuneShapes groups the resident matrices among weights by type and shape.
func tuneShapes(weights []*graph.Tensor) []tuneShape {
	var out []tuneShape
	index := map[string]int{}
	for _, w := range weights {
		if devOf(w) == nil || w.Shape[2] != 1 || w.Shape[3] != 1 || w.Shape[1] < 2 {
			continue
		}
		key := fmt.Sprintf("%s:%dx%d", w.Type, w.Shape[0], w.Shape[1])
		if i, ok := index[key]; ok {
			out[i].count++
			continue
		}
		index[key] = len(out)
		out = append(out, tuneShape{w, 1})
	}
	// Largest first: the decisions that matter most are measured first
	// (a quick tune's budget may end before the rest).
	sort.SliceStable(out, func(i, j int) bool {
		return len(out[i].w.Data)*out[i].count > len(out[j].w.Data)*out[j].count
	})
	return out
}

// shapesKey names a set of product shapes in the cache: types, shapes
// and counts, sorted.
func shapesKey(shapes []tuneShape) string {
	var f []string
	for _, s := range shapes {
		f = append(f, fmt.Sprintf("%s:%dx%d*%d", s.w.Type, s.w.Shape[0], s.w.Shape[1], s.count))
	}
	sort.Strings(f)
	return strings.Join(f, ",")
}

// tuneVersion is the cache file's format; files of another are ignored.
const tuneVersion = 1

// tuneFile is a cached tuning result.
type tuneFile struct {
	Version  int             `json:"version"`
	Device   string          `json:"device"`
	Platform string          `json:"platform"`
	Driver   string          `json:"driver"`
	Variant  string          `json:"variant"`
	Model    string          `json:"model,omitempty"`
	Shapes   string          `json:"shapes"`
	Quick    bool            `json:"quick"`
	Partial  bool            `json:"partial,omitempty"`
	When     time.Time       `json:"when"`
	TookMS   float64         `json:"took_ms"`
	MWGroups int             `json:"mw_groups"`
	MWQ      bool            `json:"int8_few_token,omitempty"`
	Choices  []tuneChoice    `json:"choices"`
	Rows     []accel.TuneRow `json:"rows"`
}

// tuneChoice is one of the tuner's kernel choices in the cache file.
type tuneChoice struct {
	Type   string `json:"type"`
	Class  string `json:"class"`
	Kernel string `json:"kernel"`
	Local  int    `json:"local"`
}

// tuneDir is where tuning results are cached: the binary cache's folder
// (the default one on PoCL too: a result is small and measuring is not),
// none when Options.CacheDir is "-".
func (b *Backend) tuneDir() string {
	switch b.opts.CacheDir {
	case "-":
		return ""
	case "":
		return defaultCacheDir()
	}
	return b.opts.CacheDir
}

// tuneFileName is the cache file for these shapes on this device, driver,
// variant, switches and kernel source.
func (b *Backend) tuneFileName(dir, shapes string) string {
	if dir == "" {
		return ""
	}
	h := sha256.New()
	d := &b.info
	// The switches (b.env) too: they set the untuned choices the
	// candidates are measured against.
	for _, s := range []string{d.Platform, d.PlatformVersion, d.Name, d.Vendor, d.Version, d.Driver, b.variant.options(b.env), fmt.Sprintf("%+v", b.env), kernelSource, shapes} {
		fmt.Fprintf(h, "%d:%s\n", len(s), s)
	}
	return filepath.Join(dir, "tune-"+hex.EncodeToString(h.Sum(nil))[:32]+".json")
}

// tuneConfig is what one measurement runs with: the backend's tuning with
// one decision changed.
type tuneConfig struct {
	name string
	t    tuning
}

// baselineTuning is t with every fast product path off: products run the
// generic GEMV (mul_mv1_*, mul_mv_*), the tuner's reference.
func baselineTuning(t tuning) tuning {
	t.mw, t.mwt, t.mwq, t.gemm, t.tc, t.mmq = false, false, false, false, false, false
	t.prod = nil
	return t
}

// withProd is t with product key k served by c (or, c.vr.name "", by the
// built-in paths).
func withProd(t tuning, k prodKey, c prodChoice) tuning {
	p := make(map[prodKey]prodChoice, len(t.prod)+1)
	for kk, v := range t.prod {
		p[kk] = v
	}
	if c.vr.name == "" {
		delete(p, k)
	} else {
		p[k] = c
	}
	t.prod = p
	return t
}

// tuneCase is one product measured: a shape, a token count, its arena and
// the generic GEMV's output.
type tuneCase struct {
	shape tuneShape
	n     int
	ar    accel.Arena
	node  *graph.Tensor
	want  []float32
	// poison is NaN for every output, written before each candidate runs.
	poison []float32
}

// tuneHook, set by tests, changes a candidate's measured output or time
// (a planted wrong or slow candidate).
var tuneHook func(candidate string, out []float32, took *time.Duration)

// Tune implements accel.Tuner: see the file's comment.
func (b *Backend) Tune(weights []*graph.Tensor, o accel.TuneOptions) (accel.TuneReport, error) {
	start := time.Now()
	rep := accel.TuneReport{Device: b.info.Name, Quick: o.Quick}
	shapes := tuneShapes(weights)
	if len(shapes) == 0 {
		return rep, nil
	}
	key := shapesKey(shapes)
	file := b.tuneFileName(b.tuneDir(), key)
	if !o.Force && file != "" {
		if tf, err := b.readTune(file, key); err == nil {
			if err := b.applyTune(tf); err == nil {
				rep.FromCache, rep.File, rep.Quick, rep.Partial, rep.Rows = true, file, tf.Quick, tf.Partial, tf.Rows
				rep.Took = time.Since(start)
				b.logf("opencl: %s: tuning from the cache (%s) in %v", b.info.Name, file, rep.Took.Round(time.Microsecond))
				return rep, nil
			}
		}
	}
	// Every tune starts from the untuned choices, so that the same
	// candidates are measured whatever an earlier tune chose.
	b.mu.Lock()
	base := b.untunedNow()
	b.tune = base
	b.mu.Unlock()
	rows, partial, err := b.measure(shapes, o, start)
	if err != nil {
		b.setTuning(base)
		return rep, err
	}
	rep.Rows, rep.Partial, rep.Took = rows, partial, time.Since(start)
	// The tuner's launches are not the model's: a profile starts after it.
	b.ResetProfile()
	if file != "" {
		if err := b.writeTune(file, key, o, rep); err != nil {
			b.logf("opencl: could not cache the tuning in %s: %v", file, err)
		} else {
			rep.File = file
		}
	}
	b.logf("opencl: %s: tuned %d decisions in %v (quick %v, partial %v)", b.info.Name, len(rows), rep.Took.Round(time.Millisecond), o.Quick, partial)
	return rep, nil
}

// untunedNow is the tuning before any tuner's choice (b.tune0), with the
// fusion switch as it is now (tests turn it off).
func (b *Backend) untunedNow() tuning {
	t := b.tune0
	t.fuse = b.tune.fuse
	return t
}

func (b *Backend) setTuning(t tuning) {
	b.mu.Lock()
	b.tune = t
	b.mu.Unlock()
}

// measure runs the tuner over the classes and types of shapes and leaves
// b.tune holding the winners.
func (b *Backend) measure(shapes []tuneShape, o accel.TuneOptions, start time.Time) ([]accel.TuneRow, bool, error) {
	type job struct {
		k     prodKey
		n     int
		cases []int // indices into shapes
	}
	var jobs []job
	types := map[quant.Type][]int{}
	var order []quant.Type
	for i, s := range shapes {
		if _, ok := types[s.w.Type]; !ok {
			order = append(order, s.w.Type)
		}
		types[s.w.Type] = append(types[s.w.Type], i)
	}
	// Tokens per product timed: batched decode of 8 sequences, a prompt
	// micro-batch of 128 (quick: 4, and the fewest the prompt path takes).
	few, many := min(8, b.tune.mmMin-1), max(b.tune.mmMin, 128)
	if o.Quick {
		few, many = min(4, b.tune.mmMin-1), b.tune.mmMin
	}
	for _, c := range []struct {
		class prodClass
		n     int
	}{{classOne, 1}, {classMany, many}, {classFew, few}} {
		if c.n < 1 || c.class == classFew && c.n < 2 {
			continue
		}
		for _, t := range order {
			jobs = append(jobs, job{prodKey{t, c.class}, c.n, types[t]})
		}
	}
	// Candidates per job, counted up front for the progress display.
	cands := make([][]tuneConfig, len(jobs))
	total := 0
	for i, j := range jobs {
		cands[i] = b.candidates(j.k, o.Quick)
		total += len(cands[i])
	}
	done := 0
	progress := func() {
		if o.Progress != nil {
			o.Progress(done, total)
		}
	}
	progress()
	reps := 3
	minTime := 30 * time.Millisecond
	if o.Quick {
		reps, minTime = 2, 5*time.Millisecond
	}
	// The cases of one job (its shapes at its token count) are kept
	// while its candidates run, then freed: device memory holds at most
	// one class's activations and outputs at a time.
	cases := map[[2]int]*tuneCase{}
	freeCases := func() {
		for k, c := range cases {
			c.ar.Free()
			delete(cases, k)
		}
	}
	defer freeCases()
	rng := rand.New(rand.NewPCG(5, 8))
	getCase := func(si, n int) (*tuneCase, error) {
		if c := cases[[2]int{si, n}]; c != nil {
			return c, nil
		}
		c, err := b.newTuneCase(shapes[si], n, rng)
		if err != nil {
			return nil, err
		}
		cases[[2]int{si, n}] = c
		return c, nil
	}
	var rows []accel.TuneRow
	partial := false
	for ji, j := range jobs {
		// The candidates change this decision of the tuning as it
		// stands now, with the earlier decisions' winners in it.
		cands[ji] = b.candidates(j.k, o.Quick)
		row := accel.TuneRow{Type: j.k.typ.String(), Class: j.k.class.String(), Tokens: j.n}
		for _, si := range j.cases {
			row.Products += shapes[si].count
		}
		best, bestT := -1, time.Duration(math.MaxInt64)
		for ci, cand := range cands[ji] {
			if o.Budget > 0 && time.Since(start) > o.Budget {
				partial = true
				break
			}
			var sum time.Duration
			rejected, stopped := "", false
			for _, si := range j.cases {
				if sum > bestT*3/2 {
					// Already half again slower than the best: the
					// other shapes need not be timed.
					stopped = true
					break
				}
				c, err := getCase(si, j.n)
				if err != nil {
					return nil, false, err
				}
				took, why, err := b.timeCase(c, cand, reps, minTime, bestT)
				if err != nil && (ci == 0 || isDeviceLost(err)) {
					// The default path is what runs untuned: its failure
					// is the device's, as is a lost context.
					return nil, false, err
				}
				if err != nil {
					why = "failed: " + err.Error()
				}
				if why != "" {
					rejected = why
					break
				}
				sum += took * time.Duration(shapes[si].count)
			}
			done++
			progress()
			row.Candidates = append(row.Candidates, accel.TuneCandidate{Name: cand.name, Time: sum, Rejected: rejected, Stopped: stopped})
			if ci == 0 {
				row.Default, row.DefaultTime = cand.name, sum
			}
			if rejected == "" && !stopped && sum < bestT {
				best, bestT = ci, sum
			}
		}
		if best < 0 {
			// Nothing measured (the budget ran out) or all rejected:
			// the untuned choice stays.
			done += len(cands[ji]) - len(row.Candidates)
			progress()
			if len(row.Candidates) > 0 {
				rows = append(rows, row)
			}
			freeCases()
			continue
		}
		row.Chosen, row.ChosenTime = cands[ji][best].name, bestT
		b.setTuning(cands[ji][best].t)
		rows = append(rows, row)
		freeCases()
		if partial {
			done = total
			progress()
			break
		}
	}
	return rows, partial, nil
}

// candidates lists what may serve products of key k, the untuned choice
// first: for one-token Q4_0 products on the row-group GEMV, its row
// groups per work-group; for every type mul_vr has, its shapes and
// local sizes. Each is the current tuning with that one decision changed.
// A quick tune tries only the row-group counts next to the current one
// and the smallest and largest local sizes.
func (b *Backend) candidates(k prodKey, quick bool) []tuneConfig {
	cur := b.tune
	out := []tuneConfig{{name: "default", t: withProd(cur, k, prodChoice{})}}
	// The row-group count is one setting of every row-group kernel, the
	// Q4_0 fusions' included: it is tuned on the Q4_0 products, which
	// are most of them. (Tuned on the Q6_K output product as well, its
	// choice of 2 slowed the 8b preset's fused Q4_0 decode on the H200
	// from 231 to 177 tok/s.)
	if k.class == classOne && cur.mw && k.typ == quant.Q4_0 {
		maxG := b.maxMWGroups()
		for g := 1; g <= maxG; g *= 2 {
			if g == cur.mwGroups || quick && g != cur.mwGroups/2 && g != cur.mwGroups*2 {
				continue
			}
			t := withProd(cur, k, prodChoice{})
			t.mwGroups = g
			out = append(out, tuneConfig{name: fmt.Sprintf("row groups/%d", g), t: t})
		}
	}
	// The few-token GEMV on int8 activations (mul_mwq_* and its fusions)
	// runs on every device with the generic byte dot product, though
	// untuned only NVIDIA takes it (dp4a): elsewhere it is a candidate
	// against the float one. One switch serves Q4_0 and Q6_K, so it is
	// tuned on the Q4_0 products.
	if k.class == classFew && k.typ == quant.Q4_0 && !cur.mwq && b.int8FewCandidate() {
		t := withProd(cur, k, prodChoice{})
		t.mwq = true
		out = append(out, tuneConfig{name: "int8 few-token GEMV", t: t})
	}
	if !slices.Contains(vrTypes, k.typ) {
		return out
	}
	for _, v := range vrKernels {
		if (k.class == classOne) != (v.tokens == 1) && !(k.class == classFew && v.tokens == 1) {
			continue
		}
		kr := b.kernels[v.name+"_"+kernelSuffix(k.typ)]
		if kr == nil {
			continue
		}
		if v.gemm {
			if k.class == classMany && b.gemmFits(kr) {
				c := prodChoice{v, mmTM}
				out = append(out, tuneConfig{name: c.String(), t: withProd(cur, k, c)})
			}
			continue
		}
		seen := map[int]bool{}
		for _, l := range vrLocals {
			if quick && l != vrLocals[0] && l != vrLocals[len(vrLocals)-1] {
				continue
			}
			l = min(l, kr.maxWG, b.info.MaxWorkGroup)
			if seen[l] {
				continue
			}
			seen[l] = true
			c := prodChoice{v, l}
			out = append(out, tuneConfig{name: c.String(), t: withProd(cur, k, c)})
		}
	}
	return out
}

// gemmFits says whether the tiled GEMM kernel kr runs here: a group of
// mmTM work-items and its tiles in local memory.
func (b *Backend) gemmFits(kr *kernel) bool {
	return kr.maxWG >= mmTM && b.info.MaxWorkGroup >= mmTM && b.info.LocalMem >= mm64LocalBytes+1024
}

// maxMWGroups is the most row groups per work-group the row-group GEMV's
// kernels allow here.
func (b *Backend) maxMWGroups() int {
	g := 32
	for _, n := range b.variant.kernelNames() {
		if strings.HasPrefix(n, "mul_mw") && !strings.HasPrefix(n, "mul_mwq") {
			g = min(g, pow2Floor(max(1, min(b.kernels[n].maxWG, b.info.MaxWorkGroup)/32)))
		}
	}
	return g
}

// newTuneCase makes the arena, activations and generic-GEMV output of one
// product of shape s with n tokens.
func (b *Backend) newTuneCase(s tuneShape, n int, rng *rand.Rand) (*tuneCase, error) {
	k, m := s.w.Shape[0], s.w.Shape[1]
	x := &graph.Tensor{Name: "tune.x", Op: graph.OpCpy, Type: quant.F32, Shape: [4]int{k, n, 1, 1}, Kind: graph.Intermediate, Backend: graph.Accel}
	node := &graph.Tensor{Name: "tune.y", Op: graph.OpMulMat, Type: quant.F32, Shape: [4]int{m, n, 1, 1},
		Src: [4]*graph.Tensor{s.w, x}, Kind: graph.Intermediate, Backend: graph.Accel}
	node.Offset = (x.Bytes() + 255) / 256 * 256
	ar, err := b.NewArena(node.Offset + node.Bytes())
	if err != nil {
		return nil, fmt.Errorf("tune %s %dx%d, %d tokens: %w", s.w.Type, k, m, n, err)
	}
	xv := make([]float32, k*n)
	for i := range xv {
		xv[i] = float32(rng.NormFloat64())
	}
	c := &tuneCase{shape: s, n: n, ar: ar, node: node, poison: make([]float32, m*n)}
	for i := range c.poison {
		c.poison[i] = float32(math.NaN())
	}
	if err := b.Write(ar, x, xv); err != nil {
		ar.Free()
		return nil, err
	}
	b.mu.Lock()
	cur := b.tune
	b.tune = baselineTuning(cur)
	b.mu.Unlock()
	c.want, err = b.runCase(c)
	b.setTuning(cur)
	if err != nil {
		ar.Free()
		return nil, fmt.Errorf("tune %s %dx%d, %d tokens: the generic GEMV: %w", s.w.Type, k, m, n, err)
	}
	return c, nil
}

// runCase computes the case's product with the current tuning and reads
// its output.
func (b *Backend) runCase(c *tuneCase) ([]float32, error) {
	if err := b.Compute(c.ar, []*graph.Tensor{c.node}); err != nil {
		return nil, err
	}
	out := make([]float32, c.node.Elements())
	if err := b.Read(c.ar, c.node, out); err != nil {
		return nil, err
	}
	return out, b.Sync()
}

// timeCase checks candidate cand on case c against the generic GEMV and
// times it: the best of reps rounds of enough calls to last minTime, each
// call's time. A call that lasts minTime alone, or whose time already
// makes the candidate three times slower than bound (the best sum of
// another candidate), is not repeated. why says why it was rejected for
// its output ("" if not); err is a failure of an OpenCL call, which ends
// tuning when it is the default path's or the device is lost, and
// rejects the candidate otherwise.
func (b *Backend) timeCase(c *tuneCase, cand tuneConfig, reps int, minTime, bound time.Duration) (took time.Duration, why string, err error) {
	saved := b.tune
	b.setTuning(cand.t)
	defer b.setTuning(saved)
	// The output starts as NaN, so that a candidate that leaves part of
	// it unwritten cannot pass on the generic GEMV's values.
	if err := b.Write(c.ar, c.node, c.poison); err != nil {
		return 0, "", err
	}
	got, err := b.runCase(c) // the first call also compiles the kernel on some drivers
	if err != nil {
		return 0, "", err
	}
	one := func(calls int) (time.Duration, error) {
		t0 := time.Now()
		for range calls {
			if err := b.Compute(c.ar, []*graph.Tensor{c.node}); err != nil {
				return 0, err
			}
		}
		if err := b.Sync(); err != nil {
			return 0, err
		}
		return time.Since(t0) / time.Duration(calls), nil
	}
	first, err := one(1)
	if err != nil {
		return 0, "", err
	}
	var hookT time.Duration
	if tuneHook != nil {
		tuneHook(cand.name, got, &hookT)
	}
	if e := metric.NMSE(c.want, got); !(e <= metric.MatMulNMSE) {
		return 0, fmt.Sprintf("wrong: NMSE %.2g against the generic GEMV", e), nil
	}
	took = first
	if first < minTime && first*time.Duration(c.shape.count) <= 3*bound {
		calls := max(1, int(minTime/max(first, time.Microsecond)))
		for range reps {
			t, err := one(calls)
			if err != nil {
				return 0, "", err
			}
			took = min(took, t)
		}
	}
	return took + hookT, "", nil
}

// isDeviceLost says whether err leaves the device unusable (the context
// is gone), as opposed to one kernel refusing a launch.
func isDeviceLost(err error) bool {
	return IsOutOfMemory(err) || strings.Contains(err.Error(), "CL_OUT_OF_RESOURCES") || strings.Contains(err.Error(), "CL_INVALID_COMMAND_QUEUE")
}

// readTune reads a cached result for shapes from file.
func (b *Backend) readTune(file, shapes string) (*tuneFile, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var tf tuneFile
	if err := json.Unmarshal(data, &tf); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if tf.Version != tuneVersion || tf.Shapes != shapes || tf.Device != b.info.Name || tf.Driver != b.info.Driver || tf.Variant != b.variant.String() {
		return nil, fmt.Errorf("%s: made for other shapes, device, driver or kernels", file)
	}
	return &tf, nil
}

// applyTune takes a cached result's choices, after checking that every
// kernel it names exists here within its limits.
func (b *Backend) applyTune(tf *tuneFile) error {
	t := b.untunedNow()
	if tf.MWGroups >= 1 && tf.MWGroups <= b.maxMWGroups() {
		t.mwGroups = tf.MWGroups
	}
	if tf.MWQ {
		if !b.int8FewCandidate() {
			return fmt.Errorf("cached choice: the int8 few-token GEMV does not run here")
		}
		t.mwq = true
	}
	for _, c := range tf.Choices {
		typ, ok := typeByName(c.Type)
		class := slices.Index(classNames[:], c.Class)
		i := slices.IndexFunc(vrKernels, func(v vrKernel) bool { return v.name == c.Kernel })
		if !ok || class < 0 || i < 0 {
			return fmt.Errorf("cached choice %+v is not a kernel here", c)
		}
		kr := b.kernels[c.Kernel+"_"+kernelSuffix(typ)]
		if kr == nil || c.Local < 1 || c.Local > kr.maxWG || vrKernels[i].gemm && (!b.gemmFits(kr) || c.Local != mmTM) {
			return fmt.Errorf("cached choice %+v is not a kernel here", c)
		}
		t = withProd(t, prodKey{typ, prodClass(class)}, prodChoice{vrKernels[i], c.Local})
	}
	b.setTuning(t)
	return nil
}

func typeByName(s string) (quant.Type, bool) {
	for _, t := range vrTypes {
		if t.String() == s {
			return t, true
		}
	}
	return 0, false
}

// writeTune caches the current choices (b.tune) atomically.
func (b *Backend) writeTune(file, shapes string, o accel.TuneOptions, rep accel.TuneReport) error {
	tf := tuneFile{Version: tuneVersion, Device: b.info.Name, Platform: b.info.Platform, Driver: b.info.Driver,
		Variant: b.variant.String(), Model: o.Model, Shapes: shapes, Quick: o.Quick, Partial: rep.Partial,
		When: time.Now().UTC().Round(time.Second), TookMS: float64(rep.Took.Microseconds()) / 1000,
		MWGroups: b.tune.mwGroups, MWQ: b.tune.mwq && !b.tune0.mwq, Rows: rep.Rows}
	keys := make([]prodKey, 0, len(b.tune.prod))
	for k := range b.tune.prod {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].typ < keys[j].typ || keys[i].typ == keys[j].typ && keys[i].class < keys[j].class
	})
	for _, k := range keys {
		c := b.tune.prod[k]
		tf.Choices = append(tf.Choices, tuneChoice{k.typ.String(), k.class.String(), c.vr.name, c.local})
	}
	data, err := json.MarshalIndent(tf, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(file, append(data, '\n'))
}

// CachedTuning is one tuning result in the cache, as `ocelot devices`
// lists it.
type CachedTuning struct {
	File    string
	Model   string
	Quick   bool
	Partial bool
	When    time.Time
	Choices []string // "q4_0 one: mul_vr4/8", ...
}

// CachedTunings lists the tuning results cached in dir (the default
// folder when dir is "") for device d, newest first.
func CachedTunings(dir string, d DeviceInfo) ([]CachedTuning, error) {
	if dir == "" {
		dir = defaultCacheDir()
	}
	files, err := filepath.Glob(filepath.Join(dir, "tune-*.json"))
	if err != nil {
		return nil, err
	}
	var out []CachedTuning
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var tf tuneFile
		if json.Unmarshal(data, &tf) != nil || tf.Version != tuneVersion || tf.Device != d.Name || tf.Driver != d.Driver || tf.Platform != d.Platform {
			continue
		}
		ct := CachedTuning{File: f, Model: tf.Model, Quick: tf.Quick, Partial: tf.Partial, When: tf.When}
		for _, c := range tf.Choices {
			ct.Choices = append(ct.Choices, fmt.Sprintf("%s %s: %s/%d", c.Type, c.Class, c.Kernel, c.Local))
		}
		if tf.MWGroups != 0 {
			ct.Choices = append(ct.Choices, fmt.Sprintf("row groups/%d", tf.MWGroups))
		}
		if tf.MWQ {
			ct.Choices = append(ct.Choices, "int8 few-token GEMV")
		}
		out = append(out, ct)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].When.After(out[j].When) })
	return out, nil
}

// Paths implements accel.PathForcer: the mul_vr shapes and mul_mm64, each
// of which can serve every product of the types it takes.
func (b *Backend) Paths() []string {
	var out []string
	for _, v := range vrKernels {
		out = append(out, v.name)
	}
	if b.int8FewCandidate() {
		out = append(out, int8FewPath)
	}
	return out
}

// int8FewPath names the few-token GEMV on int8 activations as a forced
// path (where it is not the default already).
const int8FewPath = "mul_mwq"

// int8FewCandidate says whether the few-token GEMV on int8 activations
// can run here though the untuned choice is the float one.
func (b *Backend) int8FewCandidate() bool {
	return b.tune0.mwt && !b.tune0.mwq && b.env.mwq && b.fewKernel("mul_mwq_q4_0")
}

// ForcePath implements accel.PathForcer: path p (a mul_vr shape) serves
// every product of the types it takes, in every token class, with the
// largest local size up to 64 that its kernels allow; "" drops every
// choice of the tuner's.
func (b *Backend) ForcePath(p string) error {
	t := b.untunedNow()
	if p == int8FewPath && b.int8FewCandidate() {
		t.mwq = true
		b.setTuning(t)
		return nil
	}
	if p != "" {
		i := slices.IndexFunc(vrKernels, func(v vrKernel) bool { return v.name == p })
		if i < 0 {
			return errorf("no product path %q (have %v)", p, b.Paths())
		}
		for _, typ := range vrTypes {
			kr := b.kernels[p+"_"+kernelSuffix(typ)]
			if kr == nil || vrKernels[i].gemm && !b.gemmFits(kr) {
				continue
			}
			c := prodChoice{vrKernels[i], pow2Floor(max(1, min(64, kr.maxWG, b.info.MaxWorkGroup)))}
			for class := range classNames {
				t = withProd(t, prodKey{typ, prodClass(class)}, c)
			}
		}
	}
	b.setTuning(t)
	return nil
}
