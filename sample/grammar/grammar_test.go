package grammar

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name      string
		src       string
		line, col int
		msg       string
	}{
		{"empty", "", 1, 1, "no rules"},
		{"only comment", "# nothing\n", 1, 1, "no rules"},
		{"no root", `a ::= "x"`, 1, 1, "no rule named root"},
		{"missing ::=", `root = "x"`, 1, 6, `expected "::="`},
		{"bad name", `root ::= "a"` + "\n" + `::= "b"`, 2, 1, "expected a rule name"},
		{"undefined", "root ::= a b\na ::= \"x\"", 1, 12, `rule "b" is not defined`},
		{"duplicate", "root ::= \"a\"\nroot ::= \"b\"", 2, 1, "already defined at line 1, column 1"},
		{"unclosed literal", `root ::= "abc`, 1, 10, "not closed"},
		{"literal over newline", "root ::= \"ab\ncd\"", 1, 10, "end of its line"},
		{"unclosed class", `root ::= [a-z`, 1, 10, "not closed"},
		{"reversed range", `root ::= [z-a]`, 1, 11, "reversed"},
		{"unknown escape", `root ::= "\q"`, 1, 11, `unknown escape "\q"`},
		{"short hex", `root ::= "\x4"`, 1, 11, "2 hex digits"},
		{"bad hex", `root ::= "\u12G4"`, 1, 11, "4 hex digits"},
		{"surrogate", `root ::= [\uD800]`, 1, 11, "not a Unicode character"},
		{"too big code point", `root ::= "\U00110000"`, 1, 11, "not a Unicode character"},
		{"unclosed group", `root ::= ( "a" | "b"`, 1, 21, `expected ")" to close the "(" at line 1, column 10`},
		{"stray paren", `root ::= "a" )`, 1, 14, `unexpected ')'`},
		{"star first", `root ::= * "a"`, 1, 10, "nothing before it"},
		{"bad braces", `root ::= "a"{x}`, 1, 14, "expected a number"},
		{"unclosed braces", `root ::= "a"{1,2`, 1, 17, `expected "}"`},
		{"max below min", `root ::= "a"{3,2}`, 1, 13, "below its minimum"},
		{"count too big", `root ::= "a"{100000}`, 1, 14, "more than 10000"},
		{"rule mid-line", `root ::= "a" b ::= "c"`, 1, 14, "middle of a line"},
		{"left recursion", "root ::= expr\nexpr ::= expr \"+\" term | term\nterm ::= [0-9]", 2, 1, `rule "expr" is left-recursive`},
		{"nullable left recursion", "root ::= a\na ::= b? a \"x\" | \"y\"\nb ::= \"z\"", 2, 1, "left-recursive"},
		{"mutual left recursion", "root ::= a\na ::= b \"x\"\nb ::= a \"y\" | \"z\"", 2, 1, "a → b → a"},
		{"star of nullable", `root ::= ("a"?)*`, 1, 1, "left-recursive"},
		{"invalid utf8", "root ::= \"a\xffb\"", 1, 12, "invalid UTF-8"},
		{"unicode column", "root ::= \"é\" ]", 1, 14, `unexpected ']'`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, err := Parse(tc.src)
			if err == nil {
				t.Fatalf("Parse(%q) = %v, want an error", tc.src, g)
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is %T, not *SyntaxError", err, err)
			}
			if se.Line != tc.line || se.Column != tc.col || !strings.Contains(se.Msg, tc.msg) {
				t.Errorf("Parse(%q) = %v; want line %d, column %d, message with %q", tc.src, err, tc.line, tc.col, tc.msg)
			}
			if !strings.HasPrefix(err.Error(), "grammar: line ") {
				t.Errorf("error %q does not begin with its place", err)
			}
		})
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		name     string
		src      string
		accept   []string
		reject   []string
		prefixes []string // refused as a whole, yet a prefix of a match
	}{
		{"literal", `root ::= "abc"`, []string{"abc"}, []string{"", "ab", "abcd", "abd"}, []string{"", "a", "ab"}},
		{"alternatives", `root ::= "cat" | "dog" | ""`, []string{"cat", "dog", ""}, []string{"cow", "catdog"}, []string{"ca"}},
		{"star", `root ::= "a"*`, []string{"", "a", "aaaa"}, []string{"b", "aab"}, nil},
		{"plus", `root ::= "ab"+`, []string{"ab", "abab"}, []string{"", "aba", "abb"}, []string{"", "aba"}},
		{"optional", `root ::= "a" "b"? "c"`, []string{"ac", "abc"}, []string{"abbc", "a"}, []string{"a", "ab"}},
		{"braces", `root ::= [0-9]{2,4}`, []string{"12", "123", "1234"}, []string{"1", "12345", "1a"}, []string{"1"}},
		{"exact braces", `root ::= "x"{3}`, []string{"xxx"}, []string{"xx", "xxxx"}, []string{"xx"}},
		{"open braces", `root ::= "x"{2,}`, []string{"xx", "xxxxxxx"}, []string{"x"}, []string{"x"}},
		{"group", `root ::= ("a" | "b") ("c" "d")*`, []string{"a", "bcd", "acdcd"}, []string{"c", "acd c"}, []string{"ac"}},
		{"class", `root ::= [a-cx0-9]+`, []string{"abc", "x9", "0"}, []string{"d", "A", ""}, nil},
		{"negated class", `root ::= "\"" [^"\\]* "\""`, []string{`""`, `"abc"`, `"é中😀"`}, []string{`"a"b"`, `"\"`, "\"\xff\""}, []string{`"ab`, "\"\xe4\xb8"}},
		{"any", `root ::= .{2}`, []string{"ab", "é中", "😀x"}, []string{"a", "abc", "\xc3", "\xed\xa0\x80x"}, []string{"\xf0\x9f\x98"}},
		{"unicode range", `root ::= [α-ω]+`, []string{"αβγ", "ω"}, []string{"a", "Α", "\xce"}, []string{"\xce"}},
		{"unicode class mixed", `root ::= [a\u00e9\u4e2d\U0001F600-\U0001F64F]*`, []string{"aé中😀🙏"}, []string{"b", "🚀"}, []string{"\xf0\x9f"}},
		{"escapes", `root ::= "\x41\u00e9\n\t\\\"" [\]\[\-]`, []string{"Aé\n\t\\\"]", "Aé\n\t\\\"-"}, []string{"Aé\n\t\\\"x"}, nil},
		{"hex is a code point", `root ::= "\xff"`, []string{"ÿ"}, []string{"\xff"}, nil},
		{"rules and comments", "# a list\nroot ::= item (\",\" item)* # items\nitem ::= [a-z]+ | num\nnum ::= [0-9]+\n", []string{"a,b,22", "zz"}, []string{",", "a,", "a,,b"}, []string{"a,"}},
		{"multi-line", "root ::=\n  \"a\" (\n    \"b\" |\n    \"c\"\n  )\n  | \"d\"\n", []string{"ab", "ac", "d"}, []string{"a", "ad"}, nil},
		{"empty class", `root ::= "a" []?`, []string{"a"}, []string{"ab"}, nil},
		{"right recursion", "root ::= \"(\" root \")\" | \"\"", []string{"", "()", "((()))"}, []string{"(()", "())"}, []string{"(("}},
		{"ambiguous", `root ::= ("a" | "a" "b"?)* "b"`, []string{"b", "ab", "abb", "aab"}, []string{"a", "abbb"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, err := Parse(tc.src)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tc.accept {
				if !g.Match([]byte(s)) {
					t.Errorf("refused %q", s)
				}
			}
			for _, s := range tc.reject {
				if g.Match([]byte(s)) {
					t.Errorf("accepted %q", s)
				}
			}
			for _, s := range tc.prefixes {
				m := g.NewMatcher()
				if !m.Accept([]byte(s)) {
					t.Errorf("refused the prefix %q", s)
				}
			}
			// Byte by byte and all at once agree, and a refused byte
			// leaves the state as it was.
			for _, s := range append(tc.accept, tc.reject...) {
				m := g.NewMatcher()
				ok := true
				for i := range len(s) {
					before := m.State()
					if !m.Accept([]byte{s[i]}) {
						if m.State() != before {
							t.Errorf("%q: a refused byte changed the state", s)
						}
						ok = false
						break
					}
				}
				if got, want := ok && m.Complete(), g.Match([]byte(s)); got != want {
					t.Errorf("%q: byte by byte %v, at once %v", s, got, want)
				}
			}
		})
	}
}

