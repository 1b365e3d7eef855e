package sample

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/ocelot-llm/ocelot/internal/testutil"
	"github.com/ocelot-llm/ocelot/sample/grammar"
	"github.com/ocelot-llm/ocelot/tokenizer"
)

// synthVocab is a made-up vocabulary shaped like a byte-level BPE one:
// every single byte, JSON punctuation in the combinations tokenizers
// learn, numbers, words with and without a leading space (some ending in
// punctuation or a quote), whole and split UTF-8 characters, one control
// token (nil piece) and, last, the end-of-generation token.
type synthVocab struct {
	pieces [][]byte
	eog    int32
}

func newSynthVocab(n int, seed uint64) *synthVocab {
	rng := rand.New(rand.NewPCG(seed, 99))
	seen := map[string]bool{}
	var pieces [][]byte
	add := func(s string) {
		if len(pieces) < n-2 && !seen[s] {
			seen[s] = true
			pieces = append(pieces, []byte(s))
		}
	}
	for b := range 256 {
		add(string([]byte{byte(b)}))
	}
	for _, s := range strings.Fields(`{ } [ ] {" "} ": ", ":" "," ": }, ], },{ ":{" ":[" "] "}, "}} ]} ,"
		{"\n \" \\ \\n \\u \\u00 \\" " null true false 0. -0 1e 1E+ .5 e- ...`) {
		add(s)
	}
	for _, s := range []string{" {", " [", " \"", " \"\"", "\n", "\n ", "\n  ", "\n    ", "\n\t", " ", "  ", "    ", "\t",
		" null", " true", " false", ", \"", "\": \"", "\",\n", "},\n", "\n}", "\n]", " }", " ]"} {
		add(s)
	}
	for i := range 1000 {
		add(fmt.Sprint(i))
		add(fmt.Sprint(" ", i))
	}
	runes := func() rune {
		switch rng.IntN(4) {
		case 0:
			return rune(0xA0 + rng.IntN(0x100))
		case 1:
			return rune(0x391 + rng.IntN(0x30))
		case 2:
			return rune(0x4E00 + rng.IntN(0x5000))
		}
		return rune(0x1F600 + rng.IntN(0x50))
	}
	letters := "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	for tries := 0; len(pieces) < n-2 && tries < 100*n; tries++ {
		var b []byte
		switch k := rng.IntN(20); {
		case k < 2: // a UTF-8 character, whole or split
			c := utf8.AppendRune(nil, runes())
			switch rng.IntN(3) {
			case 0:
				b = c
			case 1:
				b = c[:1+rng.IntN(len(c)-1)]
			default:
				b = c[1+rng.IntN(len(c)-1):]
			}
		default: // a word
			if rng.IntN(2) == 0 {
				b = append(b, ' ')
			}
			for range 1 + rng.IntN(9) {
				b = append(b, letters[rng.IntN(len(letters))])
			}
			switch rng.IntN(30) {
			case 0:
				b = append(b, '"')
			case 1:
				b = append(b, ',')
			case 2:
				b = append(b, '.')
			case 3:
				b = append(b, "\","...)
			case 4:
				b = append(b, ':')
			}
		}
		add(string(b))
	}
	pieces = append(pieces, nil, nil) // a control token, then EOG
	return &synthVocab{pieces: pieces, eog: int32(len(pieces) - 1)}
}

var (
	smallVocabOnce sync.Once
	smallVocab     *synthVocab
	smallTrie      *Vocab
)

// small returns a 4096-token synthetic vocabulary and its trie, shared by
// the tests.
func small(tb testing.TB) (*synthVocab, *Vocab) {
	smallVocabOnce.Do(func() {
		smallVocab = newSynthVocab(4096, 1)
		var err error
		if smallTrie, err = NewVocab(smallVocab.pieces, []int32{smallVocab.eog}); err != nil {
			panic(err)
		}
	})
	return smallVocab, smallTrie
}

