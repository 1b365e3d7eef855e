package ref_test

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/ocelot-llm/ocelot/gguf"
	"github.com/ocelot-llm/ocelot/internal/metric"
	"github.com/ocelot-llm/ocelot/internal/testmodel"
	"github.com/ocelot-llm/ocelot/model"
	"github.com/ocelot-llm/ocelot/quant"
	"github.com/ocelot-llm/ocelot/ref"
	"github.com/ocelot-llm/ocelot/synth"
)

func load(t *testing.T, path string) (*ref.Model, *gguf.File) {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	m, err := model.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	return ref.New(m), f
}

// prompt is a fixed token sequence inside any vocabulary of 256+ tokens.
func prompt(n int) []int32 {
	p := make([]int32, n)
	for i := range p {
		p[i] = int32((i*7919 + 13) % 250)
	}
	return p
}

func evalAll(t *testing.T, m *ref.Model, toks []int32, nBatch, nUbatch, threads int, tk, tv quant.Type) [][]float32 {
	t.Helper()
	kv, err := ref.NewKVCache(m.Config, 128, tk, tv)
	if err != nil {
		t.Fatal(err)
	}
	st := &ref.State{KV: kv}
	out, err := m.Eval(context.Background(), st, toks, nBatch, nUbatch, true, threads)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(toks) || st.Pos != len(toks) {
		t.Fatalf("got %d logit rows and pos %d for %d tokens", len(out), st.Pos, len(toks))
	}
	return out
}

func argmax(v []float32) int {
	best := 0
	for i := range v {
		if v[i] > v[best] {
			best = i
		}
	}
	return best
}

func TestLoadTiny(t *testing.T) {
	m, _ := load(t, testmodel.Preset(t, "tiny"))
	c := m.Config
	if c.NEmbd != 256 || c.NLayer != 4 || c.NHead != 8 || c.NHeadKV != 2 || c.NFF != 768 || c.HeadDim != 32 {
		t.Fatalf("config = %+v", c)
	}
	if m.Tied || m.Output.Type != quant.Q6_K || m.TokEmbd.Type != quant.Q4_0 {
		t.Fatalf("tied %v, output %s, embd %s", m.Tied, m.Output.Type, m.TokEmbd.Type)
	}
	if len(m.RopeFreqs) != 16 || m.RopeFreqs[0] != 1 || m.RopeFreqs[15] != 8 {
		t.Fatalf("rope freqs = %v", m.RopeFreqs)
	}
	if c.RopeBase != 500000 || c.RMSEps != 1e-5 {
		t.Fatalf("rope base %v, eps %v", c.RopeBase, c.RMSEps)
	}
}

// The micro-batch split, the logical batch and the thread count change
// nothing: ref computes each position the same way whatever its batch.
func TestBatchingDoesNotChangeLogits(t *testing.T) {
	m, _ := load(t, testmodel.Preset(t, "tiny"))
	toks := prompt(40)
	want := evalAll(t, m, toks, 512, 512, 1, quant.F16, quant.F16)
	for _, c := range []struct{ b, ub, threads int }{{64, 8, 2}, {7, 3, 1}, {1, 1, 2}, {40, 40, 3}, {16, 5, 2}} {
		got := evalAll(t, m, toks, c.b, c.ub, c.threads, quant.F16, quant.F16)
		if e := metric.NMSERows(want, got); e > 1e-12 {
			t.Errorf("n_batch %d, n_ubatch %d, %d threads: NMSE %g against one batch", c.b, c.ub, c.threads, e)
		}
	}
}

