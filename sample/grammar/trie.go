package grammar

import (
	"bytes"
	"slices"
)

// Trie holds the byte strings of a vocabulary's tokens (their pieces) for
// finding, in one walk, every token the grammar allows next
// (Matcher.AllowedTokens). It is immutable and safe for concurrent use.
type Trie struct {
	n     int        // tokens
	nodes []trieNode // preorder; node 0 is the root
	toks  []int32    // the tokens ending at node i: toks[nodes[i].tok:nodes[i+1].tok]
}

// trieNode is node i of the preorder: reached from its parent by byte
// edge, its subtree is the nodes [i, end).
type trieNode struct {
	end  int32
	tok  int32
	edge byte
}

// NewTrie builds the trie of pieces, where pieces[id] is the bytes of
// token id. Tokens with an empty piece are in no walk's result.
func NewTrie(pieces [][]byte) *Trie {
	ids := make([]int32, 0, len(pieces))
	for id, p := range pieces {
		if len(p) > 0 {
			ids = append(ids, int32(id))
		}
	}
	slices.SortFunc(ids, func(a, b int32) int {
		if c := bytes.Compare(pieces[a], pieces[b]); c != 0 {
			return c
		}
		return int(a - b)
	})
	// Sorted pieces give the trie in preorder: each piece shares its
	// longest common prefix with the one before.
	t := &Trie{n: len(pieces), nodes: []trieNode{{}}, toks: ids}
	path := []int32{0} // path[d]: the node at depth d on the current path
	count := []int32{0}
	var prev []byte
	for _, id := range ids {
		p := pieces[id]
		l := 0
		for l < len(prev) && l < len(p) && prev[l] == p[l] {
			l++
		}
		for len(path)-1 > l {
			t.nodes[path[len(path)-1]].end = int32(len(t.nodes))
			path = path[:len(path)-1]
		}
		for _, b := range p[l:] {
			path = append(path, int32(len(t.nodes)))
			t.nodes = append(t.nodes, trieNode{edge: b})
			count = append(count, 0)
		}
		count[path[len(path)-1]]++
		prev = p
	}
	for len(path) > 0 {
		t.nodes[path[len(path)-1]].end = int32(len(t.nodes))
		path = path[:len(path)-1]
	}
	// Token ranges: ids is in the order of the nodes its tokens end at.
	t.nodes = append(t.nodes, trieNode{}) // a sentinel for the last range
	sum := int32(0)
	for i := range count {
		t.nodes[i].tok = sum
		sum += count[i]
	}
	t.nodes[len(count)].tok = sum
	return t
}

// Size returns the number of tokens (the length of pieces).
func (t *Trie) Size() int { return t.n }

type walkFrame struct {
	child, end int32
	st         State
}

// AllowedTokens sets in allowed (a bit set, bit id%64 of word id/64, of
// at least (t.Size()+63)/64 words) every token whose whole piece the
// grammar accepts from state s. It walks the trie once, leaving out every
// subtree at the first byte the grammar refuses, and does not change the
// current state.
func (m *Matcher) AllowedTokens(t *Trie, s State, allowed []uint64) {
	_ = allowed[(t.n+63)/64-1]
	nodes, toks := t.nodes, t.toks
	stack := append(m.walk[:0], walkFrame{child: 1, end: nodes[0].end, st: s})
	for len(stack) > 0 {
		f := &stack[len(stack)-1]
		if f.child >= f.end {
			stack = stack[:len(stack)-1]
			continue
		}
		c := f.child
		nd := &nodes[c]
		f.child = nd.end
		// Step, inlined.
		var ns State
		if tab := m.next[f.st]; tab != nil && tab[nd.edge] != 0 {
			ns = tab[nd.edge] - 1
		} else {
			ns, _ = m.stepSlow(f.st, nd.edge)
		}
		if ns == Reject {
			continue
		}
		for _, id := range toks[nd.tok:nodes[c+1].tok] {
			allowed[id>>6] |= 1 << (id & 63)
		}
		if nd.end > c+1 {
			stack = append(stack, walkFrame{child: c + 1, end: nd.end, st: ns})
		}
	}
	m.walk = stack
}
