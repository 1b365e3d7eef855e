package tokenizer

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// piece computes what token id stands for, as llama.cpp's token_to_piece
// does with special tokens rendered: the text of control, unknown and
// user-defined tokens as it is; normal tokens decoded from GPT-2 byte
// characters (BPE) or with "▁" turned back into spaces (SPM); byte tokens
// <0xNN> as their byte; nothing for unused and undefined tokens.
func (t *Tokenizer) piece(id int32) []byte {
	text := t.tokens[id]
	a := t.attrs[id]
	switch {
	case a&(attrControl|attrUnknown|attrUserDefined) != 0:
		return []byte(text)
	case a&attrNormal != 0:
		if t.model == ModelSPM {
			return []byte(strings.ReplaceAll(text, spaceEscape, " "))
		}
		return decodeByteLevel(text)
	case a&attrByte != 0:
		return []byte{byteTokenValue(text)}
	}
	return nil
}

// byteTokenValue reads the byte of a <0xNN> token the way llama.cpp does
// (strtol of the two characters after "<0x"; 0 if they are not hex).
func byteTokenValue(text string) byte {
	if len(text) < 5 {
		return 0
	}
	v, err := strconv.ParseUint(text[3:5], 16, 8)
	if err != nil {
		if v, err = strconv.ParseUint(text[3:4], 16, 8); err != nil {
			return 0
		}
	}
	return byte(v)
}

// decodeByteLevel maps a BPE token's GPT-2 characters back to bytes. A
// character that stands for no byte is written as llama.cpp's
// llama_decode_text writes it: [UNK_BYTE_0x<hex of the character><token>].
func decodeByteLevel(text string) []byte {
	out := make([]byte, 0, len(text))
	for i := 0; i < len(text); {
		r, n := decodeLax(text, i)
		if n == 0 {
			r, n = utf8.RuneError, 1
		}
		i += n
		if r < rune(len(unicodeToByte)) && unicodeToByte[r] >= 0 {
			out = append(out, byte(unicodeToByte[r]))
			continue
		}
		out = append(out, "[UNK_BYTE_0x"...)
		for _, c := range appendLax(nil, r) {
			out = append(out, fmt.Sprintf("%02x", c)...)
		}
		out = append(out, text...)
		out = append(out, ']')
	}
	return out
}

// Piece returns the bytes token id stands for. Control and other special
// tokens give their text (for example "<|eot_id|>"). A piece need not be
// valid UTF-8 on its own: byte tokens and many BPE tokens hold part of a
// character.
func (t *Tokenizer) Piece(id int32) ([]byte, error) {
	if err := t.check(id); err != nil {
		return nil, err
	}
	return append([]byte(nil), t.pieces[id]...), nil
}

// appendPiece appends the piece of id; without special, control and
// unknown tokens add nothing (llama.cpp's token_to_piece with special =
// false).
func (t *Tokenizer) appendPiece(dst []byte, id int32, special bool) ([]byte, error) {
	if err := t.check(id); err != nil {
		return dst, err
	}
	if !special && t.attrs[id]&(attrControl|attrUnknown) != 0 {
		return dst, nil
	}
	return append(dst, t.pieces[id]...), nil
}

// Decode returns the text of a sequence of token ids: the concatenation of
// their pieces, special tokens included as text, so that
// Decode(Encode(s)) == s. For vocabularies that put a space before the
// text (SPM's add_space_prefix), the first token's leading space is
// dropped, as llama.cpp's llama_detokenize does.
//
// The result is the bytes the tokens stand for, which need not be valid
// UTF-8 (a sequence may end in the middle of a character). Unlike
// llama_detokenize, Decode does not "clean up" spaces before punctuation.
// An id outside the vocabulary is an error wrapping ErrInvalidToken.
func (t *Tokenizer) Decode(ids []int32) (string, error) {
	n := 0
	for _, id := range ids {
		if id >= 0 && int(id) < len(t.pieces) {
			n += len(t.pieces[id])
		}
	}
	b, err := t.AppendDecode(make([]byte, 0, n), ids)
	return string(b), err
}

