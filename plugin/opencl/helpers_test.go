package opencl

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/ocelot-llm/ocelot/accel"
	"github.com/ocelot-llm/ocelot/graph"
	"github.com/ocelot-llm/ocelot/internal/metric"
	"github.com/ocelot-llm/ocelot/model"
	"github.com/ocelot-llm/ocelot/quant"
	"github.com/ocelot-llm/ocelot/ref"
)

var (
	testOnce sync.Once
	testB    *Backend
	testErr  error
	testSkip string
)

// testBackend opens the test device once per test binary. Without an
// OpenCL library or device the test is skipped with one line, unless
// OCELOT_REQUIRE_OPENCL=1 (CI), which makes it fail. A device that exists
// but fails to open is a failure either way.
func testBackend(tb testing.TB) *Backend {
	tb.Helper()
	testOnce.Do(func() {
		ds, err := Devices()
		switch {
		case err != nil:
			testSkip = oneLine(err.Error())
			return
		case len(ds) == 0:
			testSkip = "the OpenCL loader lists no device"
			return
		}
		// OCELOT_OPENCL_GENERIC=1 tests the generic kernels on a device
		// that has a faster variant.
		testB, testErr = Open(Options{Device: -1, Generic: os.Getenv("OCELOT_OPENCL_GENERIC") == "1",
			Logf: func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }})
	})
	if testSkip != "" {
		if os.Getenv("OCELOT_REQUIRE_OPENCL") == "1" {
			tb.Fatalf("opencl: no device: %s (OCELOT_REQUIRE_OPENCL=1)", testSkip)
		}
		tb.Skipf("opencl: no device: %s", testSkip)
	}
	if testErr != nil {
		tb.Fatalf("opencl: open: %v", testErr)
	}
	return testB
}

func TestMain(m *testing.M) {
	code := m.Run()
	if testB != nil {
		testB.Close()
	}
	os.Exit(code)
}

func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

func randn(rng *rand.Rand, n int, scale float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64()) * scale
	}
	return v
}

// act is an f32 intermediate [width, rows].
func act(name string, width, rows int) *graph.Tensor {
	return &graph.Tensor{Name: name, Op: graph.OpCpy, Type: quant.F32, Shape: [4]int{width, rows, 1, 1}, Kind: graph.Intermediate, Backend: graph.Accel}
}

func input(name string, v []int32) *graph.Tensor {
	return &graph.Tensor{Name: name, Type: graph.I32, Shape: [4]int{len(v), 1, 1, 1}, Kind: graph.Input, I32s: v}
}

// leaf is a weight of type t holding v quantized.
func leaf(tb testing.TB, name string, t quant.Type, width, rows int, v []float32) *graph.Tensor {
	tb.Helper()
	n, err := quant.RowSize(t, int64(width))
	if err != nil {
		tb.Fatal(err)
	}
	data := make([]byte, n*int64(rows))
	if err := quant.Quantize(t, data, v); err != nil {
		tb.Fatal(err)
	}
	return &graph.Tensor{Name: name, Type: t, Shape: [4]int{width, rows, 1, 1}, Kind: graph.Weight, Data: data}
}

func dequant(tb testing.TB, t quant.Type, data []byte, n int) []float32 {
	tb.Helper()
	v := make([]float32, n)
	if err := quant.Dequantize(t, v, data); err != nil {
		tb.Fatal(err)
	}
	return v
}

// guardFloats is the size of the guard bands around every output; a
// kernel that writes past its output damages them.
const guardFloats = 512

func guardValue(i int) float32 { return float32(i%89) - 4321.25 }

