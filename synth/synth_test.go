package synth

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocelot-llm/ocelot/gguf"
	"github.com/ocelot-llm/ocelot/internal/testutil"
	"github.com/ocelot-llm/ocelot/quant"
)

// The presets have the parameter counts of the models they copy (rope
// factors excluded, tied embeddings counted once), as published for
// Llama 3.2 1B and 3B and Llama 3.1 8B.
func TestPresetParameterCounts(t *testing.T) {
	want := map[string]int64{"1b": 1_235_814_400, "3b": 3_212_749_824, "8b": 8_030_261_248}
	for name, n := range want {
		p, err := PresetByName(name)
		if err != nil {
			t.Fatal(err)
		}
		o := DefaultOptions(p)
		o.setDefaults()
		plans, err := o.plan(vocabKVs{nVocab: p.NVocab})
		if err != nil {
			t.Fatal(err)
		}
		var total int64
		for _, tp := range plans {
			if tp.name == "rope_freqs.weight" {
				continue
			}
			e := int64(1)
			for _, d := range tp.shape {
				e *= d
			}
			total += e
		}
		if total != n {
			t.Errorf("%s: %d parameters, want %d", name, total, n)
		}
	}
}

func TestRopeFreqFactors(t *testing.T) {
	f := ropeFreqFactors(128)
	if len(f) != 64 || f[0] != 1 || f[63] != 8 {
		t.Fatalf("factors: first %v last %v len %d", f[0], f[len(f)-1], len(f))
	}
	for i := 1; i < len(f); i++ {
		if f[i] < f[i-1] {
			t.Fatalf("factors not monotonic at %d: %v < %v", i, f[i], f[i-1])
		}
	}
}

func generate(t *testing.T, o Options) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := Generate(path, o); err != nil {
		t.Fatal(err)
	}
	return path
}

func tiny(t *testing.T) Options {
	p, err := PresetByName("tiny")
	if err != nil {
		t.Fatal(err)
	}
	return DefaultOptions(p)
}

func TestGenerateDeterministic(t *testing.T) {
	o := tiny(t)
	a, _ := os.ReadFile(generate(t, o))
	o.Threads = 1
	b, _ := os.ReadFile(generate(t, o))
	if !bytes.Equal(a, b) {
		t.Fatal("the same seed gave different files (with 1 thread vs all)")
	}
	o.Seed = 2
	c, _ := os.ReadFile(generate(t, o))
	if bytes.Equal(a, c) {
		t.Fatal("different seeds gave the same file")
	}
}

func TestGeneratedModelContents(t *testing.T) {
	for _, c := range []struct {
		name      string
		edit      func(*Options)
		weight    quant.Type
		hasOutput bool
	}{
		{"default", func(*Options) {}, quant.Q4_0, true},
		{"q8_0 tied", func(o *Options) { o.Type, o.Tied = quant.Q8_0, true }, quant.Q8_0, false},
		{"f16 fast", func(o *Options) { o.Type, o.Fast = quant.F16, true }, quant.F16, true},
		{"q6_K 2 layers", func(o *Options) { o.Type, o.Layers = quant.Q6_K, 2 }, quant.Q6_K, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := tiny(t)
			c.edit(&o)
			f, err := gguf.Open(generate(t, o))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if a := f.Architecture(); a != "llama" {
				t.Fatalf("architecture %q", a)
			}
			layers, _ := f.ArchUint32("block_count")
			wantLayers := uint32(4)
			if o.Layers > 0 {
				wantLayers = uint32(o.Layers)
			}
			if layers != wantLayers {
				t.Fatalf("block_count %d, want %d", layers, wantLayers)
			}
			q, ok := f.Tensor("blk.0.attn_q.weight")
			if !ok || q.Type != c.weight {
				t.Fatalf("attn_q: %+v", q)
			}
			out, ok := f.Tensor("output.weight")
			if ok != c.hasOutput || ok && out.Type != quant.Q6_K {
				t.Fatalf("output.weight present %v (want %v): %+v", ok, c.hasOutput, out)
			}
			if _, ok := f.Tensor("rope_freqs.weight"); !ok {
				t.Fatal("no rope_freqs.weight")
			}
			toks, err := f.Strings("tokenizer.ggml.tokens")
			if err != nil || len(toks) != 4096 {
				t.Fatalf("tokens: %d, %v", len(toks), err)
			}
			// Every tensor's values are finite.
			for _, ti := range f.Tensors {
				data, _ := f.TensorData(ti.Name)
				v := make([]float32, ti.Elements())
				if err := quant.Dequantize(ti.Type, v, data); err != nil {
					t.Fatalf("%s: %v", ti.Name, err)
				}
				for _, x := range v {
					if x != x || x > 1e4 || x < -1e4 {
						t.Fatalf("%s holds %v", ti.Name, x)
					}
				}
			}
		})
	}
}

