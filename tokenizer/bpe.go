package tokenizer

import (
	"fmt"
	"math"
	"strings"
	"sync"
)

// GPT-2's byte-level encoding: every byte is written as one printable
// character, so that BPE tokens are printable strings. Printable Latin-1
// bytes stand for themselves; the other 68 bytes (controls, space, DEL,
// NBSP, soft hyphen) take the characters from U+0100 on, in byte order.
var (
	byteToUnicode [256]string
	// unicodeToByte maps the code points below 324 back to their byte;
	// -1 for code points that stand for no byte.
	unicodeToByte [324]int16
	// byteOrder lists the bytes in the order GPT-2 numbers its 256 base
	// tokens: the self-standing ones first, then the rest.
	byteOrder [256]byte
)

func init() {
	for i := range unicodeToByte {
		unicodeToByte[i] = -1
	}
	k := 0
	self := func(b int) bool {
		return (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff)
	}
	for b := 0; b < 256; b++ {
		if self(b) {
			byteToUnicode[b] = string(rune(b))
			unicodeToByte[b] = int16(b)
			byteOrder[k] = byte(b)
			k++
		}
	}
	n := 0
	for b := 0; b < 256; b++ {
		if !self(b) {
			r := rune(256 + n)
			byteToUnicode[b] = string(r)
			unicodeToByte[r] = int16(b)
			byteOrder[k] = byte(b)
			k++
			n++
		}
	}
}

const noMerge = math.MaxInt32

// bpeModel is byte-level BPE with ranked merges. Symbols are token ids;
// a string that merges produce but the vocabulary lacks gets a virtual id
// from nReal on, so that merging never needs strings.
type bpeModel struct {
	t            *Tokenizer
	ignoreMerges bool       // look whole words up before merging (Llama 3)
	byteSym      [256]int32 // symbol of each byte
	merges       map[uint64]uint64
	nReal        int32
	virtual      []string // byte-level text of virtual symbols
}

func newBPE(t *Tokenizer, merges []string, ignoreMerges bool) (*bpeModel, error) {
	m := &bpeModel{
		t:            t,
		ignoreMerges: ignoreMerges,
		merges:       make(map[uint64]uint64, len(merges)),
		nReal:        int32(len(t.tokens)),
	}
	virtualIDs := map[string]int32{}
	symID := func(text string) int32 {
		if id, ok := t.textToID[text]; ok {
			return id
		}
		if id, ok := virtualIDs[text]; ok {
			return id
		}
		id := m.nReal + int32(len(m.virtual))
		m.virtual = append(m.virtual, text)
		virtualIDs[text] = id
		return id
	}
	for b := 0; b < 256; b++ {
		m.byteSym[b] = symID(byteToUnicode[b])
	}
	// Find the ids of each rule's two sides and of what it makes, in
	// parallel: these are most of the work of loading a vocabulary.
	// Strings the vocabulary lacks (-1) get virtual ids afterwards, in rank
	// order.
	ids := make([][3]int32, len(merges))
	chunk := (len(merges) + 3) / 4
	var wg sync.WaitGroup
	for lo := 0; lo < len(merges); lo += chunk {
		hi := min(lo+chunk, len(merges))
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			find := func(s string) int32 {
				if id, ok := t.textToID[s]; ok {
					return id
				}
				return -1
			}
			for i := lo; i < hi; i++ {
				left, right, ok := splitMerge(merges[i])
				if !ok {
					ids[i] = [3]int32{-2, -2, -2} // llama.cpp keeps such rules, but they never apply
					continue
				}
				buf = append(append(buf[:0], left...), right...)
				ids[i] = [3]int32{find(left), find(right), find(string(buf))}
			}
		}()
	}
	wg.Wait()
	for rank, x := range ids {
		if x[0] == -2 {
			continue
		}
		if x[0] < 0 || x[1] < 0 || x[2] < 0 {
			left, right, _ := splitMerge(merges[rank])
			x = [3]int32{symID(left), symID(right), symID(left + right)}
		}
		key := uint64(uint32(x[0]))<<32 | uint64(uint32(x[1]))
		if _, dup := m.merges[key]; dup {
			continue // the first (best-ranked) rule wins, as in llama.cpp
		}
		m.merges[key] = uint64(rank)<<32 | uint64(uint32(x[2]))
	}
	if len(m.virtual) > math.MaxInt32-int(m.nReal) {
		return nil, fmt.Errorf("tokenizer: too many merge results outside the vocabulary")
	}
	return m, nil
}

