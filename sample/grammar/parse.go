package grammar

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// SyntaxError is an error in a grammar's text, at a line and column (both
// from 1; the column counts characters, not bytes).
type SyntaxError struct {
	Line, Column int
	Msg          string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("grammar: line %d, column %d: %s", e.Line, e.Column, e.Msg)
}

// The parsed form of a grammar, before it is lowered to byte-level rules.
type (
	expr interface{}
	// alts is a list of alternatives, each a sequence.
	alts [][]expr
	// literal is a string literal, as UTF-8 bytes.
	literal []byte
	// class is a character class: a set of code point ranges, or its
	// complement. "." is the complement of the empty set.
	class struct {
		ranges []runeRange
		negate bool
	}
	// ref names a rule.
	ref struct {
		name string
		at   int // byte offset, for errors
	}
	// group is a parenthesised list of alternatives.
	group struct{ alts alts }
	// repeat is x{min,max}; max < 0 is no upper bound.
	repeat struct {
		x        expr
		min, max int
	}
)

type runeRange struct{ lo, hi rune }

// ruleDef is one rule as written.
type ruleDef struct {
	name string
	at   int // byte offset of the name
	body alts
}

// MaxRepeat is the largest count a {m,n} repetition may give.
const MaxRepeat = 10000

type parser struct {
	src string
	pos int
}

