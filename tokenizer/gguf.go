package tokenizer

import (
	"errors"
	"fmt"

	"github.com/ocelot-llm/ocelot/gguf"
)

// GGUF metadata keys of the tokenizer.
const (
	keyModel        = "tokenizer.ggml.model"
	keyPre          = "tokenizer.ggml.pre"
	keyTokens       = "tokenizer.ggml.tokens"
	keyScores       = "tokenizer.ggml.scores"
	keyTypes        = "tokenizer.ggml.token_type"
	keyMerges       = "tokenizer.ggml.merges"
	keyBOS          = "tokenizer.ggml.bos_token_id"
	keyEOS          = "tokenizer.ggml.eos_token_id"
	keyEOT          = "tokenizer.ggml.eot_token_id"
	keyEOM          = "tokenizer.ggml.eom_token_id"
	keyUNK          = "tokenizer.ggml.unknown_token_id"
	keyPAD          = "tokenizer.ggml.padding_token_id"
	keyAddBOS       = "tokenizer.ggml.add_bos_token"
	keyAddEOS       = "tokenizer.ggml.add_eos_token"
	keyAddPrefix    = "tokenizer.ggml.add_space_prefix"
	keyChatTemplate = "tokenizer.chat_template"
)

// Load opens the GGUF file at path and builds the tokenizer of its
// tokenizer.* metadata.
func Load(path string) (*Tokenizer, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	t, err := FromGGUF(&f.Metadata)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// FromGGUF builds the tokenizer described by a GGUF file's tokenizer.*
// metadata.
func FromGGUF(m *gguf.Metadata) (*Tokenizer, error) {
	v, err := VocabFromGGUF(m)
	if err != nil {
		return nil, err
	}
	return New(v)
}

// VocabFromGGUF reads a vocabulary from GGUF metadata. Where a key is
// absent it takes llama.cpp's default for the tokenizer model: BOS 1, EOS 2,
// UNK 0, a leading space and BOS added for "llama" (SPM) vocabularies; BOS
// added for the Llama 3 pre-tokenizer. A key of the wrong type is an error.
func VocabFromGGUF(m *gguf.Metadata) (*Vocab, error) {
	v := &Vocab{BOS: -1, EOS: -1, EOT: -1, EOM: -1, UNK: -1, PAD: -1}
	var err error
	if v.Model, err = m.String(keyModel); err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if v.Pre, err = optional(m.String(keyPre)); err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if v.Tokens, err = m.Strings(keyTokens); err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if v.Scores, err = optional(m.Float32s(keyScores)); err != nil {
		// llama.cpp also takes integer scores.
		is, err2 := m.Int32s(keyScores)
		if err2 != nil {
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
		v.Scores = make([]float32, len(is))
		for i, s := range is {
			v.Scores[i] = float32(s)
		}
	}
	if v.Types, err = optional(m.Int32s(keyTypes)); err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}

	switch v.Model {
	case ModelSPM:
		v.BOS, v.EOS, v.UNK = 1, 2, 0
		v.AddSpacePrefix = true
		v.AddBOS = true
	case ModelBPE:
		if v.Merges, err = m.Strings(keyMerges); err != nil {
			return nil, fmt.Errorf("tokenizer: BPE vocabulary: %w", err)
		}
		v.BOS, v.EOS = 11, 11
		v.AddBOS = llama3Pre[v.Pre]
	}
	n := int32(len(v.Tokens))
	for _, id := range []*int32{&v.BOS, &v.EOS, &v.UNK} {
		if *id >= n {
			*id = -1 // a default outside the vocabulary is no token
		}
	}
	for _, s := range []struct {
		key string
		id  *int32
	}{{keyBOS, &v.BOS}, {keyEOS, &v.EOS}, {keyEOT, &v.EOT}, {keyEOM, &v.EOM}, {keyUNK, &v.UNK}, {keyPAD, &v.PAD}} {
		id, err := m.Uint32(s.key)
		if errors.Is(err, gguf.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
		if id < uint32(n) {
			*s.id = int32(id)
		} // else llama.cpp warns and keeps the default
	}
	for _, b := range []struct {
		key string
		val *bool
	}{{keyAddBOS, &v.AddBOS}, {keyAddEOS, &v.AddEOS}, {keyAddPrefix, &v.AddSpacePrefix}} {
		x, err := m.Bool(b.key)
		if errors.Is(err, gguf.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
		*b.val = x
	}
	if v.ChatTemplate, err = optional(m.String(keyChatTemplate)); err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return v, nil
}

// optional turns a missing key into the zero value.
func optional[T any](x T, err error) (T, error) {
	if errors.Is(err, gguf.ErrKeyNotFound) {
		var zero T
		return zero, nil
	}
	return x, err
}
