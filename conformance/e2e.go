package conformance

import (
	"context"
	"fmt"
	"math"
	"runtime"

	"github.com/google/go-cmp/cmp"

	"github.com/ocelot-llm/ocelot"
	"github.com/ocelot-llm/ocelot/model"
	"github.com/ocelot-llm/ocelot/sample"
)

// Config is one end-to-end configuration.
type Config struct {
	Model   string `json:"model"` // file
	Name    string `json:"name"`  // preset or file name, for reports
	Backend string `json:"backend"`
	Device  string `json:"device,omitempty"`
	NGL     int    `json:"ngl"`
	KV      string `json:"kv"` // K and V cache type
	NBatch  int    `json:"n_batch"`
	NUbatch int    `json:"n_ubatch"`
	Threads int    `json:"threads"`
}

// E2E is the comparison of one configuration with the reference engine.
type E2E struct {
	Config
	// MaxNMSE is the largest NMSE of a position's logits.
	MaxNMSE float64 `json:"max_nmse"`
	// Top1 is the fraction of positions whose most likely token agrees.
	Top1 float64 `json:"top1"`
	// MaxKL is the largest KL divergence of a position's next-token
	// distribution from the reference's, in nats.
	MaxKL float64 `json:"max_kl"`
	// Greedy says whether the greedy continuation equals the reference's.
	Greedy bool   `json:"greedy_match"`
	Diff   string `json:"diff,omitempty"` // the continuations' difference, when they differ
	Pass   bool   `json:"pass"`
	Err    string `json:"error,omitempty"`
}

// E2ELimits are the end-to-end thresholds for one KV cache type. Q8_0
// activations (the CPU backend's default, as llama.cpp's) and other
// summation orders move the logits of these models by about 5e-4 (NMSE)
// with f32/f16/q8_0 caches. A q4_0 cache adds its own effect: when two
// engines compute K and V a little differently, some values round to a
// neighbouring q4_0 step (an eighth of a block's range), which moves the
// logits by about 2e-2. A broken kernel moves them by far more.
type E2ELimits struct {
	NMSE, Top1, KL float64
}

// Limits returns the thresholds for a KV cache type.
func Limits(kv string) E2ELimits {
	switch kv {
	case "q4_0":
		return E2ELimits{NMSE: 6e-2, Top1: 0.95, KL: 0.6}
	case "q8_0":
		return E2ELimits{NMSE: 3e-3, Top1: 0.95, KL: 0.05}
	}
	return E2ELimits{NMSE: 2e-3, Top1: 0.95, KL: 0.03}
}

// GreedyTokens is the length of the greedy continuations compared.
const GreedyTokens = 32

// reference holds ref's answers for one model and KV type.
type reference struct {
	logits [][]float32
	greedy []int32
}

// Prompt is the token sequence the end-to-end checks evaluate: a fixed,
// varied pattern inside any vocabulary of 256 or more tokens, after BOS.
func Prompt(m *ocelot.Model, n int) []int32 {
	text := "The ocelot (Leopardus pardalis) is a medium-sized wild cat, 1234 km² of range; 오셀롯은 야행성이다. func main() { fmt.Println(42) }"
	ids, err := m.Tokenize(text, true, false)
	if err != nil || len(ids) == 0 {
		ids = []int32{0}
	}
	for len(ids) < n {
		ids = append(ids, ids[1+len(ids)%max(1, len(ids)-1)])
	}
	return ids[:n]
}

func evalAll(m *ocelot.Model, prompt []int32) ([][]float32, []int32, error) {
	s, err := m.NewSession()
	if err != nil {
		return nil, nil, err
	}
	defer s.Close()
	logits, err := s.EvalAll(context.Background(), prompt)
	if err != nil {
		return nil, nil, err
	}
	s.Reset()
	res, err := s.Generate(context.Background(), prompt, sample.Greedy(), GreedyTokens, nil)
	if err != nil {
		return nil, nil, err
	}
	return logits, res.Tokens, nil
}

