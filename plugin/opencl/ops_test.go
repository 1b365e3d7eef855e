package opencl

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ocelot-llm/ocelot/graph"
	"github.com/ocelot-llm/ocelot/model"
	"github.com/ocelot-llm/ocelot/quant"
	"github.com/ocelot-llm/ocelot/ref"
)

// Thresholds (NMSE = mse(ref, got) / mse(ref, 0)), as in ggml's
// test-backend-ops.
const (
	// exactNMSE: ops that differ from the reference only by float
	// rounding (summation order, exp/sqrt within a few ulp).
	exactNMSE = 1e-7
	// matmulNMSE: matrix products and attention over long sums.
	matmulNMSE = 5e-4
)

var weightTypes = []quant.Type{quant.F32, quant.F16, quant.BF16, quant.Q4_0, quant.Q8_0, quant.Q6_K}

// logNMSE records an op's NMSE in the test log (-v shows the table the
// device run reports).
func logNMSE(t *testing.T, op string, e float64) {
	t.Helper()
	t.Logf("NMSE %-28s %.3g", op, e)
}

func TestRMSNormAndElementwise(t *testing.T) {
	b := testBackend(t)
	rng := rand.New(rand.NewPCG(1, 1))
	for _, w := range []int{1, 31, 256, 4096, 4099} {
		for _, n := range []int{1, 5, 64} {
			if w*n > 1<<18 {
				continue
			}
			name := fmt.Sprintf("%dx%d", w, n)
			x := act("x", w, n)
			xv := randn(rng, w*n, 3)
			ones := make([]float32, w)
			for i := range ones {
				ones[i] = 1
			}
			wv := randn(rng, w, 1)
			want, wantMul := make([]float32, w*n), make([]float32, w*n)
			for r := 0; r < n; r++ {
				ref.RMSNorm(want[r*w:(r+1)*w], xv[r*w:(r+1)*w], ones, 1e-5)
				ref.RMSNorm(wantMul[r*w:(r+1)*w], xv[r*w:(r+1)*w], wv, 1e-5)
			}
			// RMS_NORM alone, and fused with the MUL that follows.
			norm := &graph.Tensor{Name: "norm", Op: graph.OpRMSNorm, Type: quant.F32, Shape: x.Shape, Src: [4]*graph.Tensor{x}, Param: graph.Params{Eps: 1e-5}}
			out := runNodes(t, b, []*graph.Tensor{norm}, map[*graph.Tensor][]float32{x: xv})
			logNMSE(t, "RMS_NORM "+name, checkNMSE(t, "rms_norm "+name, want, out[norm], exactNMSE))
			wt := leaf(t, "w", quant.F32, w, 1, wv)
			norm2 := &graph.Tensor{Name: "norm", Op: graph.OpRMSNorm, Type: quant.F32, Shape: x.Shape, Src: [4]*graph.Tensor{x}, Param: graph.Params{Eps: 1e-5}}
			mul := &graph.Tensor{Name: "mul", Op: graph.OpMul, Type: quant.F32, Shape: x.Shape, Src: [4]*graph.Tensor{norm2, wt}}
			out = runNodes(t, b, []*graph.Tensor{norm2, mul}, map[*graph.Tensor][]float32{x: xv})
			checkNMSE(t, "rms_norm (fused) "+name, want, out[norm2], exactNMSE)
			logNMSE(t, "RMS_NORM+MUL "+name, checkNMSE(t, "rms_norm+mul "+name, wantMul, out[mul], exactNMSE))

			// ADD, MUL (plain and broadcast), SWIGLU.
			av, bv := randn(rng, w*n, 1), randn(rng, w*n, 1)
			for _, c := range []struct {
				op    graph.Op
				bcast bool
			}{{graph.OpAdd, false}, {graph.OpMul, false}, {graph.OpMul, true}, {graph.OpSwiGLU, false}} {
				a := act("a", w, n)
				srcs := map[*graph.Tensor][]float32{a: av}
				var bt *graph.Tensor
				yv := bv
				if c.bcast {
					yv = bv[:w]
					bt = leaf(t, "b", quant.F32, w, 1, yv)
				} else {
					bt = act("b", w, n)
					srcs[bt] = bv
				}
				node := &graph.Tensor{Name: "op", Op: c.op, Type: quant.F32, Shape: a.Shape, Src: [4]*graph.Tensor{a, bt}}
				want := make([]float32, w*n)
				for i := range want {
					y := yv[i%len(yv)]
					switch c.op {
					case graph.OpAdd:
						want[i] = av[i] + y
					case graph.OpMul:
						want[i] = av[i] * y
					default:
						want[i] = ref.SiLU(av[i]) * y
					}
				}
				got := runNodes(t, b, []*graph.Tensor{node}, srcs)[node]
				label := fmt.Sprintf("%s bcast=%v %s", c.op, c.bcast, name)
				logNMSE(t, label, checkNMSE(t, label, want, got, exactNMSE))
			}
		}
	}
}

