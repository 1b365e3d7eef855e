package tokenizer

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ocelot-llm/ocelot/gguf"
)

func TestTrainBPE(t *testing.T) {
	text := mixedText(100_000, 11)
	const size = 4096 + 512
	start := time.Now()
	v, err := TrainBPE(text, size)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("trained %d merges on %d bytes in %v", len(v.Merges), len(text), time.Since(start))

	if len(v.Tokens) != size || len(v.Types) != size {
		t.Fatalf("%d tokens and %d types, want %d", len(v.Tokens), len(v.Types), size)
	}
	if v.Model != ModelBPE || v.Pre != "llama-bpe" || !v.AddBOS || v.AddEOS {
		t.Errorf("model %q pre %q addBOS %v addEOS %v", v.Model, v.Pre, v.AddBOS, v.AddEOS)
	}
	// The first 256 tokens are the bytes in GPT-2's order, as in Llama 3.
	for i := 0; i < 256; i++ {
		if v.Tokens[i] != byteToUnicode[byteOrder[i]] {
			t.Fatalf("token %d = %q, want byte %#x", i, v.Tokens[i], byteOrder[i])
		}
	}
	if v.Tokens[0] != "!" || v.Tokens[220] != "Ġ" {
		t.Errorf("base tokens out of GPT-2 order: %q %q", v.Tokens[0], v.Tokens[220])
	}
	// The last 256 are Llama 3.1's special tokens.
	specials := llama3Specials()
	if !slices.Equal(v.Tokens[size-256:], specials) {
		t.Errorf("special tokens differ from Llama 3.1's")
	}
	for i := size - 256; i < size; i++ {
		if v.Types[i] != TypeControl {
			t.Fatalf("special token %d has type %d", i, v.Types[i])
		}
	}
	if v.Tokens[v.BOS] != "<|begin_of_text|>" || v.Tokens[v.EOS] != "<|end_of_text|>" || v.Tokens[v.EOT] != "<|eot_id|>" || v.Tokens[v.EOM] != "<|eom_id|>" {
		t.Errorf("BOS %d EOS %d EOT %d EOM %d", v.BOS, v.EOS, v.EOT, v.EOM)
	}

	tok, err := New(v)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range append([]string{text, mixedText(20_000, 12), "안녕하세요 🦙 ünïcödé", "x"}, randomCases()[:300]...) {
		ids, err := tok.Encode(s, false, false)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := tok.Decode(ids); got != s {
			t.Fatalf("Decode(Encode(%.40q)) = %.40q", s, got)
		}
	}
	ids, _ := tok.Encode(text, false, false)
	t.Logf("the training text: %d bytes, %d tokens", len(text), len(ids))
	if len(ids) >= len(text)/2 {
		t.Errorf("%d tokens for %d bytes: the vocabulary hardly compresses", len(ids), len(text))
	}
	if !tok.IsEOG(v.EOT) || !tok.IsEOG(v.EOS) {
		t.Errorf("EOT and EOS should end generation")
	}
	prompt, err := tok.RenderChat("", []Message{{"user", "Hi"}}, true)
	if err != nil {
		t.Fatal(err)
	}
	if ids, _ := tok.Encode(prompt, true, true); ids[0] != v.BOS || ids[1] != v.BOS+6 {
		t.Errorf("chat prompt ids start %v", ids[:2])
	}

	// Training is deterministic.
	v2, err := TrainBPE(text, size)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(v, v2); diff != "" {
		t.Errorf("second training differs:\n%.2000s", diff)
	}
}

// TestTrainBaseTokens checks that trained vocabularies number the bytes as
// Llama 3 does.
func TestTrainBaseTokens(t *testing.T) {
	l3 := llama3(t)
	v, err := TrainBPE("", 512)
	if err != nil {
		t.Fatal(err)
	}
	for i := int32(0); i < 256; i++ {
		if text, _ := l3.TokenText(i); text != v.Tokens[i] {
			t.Fatalf("token %d: %q, Llama 3 has %q", i, v.Tokens[i], text)
		}
	}
}

