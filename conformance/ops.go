package conformance

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/ocelot-llm/ocelot/accel"
	"github.com/ocelot-llm/ocelot/graph"
	"github.com/ocelot-llm/ocelot/quant"
	"github.com/ocelot-llm/ocelot/ref"
)

// Case is one op compared on one backend.
type Case struct {
	Op        string  `json:"op"`
	Shape     string  `json:"shape"`
	Type      string  `json:"type"`
	Backend   string  `json:"backend"`
	NMSE      float64 `json:"nmse"`
	Threshold float64 `json:"threshold"`
	Pass      bool    `json:"pass"`
	// Detail says what went wrong: the worst element, NaNs, damaged guard
	// bands, or the backend's error.
	Detail string `json:"detail,omitempty"`
	// Skipped cases are ops the backend says it does not support: the
	// scheduler runs those on the CPU, so they are not failures.
	Skipped bool `json:"skipped,omitempty"`
}

// errUnsupported marks a node the backend declines.
var errUnsupported = errors.New("not supported by this backend (the scheduler runs it on the CPU)")

// guardFloats is the size of the guard bands written around an op's
// output; a backend that writes past its output damages them.
const guardFloats = 256

// guardValue is the pattern guard bands hold.
func guardValue(i int) float32 { return float32(i%97) - 1234.5 }

// opEnv runs single ops on one backend.
type opEnv struct {
	b    accel.Backend
	slot int
	rng  *rand.Rand
}

func (e *opEnv) randn(n int, scale float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(e.rng.NormFloat64()) * scale
	}
	return v
}

// act makes an f32 activation tensor [width, rows] that the harness writes
// into the arena.
func act(name string, width, rows int) *graph.Tensor {
	return &graph.Tensor{Name: name, Op: graph.OpCpy, Type: quant.F32, Shape: [4]int{width, rows, 1, 1}, Kind: graph.Intermediate}
}

// leaf makes a weight leaf holding v converted to type t.
func leaf(name string, t quant.Type, width, rows int, v []float32) (*graph.Tensor, error) {
	n, err := quant.RowSize(t, int64(width))
	if err != nil {
		return nil, err
	}
	data := make([]byte, n*int64(rows))
	if err := quant.Quantize(t, data, v); err != nil {
		return nil, err
	}
	return &graph.Tensor{Name: name, Type: t, Shape: [4]int{width, rows, 1, 1}, Kind: graph.Weight, Data: data}, nil
}

// dequant returns a leaf's values as the backend should see them.
func dequant(t *graph.Tensor) []float32 {
	v := make([]float32, t.Elements())
	if err := quant.Dequantize(t.Type, v, t.Data); err != nil {
		panic(err) // leaves are made by leaf(); their sizes are right
	}
	return v
}