func TestGetRows(t *testing.T) {
	b := testBackend(t)
	rng := rand.New(rand.NewPCG(2, 1))
	for _, typ := range weightTypes {
		for _, s := range [][3]int{{max(typ.BlockSize(), 32), 50, 7}, {4096, 3, 1}, {typ.BlockSize() * 3, 9, 64}} {
			w, rows, n := s[0], s[1], s[2]
			table := leaf(t, "table", typ, w, rows, randn(rng, w*rows, 1))
			ids := make([]int32, n)
			for i := range ids {
				ids[i] = int32(rng.IntN(rows))
			}
			node := &graph.Tensor{Name: "get_rows", Op: graph.OpGetRows, Type: quant.F32, Shape: [4]int{w, n, 1, 1}, Src: [4]*graph.Tensor{table, input("ids", ids)}}
			all := dequant(t, typ, table.Data, w*rows)
			var want []float32
			for _, id := range ids {
				want = append(want, all[int(id)*w:(int(id)+1)*w]...)
			}
			got := runNodes(t, b, []*graph.Tensor{node}, nil)[node]
			label := fmt.Sprintf("GET_ROWS %s %dx%d n=%d", typ, w, rows, n)
			// A lookup dequantizes exactly as the CPU does.
			if e := checkNMSE(t, label, want, got, 0); e == 0 {
				logNMSE(t, label, e)
			}
		}
	}
	// From an f32 intermediate (the last-row pick before the output).
	x := act("x", 37, 5)
	xv := randn(rng, 37*5, 1)
	node := &graph.Tensor{Name: "last_row", Op: graph.OpGetRows, Type: quant.F32, Shape: [4]int{37, 1, 1, 1}, Src: [4]*graph.Tensor{x, input("ids", []int32{4})}}
	got := runNodes(t, b, []*graph.Tensor{node}, map[*graph.Tensor][]float32{x: xv})[node]
	checkNMSE(t, "get_rows from an intermediate", xv[4*37:], got, 0)
}

// mmPath is one way a matrix product runs: GEMV, the tiled GEMM or the
// tensor-core GEMM.
type mmPath struct {
	name  string
	mmMin int
	tc    bool
	mmq   bool // the integer tensor-core GEMM for Q4_0
	mwq   bool // the few-token GEMV on int8 activations (forced: its generic dot4 on any device)
}

func mmPaths(b *Backend) []mmPath {
	paths := []mmPath{{"gemv", 1 << 30, false, false, false}, {"gemv-int8", 1 << 30, false, false, true}}
	if b.tune.gemm {
		paths = append(paths, mmPath{"gemm", 1, false, false, false})
	}
	if b.tune.tc {
		paths = append(paths, mmPath{"gemm-tc", 1, true, false, false})
	}
	if b.tune.mmq {
		paths = append(paths, mmPath{"gemm-mmq", 1, false, true, false})
	}
	return paths
}

func TestMulMat(t *testing.T) {
	b := testBackend(t)
	testMulMat(t, b, mmPaths(b), false)
}

// TestTensorCoreEmulated runs the tensor-core GEMM with mma.sync
// emulated (per the PTX fragment layouts) where there are no tensor
// cores, so its tiling and fragment indexing are tested on any device.
func TestTensorCoreEmulated(t *testing.T) {
	b := emulatedBackend(t, variant{mma: true, emulate: true})
	if !b.tune.tc {
		t.Skip("the device cannot run 128 work-items with the tiles")
	}
	testMulMat(t, b, []mmPath{{"gemm-tc-emulated", 1, true, false, false}}, true)
}