// TestTrainBPEFill checks that a text too small for the vocabulary leaves
// the rest to reserved control tokens.
func TestTrainBPEFill(t *testing.T) {
	v, err := TrainBPE("hello hello world", 2048)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Tokens) != 2048 {
		t.Fatalf("%d tokens", len(v.Tokens))
	}
	nMerged := 256 + len(v.Merges)
	if v.Types[nMerged-1] != TypeNormal || v.Types[nMerged] != TypeControl || v.Tokens[nMerged] != "<|reserved_special_token_248|>" {
		t.Errorf("after %d regular tokens: %q type %d", nMerged, v.Tokens[nMerged], v.Types[nMerged])
	}
	if v.BOS != 2048-256 {
		t.Errorf("BOS %d, want %d", v.BOS, 2048-256)
	}
	tok, err := New(v)
	if err != nil {
		t.Fatal(err)
	}
	ids, _ := tok.Encode("hello world", false, false)
	if len(ids) != 2 {
		t.Errorf("hello world: %v", ids)
	}
	if _, err := TrainBPE("x", 511); err == nil {
		t.Error("vocabulary of 511 tokens accepted")
	}
}

// TestVocabFromGGUF builds a tokenizer from GGUF metadata as a file would
// hold it, with llama.cpp's defaults for missing keys.
func TestVocabFromGGUF(t *testing.T) {
	v, err := TrainBPE(mixedText(20_000, 1), 1024)
	if err != nil {
		t.Fatal(err)
	}
	var m gguf.Metadata
	m.Set("tokenizer.ggml.model", gguf.String(v.Model))
	m.Set("tokenizer.ggml.pre", gguf.String(v.Pre))
	m.Set("tokenizer.ggml.tokens", gguf.Strings(v.Tokens))
	m.Set("tokenizer.ggml.token_type", gguf.Int32s(v.Types))
	m.Set("tokenizer.ggml.merges", gguf.Strings(v.Merges))
	m.Set("tokenizer.ggml.bos_token_id", gguf.Uint32(uint32(v.BOS)))
	m.Set("tokenizer.ggml.eos_token_id", gguf.Uint32(uint32(v.EOS)))
	m.Set("tokenizer.chat_template", gguf.String(v.ChatTemplate))
	got, err := VocabFromGGUF(&m)
	if err != nil {
		t.Fatal(err)
	}
	if !got.AddBOS || got.AddEOS || got.EOT != -1 || got.BOS != v.BOS {
		t.Errorf("defaults: addBOS %v addEOS %v EOT %d BOS %d", got.AddBOS, got.AddEOS, got.EOT, got.BOS)
	}
	tok, err := FromGGUF(&m)
	if err != nil {
		t.Fatal(err)
	}
	if tok.EOT() != v.EOT {
		t.Errorf("EOT %d found from its text, want %d", tok.EOT(), v.EOT)
	}

	m.Set("tokenizer.ggml.add_bos_token", gguf.Bool(false))
	if got, _ := VocabFromGGUF(&m); got.AddBOS {
		t.Error("add_bos_token=false ignored")
	}
	m.Set("tokenizer.ggml.add_bos_token", gguf.Uint32(1))
	if _, err := VocabFromGGUF(&m); err == nil || !strings.Contains(err.Error(), "add_bos_token") {
		t.Errorf("wrong type: err %v", err)
	}
	m.Delete("tokenizer.ggml.add_bos_token")
	m.Delete("tokenizer.ggml.merges")
	if _, err := FromGGUF(&m); err == nil || !strings.Contains(err.Error(), "merges") {
		t.Errorf("no merges: err %v", err)
	}
	m.Delete("tokenizer.ggml.model")
	if _, err := FromGGUF(&m); err == nil || !strings.Contains(err.Error(), "tokenizer.ggml.model") {
		t.Errorf("no model: err %v", err)
	}
}