// runNodes runs nodes on b in one arena, with the given intermediate
// sources written first and a guard band before and after every
// intermediate, and returns each non-SET_ROWS node's output. Weights and
// caches not yet resident are loaded and freed afterwards.
func runNodes(tb testing.TB, b *Backend, nodes []*graph.Tensor, srcs map[*graph.Tensor][]float32) map[*graph.Tensor][]float32 {
	tb.Helper()
	var order []*graph.Tensor
	for t := range srcs {
		order = append(order, t)
	}
	for _, n := range nodes {
		n.Backend = graph.Accel
		if n.Op != graph.OpSetRows {
			order = append(order, n)
		}
	}
	var guards []*graph.Tensor
	var off int64
	place := func(t *graph.Tensor) {
		t.Backend, t.Offset = graph.Accel, off
		off += (t.Bytes() + 255) / 256 * 256
	}
	for i, t := range order {
		g := act(fmt.Sprintf("guard%d", i), guardFloats, 1)
		place(g)
		place(t)
		guards = append(guards, g)
	}
	g := act("guard_end", guardFloats, 1)
	place(g)
	guards = append(guards, g)
	for _, n := range nodes {
		for _, s := range n.Src {
			if s == nil {
				continue
			}
			s = s.Storage()
			if (s.Kind == graph.Weight || s.Kind == graph.Cache) && devOf(s) == nil {
				if err := b.Load(s); err != nil {
					tb.Fatalf("load %s: %v", s.Name, err)
				}
				tb.Cleanup(func() { b.Free(s) })
			}
		}
	}
	ar, err := b.NewArena(off)
	if err != nil {
		tb.Fatalf("arena: %v", err)
	}
	defer ar.Free()
	pattern := make([]float32, guardFloats)
	for i := range pattern {
		pattern[i] = guardValue(i)
	}
	for _, g := range guards {
		if err := b.Write(ar, g, pattern); err != nil {
			tb.Fatalf("write guard: %v", err)
		}
	}
	for t, v := range srcs {
		if err := b.Write(ar, t, v); err != nil {
			tb.Fatalf("write %s: %v", t.Name, err)
		}
	}
	if err := b.Compute(ar, graph.FuseNodes(nodes, b.Supports)); err != nil {
		tb.Fatalf("compute: %v", err)
	}
	out := map[*graph.Tensor][]float32{}
	for _, n := range nodes {
		if n.Op == graph.OpSetRows {
			continue
		}
		v := make([]float32, n.Elements())
		if err := b.Read(ar, n, v); err != nil {
			tb.Fatalf("read %s: %v", n.Name, err)
		}
		out[n] = v
	}
	if err := b.Sync(); err != nil {
		tb.Fatalf("sync: %v", err)
	}
	for _, g := range guards {
		got := make([]float32, guardFloats)
		if err := b.Read(ar, g, got); err != nil {
			tb.Fatalf("read guard: %v", err)
		}
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(pattern[i]) {
				tb.Fatalf("out-of-bounds write: %s damaged at float %d (%v)", g.Name, i, got[i])
			}
		}
	}
	return out
}

// checkNMSE fails when got is further than thr from want.
func checkNMSE(tb testing.TB, what string, want, got []float32, thr float64) float64 {
	tb.Helper()
	e := metric.NMSE(want, got)
	if !(e <= thr) {
		worst, wi := 0.0, 0
		for i := range want {
			if d := math.Abs(float64(want[i] - got[i])); d > worst || math.IsNaN(d) {
				worst, wi = d, i
			}
		}
		tb.Errorf("%s: NMSE %.3g > %.3g (worst at %d: want %g, got %g)", what, e, thr, wi, want[wi], got[wi])
	}
	return e
}

// ---------------------------------------------------------------------------
// refCPU is a test-only CPU backend built on the ref package: the host
// side of end-to-end runs (the embedding lookup, and the layers kept on
// the CPU when only some are offloaded).

type refCPU struct{}

type refArena struct{ f []float32 }

func (a *refArena) Size() int64 { return 4 * int64(len(a.f)) }
func (a *refArena) Free()       { a.f = nil }

func (refCPU) Name() string                  { return "refcpu" }
func (refCPU) Device() string                { return "ref" }
func (refCPU) Supports(n *graph.Tensor) bool { return n.Op != graph.OpFused }
func (refCPU) Caps() accel.Caps {
	return accel.Caps{WeightTypes: model.WeightTypes, KVTypes: model.KVTypes}
}
func (refCPU) Memory() accel.Memory    { return accel.HostMemory() }
func (refCPU) Profile() []accel.OpTime { return nil }
func (refCPU) ResetProfile()           {}
func (refCPU) Start() accel.StartInfo  { return accel.StartInfo{} }
func (refCPU) Load(t *graph.Tensor) error {
	if t.Kind == graph.Cache {
		t.Bufs[graph.CPU] = make([]byte, t.Bytes())
	} else {
		t.Bufs[graph.CPU] = t.Data
	}
	return nil
}
func (refCPU) Free(t *graph.Tensor) { t.Bufs[graph.CPU] = nil }
func (refCPU) Upload(t *graph.Tensor, src []byte) error {
	copy(t.Bufs[graph.CPU].([]byte), src)
	return nil
}
func (refCPU) Download(t *graph.Tensor, dst []byte) error {
	copy(dst, t.Bufs[graph.CPU].([]byte))
	return nil
}
func (refCPU) CopyRows(t *graph.Tensor, dst, src, n int) error {
	b := t.Bufs[graph.CPU].([]byte)
	rb := len(b) / t.Rows()
	copy(b[dst*rb:(dst+n)*rb], b[src*rb:(src+n)*rb])
	return nil
}
func (refCPU) NewArena(size int64) (accel.Arena, error) {
	return &refArena{f: make([]float32, (size+3)/4)}, nil
}
func (refCPU) Sync() error  { return nil }
func (refCPU) Close() error { return nil }

func (refCPU) view(a accel.Arena, t *graph.Tensor) []float32 {
	return a.(*refArena).f[t.Offset/4:][:t.Elements()]
}

func (c refCPU) Read(a accel.Arena, t *graph.Tensor, dst []float32) error {
	copy(dst, c.view(a, t))
	return nil
}

