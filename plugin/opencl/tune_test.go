package opencl

import (
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ocelot-llm/ocelot/accel"
	"github.com/ocelot-llm/ocelot/graph"
	"github.com/ocelot-llm/ocelot/internal/metric"
	"github.com/ocelot-llm/ocelot/quant"
)

// tuneWeights are resident random weights of a small model's product
// shapes: Q4_0 in three shapes (two of one), a Q6_K and an f16.
func tuneWeights(t *testing.T, b *Backend) []*graph.Tensor {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	var ws []*graph.Tensor
	for _, s := range []struct {
		typ  quant.Type
		k, m int
	}{{quant.Q4_0, 256, 256}, {quant.Q4_0, 256, 256}, {quant.Q4_0, 256, 640}, {quant.Q4_0, 640, 256}, {quant.Q6_K, 256, 1000}, {quant.F16, 96, 200}} {
		ws = append(ws, randomWeight(t, rng, s.typ, s.k, s.m))
	}
	return loadAll(t, b, ws)
}

// loadAll makes the weights ws resident on b until the test ends.
func loadAll(t *testing.T, b *Backend, ws []*graph.Tensor) []*graph.Tensor {
	t.Helper()
	for _, w := range ws {
		if err := b.Load(w); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, w := range ws {
			b.Free(w)
		}
	})
	return ws
}