func TestJSONGrammar(t *testing.T) {
	g, err := Parse(JSON)
	if err != nil {
		t.Fatal(err)
	}
	good := []string{
		`{}`, `[]`, `""`, `0`, `-0`, `12.5e-3`, `1E+9`, `true`, `false`, `null`,
		`{"a": 1, "b": [true, null, "x"], "c": {"d": -2.5}}`,
		"{\n  \"a\": [\n    1,\n    2\n  ]\n}",
		`"\"\\\/\b\f\n\r\t\u00e9 é 中"`, `[1,[2,[3,[4]]]]`, `{"":""}`, `123456789012345`,
	}
	for _, s := range good {
		if !json.Valid([]byte(s)) {
			t.Fatalf("test case %q is not JSON", s)
		}
		if !g.Match([]byte(s)) {
			t.Errorf("refused %q", s)
		}
	}
	bad := []string{
		``, `{`, `{"a"}`, `{"a":}`, `{,}`, `[1,]`, `01`, `1.`, `.5`, `+1`, `tru`, `nul`,
		`"a`, "\"\x01\"", `"\x"`, `"\u12"`, `{'a': 1}`, `[1 2]`, "\xff", "\"\xc3\"", `NaN`,
		"  1",               // no whitespace before the value
		"[1,\n\n2]",         // at most one newline between tokens
		`12345678901234567`, // 17 digits: the integer part is bounded
	}
	for _, s := range bad {
		if g.Match([]byte(s)) {
			t.Errorf("accepted %q", s)
		}
	}
}