func options(c Config) ocelot.Options {
	return ocelot.Options{NCtx: 256, NBatch: c.NBatch, NUbatch: c.NUbatch, Threads: c.Threads, NGPULayers: c.NGL,
		TypeK: c.KV, TypeV: c.KV, Backend: c.Backend, Device: c.Device}
}

// RunE2E compares each configuration with the reference engine on a
// 48-token prompt: the logits at every position and a greedy continuation.
func RunE2E(cfgs []Config, promptLen int) []E2E {
	refs := map[string]*reference{}
	var out []E2E
	for _, c := range cfgs {
		r := E2E{Config: c}
		key := c.Model + "|" + c.KV
		want, ok := refs[key]
		if !ok {
			want = &reference{}
			rc := c
			rc.Backend, rc.NGL, rc.NBatch, rc.NUbatch = "ref", 0, 0, 0
			m, err := ocelot.Load(c.Model, options(rc))
			if err == nil {
				want.logits, want.greedy, err = evalAll(m, Prompt(m, promptLen))
				m.Close()
			}
			if err != nil {
				r.Err = "reference: " + err.Error()
				out = append(out, r)
				continue
			}
			refs[key] = want
		}
		m, err := ocelot.Load(c.Model, options(c))
		if err != nil {
			r.Err = err.Error()
			out = append(out, r)
			continue
		}
		got, greedy, err := evalAll(m, Prompt(m, promptLen))
		m.Close()
		if err != nil {
			r.Err = err.Error()
			out = append(out, r)
			continue
		}
		agree := 0
		for i := range got {
			r.MaxNMSE = math.Max(r.MaxNMSE, NMSE(want.logits[i], got[i]))
			r.MaxKL = math.Max(r.MaxKL, KL(want.logits[i], got[i]))
			if argmax(got[i]) == argmax(want.logits[i]) {
				agree++
			}
		}
		r.Top1 = float64(agree) / float64(len(got))
		r.Diff = cmp.Diff(want.greedy, greedy)
		r.Greedy = r.Diff == ""
		if !r.Greedy {
			r.Diff = fmt.Sprintf("greedy continuation (-ref +%s):\n%s", c.Backend, r.Diff)
		}
		lim := Limits(c.KV)
		r.Pass = r.MaxNMSE <= lim.NMSE && r.Top1 >= lim.Top1 && r.MaxKL <= lim.KL && r.Greedy
		out = append(out, r)
	}
	return out
}

// Model is a model file to run end to end, with the name reports use.
type Model struct {
	Name, Path string
	NLayer     int
}

// Configs returns the end-to-end configurations for a backend: -ngl 0,
// half and all (with an accelerator), every KV type, n_batch/n_ubatch
// combinations including the original analysis's 64/8, and 1 and several
// threads. quick runs fewer.
func Configs(models []Model, backend, device string, quick bool) []Config {
	var out []Config
	for _, m := range models {
		ngls := []int{0}
		if backend != "cpu" {
			ngls = []int{0, m.NLayer / 2, m.NLayer + 1}
		}
		batches := [][2]int{{512, 512}, {64, 8}, {7, 3}}
		var kvs []string
		for _, t := range model.KVTypes {
			kvs = append(kvs, t.String())
		}
		// One thread, and every core (the pool's split of the work).
		threads := []int{1}
		if n := runtime.NumCPU(); n > 1 {
			threads = append(threads, n)
		}
		if quick {
			batches, threads = [][2]int{{64, 8}, {512, 512}}, threads[len(threads)-1:]
		}
		for _, ngl := range ngls {
			for _, kv := range kvs {
				for bi, b := range batches {
					for ti, t := range threads {
						// Every KV type with the first batch setting and
						// thread count; the rest with f16 only.
						if (bi > 0 || ti > 0) && kv != "f16" {
							continue
						}
						if quick && ngl != ngls[len(ngls)-1] && kv != "f16" {
							continue
						}
						out = append(out, Config{Model: m.Path, Name: m.Name, Backend: backend, Device: device, NGL: ngl, KV: kv, NBatch: b[0], NUbatch: b[1], Threads: t})
					}
				}
			}
		}
	}
	return out
}
