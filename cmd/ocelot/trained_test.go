package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ocelot-llm/ocelot"
	"github.com/ocelot-llm/ocelot/quant"
)

// trainedModel is the model trained on Go's source that the repository
// ships (scripts/train, docs/MODEL.md).
var trainedModel = filepath.Join("..", "..", "testdata", "model", "ocelot-go-f16.gguf")

// trainedPrompts are Go code the model continues: the three prompts of
// scripts/train's check (a main, an error path, a package comment) and
// the demo's.
var trainedPrompts = []string{
	"package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfmt.Println(\"",
	"func (d *decoder) readHeader() error {\n\tif _, err := io.ReadFull(d.r, d.buf[:4]); err != nil {\n\t\treturn ",
	"// Copyright 2011 The Go Authors. All rights reserved.\n// Use of this source code is governed by a BSD-style\n// license that can be found in the LICENSE file.\n\n// Package sort provides",
	"package strings\n\n// Reverse returns s with its runes in reverse order.\nfunc Reverse(s string) string {\n",
}

// The shipped model and its Q8_0 and Q4_0 quantizations (made by ocelot
// quantize) continue every prompt greedily with the same 32 tokens on the
// reference engine, on the CPU backend with every kernel path this machine
// has, and on OpenCL (PoCL in CI). The CPU's default int8 precision
// (activations quantized to Q8_0 for quantized weights, as llama.cpp does)
// computes other sums than the reference's float ones (and the kernel
// paths' float parts add in other orders): teacher-forced along the
// reference's continuation, it must give the reference's top token
// wherever the reference's margin between its two best logits is at least
// minMargin.
func TestTrainedModelBackendsAgree(t *testing.T) {
	if _, err := os.Stat(trainedModel); err != nil {
		t.Fatalf("the shipped model: %v", err)
	}
	dir := t.TempDir()
	files := []struct{ typ, path string }{{"f16", trainedModel}}
	for _, typ := range []string{"q8_0", "q4_0"} {
		out := filepath.Join(dir, typ+".gguf")
		if code, _, errs := cli(t, "quantize", trainedModel, out, typ); code != 0 {
			t.Fatalf("quantize %s: %s", typ, errs)
		}
		files = append(files, struct{ typ, path string }{typ, out})
	}
	// eachPrompt loads path with opt and calls fn with a fresh session
	// and the ids of each prompt.
	eachPrompt := func(t *testing.T, path string, opt ocelot.Options, fn func(i int, s *ocelot.Session, ids []int32)) {
		t.Helper()
		opt.NCtx = 256
		m, err := ocelot.Load(path, opt)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		for i, p := range trainedPrompts {
			ids, err := m.Tokenize(p, true, false)
			if err != nil {
				t.Fatal(err)
			}
			s, err := m.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			fn(i, s, ids)
			s.Close()
		}
	}
	// greedy returns each prompt's 32-token greedy continuation.
	greedy := func(t *testing.T, path string, opt ocelot.Options) [][]int32 {
		t.Helper()
		var out [][]int32
		eachPrompt(t, path, opt, func(_ int, s *ocelot.Session, ids []int32) {
			res, err := s.Generate(context.Background(), ids, nil, 32, nil)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, res.Tokens)
		})
		return out
	}
	// forced evaluates each prompt followed by its continuation and
	// returns the logits that predict the continuation's tokens.
	forced := func(t *testing.T, path string, opt ocelot.Options, cont [][]int32) [][][]float32 {
		t.Helper()
		var out [][][]float32
		eachPrompt(t, path, opt, func(i int, s *ocelot.Session, ids []int32) {
			all, err := s.EvalAll(context.Background(), append(ids, cont[i]...))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, all[len(ids)-1:len(all)-1])
		})
		return out
	}
	const minMargin = 0.5
	for _, f := range files {
		t.Run(f.typ, func(t *testing.T) {
			want := greedy(t, f.path, ocelot.Options{Backend: "ref"})
			check := func(what string, got, want [][]int32) {
				t.Helper()
				for i := range want {
					if !slices.Equal(got[i], want[i]) {
						t.Errorf("%s, prompt %d: %v, want %v", what, i, got[i], want[i])
					}
				}
			}
			ref := forced(t, f.path, ocelot.Options{Backend: "ref"}, want)
			for _, p := range quant.AvailablePaths() {
				restore, err := quant.SetKernelPath(p)
				if err != nil {
					t.Fatal(err)
				}
				check("cpu "+p.String()+" float", greedy(t, f.path, ocelot.Options{Backend: "cpu", CPUPrecision: "float"}), want)
				int8 := forced(t, f.path, ocelot.Options{Backend: "cpu", CPUPrecision: "int8"}, want)
				restore()
				agree, steps := 0, 0
				for i := range ref {
					for j := range ref[i] {
						top, margin := top2(ref[i][j])
						got, _ := top2(int8[i][j])
						steps++
						if got == top {
							agree++
						} else if margin >= minMargin {
							t.Errorf("cpu %s int8, prompt %d, token %d: top %d, ref %d by a margin of %.3f", p, i, j, got, top, margin)
						}
					}
				}
				t.Logf("%s, cpu %s: int8 precision's top token is the reference's at %d of %d teacher-forced steps", f.typ, p, agree, steps)
			}
			m, err := ocelot.Load(f.path, ocelot.Options{Backend: "opencl", NGPULayers: 99, NCtx: 256})
			if err != nil {
				if os.Getenv("OCELOT_REQUIRE_OPENCL") == "1" {
					t.Fatal(err)
				}
				t.Skipf("opencl: no device: %v", err)
			}
			m.Close()
			check("opencl", greedy(t, f.path, ocelot.Options{Backend: "opencl", NGPULayers: 99}), want)
		})
	}
}

