package tokenizer

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// ErrInvalidToken is wrapped by the errors returned for token ids outside
// the vocabulary.
var ErrInvalidToken = errors.New("invalid token id")

// Tokenizer encodes text to token ids and decodes ids to text for one
// vocabulary. It is immutable once built and safe for concurrent use.
type Tokenizer struct {
	model  string
	tokens []string
	scores []float32
	attrs  []uint8
	// textToID maps each token's text to its id, like llama.cpp's
	// token_to_id.
	textToID map[string]int32

	bos, eos, eot, eom       int32
	addBOS, addEOS, addSpace bool
	chatTemplate             string
	eog                      map[int32]bool

	// Special tokens for partitioning the text: all of them (CONTROL,
	// USER_DEFINED and UNKNOWN) when special tokens are parsed, only the
	// USER_DEFINED ones otherwise.
	specialAll, specialUser specialSet

	pieces    [][]byte // token_to_piece with specials rendered
	byteToken [256]int32

	bpe *bpeModel
	spm *spmModel

	work sync.Pool // *encodeState
}

// New builds a tokenizer from a vocabulary. It checks the vocabulary and
// returns an error naming the first problem found; v is not modified and
// not retained.
func New(v *Vocab) (*Tokenizer, error) {
	if err := v.validate(); err != nil {
		return nil, err
	}
	n := len(v.Tokens)
	t := &Tokenizer{
		model:        v.Model,
		tokens:       make([]string, n),
		scores:       make([]float32, n),
		attrs:        make([]uint8, n),
		textToID:     make(map[string]int32, n),
		bos:          v.BOS,
		eos:          v.EOS,
		eot:          v.EOT,
		eom:          v.EOM,
		addBOS:       v.AddBOS,
		addEOS:       v.AddEOS,
		addSpace:     v.AddSpacePrefix,
		chatTemplate: v.ChatTemplate,
		eog:          map[int32]bool{},
	}
	if v.Scores != nil {
		copy(t.scores, v.Scores)
	}
	for i, text := range v.Tokens {
		if text == "" {
			// llama.cpp gives empty tokens a placeholder text.
			text = fmt.Sprintf("[EMPTY_%d]", i)
		}
		if prev, dup := t.textToID[text]; dup {
			return nil, fmt.Errorf("tokenizer: duplicate token %q has ids %d and %d", text, prev, i)
		}
		t.tokens[i] = text
		t.textToID[text] = int32(i)
		t.attrs[i] = attrNormal
		if v.Types != nil {
			t.attrs[i] = typeToAttr(v.Types[i])
		}
	}
	t.findEndOfGeneration()
	t.specialAll = newSpecialSet(t, attrControl|attrUserDefined|attrUnknown)
	t.specialUser = newSpecialSet(t, attrUserDefined)

	var err error
	switch t.model {
	case ModelBPE:
		t.bpe, err = newBPE(t, v.Merges, llama3Pre[v.Pre])
	case ModelSPM:
		t.spm = newSPM(t)
	}
	if err != nil {
		return nil, err
	}
	t.byteToken = t.findByteTokens()
	t.pieces = make([][]byte, n)
	for i := range t.pieces {
		t.pieces[i] = t.piece(int32(i))
	}
	return t, nil
}

// eotTexts and eogTexts are the token texts llama.cpp treats as end of turn
// and end of generation when the metadata does not say.
var (
	eotTexts = []string{
		"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
		"<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>",
		"<end_of_utterance>",
	}
	eogTexts = []string{
		"<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>",
		"<|calls|>", "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>",
		"_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>", "<end_of_utterance>", "<eos>",
		"<turn|>", "<|tool_response>", "<｜end▁of▁sentence｜>", "[e~[",
	}
)

// findEndOfGeneration finds EOT and EOM by their text where the metadata
// gives no id, and collects the end-of-generation set, as llama.cpp's
// vocabulary loader does. Tokens that look like control tokens become
// control tokens.
func (t *Tokenizer) findEndOfGeneration() {
	markControl := func(id int32) { t.attrs[id] |= attrControl }
	if t.eot < 0 {
		for _, s := range eotTexts {
			if id, ok := t.textToID[s]; ok {
				t.eot = id
				markControl(id)
				break
			}
		}
	}
	if t.eom < 0 {
		if id, ok := t.textToID["<|eom_id|>"]; ok {
			t.eom = id
			markControl(id)
		}
	}
	for _, s := range eogTexts {
		if id, ok := t.textToID[s]; ok {
			t.eog[id] = true
			markControl(id)
		}
	}
	for _, id := range []int32{t.eos, t.eot, t.eom} {
		if id >= 0 {
			t.eog[id] = true
		}
	}
}

