package grammar

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// A compiled grammar works on bytes. Every rule is a list of alternatives;
// every alternative a sequence of elements, each a set of bytes (one byte
// of the input) or a reference to a rule. Character classes become
// alternatives of UTF-8 byte sequences, so a multi-byte character is
// matched byte by byte and only valid UTF-8 is ever accepted.

// elem kinds.
const (
	elemEnd  = iota // the end of an alternative
	elemByte        // arg: index of a byte set
	elemRef         // arg: index of a rule
)

type elem struct {
	kind uint8
	arg  int32
}

// byteSet is a set of bytes, bit b of word b/64.
type byteSet [4]uint64

func (s *byteSet) has(b byte) bool { return s[b>>6]>>(b&63)&1 != 0 }
func (s *byteSet) add(lo, hi byte) {
	for b := int(lo); b <= int(hi); b++ {
		s[b>>6] |= 1 << (b & 63)
	}
}

type rule struct {
	name   string  // as written, or owner-N for a rule made for one
	owner  string  // the rule as written that this one belongs to
	starts []int32 // the first element of each alternative in elems
	at     int     // byte offset of the definition it belongs to
}

// Grammar is a compiled grammar, ready to match bytes. It is immutable
// and safe for concurrent use; each match (a Matcher) has its own state.
type Grammar struct {
	elems []elem
	sets  []byteSet
	rules []rule
	root  int32
	src   string
}

// maxElems bounds the size of a compiled grammar (repetitions with large
// counts multiply it).
const maxElems = 1 << 21

// Parse compiles a grammar in llama.cpp's GBNF. Matching starts at the
// rule named root.
//
// The subset understood: rules `name ::= alternatives`, one per line
// (a rule goes on over more lines inside parentheses, after "::=" or "|",
// and on lines that begin with "|"); names of letters, digits, "-" and
// "_"; alternatives "|"; sequences; grouping "( )"; repetition "*", "+",
// "?", "{m}", "{m,}", "{m,n}"; string literals "..."; character classes
// [a-z0-9], negated [^"\\], and "." for any character; escapes \n \r \t
// \\ \" \[ \] \- and \xHH, \uHHHH, \UHHHHHHHH for a code point (in
// literals and classes); comments from "#" to the end of a line. Text is
// UTF-8 and matched as UTF-8: a class holds characters, not bytes.
//
// Errors are *SyntaxError with the line and column, for syntax and for
// undefined, duplicate or left-recursive rules (which llama.cpp refuses
// too: matching could not end).
func Parse(src string) (*Grammar, error) {
	defs, err := parse(src)
	if err != nil {
		return nil, err
	}
	p := &parser{src: src}
	if len(defs) == 0 {
		return nil, p.errAt(0, "the grammar has no rules (it needs a rule named root)")
	}
	c := &compiler{g: &Grammar{src: src}, p: p, index: map[string]int32{}, classes: map[string]int32{}}
	for _, d := range defs {
		if prev, ok := c.index[d.name]; ok {
			return nil, p.errAt(d.at, "rule %q is already defined at %s", d.name, p.lineCol(c.g.rules[prev].at))
		}
		c.index[d.name] = int32(len(c.g.rules))
		c.g.rules = append(c.g.rules, rule{name: d.name, owner: d.name, at: d.at})
	}
	root, ok := c.index["root"]
	if !ok {
		return nil, p.errAt(0, "the grammar has no rule named root (where matching starts)")
	}
	c.g.root = root
	for i, d := range defs {
		c.origin = d
		seqs := make([][]elem, 0, len(d.body))
		for _, s := range d.body {
			var out []elem
			if out, err = c.seq(out, s); err != nil {
				return nil, err
			}
			seqs = append(seqs, out)
		}
		c.define(int32(i), seqs)
		if c.err != nil {
			return nil, c.err
		}
	}
	if err := c.checkLeftRecursion(); err != nil {
		return nil, err
	}
	return c.g, nil
}

// MustParse is Parse for grammars known to be right; it panics on error.
func MustParse(src string) *Grammar {
	g, err := Parse(src)
	if err != nil {
		panic(err)
	}
	return g
}

