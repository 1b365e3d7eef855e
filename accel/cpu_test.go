package accel

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/ocelot-llm/ocelot/graph"
	"github.com/ocelot-llm/ocelot/internal/metric"
	"github.com/ocelot-llm/ocelot/model"
	"github.com/ocelot-llm/ocelot/quant"
	"github.com/ocelot-llm/ocelot/ref"
)

// Conformance thresholds on NMSE = mse(want, got) / mse(want, 0).
const (
	exactNMSE = 1e-7 // ops computed in float32 like ref
	quantNMSE = 5e-4 // matmul and attention through quantized activations
)

// precisionNMSE is the limit of a product with quantized weights (or K
// cache) at each precision. int8x2 leaves about 1/250 of int8's rounding
// error, so 1/250² of its NMSE: 5e-4 would hide a broken second term, and
// 1e-7 is the exact ops' limit.
var precisionNMSE = map[Precision]float64{PrecisionInt8: quantNMSE, PrecisionInt8x2: exactNMSE, PrecisionFloat: exactNMSE}

func randFloats(r *rand.Rand, n int, scale float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64() * scale)
	}
	return v
}

// f32In is an f32 intermediate that the test fills with Write (a CPY
// receiver, as the runner's copies are).
func f32In(name string, width, rows int) *graph.Tensor {
	return &graph.Tensor{Name: name, Op: graph.OpCpy, Type: quant.F32, Shape: [4]int{width, rows, 1, 1}}
}

func opNode(op graph.Op, name string, width, rows int, src ...*graph.Tensor) *graph.Tensor {
	n := &graph.Tensor{Name: name, Op: op, Type: quant.F32, Shape: [4]int{width, rows, 1, 1}}
	copy(n.Src[:], src)
	return n
}

func i32In(name string, v []int32) *graph.Tensor {
	return &graph.Tensor{Name: name, Type: graph.I32, Kind: graph.Input, Shape: [4]int{len(v), 1, 1, 1}, I32s: v}
}

// weightLeaf quantizes vals (m rows of k) to typ and makes a loaded weight
// leaf over the bytes, and the model.Weight over the same bytes.
func weightLeaf(t testing.TB, c *CPU, name string, typ quant.Type, k, m int, vals []float32) (*graph.Tensor, *model.Weight) {
	t.Helper()
	rb, err := quant.RowSize(typ, int64(k))
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, int(rb)*m)
	for r := 0; r < m; r++ {
		if err := quant.Quantize(typ, data[r*int(rb):], vals[r*k:(r+1)*k]); err != nil {
			t.Fatal(err)
		}
	}
	w := &graph.Tensor{Name: name, Type: typ, Shape: [4]int{k, m, 1, 1}, Kind: graph.Weight, Data: data}
	if err := c.Load(w); err != nil {
		t.Fatal(err)
	}
	return w, &model.Weight{Name: name, Type: typ, Rows: m, Cols: k, RowBytes: int(rb), Data: data}
}

