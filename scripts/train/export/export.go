package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/ocelot-llm/ocelot/gguf"
	"github.com/ocelot-llm/ocelot/quant"
)

// modelConfig is the shape of the trained model, from the safetensors
// file's __metadata__ (written by train.py) and checked against its
// tensors.
type modelConfig struct {
	NEmbd, NLayer, NHead, NHeadKV, NFF, NVocab, NCtx int
	RopeBase, RMSEps                                 float32
	Tied                                             bool
}

func (c modelConfig) headDim() int { return c.NEmbd / c.NHead }

// configFrom reads the hyperparameters of a safetensors file's metadata.
func configFrom(st *safetensors) (modelConfig, error) {
	var c modelConfig
	var err error
	num := func(key string, lo, hi int) int {
		if err != nil {
			return 0
		}
		s, ok := st.Metadata[key]
		if !ok {
			err = fmt.Errorf("__metadata__ has no %q (train.py writes the model's hyperparameters there)", key)
			return 0
		}
		v, e := strconv.Atoi(s)
		if e != nil || v < lo || v > hi {
			err = fmt.Errorf("__metadata__ %q is %q, want an integer in %d..%d", key, s, lo, hi)
		}
		return v
	}
	float := func(key string, def float32) float32 {
		s, ok := st.Metadata[key]
		if err != nil || !ok {
			return def
		}
		v, e := strconv.ParseFloat(s, 64)
		if e != nil || !(v > 0) || math.IsInf(v, 0) {
			err = fmt.Errorf("__metadata__ %q is %q, want a positive number", key, s)
		}
		return float32(v)
	}
	c.NEmbd = num("n_embd", 1, 1<<17)
	c.NLayer = num("n_layer", 1, 1024)
	c.NHead = num("n_head", 1, 4096)
	c.NHeadKV = num("n_head_kv", 1, 4096)
	c.NFF = num("n_ff", 1, 1<<17)
	c.NVocab = num("n_vocab", 1, 1<<24)
	c.NCtx = num("n_ctx", 1, 1<<30)
	c.RopeBase = float("rope_freq_base", 10000)
	c.RMSEps = float("rms_eps", 1e-5)
	if err != nil {
		return c, err
	}
	switch {
	case c.NEmbd%c.NHead != 0 || c.headDim()%2 != 0:
		return c, fmt.Errorf("n_embd %d and n_head %d give head size %d; it must be a whole, even number", c.NEmbd, c.NHead, c.NEmbd/c.NHead)
	case c.NHeadKV > c.NHead || c.NHead%c.NHeadKV != 0:
		return c, fmt.Errorf("n_head %d is not a multiple of n_head_kv %d", c.NHead, c.NHeadKV)
	}
	_, untied := st.Tensors["output.weight"]
	c.Tied = !untied
	if s, ok := st.Metadata["tied"]; ok && s != strconv.FormatBool(c.Tied) {
		return c, fmt.Errorf("__metadata__ says tied=%s, but output.weight is %s", s, map[bool]string{true: "absent", false: "present"}[c.Tied])
	}
	return c, nil
}

// planned is one GGUF tensor to write from a safetensors tensor.
type planned struct {
	name  string
	torch []int64 // the safetensors shape, outermost first
}

