package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocelot-llm/ocelot"
	"github.com/ocelot-llm/ocelot/gguf"
	"github.com/ocelot-llm/ocelot/internal/testmodel"
	"github.com/ocelot-llm/ocelot/quant"
	"github.com/ocelot-llm/ocelot/synth"
)

// f16Model is a 2-layer tiny model with every weight in f16 (tied: no
// output.weight).
func f16Model(t *testing.T, tied bool) string {
	t.Helper()
	p, err := synth.PresetByName("tiny")
	if err != nil {
		t.Fatal(err)
	}
	o := synth.DefaultOptions(p)
	o.Type, o.OutputType, o.Layers, o.Tied = quant.F16, quant.F16, 2, tied
	return testmodel.Path(t, o)
}

// quantizeOK runs ocelot quantize with args (flags, IN, TYPE) into a new
// file and returns it opened, with its path.
func quantizeOK(t *testing.T, in, typ string, flags ...string) (*gguf.File, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out.gguf")
	args := append([]string{"quantize"}, flags...)
	args = append(args, in, out, typ)
	code, stdout, errs := cli(t, args...)
	if code != 0 {
		t.Fatalf("%v: code %d: %s", args, code, errs)
	}
	if errs != "" {
		t.Errorf("%v: stderr is not a terminal, yet got %q", args, errs)
	}
	if !strings.HasPrefix(stdout, "wrote "+out) || !strings.Contains(stdout, "MiB ->") {
		t.Fatalf("%v: stdout %q", args, stdout)
	}
	f, err := gguf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, out
}

func tensorType(t *testing.T, f *gguf.File, name string) quant.Type {
	t.Helper()
	ti, ok := f.Tensor(name)
	if !ok {
		t.Fatalf("no tensor %s", name)
	}
	return ti.Type
}

func TestQuantizeF16Model(t *testing.T) {
	in := f16Model(t, false)
	src, err := gguf.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for _, c := range []struct {
		typ    string
		want   quant.Type
		output quant.Type
		ftype  uint32
	}{
		{"q4_0", quant.Q4_0, quant.Q6_K, 2},
		{"q8_0", quant.Q8_0, quant.Q8_0, 7}, // llama.cpp keeps q8_0 for the output
		{"q6_K", quant.Q6_K, quant.Q6_K, 18},
	} {
		t.Run(c.typ, func(t *testing.T) {
			f, path := quantizeOK(t, in, c.typ)
			if got, err := f.Uint32("general.file_type"); err != nil || got != c.ftype {
				t.Errorf("general.file_type = %d, %v; want %d", got, err, c.ftype)
			}
			if got, err := f.Uint32("general.quantization_version"); err != nil || got != 2 {
				t.Errorf("general.quantization_version = %d, %v", got, err)
			}
			// Every other key is copied unchanged, in order.
			var want, got []string
			for _, kv := range src.KVs() {
				if kv.Key != "general.file_type" && kv.Key != "general.quantization_version" {
					want = append(want, fmt.Sprintf("%s=%v", kv.Key, kv.Value))
				}
			}
			for _, kv := range f.KVs() {
				if kv.Key != "general.file_type" && kv.Key != "general.quantization_version" {
					got = append(got, fmt.Sprintf("%s=%v", kv.Key, kv.Value))
				}
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("metadata differs")
			}
			if len(f.Tensors) != len(src.Tensors) {
				t.Fatalf("%d tensors, want %d", len(f.Tensors), len(src.Tensors))
			}
			for i, ti := range f.Tensors {
				st := src.Tensors[i]
				if ti.Name != st.Name || fmt.Sprint(ti.Shape) != fmt.Sprint(st.Shape) {
					t.Fatalf("tensor %d: %s %v, want %s %v", i, ti.Name, ti.Shape, st.Name, st.Shape)
				}
				exp := c.want
				switch {
				case len(st.Shape) == 1:
					exp = quant.F32
				case st.Name == "output.weight":
					exp = c.output
				}
				if ti.Type != exp {
					t.Errorf("%s: %s, want %s", ti.Name, ti.Type, exp)
				}
				sb, _ := src.TensorData(st.Name)
				ob, err := f.TensorData(ti.Name)
				if err != nil {
					t.Fatal(err)
				}
				if exp == st.Type {
					if !bytes.Equal(sb, ob) {
						t.Errorf("%s: copied tensor differs", ti.Name)
					}
					continue
				}
				// Bit-identical with ggml's reference quantizer applied
				// to the dequantized f16 rows.
				n := st.Shape[0]
				rows := st.Elements() / n
				inRow, _ := quant.RowSize(st.Type, n)
				outRow, _ := quant.RowSize(exp, n)
				row := make([]float32, n)
				q := make([]byte, outRow)
				for r := int64(0); r < rows; r++ {
					if err := quant.DequantizeF16(row, sb[r*inRow:(r+1)*inRow]); err != nil {
						t.Fatal(err)
					}
					switch exp {
					case quant.Q4_0:
						err = quant.QuantizeQ4_0(q, row)
					case quant.Q8_0:
						err = quant.QuantizeQ8_0(q, row)
					default:
						err = quant.QuantizeQ6_K(q, row)
					}
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(q, ob[r*outRow:(r+1)*outRow]) {
						t.Fatalf("%s row %d: bytes differ from quant.Quantize%s", ti.Name, r, exp)
					}
				}
			}
			// The result loads and runs.
			m, err := ocelot.Load(path, ocelot.Options{NCtx: 32, Backend: "cpu"})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			s, err := m.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			logits, err := s.Eval(context.Background(), []int32{3840, 10, 20, 30})
			if err != nil {
				t.Fatal(err)
			}
			if len(logits) != 4096 {
				t.Fatalf("%d logits", len(logits))
			}
			for i, v := range logits {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Fatalf("logit %d = %v", i, v)
				}
			}
		})
	}
}

