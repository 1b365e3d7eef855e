package main

import (
	"context"
	"encoding/binary"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ocelot-llm/ocelot"
	"github.com/ocelot-llm/ocelot/internal/testmodel"
	"github.com/ocelot-llm/ocelot/synth"
)

// pplText writes a text of random words (several hundred tokens).
func pplText(t *testing.T, words int) string {
	t.Helper()
	r := rand.New(rand.NewSource(1))
	vocab := strings.Fields("the quick brown fox jumps over lazy dog cat runs far away and then comes home again")
	var b strings.Builder
	for i := 0; i < words; i++ {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(vocab[r.Intn(len(vocab))])
	}
	path := filepath.Join(t.TempDir(), "text.txt")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

var (
	runningRE = regexp.MustCompile(`\[(\d+)\]([0-9.]+),`)
	finalRE   = regexp.MustCompile(`Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)`)
)

// parsePPL returns the running values and the final estimate.
func parsePPL(t *testing.T, out string) ([]float64, float64, float64) {
	t.Helper()
	var running []float64
	for i, m := range runningRE.FindAllStringSubmatch(out, -1) {
		if m[1] != strconv.Itoa(i+1) {
			t.Fatalf("running value %d numbered %s: %q", i+1, m[1], out)
		}
		v, _ := strconv.ParseFloat(m[2], 64)
		running = append(running, v)
	}
	m := finalRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no final estimate in %q", out)
	}
	ppl, _ := strconv.ParseFloat(m[1], 64)
	sigma, _ := strconv.ParseFloat(m[2], 64)
	return running, ppl, sigma
}

