package main

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/ocelot-llm/ocelot"
	"github.com/ocelot-llm/ocelot/internal/metric"
	"github.com/ocelot-llm/ocelot/internal/testutil"
	"github.com/ocelot-llm/ocelot/quant"
	"github.com/ocelot-llm/ocelot/sample"
)

// checkJSON is train.py's check.json: what PyTorch computed for the
// weights of model.safetensors (f32) and for them with their matrices
// rounded to float16 (f16, what the F16 GGUF holds).
type checkJSON struct {
	Config struct {
		NCtx   int `json:"n_ctx"`
		NVocab int `json:"n_vocab"`
	} `json:"config"`
	Params   int64         `json:"params"`
	F32      []checkPrompt `json:"f32"`
	F16      []checkPrompt `json:"f16"`
	PPLCheck *struct {
		NCtx   int     `json:"n_ctx"`
		Chunks int     `json:"chunks"`
		Tokens []int32 `json:"tokens"`
		F32    float64 `json:"f32"`
		F16    float64 `json:"f16"`
	} `json:"ppl_check"`
}

// checkPrompt is one prompt of check.json: the last position's logits
// (float64 on the CPU, rounded to 6 decimals) and a greedy continuation
// with the top-1/top-2 margin of each of its steps.
type checkPrompt struct {
	Name          string    `json:"name"`
	Text          string    `json:"text"`
	IDs           []int32   `json:"ids"`
	TopIDs        []int32   `json:"top_ids"`
	TopLogits     []float64 `json:"top_logits"`
	Logits        []float32 `json:"logits"`
	Greedy        []int32   `json:"greedy"`
	GreedyMargins []float64 `json:"greedy_margins"`
}

// Tolerances of ocelot's float32 arithmetic against PyTorch's float64 on
// the same weights: a logit within logitTol, the whole vector within
// logitNMSE, perplexity within pplTol (relative). Two logits closer than
// 2*logitTol may come out in either order.
const (
	logitTol  = 2e-3
	logitNMSE = 1e-8
	pplTol    = 1e-4
)

func readCheck(t *testing.T, path string) *checkJSON {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c checkJSON
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(c.F32) == 0 || len(c.F16) == 0 {
		t.Fatalf("%s has no prompts (f32: %d, f16: %d)", path, len(c.F32), len(c.F16))
	}
	return &c
}

// matchPyTorch exports weights as typ and checks, on each backend, that
// ocelot computes what PyTorch did (want): the prompt's tokens, the last
// position's logits, the top 5, the greedy continuation up to its first
// near-tie, and the perplexity of the check chunks (ppl, if not 0).
func matchPyTorch(t *testing.T, weights, vocab string, typ quant.Type, c *checkJSON, want []checkPrompt, ppl float64, backends ...string) {
	out := filepath.Join(t.TempDir(), "model.gguf")
	if _, err := export(options{Weights: weights, Tokenizer: vocab, Out: out, Type: typ}); err != nil {
		t.Fatal(err)
	}
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			m, err := ocelot.Load(out, ocelot.Options{Backend: backend, NCtx: c.Config.NCtx, TypeK: "f32", TypeV: "f32", CPUPrecision: "float", Threads: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			for _, p := range want {
				t.Run(p.Name, func(t *testing.T) { matchPrompt(t, m, p) })
			}
			if ppl != 0 && c.PPLCheck != nil {
				got := perplexity(t, m, c.PPLCheck.Tokens, c.PPLCheck.NCtx, c.PPLCheck.Chunks)
				if d := math.Abs(got-ppl) / ppl; d > pplTol {
					t.Errorf("perplexity of the %d check chunks: ocelot %.6f, PyTorch %.6f (relative difference %.2g > %g)", c.PPLCheck.Chunks, got, ppl, d, pplTol)
				}
			}
		})
	}
}

func matchPrompt(t *testing.T, m *ocelot.Model, p checkPrompt) {
	if p.Text != "" {
		ids, err := m.Tokenize(p.Text, true, false)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids, p.IDs) {
			t.Errorf("ocelot tokenizes the prompt %q to %v; check.json has %v", p.Text, ids, p.IDs)
		}
	}
	s, err := m.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Eval(context.Background(), p.IDs)
	if err != nil {
		t.Fatal(err)
	}
	e := metric.NMSE(p.Logits, got)
	if e > logitNMSE {
		t.Errorf("logits: NMSE %.3g against PyTorch's, want ≤ %g", e, logitNMSE)
	}
	var worst float64
	for i, w := range p.Logits {
		worst = max(worst, math.Abs(float64(got[i]-w)))
	}
	t.Logf("%d prompt tokens: logits NMSE %.2g, largest difference %.2g", len(p.IDs), e, worst)
	for i, id := range p.TopIDs {
		if d := math.Abs(float64(got[id]) - p.TopLogits[i]); d > logitTol {
			t.Errorf("top %d (token %d): logit %.5f, PyTorch %.5f", i+1, id, got[id], p.TopLogits[i])
		}
	}
	top := topK(got, len(p.TopIDs))
	for i, id := range top {
		if w := p.TopIDs[i]; id != w && math.Abs(float64(p.Logits[id]-p.Logits[w])) >= 2*logitTol {
			t.Errorf("top %d: token %d, PyTorch's is %d (logits %v, PyTorch %v)", i+1, id, w, top, p.TopIDs)
			break
		}
	}

	s.Reset()
	res, err := s.Generate(context.Background(), p.IDs, sample.Greedy(), len(p.Greedy), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range p.Greedy {
		if i >= len(res.Tokens) {
			if res.Stopped != ocelot.StopEOG || !m.Tokenizer().IsEOG(w) {
				t.Errorf("greedy: stopped (%s) after %d tokens; PyTorch goes on with %d", res.Stopped, i, w)
			}
			break
		}
		if got := res.Tokens[i]; got != w {
			if p.GreedyMargins[i] >= 2*logitTol {
				t.Errorf("greedy token %d: %d, PyTorch %d (its margin %.4f): ocelot %v, PyTorch %v", i, got, w, p.GreedyMargins[i], res.Tokens, p.Greedy)
			}
			break // a near-tie: the rest may differ
		}
	}
}