// TestVocabTrie checks the trie: every token's piece is found again, and
// the mask of a state equals trying every piece with the matcher.
func TestVocabTrie(t *testing.T) {
	sv, v := small(t)
	for id := range sv.pieces {
		if got := v.piece(int32(id)); !bytes.Equal(got, sv.pieces[id]) {
			t.Fatalf("piece %d = %q, want %q", id, got, sv.pieces[id])
		}
	}
	g := grammar.MustParse(grammar.JSON)
	gp := v.NewGrammar(g)
	// Walk a JSON text token by token, comparing masks at every step.
	text := []string{"{\"", "a", "\":", " [", "1", "2", ".", "5", ",", " \"", "\xc3", "\xa9", "\"", "]", "}"}
	for _, piece := range text {
		checkMask(t, gp, sv)
		id := slices.IndexFunc(sv.pieces, func(p []byte) bool { return string(p) == piece })
		if id < 0 {
			t.Fatalf("no token %q", piece)
		}
		if err := gp.AcceptToken(int32(id)); err != nil {
			t.Fatal(err)
		}
	}
	checkMask(t, gp, sv)
	if !gp.Complete() {
		t.Fatal("not complete after a whole JSON text")
	}
	if err := gp.AcceptToken(sv.eog); err != nil || !gp.Ended() {
		t.Fatalf("EOG: %v", err)
	}
}

// checkMask compares the mask of gp's state with a brute-force one.
func checkMask(t *testing.T, gp *Grammar, sv *synthVocab) {
	t.Helper()
	mk := gp.mask()
	for id, p := range sv.pieces {
		want := len(p) > 0 && gp.m.CanAccept(p)
		if int32(id) == sv.eog {
			want = gp.m.Complete()
		}
		if got := mk[id/64]>>(id%64)&1 != 0; got != want {
			t.Fatalf("token %d %q: allowed %v, want %v", id, p, got, want)
		}
	}
}

func TestGrammarProcessor(t *testing.T) {
	pieces := [][]byte{[]byte("{"), []byte("}"), []byte(`"`), []byte("a"), []byte(`"a"`), []byte("1"), []byte("12"), []byte(" "), nil, []byte("<|ctl|>"), []byte("x")}
	const eog = 8
	g := grammar.MustParse(`root ::= "{" ( "\"a\"" | [0-9]+ )? "}" " "?`)
	tests := []struct {
		name   string
		before []int32 // accepted as generated
		want   []int32 // allowed
	}{
		{"start", nil, []int32{0}},
		{"after {", []int32{0}, []int32{1, 2, 4, 5, 6}},
		{"inside a string", []int32{0, 2}, []int32{3}},
		{"after a number", []int32{0, 6}, []int32{1, 5, 6}},
		{"complete", []int32{0, 1}, []int32{7, eog}},
		{"after the space", []int32{0, 1, 7}, []int32{eog}},
		{"after EOG", []int32{0, 1, eog}, []int32{eog}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gp, err := NewGrammar(g, pieces, []int32{eog})
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range tc.before {
				if err := gp.AcceptToken(id); err != nil {
					t.Fatal(err)
				}
			}
			logits := make([]float32, len(pieces)+2) // ids past the vocabulary too
			var c Candidates
			c.reset(logits)
			gp.Apply(&c)
			var got []int32
			for i := range c.Len() {
				got = append(got, c.ID(i))
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("allowed %v, want %v", got, tc.want)
			}
			// The same through candidates no longer dense.
			c.reset(logits)
			c.Sort()
			gp.Apply(&c)
			got = got[:0]
			for i := range c.Len() {
				got = append(got, c.ID(i))
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("sorted: allowed %v, want %v", got, tc.want)
			}
		})
	}

	gp, _ := NewGrammar(g, pieces, []int32{eog})
	for _, tc := range []struct {
		id   int32
		want string
	}{
		{1, `token 1 ("}") does not continue`},
		{eog, "end-of-generation token 8 where the grammar is not complete"},
		{8 + 100, "outside the vocabulary"},
		{9, "does not continue"}, // given a piece, but not allowed here
	} {
		if err := gp.AcceptToken(tc.id); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("AcceptToken(%d) = %v, want %q", tc.id, err, tc.want)
		}
	}
	if _, err := NewGrammar(g, pieces, []int32{11}); err == nil {
		t.Error("an EOG id outside the vocabulary was accepted")
	}
	// Prompt tokens pass through a chain without moving the grammar.
	ch, err := Params{}.Chain(gp)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []int32{1, 2, 3} {
		ch.Accept(id)
	}
	if id := ch.Sample(make([]float32, len(pieces))); id != 0 {
		t.Fatalf("first token %d, want 0 (\"{\")", id)
	}
	ch.Accept(0)
	if gp.Err() != nil || !gp.m.CanAccept([]byte("}")) {
		t.Fatalf("the generated token did not advance the grammar: %v", gp.Err())
	}
	// A generated token the grammar refuses is reported by Err.
	ch.Sample(make([]float32, len(pieces)))
	gp2 := ch.procs[0].(*Grammar)
	gp2.Accept(0, true)
	if gp2.Err() == nil {
		t.Error("a refused generated token gave no error")
	}
	gp.Reset()
	if gp.Err() != nil || gp.Complete() {
		t.Error("Reset kept the state")
	}
}

