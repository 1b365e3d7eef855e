package opencl

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ocelot-llm/ocelot/accel"
	"github.com/ocelot-llm/ocelot/gguf"
	"github.com/ocelot-llm/ocelot/graph"
	"github.com/ocelot-llm/ocelot/internal/testmodel"
	"github.com/ocelot-llm/ocelot/model"
	"github.com/ocelot-llm/ocelot/quant"
	"github.com/ocelot-llm/ocelot/ref"
)

func argmax(v []float32) int32 {
	best := 0
	for i := range v {
		if v[i] > v[best] {
			best = i
		}
	}
	return int32(best)
}

// session runs a model through the graph, scheduler and runner with the
// OpenCL backend in the accelerator slot and refCPU on the host.
type session struct {
	tb     testing.TB
	b      *Backend
	m      *graph.Model
	kv     *graph.KV
	policy graph.Policy
	run    accel.Runner
	ctx    accel.Context
	pos    int
	loaded []*graph.Tensor
}

func newSession(tb testing.TB, b *Backend, m *graph.Model, nCtx int, kvType quant.Type, ngl int) *session {
	s := &session{tb: tb, b: b, m: m, kv: graph.NewKV(m.Config, nCtx, kvType, kvType)}
	s.policy = graph.Policy{NLayer: m.Config.NLayer, NGPULayers: ngl, Accel: "opencl", Supports: b.Supports}
	s.run.Backends = [graph.MaxBackends]accel.Backend{refCPU{}, b}
	for l := range m.Config.NLayer {
		for _, c := range []*graph.Tensor{s.kv.K[l], s.kv.V[l]} {
			if s.policy.CacheOnAccel(l) {
				s.load(c)
			} else {
				refCPU{}.Load(c)
			}
		}
	}
	return s
}

func (s *session) load(t *graph.Tensor) {
	if devOf(t) != nil {
		return
	}
	if err := s.b.Load(t); err != nil {
		s.tb.Fatalf("load %s: %v", t.Name, err)
	}
	s.loaded = append(s.loaded, t)
}

func (s *session) close() {
	s.ctx.Close()
	for _, t := range s.loaded {
		s.b.Free(t)
	}
}

// forward runs one micro-batch and returns its logits (nil for none).
func (s *session) forward(tokens []int32, want model.Logits) []float32 {
	g, err := graph.Build(s.m, s.kv, tokens, s.pos, want)
	if err != nil {
		s.tb.Fatal(err)
	}
	if err := graph.Schedule(g, s.policy); err != nil {
		s.tb.Fatal(err)
	}
	for _, n := range g.Nodes {
		if n.Backend != graph.Accel {
			continue
		}
		for _, src := range n.Src {
			if src != nil && src.Kind == graph.Weight {
				s.load(src)
			}
		}
	}
	out, err := s.run.Run(&s.ctx, g)
	if err != nil {
		s.tb.Fatal(err)
	}
	s.pos += len(tokens)
	return out
}

