package sample

import (
	"fmt"
	"math"
	"math/bits"
	"slices"

	"github.com/ocelot-llm/ocelot/sample/grammar"
)

// Vocab is a vocabulary arranged for grammar constraints: the bytes of
// every token (its piece) in a trie, and the end-of-generation tokens.
// Build it once per model; it is immutable and safe for concurrent use
// by the Grammars of many sequences.
type Vocab struct {
	n    int      // tokens
	eog  []uint64 // bit set of the end-of-generation tokens
	trie *grammar.Trie
	// The pieces, one after another: piece id is data[off[id]:off[id+1]].
	data []byte
	off  []int64
}

// NewVocab arranges pieces[id], the bytes each token id stands for, and
// eog, the end-of-generation tokens. A token with an empty (or nil) piece
// is never allowed by a grammar; give control tokens (such as chat
// markers) nil pieces so that a grammar cannot pick them for their text
// (VocabPieces does). An end-of-generation token is allowed where the
// grammar is complete, whatever its piece. It returns an error for an eog
// id outside pieces.
func NewVocab(pieces [][]byte, eog []int32) (*Vocab, error) {
	if len(pieces) > math.MaxInt32 {
		return nil, fmt.Errorf("sample: vocabulary of %d tokens is more than an int32 id can index", len(pieces))
	}
	v := &Vocab{n: len(pieces), eog: make([]uint64, (len(pieces)+63)/64)}
	for _, id := range eog {
		if id < 0 || int(id) >= len(pieces) {
			return nil, fmt.Errorf("sample: end-of-generation token %d is outside the vocabulary of %d tokens", id, len(pieces))
		}
		v.eog[id/64] |= 1 << (id % 64)
	}
	v.off = make([]int64, len(pieces)+1)
	for id, p := range pieces {
		v.off[id+1] = v.off[id] + int64(len(p))
	}
	v.data = make([]byte, 0, v.off[len(pieces)])
	for _, p := range pieces {
		v.data = append(v.data, p...)
	}
	inTrie := slices.Clone(pieces)
	for _, id := range eog {
		inTrie[id] = nil // allowed by the grammar's completeness, not by bytes
	}
	v.trie = grammar.NewTrie(inTrie)
	return v, nil
}

// Size returns the number of tokens.
func (v *Vocab) Size() int { return v.n }

func (v *Vocab) isEOG(id int32) bool {
	return id >= 0 && int(id) < v.n && v.eog[id/64]>>(id%64)&1 != 0
}

// PieceSource is what VocabPieces needs of a tokenizer; the engine's
// *tokenizer.Tokenizer has these methods.
type PieceSource interface {
	VocabSize() int
	Piece(id int32) ([]byte, error)
	IsControl(id int32) bool
}

// VocabPieces returns the piece of every token of t for NewVocab: its
// bytes, or nil for control tokens, which a grammar then never picks
// (their text, such as "<|eot_id|>", is not output; the end-of-generation
// ones among them are passed to NewVocab as eog).
func VocabPieces(t PieceSource) ([][]byte, error) {
	pieces := make([][]byte, t.VocabSize())
	for id := range pieces {
		if t.IsControl(int32(id)) {
			continue
		}
		p, err := t.Piece(int32(id))
		if err != nil {
			return nil, fmt.Errorf("sample: piece of token %d: %w", id, err)
		}
		pieces[id] = p
	}
	return pieces, nil
}

// maxMasks bounds the masks a Grammar keeps (16 KiB each for a 128k
// vocabulary).
const maxMasks = 256

// Grammar is a Processor that keeps output inside a grammar, as
// llama.cpp's grammar sampler: it sets aside every token whose bytes the
// grammar cannot take next, allows the end-of-generation tokens only where
// the grammar is complete, and advances over each generated token on
// Accept. Place it before truncation (top-k, top-p, min-p), so that they
// choose among allowed tokens; Params.Chain does.
//
// The tokens allowed in a grammar state are found by walking the
// vocabulary's byte trie with the matcher, pruning at the first refused
// byte, and kept per state, so a state met again (inside a string, a
// number, at the same depth) costs a copy.
//
// A Grammar is not safe for concurrent use; give each sequence its own
// (they may share one Vocab and one *grammar.Grammar).
type Grammar struct {
	v     *Vocab
	m     *grammar.Matcher
	masks map[grammar.State][]uint64
	gen   uint64
	ended bool // an end-of-generation token was accepted
	err   error
	spare [][]uint64
}

