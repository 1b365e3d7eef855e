package main

import (
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ocelot-llm/ocelot/gguf"
	"github.com/ocelot-llm/ocelot/internal/testmodel"
	"github.com/ocelot-llm/ocelot/internal/testutil"
	"github.com/ocelot-llm/ocelot/quant"
	"github.com/ocelot-llm/ocelot/synth"
	"github.com/ocelot-llm/ocelot/tokenizer"
)

func infoJSON(t *testing.T, args ...string) map[string]any {
	t.Helper()
	code, out, errs := cli(t, append([]string{"info", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("info %v: code %d: %s", args, code, errs)
	}
	var mi map[string]any
	if err := json.Unmarshal([]byte(out), &mi); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return mi
}

// tensorTotals are a file's parameter count and tensor bytes, counted here.
func tensorTotals(t *testing.T, path string) (params, bytes int64) {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, ti := range f.Tensors {
		n := int64(1)
		for _, d := range ti.Shape {
			n *= d
		}
		params += n
		bytes += ti.Size
	}
	return params, bytes
}

// withoutFileType copies a model without general.file_type, edited
// further by edit (may be nil).
func withoutFileType(t *testing.T, src string) string {
	return testmodel.Rewrite(t, src, func(w *gguf.Writer, f *gguf.File) {
		w.Metadata().Delete("general.file_type")
		for _, ti := range f.Tensors {
			data, err := f.TensorData(ti.Name)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.AddTensorBytes(ti.Name, ti.Type, ti.Shape, data); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func TestInfoModelFacts(t *testing.T) {
	tiny := testmodel.Preset(t, "tiny")
	tok, err := tokenizer.Load(tiny)
	if err != nil {
		t.Fatal(err)
	}
	params, weights := tensorTotals(t, tiny)
	mi := infoJSON(t, "-m", tiny)
	for k, want := range map[string]any{
		"file_type": "MOSTLY_Q4_0", "file_type_id": 2.0, "file_type_guessed": false,
		"n_params": float64(params), "weight_bytes": float64(weights),
		"bos_token_id": float64(tok.BOS()), "eos_token_id": float64(tok.EOS()), "eot_token_id": float64(tok.EOT()),
		"pad_token_id": nil, "add_bos_token": true, "add_eos_token": false,
		"chat_template": tok.ChatTemplate(), "chat_format": "llama3",
	} {
		if got, ok := mi[k]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, want)
		}
	}
	if params < 5e6 || tok.ChatTemplate() == "" || tok.BOS() < 0 || tok.EOT() < 0 {
		t.Fatalf("the tiny model is not what this test expects: %d params, BOS %d, EOT %d, template %q", params, tok.BOS(), tok.EOT(), tok.ChatTemplate())
	}
	eog := map[float64]bool{}
	for _, id := range mi["eog_token_ids"].([]any) {
		eog[id.(float64)] = true
	}
	if !eog[float64(tok.EOS())] || !eog[float64(tok.EOT())] || len(eog) != len(tok.EOGTokens()) {
		t.Errorf("eog_token_ids %v, want %v", mi["eog_token_ids"], tok.EOGTokens())
	}

	// The tiny shape's KV cache: 4 layers, and per cell a K row and a V
	// row of 2 KV heads × 32 dims = 64 elements (q8_0 and q4_0 rows are
	// two blocks of 34 and 18 bytes).
	for _, c := range []struct {
		args    []string
		nCtx    int
		kvBytes int64
		tk, tv  string
	}{
		{nil, 4096, 4 * 4096 * (64*2 + 64*2), "f16", "f16"},                 // the default: -c 4096, f16
		{[]string{"-c", "0"}, 4096, 4 * 4096 * (64*2 + 64*2), "f16", "f16"}, // the trained context
		{[]string{"-c", "512", "-ctk", "q8_0", "-ctv", "q4_0"}, 512, 4 * 512 * (2*34 + 2*18), "q8_0", "q4_0"},
		{[]string{"-c", "100", "-ctk", "f32"}, 100, 4 * 100 * (64*4 + 64*2), "f32", "f16"},
	} {
		mi := infoJSON(t, append([]string{"-m", tiny}, c.args...)...)
		m, ok := mi["memory"].(map[string]any)
		if !ok {
			t.Fatalf("%v: no memory: %v", c.args, mi["memory"])
		}
		want := map[string]any{"n_ctx": float64(c.nCtx), "type_k": c.tk, "type_v": c.tv, "weights_bytes": float64(weights),
			"kv_cache_bytes": float64(c.kvBytes), "total_bytes": float64(weights + c.kvBytes)}
		for k, v := range want {
			if m[k] != v {
				t.Errorf("%v: memory.%s = %v, want %v", c.args, k, m[k], v)
			}
		}
	}

	code, out, errs := cli(t, "info", "-m", tiny, "-c", "8192", "-ctk", "q8_0")
	if code != 0 {
		t.Fatalf("code %d: %s", code, errs)
	}
	for _, want := range []string{
		"file type:     MOSTLY_Q4_0\n", "params:        5.11 M (" /* 5,1xx,xxx */, "\nBOS:           " + itoa(tok.BOS()) + ` "<|begin_of_text|>" (added: yes)`,
		"\nEOT:           " + itoa(tok.EOT()) + ` "<|eot_id|>"`, "\nEOG:           ", "\nPAD:           none\n",
		"chat template: llama3 format, ", "    {% set loop_messages = messages %}",
		"memory:        ", "at -c 8192, beyond the trained context of 4096: 3.0 MiB weights + ", "KV cache (q8_0/f16)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
}

func itoa(id int32) string { return strconv.Itoa(int(id)) }

// Without general.file_type the file type is guessed from the tensor
// types, as llama.cpp guesses it, and said to be guessed.
func TestInfoGuessedFileType(t *testing.T) {
	for _, c := range []struct {
		typ, out quant.Type
		want     string
		id       float64
	}{
		{quant.Q4_0, quant.Q6_K, "MOSTLY_Q4_0", 2},
		{quant.Q8_0, quant.Q8_0, "MOSTLY_Q8_0", 7},
		{quant.F32, quant.F32, "ALL_F32", 0},
	} {
		p, err := synth.PresetByName("tiny")
		if err != nil {
			t.Fatal(err)
		}
		o := synth.DefaultOptions(p)
		o.Type, o.OutputType = c.typ, c.out
		src := testmodel.Path(t, o)
		if got := infoJSON(t, "-m", src)["file_type"]; got != c.want {
			t.Errorf("%s: file_type %v with the key, want %s", c.typ, got, c.want)
		}
		path := withoutFileType(t, src)
		mi := infoJSON(t, "-m", path)
		if mi["file_type"] != c.want || mi["file_type_id"] != c.id || mi["file_type_guessed"] != true ||
			!strings.Contains(mi["file_type_note"].(string), "general.file_type is absent") {
			t.Errorf("%s: file_type %v, id %v, guessed %v, note %v; want %s guessed", c.typ, mi["file_type"], mi["file_type_id"], mi["file_type_guessed"], mi["file_type_note"], c.want)
		}
		code, out, errs := cli(t, "info", "-m", path)
		if code != 0 || !strings.Contains(out, "file type:     "+c.want+" (guessed from the tensor types") {
			t.Errorf("%s: code %d, %s\n%s", c.typ, code, errs, out)
		}
	}
}

func TestInfoPadAndVocabFiles(t *testing.T) {
	tiny := testmodel.Preset(t, "tiny")
	padded := testmodel.Rewrite(t, tiny, func(w *gguf.Writer, f *gguf.File) {
		w.Set("tokenizer.ggml.padding_token_id", gguf.Uint32(7))
		for _, ti := range f.Tensors {
			data, _ := f.TensorData(ti.Name)
			w.AddTensorBytes(ti.Name, ti.Type, ti.Shape, data)
		}
	})
	if mi := infoJSON(t, "-m", padded); mi["pad_token_id"] != 7.0 {
		t.Errorf("pad_token_id %v, want 7", mi["pad_token_id"])
	}
	if _, out, _ := cli(t, "info", "-m", padded); !strings.Contains(out, "\nPAD:           7 ") {
		t.Errorf("no PAD line:\n%s", out)
	}

	dir := testutil.VocabDir(t)
	mi := infoJSON(t, "-m", filepath.Join(dir, "ggml-vocab-llama-bpe.gguf"))
	for k, want := range map[string]any{"bos_token_id": 128000.0, "eos_token_id": 128001.0, "eot_token_id": 128009.0, "add_bos_token": true, "n_params": 0.0} {
		if mi[k] != want {
			t.Errorf("bpe vocab: %s = %v, want %v", k, mi[k], want)
		}
	}
	if _, ok := mi["memory"]; ok {
		t.Errorf("a vocabulary-only file has no memory to report: %v", mi["memory"])
	}
	mi = infoJSON(t, "-m", filepath.Join(dir, "ggml-vocab-llama-spm.gguf"))
	if mi["bos_token_id"] != 1.0 || mi["eos_token_id"] != 2.0 || mi["eot_token_id"] != nil {
		t.Errorf("spm vocab: bos %v, eos %v, eot %v", mi["bos_token_id"], mi["eos_token_id"], mi["eot_token_id"])
	}
}

func TestInfoFlagErrors(t *testing.T) {
	tiny := testmodel.Preset(t, "tiny")
	for _, args := range [][]string{
		{"-c", "-1"}, {"-c", "x"}, {"-c", "2000000000"}, {"-ctk", "q6_K"}, {"-ctv", "nope"},
	} {
		code, out, errs := cli(t, append([]string{"info", "-m", tiny}, args...)...)
		if code != 2 || out != "" || !strings.Contains(errs, "usage") {
			t.Errorf("%v: code %d, stdout %q, stderr %q", args, code, out, errs)
		}
	}
}
