package model_test

import (
	"path/filepath"
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
	t.Helper()
	f, err := gguf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := gguf.NewWriter()
	for _, kv := range f.KVs() {
		w.Set(kv.Key, kv.Value)
	}
	edit(w, f)
	out := filepath.Join(t.TempDir(), "broken.gguf")
	if err := w.WriteFile(out); err != nil {
		t.Fatal(err)
	}
	return out
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