func TestFromJSONSchema(t *testing.T) {
	tests := []struct {
		name   string
		schema string
		accept []string
		reject []string
	}{
		{"empty schema", `{}`, []string{`1`, `"x"`, `{"a":[null]}`}, []string{`x`}},
		{"true", `true`, []string{`[]`}, nil},
		{"string", `{"type":"string"}`, []string{`""`, `"a b"`}, []string{`1`, `null`}},
		{"number", `{"type":"number"}`, []string{`1`, `-2.5e3`}, []string{`"1"`}},
		{"integer", `{"type":"integer"}`, []string{`1`, `-20`}, []string{`1.5`, `1e3`}},
		{"boolean", `{"type":"boolean"}`, []string{`true`, `false`}, []string{`1`}},
		{"null", `{"type":"null"}`, []string{`null`}, []string{`0`}},
		{"type list", `{"type":["string","null"]}`, []string{`"a"`, `null`}, []string{`1`}},
		{"any object", `{"type":"object"}`, []string{`{}`, `{"x":1}`}, []string{`[]`}},
		{"any array", `{"type":"array"}`, []string{`[]`, `[1,"a"]`}, []string{`{}`}},
		{"items", `{"type":"array","items":{"type":"integer"}}`, []string{`[]`, `[1, 2,3]`}, []string{`[1.5]`, `["a"]`}},
		{"items false", `{"type":"array","items":false}`, []string{`[]`}, []string{`[1]`}},
		{"properties", `{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}},"required":["a","b"]}`,
			[]string{`{"a":"x","b":1}`, `{ "a" : "x", "b": 1 }`}, []string{`{"a":"x"}`, `{"b":1,"a":"x"}`, `{"a":1,"b":1}`, `{"a":"x","b":1,"c":2}`}},
		{"optional properties", `{"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"integer"},"c":{"type":"integer"}},"required":["b"]}`,
			[]string{`{"b":1}`, `{"a":1,"b":2}`, `{"b":1,"c":3}`, `{"a":1,"b":2,"c":3}`}, []string{`{}`, `{"a":1}`, `{"a":1,"c":3}`, `{,"b":1}`, `{"b":1,}`}},
		{"all optional", `{"properties":{"a":{"type":"integer"},"b":{"type":"integer"}}}`,
			[]string{`{}`, `{"a":1}`, `{"b":2}`, `{"a":1,"b":2}`}, []string{`{,}`, `{"a":1,}`, `{"b":2,"a":1}`}},
		{"additionalProperties false", `{"type":"object","additionalProperties":false}`, []string{`{}`}, []string{`{"a":1}`}},
		{"nested", `{"type":"object","properties":{"p":{"type":"object","properties":{"q":{"type":"array","items":{"type":"boolean"}}},"required":["q"]}},"required":["p"]}`,
			[]string{`{"p":{"q":[true,false]}}`}, []string{`{"p":{}}`, `{"p":{"q":[1]}}`}},
		{"enum", `{"enum":["red","green",3,null,{"a":[1]}]}`, []string{`"red"`, `"green"`, `3`, `null`, `{"a":[1]}`}, []string{`"blue"`, `"Red"`, `4`}},
		{"enum with type", `{"type":"string","enum":["a","b"]}`, []string{`"a"`}, []string{`"c"`}},
		{"const", `{"const":"x<&>\"y"}`, []string{`"x<&>\"y"`}, []string{`"x\u003c&>\"y"`}},
		{"odd names", `{"type":"object","properties":{"a b/c~\"é":{"type":"null"},"":{"type":"null"}},"required":["a b/c~\"é",""]}`,
			[]string{`{"a b/c~\"é":null,"":null}`}, []string{`{"":null}`}},
		{"string lengths", `{"type":"string","minLength":1,"maxLength":3}`, []string{`"a"`, `"abc"`, `"é\n"`}, []string{`""`, `"abcd"`}},
		{"string at least", `{"type":["string","null"],"minLength":2}`, []string{`"ab"`, `"abcdef"`, `null`}, []string{`"a"`}},
		{"annotations", `{"title":"T","description":"D","$schema":"x","type":"integer","default":1,"examples":[1]}`, []string{`5`}, []string{`"5"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, err := FromJSONSchema([]byte(tc.schema))
			if err != nil {
				t.Fatal(err)
			}
			g, err := Parse(src)
			if err != nil {
				t.Fatalf("the grammar does not parse: %v\n%s", err, src)
			}
			for _, s := range tc.accept {
				if !json.Valid([]byte(s)) {
					t.Fatalf("test case %q is not JSON", s)
				}
				if !g.Match([]byte(s)) {
					t.Errorf("refused %s\n%s", s, src)
				}
			}
			for _, s := range tc.reject {
				if g.Match([]byte(s)) {
					t.Errorf("accepted %s\n%s", s, src)
				}
			}
		})
	}
}

func TestFromJSONSchemaRefuses(t *testing.T) {
	tests := []struct{ schema, want string }{
		{`{"type":"string","pattern":"a+"}`, `at #: keyword "pattern" is not supported`},
		{`{"type":"object","properties":{"a":{"minLength":1}}}`, `at #/properties/a: minLength and maxLength apply to strings`},
		{`{"type":"string","maxLength":-1}`, `at #/maxLength: maxLength must be an integer`},
		{`{"type":"string","maxLength":5000}`, `maxLength must be an integer in 0..4096`},
		{`{"type":"string","minLength":3,"maxLength":2}`, `maxLength 2 is less than minLength 3`},
		{`{"anyOf":[{"type":"string"}]}`, `keyword "anyOf"`},
		{`{"$ref":"#/$defs/x"}`, `keyword "$ref"`},
		{`{"type":"array","items":{"format":"date"}}`, `at #/items: keyword "format"`},
		{`{"type":"array","items":[{"type":"string"}]}`, "tuples"},
		{`{"type":"strin"}`, `type "strin" is not one of`},
		{`{"type":[]}`, "empty list of types"},
		{`{"type":3}`, "type must be a string or a list"},
		{`{"type":"object","required":["a"]}`, `required names "a", which properties does not define`},
		{`{"type":"object","properties":{"a":{}},"required":"a"}`, "required must be a list"},
		{`{"type":"object","properties":[]}`, "properties must be an object"},
		{`{"type":"object","properties":{"a":{}},"additionalProperties":true}`, "additionalProperties true together with properties"},
		{`{"type":"object","additionalProperties":{"type":"string"}}`, "not a schema"},
		{`{"type":"string","properties":{}}`, "apply to objects"},
		{`{"type":"string","items":{}}`, "items applies to arrays"},
		{`{"properties":{},"items":{}}`, "give type"},
		{`{"enum":[]}`, "empty enum"},
		{`{"enum":"a"}`, "enum must be a list"},
		{`{"type":"integer","enum":[1,2.5]}`, "at #/enum/1: value 2.5 is not of type integer"},
		{`{"enum":[1],"const":1}`, "both enum and const"},
		{`{"enum":[1],"items":{}}`, "not supported"},
		{`false`, "accepts no value"},
		{`{"type":"object","properties":{"a":false}}`, "at #/properties/a: the schema false"},
		{`3`, "must be an object or a boolean"},
		{`{"a":1,"a":2}`, `member "a" given twice`},
		{`{"type":"string"} x`, "JSON schema"},
		{``, "JSON schema"},
		{`{"type":`, "JSON schema"},
	}
	for _, tc := range tests {
		t.Run(tc.schema, func(t *testing.T) {
			src, err := FromJSONSchema([]byte(tc.schema))
			if err == nil {
				t.Fatalf("FromJSONSchema(%s) = %q, want an error", tc.schema, src)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "grammar: JSON schema") {
				t.Errorf("error %q, want one with %q", err, tc.want)
			}
		})
	}
}

func TestMatcherCompact(t *testing.T) {
	g := MustParse(JSON)
	m := g.NewMatcher()
	// Deep nesting makes new states all the time; compacting keeps the
	// state and changes the generation.
	depth := 0
	for m.Generation() == 0 && depth < 1<<16 {
		if !m.Accept([]byte(`[{"a":`)) {
			t.Fatal("refused")
		}
		depth++
	}
	if m.Generation() == 0 {
		t.Fatal("never compacted")
	}
	if !m.Accept([]byte("1")) {
		t.Fatal("refused after compacting")
	}
	for range depth {
		if m.Complete() || !m.Accept([]byte("}]")) {
			t.Fatal("refused closing after compacting")
		}
	}
	if !m.Complete() {
		t.Fatal("not complete after closing everything")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(JSON)
	f.Add(`root ::= [a-z]{1,3} ("," root)?`)
	f.Add("root ::= \"\\u00e9\" [^\\x00-\\x7f]* | .")
	f.Add(`root ::= (("a"*)*)`)
	f.Add("root ::= x\nx ::= \"(\" x \")\" | [^()]")
	f.Fuzz(func(t *testing.T, src string) {
		g, err := Parse(src)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Line < 1 || se.Column < 1 || se.Line > strings.Count(src, "\n")+1 {
				t.Fatalf("error %v (%T) has no place in the text", err, err)
			}
			return
		}
		// Walk the grammar with some inputs: never a panic, and byte by
		// byte agrees with Match.
		for _, in := range []string{"", src, "a", "{}", "é", "\xff", strings.Repeat("(", 20)} {
			m := g.NewMatcher()
			ok := true
			for i := 0; i < len(in) && ok; i++ {
				ok = m.Accept([]byte{in[i]})
			}
			if (ok && m.Complete()) != g.Match([]byte(in)) {
				t.Fatalf("byte by byte and Match disagree on %q", in)
			}
		}
		// Whatever the grammar accepts byte by byte stays valid UTF-8
		// once complete.
		m := g.NewMatcher()
		var out []byte
		for range 64 {
			s := m.State()
			stepped := false
			for b := range 256 {
				if n, ok := m.Step(s, byte(b)); ok {
					m.SetState(n)
					out = append(out, byte(b))
					stepped = true
					break
				}
			}
			if !stepped {
				break
			}
			if m.Complete() && !utf8.Valid(out) {
				t.Fatalf("complete match %q is not UTF-8", out)
			}
		}
	})
}

// FuzzFromJSONSchema checks that every schema either is refused with an
// error or gives a grammar that parses.
func FuzzFromJSONSchema(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"type":"object","properties":{"a":{"type":"string"},"b":{"enum":[1,"x"]}},"required":["b"]}`,
		`{"type":"array","items":{"type":["integer","null"]}}`, `{"const":{"k":[1,2,{"z":null}]}}`,
		`{"properties":{"\u0000\"\\\n":{"type":"boolean"}}}`, `{"type":"object","additionalProperties":true}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, schema []byte) {
		src, err := FromJSONSchema(schema)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "grammar: JSON schema") {
				t.Fatalf("error %q", err)
			}
			return
		}
		if _, err := Parse(src); err != nil {
			t.Fatalf("schema %s gave a grammar that does not parse: %v\n%s", schema, err, src)
		}
	})
}

