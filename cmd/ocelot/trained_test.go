package main

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
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
	greedy := func(t *testing.T, path string, opt ocelot.Options) [][]int32 {
		t.Helper()
		opt.NCtx = 256
		m, err := ocelot.Load(path, opt)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		var out [][]int32
		for _, p := range trainedPrompts {
			ids, err := m.Tokenize(p, true, false)
			if err != nil {
				t.Fatal(err)
			}
			s, err := m.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			res, err := s.Generate(context.Background(), ids, nil, 32, nil)
			s.Close()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, res.Tokens)
		}
		return out
	}
	// forced evaluates each prompt followed by its continuation and
	// returns the logits that predict the continuation's tokens.
	forced := func(t *testing.T, path string, opt ocelot.Options, cont [][]int32) [][][]float32 {
		t.Helper()
		opt.NCtx = 256
		m, err := ocelot.Load(path, opt)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		var out [][][]float32
		for i, p := range trainedPrompts {
			ids, err := m.Tokenize(p, true, false)
			if err != nil {
				t.Fatal(err)
			}
			s, err := m.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			all, err := s.EvalAll(context.Background(), append(ids, cont[i]...))
			s.Close()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, all[len(ids)-1:len(all)-1])
		}
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
