package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ocelot-llm/ocelot"
	"github.com/ocelot-llm/ocelot/gguf"
	"github.com/ocelot-llm/ocelot/quant"
	"github.com/ocelot-llm/ocelot/synth"
	"github.com/ocelot-llm/ocelot/tokenizer"
)

// tinyShape is the model the unit tests export: small, with grouped-query
// attention.
var tinyShape = modelConfig{NEmbd: 64, NLayer: 2, NHead: 4, NHeadKV: 2, NFF: 128, NVocab: 768, NCtx: 64, RopeBase: 500000, RMSEps: 1e-5}

var vocabOnce struct {
	sync.Once
	v   *tokenizer.Vocab
	err error
}

// testVocab writes a 768-token vocabulary (512 bytes and specials, 256
// merges) as prepare does (a GGUF file of
// tokenizer metadata only) into a test folder and returns its path.
func testVocab(t *testing.T) string {
	t.Helper()
	vocabOnce.Do(func() {
		text, err := synth.CorpusText()
		if err == nil {
			vocabOnce.v, err = tokenizer.TrainBPE(text, tinyShape.NVocab)
		}
		vocabOnce.err = err
	})
	if vocabOnce.err != nil {
		t.Fatal(vocabOnce.err)
	}
	w := gguf.NewWriter()
	w.Set("general.architecture", gguf.String("llama"))
	for _, kv := range synth.VocabMetadata(vocabOnce.v) {
		w.Set(kv.Key, kv.Value)
	}
	path := filepath.Join(t.TempDir(), "tokenizer.gguf")
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// randomWeights is a model of shape c with seeded random weights, as
// train.py would write it: GGUF names, PyTorch shapes.
type randomWeights struct {
	meta   map[string]string
	names  []string
	shapes map[string][]int64
	values map[string][]float32
}

func newRandomWeights(c modelConfig, ropeFreqs bool, seed uint64) *randomWeights {
	r := rand.New(rand.NewPCG(seed, 1))
	w := &randomWeights{shapes: map[string][]int64{}, values: map[string][]float32{}}
	w.meta = map[string]string{
		"n_embd": fmt.Sprint(c.NEmbd), "n_layer": fmt.Sprint(c.NLayer), "n_head": fmt.Sprint(c.NHead),
		"n_head_kv": fmt.Sprint(c.NHeadKV), "n_ff": fmt.Sprint(c.NFF), "n_vocab": fmt.Sprint(c.NVocab),
		"n_ctx": fmt.Sprint(c.NCtx), "rope_freq_base": fmt.Sprint(c.RopeBase), "rms_eps": fmt.Sprint(c.RMSEps),
		"tied": fmt.Sprint(c.Tied), "steps": "0",
	}
	// plan() lists rope_freqs.weight and output.weight when the file has them.
	st := &safetensors{Tensors: map[string]*stTensor{}}
	if ropeFreqs {
		st.Tensors["rope_freqs.weight"] = &stTensor{}
	}
	if !c.Tied {
		st.Tensors["output.weight"] = &stTensor{}
	}
	for _, p := range c.plan(st) {
		n := elements(p.torch)
		v := make([]float32, n)
		switch {
		case p.name == "rope_freqs.weight":
			for i := range v {
				v[i] = 1 + float32(i)
			}
		case len(p.torch) == 1:
			for i := range v {
				v[i] = 1 + 0.1*float32(r.NormFloat64())
			}
		default:
			std := 0.5 / math.Sqrt(float64(p.torch[1]))
			for i := range v {
				v[i] = float32(std * r.NormFloat64())
			}
		}
		w.names = append(w.names, p.name)
		w.shapes[p.name] = p.torch
		w.values[p.name] = v
	}
	return w
}

func (w *randomWeights) write(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "model.safetensors")
	if err := writeSafetensors(path, w.meta, w.names, w.shapes, w.values); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestExport exports random weights of every kind of model (tied or not,
// with or without RoPE factors) in every type, and checks the file: its
// hyperparameters, each tensor's GGUF shape (the reverse of PyTorch's),
// type and values, and that ocelot loads it and evaluates a prompt.
func TestExport(t *testing.T) {
	vocab := testVocab(t)
	for _, tied := range []bool{false, true} {
		for _, rope := range []bool{false, true} {
			c := tinyShape
			c.Tied = tied
			w := newRandomWeights(c, rope, 7)
			dir := t.TempDir()
			weights := w.write(t, dir)
			for _, typ := range []quant.Type{quant.F32, quant.F16, quant.BF16, quant.Q8_0} {
				t.Run(fmt.Sprintf("tied=%v/rope_freqs=%v/%s", tied, rope, typ), func(t *testing.T) {
					out := filepath.Join(dir, typ.String()+".gguf")
					s, err := export(options{Weights: weights, Tokenizer: vocab, Out: out, Type: typ})
					if err != nil {
						t.Fatal(err)
					}
					if s.Config.Tied != tied || s.Config.NLayer != c.NLayer {
						t.Errorf("config %+v, want tied %v and %d layers", s.Config, tied, c.NLayer)
					}
					checkFile(t, out, w, typ)
					evaluate(t, out, c.NVocab)
					if f, err := gguf.Open(out); err != nil || !hasKey(f, "tokenizer.chat_template") {
						t.Errorf("the tokenizer's chat template was not copied (%v)", err)
					} else {
						f.Close()
					}
				})
			}
		}
	}
}

// checkFile compares an exported file with the weights it came from.
func checkFile(t *testing.T, path string, w *randomWeights, typ quant.Type) {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for key, want := range map[string]uint32{
		"llama.embedding_length": 64, "llama.block_count": 2, "llama.attention.head_count": 4,
		"llama.attention.head_count_kv": 2, "llama.feed_forward_length": 128, "llama.context_length": 64,
		"llama.rope.dimension_count": 16, "llama.vocab_size": 768, "general.file_type": exportTypes[typ],
	} {
		if got, err := f.Uint32(key); err != nil || got != want {
			t.Errorf("%s = %d (%v), want %d", key, got, err, want)
		}
	}
	if arch := f.Architecture(); arch != "llama" {
		t.Errorf("architecture %q", arch)
	}
	if toks, err := f.Strings("tokenizer.ggml.tokens"); err != nil || len(toks) != 768 {
		t.Errorf("tokenizer.ggml.tokens: %d tokens (%v), want 768", len(toks), err)
	}
	if len(f.Tensors) != len(w.names) {
		t.Errorf("%d tensors, want %d", len(f.Tensors), len(w.names))
	}
	for _, name := range w.names {
		info, ok := f.Tensor(name)
		if !ok {
			t.Errorf("tensor %s missing", name)
			continue
		}
		torch := w.shapes[name]
		wantType := quant.F32
		if len(torch) == 2 {
			wantType = typ
			if info.Shape[0] != torch[1] || info.Shape[1] != torch[0] {
				t.Errorf("%s: GGUF shape %v, want the reverse of PyTorch's %v", name, info.Shape, torch)
			}
		}
		if info.Type != wantType {
			t.Errorf("%s: type %s, want %s", name, info.Type, wantType)
		}
		data, err := f.TensorData(name)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]float32, len(w.values[name]))
		if err := quant.Dequantize(info.Type, got, data); err != nil {
			t.Fatal(err)
		}
		// The float types round each value on its own (f16 to a 2^-24
		// step below 2^-14); Q8_0 keeps 8 bits a value and a per-block
		// f16 scale d = max|x|/127: within d/2 plus 127 times the
		// scale's rounding (d·2^-11).
		for i, want := range w.values[name] {
			tol := 0.0
			switch info.Type {
			case quant.F16:
				tol = max(math.Abs(float64(want))*0x1p-11, 0x1p-25)
			case quant.BF16:
				tol = math.Abs(float64(want)) * 0x1p-8
			case quant.Q8_0:
				tol = blockMax(w.values[name], i) / 127 * 0.57
			}
			if d := math.Abs(float64(got[i] - want)); d > tol {
				t.Fatalf("%s[%d] = %v in the file, want %v (±%g)", name, i, got[i], want, tol)
			}
		}
	}
}

