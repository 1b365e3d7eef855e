package grammar

import (
	"encoding/binary"
	"slices"
)

// Matching follows llama.cpp's grammar: the state is a set of stacks, each
// the elements still to match on one path through the rules, with a byte
// set on top; a byte advances every stack whose top holds it, and a path
// that cannot take the byte is dropped. The empty stack is a complete
// match. Unlike llama.cpp the stacks step over bytes, not code points
// (classes are byte sequences, see compile.go), so a token may end in the
// middle of a character and the next one finish it.
//
// Stacks are interned as linked nodes (top element, rest of the stack),
// sets of stacks as sorted lists of nodes, and every set remembers where
// each byte takes it. A match that revisits a state (the inside of a
// string, a number, the same depth of nesting) then costs one table look-up
// per byte.

// State is a state of a Matcher: the set of stacks after some input. 0 is
// no state (the input was refused). States belong to their Matcher and to
// its Generation: see Matcher.Generation.
type State int32

// Reject is the State of input the grammar refuses.
const Reject State = 0

// node is an interned stack: the element on top and the rest.
type node struct{ pos, rest int32 }

type stateInfo struct {
	stacks []int32     // sorted node ids; node 0 is the empty stack
	next   *[256]State // byte → state + 1 (0: not computed yet)
	final  bool        // holds the empty stack: the input so far is a match
}

// Limits that bound a Matcher's memory (to about 20 MiB; a JSON
// generation of thousands of tokens makes hundreds of states); past them
// it starts its tables afresh, keeping its current state, and its
// Generation changes.
const (
	maxNodes  = 1 << 18
	maxStates = 1 << 13
	// MaxStacks is the most stacks a state may hold: a grammar so
	// ambiguous that a state needs more refuses the byte that led there
	// (llama.cpp would keep them all and run out of memory).
	MaxStacks = 1 << 12
)

// Matcher matches input against a grammar incrementally, byte by byte.
// It is not safe for concurrent use.
type Matcher struct {
	g      *Grammar
	nodes  []node
	nodeID map[uint64]int32
	exp    [][]int32 // node → the stacks it expands to (nil: not yet)
	expSt  []uint8   // 0 not expanded, 1 in progress, 2 done
	states []stateInfo
	next   []*[256]State // state → (byte → state + 1; 0: not computed yet)
	index  map[string]State
	start  State
	cur    State
	gen    uint64

	buf  []int32
	key  []byte
	walk []walkFrame
}

// NewMatcher returns a matcher at the start of the grammar.
func (g *Grammar) NewMatcher() *Matcher {
	m := &Matcher{g: g}
	m.init()
	return m
}

func (m *Matcher) init() {
	m.nodes = append(m.nodes[:0], node{-1, -1})
	m.nodeID = map[uint64]int32{}
	m.exp = append(m.exp[:0], []int32{0})
	m.expSt = append(m.expSt[:0], 2)
	m.states = append(m.states[:0], stateInfo{}) // Reject
	clear(m.next)
	m.next = append(m.next[:0], nil)
	m.index = map[string]State{}
	var buf []int32
	for _, s := range m.g.rules[m.g.root].starts {
		buf = append(buf, m.expand(m.push(s, 0))...)
	}
	m.start = m.intern(buf)
	m.cur = m.start
}

// Match reports whether the whole of input is in the grammar's language.
func (g *Grammar) Match(input []byte) bool {
	m := g.NewMatcher()
	return m.Accept(input) && m.Complete()
}

// Reset goes back to the start of the grammar.
func (m *Matcher) Reset() { m.cur = m.start }

// State returns the current state.
func (m *Matcher) State() State { return m.cur }

// SetState makes s (a state of this generation, not Reject) the current
// state.
func (m *Matcher) SetState(s State) {
	if s > 0 && int(s) < len(m.states) {
		m.cur = s
	}
}

// Generation counts the times the matcher dropped its tables to bound its
// memory (which Accept may do after consuming its input). States from an
// earlier generation mean nothing in a later one.
func (m *Matcher) Generation() uint64 { return m.gen }

// Complete reports whether the input so far is a whole match (the grammar
// may end here; it may also go on).
func (m *Matcher) Complete() bool { return m.states[m.cur].final }

// Final reports whether state s is a whole match.
func (m *Matcher) Final(s State) bool { return m.states[s].final }

// CanAccept reports whether input could follow the input so far, without
// consuming it.
func (m *Matcher) CanAccept(input []byte) bool {
	s := m.cur
	for _, b := range input {
		var ok bool
		if s, ok = m.Step(s, b); !ok {
			return false
		}
	}
	return true
}