type compiler struct {
	g       *Grammar
	p       *parser
	index   map[string]int32 // rule name → rule
	classes map[string]int32 // class key → generated rule (or ^set index for one byte)
	setIdx  map[byteSet]int32
	origin  ruleDef
	err     error
}

// define stores the alternatives of rule r.
func (c *compiler) define(r int32, seqs [][]elem) {
	starts := make([]int32, len(seqs))
	for i, s := range seqs {
		starts[i] = int32(len(c.g.elems))
		c.g.elems = append(c.g.elems, s...)
		c.g.elems = append(c.g.elems, elem{kind: elemEnd})
	}
	if len(c.g.elems) > maxElems && c.err == nil {
		c.err = c.p.errAt(c.origin.at, "the grammar is too large (more than %d elements once repetitions are expanded)", maxElems)
	}
	c.g.rules[r].starts = starts
}

// newRule adds a generated rule for the rule being compiled.
func (c *compiler) newRule(seqs [][]elem) int32 {
	r := int32(len(c.g.rules))
	c.g.rules = append(c.g.rules, rule{name: fmt.Sprintf("%s-%d", c.origin.name, r), owner: c.origin.name, at: c.origin.at})
	c.define(r, seqs)
	return r
}

func (c *compiler) set(s byteSet) int32 {
	if c.setIdx == nil {
		c.setIdx = map[byteSet]int32{}
	}
	if i, ok := c.setIdx[s]; ok {
		return i
	}
	i := int32(len(c.g.sets))
	c.g.sets = append(c.g.sets, s)
	c.setIdx[s] = i
	return i
}

func (c *compiler) seq(out []elem, s []expr) ([]elem, error) {
	for _, x := range s {
		var err error
		if out, err = c.expr(out, x); err != nil {
			return nil, err
		}
		if c.err != nil {
			return nil, c.err
		}
	}
	return out, nil
}

// expr appends the elements of x to out.
func (c *compiler) expr(out []elem, x expr) ([]elem, error) {
	switch x := x.(type) {
	case literal:
		for _, b := range x {
			var s byteSet
			s.add(b, b)
			out = append(out, elem{kind: elemByte, arg: c.set(s)})
		}
		return out, nil
	case class:
		return append(out, c.class(x)), nil
	case ref:
		r, ok := c.index[x.name]
		if !ok {
			return nil, c.p.errAt(x.at, "rule %q is not defined", x.name)
		}
		return append(out, elem{kind: elemRef, arg: r}), nil
	case group:
		if len(x.alts) == 1 {
			return c.seq(out, x.alts[0])
		}
		seqs := make([][]elem, 0, len(x.alts))
		for _, s := range x.alts {
			e, err := c.seq(nil, s)
			if err != nil {
				return nil, err
			}
			seqs = append(seqs, e)
		}
		return append(out, elem{kind: elemRef, arg: c.newRule(seqs)}), nil
	case repeat:
		return c.repeat(out, x)
	}
	panic(fmt.Sprintf("grammar: unknown expression %T", x))
}

// unit lowers x to one element: itself when it is one, else a rule.
func (c *compiler) unit(x expr) (elem, error) {
	e, err := c.expr(nil, x)
	if err != nil {
		return elem{}, err
	}
	if len(e) == 1 {
		return e[0], nil
	}
	return elem{kind: elemRef, arg: c.newRule([][]elem{e})}, nil
}

