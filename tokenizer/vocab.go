// Package tokenizer turns text into Llama token ids and back, giving the
// same ids as llama.cpp for the same GGUF vocabulary.
//
// Two tokenizer models are supported, as GGUF files name them in
// tokenizer.ggml.model:
//
//   - "gpt2": byte-level BPE with ranked merges and the Llama 3
//     pre-tokenizer (tokenizer.ggml.pre = "llama-bpe" and its aliases),
//     as used by Llama 3.x.
//   - "llama": SentencePiece-style BPE driven by token scores, with "▁"
//     for spaces, a leading space and byte fallback (<0xNN>), as used by
//     Llama 2.
//
// A Tokenizer is built from a Vocab (a plain struct that mirrors the
// tokenizer.* metadata) with New, or straight from a GGUF file with
// FromGGUF or Load. It is safe for concurrent use.
//
// Special and control tokens (<|eot_id|>, </s>, ...) written in the text
// are recognised only when Encode is asked to parse them; otherwise they
// are ordinary text. Decode maps ids back to bytes, and a StreamDecoder
// releases text token by token without ever splitting a UTF-8 character.
// RenderChat renders the Llama 3.x and Llama 2 chat formats.
package tokenizer

import (
	"fmt"
	"strings"
)

// Token types, as GGUF's tokenizer.ggml.token_type stores them (llama.cpp's
// llama_token_type).
const (
	TypeUndefined   int32 = 0
	TypeNormal      int32 = 1
	TypeUnknown     int32 = 2
	TypeControl     int32 = 3
	TypeUserDefined int32 = 4
	TypeUnused      int32 = 5
	TypeByte        int32 = 6
)

// Token attributes: llama.cpp's llama_token_attr bits, derived from the
// token types. One token may carry several.
const (
	attrUnknown     uint8 = 1 << 0
	attrUnused      uint8 = 1 << 1
	attrNormal      uint8 = 1 << 2
	attrControl     uint8 = 1 << 3
	attrUserDefined uint8 = 1 << 4
	attrByte        uint8 = 1 << 5
)

func typeToAttr(t int32) uint8 {
	switch t {
	case TypeNormal:
		return attrNormal
	case TypeUnknown:
		return attrUnknown
	case TypeControl:
		return attrControl
	case TypeUserDefined:
		return attrUserDefined
	case TypeUnused:
		return attrUnused
	case TypeByte:
		return attrByte
	}
	return 0
}

// Vocab is a tokenizer vocabulary: the tokenizer.* metadata of a GGUF file
// as plain Go values. Special token ids are -1 where absent.
//
// New takes the fields as they are, except that, like llama.cpp, it finds
// EOT and EOM by their text (<|eot_id|>, <|eom_id|>, ...) when they are -1,
// and treats such end-of-turn tokens as control tokens. FromGGUF fills in
// llama.cpp's defaults for keys a file leaves out (for example BOS=1,
// EOS=2 and a leading space for "llama" vocabularies, and adding BOS for
// Llama 3).
type Vocab struct {
	Model string // tokenizer.ggml.model: "gpt2" (byte-level BPE) or "llama" (SPM)
	Pre   string // tokenizer.ggml.pre: the BPE pre-tokenizer, e.g. "llama-bpe"

	Tokens []string  // tokenizer.ggml.tokens: the text of each token
	Scores []float32 // tokenizer.ggml.scores: SPM merge priorities (nil: all 0)
	Types  []int32   // tokenizer.ggml.token_type (nil: all TypeNormal)
	Merges []string  // tokenizer.ggml.merges: BPE merges "left right", in rank order

	BOS, EOS, EOT, EOM, UNK, PAD int32 // special token ids, -1 when absent

	AddBOS         bool // add BOS when Encode is asked to add special tokens
	AddEOS         bool // add EOS when Encode is asked to add special tokens
	AddSpacePrefix bool // SPM: put a space before the text (llama.cpp's add_space_prefix)

	ChatTemplate string // tokenizer.chat_template (Jinja text), if any
}

// Model names accepted in Vocab.Model.
const (
	ModelBPE = "gpt2"
	ModelSPM = "llama"
)

// llama3Pre are the tokenizer.ggml.pre values llama.cpp maps to the Llama 3
// pre-tokenizer with whole-word lookup ("ignore_merges") and BOS by default.
var llama3Pre = map[string]bool{
	"llama3": true, "llama-v3": true, "llama-bpe": true, "falcon3": true,
	"falcon-h1": true, "pixtral": true, "midm-2.0": true, "lfm2": true,
	"jina-v5-nano": true,
}

// llama3RegexPre use the same split as Llama 3 but merge every word.
var llama3RegexPre = map[string]bool{"dbrx": true, "smaug-bpe": true}

// validate checks what New needs of v and returns a description of the
// first problem found.
func (v *Vocab) validate() error {
	n := len(v.Tokens)
	if n == 0 {
		return fmt.Errorf("tokenizer: vocabulary has no tokens")
	}
	if n >= 1<<31-1 {
		return fmt.Errorf("tokenizer: vocabulary has %d tokens, too many", n)
	}
	switch v.Model {
	case ModelBPE:
		if !llama3Pre[v.Pre] && !llama3RegexPre[v.Pre] {
			if v.Pre == "" {
				return fmt.Errorf("tokenizer: BPE vocabulary without a pre-tokenizer (tokenizer.ggml.pre); only the Llama 3 pre-tokenizer (llama-bpe) is supported")
			}
			return fmt.Errorf("tokenizer: unsupported BPE pre-tokenizer %q; only the Llama 3 pre-tokenizer (llama-bpe) is supported", v.Pre)
		}
	case ModelSPM:
	case "":
		return fmt.Errorf("tokenizer: vocabulary has no tokenizer model (tokenizer.ggml.model)")
	default:
		return fmt.Errorf("tokenizer: unsupported tokenizer model %q (want %q or %q)", v.Model, ModelBPE, ModelSPM)
	}
	if v.Scores != nil && len(v.Scores) < n {
		return fmt.Errorf("tokenizer: %d scores for %d tokens", len(v.Scores), n)
	}
	if v.Types != nil && len(v.Types) < n {
		return fmt.Errorf("tokenizer: %d token types for %d tokens", len(v.Types), n)
	}
	for _, s := range []struct {
		name string
		id   int32
	}{{"BOS", v.BOS}, {"EOS", v.EOS}, {"EOT", v.EOT}, {"EOM", v.EOM}, {"UNK", v.UNK}, {"PAD", v.PAD}} {
		if s.id < -1 || int(s.id) >= n {
			return fmt.Errorf("tokenizer: %s token id %d out of range [0, %d)", s.name, s.id, n)
		}
	}
	if v.AddBOS && v.BOS < 0 {
		return fmt.Errorf("tokenizer: vocabulary asks to add BOS but has no BOS token")
	}
	if v.AddEOS && v.EOS < 0 {
		return fmt.Errorf("tokenizer: vocabulary asks to add EOS but has no EOS token")
	}
	return nil
}

// splitMerge splits a merge rule "left right" the way llama.cpp does: at the
// first space after the first byte.
func splitMerge(m string) (left, right string, ok bool) {
	if len(m) < 2 {
		return "", "", false
	}
	i := strings.IndexByte(m[1:], ' ')
	if i < 0 {
		return "", "", false
	}
	return m[:i+1], m[i+2:], true
}