// errAt returns a SyntaxError at byte offset off of the source.
func (p *parser) errAt(off int, format string, args ...any) error {
	line, col := 1, 1
	for i, r := range p.src {
		if i >= off {
			break
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return &SyntaxError{Line: line, Column: col, Msg: fmt.Sprintf(format, args...)}
}

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// describe names what is at offset off, for "unexpected ..." errors.
func (p *parser) describe(off int) string {
	if off >= len(p.src) {
		return "end of grammar"
	}
	r, _ := utf8.DecodeRuneInString(p.src[off:])
	switch r {
	case '\n':
		return "end of line"
	case utf8.RuneError:
		return "invalid UTF-8"
	}
	return strconv.QuoteRune(r)
}

// space skips blanks and comments; newlines too when newlines is set.
func (p *parser) space(newlines bool) {
	for p.pos < len(p.src) {
		switch c := p.src[p.pos]; {
		case c == ' ' || c == '\t' || c == '\r':
			p.pos++
		case c == '\n' && newlines:
			p.pos++
		case c == '#':
			for p.pos < len(p.src) && p.src[p.pos] != '\n' {
				p.pos++
			}
		default:
			return
		}
	}
}

// parse reads the whole grammar text into rule definitions.
func parse(src string) ([]ruleDef, error) {
	if !utf8.ValidString(src) {
		p := &parser{src: src}
		for i := 0; i < len(src); {
			r, n := utf8.DecodeRuneInString(src[i:])
			if r == utf8.RuneError && n == 1 {
				return nil, p.errAt(i, "invalid UTF-8 in the grammar text")
			}
			i += n
		}
	}
	p := &parser{src: src}
	var rules []ruleDef
	for {
		p.space(true)
		if p.pos >= len(src) {
			return rules, nil
		}
		r, err := p.rule()
		if err != nil {
			return nil, err
		}
		rules = append(rules, r)
	}
}

func (p *parser) name() (string, int, error) {
	start := p.pos
	for p.pos < len(p.src) && isNameByte(p.src[p.pos]) {
		p.pos++
	}
	if p.pos == start {
		return "", start, p.errAt(start, "expected a rule name, found %s", p.describe(start))
	}
	return p.src[start:p.pos], start, nil
}

// rule reads `name ::= alternatives` up to the end of its line (a rule
// goes on over more lines inside parentheses, after "::=" and "|", and on
// a line that begins with "|").
func (p *parser) rule() (ruleDef, error) {
	name, at, err := p.name()
	if err != nil {
		return ruleDef{}, err
	}
	p.space(false)
	if !strings.HasPrefix(p.src[p.pos:], "::=") {
		return ruleDef{}, p.errAt(p.pos, "expected \"::=\" after rule name %q, found %s", name, p.describe(p.pos))
	}
	p.pos += 3
	p.space(true)
	body, err := p.alternatives(false)
	if err != nil {
		return ruleDef{}, err
	}
	if p.pos < len(p.src) && p.src[p.pos] != '\n' {
		if strings.HasPrefix(p.src[p.pos:], "::=") {
			return ruleDef{}, p.errAt(p.pos, "unexpected \"::=\": a rule must begin on a new line")
		}
		return ruleDef{}, p.errAt(p.pos, "unexpected %s in rule %q", p.describe(p.pos), name)
	}
	return ruleDef{name: name, at: at, body: body}, nil
}

func (p *parser) alternatives(nested bool) (alts, error) {
	var out alts
	for {
		seq, err := p.sequence(nested)
		if err != nil {
			return nil, err
		}
		out = append(out, seq)
		if p.pos < len(p.src) && p.src[p.pos] == '|' {
			p.pos++
			p.space(true)
			continue
		}
		if !nested {
			// A line that begins with "|" goes on with the alternatives.
			save := p.pos
			p.space(true)
			if p.pos < len(p.src) && p.src[p.pos] == '|' {
				p.pos++
				p.space(true)
				continue
			}
			p.pos = save
		}
		return out, nil
	}
}

func (p *parser) sequence(nested bool) ([]expr, error) {
	var seq []expr
	for {
		p.space(nested)
		if p.pos >= len(p.src) {
			return seq, nil
		}
		start := p.pos
		var x expr
		switch c := p.src[p.pos]; {
		case c == '"':
			lit, err := p.literal()
			if err != nil {
				return nil, err
			}
			x = lit
		case c == '[':
			cl, err := p.class()
			if err != nil {
				return nil, err
			}
			x = cl
		case c == '.':
			p.pos++
			x = class{negate: true}
		case c == '(':
			p.pos++
			p.space(true)
			a, err := p.alternatives(true)
			if err != nil {
				return nil, err
			}
			p.space(true)
			if p.pos >= len(p.src) || p.src[p.pos] != ')' {
				return nil, p.errAt(p.pos, "expected \")\" to close the \"(\" at %s, found %s", p.lineCol(start), p.describe(p.pos))
			}
			p.pos++
			x = group{alts: a}
		case isNameByte(c):
			name, at, _ := p.name()
			// A name followed by "::=" begins the next rule: this one
			// should have ended with its line.
			save := p.pos
			p.space(false)
			if strings.HasPrefix(p.src[p.pos:], "::=") {
				return nil, p.errAt(at, "rule %q begins in the middle of a line (a rule must begin on a new line)", name)
			}
			p.pos = save
			x = ref{name: name, at: at}
		case c == '*' || c == '+' || c == '?' || c == '{':
			return nil, p.errAt(p.pos, "%q with nothing before it to repeat", c)
		default:
			return seq, nil
		}
		// Postfix operators.
		for p.pos < len(p.src) {
			c := p.src[p.pos]
			switch c {
			case '*':
				x = repeat{x: x, min: 0, max: -1}
			case '+':
				x = repeat{x: x, min: 1, max: -1}
			case '?':
				x = repeat{x: x, min: 0, max: 1}
			case '{':
				lo, hi, err := p.braces()
				if err != nil {
					return nil, err
				}
				x = repeat{x: x, min: lo, max: hi}
				continue
			default:
				goto done
			}
			p.pos++
		}
	done:
		seq = append(seq, x)
	}
}

func (p *parser) lineCol(off int) string {
	e := p.errAt(off, "").(*SyntaxError)
	return fmt.Sprintf("line %d, column %d", e.Line, e.Column)
}

// braces reads {m}, {m,} or {m,n}.
func (p *parser) braces() (int, int, error) {
	start := p.pos
	p.pos++ // {
	num := func() (int, bool, error) {
		p.space(false)
		s := p.pos
		for p.pos < len(p.src) && p.src[p.pos] >= '0' && p.src[p.pos] <= '9' {
			p.pos++
		}
		if p.pos == s {
			return 0, false, nil
		}
		v, err := strconv.Atoi(p.src[s:p.pos])
		if err != nil || v > MaxRepeat {
			return 0, false, p.errAt(s, "repetition count %s is more than %d", p.src[s:p.pos], MaxRepeat)
		}
		p.space(false)
		return v, true, nil
	}
	lo, ok, err := num()
	if err != nil {
		return 0, 0, err
	}
	if !ok {
		return 0, 0, p.errAt(p.pos, "expected a number after \"{\", found %s", p.describe(p.pos))
	}
	hi := lo
	if p.pos < len(p.src) && p.src[p.pos] == ',' {
		p.pos++
		var have bool
		hi, have, err = num()
		if err != nil {
			return 0, 0, err
		}
		if !have {
			hi = -1
		}
	}
	if p.pos >= len(p.src) || p.src[p.pos] != '}' {
		return 0, 0, p.errAt(p.pos, "expected \"}\" to close the repetition at %s, found %s", p.lineCol(start), p.describe(p.pos))
	}
	p.pos++
	if hi >= 0 && hi < lo {
		return 0, 0, p.errAt(start, "repetition {%d,%d} has its maximum below its minimum", lo, hi)
	}
	return lo, hi, nil
}

// char reads one character of a literal or class: a UTF-8 character or an
// escape. Escapes stand for code points: \xHH, \uHHHH and \UHHHHHHHH, and
// \n \r \t \\ \" \' \[ \] \- \/ \^ and \. for themselves.
func (p *parser) char() (rune, error) {
	start := p.pos
	r, n := utf8.DecodeRuneInString(p.src[p.pos:])
	p.pos += n
	if r != '\\' {
		return r, nil
	}
	if p.pos >= len(p.src) {
		return 0, p.errAt(start, "escape \"\\\" at the end of the grammar")
	}
	e := p.src[p.pos]
	p.pos++
	switch e {
	case 'n':
		return '\n', nil
	case 'r':
		return '\r', nil
	case 't':
		return '\t', nil
	case '\\', '"', '\'', '[', ']', '-', '/', '^', '.':
		return rune(e), nil
	case 'x', 'u', 'U':
		digits := map[byte]int{'x': 2, 'u': 4, 'U': 8}[e]
		if p.pos+digits > len(p.src) {
			return 0, p.errAt(start, "escape \\%c needs %d hex digits", e, digits)
		}
		v, err := strconv.ParseUint(p.src[p.pos:p.pos+digits], 16, 32)
		if err != nil {
			return 0, p.errAt(start, "escape \\%c needs %d hex digits, found %q", e, digits, p.src[p.pos:p.pos+digits])
		}
		p.pos += digits
		if v > utf8.MaxRune || v >= 0xD800 && v <= 0xDFFF {
			return 0, p.errAt(start, "escape %s is not a Unicode character (a surrogate or above U+10FFFF)", p.src[start:p.pos])
		}
		return rune(v), nil
	}
	p.pos = start + 1
	return 0, p.errAt(start, "unknown escape \"\\%s\"", p.describeRaw())
}

func (p *parser) describeRaw() string {
	r, _ := utf8.DecodeRuneInString(p.src[p.pos:])
	return string(r)
}

func (p *parser) literal() (literal, error) {
	start := p.pos
	p.pos++ // "
	var out []byte
	for {
		if p.pos >= len(p.src) {
			return nil, p.errAt(start, "string literal is not closed with '\"'")
		}
		switch p.src[p.pos] {
		case '"':
			p.pos++
			return out, nil
		case '\n':
			return nil, p.errAt(start, "string literal is not closed before the end of its line (write \\n for a newline)")
		}
		r, err := p.char()
		if err != nil {
			return nil, err
		}
		out = utf8.AppendRune(out, r)
	}
}

func (p *parser) class() (class, error) {
	start := p.pos
	p.pos++ // [
	var c class
	if p.pos < len(p.src) && p.src[p.pos] == '^' {
		c.negate = true
		p.pos++
	}
	for {
		if p.pos >= len(p.src) || p.src[p.pos] == '\n' {
			return class{}, p.errAt(start, "character class is not closed with \"]\"")
		}
		if p.src[p.pos] == ']' {
			p.pos++
			return c, nil
		}
		at := p.pos
		lo, err := p.char()
		if err != nil {
			return class{}, err
		}
		hi := lo
		if p.pos+1 < len(p.src) && p.src[p.pos] == '-' && p.src[p.pos+1] != ']' {
			p.pos++
			if hi, err = p.char(); err != nil {
				return class{}, err
			}
			if hi < lo {
				return class{}, p.errAt(at, "range %s is reversed", p.src[at:p.pos])
			}
		}
		c.ranges = append(c.ranges, runeRange{lo, hi})
	}
}
