package ocelot_test

// Fidelity to llama.cpp (issue 4). testdata/golden/*.json hold what
// llama.cpp's CPU implementation (node-llama-cpp 3.21.1's prebuilt
// libraries, llama.cpp v0.4.0) says about ocelot's synthetic tiny and small
// models (and an all-f32 tiny model), and about the shipped trained model
// (trained-f16.json, six Go prompts; its Q4_0 quantization is checked in
// cmd/ocelot, which can quantize): llama.cpp's token ids for the prompts,
// its top-10 next-token probabilities at every position (teacher-forced)
// and its 32-token greedy continuations.
// scripts/golden/make-goldens.sh writes them; this test needs no node.
// OCELOT_GOLDEN_DIR points it at other golden files (experiments), and
// OCELOT_GOLDEN_EMULATE=1 adds a diagnostic to its log. docs/CONFORMANCE.md
// reports the agreement and explains where and why the engines differ.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ocelot-llm/ocelot"
	"github.com/ocelot-llm/ocelot/gguf"
	"github.com/ocelot-llm/ocelot/internal/testmodel"
	"github.com/ocelot-llm/ocelot/model"
	"github.com/ocelot-llm/ocelot/quant"
	"github.com/ocelot-llm/ocelot/ref"
	"github.com/ocelot-llm/ocelot/sample"
	"github.com/ocelot-llm/ocelot/synth"
)

// goldenFile is one file written by scripts/golden/make-goldens.mjs.
type goldenFile struct {
	Model struct {
		Preset     string `json:"preset"`
		Type       string `json:"type"`
		OutputType string `json:"outputType"`
		Seed       uint64 `json:"seed"`
		Vocab      string `json:"vocab"`
		SHA256     string `json:"sha256"`
	} `json:"model"`
	LlamaCpp struct {
		NodeLlamaCpp string `json:"nodeLlamaCpp"`
		Release      string `json:"release"`
	} `json:"llamaCpp"`
	Settings struct {
		TopK      int    `json:"topK"`
		GreedyN   int    `json:"greedyN"`
		KVType    string `json:"kvType"`
		FlashAttn string `json:"flashAttn"`
	} `json:"settings"`
	Prompts []goldenPrompt `json:"prompts"`
}

type goldenPrompt struct {
	Name    string  `json:"name"`
	Text    string  `json:"text"`
	Special bool    `json:"special"`
	Tokens  []int32 `json:"tokens"`
	Greedy  []int32 `json:"greedy"`
	Stop    string  `json:"stop"` // "length" or "eog"
	// Top[i] is llama.cpp's top-K of the distribution that follows
	// Tokens[0..i], as [id, probability] pairs, most likely first.
	Top [][][2]float64 `json:"top"`
}

// goldenLimits are the thresholds each model must meet.
type goldenLimits struct {
	minTop1 float64 // fraction of positions whose argmax agrees
	// maxTieMargin bounds every disagreement: where ocelot's top-1 differs,
	// llama.cpp's top-1/top-2 probability margin, and where a greedy
	// continuation leaves llama.cpp's, ocelot's lead over llama.cpp's token.
	maxTieMargin float64
	maxTop5Diff  float64 // max |p_ocelot - p_llama.cpp| over llama.cpp's top 5
	minGreedy    int     // prompts whose 32-token greedy continuation is identical
}