// validate checks a decoded JSON value (numbers as json.Number) against a
// schema of the subset FromJSONSchema takes, including its choice to write
// only the properties it names.
func validate(v any, schema any) error {
	if b, ok := schema.(bool); ok {
		if !b {
			return fmt.Errorf("schema false")
		}
		return nil
	}
	s := schema.(map[string]any)
	if e, ok := s["const"]; ok {
		s = map[string]any{"enum": []any{e}}
	}
	if e, ok := s["enum"]; ok {
		for _, x := range e.([]any) {
			if reflect.DeepEqual(x, v) {
				return nil
			}
		}
		return fmt.Errorf("%v is not in %v", v, e)
	}
	var types []string
	switch t := s["type"].(type) {
	case string:
		types = []string{t}
	case []any:
		for _, x := range t {
			types = append(types, x.(string))
		}
	case nil:
		_, p := s["properties"]
		_, r := s["required"]
		_, a := s["additionalProperties"]
		_, i := s["items"]
		switch {
		case p || r || a:
			types = []string{"object"}
		case i:
			types = []string{"array"}
		default:
			return nil
		}
	}
	var errs []string
	for _, t := range types {
		err := validateType(v, t, s)
		if err == nil {
			return nil
		}
		errs = append(errs, err.Error())
	}
	return fmt.Errorf("%v matches none of %v: %s", v, types, strings.Join(errs, "; "))
}

func validateType(v any, t string, s map[string]any) error {
	switch t {
	case "object":
		o, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("not an object")
		}
		props, hasProps := s["properties"].(map[string]any)
		if add, ok := s["additionalProperties"].(bool); hasProps || ok && !add {
			for k := range o {
				if _, ok := props[k]; !ok {
					return fmt.Errorf("member %q not in properties", k)
				}
			}
		}
		if req, ok := s["required"].([]any); ok {
			for _, r := range req {
				if _, ok := o[r.(string)]; !ok {
					return fmt.Errorf("required %q missing", r)
				}
			}
		}
		for k, x := range o {
			if sub, ok := props[k]; ok {
				if err := validate(x, sub); err != nil {
					return fmt.Errorf("%q: %w", k, err)
				}
			}
		}
		return nil
	case "array":
		a, ok := v.([]any)
		if !ok {
			return fmt.Errorf("not an array")
		}
		if items, ok := s["items"]; ok {
			for i, x := range a {
				if err := validate(x, items); err != nil {
					return fmt.Errorf("[%d]: %w", i, err)
				}
			}
		}
		return nil
	case "string":
		if _, ok := v.(string); !ok {
			return fmt.Errorf("not a string")
		}
	case "number":
		if _, ok := v.(json.Number); !ok {
			return fmt.Errorf("not a number")
		}
	case "integer":
		if n, ok := v.(json.Number); !ok || strings.ContainsAny(string(n), ".eE") {
			return fmt.Errorf("not an integer")
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("not a boolean")
		}
	case "null":
		if v != nil {
			return fmt.Errorf("not null")
		}
	}
	return nil
}