// emulatedBackend opens a backend of variant v (with mma.sync emulated),
// closed when the test ends.
func emulatedBackend(t *testing.T, v variant) *Backend {
	t.Helper()
	testBackend(t)
	if testing.Short() {
		t.Skip("-short")
	}
	forceVariant = &v
	b, err := Open(Options{Device: -1, CacheDir: "-"})
	forceVariant = nil
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestIntTensorCoreEmulated runs the integer tensor-core GEMM (Q4_0
// weights, Q8_0 activations, mma.sync.m16n8k32) with the mma emulated,
// so its tiling, nibble unpacking and fragment indexing are tested on any
// device.
func TestIntTensorCoreEmulated(t *testing.T) {
	b := emulatedBackend(t, variant{mmq: true, emulate: true})
	if !b.tune.mmq {
		t.Skip("the device cannot run 128 work-items with the tiles")
	}
	testMulMat(t, b, []mmPath{{"gemm-mmq-emulated", 1, false, true, false}}, true)
}

// testMulMat compares products of every weight type on the given paths
// with a float64 reference; quick runs fewer shapes.
func testMulMat(t *testing.T, b *Backend, paths []mmPath, quick bool) {
	rng := rand.New(rand.NewPCG(3, 1))
	defer func(v int, tc, mmq, mwq bool) { b.tune.mmMin, b.tune.tc, b.tune.mmq, b.tune.mwq = v, tc, mmq, mwq }(b.tune.mmMin, b.tune.tc, b.tune.mmq, b.tune.mwq)
	hasTC, hasMMQ := b.tune.tc, b.tune.mmq
	for _, typ := range weightTypes {
		bs := typ.BlockSize()
		k := max(bs, 64)
		shapes := [][2]int{{k, 1}, {k, 37}, {4096, 33}, {2 * k, 300}}
		batches := []int{1, 2, 7, 33, 64, 65}
		if bs == 1 {
			shapes = append(shapes, [2]int{67, 5}, [2]int{31, 65})
		}
		if quick {
			shapes, batches = [][2]int{{k, 37}, {2 * k, 130}}, []int{1, 33, 65}
			if bs == 1 {
				shapes = append(shapes, [2]int{67, 5})
			}
		}
		for _, s := range shapes {
			k, m := s[0], s[1]
			w := leaf(t, "w", typ, k, m, randn(rng, k*m, 0.05))
			wv := dequant(t, typ, w.Data, k*m)
			for _, n := range batches {
				x := act("x", k, n)
				xv := randn(rng, k*n, 1)
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
				for _, p := range paths {
					b.tune.mmMin, b.tune.tc, b.tune.mmq, b.tune.mwq = p.mmMin, p.tc && hasTC, p.mmq && hasMMQ, p.mwq && b.tune.mwt
					node := &graph.Tensor{Name: "mul_mat", Op: graph.OpMulMat, Type: quant.F32, Shape: [4]int{m, n, 1, 1}, Src: [4]*graph.Tensor{w, x}}
					got := runNodes(t, b, []*graph.Tensor{node}, map[*graph.Tensor][]float32{x: xv})[node]
					label := fmt.Sprintf("MUL_MAT %s %s k=%d m=%d n=%d", p.name, typ, k, m, n)
					logNMSE(t, label, checkNMSE(t, label, want, got, matmulNMSE))
				}
			}
		}
	}
}

// TestFewTokensMatchOneToken: a product of a few tokens (batched decode,
// the row-group GEMV for several tokens) gives each token the bits the
// one-token product gives it, so that a sequence decodes the same alone
// and batched.
func TestFewTokensMatchOneToken(t *testing.T) {
	b := testBackend(t)
	if !b.tune.mwt {
		t.Skip("no row-group GEMV on this device")
	}
	defer func(v bool) { b.tune.mwq = v }(b.tune.mwq)
	b.tune.mwq = false // the float GEMV (the int8 one rounds the activations)
	rng := rand.New(rand.NewPCG(5, 1))
	for _, typ := range []quant.Type{quant.Q4_0, quant.Q6_K} {
		k, m := 512, 70
		w := leaf(t, "w", typ, k, m, randn(rng, k*m, 0.05))
		for _, n := range []int{2, 5, 8, 11} {
			x := act("x", k, n)
			xv := randn(rng, k*n, 1)
			node := &graph.Tensor{Name: "mul_mat", Op: graph.OpMulMat, Type: quant.F32, Shape: [4]int{m, n, 1, 1}, Src: [4]*graph.Tensor{w, x}}
			got := runNodes(t, b, []*graph.Tensor{node}, map[*graph.Tensor][]float32{x: xv})[node]
			for j := range n {
				x1 := act("x1", k, 1)
				one := &graph.Tensor{Name: "mul_mat1", Op: graph.OpMulMat, Type: quant.F32, Shape: [4]int{m, 1, 1, 1}, Src: [4]*graph.Tensor{w, x1}}
				want := runNodes(t, b, []*graph.Tensor{one}, map[*graph.Tensor][]float32{x1: xv[j*k : (j+1)*k]})[one]
				for i := range m {
					if got[j*m+i] != want[i] {
						t.Fatalf("%s n=%d: token %d row %d: %v batched, %v alone", typ, n, j, i, got[j*m+i], want[i])
					}
				}
			}
		}
	}
}

func TestRope(t *testing.T) {
	b := testBackend(t)
	rng := rand.New(rand.NewPCG(4, 1))
	for _, hd := range []int{32, 64, 128} {
		for _, c := range []struct{ heads, n, pos0 int }{{1, 1, 0}, {3, 7, 5}, {8, 33, 4000}, {2, 3, 131000}} {
			for _, freqs := range []bool{false, true} {
				w := hd * c.heads
				x := act("x", w, c.n)
				xv := randn(rng, w*c.n, 1)
				pos := make([]int32, c.n)
				for i := range pos {
					pos[i] = int32(c.pos0 + i)
				}
				var ff *graph.Tensor
				var fv []float32
				if freqs {
					fv = make([]float32, hd/2)
					for i := range fv {
						fv[i] = 1 + 7*float32(i)/float32(len(fv))
					}
					ff = leaf(t, "freqs", quant.F32, hd/2, 1, fv)
				}
				node := &graph.Tensor{Name: "rope", Op: graph.OpRope, Type: quant.F32, Shape: x.Shape, Src: [4]*graph.Tensor{x, input("pos", pos), ff},
					Param: graph.Params{RopeBase: 500000, HeadDim: hd}}
				want := append([]float32(nil), xv...)
				for i := 0; i < c.n; i++ {
					ref.Rope(want[i*w:(i+1)*w], hd, c.pos0+i, 500000, fv)
				}
				got := runNodes(t, b, []*graph.Tensor{node}, map[*graph.Tensor][]float32{x: xv})[node]
				label := fmt.Sprintf("ROPE hd=%d heads=%d n=%d pos0=%d freqs=%v", hd, c.heads, c.n, c.pos0, freqs)
				// The angles are computed as accurately as ref's float64
				// ones, so ROPE meets the exact-op threshold even at
				// positions past 100k.
				logNMSE(t, label, checkNMSE(t, label, want, got, exactNMSE))
			}
		}
	}
}

// cacheWith returns a cache leaf [width, cells] of type t filled with
// random rows (so untouched cells are checked too) and its bytes.
func cacheWith(tb testing.TB, rng *rand.Rand, t quant.Type, width, cells int) (*graph.Tensor, []byte) {
	c := leaf(tb, "cache", t, width, cells, randn(rng, width*cells, 1))
	c.Kind = graph.Cache
	data := c.Data
	c.Data = nil
	return c, data
}

func TestSetRows(t *testing.T) {
	b := testBackend(t)
	rng := rand.New(rand.NewPCG(5, 1))
	for _, typ := range model.KVTypes {
		for _, s := range [][3]int{{64, 40, 7}, {1024, 9, 1}, {32, 512, 33}, {4096, 8, 3}} {
			width, cells, n := s[0], s[1], s[2]
			for _, fused := range []bool{false, true} {
				cache, initial := cacheWith(t, rng, typ, width, cells)
				if err := b.Load(cache); err != nil {
					t.Fatal(err)
				}
				if err := b.Upload(cache, initial); err != nil {
					t.Fatal(err)
				}
				xv := randn(rng, width*n, 2)
				// Include values that round to ties and tiny magnitudes.
				xv[0], xv[1] = 0.5, -1e-3
				perm := rng.Perm(cells)[:n]
				idx := make([]int32, n)
				for i := range idx {
					idx[i] = int32(perm[i])
				}
				rowBytes, _ := quant.RowSize(typ, int64(width))
				var nodes []*graph.Tensor
				x := act("x", width, n)
				srcs := map[*graph.Tensor][]float32{x: xv}
				rowsIn := x
				rot := xv
				if fused {
					// ROPE followed by the SET_ROWS that stores it.
					pos := make([]int32, n)
					for i := range pos {
						pos[i] = int32(100 + i)
					}
					rope := &graph.Tensor{Name: "rope", Op: graph.OpRope, Type: quant.F32, Shape: x.Shape, Src: [4]*graph.Tensor{x, input("pos", pos)},
						Param: graph.Params{RopeBase: 10000, HeadDim: 32}}
					nodes = append(nodes, rope)
					rowsIn = rope
					rot = append([]float32(nil), xv...)
					for i := 0; i < n; i++ {
						ref.Rope(rot[i*width:(i+1)*width], 32, 100+i, 10000, nil)
					}
				}
				set := &graph.Tensor{Name: "set_rows", Op: graph.OpSetRows, Type: typ, Shape: cache.Shape, Src: [4]*graph.Tensor{rowsIn, cache, input("cells", idx)}}
				nodes = append(nodes, set)
				out := runNodes(t, b, nodes, srcs)
				if fused {
					checkNMSE(t, "rope (fused with set_rows)", rot, out[nodes[0]], exactNMSE)
				}
				// The device's rotation may differ from ref's in the last
				// bit, so quantize the device's own rope output.
				src := rot
				if fused {
					src = out[nodes[0]]
				}
				want := append([]byte(nil), initial...)
				for i, cell := range idx {
					if err := quant.Quantize(typ, want[int64(cell)*rowBytes:], src[i*width:(i+1)*width]); err != nil {
						t.Fatal(err)
					}
				}
				got := make([]byte, len(want))
				if err := b.Download(cache, got); err != nil {
					t.Fatal(err)
				}
				b.Free(cache)
				label := fmt.Sprintf("SET_ROWS %s %dx%d n=%d fused=%v", typ, width, cells, n, fused)
				if !bytes.Equal(got, want) {
					for i := range got {
						if got[i] != want[i] {
							t.Errorf("%s: cache bytes differ from quant.Quantize's at byte %d (cell %d): got %#02x want %#02x", label, i, int64(i)/rowBytes, got[i], want[i])
							break
						}
					}
				} else {
					t.Logf("%s: bit-identical to quant.Quantize", label)
				}
			}
		}
	}
}

func TestAttention(t *testing.T) {
	b := testBackend(t)
	rng := rand.New(rand.NewPCG(6, 1))
	type shape struct{ hd, heads, kvHeads, n, pos0 int }
	shapes := []shape{{32, 1, 1, 1, 0}, {64, 4, 2, 7, 13}, {128, 8, 2, 1, 300}, {64, 8, 8, 33, 0}, {128, 32, 8, 3, 61}, {32, 8, 2, 64, 100}}
	pairs := [][2]quant.Type{{quant.Q8_0, quant.F16}, {quant.Q4_0, quant.Q8_0}, {quant.F16, quant.Q4_0}}
	for _, t0 := range model.KVTypes {
		pairs = append(pairs, [2]quant.Type{t0, t0})
	}
	for _, p := range pairs {
		for _, s := range shapes {
			cells := s.pos0 + s.n + 3 // cells past NKV must be ignored
			width := s.hd * s.kvHeads
			kc, kdata := cacheWith(t, rng, p[0], width, cells)
			vc, vdata := cacheWith(t, rng, p[1], width, cells)
			for _, c := range []struct {
				t    *graph.Tensor
				data []byte
			}{{kc, kdata}, {vc, vdata}} {
				if err := b.Load(c.t); err != nil {
					t.Fatal(err)
				}
				if err := b.Upload(c.t, c.data); err != nil {
					t.Fatal(err)
				}
			}
			q := act("q", s.hd*s.heads, s.n)
			qv := randn(rng, s.hd*s.heads*s.n, 1)
			node := &graph.Tensor{Name: "attention", Op: graph.OpAttention, Type: quant.F32, Shape: q.Shape, Src: [4]*graph.Tensor{q, kc, vc, graph.SeqIndex(s.pos0, s.n)},
				Param: graph.Params{HeadDim: s.hd, NHead: s.heads, NHeadKV: s.kvHeads, Page: graph.PageCells, NKV: s.pos0 + s.n, Scale: float32(1 / math.Sqrt(float64(s.hd)))}}
			label := fmt.Sprintf("ATTENTION %s/%s hd=%d heads=%d/%d n=%d pos0=%d", p[0], p[1], s.hd, s.heads, s.kvHeads, s.n, s.pos0)
			if !b.Supports(node) {
				t.Errorf("%s: not supported", label)
				continue
			}
			got := runNodes(t, b, []*graph.Tensor{node}, map[*graph.Tensor][]float32{q: qv})[node]
			// Again as a device with many compute units sees it: decode
			// over long contexts splits into chunks (attention_merge).
			units := b.info.Units
			b.info.Units = 1024
			if _, nch := b.attnSplit(node.Param, s.n); nch > 1 && s.n < b.tune.mmMin {
				split := runNodes(t, b, []*graph.Tensor{node}, map[*graph.Tensor][]float32{q: qv})[node]
				logNMSE(t, label+" split", checkNMSE(t, label+" split", got, split, exactNMSE))
			}
			b.info.Units = units
			keys := dequant(t, p[0], kdata, width*cells)
			vals := dequant(t, p[1], vdata, width*cells)
			qrows, want := make([][]float32, s.n), make([][]float32, s.n)
			for i := range qrows {
				qrows[i] = qv[i*s.hd*s.heads : (i+1)*s.hd*s.heads]
				want[i] = make([]float32, s.hd*s.heads)
			}
			ref.Attention(want, qrows, keys, vals, s.pos0, s.heads, s.kvHeads, s.hd, 1)
			var flat []float32
			for _, r := range want {
				flat = append(flat, r...)
			}
			// The cache is read exactly as the reference dequantizes it, so
			// attention differs only by summation order: an exact op.
			logNMSE(t, label, checkNMSE(t, label, flat, got, exactNMSE))
			b.Free(kc)
			b.Free(vc)
		}
	}
}

// TestRoundTrip checks download(upload(x)) for every type, weights and
// caches, including Upload over a resident tensor.
func TestRoundTrip(t *testing.T) {
	b := testBackend(t)
	rng := rand.New(rand.NewPCG(7, 1))
	for _, typ := range weightTypes {
		for _, s := range [][2]int{{4096, 5}, {typ.BlockSize() * 2, 1}, {typ.BlockSize() * 7, 13}} {
			w := leaf(t, "w", typ, s[0], s[1], randn(rng, s[0]*s[1], 1))
			if err := b.Load(w); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(w.Data))
			if err := b.Download(w, got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, w.Data) {
				t.Errorf("%s %v: download differs from upload", typ, s)
			}
			other := leaf(t, "w2", typ, s[0], s[1], randn(rng, s[0]*s[1], 1)).Data
			if err := b.Upload(w, other); err != nil {
				t.Fatal(err)
			}
			if err := b.Download(w, got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, other) {
				t.Errorf("%s %v: download differs from re-upload", typ, s)
			}
			b.Free(w)
		}
	}
	for _, typ := range model.KVTypes {
		c, data := cacheWith(t, rng, typ, 256, 9)
		if err := b.Load(c); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(data))
		if err := b.Download(c, got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, make([]byte, len(data))) {
			t.Errorf("cache %s is not zeroed on load", typ)
		}
		if err := b.Upload(c, data); err != nil {
			t.Fatal(err)
		}
		if err := b.Download(c, got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("cache %s: download differs from upload", typ)
		}
		b.Free(c)
	}
}