// goldenLimitsFor returns the thresholds a golden file's model must meet.
//
// The goals are top-1 agreement on ≥ 99% of positions, top-5
// probabilities within 0.02 and the same 32-token greedy continuation on
// nearly every prompt. Where llama.cpp rounds no activation (f32 weights,
// f32 KV cache, no flash attention: tiny-f32.json) ref matches it to float
// rounding, and the limits are far tighter than the goals. On the Q4_0
// models the top-1 and greedy goals are met, the probability one is not,
// for a measured reason (docs/CONFORMANCE.md): llama.cpp's CPU backend
// rounds every matmul input to Q8_0 (Q8_K for the Q6_K output), ref
// computes in float32, and where a rounding lands differently the logits
// move by ~1.5% of their spread. llama.cpp disagrees with itself by as
// much: one token per batch instead of the whole prompt moves its top-5
// probabilities by up to 0.022 (tiny) and 0.032 (small).
//
// Measured on the 2-core AMD EPYC machine with llama.cpp's defaults (f16
// KV cache, flash attention auto): tiny 371/372 = 99.73% top-1, max top-5
// Δp 0.032, greedy 8/8, the one disagreement at a margin of 0.016; small
// 372/372, 0.024, 8/8. Other llama.cpp settings (OCELOT_GOLDEN_DIR
// experiments) measured ≥ 99.73% top-1, Δp up to 0.049 and greedy 7/8 or
// 8/8, hence 0.05 for the probabilities. Whatever the rounding, ocelot
// may only disagree with llama.cpp at a near tie (maxTieMargin).
func goldenLimitsFor(g *goldenFile) goldenLimits {
	n := len(g.Prompts)
	float := func(t string) bool { return t == "f32" || t == "f16" || t == "bf16" }
	switch {
	case strings.HasPrefix(g.Model.Preset, "trained"):
		// The trained model (issue 21): its distributions are peaked, so
		// the tighter goals hold — top-1 on ≥ 99.5% of positions,
		// every greedy continuation identical. Measured: 218/219 =
		// 99.54%, the one disagreement at a margin of 0.0005, max top-5
		// Δp 0.0014, greedy 6/6.
		return goldenLimits{minTop1: 0.995, maxTieMargin: 0.01, maxTop5Diff: 0.01, minGreedy: n}
	case g.Model.Type == "f32" && g.Model.OutputType == "f32" && g.Settings.KVType == "f32" && g.Settings.FlashAttn == "off":
		// Measured: 372/372, max top-5 Δp 1.9e-5, greedy 8/8. 1e-3 leaves
		// room for another order of float sums, not for a RoPE frequency
		// base off by 1% (Δp 0.0027) or missing rope_freqs (Δp 0.0077).
		return goldenLimits{minTop1: 0.99, maxTieMargin: 0.01, maxTop5Diff: 1e-3, minGreedy: n}
	case float(g.Model.Type) && float(g.Model.OutputType):
		// f32 weights, f16 KV cache: measured 100% top-1, Δp ≤ 0.0015, greedy 8/8.
		return goldenLimits{minTop1: 0.99, maxTieMargin: 0.05, maxTop5Diff: 0.01, minGreedy: n - 1}
	}
	return goldenLimits{minTop1: 0.99, maxTieMargin: 0.10, maxTop5Diff: 0.05, minGreedy: n - 1}
}

func goldenDir() string {
	if d := os.Getenv("OCELOT_GOLDEN_DIR"); d != "" {
		return d
	}
	return filepath.Join("testdata", "golden")
}

func TestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(goldenDir(), "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no golden files in %s: run scripts/golden/make-goldens.sh", goldenDir())
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(t *testing.T) {
			t.Parallel()
			checkGolden(t, f)
		})
	}
}