// run places node and its activation sources in a fresh arena with guard
// bands around the output, writes the sources, computes the node and
// returns its output.
func (e *opEnv) run(node *graph.Tensor, srcs map[*graph.Tensor][]float32) (out []float32, detail string, err error) {
	if !e.b.Supports(node) {
		return nil, "", errUnsupported
	}
	var order []*graph.Tensor
	for _, s := range node.Src {
		if s != nil && s.Kind == graph.Intermediate {
			order = append(order, s)
		}
	}
	guardA := act("guard_before", guardFloats, 1)
	guardB := act("guard_after", guardFloats, 1)
	order = append(order, guardA, node, guardB)
	var off int64
	for _, t := range order {
		t.Backend, t.Offset = e.slot, off
		off += (t.Bytes() + 255) / 256 * 256
	}
	for _, s := range node.Src {
		if s != nil && (s.Kind == graph.Weight || s.Kind == graph.Cache) && s.Bufs[e.slot] == nil {
			if err := e.b.Load(s); err != nil {
				return nil, "", fmt.Errorf("load %s: %w", s.Name, err)
			}
			defer e.b.Free(s)
		}
	}
	arena, err := e.b.NewArena(off)
	if err != nil {
		return nil, "", fmt.Errorf("arena: %w", err)
	}
	defer arena.Free()
	guard := make([]float32, guardFloats)
	for i := range guard {
		guard[i] = guardValue(i)
	}
	for _, t := range []*graph.Tensor{guardA, guardB} {
		if err := e.b.Write(arena, t, guard); err != nil {
			return nil, "", fmt.Errorf("write guard: %w", err)
		}
	}
	for t, v := range srcs {
		if err := e.b.Write(arena, t, v); err != nil {
			return nil, "", fmt.Errorf("write %s: %w", t.Name, err)
		}
	}
	if err := e.b.Compute(arena, []*graph.Tensor{node}); err != nil {
		return nil, "", err
	}
	if node.Op != graph.OpSetRows {
		out = make([]float32, node.Elements())
		if err := e.b.Read(arena, node, out); err != nil {
			return nil, "", fmt.Errorf("read: %w", err)
		}
	}
	if err := e.b.Sync(); err != nil {
		return nil, "", err
	}
	for _, t := range []*graph.Tensor{guardA, guardB} {
		got := make([]float32, guardFloats)
		if err := e.b.Read(arena, t, got); err != nil {
			return nil, "", fmt.Errorf("read guard: %w", err)
		}
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(guardValue(i)) {
				return out, fmt.Sprintf("out-of-bounds write: %s damaged at float %d (%v)", t.Name, i, got[i]), nil
			}
		}
	}
	return out, "", nil
}

// check fills in a case from a reference and a result.
func check(c *Case, want, got []float32, detail string, err error) {
	switch {
	case errors.Is(err, errUnsupported):
		c.Skipped, c.Pass, c.Detail = true, true, err.Error()
		return
	case err != nil:
		c.NMSE, c.Detail = math.Inf(1), err.Error()
	case detail != "":
		c.NMSE, c.Detail = NMSE(want, got), detail
	default:
		c.NMSE = NMSE(want, got)
		if n := NonFinite(got); n > NonFinite(want) {
			c.Detail = fmt.Sprintf("%d NaN/Inf values", n)
			c.NMSE = math.Inf(1)
		} else if c.NMSE > c.Threshold {
			i, r, g := worst(want, got)
			c.Detail = fmt.Sprintf("worst at element %d: ref %.6g, got %.6g", i, r, g)
		}
	}
	c.Pass = c.Detail == "" && c.NMSE <= c.Threshold
}

func shapeStr(dims ...int) string {
	s := "["
	for i, d := range dims {
		if i > 0 {
			s += ","
		}
		s += fmt.Sprint(d)
	}
	return s + "]"
}

func (e *opEnv) newCase(op graph.Op, typ string, thr float64, dims ...int) Case {
	return Case{Op: op.String(), Shape: shapeStr(dims...), Type: typ, Backend: e.b.Name(), Threshold: thr}
}

// getRows: rows of a table of any type, looked up by id.
func (e *opEnv) getRows(t quant.Type, width, rows, n int) Case {
	c := e.newCase(graph.OpGetRows, t.String(), ExactNMSE, width, rows, n)
	table, err := leaf("table", t, width, rows, e.randn(width*rows, 1))
	if err != nil {
		check(&c, nil, nil, "", err)
		return c
	}
	ids := make([]int32, n)
	for i := range ids {
		ids[i] = int32(e.rng.IntN(rows))
	}
	in := &graph.Tensor{Name: "ids", Type: graph.I32, Shape: [4]int{n, 1, 1, 1}, Kind: graph.Input, I32s: ids}
	node := &graph.Tensor{Name: "get_rows", Op: graph.OpGetRows, Type: quant.F32, Shape: [4]int{width, n, 1, 1}, Src: [4]*graph.Tensor{table, in}}
	all := dequant(table)
	want := make([]float32, 0, width*n)
	for _, id := range ids {
		want = append(want, all[int(id)*width:(int(id)+1)*width]...)
	}
	got, detail, err := e.run(node, nil)
	check(&c, want, got, detail, err)
	return c
}