// Accept consumes input if the grammar allows it after the input so far
// and reports whether it did; when it does not, the state is unchanged.
func (m *Matcher) Accept(input []byte) bool {
	s := m.cur
	for _, b := range input {
		var ok bool
		if s, ok = m.Step(s, b); !ok {
			return false
		}
	}
	m.cur = s
	if len(m.nodes) > maxNodes || len(m.states) > maxStates {
		m.compact()
	}
	return true
}

// Step returns the state after byte b from state s, and false (with
// Reject) when the grammar refuses b there. It does not change the current
// state.
func (m *Matcher) Step(s State, b byte) (State, bool) {
	// The fast path, small enough to inline: a step taken before.
	if t := m.next[s]; t != nil && t[b] != 0 {
		return t[b] - 1, t[b] > 1
	}
	return m.stepSlow(s, b)
}

func (m *Matcher) stepSlow(s State, b byte) (State, bool) {
	if s == Reject {
		return Reject, false
	}
	n := m.step(s, b)
	if m.next[s] == nil {
		m.next[s] = new([256]State)
	}
	m.next[s][b] = n + 1
	return n, n != Reject
}

func (m *Matcher) step(s State, b byte) State {
	buf := m.buf[:0]
	g := m.g
	for _, n := range m.states[s].stacks {
		if n == 0 {
			continue
		}
		nd := m.nodes[n]
		e := g.elems[nd.pos]
		if !g.sets[e.arg].has(b) {
			continue
		}
		buf = append(buf, m.expand(m.push(nd.pos+1, nd.rest))...)
		if len(buf) > 4*MaxStacks {
			buf = sortUnique(buf)
		}
	}
	m.buf = buf
	return m.intern(buf)
}

// push returns the stack with element pos on top of stack rest, or rest
// itself when pos is the end of its alternative.
func (m *Matcher) push(pos, rest int32) int32 {
	if m.g.elems[pos].kind == elemEnd {
		return rest
	}
	k := uint64(uint32(pos))<<32 | uint64(uint32(rest))
	if id, ok := m.nodeID[k]; ok {
		return id
	}
	id := int32(len(m.nodes))
	m.nodes = append(m.nodes, node{pos, rest})
	m.exp = append(m.exp, nil)
	m.expSt = append(m.expSt, 0)
	m.nodeID[k] = id
	return id
}

// expand returns the stacks that stack n stands for with a byte set on
// top (or the empty stack): a rule reference on top is replaced by each of
// the rule's alternatives, recursively. Left recursion is refused when
// the grammar is parsed, so this ends; a cycle seen anyway is cut.
func (m *Matcher) expand(n int32) []int32 {
	switch m.expSt[n] {
	case 2:
		return m.exp[n]
	case 1:
		return nil
	}
	nd := m.nodes[n]
	e := m.g.elems[nd.pos]
	if e.kind == elemByte {
		m.exp[n], m.expSt[n] = []int32{n}, 2
		return m.exp[n]
	}
	m.expSt[n] = 1
	rest := m.push(nd.pos+1, nd.rest)
	var out []int32
	for _, s := range m.g.rules[e.arg].starts {
		out = append(out, m.expand(m.push(s, rest))...)
	}
	out = sortUnique(out)
	m.exp[n], m.expSt[n] = out, 2
	return out
}

func sortUnique(s []int32) []int32 {
	slices.Sort(s)
	return slices.Compact(s)
}

// intern returns the state of a list of stacks (which it may reorder).
func (m *Matcher) intern(stacks []int32) State {
	stacks = sortUnique(stacks)
	if len(stacks) == 0 || len(stacks) > MaxStacks {
		return Reject
	}
	key := m.key[:0]
	for _, n := range stacks {
		key = binary.LittleEndian.AppendUint32(key, uint32(n))
	}
	m.key = key
	if s, ok := m.index[string(key)]; ok {
		return s
	}
	s := State(len(m.states))
	m.states = append(m.states, stateInfo{stacks: slices.Clone(stacks), final: stacks[0] == 0})
	m.next = append(m.next, nil)
	m.index[string(key)] = s
	return s
}

// compact drops every table and rebuilds the current state alone.
func (m *Matcher) compact() {
	// Write the current stacks out as element lists, bottom first.
	var lists [][]int32
	for _, n := range m.states[m.cur].stacks {
		var l []int32
		for ; n != 0; n = m.nodes[n].rest {
			l = append(l, m.nodes[n].pos)
		}
		slices.Reverse(l)
		lists = append(lists, l)
	}
	m.init()
	var stacks []int32
	for _, l := range lists {
		n := int32(0)
		for _, pos := range l {
			n = m.push(pos, n)
		}
		stacks = append(stacks, n)
	}
	m.cur = m.intern(stacks)
	m.gen++
}