func readGolden(t *testing.T, path string) *goldenFile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var g goldenFile
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(g.Prompts) == 0 || g.Model.SHA256 == "" {
		t.Fatalf("%s: no prompts or no model sha256", path)
	}
	for _, p := range g.Prompts {
		if len(p.Top) != len(p.Tokens) {
			t.Fatalf("%s: prompt %s has %d tokens but %d rows of probabilities", path, p.Name, len(p.Tokens), len(p.Top))
		}
		for i, row := range p.Top {
			if len(row) < 5 {
				t.Fatalf("%s: prompt %s position %d: %d probabilities, need at least 5", path, p.Name, i, len(row))
			}
		}
	}
	return &g
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// goldenModel returns the model file the golden was made from, made by
// internal/testmodel with the options the golden records, and checks that
// its bytes are the ones llama.cpp saw.
func goldenModel(t *testing.T, g *goldenFile, goldenPath string) string {
	t.Helper()
	if g.Model.Preset == "trained-f16" {
		// The shipped model trained on Go's source (docs/MODEL.md).
		path := filepath.Join("testdata", "model", "ocelot-go-f16.gguf")
		if sum := fileSHA256(t, path); sum != g.Model.SHA256 {
			t.Fatalf("%s: %s has SHA-256 %s, but the golden was made from %s: regenerate the golden (docs/MODEL.md)", goldenPath, path, sum, g.Model.SHA256)
		}
		return path
	}
	p, err := synth.PresetByName(g.Model.Preset)
	if err != nil {
		t.Fatalf("%s: %v", goldenPath, err)
	}
	o := synth.DefaultOptions(p)
	if o.Type, err = quant.ParseType(g.Model.Type); err != nil {
		t.Fatalf("%s: model type: %v", goldenPath, err)
	}
	if o.OutputType, err = quant.ParseType(g.Model.OutputType); err != nil {
		t.Fatalf("%s: model output type: %v", goldenPath, err)
	}
	o.Seed = g.Model.Seed
	if g.Model.Vocab != "built-in" {
		t.Fatalf("%s: vocab %q: only the built-in vocabulary is supported here", goldenPath, g.Model.Vocab)
	}
	path := testmodel.Path(t, o)
	if sum := fileSHA256(t, path); sum != g.Model.SHA256 {
		// The cache may predate a change to synth that kept its
		// FormatVersion: make the file afresh before blaming the golden.
		fresh := filepath.Join(t.TempDir(), filepath.Base(path))
		if err := synth.Generate(fresh, o); err != nil {
			t.Fatal(err)
		}
		if sum = fileSHA256(t, fresh); sum != g.Model.SHA256 {
			t.Fatalf("%s: synth now writes the %s model with SHA-256 %s, but the golden was made from %s.\n"+
				"synth (weights or vocabulary) changed since the goldens were written: regenerate them with\n"+
				"    (cd scripts/golden && npm run install-lean) && scripts/golden/make-goldens.sh\n"+
				"and update docs/CONFORMANCE.md with the new agreement.", goldenPath, g.Model.Preset, sum, g.Model.SHA256)
		}
		t.Logf("cached %s is stale (synth changed without bumping synth.FormatVersion); using a fresh copy", path)
		path = fresh
	}
	return path
}

// goldenStats are the measured agreement of one model.
type goldenStats struct {
	positions, top1 int
	maxDiff         float64 // over llama.cpp's top-5 ids
	maxDiffAt       string
	// worstTieMargin is the largest llama.cpp top-1/top-2 probability
	// margin at a position where ocelot's top-1 differs.
	worstTieMargin float64
	disagreements  []string
	greedyMatch    int
	greedyWorst    float64 // largest ocelot probability lead over llama.cpp's token where a continuation leaves it
	greedyNotes    []string
}