// runOp lays the intermediates out, writes the inputs, computes the nodes
// and returns the arena.
func runOp(t testing.TB, c *CPU, in map[*graph.Tensor][]float32, nodes ...*graph.Tensor) *cpuArena {
	t.Helper()
	var off int64
	place := func(x *graph.Tensor) {
		x.Offset = off
		off += (x.Bytes() + 255) / 256 * 256
	}
	for x := range in {
		place(x)
	}
	for _, n := range nodes {
		if n.Op != graph.OpSetRows {
			place(n)
		}
	}
	a, err := c.NewArena(off)
	if err != nil {
		t.Fatal(err)
	}
	for x, v := range in {
		if err := c.Write(a, x, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Compute(a, nodes); err != nil {
		t.Fatal(err)
	}
	return a.(*cpuArena)
}

func read(t testing.TB, c *CPU, a Arena, n *graph.Tensor) []float32 {
	t.Helper()
	out := make([]float32, n.Elements())
	if err := c.Read(a, n, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// rows2 splits flat values into rows of width.
func rows2(v []float32, width int) [][]float32 {
	var out [][]float32
	for i := 0; i < len(v); i += width {
		out = append(out, v[i:i+width])
	}
	return out
}

func newTestCPU(t testing.TB, threads int) *CPU {
	c := NewCPU(threads)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestCPUGetRows(t *testing.T) {
	c := newTestCPU(t, 3)
	r := rand.New(rand.NewPCG(1, 2))
	cases := []struct {
		typ   quant.Type
		width int
	}{
		{quant.F32, 1}, {quant.F32, 7}, {quant.F32, 4096},
		{quant.F16, 3}, {quant.F16, 4096}, {quant.BF16, 5}, {quant.BF16, 4096},
		{quant.Q4_0, 32}, {quant.Q4_0, 96}, {quant.Q4_0, 4096},
		{quant.Q8_0, 32}, {quant.Q8_0, 4096},
		{quant.Q6_K, 256}, {quant.Q6_K, 4096},
	}
	for _, tc := range cases {
		for _, n := range []int{1, 5, 64} {
			rows := 37
			table, w := weightLeaf(t, c, "table", tc.typ, tc.width, rows, randFloats(r, tc.width*rows, 1))
			ids := make([]int32, n)
			for i := range ids {
				ids[i] = int32(r.IntN(rows))
			}
			g := opNode(graph.OpGetRows, "get", tc.width, n, table, i32In("ids", ids))
			a := runOp(t, c, nil, g)
			got := read(t, c, a, g)
			want := make([]float32, n*tc.width)
			for i, id := range ids {
				if err := w.Row(int(id), want[i*tc.width:(i+1)*tc.width]); err != nil {
					t.Fatal(err)
				}
			}
			if e := metric.NMSE(want, got); e > 0 {
				t.Errorf("GET_ROWS %s width %d, %d ids: NMSE %g, want bit-identical rows", tc.typ, tc.width, n, e)
			}
		}
	}

	// An f32 intermediate as the table (the graph's last_row).
	x := f32In("x", 33, 9)
	vals := randFloats(r, 33*9, 1)
	g := opNode(graph.OpGetRows, "last_row", 33, 2, x, i32In("ids", []int32{8, 3}))
	a := runOp(t, c, map[*graph.Tensor][]float32{x: vals}, g)
	got := read(t, c, a, g)
	if want := append(append([]float32(nil), vals[8*33:9*33]...), vals[3*33:4*33]...); metric.NMSE(want, got) != 0 {
		t.Errorf("GET_ROWS from an intermediate: got %v, want %v", got[:4], want[:4])
	}

	// A bad id is an error, not a panic.
	table, _ := weightLeaf(t, c, "table", quant.Q4_0, 32, 4, randFloats(r, 128, 1))
	bad := opNode(graph.OpGetRows, "get", 32, 1, table, i32In("ids", []int32{4}))
	a2, _ := c.NewArena(256)
	bad.Offset = 0
	if err := c.Compute(a2, []*graph.Tensor{bad}); err == nil {
		t.Error("GET_ROWS with id 4 of a 4-row table: no error")
	} else {
		t.Log(err)
	}
}

func TestCPUElementwise(t *testing.T) {
	c := newTestCPU(t, 2)
	r := rand.New(rand.NewPCG(3, 4))
	for _, width := range []int{1, 7, 33, 256, 4096} {
		for _, rows := range []int{1, 3, 64} {
			name := fmt.Sprintf("%dx%d", width, rows)
			x, y := f32In("x", width, rows), f32In("y", width, rows)
			wv := f32In("w", width, 1)
			xs, ys, ws := randFloats(r, width*rows, 2), randFloats(r, width*rows, 1), randFloats(r, width, 1)
			in := map[*graph.Tensor][]float32{x: xs, y: ys, wv: ws}

			norm := opNode(graph.OpRMSNorm, "norm", width, rows, x)
			norm.Param.Eps = 1e-5
			scaled := opNode(graph.OpMul, "norm_w", width, rows, norm, wv)
			mul := opNode(graph.OpMul, "mul", width, rows, x, y)
			add := opNode(graph.OpAdd, "add", width, rows, x, y)
			swiglu := opNode(graph.OpSwiGLU, "swiglu", width, rows, x, y)
			a := runOp(t, c, in, norm, scaled, mul, add, swiglu)

			check := func(op string, want []float32, n *graph.Tensor) {
				e := metric.NMSE(want, read(t, c, a, n))
				if width == 4096 && rows == 64 {
					t.Logf("%-14s %s: NMSE %.3g", op, name, e)
				}
				if e > exactNMSE {
					t.Errorf("%s %s: NMSE %g > %g", op, name, e, exactNMSE)
				}
			}
			want := make([]float32, width*rows)
			for i := 0; i < rows; i++ {
				ref.RMSNorm(want[i*width:(i+1)*width], xs[i*width:(i+1)*width], ws, 1e-5)
			}
			check("RMS_NORM+MUL", want, scaled)
			for i := range want {
				want[i] = xs[i] * ys[i]
			}
			check("MUL", want, mul)
			for i := range want {
				want[i] = xs[i] + ys[i]
			}
			check("ADD", want, add)
			for i := range want {
				want[i] = ref.SiLU(xs[i]) * ys[i]
			}
			check("SWIGLU", want, swiglu)
		}
	}
}

func TestCPUMulMat(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	type shape struct{ k, m int }
	cases := []struct {
		typ    quant.Type
		shapes []shape
		limit  float64
	}{
		{quant.F32, []shape{{1, 1}, {7, 5}, {33, 67}, {4096, 19}}, exactNMSE},
		{quant.F16, []shape{{1, 3}, {33, 67}, {4096, 19}}, exactNMSE},
		{quant.BF16, []shape{{5, 3}, {4096, 19}}, exactNMSE},
		{quant.Q4_0, []shape{{32, 1}, {96, 67}, {4096, 19}, {2048, 130}}, quantNMSE},
		{quant.Q8_0, []shape{{32, 1}, {96, 67}, {4096, 19}}, quantNMSE},
		{quant.Q6_K, []shape{{256, 1}, {768, 67}, {4096, 19}}, quantNMSE},
	}
	// NMSE is taken over each shape's outputs for all batch sizes: a
	// single output (m = n = 1) may be near zero, where its relative
	// error says nothing about the kernel. Every precision runs on the
	// best kernel path; int8 also on every other path quant has here.
	type run struct {
		threads   int
		precision Precision
		path      quant.Path
	}
	best := quant.KernelPath()
	runs := []run{{1, PrecisionInt8, best}, {3, PrecisionInt8, best}, {2, PrecisionInt8x2, best}, {3, PrecisionFloat, best}}
	for _, p := range quant.AvailablePaths() {
		if p != best {
			runs = append(runs, run{2, PrecisionInt8, p})
		}
	}
	for _, rn := range runs {
		restore, err := quant.SetKernelPath(rn.path)
		if err != nil {
			t.Fatal(err)
		}
		c := newTestCPU(t, rn.threads)
		c.SetPrecision(rn.precision)
		for _, tc := range cases {
			limit := tc.limit
			if rn.precision != PrecisionInt8 {
				limit = precisionNMSE[rn.precision]
			}
			for _, s := range tc.shapes {
				var want, got []float32
				for _, n := range []int{1, 2, 5, 17, 64} {
					wv := randFloats(r, s.k*s.m, 1/math.Sqrt(float64(s.k)))
					w, rw := weightLeaf(t, c, "w", tc.typ, s.k, s.m, wv)
					x := f32In("x", s.k, n)
					xs := randFloats(r, s.k*n, 1)
					mm := opNode(graph.OpMulMat, "mm", s.m, n, w, x)
					a := runOp(t, c, map[*graph.Tensor][]float32{x: xs}, mm)
					out := make([]float32, s.m*n)
					if err := ref.MatMul(rows2(out, s.m), rows2(xs, s.k), rw, 1); err != nil {
						t.Fatal(err)
					}
					want, got = append(want, out...), append(got, read(t, c, a, mm)...)
				}
				e := metric.NMSE(want, got)
				if rn.threads != 3 && rn.path == best {
					t.Logf("MUL_MAT %-5s k %4d m %3d, n 1..64, %-6s: NMSE %.3g", tc.typ, s.k, s.m, rn.precision, e)
				}
				if e > limit {
					t.Errorf("MUL_MAT %s k %d m %d, %d threads, %s, kernels %s: NMSE %g > %g", tc.typ, s.k, s.m, rn.threads, rn.precision, rn.path, e, limit)
				}
			}
		}
		restore()
	}
}

// TestCPUMulMatSharedActivations checks that MUL_MATs reading the same
// activations (Q, K, V) reuse one quantization correctly, also across
// weight types with different activation types.
func TestCPUMulMatSharedActivations(t *testing.T) {
	c := newTestCPU(t, 2)
	r := rand.New(rand.NewPCG(7, 8))
	k, n := 512, 9
	x := f32In("x", k, n)
	xs := randFloats(r, k*n, 1)
	var nodes []*graph.Tensor
	var refs []*model.Weight
	for i, typ := range []quant.Type{quant.Q4_0, quant.Q8_0, quant.Q6_K, quant.Q4_0, quant.F16} {
		w, rw := weightLeaf(t, c, fmt.Sprint("w", i), typ, k, 40+i, randFloats(r, k*(40+i), 0.05))
		nodes = append(nodes, opNode(graph.OpMulMat, fmt.Sprint("mm", i), 40+i, n, w, x))
		refs = append(refs, rw)
	}
	a := runOp(t, c, map[*graph.Tensor][]float32{x: xs}, nodes...)
	for i, nd := range nodes {
		want := make([]float32, nd.Elements())
		if err := ref.MatMul(rows2(want, nd.Shape[0]), rows2(xs, k), refs[i], 1); err != nil {
			t.Fatal(err)
		}
		if e := metric.NMSE(want, read(t, c, a, nd)); e > quantNMSE {
			t.Errorf("MUL_MAT %d (%s) after others on the same activations: NMSE %g", i, refs[i].Type, e)
		}
	}
}

func TestCPURope(t *testing.T) {
	c := newTestCPU(t, 2)
	r := rand.New(rand.NewPCG(9, 10))
	for _, hd := range []int{2, 6, 64, 128} {
		for _, heads := range []int{1, 3, 32} {
			for _, withFreqs := range []bool{false, true} {
				n := 1 + r.IntN(40)
				width := hd * heads
				pos := make([]int32, n)
				p0 := r.IntN(100000)
				for i := range pos {
					pos[i] = int32(p0 + i)
				}
				x := f32In("x", width, n)
				xs := randFloats(r, width*n, 1)
				in := map[*graph.Tensor][]float32{x: xs}
				var freqs []float32
				var ft *graph.Tensor
				if withFreqs {
					freqs = make([]float32, hd/2)
					for i := range freqs {
						freqs[i] = 1 + 7*r.Float32()
					}
					ft = &graph.Tensor{Name: "freqs", Type: quant.F32, Shape: [4]int{hd / 2, 1, 1, 1}, Kind: graph.Weight, Data: quant.Float32sToBytes(freqs)}
					if err := c.Load(ft); err != nil {
						t.Fatal(err)
					}
				}
				rope := opNode(graph.OpRope, "rope", width, n, x, i32In("pos", pos), ft)
				rope.Param.HeadDim, rope.Param.RopeBase = hd, 500000
				// Twice, the second time from the cos/sin cache.
				rope2 := opNode(graph.OpRope, "rope2", width, n, x, rope.Src[1], ft)
				rope2.Param = rope.Param
				a := runOp(t, c, in, rope, rope2)
				want := append([]float32(nil), xs...)
				for i := 0; i < n; i++ {
					ref.Rope(want[i*width:(i+1)*width], hd, int(pos[i]), 500000, freqs)
				}
				for _, nd := range []*graph.Tensor{rope, rope2} {
					if e := metric.NMSE(want, read(t, c, a, nd)); e > exactNMSE {
						t.Errorf("ROPE hd %d heads %d freqs %v: NMSE %g", hd, heads, withFreqs, e)
					}
				}
			}
		}
	}
}

func cacheLeaf(t testing.TB, c *CPU, name string, typ quant.Type, width, cells int) *graph.Tensor {
	t.Helper()
	k := &graph.Tensor{Name: name, Type: typ, Shape: [4]int{width, cells, 1, 1}, Kind: graph.Cache}
	if err := c.Load(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func download(t testing.TB, c *CPU, x *graph.Tensor) []byte {
	t.Helper()
	b := make([]byte, x.Bytes())
	if err := c.Download(x, b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCPUSetRows(t *testing.T) {
	c := newTestCPU(t, 2)
	r := rand.New(rand.NewPCG(11, 12))
	for _, typ := range model.KVTypes {
		widths := []int{32, 96, 4096}
		if typ == quant.F32 || typ == quant.F16 {
			widths = append(widths, 1, 7)
		}
		for _, width := range widths {
			for _, n := range []int{1, 5, 64} {
				cells := 70
				cache := cacheLeaf(t, c, "cache", typ, width, cells)
				perm := r.Perm(cells)[:n]
				idx := make([]int32, n)
				for i := range idx {
					idx[i] = int32(perm[i])
				}
				x := f32In("x", width, n)
				xs := randFloats(r, width*n, 3)
				set := opNode(graph.OpSetRows, "set", width, cells, x, cache, i32In("cells", idx))
				set.Type = typ
				runOp(t, c, map[*graph.Tensor][]float32{x: xs}, set)
				got := download(t, c, cache)
				want := make([]byte, len(got))
				rb := len(got) / cells
				for i, cell := range idx {
					if err := quant.Quantize(typ, want[int(cell)*rb:], xs[i*width:(i+1)*width]); err != nil {
						t.Fatal(err)
					}
				}
				if !bytes.Equal(got, want) {
					t.Errorf("SET_ROWS %s width %d, %d rows: cache bytes differ from quant.Quantize", typ, width, n)
				}
			}
		}
	}
	// A cell outside the cache is an error.
	cache := cacheLeaf(t, c, "cache", quant.Q8_0, 32, 4)
	x := f32In("x", 32, 1)
	x.Offset = 0
	set := opNode(graph.OpSetRows, "set", 32, 4, x, cache, i32In("cells", []int32{4}))
	a, _ := c.NewArena(256)
	if err := c.Compute(a, []*graph.Tensor{set}); err == nil {
		t.Error("SET_ROWS to cell 4 of 4: no error")
	}
}

// attentionCase runs ATTENTION over caches of types tk, tv filled with
// random rows, against ref.Attention over the dequantized cache.
func attentionCase(t *testing.T, c *CPU, r *rand.Rand, tk, tv quant.Type, hd, nHead, nHeadKV, pos0, n int) float64 {
	t.Helper()
	width := hd * nHeadKV
	cells := pos0 + n + 3 // more cells than visible
	nkv := pos0 + n
	keys := randFloats(r, width*cells, 1)
	vals := randFloats(r, width*cells, 1)
	kc := cacheLeaf(t, c, "k", tk, width, cells)
	vc := cacheLeaf(t, c, "v", tv, width, cells)
	for _, kv := range []struct {
		x    *graph.Tensor
		vals []float32
	}{{kc, keys}, {vc, vals}} {
		b := make([]byte, kv.x.Bytes())
		rb := len(b) / cells
		for i := 0; i < cells; i++ {
			if err := quant.Quantize(kv.x.Type, b[i*rb:], kv.vals[i*width:(i+1)*width]); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Upload(kv.x, b); err != nil {
			t.Fatal(err)
		}
		// ref reads the cache dequantized.
		if err := quant.Dequantize(kv.x.Type, kv.vals, b); err != nil {
			t.Fatal(err)
		}
	}
	q := f32In("q", hd*nHead, n)
	qs := randFloats(r, hd*nHead*n, 1.5)
	att := opNode(graph.OpAttention, "attn", hd*nHead, n, q, kc, vc, graph.SeqIndex(pos0, n))
	att.Param = graph.Params{HeadDim: hd, NHead: nHead, NHeadKV: nHeadKV, Page: graph.PageCells, NKV: pos0 + n, Scale: float32(1 / math.Sqrt(float64(hd)))}
	a := runOp(t, c, map[*graph.Tensor][]float32{q: qs}, att)
	got := read(t, c, a, att)
	want := make([]float32, len(got))
	ref.Attention(rows2(want, hd*nHead), rows2(qs, hd*nHead), keys[:nkv*width], vals[:nkv*width], pos0, nHead, nHeadKV, hd, 1)
	return metric.NMSE(want, got)
}

func TestCPUAttention(t *testing.T) {
	c := newTestCPU(t, 3)
	r := rand.New(rand.NewPCG(13, 14))
	for _, prec := range []Precision{PrecisionInt8, PrecisionInt8x2, PrecisionFloat} {
		c.SetPrecision(prec)
		for _, tk := range model.KVTypes {
			for _, tv := range model.KVTypes {
				limit := exactNMSE
				if tk == quant.Q8_0 || tk == quant.Q4_0 {
					limit = precisionNMSE[prec] // q is quantized for the integer dot
				}
				for _, group := range []int{1, 2, 4} {
					for _, hd := range []int{32, 64, 128} {
						for _, pc := range []struct{ pos0, n int }{{0, 1}, {0, 17}, {37, 1}, {100, 9}, {5, 64}} {
							nHeadKV := 2
							e := attentionCase(t, c, r, tk, tv, hd, nHeadKV*group, nHeadKV, pc.pos0, pc.n)
							if tk == tv && hd == 64 && group == 4 && (pc.n == 1 || pc.n == 64) && pc.pos0 > 0 {
								t.Logf("ATTENTION %-6s K %-4s V %-4s hd %d group %d pos0 %3d n %2d: NMSE %.3g", prec, tk, tv, hd, group, pc.pos0, pc.n, e)
							}
							if e > limit {
								t.Errorf("ATTENTION %s K %s V %s hd %d group %d pos0 %d n %d: NMSE %g > %g", prec, tk, tv, hd, group, pc.pos0, pc.n, e, limit)
							}
						}
					}
				}
			}
		}
	}
	c.SetPrecision(PrecisionInt8)
	// Heads whose quantized blocks straddle two heads (hd 16, q8_0/q4_0
	// rows of 32), and long contexts over several score tiles.
	for _, tc := range []struct {
		tk, tv         quant.Type
		hd, pos0, n    int
		nHead, nHeadKV int
	}{
		{quant.Q8_0, quant.Q4_0, 16, 3, 5, 4, 2},
		{quant.Q4_0, quant.Q8_0, 48, 0, 7, 2, 2},
		{quant.Q8_0, quant.Q8_0, 64, 700, 3, 8, 2},
		{quant.F16, quant.F16, 64, 300, 40, 4, 4},
	} {
		e := attentionCase(t, c, r, tc.tk, tc.tv, tc.hd, tc.nHead, tc.nHeadKV, tc.pos0, tc.n)
		limit := exactNMSE
		if tc.tk == quant.Q8_0 || tc.tk == quant.Q4_0 {
			limit = quantNMSE
		}
		t.Logf("ATTENTION K %-4s V %-4s hd %d heads %d/%d pos0 %d n %d: NMSE %.3g", tc.tk, tc.tv, tc.hd, tc.nHead, tc.nHeadKV, tc.pos0, tc.n, e)
		if e > limit {
			t.Errorf("ATTENTION K %s V %s hd %d pos0 %d n %d: NMSE %g", tc.tk, tc.tv, tc.hd, tc.pos0, tc.n, e)
		}
	}
}

func TestCPUSupports(t *testing.T) {
	c := newTestCPU(t, 1)
	x := f32In("x", 256, 2)
	for _, tc := range []struct {
		typ  quant.Type
		want bool
	}{{quant.F32, true}, {quant.F16, true}, {quant.BF16, true}, {quant.Q4_0, true}, {quant.Q8_0, true}, {quant.Q6_K, true}, {quant.Q4_K, false}, {quant.Q5_0, false}} {
		w := &graph.Tensor{Name: "w", Type: tc.typ, Shape: [4]int{256, 8, 1, 1}, Kind: graph.Weight}
		if got := c.Supports(opNode(graph.OpMulMat, "mm", 8, 2, w, x)); got != tc.want {
			t.Errorf("Supports(MUL_MAT %s) = %v, want %v", tc.typ, got, tc.want)
		}
		if got := c.Supports(opNode(graph.OpGetRows, "get", 256, 1, w, i32In("ids", []int32{0}))); got != tc.want {
			t.Errorf("Supports(GET_ROWS %s) = %v, want %v", tc.typ, got, tc.want)
		}
	}
	for _, typ := range []quant.Type{quant.F32, quant.F16, quant.Q8_0, quant.Q4_0, quant.Q6_K, quant.BF16} {
		want := typ != quant.Q6_K && typ != quant.BF16
		k := &graph.Tensor{Name: "k", Type: typ, Shape: [4]int{256, 16, 1, 1}, Kind: graph.Cache}
		set := opNode(graph.OpSetRows, "set", 256, 16, x, k, i32In("cells", []int32{0, 1}))
		if got := c.Supports(set); got != want {
			t.Errorf("Supports(SET_ROWS %s) = %v, want %v", typ, got, want)
		}
		att := opNode(graph.OpAttention, "att", 256, 2, x, k, k, graph.SeqIndex(0, 2))
		att.Param = graph.Params{HeadDim: 64, NHead: 4, NHeadKV: 4, Page: graph.PageCells, NKV: 2, Scale: 0.125}
		if got := c.Supports(att); got != want {
			t.Errorf("Supports(ATTENTION %s) = %v, want %v", typ, got, want)
		}
	}
	// Shapes that do not fit.
	w := &graph.Tensor{Name: "w", Type: quant.Q4_0, Shape: [4]int{128, 8, 1, 1}, Kind: graph.Weight}
	if c.Supports(opNode(graph.OpMulMat, "mm", 8, 2, w, x)) {
		t.Error("Supports(MUL_MAT with k 128 against activations of 256) = true")
	}
	if c.Supports(&graph.Tensor{Name: "op", Op: graph.Op(200), Type: quant.F32}) {
		t.Error("Supports(unknown op) = true")
	}
}

func TestCPULoad(t *testing.T) {
	c := newTestCPU(t, 1)
	r := rand.New(rand.NewPCG(15, 16))
	w, _ := weightLeaf(t, c, "w", quant.Q4_0, 64, 3, randFloats(r, 192, 1))
	b := w.Bufs[graph.CPU].(*cpuBuf)
	if unsafe.SliceData(b.data) != unsafe.SliceData(w.Data) {
		t.Error("a Q4_0 weight was copied; it should be used in place")
	}
	orig := append([]byte(nil), w.Data...)
	if got := download(t, c, w); !bytes.Equal(got, orig) {
		t.Error("Download of a Q4_0 weight differs from its bytes")
	}
	repl := make([]byte, len(orig))
	for i := range repl {
		repl[i] = byte(i)
	}
	if err := c.Upload(w, repl); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(w.Data, orig) {
		t.Error("Upload wrote into the weight's Data")
	}
	if got := download(t, c, w); !bytes.Equal(got, repl) {
		t.Error("Download after Upload differs")
	}
	if err := c.Upload(w, repl[1:]); err == nil {
		t.Error("Upload of the wrong size: no error")
	}

	for _, typ := range model.KVTypes {
		k := cacheLeaf(t, c, "k", typ, 64, 5)
		got := download(t, c, k)
		if len(got) != int(k.Bytes()) || !bytes.Equal(got, make([]byte, len(got))) {
			t.Errorf("new %s cache: %d bytes, not all zero", typ, len(got))
		}
	}
	// Errors name the tensor.
	short := &graph.Tensor{Name: "short", Type: quant.Q8_0, Shape: [4]int{64, 3, 1, 1}, Kind: graph.Weight, Data: make([]byte, 10)}
	if err := c.Load(short); err == nil {
		t.Error("Load of a weight with too few bytes: no error")
	} else {
		t.Log(err)
	}
	unloaded := &graph.Tensor{Name: "unloaded", Type: quant.Q8_0, Shape: [4]int{64, 3, 1, 1}, Kind: graph.Weight}
	if err := c.Download(unloaded, make([]byte, unloaded.Bytes())); err == nil {
		t.Error("Download of an unloaded tensor: no error")
	}
	// f32 weights at an odd address are copied so they can be read as
	// float32.
	raw := make([]byte, 4*5+1)
	copy(raw[1:], quant.Float32sToBytes([]float32{1, 2, 3, 4, 5}))
	v := &graph.Tensor{Name: "v", Type: quant.F32, Shape: [4]int{5, 1, 1, 1}, Kind: graph.Weight, Data: raw[1:]}
	if err := c.Load(v); err != nil {
		t.Fatal(err)
	}
	if f := v.Bufs[graph.CPU].(*cpuBuf).f32; len(f) != 5 || f[4] != 5 {
		t.Errorf("unaligned f32 weight reads %v", f)
	}
}

func TestCPUPool(t *testing.T) {
	for _, threads := range []int{1, 2, 7} {
		c := newTestCPU(t, threads)
		for _, n := range []int{0, 1, 3, 1000} {
			for _, grain := range []int{1, 7} {
				var tk countTask
				tk.hits = make([]int32, n)
				tk.workers = make([]int32, threads)
				c.pool.parallelFor(n, grain, &tk)
				for i, h := range tk.hits {
					if h != 1 {
						t.Fatalf("%d threads, n %d, grain %d: item %d ran %d times", threads, n, grain, i, h)
					}
				}
			}
		}
	}
	// Close stops parked and spinning helpers.
	c := NewCPU(4)
	c.pool.parallelFor(100, 1, &countTask{hits: make([]int32, 100), workers: make([]int32, 4)})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Compute(&cpuArena{}, nil); err == nil {
		t.Error("Compute after Close: no error")
	}
}

type countTask struct {
	hits, workers []int32
}

func (c *countTask) run(w, lo, hi int) {
	for i := lo; i < hi; i++ {
		c.hits[i]++ // each item belongs to one chunk
	}
	c.workers[w]++ // each worker only touches its own counter
}