// Last-position logits equal the last row of all-position logits, and a
// sequence evaluated in two calls equals one call.
func TestIncrementalEval(t *testing.T) {
	m, _ := load(t, testmodel.Preset(t, "tiny"))
	toks := prompt(20)
	all := evalAll(t, m, toks, 512, 512, 2, quant.F16, quant.F16)
	kv, _ := ref.NewKVCache(m.Config, 64, quant.F16, quant.F16)
	st := &ref.State{KV: kv}
	if _, err := m.Eval(context.Background(), st, toks[:12], 512, 512, false, 2); err != nil {
		t.Fatal(err)
	}
	last, err := m.Eval(context.Background(), st, toks[12:], 512, 4, false, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(last) != 1 {
		t.Fatalf("got %d rows, want the last only", len(last))
	}
	if e := metric.NMSERows(all[19:], last); e > 1e-12 {
		t.Fatalf("incremental logits differ: NMSE %g", e)
	}
}

// Quantized KV caches stay close to the f32 cache: each type adds its own
// rounding and nothing else.
func TestKVTypes(t *testing.T) {
	m, _ := load(t, testmodel.Preset(t, "tiny"))
	toks := prompt(48)
	base := evalAll(t, m, toks, 512, 16, 2, quant.F32, quant.F32)
	for _, c := range []struct {
		k, v  quant.Type
		limit float64
	}{
		{quant.F16, quant.F16, 1e-5},
		{quant.Q8_0, quant.Q8_0, 1e-3},
		{quant.Q4_0, quant.Q4_0, 0.1},
		{quant.Q8_0, quant.F16, 1e-3},
	} {
		got := evalAll(t, m, toks, 512, 16, 2, c.k, c.v)
		e := metric.NMSERows(base, got)
		agree := 0
		for i := range got {
			if argmax(got[i]) == argmax(base[i]) {
				agree++
			}
		}
		t.Logf("KV %s/%s: NMSE %.3g, top-1 agreement %d/%d", c.k, c.v, e, agree, len(got))
		if e > c.limit || e == 0 && c.k != quant.F32 {
			t.Errorf("KV %s/%s: NMSE %g against f32 (limit %g)", c.k, c.v, e, c.limit)
		}
	}
}

func TestTiedModel(t *testing.T) {
	p, _ := synth.PresetByName("tiny")
	o := synth.DefaultOptions(p)
	o.Tied = true
	m, f := load(t, testmodel.Path(t, o))
	if !m.Tied || m.Output != m.TokEmbd {
		t.Fatal("tied model did not reuse token_embd")
	}
	if _, ok := f.Tensor("output.weight"); ok {
		t.Fatal("tied model has output.weight")
	}
	out := evalAll(t, m, prompt(5), 512, 512, 1, quant.F16, quant.F16)
	if len(out[0]) != m.NVocab {
		t.Fatalf("logits of %d, want %d", len(out[0]), m.NVocab)
	}
}

func TestRopeFreqsMatter(t *testing.T) {
	m, _ := load(t, testmodel.Preset(t, "tiny"))
	toks := prompt(30)
	with := evalAll(t, m, toks, 512, 512, 2, quant.F32, quant.F32)
	m.RopeFreqs = nil
	without := evalAll(t, m, toks, 512, 512, 2, quant.F32, quant.F32)
	if e := metric.NMSERows(with, without); e < 1e-8 {
		t.Fatalf("rope_freqs made no difference (NMSE %g)", e)
	}
	if e := metric.NMSERows(with[:1], without[:1]); e > 1e-12 {
		t.Fatalf("position 0 depends on rope_freqs (NMSE %g); RoPE at 0 is the identity", e)
	}
}

func TestEvalErrors(t *testing.T) {
	m, _ := load(t, testmodel.Preset(t, "tiny"))
	kv, _ := ref.NewKVCache(m.Config, 8, quant.F16, quant.F16)
	st := &ref.State{KV: kv}
	ctx := context.Background()
	if _, err := m.Eval(ctx, st, prompt(9), 512, 512, false, 1); err == nil || !strings.Contains(err.Error(), "n_ctx is 8") {
		t.Errorf("9 tokens into 8 cells: err = %v", err)
	}
	if _, err := m.Eval(ctx, st, []int32{1, int32(m.NVocab)}, 512, 512, false, 1); err == nil || !strings.Contains(err.Error(), "outside the vocabulary") {
		t.Errorf("bad token id: err = %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := m.Eval(cancelled, &ref.State{KV: kv}, prompt(4), 512, 2, false, 1); err != context.Canceled {
		t.Errorf("cancelled context: err = %v", err)
	}
	if _, err := ref.NewKVCache(m.Config, 8, quant.Q6_K, quant.F16); err == nil {
		t.Error("q6_K KV cache accepted")
	}
}

func TestLogitsFinite(t *testing.T) {
	m, _ := load(t, testmodel.Preset(t, "small"))
	for _, row := range evalAll(t, m, prompt(16), 512, 512, 2, quant.Q4_0, quant.Q4_0) {
		for _, v := range row {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatal("non-finite logit")
			}
		}
	}
}