// unary runs RMS_NORM; binary runs ADD, MUL (optionally broadcast) and
// SWIGLU.
func (e *opEnv) rmsNorm(width, rows int) Case {
	c := e.newCase(graph.OpRMSNorm, "f32", ExactNMSE, width, rows)
	x := act("x", width, rows)
	xv := e.randn(width*rows, 3)
	node := &graph.Tensor{Name: "rms_norm", Op: graph.OpRMSNorm, Type: quant.F32, Shape: x.Shape, Src: [4]*graph.Tensor{x}, Param: graph.Params{Eps: 1e-5}}
	ones := make([]float32, width)
	for i := range ones {
		ones[i] = 1
	}
	want := make([]float32, width*rows)
	for r := 0; r < rows; r++ {
		ref.RMSNorm(want[r*width:(r+1)*width], xv[r*width:(r+1)*width], ones, 1e-5)
	}
	got, detail, err := e.run(node, map[*graph.Tensor][]float32{x: xv})
	check(&c, want, got, detail, err)
	return c
}

func (e *opEnv) binary(op graph.Op, width, rows int, broadcast bool) Case {
	typ := "f32"
	if broadcast {
		typ = "f32,bcast"
	}
	c := e.newCase(op, typ, ExactNMSE, width, rows)
	a := act("a", width, rows)
	av, bv := e.randn(width*rows, 1), e.randn(width*rows, 1)
	var b *graph.Tensor
	srcs := map[*graph.Tensor][]float32{a: av}
	if broadcast {
		bv = bv[:width]
		var err error
		if b, err = leaf("w", quant.F32, width, 1, bv); err != nil {
			check(&c, nil, nil, "", err)
			return c
		}
	} else {
		b = act("b", width, rows)
		srcs[b] = bv
	}
	node := &graph.Tensor{Name: op.String(), Op: op, Type: quant.F32, Shape: a.Shape, Src: [4]*graph.Tensor{a, b}}
	want := make([]float32, width*rows)
	for i := range want {
		y := bv[i%len(bv)]
		switch op {
		case graph.OpAdd:
			want[i] = av[i] + y
		case graph.OpMul:
			want[i] = av[i] * y
		case graph.OpSwiGLU:
			want[i] = ref.SiLU(av[i]) * y
		}
	}
	got, detail, err := e.run(node, srcs)
	check(&c, want, got, detail, err)
	return c
}

// mulMat: a k×m weight of type t times n activation rows.
func (e *opEnv) mulMat(t quant.Type, k, m, n int) Case {
	c := e.newCase(graph.OpMulMat, t.String(), MatMulNMSE, k, m, n)
	w, err := leaf("w", t, k, m, e.randn(k*m, 0.05))
	if err != nil {
		check(&c, nil, nil, "", err)
		return c
	}
	x := act("x", k, n)
	xv := e.randn(k*n, 1)
	node := &graph.Tensor{Name: "mul_mat", Op: graph.OpMulMat, Type: quant.F32, Shape: [4]int{m, n, 1, 1}, Src: [4]*graph.Tensor{w, x}}
	wv := dequant(w)
	want := make([]float32, m*n)
	for j := 0; j < n; j++ {
		for i := 0; i < m; i++ {
			var s float64
			for l := 0; l < k; l++ {
				s += float64(wv[i*k+l]) * float64(xv[j*k+l])
			}
			want[j*m+i] = float32(s)
		}
	}
	got, detail, err := e.run(node, map[*graph.Tensor][]float32{x: xv})
	check(&c, want, got, detail, err)
	return c
}