func TestPerplexity(t *testing.T) {
	tiny := testmodel.Preset(t, "tiny")
	text := pplText(t, 400)
	const nCtx = 64
	code, out, errs := cli(t, "perplexity", "-m", tiny, "-f", text, "-c", strconv.Itoa(nCtx), "-t", "2")
	if code != 0 {
		t.Fatalf("code %d: %s", code, errs)
	}
	running, ppl, sigma := parsePPL(t, out)
	if math.IsInf(ppl, 0) || math.IsNaN(ppl) || ppl <= 1 || sigma <= 0 || math.IsNaN(sigma) {
		t.Fatalf("PPL %v +/- %v", ppl, sigma)
	}
	if running[len(running)-1] != ppl {
		t.Fatalf("last running value %v, final %v", running[len(running)-1], ppl)
	}

	// The same numbers from the root API, computed here independently.
	m, err := ocelot.Load(tiny, ocelot.Options{NCtx: nCtx, NBatch: nCtx, NUbatch: ocelot.AutoUbatch(nCtx), NGPULayers: -1,
		Threads: 2, TypeK: "f16", TypeV: "f16", Backend: "auto", CPUPrecision: "int8"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	data, _ := os.ReadFile(text)
	toks, err := m.Tokenize(string(data), m.Tokenizer().AddBOS(), false)
	if err != nil {
		t.Fatal(err)
	}
	nChunk := len(toks) / nCtx
	if len(running) != nChunk || nChunk < 2 {
		t.Fatalf("%d running values, %d chunks of %d tokens", len(running), nChunk, len(toks))
	}
	var sum, sum2 float64
	var n int
	for c := 0; c < nChunk; c++ {
		s, err := m.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		chunk := append([]int32(nil), toks[c*nCtx:(c+1)*nCtx]...)
		if m.Tokenizer().AddBOS() {
			chunk[0] = m.Tokenizer().BOS()
		}
		logits, err := s.EvalAll(context.Background(), chunk)
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		for pos := nCtx / 2; pos < nCtx-1; pos++ {
			var mx float64 = math.Inf(-1)
			for _, v := range logits[pos] {
				mx = math.Max(mx, float64(v))
			}
			var z float64
			for _, v := range logits[pos] {
				z += math.Exp(float64(v) - mx)
			}
			v := mx + math.Log(z) - float64(logits[pos][chunk[pos+1]])
			sum += v
			sum2 += v * v
			n++
		}
		if want := math.Exp(sum / float64(n)); math.Abs(running[c]-want) > 1e-6*want+1e-4 {
			t.Errorf("chunk %d: running %v, want %v", c+1, running[c], want)
		}
	}
	mean := sum / float64(n)
	want := math.Exp(mean)
	wantSigma := want * math.Sqrt((sum2/float64(n)-mean*mean)/float64(n-1))
	if math.Abs(ppl-want) > 1e-6*want+1e-4 || math.Abs(sigma-wantSigma) > 1e-6*wantSigma+1e-5 {
		t.Fatalf("PPL %v +/- %v, want %v +/- %v", ppl, sigma, want, wantSigma)
	}

	// --chunks 1 stops after the first chunk, whose value it repeats.
	code, out, errs = cli(t, "perplexity", "-m", tiny, "-f", text, "-c", strconv.Itoa(nCtx), "-t", "2", "--chunks", "1")
	if code != 0 {
		t.Fatalf("--chunks 1: code %d: %s", code, errs)
	}
	r1, ppl1, _ := parsePPL(t, out)
	if len(r1) != 1 || r1[0] != running[0] || ppl1 != running[0] {
		t.Fatalf("--chunks 1: %v, %v; all chunks: %v", r1, ppl1, running)
	}
	code, out, _ = cli(t, "perplexity", "-m", tiny, "-f", text, "-c", strconv.Itoa(nCtx), "-t", "2", "--chunks", "2")
	if r2, ppl2, _ := parsePPL(t, out); code != 0 || len(r2) != 2 || r2[0] != running[0] || ppl2 != running[1] {
		t.Fatalf("--chunks 2: %v, %v; all chunks: %v", r2, ppl2, running)
	}
}

var (
	kldRE  = regexp.MustCompile(`Mean KLD: ([0-9.e+-]+) \+/- ([0-9.e+-]+)`)
	sameRE = regexp.MustCompile(`Same top p: ([0-9.]+) \+/- ([0-9.]+) %`)
)

func parseKL(t *testing.T, out string) (kld, same float64) {
	t.Helper()
	m, s := kldRE.FindStringSubmatch(out), sameRE.FindStringSubmatch(out)
	if m == nil || s == nil || !strings.Contains(out, "PPL(base): ") || !strings.Contains(out, "PPL(this): ") {
		t.Fatalf("no KL report in %q", out)
	}
	kld, _ = strconv.ParseFloat(m[1], 64)
	same, _ = strconv.ParseFloat(s[1], 64)
	return kld, same
}

func TestPerplexityKLDivergence(t *testing.T) {
	tiny := testmodel.Preset(t, "tiny")
	p, err := synth.PresetByName("tiny")
	if err != nil {
		t.Fatal(err)
	}
	o := synth.DefaultOptions(p)
	o.Seed = 2
	other := testmodel.Path(t, o)
	text := pplText(t, 400)
	base := filepath.Join(t.TempDir(), "base.kld")
	args := []string{"-f", text, "-c", "64", "-t", "2", "--chunks", "3", "--kl-divergence-base", base}
	code, out, errs := cli(t, append([]string{"perplexity", "-m", tiny}, args...)...)
	if code != 0 {
		t.Fatalf("base: code %d: %s", code, errs)
	}
	_, basePPL, _ := parsePPL(t, out)
	st, err := os.Stat(base)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(klHeader + 4*3*64 + 4*3*31*4096); st.Size() != want {
		t.Fatalf("base file of %d bytes, want %d", st.Size(), want)
	}

	// The model against itself: no divergence, the same top token.
	code, out, errs = cli(t, append([]string{"perplexity", "-m", tiny, "--kl-divergence"}, args...)...)
	if code != 0 {
		t.Fatalf("self: code %d: %s", code, errs)
	}
	_, selfPPL, _ := parsePPL(t, out)
	if kld, same := parseKL(t, out); kld > 1e-5 || same != 100 || selfPPL != basePPL {
		t.Fatalf("self: KLD %v, same top %v%%, PPL %v vs %v\n%s", kld, same, selfPPL, basePPL, out)
	}
	// Without -f the tokens come from the base.
	code, out, errs = cli(t, "perplexity", "-m", tiny, "-c", "64", "-t", "2", "--kl-divergence", "--kl-divergence-base", base)
	if kld, same := parseKL(t, out); code != 0 || kld > 1e-5 || same != 100 {
		t.Fatalf("self without -f: code %d, %s %s", code, out, errs)
	}

	// A quantized KV cache and another model diverge.
	for name, extra := range map[string][]string{
		"q8_0 KV":     {"-m", tiny, "-ctk", "q8_0", "-ctv", "q8_0"},
		"other model": {"-m", other},
	} {
		code, out, errs = cli(t, append(append([]string{"perplexity", "--kl-divergence"}, extra...), args...)...)
		if code != 0 {
			t.Fatalf("%s: code %d: %s", name, code, errs)
		}
		if kld, _ := parseKL(t, out); !(kld > 0) || math.IsInf(kld, 0) {
			t.Errorf("%s: KLD %v\n%s", name, kld, out)
		}
	}

	// Another text, another vocabulary size, another context, a broken
	// file: clear errors.
	otherText := filepath.Join(t.TempDir(), "other.txt")
	os.WriteFile(otherText, []byte(strings.Repeat("zebra yak xylophone ", 200)), 0o644)
	code, _, errs = cli(t, "perplexity", "-m", tiny, "-f", otherText, "-c", "64", "--kl-divergence", "--kl-divergence-base", base)
	if code != 1 || !strings.Contains(errs, "another text") {
		t.Errorf("other text: code %d, %q", code, errs)
	}
	data, _ := os.ReadFile(base)
	bad := append([]byte(nil), data...)
	binary.LittleEndian.PutUint32(bad[8+8:], 4000)
	badPath := filepath.Join(t.TempDir(), "bad-vocab.kld")
	os.WriteFile(badPath, bad, 0o644)
	code, _, errs = cli(t, "perplexity", "-m", tiny, "-f", text, "-c", "64", "--kl-divergence", "--kl-divergence-base", badPath)
	if code != 1 || !strings.Contains(errs, "vocabulary of 4000 tokens, this model 4096") {
		t.Errorf("other vocabulary: code %d, %q", code, errs)
	}
	code, _, errs = cli(t, "perplexity", "-m", tiny, "-f", text, "-c", "32", "--kl-divergence", "--kl-divergence-base", base)
	if code != 1 || !strings.Contains(errs, "made with -c 64") {
		t.Errorf("other context: code %d, %q", code, errs)
	}
	truncated := filepath.Join(t.TempDir(), "short.kld")
	os.WriteFile(truncated, data[:len(data)-100], 0o644)
	code, _, errs = cli(t, "perplexity", "-m", tiny, "-f", text, "-c", "64", "--kl-divergence", "--kl-divergence-base", truncated)
	if code != 1 || !strings.Contains(errs, "unexpected EOF") {
		t.Errorf("truncated: code %d, %q", code, errs)
	}
	junk := filepath.Join(t.TempDir(), "junk.kld")
	os.WriteFile(junk, []byte("not a base file at all, not at all"), 0o644)
	code, _, errs = cli(t, "perplexity", "-m", tiny, "-f", text, "-c", "64", "--kl-divergence", "--kl-divergence-base", junk)
	if code != 1 || !strings.Contains(errs, "bad magic") {
		t.Errorf("junk: code %d, %q", code, errs)
	}
}

func TestPerplexityErrors(t *testing.T) {
	tiny := testmodel.Preset(t, "tiny")
	short := filepath.Join(t.TempDir(), "short.txt")
	os.WriteFile(short, []byte("just a few words"), 0o644)
	code, out, errs := cli(t, "perplexity", "-m", tiny, "-f", short, "-c", "64")
	if code != 1 || out != "" || !strings.Contains(errs, "need at least 128 tokens") {
		t.Errorf("short text: code %d, stdout %q, stderr %q", code, out, errs)
	}
	text := pplText(t, 50)
	for _, args := range [][]string{
		{"perplexity", "-m", tiny},
		{"perplexity", "-f", text},
		{"perplexity", "-m", tiny, "-f", text, "--chunks", "0"},
		{"perplexity", "-m", tiny, "-f", text, "--chunks", "-3"},
		{"perplexity", "-m", tiny, "-f", text, "-c", "2"},
		{"perplexity", "-m", tiny, "-f", text, "-c", "-1"},
		{"perplexity", "-m", tiny, "-f", text, "--kl-divergence"},
		{"perplexity", "-m", tiny, "-f", text, "--bogus"},
		{"perplexity", "-m", tiny, "-f", text, "stray"},
	} {
		code, _, errs := cli(t, args...)
		if code != 2 || !strings.Contains(errs, "usage") {
			t.Errorf("%v: code %d, stderr %q", args, code, errs)
		}
	}
}