// TestAllowedTokens checks the trie walk against trying every piece.
func TestAllowedTokens(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"{", "}", "[", "]", "\"", ":", ",", " ", "\n", "a", "b", "1", "0", ".", "-", "e", "\\", "u", "é", "\xc3", "\xa9", "中", "\xe4", "\xb8\xad", "true", "null"}
	pieces := [][]byte{nil, {}}
	for range 3000 {
		var p []byte
		for range 1 + rng.IntN(4) {
			p = append(p, alphabet[rng.IntN(len(alphabet))]...)
		}
		pieces = append(pieces, p)
	}
	pieces = append(pieces, []byte("{"), []byte("{")) // duplicates
	trie := NewTrie(pieces)
	g := MustParse(JSON)
	m := g.NewMatcher()
	mask := make([]uint64, (len(pieces)+63)/64)
	resets := 0
	for step := 0; step < 300; step++ {
		clear(mask)
		m.AllowedTokens(trie, m.State(), mask)
		var allowed []int
		for id, p := range pieces {
			want := len(p) > 0 && m.CanAccept(p)
			if got := mask[id/64]>>(id%64)&1 != 0; got != want {
				t.Fatalf("step %d, token %d %q: allowed %v, want %v", step, id, p, got, want)
			}
			if want {
				allowed = append(allowed, id)
			}
		}
		if len(allowed) == 0 {
			m.Reset() // the value is complete and can take nothing more
			resets++
			continue
		}
		if !m.Accept(pieces[allowed[rng.IntN(len(allowed))]]) {
			t.Fatal("an allowed piece was refused")
		}
	}
	t.Logf("%d values completed", resets)
}