// rope: n rows of nHead heads of headDim, at positions from pos0, with or
// without frequency divisors.
func (e *opEnv) rope(headDim, nHead, n, pos0 int, freqs bool) Case {
	typ := "f32"
	if freqs {
		typ = "f32,freqs"
	}
	c := e.newCase(graph.OpRope, typ, RopeNMSE, headDim*nHead, n, pos0)
	x := act("x", headDim*nHead, n)
	xv := e.randn(headDim*nHead*n, 1)
	pos := make([]int32, n)
	for i := range pos {
		pos[i] = int32(pos0 + i)
	}
	in := &graph.Tensor{Name: "pos", Type: graph.I32, Shape: [4]int{n, 1, 1, 1}, Kind: graph.Input, I32s: pos}
	var ff *graph.Tensor
	var fv []float32
	if freqs {
		fv = make([]float32, headDim/2)
		for i := range fv {
			fv[i] = 1 + 7*float32(i)/float32(len(fv))
		}
		var err error
		if ff, err = leaf("freqs", quant.F32, headDim/2, 1, fv); err != nil {
			check(&c, nil, nil, "", err)
			return c
		}
	}
	node := &graph.Tensor{Name: "rope", Op: graph.OpRope, Type: quant.F32, Shape: x.Shape, Src: [4]*graph.Tensor{x, in, ff},
		Param: graph.Params{RopeBase: 500000, HeadDim: headDim}}
	want := append([]float32(nil), xv...)
	w := headDim * nHead
	for t := 0; t < n; t++ {
		ref.Rope(want[t*w:(t+1)*w], headDim, pos0+t, 500000, fv)
	}
	got, detail, err := e.run(node, map[*graph.Tensor][]float32{x: xv})
	check(&c, want, got, detail, err)
	return c
}

// setRows: n rows written into a cache of the given type at scattered
// cells; the cache's bytes must equal quant.Quantize's.
func (e *opEnv) setRows(t quant.Type, width, cells, n int) Case {
	c := e.newCase(graph.OpSetRows, t.String(), ExactNMSE, width, cells, n)
	rowBytes, err := quant.RowSize(t, int64(width))
	if err != nil {
		check(&c, nil, nil, "", err)
		return c
	}
	cache := &graph.Tensor{Name: "cache", Type: t, Shape: [4]int{width, cells, 1, 1}, Kind: graph.Cache}
	x := act("x", width, n)
	xv := e.randn(width*n, 2)
	perm := e.rng.Perm(cells)[:n]
	idx := make([]int32, n)
	for i := range idx {
		idx[i] = int32(perm[i])
	}
	in := &graph.Tensor{Name: "cells", Type: graph.I32, Shape: [4]int{n, 1, 1, 1}, Kind: graph.Input, I32s: idx}
	node := &graph.Tensor{Name: "set_rows", Op: graph.OpSetRows, Type: t, Shape: cache.Shape, Src: [4]*graph.Tensor{x, cache, in}}
	wantBytes := make([]byte, rowBytes*int64(cells))
	for i, cell := range idx {
		quant.Quantize(t, wantBytes[int64(cell)*rowBytes:int64(cell+1)*rowBytes], xv[i*width:(i+1)*width])
	}
	if !e.b.Supports(node) {
		check(&c, nil, nil, "", errUnsupported)
		return c
	}
	if err := e.b.Load(cache); err != nil {
		check(&c, nil, nil, "", err)
		return c
	}
	defer e.b.Free(cache)
	_, detail, err := e.run(node, map[*graph.Tensor][]float32{x: xv})
	gotBytes := make([]byte, len(wantBytes))
	if err == nil {
		err = e.b.Download(cache, gotBytes)
	}
	want, got := make([]float32, width*cells), make([]float32, width*cells)
	quant.Dequantize(t, want, wantBytes)
	quant.Dequantize(t, got, gotBytes)
	if err == nil && detail == "" {
		for i := range wantBytes {
			if wantBytes[i] != gotBytes[i] {
				detail = fmt.Sprintf("cache bytes differ from quant.Quantize's at byte %d (row %d)", i, int64(i)/rowBytes)
				break
			}
		}
	}
	check(&c, want, got, detail, err)
	return c
}