// TestFusedDecode runs the one-token sequences the backend fuses (Q, K and
// V of one input; gate and up with their SwiGLU; a product with the ADD
// of the residual), once on a given input and once with each block's RMS
// norm and its MUL in front (fused into the products' kernels), and checks
// every node's output, the fused kernels' intermediate ones included,
// against a float64 reference, and that the fused kernels ran.
func TestFusedDecode(t *testing.T) {
	b := testBackend(t)
	if !b.tune.mw || !b.tune.fuse {
		t.Skip("the row-group GEMV is off on this device")
	}
	rng := rand.New(rand.NewPCG(5, 8))
	for _, sh := range []struct{ k, mq, mkv, ff int }{{256, 256, 64, 768}, {4096, 512, 128, 1024}, {96, 96, 32, 160}} {
		for _, withNorm := range []bool{false, true} {
			k := sh.k
			// Forget other tests' slots: which exist after the run says which
			// kernels ran.
			b.mu.Lock()
			b.freeSlots()
			b.mu.Unlock()
			mk := func(name string, m int) (*graph.Tensor, []float32) {
				w := leaf(t, name, quant.Q4_0, k, m, randn(rng, k*m, 0.05))
				return w, dequant(t, quant.Q4_0, w.Data, k*m)
			}
			wq, wqv := mk("wq", sh.mq)
			wk, wkv := mk("wk", sh.mkv)
			wv, wvv := mk("wv", sh.mkv)
			wg, wgv := mk("wg", sh.ff)
			wu, wuv := mk("wu", sh.ff)
			wo, wov := mk("wo", sh.mq)
			x := act("x", k, 1)
			res := act("res", sh.mq, 1)
			xv, resv := randn(rng, k, 1), randn(rng, sh.mq, 1)
			srcs := map[*graph.Tensor][]float32{x: xv, res: resv}
			want := map[*graph.Tensor][]float32{}
			// in is what the attention block's products and the FFN's
			// take: x itself, or its RMS norm times a norm weight.
			var nodes []*graph.Tensor
			in := func(name string) (*graph.Tensor, []float32) {
				if !withNorm {
					return x, xv
				}
				nwv := randn(rng, k, 1)
				nw := leaf(t, name+"_norm.weight", quant.F32, k, 1, nwv)
				norm := &graph.Tensor{Name: name + "_norm", Op: graph.OpRMSNorm, Type: quant.F32, Shape: x.Shape, Src: [4]*graph.Tensor{x}, Param: graph.Params{Eps: 1e-5}}
				mul := &graph.Tensor{Name: name + "_norm_mul", Op: graph.OpMul, Type: quant.F32, Shape: x.Shape, Src: [4]*graph.Tensor{norm, nw}}
				var ss float64
				for _, v := range xv {
					ss += float64(v) * float64(v)
				}
				scale := 1 / math.Sqrt(ss/float64(k)+1e-5)
				want[norm], want[mul] = make([]float32, k), make([]float32, k)
				for i, v := range xv {
					want[norm][i] = float32(float64(v) * scale)
					want[mul][i] = float32(float64(v) * scale * float64(nwv[i]))
				}
				nodes = append(nodes, norm, mul)
				return mul, want[mul]
			}
			mm := func(name string, w, x *graph.Tensor, m int) *graph.Tensor {
				return &graph.Tensor{Name: name, Op: graph.OpMulMat, Type: quant.F32, Shape: [4]int{m, 1, 1, 1}, Src: [4]*graph.Tensor{w, x}}
			}
			gemv := func(wv, xv []float32, m int) []float32 {
				y := make([]float32, m)
				for i := range m {
					var s float64
					for j := range k {
						s += float64(wv[i*k+j]) * float64(xv[j])
					}
					y[i] = float32(s)
				}
				return y
			}
			ax, axv := in("attn")
			q, kk, v := mm("q", wq, ax, sh.mq), mm("k", wk, ax, sh.mkv), mm("v", wv, ax, sh.mkv)
			nodes = append(nodes, q, kk, v)
			fx, fxv := in("ffn")
			g, u := mm("gate", wg, fx, sh.ff), mm("up", wu, fx, sh.ff)
			sw := &graph.Tensor{Name: "swiglu", Op: graph.OpSwiGLU, Type: quant.F32, Shape: g.Shape, Src: [4]*graph.Tensor{g, u}}
			o := mm("o", wo, x, sh.mq)
			add := &graph.Tensor{Name: "add", Op: graph.OpAdd, Type: quant.F32, Shape: o.Shape, Src: [4]*graph.Tensor{res, o}}
			nodes = append(nodes, g, u, sw, o, add)
			got := runNodes(t, b, nodes, srcs)

			want[q], want[kk], want[v] = gemv(wqv, axv, sh.mq), gemv(wkv, axv, sh.mkv), gemv(wvv, axv, sh.mkv)
			want[g], want[u], want[o] = gemv(wgv, fxv, sh.ff), gemv(wuv, fxv, sh.ff), gemv(wov, xv, sh.mq)
			want[sw] = make([]float32, sh.ff)
			for i, gi := range want[g] {
				want[sw][i] = gi / (1 + float32(math.Exp(float64(-gi)))) * want[u][i]
			}
			want[add] = make([]float32, sh.mq)
			for i := range want[add] {
				want[add][i] = resv[i] + want[o][i]
			}
			for _, n := range nodes {
				label := fmt.Sprintf("%s k=%d norm=%v", n.Name, k, withNorm)
				thr := matmulNMSE
				if n.Op == graph.OpRMSNorm || n.Op == graph.OpMul {
					thr = exactNMSE
				}
				logNMSE(t, label, checkNMSE(t, label, want[n], got[n], thr))
			}
			ran := []slotKey{{"q", "mul_mw3_q4_0"}, {"gate", "mul_mw_swiglu_q4_0"}, {"o", "mul_mw_q4_0"}}
			alone := []slotKey{{"add", "add_f32"}, {"swiglu", "swiglu_f32"}, {"k", "mul_mw_q4_0"}}
			if withNorm {
				ran[0], ran[1] = slotKey{"attn_norm", "mul_mw3n_q4_0"}, slotKey{"ffn_norm", "mul_mw_swiglun_q4_0"}
				alone = append(alone, slotKey{"attn_norm", "rms_norm_mul_f32"}, slotKey{"q", "mul_mw3_q4_0"})
			}
			for _, sk := range ran {
				if b.launcher.slots[sk] == nil {
					t.Errorf("k=%d norm=%v: node %s did not run %s: the fusion did not happen", k, withNorm, sk.node, sk.kernel)
				}
			}
			for _, sk := range alone {
				if b.launcher.slots[sk] != nil {
					t.Errorf("k=%d norm=%v: node %s ran %s on its own: the fusion did not happen", k, withNorm, sk.node, sk.kernel)
				}
			}
		}
	}
}