func decodeJSON(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, fmt.Errorf("data after the value")
	}
	return v, nil
}

// randomModel samples through a chain holding gp, with fresh random
// logits at every step, until EOG or limit tokens. It fails the test if
// the chain ever has nothing to offer or the grammar refuses its choice.
func randomModel(tb testing.TB, gp *Grammar, pieces [][]byte, eog func(int32) bool, seed uint64, limit int) (out []byte, ended bool) {
	tb.Helper()
	ch, err := Params{Temp: 1, TopK: 40, Seed: seed}.Chain(gp)
	if err != nil {
		tb.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	logits := make([]float32, len(pieces))
	for range limit {
		for i := range logits {
			logits[i] = float32(rng.NormFloat64() * 2)
		}
		id := ch.Sample(logits)
		if id < 0 {
			tb.Fatalf("seed %d: no token allowed after %q", seed, out)
		}
		if eog(id) {
			return out, true
		}
		out = append(out, pieces[id]...)
		ch.Accept(id)
		if err := gp.Err(); err != nil {
			tb.Fatalf("seed %d: %v", seed, err)
		}
	}
	return out, false
}

// checkOutput fails unless out is JSON that schema (nil: any) accepts.
func checkOutput(tb testing.TB, out []byte, schema []byte, g *grammar.Grammar) {
	tb.Helper()
	if !g.Match(out) {
		tb.Fatalf("the grammar does not match its own output %q", out)
	}
	v, err := decodeJSON(out)
	if err != nil {
		tb.Fatalf("output %q is not JSON: %v", out, err)
	}
	if schema == nil {
		return
	}
	var s any
	if err := json.Unmarshal(schema, &s); err != nil {
		tb.Fatal(err)
	}
	// Schema numbers as json.Number too, for enum comparisons.
	d := json.NewDecoder(bytes.NewReader(schema))
	d.UseNumber()
	_ = d.Decode(&s)
	if err := validate(v, s); err != nil {
		tb.Fatalf("output %s does not fit schema %s: %v", out, schema, err)
	}
}

var testSchemas = []string{
	`{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},"ok":{"type":"boolean"}},"required":["name","age"]}`,
	`{"type":"array","items":{"type":"object","properties":{"id":{"type":"integer"},"tags":{"type":"array","items":{"type":"string"}}},"required":["id"]}}`,
	`{"type":"object","properties":{"color":{"enum":["red","green","blue"]},"n":{"type":["number","null"]},"x":{"const":{"k":[1,2]}}},"required":["color","x"]}`,
	`{"type":"object","properties":{"a":{"type":"object","properties":{"b":{"type":"object","properties":{"c":{"type":"null"}},"required":["c"]}}}},"required":["a"]}`,
	`{"type":"string"}`,
	`{"properties":{"p":{},"q":{"type":"object"}}}`,
}

// TestRandomModel is the key property of the grammar processor: whatever
// the model's logits, sampling through it ends in output the grammar, and
// so encoding/json and the schema, accept.
func TestRandomModel(t *testing.T) {
	sv, v := small(t)
	isEOG := func(id int32) bool { return id == sv.eog }
	type tcase struct {
		name   string
		src    string
		schema []byte
	}
	cases := []tcase{{"json", grammar.JSON, nil}}
	for i, s := range testSchemas {
		src, err := grammar.FromJSONSchema([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, tcase{fmt.Sprint("schema", i), src, []byte(s)})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g, err := grammar.Parse(tc.src)
			if err != nil {
				t.Fatal(err)
			}
			runs, ended, tokens := 30, 0, 0
			for seed := range uint64(runs) {
				gp := v.NewGrammar(g)
				out, ok := randomModel(t, gp, sv.pieces, isEOG, seed, 2000)
				tokens += len(out)
				if !ok {
					continue
				}
				ended++
				checkOutput(t, out, tc.schema, g)
				if seed == 0 {
					t.Logf("seed 0: %.300q", out)
				}
			}
			t.Logf("%d of %d runs ended (%d bytes in all)", ended, runs, tokens)
			if ended < runs*2/3 {
				t.Errorf("only %d of %d runs reached the end of generation within 2000 tokens", ended, runs)
			}
		})
	}
}