func TestQuantizeRules(t *testing.T) {
	untied, tied := f16Model(t, false), f16Model(t, true)
	q4 := testmodel.Preset(t, "tiny") // q4_0 weights, q6_K output: requantized
	for _, c := range []struct {
		in         string
		typ        string
		flags      []string
		embd, outp quant.Type // outp: unused for the tied model
		weights    quant.Type
		ftype      uint32
	}{
		{untied, "Q4_0", nil, quant.Q4_0, quant.Q6_K, quant.Q4_0, 2},
		{untied, "q4_0", []string{"--pure"}, quant.Q4_0, quant.Q4_0, quant.Q4_0, 2},
		{untied, "q4_0", []string{"--output-tensor-type", "q8_0"}, quant.Q4_0, quant.Q8_0, quant.Q4_0, 2},
		{untied, "q4_0", []string{"--pure", "--output-tensor-type", "f16"}, quant.Q4_0, quant.F16, quant.Q4_0, 2},
		{untied, "q4_0", []string{"--token-embedding-type", "q8_0"}, quant.Q8_0, quant.Q6_K, quant.Q4_0, 2},
		{untied, "q4_0", []string{"--leave-output-tensor"}, quant.Q4_0, quant.F16, quant.Q4_0, 2},
		{untied, "7", nil, quant.Q8_0, quant.Q8_0, quant.Q8_0, 7},
		{untied, "bf16", nil, quant.BF16, quant.BF16, quant.BF16, 32},
		{untied, "F32", nil, quant.F32, quant.F32, quant.F32, 0},
		{untied, "f16", nil, quant.F16, quant.F16, quant.F16, 1},
		{tied, "q4_0", nil, quant.Q6_K, 0, quant.Q4_0, 2},
		{tied, "q8_0", nil, quant.Q8_0, 0, quant.Q8_0, 7},
		{tied, "q6_k", nil, quant.Q6_K, 0, quant.Q6_K, 18},
		{tied, "q4_0", []string{"--pure"}, quant.Q4_0, 0, quant.Q4_0, 2},
		{tied, "q4_0", []string{"--output-tensor-type", "q8_0"}, quant.Q8_0, 0, quant.Q4_0, 2},
		{tied, "q4_0", []string{"--token-embedding-type", "f16"}, quant.F16, 0, quant.Q4_0, 2},
		{tied, "f16", nil, quant.F16, 0, quant.F16, 1},
		{q4, "q8_0", nil, quant.Q8_0, quant.Q8_0, quant.Q8_0, 7},
		{q4, "f16", nil, quant.F16, quant.F16, quant.F16, 1},
	} {
		name := fmt.Sprintf("tied=%v %s %v", c.in == tied, c.typ, c.flags)
		f, _ := quantizeOK(t, c.in, c.typ, c.flags...)
		if got := tensorType(t, f, "token_embd.weight"); got != c.embd {
			t.Errorf("%s: token_embd %s, want %s", name, got, c.embd)
		}
		if c.in != tied {
			if got := tensorType(t, f, "output.weight"); got != c.outp {
				t.Errorf("%s: output %s, want %s", name, got, c.outp)
			}
		} else if _, ok := f.Tensor("output.weight"); ok {
			t.Errorf("%s: output.weight appeared", name)
		}
		for _, n := range []string{"blk.0.attn_q.weight", "blk.1.ffn_down.weight"} {
			if got := tensorType(t, f, n); got != c.weights {
				t.Errorf("%s: %s %s, want %s", name, n, got, c.weights)
			}
		}
		if got := tensorType(t, f, "blk.0.attn_norm.weight"); got != quant.F32 {
			t.Errorf("%s: norm %s", name, got)
		}
		if got, _ := f.Uint32("general.file_type"); got != c.ftype {
			t.Errorf("%s: file_type %d, want %d", name, got, c.ftype)
		}
	}
}