func (c refCPU) Write(a accel.Arena, t *graph.Tensor, src []float32) error {
	copy(c.view(a, t), src)
	return nil
}

// floats returns a source's values: an intermediate's view, or a leaf
// dequantized.
func (c refCPU) floats(a accel.Arena, t *graph.Tensor) ([]float32, error) {
	if t.Kind == graph.Intermediate {
		return c.view(a, t), nil
	}
	v := make([]float32, t.Elements())
	return v, quant.Dequantize(t.Type, v, t.Data)
}

func (c refCPU) Compute(a accel.Arena, nodes []*graph.Tensor) error {
	for _, n := range nodes {
		if err := c.compute(a, n); err != nil {
			return fmt.Errorf("refcpu: %s %s: %w", n.Op, n.Name, err)
		}
	}
	return nil
}

func (c refCPU) compute(a accel.Arena, n *graph.Tensor) error {
	w := n.Shape[0]
	var out []float32
	if n.Op != graph.OpSetRows {
		out = c.view(a, n)
	}
	rowsOf := func(v []float32, width int) [][]float32 {
		r := make([][]float32, len(v)/width)
		for i := range r {
			r[i] = v[i*width : (i+1)*width]
		}
		return r
	}
	switch n.Op {
	case graph.OpGetRows:
		src := n.Src[0]
		rb, _ := quant.RowSize(src.Type, int64(w))
		for t, id := range n.Src[1].I32s {
			if src.Kind == graph.Intermediate {
				copy(out[t*w:(t+1)*w], c.view(a, src)[int(id)*w:])
			} else if err := quant.Dequantize(src.Type, out[t*w:(t+1)*w], src.Data[int64(id)*rb:]); err != nil {
				return err
			}
		}
	case graph.OpRMSNorm:
		x := c.view(a, n.Src[0])
		ones := make([]float32, w)
		for i := range ones {
			ones[i] = 1
		}
		for r := 0; r < n.Rows(); r++ {
			ref.RMSNorm(out[r*w:(r+1)*w], x[r*w:(r+1)*w], ones, n.Param.Eps)
		}
	case graph.OpMul, graph.OpAdd, graph.OpSwiGLU:
		x := c.view(a, n.Src[0])
		y, err := c.floats(a, n.Src[1])
		if err != nil {
			return err
		}
		for i := range out {
			switch n.Op {
			case graph.OpMul:
				out[i] = x[i] * y[i%len(y)]
			case graph.OpAdd:
				out[i] = x[i] + y[i%len(y)]
			default:
				out[i] = ref.SiLU(x[i]) * y[i%len(y)]
			}
		}
	case graph.OpMulMat:
		wt := n.Src[0]
		rb, _ := quant.RowSize(wt.Type, int64(wt.Shape[0]))
		rw := &model.Weight{Name: wt.Name, Type: wt.Type, Rows: wt.Shape[1], Cols: wt.Shape[0], RowBytes: int(rb), Data: wt.Data}
		return ref.MatMul(rowsOf(out, w), rowsOf(c.view(a, n.Src[1]), wt.Shape[0]), rw, 4)
	case graph.OpRope:
		copy(out, c.view(a, n.Src[0]))
		var freqs []float32
		if f := n.Src[2]; f != nil {
			freqs, _ = c.floats(a, f)
		}
		for t, p := range n.Src[1].I32s {
			ref.Rope(out[t*w:(t+1)*w], n.Param.HeadDim, int(p), n.Param.RopeBase, freqs)
		}
	case graph.OpSetRows:
		cache := n.Src[1].Storage()
		buf := cache.Bufs[graph.CPU].([]byte)
		rb, _ := quant.RowSize(cache.Type, int64(cache.Shape[0]))
		x := c.view(a, n.Src[0])
		for t, cell := range n.Src[2].I32s {
			if err := quant.Quantize(cache.Type, buf[int64(cell)*rb:], x[t*cache.Shape[0]:(t+1)*cache.Shape[0]]); err != nil {
				return err
			}
		}
	case graph.OpAttention:
		p := n.Param
		kc, vc := n.Src[1].Storage(), n.Src[2].Storage()
		keys, vals := make([]float32, kc.Elements()), make([]float32, vc.Elements())
		if err := quant.Dequantize(kc.Type, keys, kc.Bufs[graph.CPU].([]byte)); err != nil {
			return err
		}
		if err := quant.Dequantize(vc.Type, vals, vc.Bufs[graph.CPU].([]byte)); err != nil {
			return err
		}
		clear(out)
		ref.Attention(rowsOf(out, w), rowsOf(c.view(a, n.Src[0]), w), keys, vals, int(n.Src[3].I32s[0]), p.NHead, p.NHeadKV, p.HeadDim, 4)
	default:
		return fmt.Errorf("op %s not implemented", n.Op)
	}
	return nil
}
