package synth

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"sync"

	"github.com/ocelot-llm/ocelot/gguf"
	"github.com/ocelot-llm/ocelot/tokenizer"
)

// corpus is the text ocelot's built-in vocabulary is trained on: a frozen
// snapshot of the project's own documents and code. It must not change:
// the vocabulary, and so every generated model and golden file, depend on
// it byte for byte.
//
//go:embed corpus/*.txt
var corpus embed.FS

// vocabKVs is what a model needs of a tokenizer: its size and its
// tokenizer.* metadata.
type vocabKVs struct {
	nVocab int
	kvs    []gguf.KV
	types  []int32 // token types (1: normal), nil when unknown
}

func loadVocab(o Options) (vocabKVs, error) {
	if o.VocabPath != "" {
		return vocabFromFile(o.VocabPath)
	}
	v, err := BuiltinVocab(o.Preset.NVocab)
	if err != nil {
		return vocabKVs{}, err
	}
	return vocabKVs{nVocab: len(v.Tokens), kvs: VocabMetadata(v), types: v.Types}, nil
}

// vocabFromFile copies the tokenizer.* metadata of a GGUF file.
func vocabFromFile(path string) (vocabKVs, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return vocabKVs{}, fmt.Errorf("synth: vocab: %w", err)
	}
	defer f.Close()
	toks, err := f.Strings("tokenizer.ggml.tokens")
	if err != nil {
		return vocabKVs{}, fmt.Errorf("synth: vocab %s: %w", path, err)
	}
	var out vocabKVs
	out.nVocab = len(toks)
	if types, err := f.Int32s("tokenizer.ggml.token_type"); err == nil && len(types) == len(toks) {
		out.types = append([]int32(nil), types...)
	}
	for _, kv := range f.KVs() {
		if strings.HasPrefix(kv.Key, "tokenizer.") {
			out.kvs = append(out.kvs, kv)
		}
	}
	return out, nil
}

// CorpusText returns the built-in vocabulary's training text.
func CorpusText() (string, error) {
	names, err := fs.Glob(corpus, "corpus/*.txt")
	if err != nil {
		return "", err
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		data, err := corpus.ReadFile(n)
		if err != nil {
			return "", err
		}
		b.Write(data)
		b.WriteByte('\n')
	}
	return b.String(), nil
}

var builtin struct {
	sync.Mutex
	vocabs map[int]*tokenizer.Vocab
}

// BuiltinVocab returns ocelot's own byte-level BPE vocabulary of n tokens,
// with Llama 3's special tokens, trained on the frozen corpus. Training
// stops where the corpus has no pair left to merge; the rest of the
// vocabulary is then filled with reserved control tokens, as Llama 3
// reserves its unused special ids.
func BuiltinVocab(n int) (*tokenizer.Vocab, error) {
	builtin.Lock()
	defer builtin.Unlock()
	if v, ok := builtin.vocabs[n]; ok {
		return v, nil
	}
	text, err := CorpusText()
	if err != nil {
		return nil, fmt.Errorf("synth: corpus: %w", err)
	}
	v, err := tokenizer.TrainBPE(text, n)
	if err != nil {
		return nil, fmt.Errorf("synth: built-in vocab: %w", err)
	}
	if builtin.vocabs == nil {
		builtin.vocabs = map[int]*tokenizer.Vocab{}
	}
	builtin.vocabs[n] = v
	return v, nil
}

// VocabMetadata returns the tokenizer.* GGUF metadata of a vocabulary, as
// llama.cpp's converter writes it for Llama 3.
func VocabMetadata(v *tokenizer.Vocab) []gguf.KV {
	kvs := []gguf.KV{
		{Key: "tokenizer.ggml.model", Value: gguf.String(v.Model)},
		{Key: "tokenizer.ggml.pre", Value: gguf.String(v.Pre)},
		{Key: "tokenizer.ggml.tokens", Value: gguf.Strings(v.Tokens)},
		{Key: "tokenizer.ggml.token_type", Value: gguf.Int32s(v.Types)},
	}
	if len(v.Merges) > 0 {
		kvs = append(kvs, gguf.KV{Key: "tokenizer.ggml.merges", Value: gguf.Strings(v.Merges)})
	}
	if len(v.Scores) > 0 {
		kvs = append(kvs, gguf.KV{Key: "tokenizer.ggml.scores", Value: gguf.Float32s(v.Scores)})
	}
	for _, id := range []struct {
		key string
		id  int32
	}{
		{"bos", v.BOS}, {"eos", v.EOS}, {"eot", v.EOT}, {"eom", v.EOM}, {"unknown", v.UNK}, {"padding", v.PAD},
	} {
		if id.id >= 0 {
			kvs = append(kvs, gguf.KV{Key: "tokenizer.ggml." + id.key + "_token_id", Value: gguf.Uint32(uint32(id.id))})
		}
	}
	kvs = append(kvs,
		gguf.KV{Key: "tokenizer.ggml.add_bos_token", Value: gguf.Bool(v.AddBOS)},
		gguf.KV{Key: "tokenizer.ggml.add_eos_token", Value: gguf.Bool(v.AddEOS)},
	)
	if v.ChatTemplate != "" {
		kvs = append(kvs, gguf.KV{Key: "tokenizer.chat_template", Value: gguf.String(v.ChatTemplate)})
	}
	return kvs
}