// openTuned opens a second backend on the test device with its own cache
// folder, so that tuning it leaves the shared test backend as it is.
func openTuned(t *testing.T) *Backend {
	t.Helper()
	testBackend(t)
	b, err := Open(Options{Device: -1, CacheDir: t.TempDir(), Generic: os.Getenv("OCELOT_OPENCL_GENERIC") == "1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestTune: a quick tune measures every decision of the weights' types
// and classes, the default first; what it chose is correct (every
// product, through Compute, against float64 sums), cached, and taken from
// the cache by the next Tune; a planted wrong candidate is rejected and a
// planted slow one is not chosen.
func TestTune(t *testing.T) {
	b := openTuned(t)
	ws := tuneWeights(t, b)
	rep, err := b.Tune(ws, accel.TuneOptions{Quick: true, Model: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.FromCache || rep.File == "" || rep.Partial {
		t.Fatalf("first tune: from cache %v, file %q, partial %v", rep.FromCache, rep.File, rep.Partial)
	}
	seen := map[string]bool{}
	for _, r := range rep.Rows {
		seen[r.Type+" "+r.Class] = true
		if len(r.Candidates) < 2 || r.Candidates[0].Name != "default" || r.Default != "default" {
			t.Errorf("%s %s: candidates %v", r.Type, r.Class, r.Candidates)
		}
		if r.Chosen == "" || r.ChosenTime <= 0 || r.ChosenTime > r.DefaultTime {
			t.Errorf("%s %s: chose %q in %v, default %v", r.Type, r.Class, r.Chosen, r.ChosenTime, r.DefaultTime)
		}
		t.Logf("%s %s (%d tokens, %d products): %s %v, default %v", r.Type, r.Class, r.Tokens, r.Products, r.Chosen, r.ChosenTime, r.DefaultTime)
	}
	for _, typ := range []string{"q4_0", "q6_K", "f16"} {
		for _, class := range []string{"one", "few", "many"} {
			if !seen[typ+" "+class] {
				t.Errorf("no decision for %s %s", typ, class)
			}
		}
	}
	checkTunedProducts(t, b, ws)
	chosen := b.tune.prod

	// The cache: the same choices, nothing measured.
	b2 := openTunedDir(t, b.opts.CacheDir)
	rep2, err := b2.Tune(ws2(t, b2, ws), accel.TuneOptions{Quick: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rep2.FromCache || rep2.File != rep.File || len(b2.tune.prod) != len(chosen) {
		t.Fatalf("second tune: from cache %v, file %q (first %q), %d choices (first %d)", rep2.FromCache, rep2.File, rep.File, len(b2.tune.prod), len(chosen))
	}
	for k, c := range chosen {
		if b2.tune.prod[k] != c {
			t.Errorf("%v: cached %v, chosen %v", k, b2.tune.prod[k], c)
		}
	}

	// Planted faults: the candidate that won q4_0 "one" made wrong in its
	// first output value, and every candidate kernel (mul_vr*, mul_mm64)
	// made a second slower. The wrong one must be rejected, the slow ones
	// not chosen.
	var wrong string
	for _, r := range rep.Rows {
		if r.Type == "q4_0" && r.Class == "one" {
			wrong = r.Chosen
		}
	}
	if wrong == "default" {
		wrong = "mul_vr1/1"
	}
	tuneHook = func(name string, out []float32, took *time.Duration) {
		if name == wrong {
			out[0] += 1000
		}
		if strings.HasPrefix(name, "mul_") {
			*took += time.Second
		}
	}
	defer func() { tuneHook = nil }()
	rep3, err := b.Tune(ws, accel.TuneOptions{Quick: true, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	rejected := false
	for _, r := range rep3.Rows {
		if strings.HasPrefix(r.Chosen, "mul_") {
			t.Errorf("%s %s: chose the planted slow %s", r.Type, r.Class, r.Chosen)
		}
		for _, c := range r.Candidates {
			if c.Name == wrong && r.Type == "q4_0" && r.Class == "one" {
				rejected = strings.HasPrefix(c.Rejected, "wrong")
			}
		}
	}
	if !rejected {
		t.Errorf("the planted wrong candidate %s was not rejected: %+v", wrong, rep3.Rows)
	}
	for k := range b.tune.prod {
		t.Errorf("%v: a candidate kernel was kept though every one was planted slow", k)
	}
	checkTunedProducts(t, b, ws)
}

// openTunedDir is openTuned with a given cache folder.
func openTunedDir(t *testing.T, dir string) *Backend {
	t.Helper()
	b, err := Open(Options{Device: -1, CacheDir: dir, Generic: os.Getenv("OCELOT_OPENCL_GENERIC") == "1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// ws2 loads copies of ws on b (a tensor is resident on one backend).
func ws2(t *testing.T, b *Backend, ws []*graph.Tensor) []*graph.Tensor {
	t.Helper()
	var out []*graph.Tensor
	for _, w := range ws {
		out = append(out, &graph.Tensor{Name: w.Name, Type: w.Type, Shape: w.Shape, Kind: graph.Weight, Data: w.Data})
	}
	return loadAll(t, b, out)
}

// checkTunedProducts runs every weight's product with 1, 3 and 20 tokens
// (each class) through Compute with the backend's tuning and compares
// each with float64 sums of the dequantized weights (NMSE, the
// conformance threshold: some default paths quantize the activations).
func checkTunedProducts(t *testing.T, b *Backend, ws []*graph.Tensor) {
	t.Helper()
	rng := rand.New(rand.NewPCG(9, 9))
	for _, w := range ws {
		for _, n := range []int{1, 3, 20} {
			x := act("x", w.Shape[0], n)
			x.Offset = 0
			y := &graph.Tensor{Name: "y", Op: graph.OpMulMat, Type: quant.F32, Shape: [4]int{w.Shape[1], n, 1, 1},
				Src: [4]*graph.Tensor{w, x}, Kind: graph.Intermediate, Backend: graph.Accel}
			y.Offset = (x.Bytes() + 255) / 256 * 256
			ar, err := b.NewArena(y.Offset + y.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			xv := randn(rng, w.Shape[0]*n, 1)
			if err := b.Write(ar, x, xv); err != nil {
				t.Fatal(err)
			}
			if err := b.Compute(ar, []*graph.Tensor{y}); err != nil {
				t.Fatal(err)
			}
			got := make([]float32, y.Elements())
			if err := b.Read(ar, y, got); err != nil {
				t.Fatal(err)
			}
			ar.Free()
			want := refProduct(t, w, xv, n)
			if e := metric.NMSE(want, got); !(e <= metric.MatMulNMSE) {
				t.Errorf("%s, %d tokens, tuned: NMSE %.3g against float64 sums", w.Name, n, e)
			}
		}
	}
}

// TestTuneClasses: the token classes follow the GEMM's threshold.
func TestTuneClasses(t *testing.T) {
	b := &Backend{tune: tuning{mmMin: 16}}
	for _, c := range []struct {
		rows int
		want prodClass
	}{{1, classOne}, {2, classFew}, {15, classFew}, {16, classMany}, {512, classMany}} {
		if got := b.classOf(c.rows); got != c.want {
			t.Errorf("classOf(%d) = %v, want %v", c.rows, got, c.want)
		}
	}
}

// refProduct is w times the n rows of x, summed in float64.
func refProduct(t *testing.T, w *graph.Tensor, x []float32, n int) []float32 {
	t.Helper()
	k, m := w.Shape[0], w.Shape[1]
	rs, err := quant.RowSize(w.Type, int64(k))
	if err != nil {
		t.Fatal(err)
	}
	row := make([]float32, k)
	out := make([]float32, m*n)
	for r := 0; r < m; r++ {
		if err := quant.Dequantize(w.Type, row, w.Data[int64(r)*rs:int64(r+1)*rs]); err != nil {
			t.Fatal(err)
		}
		for j := 0; j < n; j++ {
			var s float64
			for i, v := range row {
				s += float64(v) * float64(x[j*k+i])
			}
			out[j*m+r] = float32(s)
		}
	}
	return out
}