// TestFusedSequences runs a layer's ROPE(Q), ROPE(K), SET_ROWS(K),
// SET_ROWS(V) and ATTENTION, and a residual ADD with the next RMS_NORM and
// MUL, once fused (rope_qkv, add_rms_norm_mul) and once op by op, for
// every cache type, and requires the same outputs, caches included
// (through the attention that reads them).
func TestFusedSequences(t *testing.T) {
	b := testBackend(t)
	const hd, heads, kvHeads, n, pos0 = 64, 4, 2, 3, 5
	cells := pos0 + n + 2
	for _, kv := range model.KVTypes {
		for _, rows := range []int{1, n} {
			run := func(fuse bool) map[string][]float32 {
				width := hd * kvHeads
				kc, vc, done := fusedRun(t, b, fuse, kv, width, cells)
				defer done()
				r := rand.New(rand.NewPCG(uint64(rows), 7))
				q, k, v := act("Qcur", hd*heads, rows), act("Kcur", width, rows), act("Vcur", width, rows)
				pos := make([]int32, rows)
				for i := range pos {
					pos[i] = int32(pos0 + i)
				}
				posIn := input("pos", pos)
				rope := func(name string, x *graph.Tensor) *graph.Tensor {
					return &graph.Tensor{Name: name, Op: graph.OpRope, Type: quant.F32, Shape: x.Shape, Src: [4]*graph.Tensor{x, posIn},
						Param: graph.Params{HeadDim: hd, RopeBase: 500000}}
				}
				rq, rk := rope("Qrope", q), rope("Krope", k)
				sk := &graph.Tensor{Name: "k_store", Op: graph.OpSetRows, Type: kv, Shape: kc.Shape, Src: [4]*graph.Tensor{rk, kc, posIn}}
				sv := &graph.Tensor{Name: "v_store", Op: graph.OpSetRows, Type: kv, Shape: vc.Shape, Src: [4]*graph.Tensor{v, vc, posIn}}
				att := &graph.Tensor{Name: "attn", Op: graph.OpAttention, Type: quant.F32, Shape: rq.Shape, Src: [4]*graph.Tensor{rq, sk, sv, graph.SeqIndex(pos0, rows)},
					Param: graph.Params{HeadDim: hd, NHead: heads, NHeadKV: kvHeads, Page: graph.PageCells, NKV: pos0 + rows, Scale: 0.125}}
				res := act("res", hd*heads, rows)
				add := &graph.Tensor{Name: "ffn_inp", Op: graph.OpAdd, Type: quant.F32, Shape: att.Shape, Src: [4]*graph.Tensor{res, att}}
				norm := &graph.Tensor{Name: "ffn_norm", Op: graph.OpRMSNorm, Type: quant.F32, Shape: add.Shape, Src: [4]*graph.Tensor{add}, Param: graph.Params{Eps: 1e-5}}
				w := leaf(t, "ffn_norm.weight", quant.F32, hd*heads, 1, randn(r, hd*heads, 1))
				mul := &graph.Tensor{Name: "ffn_norm_w", Op: graph.OpMul, Type: quant.F32, Shape: norm.Shape, Src: [4]*graph.Tensor{norm, w}}
				nodes := []*graph.Tensor{rq, rk, sk, sv, att, add, norm, mul}
				got := runNodes(t, b, nodes, map[*graph.Tensor][]float32{
					q: randn(r, hd*heads*rows, 1), k: randn(r, width*rows, 1), v: randn(r, width*rows, 1), res: randn(r, hd*heads*rows, 1)})
				out := map[string][]float32{}
				for n, v := range got {
					out[n.Name] = v
				}
				var fused []string
				for key := range b.launcher.slots {
					fused = append(fused, key.kernel)
				}
				out["kernels"] = []float32{float32(len(fused))}
				return out
			}
			want, got := run(false), run(true)
			if got["kernels"][0] != 3 {
				t.Errorf("%s rows=%d: %v kernels ran fused, want 3 (rope_qkv, attention, add_rms_norm_mul)", kv, rows, got["kernels"][0])
			}
			for name, w := range want {
				if name == "kernels" {
					continue
				}
				label := fmt.Sprintf("fused %s kv=%s rows=%d", name, kv, rows)
				logNMSE(t, label, checkNMSE(t, label, w, got[name], 1e-12))
			}
		}
	}
}