// withExtra rewrites the f16 model with extra 2-D tensors.
func withExtra(t *testing.T, extra ...gguf.TensorInfo) string {
	t.Helper()
	return testmodel.Rewrite(t, f16Model(t, false), func(w *gguf.Writer, f *gguf.File) {
		for _, ti := range f.Tensors {
			b, err := f.TensorData(ti.Name)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.AddTensorBytes(ti.Name, ti.Type, ti.Shape, b); err != nil {
				t.Fatal(err)
			}
		}
		for _, ti := range extra {
			n, _ := quant.MulSize(ti.Shape...)
			size, err := quant.RowSize(ti.Type, n)
			if err != nil {
				t.Fatal(err)
			}
			data := make([]byte, size)
			if ti.Type == quant.F16 {
				for i := 0; i < len(data); i += 2 {
					h := quant.Float32ToFP16(float32(i%17) - 8)
					data[i], data[i+1] = byte(h), byte(h>>8)
				}
			}
			if err := w.AddTensorBytes(ti.Name, ti.Type, ti.Shape, data); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func TestQuantizeFallback(t *testing.T) {
	in := withExtra(t,
		gguf.TensorInfo{Name: "blk.0.odd.weight", Type: quant.F16, Shape: []int64{48, 4}},
		gguf.TensorInfo{Name: "blk.0.mid.weight", Type: quant.F16, Shape: []int64{96, 4}},
	)
	for _, c := range []struct {
		typ      string
		odd, mid quant.Type
		reports  []string
	}{
		{"q6_K", quant.F16, quant.Q8_0, []string{"blk.0.odd.weight", "blk.0.mid.weight", "using q8_0", "using f16"}},
		{"q4_0", quant.F16, quant.Q4_0, []string{"blk.0.odd.weight", "q4_0 block size 32: using f16"}},
	} {
		out := filepath.Join(t.TempDir(), "out.gguf")
		code, stdout, errs := cli(t, "quantize", in, out, c.typ)
		if code != 0 {
			t.Fatalf("%s: code %d: %s", c.typ, code, errs)
		}
		for _, r := range c.reports {
			if !strings.Contains(errs, r) {
				t.Errorf("%s: stderr lacks %q: %q", c.typ, r, errs)
			}
		}
		if c.typ == "q4_0" && strings.Contains(errs, "mid") {
			t.Errorf("q4_0: mid reported: %q", errs)
		}
		if !strings.Contains(stdout, "fallbacks") {
			t.Errorf("stdout %q", stdout)
		}
		f, err := gguf.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		if got := tensorType(t, f, "blk.0.odd.weight"); got != c.odd {
			t.Errorf("%s: odd %s, want %s", c.typ, got, c.odd)
		}
		if got := tensorType(t, f, "blk.0.mid.weight"); got != c.mid {
			t.Errorf("%s: mid %s, want %s", c.typ, got, c.mid)
		}
		f.Close()
	}
}

func TestQuantizeErrors(t *testing.T) {
	in := f16Model(t, false)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.gguf")
	junk := filepath.Join(dir, "junk.gguf")
	os.WriteFile(junk, []byte("GGUF\x03\x00\x00\x00garbage"), 0o644)
	link, other := filepath.Join(dir, "link.gguf"), filepath.Join(dir, "other.gguf")
	if err := os.Symlink(in, link); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "target"), nil, 0o644)
	if err := os.Symlink(filepath.Join(dir, "target"), other); err != nil {
		t.Fatal(err)
	}
	unreadable := withExtra(t, gguf.TensorInfo{Name: "blk.0.k4.weight", Type: quant.Q4_K, Shape: []int64{256, 2}})
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{in, out, "q5_k"}, 2, `unknown type "q5_k"`},
		{[]string{in, out}, 2, "want IN.gguf OUT.gguf TYPE"},
		{[]string{in, out, "q4_0", "extra"}, 2, "want IN.gguf OUT.gguf TYPE"},
		{[]string{"--output-tensor-type", "q4_k", in, out, "q4_0"}, 2, "--output-tensor-type q4_k"},
		{[]string{"--token-embedding-type", "x", in, out, "q4_0"}, 2, "--token-embedding-type x"},
		{[]string{in, in, "q4_0"}, 2, "same file as IN"},
		{[]string{in, link, "q4_0"}, 2, "same file as IN"},
		{[]string{link, in, "q4_0"}, 2, "same file as IN"},
		{[]string{in, other, "q4_0"}, 1, "symbolic link"},
		{[]string{junk, out, "q4_0"}, 1, "cannot read " + junk},
		{[]string{filepath.Join(dir, "missing.gguf"), out, "q4_0"}, 1, "missing.gguf"},
		{[]string{in, dir, "q4_0"}, 1, "directory"},
		{[]string{unreadable, out, "q8_0"}, 1, `tensor "blk.0.k4.weight" has type q4_K, which ocelot cannot read`},
	} {
		code, stdout, errs := cli(t, append([]string{"quantize"}, c.args...)...)
		if code != c.code || !strings.Contains(errs, c.want) || stdout != "" {
			t.Errorf("%v: code %d (want %d), stdout %q, stderr %q (want %q)", c.args, code, c.code, stdout, errs, c.want)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("a failed quantize wrote %s", out)
	}
	// -h prints the documented rules and succeeds.
	code, _, errs := cli(t, "quantize", "-h")
	if code != 0 || !strings.Contains(errs, "output.weight") || !strings.Contains(errs, "--pure") {
		t.Errorf("-h: code %d, %q", code, errs)
	}
}
