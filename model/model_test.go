package model_test

import (
	"encoding/binary"
	"math"
	"strings"
	"testing"

	"github.com/ocelot-llm/ocelot/gguf"
	"github.com/ocelot-llm/ocelot/internal/testmodel"
	"github.com/ocelot-llm/ocelot/model"
	"github.com/ocelot-llm/ocelot/quant"
)

// rewrite copies a model file, letting edit drop or change tensors and
// metadata, to make broken models.
func rewrite(t *testing.T, src string, edit func(w *gguf.Writer, f *gguf.File)) string {
	return testmodel.Rewrite(t, src, edit)
}

func copyTensors(t *testing.T, w *gguf.Writer, f *gguf.File, skip string, retype map[string]quant.Type) {
	t.Helper()
	for _, ti := range f.Tensors {
		if ti.Name == skip {
			continue
		}
		data, err := f.TensorData(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		typ := ti.Type
		if nt, ok := retype[ti.Name]; ok {
			typ = nt
			n, _ := quant.RowSize(nt, ti.Elements())
			data = make([]byte, n)
		}
		if err := w.AddTensorBytes(ti.Name, typ, ti.Shape, data); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	tiny := testmodel.Preset(t, "tiny")
	tests := []struct {
		name string
		edit func(w *gguf.Writer, f *gguf.File)
		want string
	}{
		{"missing tensor", func(w *gguf.Writer, f *gguf.File) { copyTensors(t, w, f, "blk.2.ffn_up.weight", nil) },
			"tensor blk.2.ffn_up.weight is missing"},
		{"other architecture", func(w *gguf.Writer, f *gguf.File) {
			w.Set("general.architecture", gguf.String("gpt2"))
			copyTensors(t, w, f, "", nil)
		}, `architecture "gpt2" is not supported`},
		{"unsupported type", func(w *gguf.Writer, f *gguf.File) {
			copyTensors(t, w, f, "", map[string]quant.Type{"blk.1.attn_q.weight": quant.Q4_K})
		}, "blk.1.attn_q.weight has type q4_K"},
		{"missing hyperparameter", func(w *gguf.Writer, f *gguf.File) {
			w.Metadata().Delete("llama.block_count")
			copyTensors(t, w, f, "", nil)
		}, "llama.block_count"},
		// Hyperparameters out of range or disagreeing with the tensors are
		// refused before any layer is read.
		{"absurd block count", setKV("llama.block_count", gguf.Uint32(0xFFFFFFFF)), "llama.block_count is 4294967295, want 1..1024"},
		{"more layers than tensors", setKV("llama.block_count", gguf.Uint32(6)), "llama.block_count is 6 but the file holds tensors for 4 layers"},
		{"fewer layers than tensors", setKV("llama.block_count", gguf.Uint32(3)), "holds tensors of layer 3 (blk.3.*) but llama.block_count is 3"},
		{"absurd width", setKV("llama.embedding_length", gguf.Uint32(1<<30)), "llama.embedding_length is 1073741824"},
		{"zero heads", setKV("llama.attention.head_count", gguf.Uint32(0)), "llama.attention.head_count is 0"},
		{"more kv heads than heads", setKV("llama.attention.head_count_kv", gguf.Uint32(16)), "head_count_kv is 16, want 1..8"},
		// Optional keys of the wrong type are errors, not defaults.
		{"rope base as string", setKV("llama.rope.freq_base", gguf.String("500000")), "llama.rope.freq_base"},
		{"kv heads as string", setKV("llama.attention.head_count_kv", gguf.String("2")), "llama.attention.head_count_kv"},
		// Values no forward pass can use.
		{"rope base zero", setKV("llama.rope.freq_base", gguf.Float32(0)), "rope.freq_base is 0"},
		{"rope base NaN", setKV("llama.rope.freq_base", gguf.Float32(float32(math.NaN()))), "rope.freq_base is NaN"},
		{"negative epsilon", setKV("llama.attention.layer_norm_rms_epsilon", gguf.Float32(-1e-5)), "epsilon must lie in (0, 1)"},
		{"NaN in a norm", func(w *gguf.Writer, f *gguf.File) {
			copyTensorsEdit(t, w, f, "blk.1.ffn_norm.weight", func(b []byte) { binary.LittleEndian.PutUint32(b[4*7:], math.Float32bits(float32(math.NaN()))) })
		}, "tensor blk.1.ffn_norm.weight: element 7 is NaN"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := rewrite(t, tiny, tc.edit)
			f, err := gguf.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			_, err = model.Load(f)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// setKV copies the model with one metadata value changed.
func setKV(key string, v gguf.Value) func(*gguf.Writer, *gguf.File) {
	return func(w *gguf.Writer, f *gguf.File) {
		w.Set(key, v)
		for _, ti := range f.Tensors {
			data, _ := f.TensorData(ti.Name)
			w.AddTensorBytes(ti.Name, ti.Type, ti.Shape, data)
		}
	}
}

// copyTensorsEdit copies every tensor, letting edit change a copy of one
// tensor's bytes.
func copyTensorsEdit(t *testing.T, w *gguf.Writer, f *gguf.File, name string, edit func([]byte)) {
	t.Helper()
	for _, ti := range f.Tensors {
		data, err := f.TensorData(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		if ti.Name == name {
			data = append([]byte(nil), data...)
			edit(data)
		}
		if err := w.AddTensorBytes(ti.Name, ti.Type, ti.Shape, data); err != nil {
			t.Fatal(err)
		}
	}
}

// TestNonFiniteWeights plants an infinite Q4_0 block scale and a NaN in
// an f32 weight: Load refuses each, naming the tensor, row and block or
// element.
func TestNonFiniteWeights(t *testing.T) {
	tiny := testmodel.Preset(t, "tiny")
	for _, tc := range []struct {
		name, tensor string
		retype       bool // store the tensor as f32 zeros before edit
		edit         func([]byte)
		want         string
	}{
		// Row 2 of blk.0.attn_k.weight (256 columns: 8 blocks of 18
		// bytes a row), its first block's scale +Inf.
		{"inf scale", "blk.0.attn_k.weight", false, func(b []byte) { binary.LittleEndian.PutUint16(b[2*8*18:], 0x7c00) },
			"tensor blk.0.attn_k.weight holds a NaN or Inf at row 2, the scale of block 0"},
		{"nan weight", "blk.3.ffn_down.weight", true, func(b []byte) { binary.LittleEndian.PutUint32(b[4*(768+5):], 0x7fc00000) },
			"tensor blk.3.ffn_down.weight holds a NaN or Inf at row 1, element 5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := rewrite(t, tiny, func(w *gguf.Writer, f *gguf.File) {
				for _, ti := range f.Tensors {
					data, _ := f.TensorData(ti.Name)
					typ := ti.Type
					if ti.Name == tc.tensor {
						if tc.retype {
							typ = quant.F32
							n, _ := quant.RowSize(typ, ti.Elements())
							data = make([]byte, n)
						} else {
							data = append([]byte(nil), data...)
						}
						tc.edit(data)
					}
					if err := w.AddTensorBytes(ti.Name, typ, ti.Shape, data); err != nil {
						t.Fatal(err)
					}
				}
			})
			f, err := gguf.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := model.Load(f); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