func blockMax(v []float32, i int) float64 {
	lo := i / 32 * 32
	m := 0.0
	for _, x := range v[lo : lo+32] {
		m = max(m, math.Abs(float64(x)))
	}
	return m
}

// evaluate loads the model with the reference engine and checks that it
// evaluates a prompt to finite logits.
func evaluate(t *testing.T, path string, nVocab int) {
	t.Helper()
	m, err := ocelot.Load(path, ocelot.Options{Backend: "ref", NCtx: 64, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ids, err := m.Tokenize("func main() {\n\tprintln(\"ocelot\")\n}\n", true, false)
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	logits, err := s.Eval(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(logits) != nVocab {
		t.Fatalf("%d logits, want %d", len(logits), nVocab)
	}
	for i, v := range logits {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatalf("logit %d is %v", i, v)
		}
	}
}

// TestExportErrors feeds export bad files and options: each must fail
// with an error that names the problem, and write nothing.
func TestExportErrors(t *testing.T) {
	vocab := testVocab(t)
	cases := []struct {
		name   string
		change func(w *randomWeights, o *options)
		want   string
	}{
		{"q4_0", func(w *randomWeights, o *options) { o.Type = quant.Q4_0 }, "make q4_0 with ocelot quantize"},
		{"missing metadata", func(w *randomWeights, o *options) { delete(w.meta, "n_head_kv") }, `no "n_head_kv"`},
		{"bad metadata", func(w *randomWeights, o *options) { w.meta["n_layer"] = "two" }, `"n_layer" is "two"`},
		{"bad eps", func(w *randomWeights, o *options) { w.meta["rms_eps"] = "-1" }, `"rms_eps" is "-1"`},
		{"heads", func(w *randomWeights, o *options) { w.meta["n_head_kv"] = "3" }, "not a multiple of n_head_kv 3"},
		{"tied mismatch", func(w *randomWeights, o *options) { w.meta["tied"] = "true" }, "output.weight is present"},
		{"missing tensor", func(w *randomWeights, o *options) { w.drop("blk.1.ffn_up.weight") }, "blk.1.ffn_up.weight is missing"},
		{"extra tensor", func(w *randomWeights, o *options) { w.add("blk.2.attn_q.weight", []int64{64, 64}) }, "blk.2.attn_q.weight are not part"},
		{"transposed", func(w *randomWeights, o *options) { w.shapes["blk.0.attn_k.weight"] = []int64{64, 32} }, "want [32 64]"},
		{"not finite", func(w *randomWeights, o *options) { w.values["output_norm.weight"][3] = float32(math.NaN()) }, "output_norm.weight: element 3 is NaN"},
		{"bad rope factor", func(w *randomWeights, o *options) { w.values["rope_freqs.weight"][1] = 0 }, "rope_freqs.weight[1] is 0"},
		{"vocab size", func(w *randomWeights, o *options) { w.meta["n_vocab"] = "512" }, "the model's embedding 512 rows"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newRandomWeights(tinyShape, true, 3)
			dir := t.TempDir()
			o := options{Tokenizer: vocab, Out: filepath.Join(dir, "out.gguf"), Type: quant.F16}
			c.change(w, &o)
			o.Weights = w.write(t, dir)
			_, err := export(o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
			if _, err := gguf.Open(o.Out); err == nil {
				t.Errorf("%s was written", o.Out)
			}
		})
	}
}

func (w *randomWeights) drop(name string) {
	for i, n := range w.names {
		if n == name {
			w.names = append(w.names[:i], w.names[i+1:]...)
			return
		}
	}
}

func (w *randomWeights) add(name string, shape []int64) {
	w.names = append(w.names, name)
	w.shapes[name] = shape
	w.values[name] = make([]float32, elements(shape))
}

func hasKey(f *gguf.File, key string) bool {
	_, ok := f.Metadata.Get(key)
	return ok
}

func TestExportNoChatTemplate(t *testing.T) {
	dir := t.TempDir()
	weights := newRandomWeights(tinyShape, true, 5).write(t, dir)
	out := filepath.Join(dir, "base.gguf")
	if _, err := export(options{Weights: weights, Tokenizer: testVocab(t), Out: out, Type: quant.F16, NoChatTemplate: true}); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if hasKey(f, "tokenizer.chat_template") {
		t.Error("tokenizer.chat_template is in the file")
	}
	if !hasKey(f, "tokenizer.ggml.merges") {
		t.Error("the rest of the tokenizer is missing")
	}
}