func TestGenerateWithVocabFile(t *testing.T) {
	dir := testutil.VocabDir(t)
	o := tiny(t)
	o.VocabPath = filepath.Join(dir, "ggml-vocab-llama-spm.gguf")
	f, err := gguf.Open(generate(t, o))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if m, _ := f.String("tokenizer.ggml.model"); m != "llama" {
		t.Fatalf("tokenizer model %q, want llama (SPM)", m)
	}
	embd, _ := f.Tensor("token_embd.weight")
	if embd.Shape[1] != 32000 {
		t.Fatalf("token_embd has %d rows, want the vocab's 32000", embd.Shape[1])
	}
}

func TestGenerateErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"q4_K weights", func(o *Options) { o.Type = quant.Q4_K }, "q4_K"},
		{"q6_K rows of 768", func(o *Options) {
			o.OutputType = quant.Q6_K
			o.Preset.NEmbd = 96
			o.Preset.NHead = 3
			o.Preset.NHeadKV = 1
		}, "block size"},
		{"missing vocab", func(o *Options) { o.VocabPath = filepath.Join(dir, "nope.gguf") }, "nope.gguf"},
		{"bad heads", func(o *Options) { o.Preset.NHead = 7 }, "divide"},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := tiny(t)
			c.edit(&o)
			path := filepath.Join(dir, "x.gguf")
			err := Generate(path, o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to mention %q", err, c.want)
			}
			if _, err := os.Stat(path); err == nil {
				t.Fatal("a failed generation left a file behind")
			}
		})
	}
	if _, err := PresetByName("70b"); err == nil {
		t.Fatal("unknown preset accepted")
	}
}

func TestBuiltinVocabStable(t *testing.T) {
	v, err := BuiltinVocab(4096)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Tokens) != 4096 || v.Model != "gpt2" || v.Pre != "llama-bpe" {
		t.Fatalf("vocab: %d tokens, model %q, pre %q", len(v.Tokens), v.Model, v.Pre)
	}
	if len(v.Merges) < 1000 {
		t.Fatalf("only %d merges learned from the corpus", len(v.Merges))
	}
}

// Options.Progress hears of every tensor written, in order, up to all of
// them.
func TestGenerateProgress(t *testing.T) {
	p, err := PresetByName("tiny")
	if err != nil {
		t.Fatal(err)
	}
	opt := DefaultOptions(p)
	var calls []int
	total := 0
	opt.Progress = func(done, n int) { calls, total = append(calls, done), n }
	path := filepath.Join(t.TempDir(), "tiny.gguf")
	if err := Generate(path, opt); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if total != len(f.Tensors) || len(calls) != total {
		t.Fatalf("%d calls of total %d for %d tensors", len(calls), total, len(f.Tensors))
	}
	for i, c := range calls {
		if c != i+1 {
			t.Fatalf("calls %v: not 1, 2, ...", calls)
		}
	}
}