// AppendDecode is Decode that appends the bytes to dst.
func (t *Tokenizer) AppendDecode(dst []byte, ids []int32) ([]byte, error) {
	for i, id := range ids {
		n := len(dst)
		var err error
		dst, err = t.appendPiece(dst, id, true)
		if err != nil {
			return dst[:n], fmt.Errorf("tokenizer: decode: token %d of %d: %w", i, len(ids), err)
		}
		if i == 0 && t.addSpace && len(dst) > n && dst[n] == ' ' {
			dst = append(dst[:n], dst[n+1:]...)
		}
	}
	return dst, nil
}

// StreamDecoder turns tokens that arrive one at a time into text, holding
// back bytes until they complete a UTF-8 character, so that whatever it
// returns is valid UTF-8. Bytes that can never become valid UTF-8 come out
// as U+FFFD.
//
// By default control tokens (such as <|eot_id|>) produce no text, as in
// llama.cpp's generation output; set Special to have them written.
type StreamDecoder struct {
	// Special makes control and unknown tokens appear as their text.
	Special bool

	t       *Tokenizer
	pending []byte
}

// NewStreamDecoder returns a StreamDecoder for this tokenizer.
func (t *Tokenizer) NewStreamDecoder() *StreamDecoder {
	return &StreamDecoder{t: t}
}

// Add takes the next token and returns the text it completes, which may be
// empty while a character is still incomplete. An invalid id is an error
// and leaves the decoder as it was.
func (d *StreamDecoder) Add(id int32) (string, error) {
	p, err := d.t.appendPiece(d.pending, id, d.Special)
	if err != nil {
		return "", fmt.Errorf("tokenizer: stream decode: %w", err)
	}
	d.pending = p
	return d.take(false), nil
}

// Flush returns the bytes still held back, an incomplete character
// written as U+FFFD, and empties the decoder.
func (d *StreamDecoder) Flush() string { return d.take(true) }

// Reset drops any held-back bytes.
func (d *StreamDecoder) Reset() { d.pending = d.pending[:0] }

// take returns the complete characters at the front of pending and keeps
// an incomplete one at its end (unless all is set).
func (d *StreamDecoder) take(all bool) string {
	p := d.pending
	keep := 0
	if !all {
		keep = incompleteSuffix(p)
	}
	out := p[:len(p)-keep]
	var s string
	if utf8.Valid(out) {
		s = string(out)
	} else {
		s = validPerByte(out)
	}
	n := copy(d.pending, p[len(p)-keep:])
	d.pending = d.pending[:n]
	return s
}

// incompleteSuffix returns how many bytes at the end of p are the start of
// a UTF-8 character that more bytes could still complete.
func incompleteSuffix(p []byte) int {
	for k := 1; k <= utf8.UTFMax-1 && k <= len(p); k++ {
		b := p[len(p)-k]
		if b < utf8.RuneSelf {
			return 0
		}
		if !utf8.RuneStart(b) {
			continue // a continuation byte: look further back
		}
		tail := p[len(p)-k:]
		if utf8.FullRune(tail) {
			return 0 // complete (or invalid beyond repair)
		}
		if couldComplete(tail) {
			return k
		}
		return 0
	}
	return 0
}

// couldComplete reports whether tail, the start of a UTF-8 sequence that
// is not yet full, can still be completed into a valid character.
func couldComplete(tail []byte) bool {
	need := 2
	switch lead := tail[0]; {
	case lead >= 0xF0:
		need = 4
	case lead >= 0xE0:
		need = 3
	}
	// Only the second byte has a restricted range (which depends on the
	// lead byte); trying 0x80, 0x90 and 0xA0 meets every valid range.
	for _, c := range []byte{0x80, 0x90, 0xA0} {
		buf := append(make([]byte, 0, utf8.UTFMax), tail...)
		if len(buf) == 1 {
			buf = append(buf, c)
		}
		for len(buf) < need {
			buf = append(buf, 0x80)
		}
		if utf8.Valid(buf) {
			return true
		}
	}
	return false
}

// validPerByte returns b as a string with each byte that is not part of a
// valid UTF-8 character replaced by U+FFFD.
func validPerByte(b []byte) string {
	var sb strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 {
			sb.WriteString("\uFFFD")
		} else {
			sb.Write(b[:n])
		}
		b = b[n:]
	}
	return sb.String()
}