// repeat lowers x{min,max} as llama.cpp does: x repeated min times, then
// a right-recursive rule (x*) or nested optional rules (up to max).
func (c *compiler) repeat(out []elem, x repeat) ([]elem, error) {
	u, err := c.unit(x.x)
	if err != nil {
		return nil, err
	}
	if n := len(c.g.elems) + len(out) + x.min + max(x.max, 0)*3; n > maxElems {
		return nil, c.p.errAt(c.origin.at, "the grammar is too large (more than %d elements once repetitions are expanded)", maxElems)
	}
	for range x.min {
		out = append(out, u)
	}
	if x.max < 0 {
		// star ::= u star |
		r := int32(len(c.g.rules))
		c.g.rules = append(c.g.rules, rule{name: fmt.Sprintf("%s-%d", c.origin.name, r), owner: c.origin.name, at: c.origin.at})
		c.define(r, [][]elem{{u, {kind: elemRef, arg: r}}, {}})
		return append(out, elem{kind: elemRef, arg: r}), nil
	}
	if x.max == x.min {
		return out, nil
	}
	// opt1 ::= u |, opt(k) ::= u opt(k-1) |
	r := c.newRule([][]elem{{u}, {}})
	for range x.max - x.min - 1 {
		r = c.newRule([][]elem{{u, {kind: elemRef, arg: r}}, {}})
	}
	return append(out, elem{kind: elemRef, arg: r}), nil
}

// class lowers a character class to one element: a byte set when every
// character in it is one byte (ASCII), else a rule whose alternatives are
// the UTF-8 byte sequences of its characters.
func (c *compiler) class(cl class) elem {
	rs := normalize(cl)
	var key strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&key, "%x-%x,", r.lo, r.hi)
	}
	k := key.String()
	if i, ok := c.classes[k]; ok {
		if i < 0 {
			return elem{kind: elemByte, arg: ^i}
		}
		return elem{kind: elemRef, arg: i}
	}
	seqs := utf8Sequences(rs)
	if len(seqs) == 1 && len(seqs[0]) == 1 {
		si := c.set(seqs[0][0])
		c.classes[k] = ^si
		return elem{kind: elemByte, arg: si}
	}
	alts := make([][]elem, len(seqs))
	for i, s := range seqs {
		for _, b := range s {
			alts[i] = append(alts[i], elem{kind: elemByte, arg: c.set(b)})
		}
	}
	r := c.newRule(alts)
	c.classes[k] = r
	return elem{kind: elemRef, arg: r}
}