// NewGrammar returns a grammar constraint over a vocabulary: pieces[id] is
// the bytes of token id and eog the end-of-generation tokens (see
// NewVocab; for a tokenizer, VocabPieces and its EOGTokens). It builds the
// vocabulary's trie, which takes a moment for a large vocabulary; for
// many sequences build a Vocab once and use its NewGrammar.
func NewGrammar(g *grammar.Grammar, pieces [][]byte, eog []int32) (*Grammar, error) {
	v, err := NewVocab(pieces, eog)
	if err != nil {
		return nil, err
	}
	return v.NewGrammar(g), nil
}

// NewGrammar returns a grammar constraint over v, at the start of g.
func (v *Vocab) NewGrammar(g *grammar.Grammar) *Grammar {
	m := g.NewMatcher()
	return &Grammar{v: v, m: m, masks: map[grammar.State][]uint64{}, gen: m.Generation()}
}

// Reset goes back to the start of the grammar.
func (g *Grammar) Reset() {
	g.m.Reset()
	g.ended, g.err = false, nil
}

// Complete reports whether the output so far is a whole match of the
// grammar (an end-of-generation token is allowed now).
func (g *Grammar) Complete() bool { return g.ended || g.m.Complete() }

// Ended reports whether an end-of-generation token was accepted.
func (g *Grammar) Ended() bool { return g.ended }

// Err returns the first problem with an accepted token: one the grammar
// could not take (which happens only when something after this processor
// chose a token it had set aside). The grammar's state is unchanged by
// such a token.
func (g *Grammar) Err() error { return g.err }

// mask returns the tokens allowed now, the end-of-generation ones
// included when the grammar is complete.
func (g *Grammar) mask() []uint64 {
	if gen := g.m.Generation(); gen != g.gen {
		g.dropMasks()
		g.gen = gen
	}
	s := g.m.State()
	if mk, ok := g.masks[s]; ok {
		return mk
	}
	if len(g.masks) >= maxMasks {
		g.dropMasks()
	}
	var mk []uint64
	if n := len(g.spare); n > 0 {
		mk, g.spare = g.spare[n-1], g.spare[:n-1]
		clear(mk)
	} else {
		mk = make([]uint64, len(g.v.eog))
	}
	g.m.AllowedTokens(g.v.trie, s, mk)
	if g.m.Final(s) {
		for i, w := range g.v.eog {
			mk[i] |= w
		}
	}
	g.masks[s] = mk
	return mk
}

func (g *Grammar) dropMasks() {
	for s, mk := range g.masks {
		g.spare = append(g.spare, mk)
		delete(g.masks, s)
	}
}

// Apply drops the candidates the grammar does not allow next. After an
// end-of-generation token was accepted, only those stay allowed. Ids
// beyond the vocabulary are dropped.
func (g *Grammar) Apply(c *Candidates) {
	mk := g.v.eog
	if !g.ended {
		mk = g.mask()
	}
	items := c.items
	w := 0
	if c.dense {
		// Walk the set bits: O(vocabulary/64 + allowed).
		for wi, word := range mk {
			for word != 0 {
				id := wi*64 + bits.TrailingZeros64(word)
				word &= word - 1
				if id >= len(items) {
					break
				}
				items[w] = items[id]
				w++
			}
		}
	} else {
		for _, it := range items {
			if int(it.id) < g.v.n && mk[it.id/64]>>(it.id%64)&1 != 0 {
				items[w] = it
				w++
			}
		}
	}
	if w == len(items) {
		return
	}
	c.items = items[:w]
	c.dense = false
	if c.probs == probExact {
		c.probs = probRelative
	}
}

// Accept advances the grammar over a generated token; other tokens (the
// prompt's) do not concern it.
func (g *Grammar) Accept(id int32, generated bool) {
	if generated {
		if err := g.AcceptToken(id); err != nil && g.err == nil {
			g.err = err
		}
	}
}

// AcceptToken advances the grammar over token id, generated or not (for
// output that is forced, such as a prefix), or returns an error naming the
// token if the grammar cannot take it there, leaving the state unchanged.
func (g *Grammar) AcceptToken(id int32) error {
	switch {
	case id < 0 || int(id) >= g.v.n:
		return fmt.Errorf("sample: grammar: token %d is outside the vocabulary of %d tokens", id, g.v.n)
	case g.ended:
		return fmt.Errorf("sample: grammar: token %d after the end of generation", id)
	case g.v.isEOG(id):
		if !g.m.Complete() {
			return fmt.Errorf("sample: grammar: end-of-generation token %d where the grammar is not complete", id)
		}
		g.ended = true
		return nil
	}
	p := g.v.piece(id)
	if len(p) == 0 || !g.m.Accept(p) {
		return fmt.Errorf("sample: grammar: token %d (%q) does not continue the grammar here", id, p)
	}
	return nil
}

// piece returns the bytes of token id (nil for an empty piece).
func (v *Vocab) piece(id int32) []byte { return v.data[v.off[id]:v.off[id+1]:v.off[id+1]] }
