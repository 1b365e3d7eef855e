package model_test

import (
	"bytes"
	"context"
	"math"
	"testing"

	"github.com/ocelot-llm/ocelot/gguf"
	"github.com/ocelot-llm/ocelot/model"
	"github.com/ocelot-llm/ocelot/quant"
	"github.com/ocelot-llm/ocelot/ref"
)

// microFile writes a valid two-layer Llama model of width 32 (4 heads of
// 8, 2 KV heads, n_ff 64, 64 tokens) with the hyperparameters and one
// tensor's shape and type changed as given; it returns nil when the
// writer itself refuses the change.
func microFile(embd, layers, heads, kvHeads, ff uint32, ropeBase, eps float32, pick uint8, d0, d1 int64, typ uint8) []byte {
	w := gguf.NewWriter()
	w.Set("general.architecture", gguf.String("llama"))
	w.Set("llama.embedding_length", gguf.Uint32(embd))
	w.Set("llama.block_count", gguf.Uint32(layers))
	w.Set("llama.attention.head_count", gguf.Uint32(heads))
	w.Set("llama.attention.head_count_kv", gguf.Uint32(kvHeads))
	w.Set("llama.feed_forward_length", gguf.Uint32(ff))
	w.Set("llama.rope.freq_base", gguf.Float32(ropeBase))
	w.Set("llama.attention.layer_norm_rms_epsilon", gguf.Float32(eps))
	type tensor struct {
		name  string
		shape []int64
	}
	const E, KV, FF, V = 32, 16, 64, 64
	ts := []tensor{{"token_embd.weight", []int64{E, V}}, {"output_norm.weight", []int64{E}}}
	for l := range 2 {
		p := "blk." + string(rune('0'+l)) + "."
		ts = append(ts, tensor{p + "attn_norm.weight", []int64{E}}, tensor{p + "attn_q.weight", []int64{E, E}},
			tensor{p + "attn_k.weight", []int64{E, KV}}, tensor{p + "attn_v.weight", []int64{E, KV}},
			tensor{p + "attn_output.weight", []int64{E, E}}, tensor{p + "ffn_norm.weight", []int64{E}},
			tensor{p + "ffn_gate.weight", []int64{E, FF}}, tensor{p + "ffn_up.weight", []int64{E, FF}},
			tensor{p + "ffn_down.weight", []int64{FF, E}})
	}
	types := []quant.Type{quant.F32, quant.F16, quant.Q8_0, quant.Q4_0, quant.Q6_K, quant.BF16, quant.Q4_K}
	for i, t := range ts {
		tt := quant.F32
		if len(t.shape) == 2 {
			tt = quant.Q8_0
		}
		if i == int(pick)%len(ts) {
			t.shape = []int64{d0, d1}
			if d1 == 0 {
				t.shape = []int64{d0}
			}
			tt = types[int(typ)%len(types)]
		}
		elems := int64(1)
		for _, d := range t.shape {
			if d < 0 || d > 1<<12 {
				return nil // the writer's own checks are gguf's fuzzers' business
			}
			elems *= d
		}
		n, err := quant.RowSize(tt, elems)
		if err != nil {
			return nil
		}
		data := make([]byte, n)
		// Small valid values: f32 ones for vectors, unit scales for blocks.
		if tt == quant.F32 {
			for j := 0; j+4 <= len(data); j += 4 {
				copy(data[j:], []byte{0, 0, 0x80, 0x3f})
			}
		} else if tt == quant.Q8_0 {
			for j := 0; j+34 <= len(data); j += 34 {
				data[j], data[j+1], data[j+2] = 0x00, 0x2c, 3 // d = 1/16, first quant 3
			}
		}
		if err := w.AddTensorBytes(t.name, tt, t.shape, data); err != nil {
			return nil
		}
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		return nil
	}
	return buf.Bytes()
}

// FuzzLoad mutates the hyperparameters and one tensor's shape and type of
// a valid small model: Load must accept or refuse it with an error, never
// panic or allocate without bound, and a model it accepts must evaluate
// two tokens to finite logits (or fail with an error).
func FuzzLoad(f *testing.F) {
	f.Add(uint32(32), uint32(2), uint32(4), uint32(2), uint32(64), float32(10000), float32(1e-5), uint8(0), int64(32), int64(64), uint8(2))
	f.Add(uint32(32), uint32(0xFFFFFFFF), uint32(4), uint32(2), uint32(64), float32(10000), float32(1e-5), uint8(0), int64(32), int64(64), uint8(2))
	f.Add(uint32(1<<30), uint32(2), uint32(4), uint32(2), uint32(64), float32(10000), float32(1e-5), uint8(0), int64(32), int64(64), uint8(2))
	f.Add(uint32(32), uint32(2), uint32(4), uint32(2), uint32(64), float32(0), float32(-1), uint8(3), int64(32), int64(32), uint8(2))
	f.Add(uint32(32), uint32(2), uint32(3), uint32(2), uint32(64), float32(math.NaN()), float32(1e-5), uint8(5), int64(32), int64(0), uint8(0))
	f.Add(uint32(32), uint32(1), uint32(4), uint32(4), uint32(64), float32(500000), float32(1e-6), uint8(7), int64(256), int64(16), uint8(4))
	f.Fuzz(func(t *testing.T, embd, layers, heads, kvHeads, ff uint32, ropeBase, eps float32, pick uint8, d0, d1 int64, typ uint8) {
		data := microFile(embd, layers, heads, kvHeads, ff, ropeBase, eps, pick, d0, d1, typ)
		if data == nil {
			return
		}
		gf, err := gguf.Parse(data)
		if err != nil {
			return
		}
		m, err := model.Load(gf)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		kv, err := ref.NewKVCache(m.Config, 4, quant.F16, quant.F16)
		if err != nil {
			t.Fatalf("a loaded model's cache: %v", err)
		}
		rm := ref.New(m)
		logits, err := rm.Eval(context.Background(), &ref.State{KV: kv}, []int32{1, int32(m.NVocab - 1)}, 2, 2, true, 1)
		if err != nil {
			return
		}
		for _, row := range logits {
			for _, v := range row {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Fatalf("accepted model (%+v) computes non-finite logits", m.Config)
				}
			}
		}
	})
}

// The fuzzer's base model is valid: it loads and evaluates.
func TestMicroFileLoads(t *testing.T) {
	data := microFile(32, 2, 4, 2, 64, 10000, 1e-5, 0, 32, 64, 2)
	if data == nil {
		t.Fatal("the writer refused the base model")
	}
	gf, err := gguf.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(gf)
	if err != nil {
		t.Fatal(err)
	}
	kv, _ := ref.NewKVCache(m.Config, 4, quant.F16, quant.F16)
	if _, err := ref.New(m).Eval(context.Background(), &ref.State{KV: kv}, []int32{1, 2}, 2, 2, true, 1); err != nil {
		t.Fatal(err)
	}
}