// normalize returns the code points of a class as sorted, disjoint,
// non-adjacent ranges, surrogates (which UTF-8 cannot hold) left out.
func normalize(cl class) []runeRange {
	rs := slices.Clone(cl.ranges)
	slices.SortFunc(rs, func(a, b runeRange) int { return int(a.lo - b.lo) })
	var merged []runeRange
	for _, r := range rs {
		if n := len(merged); n > 0 && r.lo <= merged[n-1].hi+1 {
			merged[n-1].hi = max(merged[n-1].hi, r.hi)
			continue
		}
		merged = append(merged, r)
	}
	if cl.negate {
		var neg []runeRange
		next := rune(0)
		for _, r := range merged {
			if r.lo > next {
				neg = append(neg, runeRange{next, r.lo - 1})
			}
			next = r.hi + 1
		}
		if next <= utf8.MaxRune {
			neg = append(neg, runeRange{next, utf8.MaxRune})
		}
		merged = neg
	}
	// Cut out the surrogates.
	var out []runeRange
	for _, r := range merged {
		if r.lo <= 0xDFFF && r.hi >= 0xD800 {
			if r.lo < 0xD800 {
				out = append(out, runeRange{r.lo, 0xD7FF})
			}
			if r.hi > 0xDFFF {
				out = append(out, runeRange{0xE000, r.hi})
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

// utf8Sequences splits code point ranges (no surrogates) into sequences
// of byte ranges, each sequence a product (every byte range at each
// position combines with every other), as in RE2 and Rust's utf8-ranges.
// Sequences whose bytes after the first are the same are merged into one
// with the union of their first bytes; all one-byte sequences become one.
func utf8Sequences(rs []runeRange) [][]byteSet {
	type seq struct {
		n      int
		lo, hi [4]byte
	}
	var seqs []seq
	todo := slices.Clone(rs)
	slices.Reverse(todo)
	for len(todo) > 0 {
		r := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		// Split at the boundaries of the encoded lengths.
		split := false
		for _, b := range []rune{0x7F, 0x7FF, 0xFFFF} {
			if r.lo <= b && r.hi > b {
				todo = append(todo, runeRange{b + 1, r.hi}, runeRange{r.lo, b})
				split = true
				break
			}
		}
		if split {
			continue
		}
		n := utf8.RuneLen(r.lo)
		if n > 1 {
			for i := 1; i < n; i++ {
				m := rune(1)<<(6*i) - 1
				if r.lo&^m != r.hi&^m {
					if r.lo&m != 0 {
						todo = append(todo, runeRange{(r.lo | m) + 1, r.hi}, runeRange{r.lo, r.lo | m})
						split = true
						break
					}
					if r.hi&m != m {
						todo = append(todo, runeRange{r.hi &^ m, r.hi}, runeRange{r.lo, (r.hi &^ m) - 1})
						split = true
						break
					}
				}
			}
			if split {
				continue
			}
		}
		var s seq
		s.n = n
		utf8.EncodeRune(s.lo[:], r.lo)
		utf8.EncodeRune(s.hi[:], r.hi)
		seqs = append(seqs, s)
	}
	// Merge: group sequences by length and their bytes after the first.
	type key struct {
		n      int
		lo, hi [3]byte
	}
	var order []key
	first := map[key]*byteSet{}
	for _, s := range seqs {
		var k key
		k.n = s.n
		copy(k.lo[:], s.lo[1:s.n])
		copy(k.hi[:], s.hi[1:s.n])
		set, ok := first[k]
		if !ok {
			set = new(byteSet)
			first[k] = set
			order = append(order, k)
		}
		set.add(s.lo[0], s.hi[0])
	}
	out := make([][]byteSet, 0, len(order))
	for _, k := range order {
		bs := []byteSet{*first[k]}
		for i := 0; i < k.n-1; i++ {
			var b byteSet
			b.add(k.lo[i], k.hi[i])
			bs = append(bs, b)
		}
		out = append(out, bs)
	}
	if len(out) == 0 {
		// An empty class matches nothing: a set with no byte.
		out = append(out, []byteSet{{}})
	}
	return out
}

// checkLeftRecursion refuses rules that can reach themselves before
// consuming a byte: matching them would never end.
func (c *compiler) checkLeftRecursion() error {
	g := c.g
	n := len(g.rules)
	nullable := make([]bool, n)
	for changed := true; changed; {
		changed = false
		for r := range g.rules {
			if nullable[r] {
				continue
			}
			for _, s := range g.rules[r].starts {
				ok := true
				for i := s; g.elems[i].kind != elemEnd; i++ {
					if e := g.elems[i]; e.kind == elemByte || !nullable[e.arg] {
						ok = false
						break
					}
				}
				if ok {
					nullable[r], changed = true, true
					break
				}
			}
		}
	}
	// Edges r → s where s can come first in r.
	edges := make([][]int32, n)
	for r := range g.rules {
		for _, s := range g.rules[r].starts {
			for i := s; g.elems[i].kind == elemRef; i++ {
				edges[r] = append(edges[r], g.elems[i].arg)
				if !nullable[g.elems[i].arg] {
					break
				}
			}
		}
	}
	state := make([]uint8, n) // 0 new, 1 on the path, 2 done
	var path []int32
	var visit func(r int32) []int32
	visit = func(r int32) []int32 {
		state[r] = 1
		path = append(path, r)
		for _, s := range edges[r] {
			switch state[s] {
			case 1:
				i := slices.Index(path, s)
				return slices.Clone(path[i:])
			case 0:
				if cyc := visit(s); cyc != nil {
					return cyc
				}
			}
		}
		path = path[:len(path)-1]
		state[r] = 2
		return nil
	}
	for r := range n {
		if state[r] != 0 {
			continue
		}
		if cyc := visit(int32(r)); cyc != nil {
			// Name the rules as written (generated ones by their owner).
			var names []string
			for _, x := range cyc {
				name := g.rules[x].owner
				if len(names) == 0 || names[len(names)-1] != name {
					names = append(names, name)
				}
			}
			head := g.rules[cyc[0]]
			return c.p.errAt(head.at, "rule %q is left-recursive (%s can come back to itself before matching any character)",
				names[0], strings.Join(append(names, names[0]), " → "))
		}
	}
	return nil
}