// findByteTokens finds the token of each byte for byte fallback: <0xNN>
// in SPM vocabularies (or the byte itself), the GPT-2 character of the
// byte in BPE ones. Missing bytes are -1.
func (t *Tokenizer) findByteTokens() [256]int32 {
	var bt [256]int32
	for b := 0; b < 256; b++ {
		bt[b] = -1
		if t.model == ModelSPM {
			if id, ok := t.textToID[fmt.Sprintf("<0x%02X>", b)]; ok {
				bt[b] = id
			} else if id, ok := t.textToID[string([]byte{byte(b)})]; ok {
				bt[b] = id
			}
			continue
		}
		if id, ok := t.textToID[byteToUnicode[b]]; ok {
			bt[b] = id
		}
	}
	return bt
}

// specialSet is a set of special tokens to find in text.
type specialSet struct {
	byText map[string]int32
	lens   []int // distinct text lengths, longest first
	first  [256]bool
}

func newSpecialSet(t *Tokenizer, attrs uint8) specialSet {
	s := specialSet{byText: map[string]int32{}}
	seen := map[int]bool{}
	for id, a := range t.attrs {
		if a&attrs == 0 {
			continue
		}
		text := t.tokens[id]
		s.byText[text] = int32(id)
		s.first[text[0]] = true
		if !seen[len(text)] {
			seen[len(text)] = true
			s.lens = append(s.lens, len(text))
		}
	}
	sort.Sort(sort.Reverse(sort.IntSlice(s.lens)))
	return s
}

// occurring returns the ids of the set's tokens that occur in text,
// longest text first (ties by id), the order llama.cpp partitions in.
func (s *specialSet) occurring(text string, t *Tokenizer) []int32 {
	if len(s.byText) == 0 {
		return nil
	}
	var found map[int32]bool
	for i := 0; i < len(text); i++ {
		if !s.first[text[i]] {
			continue
		}
		for _, l := range s.lens {
			if i+l > len(text) {
				continue
			}
			if id, ok := s.byText[text[i:i+l]]; ok {
				if found == nil {
					found = map[int32]bool{}
				}
				found[id] = true
			}
		}
	}
	if len(found) == 0 {
		return nil
	}
	ids := make([]int32, 0, len(found))
	for id := range found {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(a, b int) bool {
		la, lb := len(t.tokens[ids[a]]), len(t.tokens[ids[b]])
		if la != lb {
			return la > lb
		}
		return ids[a] < ids[b]
	})
	return ids
}

// fragment is a piece of the input: text[start:end], or a special token
// when id >= 0.
type fragment struct {
	start, end int
	id         int32
}

// partition splits text at the special tokens it contains, as llama.cpp's
// tokenizer_st_partition does: for each special token in turn, longest
// first, every text fragment is cut at each of its occurrences.
func (t *Tokenizer) partition(text string, parseSpecial bool) []fragment {
	if text == "" {
		return nil
	}
	frags := []fragment{{0, len(text), -1}}
	set := &t.specialUser
	if parseSpecial {
		set = &t.specialAll
	}
	ids := set.occurring(text, t)
	for _, id := range ids {
		tok := t.tokens[id]
		next := make([]fragment, 0, len(frags)+2)
		for _, f := range frags {
			if f.id >= 0 {
				next = append(next, f)
				continue
			}
			start := f.start
			for {
				i := strings.Index(text[start:f.end], tok)
				if i < 0 {
					break
				}
				if i > 0 {
					next = append(next, fragment{start, start + i, -1})
				}
				next = append(next, fragment{start + i, start + i + len(tok), id})
				start += i + len(tok)
			}
			if start < f.end {
				next = append(next, fragment{start, f.end, -1})
			}
		}
		frags = next
	}
	return frags
}

// encodeState is the scratch space of one Encode call.
type encodeState struct {
	bpe bpeWork
	spm spmWork
}