// lookup returns the rank of merging symbols a and b and the symbol it
// makes, or noMerge.
func (m *bpeModel) lookup(a, b int32) (rank, merged int32) {
	v, ok := m.merges[uint64(uint32(a))<<32|uint64(uint32(b))]
	if !ok {
		return noMerge, 0
	}
	return int32(v >> 32), int32(uint32(v))
}

// bpeWork is reusable scratch space for BPE, with a cache of the ids of
// words seen before.
type bpeWork struct {
	text             []byte
	syms, ranks, res []int32
	next, prev       []int32
	heap             []bigram
	cache            wordCache
}

// wordCache remembers the ids of words: the ids of word w are
// ids[span>>32 : span>>32 + span&0xffffffff] for span = m[w]. It forgets
// everything when it grows past its limits.
type wordCache struct {
	m   map[string]uint64
	ids []int32
}

const (
	cacheMaxWords = 1 << 15
	cacheMaxWord  = 64 // longer words are not cached
)

func (c *wordCache) get(word string) ([]int32, bool) {
	span, ok := c.m[word]
	if !ok {
		return nil, false
	}
	off := span >> 32
	return c.ids[off : off+span&0xffffffff], true
}

func (c *wordCache) put(word string, ids []int32) {
	if len(word) > cacheMaxWord {
		return
	}
	if c.m == nil || len(c.m) >= cacheMaxWords || len(c.ids) > 1<<22 {
		if c.m == nil {
			c.m = make(map[string]uint64, 1024)
		}
		clear(c.m)
		c.ids = c.ids[:0]
	}
	c.m[strings.Clone(word)] = uint64(len(c.ids))<<32 | uint64(len(ids))
	c.ids = append(c.ids, ids...)
}

// encode appends the ids of text (one fragment between special tokens).
func (m *bpeModel) encode(w *bpeWork, dst []int32, text string) []int32 {
	bmpOnce.Do(buildBMP)
	text = normalizeUTF8(text)
	for pos := 0; pos < len(text); {
		end := nextLlama3Word(text, pos)
		dst = m.encodeWord(w, dst, text[pos:end])
		pos = end
	}
	return dst
}

// shortWord is the length up to which words are merged by scanning for the
// best pair; longer ones use a heap.
const shortWord = 48

// encodeWord appends the ids of one pre-tokenized word. Words seen before
// come from the cache, which is much smaller than the vocabulary and so
// faster to search.
func (m *bpeModel) encodeWord(w *bpeWork, dst []int32, word string) []int32 {
	if len(word) == 1 {
		return m.emit(dst, m.byteSym[word[0]])
	}
	if ids, ok := w.cache.get(word); ok {
		return append(dst, ids...)
	}
	n := len(dst)
	if id, ok := m.wholeWord(w, word); ok {
		dst = append(dst, id)
	} else {
		var syms []int32
		if len(word) <= shortWord {
			syms = m.mergeShort(w, word)
		} else {
			syms = m.mergeLong(w, word)
		}
		for _, s := range syms {
			dst = m.emit(dst, s)
		}
	}
	w.cache.put(word, dst[n:])
	return dst
}

// wholeWord looks the word up as a single token, where the pre-tokenizer
// asks for that (llama.cpp's ignore_merges).
func (m *bpeModel) wholeWord(w *bpeWork, word string) (int32, bool) {
	if !m.ignoreMerges {
		return 0, false
	}
	b := w.text[:0]
	for i := 0; i < len(word); i++ {
		b = append(b, byteToUnicode[word[i]]...)
	}
	w.text = b
	id, ok := m.t.textToID[string(b)]
	return id, ok
}