// TestFusedAttentionInput runs a layer's attention start for one token —
// RMS_NORM, MUL, the Q, K and V products, ROPE(Q), ROPE(K), SET_ROWS(K),
// SET_ROWS(V), then the ATTENTION that reads the caches — fused and op by
// op, for every KV type, and compares every output and the caches'
// contents: one kernel (mul_mw3nr_*) writes them all.
func TestFusedAttentionInput(t *testing.T) {
	b := testBackend(t)
	if !b.tune.mw || !b.tune.fuse {
		t.Skip("the row-group GEMV is off on this device")
	}
	const hd, heads, kvHeads, embd, pos0 = 64, 4, 2, 256, 6
	const width, cells = hd * kvHeads, pos0 + 3
	rng := rand.New(rand.NewPCG(3, 4))
	wq := leaf(t, "wq", quant.Q4_0, embd, hd*heads, randn(rng, embd*hd*heads, 0.05))
	wk := leaf(t, "wk", quant.Q4_0, embd, width, randn(rng, embd*width, 0.05))
	wv := leaf(t, "wv", quant.Q4_0, embd, width, randn(rng, embd*width, 0.05))
	nw := leaf(t, "attn_norm.weight", quant.F32, embd, 1, randn(rng, embd, 1))
	xv := randn(rng, embd, 1)
	for _, kv := range model.KVTypes {
		run := func(fuse bool) (map[string][]float32, map[slotKey]bool) {
			kc, vc, done := fusedRun(t, b, fuse, kv, width, cells)
			defer done()
			x := act("x", embd, 1)
			posIn := input("pos", []int32{pos0})
			norm := &graph.Tensor{Name: "attn_norm", Op: graph.OpRMSNorm, Type: quant.F32, Shape: x.Shape, Src: [4]*graph.Tensor{x}, Param: graph.Params{Eps: 1e-5}}
			mul := &graph.Tensor{Name: "attn_norm_w", Op: graph.OpMul, Type: quant.F32, Shape: x.Shape, Src: [4]*graph.Tensor{norm, nw}}
			mm := func(name string, w *graph.Tensor) *graph.Tensor {
				return &graph.Tensor{Name: name, Op: graph.OpMulMat, Type: quant.F32, Shape: [4]int{w.Shape[1], 1, 1, 1}, Src: [4]*graph.Tensor{w, mul}}
			}
			q, k, v := mm("Qcur", wq), mm("Kcur", wk), mm("Vcur", wv)
			rope := func(name string, x *graph.Tensor) *graph.Tensor {
				return &graph.Tensor{Name: name, Op: graph.OpRope, Type: quant.F32, Shape: x.Shape, Src: [4]*graph.Tensor{x, posIn},
					Param: graph.Params{HeadDim: hd, RopeBase: 500000}}
			}
			rq, rk := rope("Qrope", q), rope("Krope", k)
			sk := &graph.Tensor{Name: "k_store", Op: graph.OpSetRows, Type: kv, Shape: kc.Shape, Src: [4]*graph.Tensor{rk, kc, posIn}}
			sv := &graph.Tensor{Name: "v_store", Op: graph.OpSetRows, Type: kv, Shape: vc.Shape, Src: [4]*graph.Tensor{v, vc, posIn}}
			att := &graph.Tensor{Name: "attn", Op: graph.OpAttention, Type: quant.F32, Shape: rq.Shape, Src: [4]*graph.Tensor{rq, sk, sv, graph.SeqIndex(pos0, 1)},
				Param: graph.Params{HeadDim: hd, NHead: heads, NHeadKV: kvHeads, Page: graph.PageCells, NKV: pos0 + 1, Scale: 0.125}}
			nodes := []*graph.Tensor{norm, mul, q, k, v, rq, rk, sk, sv, att}
			got := runNodes(t, b, nodes, map[*graph.Tensor][]float32{x: xv})
			out := map[string][]float32{}
			for n, v := range got {
				out[n.Name] = v
			}
			for name, c := range map[string]*graph.Tensor{"cache_k": kc, "cache_v": vc} {
				row, err := quant.RowSize(kv, width)
				if err != nil {
					t.Fatal(err)
				}
				raw := make([]byte, row*cells)
				if err := b.Download(c, raw); err != nil {
					t.Fatal(err)
				}
				out[name] = dequant(t, kv, raw, width*cells)
			}
			ran := map[slotKey]bool{}
			for key := range b.launcher.slots {
				ran[key] = true
			}
			return out, ran
		}
		want, _ := run(false)
		got, ran := run(true)
		for name, w := range want {
			label := fmt.Sprintf("fused %s kv=%s", name, kv)
			logNMSE(t, label, checkNMSE(t, label, w, got[name], 1e-10))
		}
		kernels := []slotKey{{"attn_norm", "mul_mw3nr_" + kernelSuffix(kv)}, {"attn", "attention"}}
		if k := b.kernels[kernels[0].kernel]; (kv == quant.Q8_0 || kv == quant.Q4_0) && k.maxWG < 32*(32/mwR) {
			// The device cannot run the 512 work-items that write a
			// block (NVIDIA's limit for this kernel is lower): the two
			// shorter fusions run instead.
			kernels = []slotKey{{"attn_norm", "mul_mw3n_q4_0"}, {"Qrope", "rope_qkv_" + kernelSuffix(kv)}, {"attn", "attention"}}
		}
		if len(ran) != len(kernels) || !ran[kernels[0]] || !ran[kernels[1]] {
			t.Errorf("kv=%s: kernels %v ran, want %v", kv, ran, kernels)
		}
	}
}