func checkGolden(t *testing.T, goldenPath string) {
	g := readGolden(t, goldenPath)
	path := goldenModel(t, g, goldenPath)

	nctx := 0
	for _, p := range g.Prompts {
		nctx = max(nctx, len(p.Tokens)+len(p.Greedy))
	}
	// The reference engine with llama.cpp's KV cache type (f16 by default).
	m, err := ocelot.Load(path, ocelot.Options{NCtx: nctx, TypeK: g.Settings.KVType, TypeV: g.Settings.KVType, Backend: "ref"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	var st goldenStats
	var tokErrs []string
	for _, p := range g.Prompts {
		// ocelot's tokenizer must give llama.cpp's ids (BOS included).
		ids, err := m.Tokenize(p.Text, true, p.Special)
		if err != nil {
			tokErrs = append(tokErrs, fmt.Sprintf("%s: %v", p.Name, err))
		} else if d := cmp.Diff(p.Tokens, ids); d != "" {
			tokErrs = append(tokErrs, fmt.Sprintf("%s: token ids differ from llama.cpp's (-llama.cpp +ocelot):\n%s", p.Name, d))
		}

		// One teacher-forced pass over the prompt and llama.cpp's greedy
		// continuation gives every distribution both checks need: ref's
		// logits do not depend on how tokens are batched (ref's
		// TestBatchingDoesNotChangeLogits), so the argmax after each
		// continuation token is exactly what greedy decoding would pick
		// there, and TestGoldenGreedyIsGenerate checks that on the tiny model.
		probs := evalProbs(t, m, append(append([]int32{}, p.Tokens...), p.Greedy...))

		for i, row := range p.Top {
			pr := probs[i]
			st.positions++
			want, got := int(row[0][0]), argmax64(pr)
			if got == want {
				st.top1++
			} else {
				margin := row[0][1] - row[1][1]
				st.worstTieMargin = math.Max(st.worstTieMargin, margin)
				st.disagreements = append(st.disagreements, fmt.Sprintf(
					"%s pos %d: llama.cpp %d:%.4f %d:%.4f (margin %.4f); ocelot %d:%.4f %d:%.4f",
					p.Name, i, want, row[0][1], int(row[1][0]), row[1][1], margin, got, pr[got], want, pr[want]))
			}
			for _, e := range row[:5] {
				if d := math.Abs(pr[int(e[0])] - e[1]); d > st.maxDiff {
					st.maxDiff = d
					st.maxDiffAt = fmt.Sprintf("%s pos %d token %d: ocelot %.5f, llama.cpp %.5f", p.Name, i, int(e[0]), pr[int(e[0])], e[1])
				}
			}
		}

		// Greedy: ocelot's continuation follows llama.cpp's as long as its
		// argmax is llama.cpp's next token.
		ours := []int32{}
		stop := "length"
		for k := 0; k <= len(p.Greedy); k++ {
			pr := probs[len(p.Tokens)-1+k]
			got := int32(argmax64(pr))
			if k == len(p.Greedy) {
				if p.Stop == "eog" && !m.Tokenizer().IsEOG(got) {
					ours = append(ours, got) // llama.cpp stopped here, ocelot would go on
				} else if p.Stop == "eog" {
					stop = "eog"
				}
				break
			}
			if want := p.Greedy[k]; got != want {
				lead := pr[got] - pr[want]
				st.greedyWorst = math.Max(st.greedyWorst, lead)
				st.greedyNotes = append(st.greedyNotes, fmt.Sprintf("%s: leaves llama.cpp's continuation at step %d of %d: ocelot %d:%.4f, llama.cpp's %d:%.4f (lead %.4f)",
					p.Name, k, len(p.Greedy), got, pr[got], want, pr[want], lead))
				if m.Tokenizer().IsEOG(got) {
					stop = "eog" // ocelot would stop here
				} else {
					ours = append(ours, got)
				}
				break
			}
			ours = append(ours, got)
		}
		if d := cmp.Diff(p.Greedy, ours); d != "" || stop != p.Stop {
			t.Logf("%s: greedy continuation (-llama.cpp +ocelot, up to where they part), stop %s vs %s:\n%s", p.Name, p.Stop, stop, d)
		} else {
			st.greedyMatch++
		}
	}

	if os.Getenv("OCELOT_GOLDEN_EMULATE") != "" {
		logEmulation(t, g, path)
	}

	lim := goldenLimitsFor(g)
	frac := float64(st.top1) / float64(st.positions)
	t.Logf("%s (%s/%s, KV %s) vs llama.cpp %s (node-llama-cpp %s, KV %s, flash-attn %s): top-1 %d/%d = %.2f%%, max top-5 |Δp| %.2g (%s), greedy %d/%d",
		g.Model.Preset, g.Model.Type, g.Model.OutputType, g.Settings.KVType, g.LlamaCpp.Release, g.LlamaCpp.NodeLlamaCpp,
		g.Settings.KVType, g.Settings.FlashAttn, st.top1, st.positions, 100*frac, st.maxDiff, st.maxDiffAt, st.greedyMatch, len(g.Prompts))
	for _, d := range st.disagreements {
		t.Logf("top-1 differs at %s", d)
	}
	for _, d := range st.greedyNotes {
		t.Logf("greedy %s", d)
	}

	if len(tokErrs) > 0 {
		t.Errorf("ocelot's tokenizer disagrees with llama.cpp on %d of %d prompts:\n%s", len(tokErrs), len(g.Prompts), strings.Join(tokErrs, "\n"))
	}
	if frac < lim.minTop1 {
		t.Errorf("top-1 agreement %.2f%% (%d/%d), want ≥ %.2f%%", 100*frac, st.top1, st.positions, 100*lim.minTop1)
	}
	if st.worstTieMargin > lim.maxTieMargin {
		t.Errorf("top-1 differs where llama.cpp's choice leads by %.4f, want disagreements only at near ties (margin ≤ %.3f)", st.worstTieMargin, lim.maxTieMargin)
	}
	if st.maxDiff > lim.maxTop5Diff {
		t.Errorf("top-5 probabilities differ by up to %.4f (%s), want ≤ %.3f", st.maxDiff, st.maxDiffAt, lim.maxTop5Diff)
	}
	if st.greedyMatch < lim.minGreedy {
		t.Errorf("greedy continuations match on %d of %d prompts, want ≥ %d", st.greedyMatch, len(g.Prompts), lim.minGreedy)
	}
	if st.greedyWorst > lim.maxTieMargin {
		t.Errorf("a greedy continuation leaves llama.cpp's where ocelot's choice leads by %.4f, want only near ties (≤ %.3f)", st.greedyWorst, lim.maxTieMargin)
	}
}

// evalProbs runs ids through a fresh session of m and returns the
// next-token distribution after every position.
func evalProbs(t *testing.T, m *ocelot.Model, ids []int32) [][]float64 {
	t.Helper()
	s, err := m.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	logits, err := s.EvalAll(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	probs := make([][]float64, len(logits))
	for i, l := range logits {
		probs[i] = softmax64(l)
	}
	return probs
}

// TestGoldenGreedyIsGenerate backs TestGolden's shortcut: on the tiny model,
// greedy decoding with Session.Generate (one token per step) gives the
// argmaxes of one teacher-forced pass over its own continuation. (Three of
// the prompts keep it quick; ref's TestBatchingDoesNotChangeLogits covers
// the rest of the argument.)
func TestGoldenGreedyIsGenerate(t *testing.T) {
	t.Parallel()
	path := filepath.Join(goldenDir(), "tiny.json")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("no %s (OCELOT_GOLDEN_DIR without a tiny model)", path)
	}
	g := readGolden(t, path)
	m, err := ocelot.Load(goldenModel(t, g, path), ocelot.Options{NCtx: 256, TypeK: g.Settings.KVType, TypeV: g.Settings.KVType, Backend: "ref"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for i, p := range g.Prompts {
		if i%3 != 0 {
			continue
		}
		s, err := m.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Generate(context.Background(), p.Tokens, sample.Greedy(), g.Settings.GreedyN, nil)
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Tokens) == 0 {
			t.Fatalf("%s: Generate made no tokens (stopped: %s)", p.Name, res.Stopped)
		}
		probs := evalProbs(t, m, append(append([]int32{}, p.Tokens...), res.Tokens...))
		var forced []int32
		for k := range res.Tokens {
			forced = append(forced, int32(argmax64(probs[len(p.Tokens)-1+k])))
		}
		if d := cmp.Diff(res.Tokens, forced); d != "" {
			t.Errorf("%s: Generate's tokens (-) differ from the teacher-forced argmaxes (+):\n%s", p.Name, d)
		}
	}
}

// softmax64 is the full-vocabulary softmax in float64.
func softmax64(logits []float32) []float64 {
	maxv := math.Inf(-1)
	for _, v := range logits {
		maxv = math.Max(maxv, float64(v))
	}
	p := make([]float64, len(logits))
	var sum float64
	for i, v := range logits {
		p[i] = math.Exp(float64(v) - maxv)
		sum += p[i]
	}
	for i := range p {
		p[i] /= sum
	}
	return p
}

// argmax64 returns the most likely id, the lowest on ties (as llama.cpp's
// greedy sampler).
func argmax64(p []float64) int {
	best := 0
	for i, v := range p {
		if v > p[best] {
			best = i
		}
	}
	return best
}

// logEmulation logs how closely ref and ggmlForward reproduce llama.cpp:
// top-1 agreement, the largest top-5 difference, and for how many leading
// positions of each prompt every top-5 probability is within 1e-4 (before
// the first rounding step that lands differently in llama.cpp).
func logEmulation(t *testing.T, g *goldenFile, path string) {
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	net0, err := model.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	net := ref.New(net0)
	kvType, err := quant.ParseType(g.Settings.KVType)
	if err != nil {
		t.Fatal(err)
	}
	type agg struct {
		top1, pos, exact int
		maxDiff          float64
	}
	var plain, emu agg
	ref0, err := ocelot.Load(path, ocelot.Options{NCtx: 512, TypeK: g.Settings.KVType, TypeV: g.Settings.KVType, Backend: "ref"})
	if err != nil {
		t.Fatal(err)
	}
	defer ref0.Close()
	for _, p := range g.Prompts {
		for _, run := range []struct {
			a     *agg
			probs [][]float64
		}{{&plain, evalProbs(t, ref0, p.Tokens)}, {&emu, ggmlForward(t, net, p.Tokens, kvType)}} {
			leading := true
			for i, row := range p.Top {
				pr := run.probs[i]
				run.a.pos++
				if argmax64(pr) == int(row[0][0]) {
					run.a.top1++
				}
				d := 0.0
				for _, e := range row[:5] {
					d = math.Max(d, math.Abs(pr[int(e[0])]-e[1]))
				}
				run.a.maxDiff = math.Max(run.a.maxDiff, d)
				if leading = leading && d <= 1e-4; leading {
					run.a.exact++
				}
			}
		}
	}
	for _, r := range []struct {
		name string
		a    agg
	}{{"ref", plain}, {"ref + ggml's activation rounding", emu}} {
		t.Logf("emulation: %s vs llama.cpp: top-1 %d/%d = %.2f%%, max top-5 |Δp| %.2g, leading positions within 1e-4: %d of %d",
			r.name, r.a.top1, r.a.pos, 100*float64(r.a.top1)/float64(r.a.pos), r.a.maxDiff, r.a.exact, r.a.pos)
	}
}

// ggmlForward is a diagnostic, not a reference: ref's forward pass with
// every matmul input rounded as ggml's CPU backend rounds it — through the
// weight type's vec_dot_type (Q8_0 for Q4_0 and Q8_0 weights, Q8_K for
// Q6_K, F16 for F16) — and the KV cache in kvType. With
// OCELOT_GOLDEN_EMULATE=1, TestGolden logs how well it reproduces
// llama.cpp (docs/CONFORMANCE.md). It returns the next-token distribution
// after every token.
func ggmlForward(t *testing.T, m *ref.Model, tokens []int32, kvType quant.Type) [][]float64 {
	t.Helper()
	n := len(tokens)
	rows := func(w int) [][]float32 {
		r := make([][]float32, n)
		for i := range r {
			r[i] = make([]float32, w)
		}
		return r
	}
	matmul := func(out, x [][]float32, w *model.Weight) {
		xq := rows(len(x[0]))
		for i := range x {
			copy(xq[i], x[i])
			roundAsVecDot(t, w.Type, xq[i])
		}
		if err := ref.MatMul(out, xq, w, 0); err != nil {
			t.Fatal(err)
		}
	}
	kv, err := ref.NewKVCache(m.Config, n, kvType, kvType)
	if err != nil {
		t.Fatal(err)
	}
	x, xb := rows(m.NEmbd), rows(m.NEmbd)
	for i, id := range tokens {
		if err := m.TokEmbd.Row(int(id), x[i]); err != nil {
			t.Fatal(err)
		}
	}
	norm := func(w []float32) {
		for i := range x {
			ref.RMSNorm(xb[i], x[i], w, m.RMSEps)
		}
	}
	add := func(y [][]float32) {
		for i := range x {
			for j := range x[i] {
				x[i][j] += y[i][j]
			}
		}
	}
	for l := range m.Layers {
		L := &m.Layers[l]
		norm(L.AttnNorm)
		q, k, v := rows(m.NHead*m.HeadDim), rows(m.NEmbdKV()), rows(m.NEmbdKV())
		matmul(q, xb, L.Wq)
		matmul(k, xb, L.Wk)
		matmul(v, xb, L.Wv)
		for i := range n {
			ref.Rope(q[i], m.HeadDim, i, m.RopeBase, m.RopeFreqs)
			ref.Rope(k[i], m.HeadDim, i, m.RopeBase, m.RopeFreqs)
			if err := kv.Put(l, i, k[i], v[i]); err != nil {
				t.Fatal(err)
			}
		}
		keys, vals := make([]float32, n*m.NEmbdKV()), make([]float32, n*m.NEmbdKV())
		if err := kv.Get(l, n, keys, vals); err != nil {
			t.Fatal(err)
		}
		att, o := rows(m.NHead*m.HeadDim), rows(m.NEmbd)
		ref.Attention(att, q, keys, vals, 0, m.NHead, m.NHeadKV, m.HeadDim, 0)
		matmul(o, att, L.Wo)
		add(o)
		norm(L.FFNNorm)
		gate, up, down := rows(m.NFF), rows(m.NFF), rows(m.NEmbd)
		matmul(gate, xb, L.WGate)
		matmul(up, xb, L.WUp)
		for i := range gate {
			for j := range gate[i] {
				gate[i][j] = ref.SiLU(gate[i][j]) * up[i][j]
			}
		}
		matmul(down, gate, L.WDown)
		add(down)
	}
	norm(m.OutputNorm)
	logits := rows(m.NVocab)
	matmul(logits, xb, m.Output)
	probs := make([][]float64, n)
	for i := range logits {
		probs[i] = softmax64(logits[i])
	}
	return probs
}

// roundAsVecDot rounds x through the type ggml's CPU backend converts a
// matmul's activations to for weights of type w.
func roundAsVecDot(t *testing.T, w quant.Type, x []float32) {
	var via quant.Type
	switch w {
	case quant.Q4_0, quant.Q8_0:
		via = quant.Q8_0
	case quant.F16:
		via = quant.F16
	case quant.Q6_K:
		roundQ8K(x)
		return
	default:
		return // F32 (and BF16, whose vec_dot_type is BF16, not modelled)
	}
	n, err := quant.RowSize(via, int64(len(x)))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, n)
	if err := quant.Quantize(via, buf, x); err != nil {
		t.Fatal(err)
	}
	if err := quant.Dequantize(via, x, buf); err != nil {
		t.Fatal(err)
	}
}

// roundQ8K rounds x as ggml's quantize_row_q8_K_ref does: blocks of 256,
// scale max/-127 (max the element of largest magnitude, sign kept), a
// float32 scale and int8 values.
func roundQ8K(x []float32) {
	for b := 0; b+256 <= len(x); b += 256 {
		blk := x[b : b+256]
		var amax, maxv float32
		for _, v := range blk {
			if a := float32(math.Abs(float64(v))); a > amax {
				amax, maxv = a, v
			}
		}
		if amax == 0 {
			continue
		}
		iscale := -127 / maxv
		for i, v := range blk {
			q := min(127, int(math.RoundToEven(float64(iscale*v))))
			blk[i] = float32(q) / iscale
		}
	}
}