// plan lists the tensors of a Llama GGUF in synth's (and llama.cpp's)
// order, with the PyTorch shape each must have: a weight matrix is
// [out, in] (nn.Linear's layout), so its rows are GGUF's rows and the
// GGUF shape is the reverse, [in, out] (ggml's ne[0] is the row length).
func (c modelConfig) plan(st *safetensors) []planned {
	e, q, kv, ff, v := int64(c.NEmbd), int64(c.NHead*c.headDim()), int64(c.NHeadKV*c.headDim()), int64(c.NFF), int64(c.NVocab)
	p := []planned{{"token_embd.weight", []int64{v, e}}}
	if _, ok := st.Tensors["rope_freqs.weight"]; ok {
		p = append(p, planned{"rope_freqs.weight", []int64{int64(c.headDim() / 2)}})
	}
	for l := 0; l < c.NLayer; l++ {
		b := fmt.Sprintf("blk.%d.", l)
		p = append(p,
			planned{b + "attn_norm.weight", []int64{e}},
			planned{b + "attn_q.weight", []int64{q, e}},
			planned{b + "attn_k.weight", []int64{kv, e}},
			planned{b + "attn_v.weight", []int64{kv, e}},
			planned{b + "attn_output.weight", []int64{e, q}},
			planned{b + "ffn_norm.weight", []int64{e}},
			planned{b + "ffn_gate.weight", []int64{ff, e}},
			planned{b + "ffn_up.weight", []int64{ff, e}},
			planned{b + "ffn_down.weight", []int64{e, ff}},
		)
	}
	p = append(p, planned{"output_norm.weight", []int64{e}})
	if !c.Tied {
		p = append(p, planned{"output.weight", []int64{v, e}})
	}
	return p
}

// options say what export writes.
type options struct {
	Weights   string     // model.safetensors from train.py
	Tokenizer string     // a GGUF file whose tokenizer.* metadata is copied (prepare's tokenizer.gguf)
	Out       string     // the GGUF file to write
	Type      quant.Type // type of the 2-D weights: F32, F16, BF16 or Q8_0 (norms stay F32)
	Name      string     // general.name ("": ocelot-go-<params>)
	// NoChatTemplate leaves tokenizer.chat_template out: the model is a
	// base (completion) model, and llama.cpp's CLI turns to chat when a
	// template is there.
	NoChatTemplate bool
}

// exportTypes are the weight types export writes, with llama.cpp's
// general.file_type for each.
var exportTypes = map[quant.Type]uint32{quant.F32: 0, quant.F16: 1, quant.Q8_0: 7, quant.BF16: 32}

// summary says what export wrote.
type summary struct {
	Config  modelConfig
	Params  int64
	Tensors int
}

// export converts a trained model to a Llama GGUF file.
func export(o options) (*summary, error) {
	fileType, ok := exportTypes[o.Type]
	if !ok {
		return nil, fmt.Errorf("weight type %s: export writes f32, f16, bf16 and q8_0 (make q4_0 with ocelot quantize)", o.Type)
	}
	if err := gguf.CheckTarget(o.Out); err != nil {
		return nil, err
	}
	st, err := readSafetensors(o.Weights)
	if err != nil {
		return nil, err
	}
	cfg, err := configFrom(st)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.Weights, err)
	}
	tok, err := tokenizerKVs(o.Tokenizer, cfg.NVocab)
	if err != nil {
		return nil, err
	}
	if o.NoChatTemplate {
		tok = slices.DeleteFunc(tok, func(kv gguf.KV) bool { return kv.Key == "tokenizer.chat_template" })
	}
	plans := cfg.plan(st)
	if err := checkTensors(st, plans); err != nil {
		return nil, fmt.Errorf("%s: %w", o.Weights, err)
	}
	var params int64
	for _, p := range plans {
		if p.name != "rope_freqs.weight" {
			params += elements(p.torch)
		}
	}
	if o.Name == "" {
		o.Name = fmt.Sprintf("ocelot-go-%.1fM", float64(params)/1e6)
	}
	if f, ok := st.Tensors["rope_freqs.weight"]; ok {
		for i, v := range f.Floats() {
			if !(v > 0) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("%s: rope_freqs.weight[%d] is %v; the factors must be positive", o.Weights, i, v)
			}
		}
	}

	w := gguf.NewWriter()
	w.Set("general.architecture", gguf.String("llama"))
	w.Set("general.name", gguf.String(o.Name))
	w.Set("general.description", gguf.String(description(st, params)))
	w.Set("general.file_type", gguf.Uint32(fileType))
	w.Set("general.quantization_version", gguf.Uint32(2))
	w.Set("llama.vocab_size", gguf.Uint32(uint32(cfg.NVocab)))
	w.Set("llama.context_length", gguf.Uint32(uint32(cfg.NCtx)))
	w.Set("llama.embedding_length", gguf.Uint32(uint32(cfg.NEmbd)))
	w.Set("llama.block_count", gguf.Uint32(uint32(cfg.NLayer)))
	w.Set("llama.feed_forward_length", gguf.Uint32(uint32(cfg.NFF)))
	w.Set("llama.attention.head_count", gguf.Uint32(uint32(cfg.NHead)))
	w.Set("llama.attention.head_count_kv", gguf.Uint32(uint32(cfg.NHeadKV)))
	w.Set("llama.rope.freq_base", gguf.Float32(cfg.RopeBase))
	w.Set("llama.rope.dimension_count", gguf.Uint32(uint32(cfg.headDim())))
	w.Set("llama.attention.layer_norm_rms_epsilon", gguf.Float32(cfg.RMSEps))
	for _, kv := range tok {
		w.Set(kv.Key, kv.Value)
	}
	for _, p := range plans {
		t := st.Tensors[p.name]
		typ := quant.F32
		if len(p.torch) == 2 {
			typ = o.Type
		}
		shape := make([]int64, len(p.torch))
		for i, d := range p.torch {
			shape[len(p.torch)-1-i] = d
		}
		if err := w.AddTensor(p.name, typ, shape, func(out io.Writer) error {
			return writeAs(out, typ, t.Floats())
		}); err != nil {
			return nil, err
		}
	}
	if err := w.WriteFile(o.Out); err != nil {
		return nil, fmt.Errorf("write %s: %w", o.Out, err)
	}
	return &summary{Config: cfg, Params: params, Tensors: len(plans)}, nil
}