// fusedRun prepares one run of the fused-sequence tests: fusion on or off,
// every slot forgotten (which kernels ran is read from them afterwards),
// and K and V caches of kv with seeded contents loaded. done frees the
// caches and turns fusion back on.
func fusedRun(t *testing.T, b *Backend, fuse bool, kv quant.Type, width, cells int) (kc, vc *graph.Tensor, done func()) {
	t.Helper()
	b.mu.Lock()
	b.tune.fuse = fuse
	b.freeSlots()
	b.mu.Unlock()
	kc, kdata := cacheWith(t, rand.New(rand.NewPCG(1, 1)), kv, width, cells)
	vc, vdata := cacheWith(t, rand.New(rand.NewPCG(2, 2)), kv, width, cells)
	for _, c := range []struct {
		t    *graph.Tensor
		data []byte
	}{{kc, kdata}, {vc, vdata}} {
		if err := b.Load(c.t); err != nil {
			t.Fatal(err)
		}
		if err := b.Upload(c.t, c.data); err != nil {
			t.Fatal(err)
		}
	}
	return kc, vc, func() {
		b.Free(kc)
		b.Free(vc)
		b.tune.fuse = true
	}
}

// TestFusedFewTokens runs the products of a batched decode that the
// backend fuses for a few tokens on int8 activations — Q, K and V of one
// input (mul_mwq3_q4_0), gate and up with their SwiGLU
// (mul_mwq_swiglu_q4_0), a product with the ADD of its residual
// (mul_mwq_add_q4_0) — fused and op by op (mul_mwq_q4_0 per product,
// then swiglu_f32 and add_f32), and requires the same bits: a batch
// decodes the same whether or not the fusions apply. The int8 GEMV is
// forced where the device would not choose it (its generic dot4).
func TestFusedFewTokens(t *testing.T) {
	b := testBackend(t)
	if !b.tune.mwt || !b.tune.fuse {
		t.Skip("no few-token row-group GEMV on this device")
	}
	defer func(v bool) { b.tune.mwq = v }(b.tune.mwq)
	b.tune.mwq = true
	rng := rand.New(rand.NewPCG(9, 3))
	const k, mq, mkv, ff = 256, 96, 36, 130 // 36 and 130: row groups past the end of a matrix
	mk := func(name string, m int) *graph.Tensor { return leaf(t, name, quant.Q4_0, k, m, randn(rng, k*m, 0.05)) }
	wq, wk, wv, wg, wu, wo := mk("wq", mq), mk("wk", mkv), mk("wv", mkv), mk("wg", ff), mk("wu", ff), mk("wo", mq)
	for _, n := range []int{2, 5, 9} {
		x, x2, xo, res := act("x", k, n), act("x2", k, n), act("xo", k, n), act("res", mq, n)
		srcs := map[*graph.Tensor][]float32{x: randn(rng, k*n, 1), x2: randn(rng, k*n, 1), xo: randn(rng, k*n, 1), res: randn(rng, mq*n, 1)}
		run := func(fuse bool) map[string][]float32 {
			b.mu.Lock()
			b.tune.fuse = fuse
			b.freeSlots()
			b.mu.Unlock()
			defer func() { b.tune.fuse = true }()
			mm := func(name string, w, x *graph.Tensor) *graph.Tensor {
				return &graph.Tensor{Name: name, Op: graph.OpMulMat, Type: quant.F32, Shape: [4]int{w.Shape[1], n, 1, 1}, Src: [4]*graph.Tensor{w, x}}
			}
			q, kk, v := mm("q", wq, x), mm("k", wk, x), mm("v", wv, x)
			g, u := mm("gate", wg, x2), mm("up", wu, x2)
			sw := &graph.Tensor{Name: "swiglu", Op: graph.OpSwiGLU, Type: quant.F32, Shape: g.Shape, Src: [4]*graph.Tensor{g, u}}
			o := mm("o", wo, xo)
			add := &graph.Tensor{Name: "add", Op: graph.OpAdd, Type: quant.F32, Shape: o.Shape, Src: [4]*graph.Tensor{res, o}}
			got := runNodes(t, b, []*graph.Tensor{q, kk, v, g, u, sw, o, add}, srcs)
			out := map[string][]float32{}
			for node, vals := range got {
				out[node.Name] = vals
			}
			for key := range b.launcher.slots {
				out["ran "+key.node+" "+key.kernel] = nil
			}
			return out
		}
		want, got := run(false), run(true)
		for _, ran := range []string{"ran q mul_mwq3_q4_0", "ran gate mul_mwq_swiglu_q4_0", "ran o mul_mwq_add_q4_0"} {
			if _, ok := got[ran]; !ok {
				t.Errorf("n=%d: fused, no %q: the fusion did not happen", n, ran)
			}
		}
		if _, ok := want["ran q mul_mwq_q4_0"]; !ok {
			t.Errorf("n=%d: op by op, Q did not run mul_mwq_q4_0", n)
		}
		for name, w := range want {
			if strings.HasPrefix(name, "ran ") {
				continue
			}
			for i, v := range w {
				if math.Float32bits(got[name][i]) != math.Float32bits(v) {
					t.Fatalf("n=%d: %s[%d] = %v fused, %v op by op", n, name, i, got[name][i], v)
				}
			}
		}
	}
}