// attention: n queries at positions pos0.. against caches of the given
// types holding pos0+n cells.
func (e *opEnv) attention(tk, tv quant.Type, headDim, nHead, nHeadKV, n, pos0 int) Case {
	typ := tk.String() + "/" + tv.String()
	c := e.newCase(graph.OpAttention, typ, QuantizedNMSE, headDim, nHead, nHeadKV, n, pos0)
	cells := pos0 + n
	width := headDim * nHeadKV
	kd, vd := e.randn(width*cells, 1), e.randn(width*cells, 1)
	kc, err := leaf("k", tk, width, cells, kd)
	if err == nil {
		var vc *graph.Tensor
		if vc, err = leaf("v", tv, width, cells, vd); err == nil {
			kc.Kind, vc.Kind = graph.Cache, graph.Cache
			c2 := e.attentionRun(c, kc, vc, headDim, nHead, nHeadKV, n, pos0)
			return c2
		}
	}
	check(&c, nil, nil, "", err)
	return c
}

func (e *opEnv) attentionRun(c Case, kc, vc *graph.Tensor, headDim, nHead, nHeadKV, n, pos0 int) Case {
	q := act("q", headDim*nHead, n)
	qv := e.randn(headDim*nHead*n, 1)
	node := &graph.Tensor{Name: "attention", Op: graph.OpAttention, Type: quant.F32, Shape: q.Shape, Src: [4]*graph.Tensor{q, kc, vc, graph.SeqIndex(pos0, n)},
		Param: graph.Params{HeadDim: headDim, NHead: nHead, NHeadKV: nHeadKV, Page: graph.PageCells, NKV: pos0 + n, Scale: float32(1 / math.Sqrt(float64(headDim)))}}
	if !e.b.Supports(node) {
		check(&c, nil, nil, "", errUnsupported)
		return c
	}
	if err := e.b.Load(kc); err != nil {
		check(&c, nil, nil, "", err)
		return c
	}
	defer e.b.Free(kc)
	if err := e.b.Load(vc); err != nil {
		check(&c, nil, nil, "", err)
		return c
	}
	defer e.b.Free(vc)
	// Caches are loaded zeroed; put the data in.
	if err := e.b.Upload(kc, kc.Data); err != nil {
		check(&c, nil, nil, "", err)
		return c
	}
	if err := e.b.Upload(vc, vc.Data); err != nil {
		check(&c, nil, nil, "", err)
		return c
	}
	qrows := make([][]float32, n)
	want := make([][]float32, n)
	for t := range qrows {
		qrows[t] = qv[t*headDim*nHead : (t+1)*headDim*nHead]
		want[t] = make([]float32, headDim*nHead)
	}
	ref.Attention(want, qrows, dequant(kc), dequant(vc), pos0, nHead, nHeadKV, headDim, 1)
	flat := make([]float32, 0, n*headDim*nHead)
	for _, r := range want {
		flat = append(flat, r...)
	}
	got, detail, err := e.run(node, map[*graph.Tensor][]float32{q: qv})
	check(&c, flat, got, detail, err)
	return c
}

// roundTrip checks download(upload(x)) for a weight of every type.
func (e *opEnv) roundTrip(t quant.Type, width, rows int) Case {
	c := e.newCase(graph.OpCpy, t.String(), 0, width, rows)
	c.Op = "UPLOAD/DOWNLOAD"
	w, err := leaf("w", t, width, rows, e.randn(width*rows, 1))
	if err != nil {
		check(&c, nil, nil, "", err)
		return c
	}
	if err := e.b.Load(w); err != nil {
		check(&c, nil, nil, "", err)
		return c
	}
	defer e.b.Free(w)
	got := make([]byte, len(w.Data))
	err = e.b.Download(w, got)
	detail := ""
	for i := range got {
		if err == nil && got[i] != w.Data[i] {
			detail = fmt.Sprintf("byte %d differs: uploaded %#02x, downloaded %#02x", i, w.Data[i], got[i])
			break
		}
	}
	check(&c, dequant(w), dequantBytes(t, got), detail, err)
	return c
}

func dequantBytes(t quant.Type, b []byte) []float32 {
	blockBytes, _ := quant.RowSize(t, int64(t.BlockSize()))
	v := make([]float32, int64(len(b))/blockBytes*int64(t.BlockSize()))
	quant.Dequantize(t, v, b)
	return v
}