// Encode returns the token ids of text.
//
// With addSpecial, BOS and EOS are added where the vocabulary asks for them
// (tokenizer.ggml.add_bos_token, add_eos_token), like llama_tokenize's
// add_special. With parseSpecial, special and control tokens written in
// the text (such as <|eot_id|> or </s>) become their ids; without it they
// are tokenized as ordinary text. User-defined tokens are always
// recognised, as in llama.cpp.
//
// Any byte string is accepted. Invalid UTF-8 is handled as llama.cpp
// handles it: BPE vocabularies see U+FFFD for each byte that does not
// start a valid sequence, SPM vocabularies fall back to byte tokens.
func (t *Tokenizer) Encode(text string, addSpecial, parseSpecial bool) ([]int32, error) {
	return t.AppendEncode(make([]int32, 0, len(text)/3+4), text, addSpecial, parseSpecial)
}

// AppendEncode is Encode that appends the ids to dst.
func (t *Tokenizer) AppendEncode(dst []int32, text string, addSpecial, parseSpecial bool) ([]int32, error) {
	if addSpecial && t.addBOS {
		dst = append(dst, t.bos)
	}
	st, _ := t.work.Get().(*encodeState)
	if st == nil {
		st = &encodeState{}
	}
	defer t.work.Put(st)

	frags := t.partition(text, parseSpecial)
	var err error
	switch {
	case t.bpe != nil:
		for _, f := range frags {
			if f.id >= 0 {
				dst = append(dst, f.id)
				continue
			}
			dst = t.bpe.encode(&st.bpe, dst, text[f.start:f.end])
		}
	case t.spm != nil:
		prevSpecial := true // the text starts as if after a special token
		for _, f := range frags {
			if f.id >= 0 {
				dst = append(dst, f.id)
				prevSpecial = true
				continue
			}
			dst, err = t.spm.encode(&st.spm, dst, text[f.start:f.end], t.addSpace && prevSpecial)
			if err != nil {
				return nil, err
			}
			prevSpecial = false
		}
	}
	if addSpecial && t.addEOS {
		dst = append(dst, t.eos)
	}
	return dst, nil
}

// VocabSize returns the number of tokens in the vocabulary.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// Model returns the tokenizer model: "gpt2" (byte-level BPE) or "llama" (SPM).
func (t *Tokenizer) Model() string { return t.model }

// BOS returns the beginning-of-sequence token id, or -1 if there is none.
func (t *Tokenizer) BOS() int32 { return t.bos }

// EOS returns the end-of-sequence token id, or -1 if there is none.
func (t *Tokenizer) EOS() int32 { return t.eos }

// EOT returns the end-of-turn token id (<|eot_id|> for Llama 3), or -1 if
// there is none.
func (t *Tokenizer) EOT() int32 { return t.eot }

// AddBOS reports whether the vocabulary asks for BOS at the start of a
// prompt.
func (t *Tokenizer) AddBOS() bool { return t.addBOS }

// AddEOS reports whether the vocabulary asks for EOS at the end of a prompt.
func (t *Tokenizer) AddEOS() bool { return t.addEOS }

// IsEOG reports whether id ends generation: EOS, EOT, EOM (<|eom_id|>), and
// the other tokens llama.cpp treats as end of generation, such as
// <|end_of_text|> and <|eot_id|> in Llama 3.
func (t *Tokenizer) IsEOG(id int32) bool { return t.eog[id] }

// EOGTokens returns the end-of-generation token ids in increasing order.
func (t *Tokenizer) EOGTokens() []int32 {
	ids := make([]int32, 0, len(t.eog))
	for id := range t.eog {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(a, b int) bool { return ids[a] < ids[b] })
	return ids
}

// ChatTemplate returns the vocabulary's chat template text
// (tokenizer.chat_template), or "" if it has none.
func (t *Tokenizer) ChatTemplate() string { return t.chatTemplate }

// TokenText returns the text of a token as the vocabulary stores it (GPT-2
// byte characters for BPE, "▁" for spaces in SPM).
func (t *Tokenizer) TokenText(id int32) (string, error) {
	if err := t.check(id); err != nil {
		return "", err
	}
	return t.tokens[id], nil
}

// IsControl reports whether id is a control or unknown token, one that
// decoding without specials leaves out.
func (t *Tokenizer) IsControl(id int32) bool {
	return id >= 0 && int(id) < len(t.attrs) && t.attrs[id]&(attrControl|attrUnknown) != 0
}

func (t *Tokenizer) check(id int32) error {
	if id < 0 || int(id) >= len(t.tokens) {
		return fmt.Errorf("tokenizer: %w %d (vocabulary has %d tokens)", ErrInvalidToken, id, len(t.tokens))
	}
	return nil
}