func topK(x []float32, k int) []int32 {
	idx := make([]int32, len(x))
	for i := range idx {
		idx[i] = int32(i)
	}
	sort.SliceStable(idx, func(a, b int) bool { return x[idx[a]] > x[idx[b]] })
	return idx[:k]
}

// perplexity is llama-perplexity's method over the first chunks of tokens
// (as cmd/ocelot/perplexity.go computes it): each chunk of nCtx tokens
// from an empty cache, its first token replaced by BOS, the second half
// scored.
func perplexity(t *testing.T, m *ocelot.Model, tokens []int32, nCtx, chunks int) float64 {
	t.Helper()
	s, err := m.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var nll float64
	var n int
	for c := 0; c < chunks; c++ {
		chunk := slices.Clone(tokens[c*nCtx : (c+1)*nCtx])
		chunk[0] = m.Tokenizer().BOS()
		s.Reset()
		logits, err := s.EvalAll(context.Background(), chunk)
		if err != nil {
			t.Fatal(err)
		}
		for pos := nCtx / 2; pos < nCtx-1; pos++ {
			row := logits[pos]
			mx := float64(slices.Max(row))
			var sum float64
			for _, v := range row {
				sum += math.Exp(float64(v) - mx)
			}
			nll += mx + math.Log(sum) - float64(row[chunk[pos+1]])
			n++
		}
	}
	return math.Exp(nll / float64(n))
}

// TestFixtureMatchesPyTorch proves the export layout against PyTorch on a
// tiny model that train.py made (testdata/README.md says how): an untied
// model with grouped-query attention and Llama 3.1 RoPE factors, whose
// weights are large enough that attention is far from uniform. Exported
// as F32 and F16, ocelot must compute PyTorch's logits, top 5, greedy
// continuation and perplexity on the reference engine and the CPU
// backend.
func TestFixtureMatchesPyTorch(t *testing.T) {
	c := readCheck(t, filepath.Join("testdata", "tiny-check.json"))
	weights, vocab := filepath.Join("testdata", "tiny.safetensors"), filepath.Join("testdata", "tiny-tokenizer.gguf")
	t.Run("f32", func(t *testing.T) {
		matchPyTorch(t, weights, vocab, quant.F32, c, c.F32, c.PPLCheck.F32, "ref", "cpu")
	})
	t.Run("f16", func(t *testing.T) {
		matchPyTorch(t, weights, vocab, quant.F16, c, c.F16, c.PPLCheck.F16, "ref", "cpu")
	})
}

// TestTrainedMatchesPyTorch does the same for a real training run's
// output: model.safetensors and check.json in $OCELOT_TRAIN_RESULT
// (default .devrun/train/result), the tokenizer in $OCELOT_TRAIN_DATA
// (default .devrun/train). It skips when they are absent.
func TestTrainedMatchesPyTorch(t *testing.T) {
	data := os.Getenv("OCELOT_TRAIN_DATA")
	if data == "" {
		data = filepath.Join(testutil.RepoRoot(t), ".devrun", "train")
	}
	result := os.Getenv("OCELOT_TRAIN_RESULT")
	if result == "" {
		result = filepath.Join(data, "result")
	}
	weights, check, vocab := filepath.Join(result, "model.safetensors"), filepath.Join(result, "check.json"), filepath.Join(data, "tokenizer.gguf")
	for _, p := range []string{weights, check, vocab} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("no training run: %s is absent (set OCELOT_TRAIN_RESULT and OCELOT_TRAIN_DATA)", p)
		}
	}
	c := readCheck(t, check)
	var p32, p16 float64
	if c.PPLCheck != nil {
		p32, p16 = c.PPLCheck.F32, c.PPLCheck.F16
	}
	t.Run("f32", func(t *testing.T) { matchPyTorch(t, weights, vocab, quant.F32, c, c.F32, p32, "ref") })
	t.Run("f16", func(t *testing.T) { matchPyTorch(t, weights, vocab, quant.F16, c, c.F16, p16, "ref", "cpu") })
}