func elements(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return n
}

// checkTensors checks that the file holds exactly the planned tensors with
// their shapes and finite values: a tensor export would not write is an
// error, not silently dropped.
func checkTensors(st *safetensors, plans []planned) error {
	want := map[string]bool{}
	for _, p := range plans {
		want[p.name] = true
		t, ok := st.Tensors[p.name]
		if !ok {
			return fmt.Errorf("tensor %s is missing", p.name)
		}
		if !slices.Equal(t.Shape, p.torch) {
			return fmt.Errorf("tensor %s has shape %v, want %v ([out, in] for a matrix)", p.name, t.Shape, p.torch)
		}
		for i, v := range t.Floats() {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("tensor %s: element %d is %v", p.name, i, v)
			}
		}
	}
	var extra []string
	for name := range st.Tensors {
		if !want[name] {
			extra = append(extra, name)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return fmt.Errorf("tensors %s are not part of a Llama model of this shape", strings.Join(extra, ", "))
	}
	return nil
}

// writeAs writes v as a tensor of type t.
func writeAs(out io.Writer, t quant.Type, v []float32) error {
	buf, err := quant.Encode(t, v)
	if err != nil {
		return err
	}
	_, err = out.Write(buf)
	return err
}

// tokenizerKVs returns the tokenizer.* metadata of the GGUF file at path,
// checking that its vocabulary has nVocab tokens.
func tokenizerKVs(path string, nVocab int) ([]gguf.KV, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	defer f.Close()
	toks, err := f.Strings("tokenizer.ggml.tokens")
	if err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", path, err)
	}
	if len(toks) != nVocab {
		return nil, fmt.Errorf("tokenizer %s has %d tokens, the model's embedding %d rows", path, len(toks), nVocab)
	}
	var kvs []gguf.KV
	for _, kv := range f.KVs() {
		if strings.HasPrefix(kv.Key, "tokenizer.") {
			kvs = append(kvs, kv)
		}
	}
	return kvs, nil
}

// description is general.description: what the model is and how it was
// trained, from the training metadata that train.py records.
func description(st *safetensors, params int64) string {
	d := fmt.Sprintf("Llama-architecture model of %d parameters trained by ocelot's scripts/train on the Go source tree (BSD-3-Clause, The Go Authors)", params)
	var facts []string
	for _, k := range []string{"corpus", "steps", "tokens_seen", "val_loss", "minutes"} {
		if v, ok := st.Metadata[k]; ok {
			facts = append(facts, k+" "+v)
		}
	}
	if len(facts) > 0 {
		d += ": " + strings.Join(facts, ", ")
	}
	return d
}