// mergeShort merges the word's symbols, each time joining the adjacent
// pair of best rank (the leftmost of equals), until no pair merges.
func (m *bpeModel) mergeShort(w *bpeWork, word string) []int32 {
	syms := w.syms[:0]
	for i := 0; i < len(word); i++ {
		syms = append(syms, m.byteSym[word[i]])
	}
	ranks, res := w.ranks[:0], w.res[:0]
	for i := 0; i+1 < len(syms); i++ {
		r, x := m.lookup(syms[i], syms[i+1])
		ranks = append(ranks, r)
		res = append(res, x)
	}
	for {
		best, bestRank := -1, int32(noMerge)
		for i, r := range ranks {
			if r < bestRank {
				best, bestRank = i, r
			}
		}
		if best < 0 {
			break
		}
		syms[best] = res[best]
		syms = append(syms[:best+1], syms[best+2:]...)
		ranks = append(ranks[:best], ranks[best+1:]...)
		res = append(res[:best], res[best+1:]...)
		if best > 0 {
			ranks[best-1], res[best-1] = m.lookup(syms[best-1], syms[best])
		}
		if best < len(ranks) {
			ranks[best], res[best] = m.lookup(syms[best], syms[best+1])
		}
	}
	w.syms, w.ranks, w.res = syms, ranks, res
	return syms
}

// bigram is a candidate merge of symbols left and right (indices), valid
// while they still hold ids lid and rid and are adjacent.
type bigram struct {
	rank, left, right, lid, rid, res int32
}

func (a *bigram) before(b *bigram) bool {
	return a.rank < b.rank || (a.rank == b.rank && a.left < b.left)
}

// mergeLong does what mergeShort does in O(n log n), for long words: the
// candidate merges wait in a heap ordered by rank, then position, and
// stale ones are skipped, as in llama.cpp's llm_tokenizer_bpe_session.
func (m *bpeModel) mergeLong(w *bpeWork, word string) []int32 {
	n := len(word)
	ids := grow(w.syms, n)
	next := grow(w.next, n)
	prev := grow(w.prev, n)
	for i := 0; i < n; i++ {
		ids[i] = m.byteSym[word[i]]
		next[i] = int32(i + 1)
		prev[i] = int32(i - 1)
	}
	next[n-1] = -1
	h := heap[bigram]{less: (*bigram).before, items: w.heap[:0]}
	push := func(l, r int32) {
		rank, res := m.lookup(ids[l], ids[r])
		if rank == noMerge {
			return
		}
		h.push(bigram{rank, l, r, ids[l], ids[r], res})
	}
	for i := int32(0); i+1 < int32(n); i++ {
		push(i, i+1)
	}
	for h.len() > 0 {
		b := h.pop()
		if ids[b.left] != b.lid || next[b.left] != b.right || ids[b.right] != b.rid {
			continue
		}
		ids[b.left] = b.res
		ids[b.right] = -1
		nx := next[b.right]
		next[b.left] = nx
		if nx >= 0 {
			prev[nx] = b.left
		}
		if p := prev[b.left]; p >= 0 {
			push(p, b.left)
		}
		if nx >= 0 {
			push(b.left, nx)
		}
	}
	w.heap = h.items[:0]
	w.next, w.prev = next, prev
	out := w.res[:0]
	for i := int32(0); i >= 0; i = next[i] {
		out = append(out, ids[i])
	}
	w.syms, w.res = ids, out
	return out
}

// emit appends the ids of a symbol: itself if it is a token, else the
// tokens of its single bytes that exist, as llama.cpp falls back.
func (m *bpeModel) emit(dst []int32, sym int32) []int32 {
	if sym < m.nReal {
		return append(dst, sym)
	}
	text := m.virtual[sym-m.nReal]
	for i := 0; i < len(text); i++ {
		if id, ok := m.t.textToID[text[i:i+1]]; ok {
			dst = append(dst, id)
		}
	}
	return dst
}

func grow(s []int32, n int) []int32 {
	if cap(s) < n {
		return make([]int32, n, n+n/4)
	}
	return s[:n]
}
