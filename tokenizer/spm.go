package tokenizer

import (
	"fmt"
	"strings"
)

// spaceEscape is SentencePiece's stand-in for a space: U+2581 "▁".
const spaceEscape = "\u2581"

// spmModel is SentencePiece-style BPE as llama.cpp's llm_tokenizer_spm does
// it: the text's characters are merged pairwise, best score first, as long
// as the merged string is a token; what never becomes a token falls back to
// byte tokens.
//
// llama.cpp merges the whole text as one sequence. Where no token holds a
// "▁" right after another character (true of Llama 2), no merge can
// cross the start of a "▁" that follows a non-"▁" character, so the text
// is merged word by word instead, with the same result, faster, and with
// a cache of words seen before.
type spmModel struct {
	t         *Tokenizer
	wordSplit bool
}

func newSPM(t *Tokenizer) *spmModel {
	m := &spmModel{t: t, wordSplit: true}
	for _, text := range t.tokens {
		for k := strings.Index(text, spaceEscape); k >= 0; {
			if k > 0 && (k < len(spaceEscape) || text[k-len(spaceEscape):k] != spaceEscape) {
				m.wordSplit = false
				return m
			}
			next := strings.Index(text[k+1:], spaceEscape)
			if next < 0 {
				break
			}
			k += 1 + next
		}
	}
	return m
}

// spmSymbol is a run text[start:start+n] of the escaped text, linked to its
// neighbours; n == 0 once merged into the left neighbour.
type spmSymbol struct {
	start, n   int
	prev, next int
}

// spmBigram is a candidate merge of symbols left and right into a token of
// the given score and byte length.
type spmBigram struct {
	left, right int
	score       float32
	size        int
}

// before orders candidates best first: higher score, then leftmost.
func (a *spmBigram) before(b *spmBigram) bool {
	return a.score > b.score || (a.score == b.score && a.left < b.left)
}

type spmWork struct {
	text  []byte
	syms  []spmSymbol
	heap  []spmBigram
	cache wordCache
}

// utf8Len is llama.cpp's unicode_len_utf8: a character's length judged from
// its first byte alone.
func utf8Len(b byte) int {
	return [16]int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4}[b>>4]
}

// encode appends the ids of one text fragment. With space, a space is put
// before it (the leading-space rule for text at the start or after a
// special token). Spaces become "▁".
func (m *spmModel) encode(w *spmWork, dst []int32, fragment string, space bool) ([]int32, error) {
	buf := w.text[:0]
	if space {
		buf = append(buf, spaceEscape...)
	}
	for i := 0; i < len(fragment); i++ {
		if fragment[i] == ' ' {
			buf = append(buf, spaceEscape...)
		} else {
			buf = append(buf, fragment[i])
		}
	}
	w.text = buf
	text := string(buf) // one copy, so map lookups below need none

	// Cut the text into llama.cpp's symbols (characters judged by their
	// first byte), and into words where that gives the same result.
	var err error
	wordStart, prevSpace := 0, false
	for off := 0; off < len(text); {
		n := min(utf8Len(text[off]), len(text)-off)
		isSpace := n == len(spaceEscape) && text[off:off+n] == spaceEscape
		if m.wordSplit && isSpace && !prevSpace && off > wordStart {
			if dst, err = m.encodeWord(w, dst, text[wordStart:off]); err != nil {
				return nil, err
			}
			wordStart = off
		}
		prevSpace = isSpace
		off += n
	}
	if wordStart < len(text) {
		if dst, err = m.encodeWord(w, dst, text[wordStart:]); err != nil {
			return nil, err
		}
	}
	return dst, nil
}

// encodeWord appends the ids of text, merged as one sequence.
func (m *spmModel) encodeWord(w *spmWork, dst []int32, text string) ([]int32, error) {
	if ids, ok := w.cache.get(text); ok {
		return append(dst, ids...), nil
	}
	t := m.t
	n0 := len(dst)
	syms := w.syms[:0]
	for off := 0; off < len(text); {
		n := min(utf8Len(text[off]), len(text)-off)
		syms = append(syms, spmSymbol{start: off, n: n, prev: len(syms) - 1, next: len(syms) + 1})
		off += n
	}
	syms[len(syms)-1].next = -1

	h := heap[spmBigram]{less: (*spmBigram).before, items: w.heap[:0]}
	tryAdd := func(left, right int) {
		if left < 0 || right < 0 {
			return
		}
		l, r := syms[left], syms[right]
		piece := text[l.start : l.start+l.n+r.n]
		id, ok := t.textToID[piece]
		if !ok {
			return
		}
		h.push(spmBigram{left: left, right: right, score: t.scores[id], size: len(piece)})
	}
	for i := 1; i < len(syms); i++ {
		tryAdd(i-1, i)
	}
	for h.len() > 0 {
		b := h.pop()
		l, r := &syms[b.left], &syms[b.right]
		if l.n == 0 || r.n == 0 || l.n+r.n != b.size {
			continue
		}
		l.n += r.n
		r.n = 0
		l.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = b.left
		}
		tryAdd(l.prev, b.left)
		tryAdd(b.left, l.next)
	}
	w.syms, w.heap = syms, h.items[:0]

	for i := 0; i >= 0; i = syms[i].next {
		s := syms[i]
		piece := text[s.start : s.start+s.n]
		if id, ok := t.textToID[piece]; ok {
			dst = append(dst, id)
			continue
		}
		for j := 0; j < len(piece); j++ {
			id := t.byteToken[piece[j]]
			if id < 0 {
				return nil, fmt.Errorf("tokenizer: no byte token for 0x%02X in the vocabulary, needed to encode %q", piece[j], piece)
			}
			dst = append(dst, id)
		}
	}
	w.cache.put(text, dst[n0:])
	return dst, nil
}