// TestRandomModelLlama3 runs the random model over the real Llama 3
// vocabulary (128256 tokens) when its file is present.
func TestRandomModelLlama3(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	tok, err := tokenizer.Load(filepath.Join(testutil.VocabDir(t), "ggml-vocab-llama-bpe.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	pieces, err := VocabPieces(tok)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVocab(pieces, tok.EOGTokens())
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range []string{testSchemas[0], testSchemas[2]} {
		src, err := grammar.FromJSONSchema([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		g := grammar.MustParse(src)
		ended := 0
		for seed := range uint64(4) {
			gp := v.NewGrammar(g)
			out, ok := randomModel(t, gp, pieces, tok.IsEOG, seed, 600)
			if ok {
				ended++
				checkOutput(t, out, []byte(s), g)
			}
			if seed == 0 {
				t.Logf("schema %d seed 0 (ended %v): %.200q", i, ok, out)
			}
		}
		t.Logf("schema %d: %d of 4 runs ended within 600 tokens", i, ended)
	}
}

// schemaFrom builds a random schema of the supported subset from fuzz
// bytes.
func schemaFrom(b []byte) string {
	next := func() byte {
		if len(b) == 0 {
			return 0
		}
		c := b[0]
		b = b[1:]
		return c
	}
	names := []string{"a", "b", "name", "x y", "é", `q"`, "k\\", "ab"}
	literals := []string{`"red"`, `"a\"b"`, `1`, `-2.5`, `true`, `null`, `{"z":[1]}`, `"é中"`, `0`}
	var gen func(depth int) string
	gen = func(depth int) string {
		k := next() % 12
		if depth > 3 {
			k %= 6
		}
		switch k {
		case 0:
			return `{"type":"string"}`
		case 1:
			return `{"type":"number"}`
		case 2:
			return `{"type":"integer"}`
		case 3:
			return `{"type":"boolean"}`
		case 4:
			return `{"type":["null","integer"]}`
		case 5:
			n := 1 + int(next()%3)
			var ls []string
			for range n {
				ls = append(ls, literals[int(next())%len(literals)])
			}
			return `{"enum":[` + strings.Join(ls, ",") + `]}`
		case 6, 7, 8:
			n := int(next() % 4)
			var props, req []string
			used := map[string]bool{}
			for range n {
				name := names[int(next())%len(names)]
				if used[name] {
					continue
				}
				used[name] = true
				q, _ := json.Marshal(name)
				props = append(props, string(q)+":"+gen(depth+1))
				if next()%2 == 0 {
					req = append(req, string(q))
				}
			}
			return `{"type":"object","properties":{` + strings.Join(props, ",") + `},"required":[` + strings.Join(req, ",") + `]}`
		case 9, 10:
			return `{"type":"array","items":` + gen(depth+1) + `}`
		}
		return `{}`
	}
	return gen(0)
}

// FuzzGrammarSampling generates a random schema and random logits from the
// fuzz input and checks that sampling through the schema's grammar gives
// JSON the schema accepts.
func FuzzGrammarSampling(f *testing.F) {
	f.Add([]byte{6, 3, 0, 0, 1, 1, 2, 9, 0}, uint64(1))
	f.Add([]byte{9, 6, 2, 2, 5, 3, 1, 4}, uint64(2))
	f.Add([]byte{5, 2, 6, 7}, uint64(3))
	f.Add([]byte{11}, uint64(4))
	f.Add([]byte{7, 3, 3, 6, 2, 0, 0, 1, 9, 7, 0, 0, 2, 1, 0, 5, 1, 8}, uint64(5))
	f.Fuzz(func(t *testing.T, raw []byte, seed uint64) {
		sv, v := small(t)
		schema := schemaFrom(raw)
		src, err := grammar.FromJSONSchema([]byte(schema))
		if err != nil {
			t.Fatalf("schema %s: %v", schema, err)
		}
		g, err := grammar.Parse(src)
		if err != nil {
			t.Fatalf("schema %s: %v\n%s", schema, err, src)
		}
		out, ended := randomModel(t, v.NewGrammar(g), sv.pieces, func(id int32) bool { return id == sv.eog }, seed, 400)
		if ended {
			checkOutput(t, out, []byte(schema), g)
		}
	})
}

// benchGrammar times Sample and Accept through a chain with a grammar, a
// random model's logits at every step (prepared beforehand), starting the
// grammar afresh whenever it ends. With cold set, each step's mask is
// recomputed by walking the trie (the cost of a state met for the first
// time); otherwise masks are cached per state as in use.
func benchGrammar(b *testing.B, pieces [][]byte, eog []int32, src string, cold bool) {
	v, err := NewVocab(pieces, eog)
	if err != nil {
		b.Fatal(err)
	}
	g := grammar.MustParse(src)
	gp := v.NewGrammar(g)
	ch, err := Params{Temp: 1, TopK: 40, Seed: 1}.Chain(gp)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	sets := make([][]float32, 16)
	for i := range sets {
		sets[i] = make([]float32, len(pieces))
		for j := range sets[i] {
			sets[i][j] = float32(rng.NormFloat64() * 2)
		}
	}
	isEOG := func(id int32) bool { return slices.Contains(eog, id) }
	step, length := 0, 0
	for b.Loop() {
		if cold {
			gp.dropMasks()
		}
		id := ch.Sample(sets[step%len(sets)])
		step++
		if id < 0 {
			b.Fatal("no token allowed")
		}
		if isEOG(id) || length > 3000 {
			gp.Reset()
			length = 0
			continue
		}
		ch.Accept(id)
		length++
	}
	b.ReportMetric(float64(len(gp.masks)), "masks")
}

func BenchmarkGrammar(b *testing.B) {
	schema, err := grammar.FromJSONSchema([]byte(testSchemas[1]))
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{32000, 128256} {
		sv := newSynthVocab(n, 1)
		for _, g := range []struct{ name, src string }{{"json", grammar.JSON}, {"schema", schema}} {
			for _, cold := range []bool{false, true} {
				name := fmt.Sprintf("synth%dk/%s/cached", n/1000, g.name)
				if cold {
					name = fmt.Sprintf("synth%dk/%s/cold", n/1000, g.name)
				}
				b.Run(name, func(b *testing.B) { benchGrammar(b, sv.pieces, []int32{sv.eog}, g.src, cold) })
			}
		}
	}
	b.Run("llama3/json/cached", func(b *testing.B) { benchLlama3(b, grammar.JSON, false) })
	b.Run("llama3/json/cold", func(b *testing.B) { benchLlama3(b, grammar.JSON, true) })
}

func benchLlama3(b *testing.B, src string, cold bool) {
	tok, err := tokenizer.Load(filepath.Join(testutil.VocabDir(b), "ggml-vocab-llama-bpe.gguf"))
	if err != nil {
		b.Fatal(err)
	}
	pieces, err := VocabPieces(tok)
	if err != nil {
		b.Fatal(err)
	}
	benchGrammar(b, pieces, tok.EOGTokens(), src, cold)
}

// BenchmarkNewVocab times building the trie of Llama 3's vocabulary size.
func BenchmarkNewVocab(b *testing.B) {
	sv := newSynthVocab(128256, 1)
	for b.Loop() {
		if _, err := NewVocab(sv.pieces, []int32{sv.eog}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSampleNoGrammar128k is the chain of benchGrammar without the
// grammar, for comparison.
func BenchmarkSampleNoGrammar128k(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	logits := make([]float32, 128256)
	for i := range logits {
		logits[i] = float32(rng.NormFloat64() * 2)
	}
	ch, _ := Params{Temp: 1, TopK: 40, Seed: 1}.Chain()
	for b.Loop() {
		ch.Accept(ch.Sample(logits))
	}
	_ = math.Pi
}