// TestEndToEnd runs the tiny and small presets with every layer offloaded
// and every KV type: a prompt in micro-batches (one large enough for the
// tiled GEMM, one for the GEMV), then a greedy continuation of 32 tokens,
// which must equal the reference engine's, with logits within NMSE 5e-4
// at every step (see e2eLimit for a q4_0 cache behind Q8_0 activations). One configuration offloads only half of the layers, so
// activations cross between the backends.
func TestEndToEnd(t *testing.T) {
	b := testBackend(t)
	type config struct {
		preset string
		kv     quant.Type
		ngl    int
	}
	var cfgs []config
	for _, p := range []string{"tiny", "small"} {
		for _, kv := range model.KVTypes {
			cfgs = append(cfgs, config{p, kv, 99})
		}
	}
	cfgs = append(cfgs, config{"tiny", quant.F16, 2})
	const promptLen, nUbatch, genTokens, nCtx = 24, 16, 32, 64
	for _, c := range cfgs {
		t.Run(fmt.Sprintf("%s/%s/ngl=%d", c.preset, c.kv, c.ngl), func(t *testing.T) {
			f, err := gguf.Open(testmodel.Preset(t, c.preset))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			rm0, err := model.Load(f)
			if err != nil {
				t.Fatal(err)
			}
			rm := ref.New(rm0)
			rng := rand.New(rand.NewPCG(8, uint64(len(c.preset))))
			prompt := make([]int32, promptLen)
			for i := range prompt {
				prompt[i] = int32(1 + rng.IntN(rm.NVocab-1))
			}

			// The reference: prompt, then greedy tokens.
			kvc, err := ref.NewKVCache(rm.Config, nCtx, c.kv, c.kv)
			if err != nil {
				t.Fatal(err)
			}
			st := &ref.State{KV: kvc}
			logits, err := rm.Eval(context.Background(), st, prompt, nUbatch, nUbatch, false, 4)
			if err != nil {
				t.Fatal(err)
			}
			want := [][]float32{logits[len(logits)-1]}
			var wantTok []int32
			for range genTokens {
				tok := argmax(want[len(want)-1])
				wantTok = append(wantTok, tok)
				l, err := rm.Forward(st, []int32{tok}, model.LogitsLast, 4)
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, l[0])
			}

			// OpenCL: the same prompt, then the reference's tokens (teacher
			// forcing), so every step's logits are compared even where the
			// two would part ways.
			start := time.Now()
			s := newSession(t, b, graph.NewModel(rm.Model), nCtx, c.kv, c.ngl)
			defer s.close()
			var last []float32
			for u := 0; u < promptLen; u += nUbatch {
				ub := prompt[u:min(u+nUbatch, promptLen)]
				w := model.LogitsNone
				if u+len(ub) == promptLen {
					w = model.LogitsLast
				}
				last = s.forward(ub, w)
			}
			got := [][]float32{last}
			for _, tok := range wantTok {
				got = append(got, s.forward([]int32{tok}, model.LogitsLast))
			}
			// The greedy continuation is identical when the device's argmax
			// is the reference's token at every step. A step where they
			// differ is accepted only as a near-tie: the reference's margin
			// between the two tokens is smaller than the logit error
			// measured at that step (which is itself within NMSE 5e-4); a
			// quantized KV cache turns summation-order differences into
			// occasional one-level flips, which decide such ties.
			worst, match, ties := 0.0, 0, 0
			limit := e2eLimit(b, c.kv)
			for i := range wantTok {
				worst = max(worst, checkNMSE(t, fmt.Sprintf("logits at step %d", i), want[i], got[i], limit))
				g := argmax(got[i])
				if g == wantTok[i] {
					match++
					continue
				}
				w := want[i]
				margin := w[wantTok[i]] - w[g]
				maxErr := float32(0)
				for j := range w {
					maxErr = max(maxErr, abs32(w[j]-got[i][j]))
				}
				if margin <= 2*maxErr {
					ties++
					t.Logf("step %d: near-tie: ref picks %d over %d by %.4f; the logits differ by up to %.4f", i, wantTok[i], g, margin, maxErr)
					continue
				}
				t.Errorf("step %d: greedy token differs: ref %d (%.5f), opencl %d (%.5f; ref %.5f), logit error at most %.4f",
					i, wantTok[i], w[wantTok[i]], g, got[i][g], w[g], maxErr)
			}
			worst = max(worst, checkNMSE(t, "logits after the last token", want[genTokens], got[genTokens], limit))
			t.Logf("E2E %s kv=%s ngl=%d: greedy %d/%d tokens identical (%d near-ties), max logits NMSE %.3g (%v)", c.preset, c.kv, c.ngl,
				match, genTokens, ties, worst, time.Since(start).Round(time.Millisecond))
		})
	}
}

// e2eLimit is the logits' NMSE limit against ref: 5e-4, except for a q4_0
// cache when prompts run through the integer tensor-core GEMM, whose Q8_0
// activations (as in the CPU backend's int8 path and llama.cpp) move K and
// V in their last bits: some values then round to a neighbouring q4_0
// level, which moves the logits by about 1e-2. The conformance suite's
// q4_0 limit applies then (6e-2, conformance.Limits, docs/CONFORMANCE.md);
// the greedy text must still be identical.
func e2eLimit(b *Backend, kv quant.Type) float64 {
	if kv == quant.Q4_0 && b.tune.mmq {
		return 6e-2
	}
	return matmulNMSE
}

func abs32(x float32) float32 {
	if x < 0 {
		return -x
	}
	return x
}
