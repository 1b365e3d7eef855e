package ocelot_test

import (
	"context"
	"math"
	"os"
	"testing"

	"github.com/ocelot-llm/ocelot"
	"github.com/ocelot-llm/ocelot/internal/testmodel"
)

// Embeddings are unit vectors of the embedding width, the same on every
// engine (to the engines' rounding), independent of the other inputs and
// of the batch sizes, and different for different texts.
func TestEmbed(t *testing.T) {
	inputs := [][]int32{{1, 2, 3, 4, 5, 6, 7}, {9, 8, 7}, {1, 2, 3, 4, 5, 6, 7}}
	var first [][]float32
	for _, o := range []ocelot.Options{{Backend: "ref"}, {Backend: "cpu", CPUPrecision: "float"}, {Backend: "cpu", NBatch: 2, NUbatch: 2, CPUPrecision: "float"}} {
		o.NCtx = 32
		m := loadTiny(t, o)
		for _, pool := range []ocelot.Pooling{ocelot.PoolMean, ocelot.PoolLast} {
			es, err := m.Embed(context.Background(), inputs, pool)
			if err != nil {
				t.Fatal(err)
			}
			if len(es) != 3 || len(es[0]) != m.Config().NEmbd {
				t.Fatalf("%d embeddings of %d", len(es), len(es[0]))
			}
			for i, e := range es {
				var ss float64
				for _, x := range e {
					ss += float64(x) * float64(x)
				}
				if math.Abs(ss-1) > 1e-5 {
					t.Errorf("%s %s: embedding %d has length² %v", o.Backend, pool, i, ss)
				}
			}
			if d := dist(es[0], es[2]); d > 1e-6 {
				t.Errorf("%s %s: one input embedded twice differs by %v", o.Backend, pool, d)
			}
			if d := dist(es[0], es[1]); d < 1e-3 {
				t.Errorf("%s %s: different inputs embed alike (%v)", o.Backend, pool, d)
			}
			if pool == ocelot.PoolMean {
				if first == nil {
					first = es
				} else if d := dist(first[1], es[1]); d > 1e-4 {
					t.Errorf("%s (b=%d): differs from ref by %v", o.Backend, o.NBatch, d)
				}
			}
		}
	}
	m := loadTiny(t, ocelot.Options{NCtx: 4, Backend: "cpu"})
	if _, err := m.Embed(context.Background(), [][]int32{{1, 2, 3, 4, 5}}, ocelot.PoolMean); err == nil {
		t.Error("an input longer than n_ctx was embedded")
	}
	if _, err := m.Embed(context.Background(), [][]int32{{}}, ocelot.PoolMean); err == nil {
		t.Error("an empty input was embedded")
	}
}

func dist(a, b []float32) float64 {
	var s float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		s += d * d
	}
	return math.Sqrt(s)
}

// The OpenCL backend (all layers) embeds as the CPU does (PoCL in CI).
func TestEmbedOpenCL(t *testing.T) {
	m, err := ocelot.Load(testmodel.Preset(t, "tiny"), ocelot.Options{NCtx: 32, Backend: "opencl", NGPULayers: 99})
	if err != nil {
		if os.Getenv("OCELOT_REQUIRE_OPENCL") == "1" {
			t.Fatal(err)
		}
		t.Skipf("opencl: no device: %v", err)
	}
	defer m.Close()
	cpu := loadTiny(t, ocelot.Options{NCtx: 32, Backend: "cpu", CPUPrecision: "float"})
	inputs := [][]int32{{1, 2, 3, 4, 5, 6, 7}, {9, 8, 7}}
	want, err := cpu.Embed(context.Background(), inputs, ocelot.PoolMean)
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.Embed(context.Background(), inputs, ocelot.PoolMean)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if d := dist(want[i], got[i]); d > 1e-3 {
			t.Errorf("input %d: OpenCL differs from the CPU by %v", i, d)
		}
	}
}

// Options.OnLoad follows the upload of the weights to an accelerator (PoCL
// in CI) up to all their bytes.
func TestLoadOnLoad(t *testing.T) {
	var calls [][2]int64
	m, err := ocelot.Load(testmodel.Preset(t, "tiny"), ocelot.Options{NCtx: 32, Backend: "opencl", NGPULayers: 99,
		OnLoad: func(done, total int64) { calls = append(calls, [2]int64{done, total}) }})
	if err != nil {
		if os.Getenv("OCELOT_REQUIRE_OPENCL") == "1" {
			t.Fatal(err)
		}
		t.Skipf("opencl: no device: %v", err)
	}
	defer m.Close()
	if len(calls) < 2 {
		t.Fatalf("OnLoad called %d times for a whole model's weights", len(calls))
	}
	for i, c := range calls {
		if c[1] != calls[0][1] || c[0] <= 0 || c[0] > c[1] || i > 0 && c[0] <= calls[i-1][0] {
			t.Fatalf("call %d of %v: not a growing count of the same total", i, calls)
		}
	}
	if last := calls[len(calls)-1]; last[0] != last[1] {
		t.Errorf("the last call %v is not the whole", last)
	}
}