// top2 returns the index of the largest logit and its margin over the
// second largest.
func top2(l []float32) (int, float32) {
	best, second := 0, float32(math.Inf(-1))
	for i, v := range l {
		switch {
		case v > l[best]:
			best, second = i, l[best]
		case i != best && v > second:
			second = v
		}
	}
	return best, l[best] - second
}

// The shipped model's Q4_0 quantization by ocelot quantize — the file
// llama.cpp saw, by its SHA-256 — against llama.cpp's goldens for six Go
// prompts (testdata/golden-trained-q4_0.json, scripts/golden/make-goldens.mjs
// over scripts/golden/prompts-go.json): the same token ids, the same 32-token
// greedy continuations on the CPU backend for all prompts but at most one,
// and llama.cpp's top token at ≥ 98% of teacher-forced positions, any
// disagreement at a near tie.
func TestTrainedModelQ4Golden(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "golden-trained-q4_0.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Model struct {
			SHA256 string `json:"sha256"`
		} `json:"model"`
		Prompts []struct {
			Name   string         `json:"name"`
			Text   string         `json:"text"`
			Tokens []int32        `json:"tokens"`
			Greedy []int32        `json:"greedy"`
			Top    [][][2]float64 `json:"top"`
		} `json:"prompts"`
	}
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	q4 := filepath.Join(t.TempDir(), "q4_0.gguf")
	if code, _, errs := cli(t, "quantize", trainedModel, q4, "q4_0"); code != 0 {
		t.Fatalf("quantize: %s", errs)
	}
	if sum := sha256File(t, q4); sum != g.Model.SHA256 {
		t.Fatalf("ocelot quantize now writes a Q4_0 file with SHA-256 %s; the golden was made from %s: regenerate it (docs/MODEL.md)", sum, g.Model.SHA256)
	}
	m, err := ocelot.Load(q4, ocelot.Options{Backend: "cpu", NCtx: 256})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// Measured (dev, CPU backend, int8 precision): 215/219 = 98.17% top-1,
	// every disagreement at a probability margin of 0.0081 or less, greedy 5/6
	// (the sixth leaves llama.cpp's after a near tie). The 99.5%
	// holds for the F16 file (TestGolden/trained-f16) but not here: Q4_0
	// leaves this small model many near ties, and one ulp of rounding
	// picks between them.
	const minTop1, maxTie = 0.98, 0.01
	agree, positions, same := 0, 0, 0
	for _, p := range g.Prompts {
		ids, err := m.Tokenize(p.Text, true, false)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids, p.Tokens) {
			t.Fatalf("%s: tokens %v, llama.cpp %v", p.Name, ids, p.Tokens)
		}
		s, err := m.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		all, err := s.EvalAll(context.Background(), ids)
		if err != nil {
			t.Fatal(err)
		}
		for i, row := range all {
			top, _ := top2(row)
			positions++
			margin := p.Top[i][0][1] - p.Top[i][1][1]
			switch {
			case int32(top) == int32(p.Top[i][0][0]):
				agree++
			case margin > maxTie:
				t.Errorf("%s position %d: top %d, llama.cpp %v by a probability margin of %.4f", p.Name, i, top, p.Top[i][0][0], margin)
			default:
				t.Logf("%s position %d: top %d, llama.cpp %v at a near tie (margin %.4f)", p.Name, i, top, p.Top[i][0][0], margin)
			}
		}
		s.Close()
		s, err = m.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Generate(context.Background(), ids, nil, len(p.Greedy), nil)
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		if slices.Equal(res.Tokens, p.Greedy) {
			same++
		} else {
			t.Logf("%s: greedy %v, llama.cpp %v", p.Name, res.Tokens, p.Greedy)
		}
	}
	t.Logf("top-1 agreement with llama.cpp: %d of %d positions (%.2f%%); greedy continuations identical: %d of %d",
		agree, positions, 100*float64(agree)/float64(positions), same, len(g.Prompts))
	if float64(agree) < minTop1*float64(positions) || same < len(g.Prompts)-1 {
		t.Errorf("top-1 agreement %d/%d under %.1f%%, or %d of %d greedy continuations identical", agree, positions, 100*minTop1, same, len(g.Prompts))
	}
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// ocelot perplexity on the shipped model and its Q8_0 and Q4_0
// quantizations agrees with llama-perplexity within 1% on held-out Go
// (testdata/model/heldout-head.txt: the first 110 KB of the held-out
// packages' text, Go 1.26.8's encoding/json; 24 chunks of 512 tokens).
// llama-perplexity's figures (release 80fb11a, built by
// scripts/golden/compare-tools.sh; `llama-perplexity -m M -f
// heldout-head.txt -c 512 -b 512 --chunks 24`) are recorded here; the
// script repeats the whole comparison.
func TestTrainedModelPerplexity(t *testing.T) {
	text := filepath.Join("..", "..", "testdata", "model", "heldout-head.txt")
	llama := map[string]float64{"f16": 8.1559, "q8_0": 8.1690, "q4_0": 8.8440}
	dir := t.TempDir()
	for _, typ := range []string{"f16", "q8_0", "q4_0"} {
		path := trainedModel
		if typ != "f16" {
			path = filepath.Join(dir, typ+".gguf")
			if code, _, errs := cli(t, "quantize", trainedModel, path, typ); code != 0 {
				t.Fatalf("quantize %s: %s", typ, errs)
			}
		}
		code, out, errs := cli(t, "perplexity", "-m", path, "-f", text, "-c", "512", "-b", "512", "--chunks", "24", "--backend", "cpu")
		if code != 0 {
			t.Fatalf("perplexity %s: %s", typ, errs)
		}
		var ppl, sigma float64
		i := strings.Index(out, "Final estimate: PPL = ")
		if i < 0 {
			t.Fatalf("perplexity %s printed no final estimate: %s", typ, out)
		}
		if _, err := fmt.Sscanf(out[i:], "Final estimate: PPL = %f +/- %f", &ppl, &sigma); err != nil {
			t.Fatalf("perplexity %s: %v in %q", typ, err, out[i:])
		}
		rel := math.Abs(ppl-llama[typ]) / llama[typ]
		t.Logf("%s: ocelot %.4f ± %.4f, llama-perplexity %.4f (%.3f%%)", typ, ppl, sigma, llama[typ], 100*rel)
		if rel > 0.01 {
			t.Errorf("%s: perplexity %.4f, llama-perplexity %.4f: more than 1%% apart", typ, ppl, llama[typ])
		}
	}
}
