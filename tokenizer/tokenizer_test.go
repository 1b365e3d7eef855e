package tokenizer

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/ocelot-llm/ocelot/internal/testutil"
)

// namedCases are texts of the kinds the tokenizer must get right, with the
// ids llama.cpp gives them (node-llama-cpp 3.21.1 through
// scripts/golden/golden.mjs tokenize: add_special=false,
// parse_special=false).
var namedCases = []struct {
	name, text string
	bpe, spm   []int32
}{
	{
		name: "korean",
		text: "안녕하세요, 세계! 오늘 날씨가 정말 좋네요.",
		bpe:  []int32{101193, 124409, 11, 110572, 0, 111128, 105605, 107497, 20565, 116334, 103387, 108231, 13},
		spm:  []int32{29871, 31734, 238, 136, 152, 30944, 31578, 31527, 29892, 29871, 31578, 237, 182, 135, 29991, 29871, 31346, 238, 141, 155, 29871, 238, 133, 163, 31781, 30903, 29871, 30852, 238, 170, 147, 29871, 239, 165, 142, 238, 135, 167, 31527, 29889},
	},
	{
		name: "korean-2",
		text: "한국어 토큰화는 어렵습니다",
		bpe:  []int32{112699, 32179, 101497, 58260, 223, 108, 57390, 16969, 101139, 127390, 39331},
		spm:  []int32{29871, 30877, 31293, 31129, 29871, 240, 137, 163, 240, 132, 179, 31225, 31081, 29871, 31129, 238, 163, 184, 239, 141, 184, 31063, 30709},
	},
	{
		name: "emoji",
		text: "👍🏽 family: 👨‍👩‍👧‍👦, flags 🇰🇷🇺🇸 and ❤️‍🔥!",
		bpe:  []int32{9468, 239, 235, 9468, 237, 121, 3070, 25, 62904, 101, 102470, 9468, 239, 102, 102470, 9468, 239, 100, 102470, 9468, 239, 99, 11, 8202, 11410, 229, 108, 9468, 229, 115, 9468, 229, 118, 9468, 229, 116, 323, 71570, 31643, 102470, 9468, 242, 98, 0},
		spm:  []int32{29871, 243, 162, 148, 144, 243, 162, 146, 192, 3942, 29901, 29871, 243, 162, 148, 171, 30722, 243, 162, 148, 172, 30722, 243, 162, 148, 170, 30722, 243, 162, 148, 169, 29892, 13449, 29871, 243, 162, 138, 179, 243, 162, 138, 186, 243, 162, 138, 189, 243, 162, 138, 187, 322, 29871, 229, 160, 167, 30598, 30722, 243, 162, 151, 168, 29991},
	},
	{
		name: "go-code",
		text: "func main() {\n\tfmt.Println(\"hello, 世界\")\n\tfor i := 0; i < 10; i++ {\n\t\tx += i * 2\n\t}\n}\n",
		bpe:  []int32{2900, 1925, 368, 341, 11254, 12701, 446, 15339, 11, 127365, 1158, 2066, 602, 1703, 220, 15, 26, 602, 366, 220, 605, 26, 602, 1044, 341, 197, 10436, 1447, 602, 353, 220, 17, 198, 197, 534, 534},
		spm:  []int32{3653, 1667, 580, 426, 13, 12, 23479, 29889, 11816, 3083, 703, 12199, 29892, 29871, 30793, 30967, 1159, 13, 12, 1454, 474, 3490, 29871, 29900, 29936, 474, 529, 29871, 29896, 29900, 29936, 474, 1817, 426, 13, 12, 12, 29916, 4619, 474, 334, 29871, 29906, 13, 12, 29913, 13, 29913, 13},
	},
	{
		name: "spaces-16",
		text: "a                b",
		bpe:  []int32{64, 394, 293},
		spm:  []int32{263, 18884, 289},
	},
	{
		name: "whitespace-mixed",
		text: "\n\n\n\n   \t\t  \n x",
		bpe:  []int32{1038, 262, 68764, 865},
		spm:  []int32{29871, 13, 13, 13, 13, 1678, 12, 12, 259, 13, 921},
	},
	{
		name: "crlf",
		text: "line1\r\nline2\r\n\r\n",
		bpe:  []int32{1074, 16, 319, 1074, 17, 881},
		spm:  []int32{1196, 29896, 30004, 13, 1220, 29906, 30004, 13, 30004, 13},
	},
	{
		name: "leading-trailing",
		text: "   leading and trailing   ",
		bpe:  []int32{256, 6522, 323, 28848, 262},
		spm:  []int32{1678, 8236, 322, 25053, 1678},
	},
	{
		name: "unicode-spaces",
		text: "\u00a0\u3000 x",
		bpe:  []int32{4194, 23249, 865},
		spm:  []int32{20246, 30358, 921},
	},
	{
		name: "digits-10",
		text: "1234567890",
		bpe:  []int32{4513, 10961, 16474, 15},
		spm:  []int32{29871, 29896, 29906, 29941, 29946, 29945, 29953, 29955, 29947, 29929, 29900},
	},
	{
		name: "digits-decimal",
		text: "3.14159265358979",
		bpe:  []int32{18, 13, 9335, 20128, 21598, 22905, 4643},
		spm:  []int32{29871, 29941, 29889, 29896, 29946, 29896, 29945, 29929, 29906, 29953, 29945, 29941, 29945, 29947, 29929, 29955, 29929},
	},
	{
		name: "digits-scripts",
		text: "year 2024: 1,000,000 people; ١٢٣٤٥",
		bpe:  []int32{3236, 220, 2366, 19, 25, 220, 16, 11, 931, 11, 931, 1274, 26, 220, 109610, 110546, 117413, 124079, 124043},
		spm:  []int32{1629, 29871, 29906, 29900, 29906, 29946, 29901, 29871, 29896, 29892, 29900, 29900, 29900, 29892, 29900, 29900, 29900, 2305, 29936, 29871, 220, 164, 220, 165, 220, 166, 220, 167, 220, 168},
	},
	{
		name: "digits-long",
		text: "007 0000000 12345678901234567890",
		bpe:  []int32{11194, 220, 931, 931, 15, 220, 4513, 10961, 16474, 11531, 12901, 17458, 1954},
		spm:  []int32{29871, 29900, 29900, 29955, 29871, 29900, 29900, 29900, 29900, 29900, 29900, 29900, 29871, 29896, 29906, 29941, 29946, 29945, 29953, 29955, 29947, 29929, 29900, 29896, 29906, 29941, 29946, 29945, 29953, 29955, 29947, 29929, 29900},
	},
	{
		name: "contractions-case",
		text: "I'M sure they'RE here, WE'VE done it, she'd've",
		bpe:  []int32{40, 28703, 2771, 814, 95253, 1618, 11, 20255, 6, 4592, 2884, 433, 11, 1364, 4265, 3077},
		spm:  []int32{306, 29915, 29924, 1854, 896, 29915, 1525, 1244, 29892, 399, 29923, 29915, 12064, 2309, 372, 29892, 1183, 29915, 29881, 29915, 345},
	},
}

func TestNamedCases(t *testing.T) {
	for _, c := range namedCases {
		for _, v := range []struct {
			tok  *Tokenizer
			want []int32
		}{{llama3(t), c.bpe}, {llama2(t), c.spm}} {
			t.Run(c.name+"/"+v.tok.Model(), func(t *testing.T) {
				got, err := v.tok.Encode(c.text, false, false)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(v.want, got); diff != "" {
					t.Errorf("ids differ (-llama.cpp +ocelot):\n%s", diff)
				}
				dec, err := v.tok.Decode(got)
				if err != nil {
					t.Fatal(err)
				}
				if dec != c.text {
					t.Errorf("Decode(Encode(%q)) = %q", c.text, dec)
				}
			})
		}
	}
}

// TestSpecialTokens checks that special tokens in the text are parsed only
// when asked, with ids from llama.cpp.
func TestSpecialTokens(t *testing.T) {
	cases := []struct {
		tok           *Tokenizer
		text          string
		parsed, plain []int32 // llama.cpp's ids with and without parse_special
	}{
		{
			tok:    llama3(t),
			text:   "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>",
			parsed: []int32{128000, 128006, 882, 128007, 271, 13347, 0, 128009},
			plain:  []int32{27, 91, 7413, 3659, 4424, 91, 1822, 91, 2527, 8932, 851, 91, 29, 882, 27, 91, 408, 8932, 851, 91, 1363, 13347, 88032, 91, 68, 354, 851, 91, 29},
		},
		{
			tok:    llama2(t),
			text:   "<s>[INST] Hi [/INST]</s> more",
			parsed: []int32{1, 518, 25580, 29962, 6324, 518, 29914, 25580, 29962, 2, 29871, 901},
			plain:  []int32{529, 29879, 24566, 25580, 29962, 6324, 518, 29914, 25580, 29962, 829, 29879, 29958, 901},
		},
		{
			tok:    llama2(t),
			text:   "a</s>b<unk>c",
			parsed: []int32{263, 2, 289, 0, 274},
			plain:  []int32{263, 829, 29879, 29958, 29890, 29966, 2960, 29958, 29883},
		},
	}
	for _, c := range cases {
		got, err := c.tok.Encode(c.text, false, true)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(c.parsed, got); diff != "" {
			t.Errorf("%s %q parsed: (-llama.cpp +ocelot):\n%s", c.tok.Model(), c.text, diff)
		}
		plain, err := c.tok.Encode(c.text, false, false)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(c.plain, plain); diff != "" {
			t.Errorf("%s %q plain: (-llama.cpp +ocelot):\n%s", c.tok.Model(), c.text, diff)
		}
		for _, id := range plain {
			if c.tok.IsControl(id) {
				t.Errorf("%s %q without parseSpecial gave control token %d", c.tok.Model(), c.text, id)
			}
		}
		// Both ways decode back to the text, but for the space SPM puts
		// before text that follows a special token.
		for i, ids := range [][]int32{got, plain} {
			want := c.text
			if i == 0 {
				want = spmSpaced(c.tok, c.text)
			}
			if dec, err := c.tok.Decode(ids); err != nil || dec != want {
				t.Errorf("Decode = %q, %v; want %q", dec, err, want)
			}
		}
	}

	// A special token splits the text: the pieces are tokenized apart.
	tok := llama3(t)
	a, _ := tok.Encode("Hello world", false, false)
	b, _ := tok.Encode(" and more", false, false)
	got, _ := tok.Encode("Hello world<|eot_id|> and more", false, true)
	want := append(append(slices.Clone(a), tok.EOT()), b...)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("special token in the middle: (-want +got):\n%s", diff)
	}
}

// TestAddSpecial checks BOS and EOS from the metadata flags.
func TestAddSpecial(t *testing.T) {
	l3, l2 := llama3(t), llama2(t)
	if l3.BOS() != 128000 || l3.EOS() != 128001 || l3.EOT() != 128009 || !l3.AddBOS() || l3.AddEOS() {
		t.Errorf("llama3: BOS %d EOS %d EOT %d addBOS %v addEOS %v", l3.BOS(), l3.EOS(), l3.EOT(), l3.AddBOS(), l3.AddEOS())
	}
	if l2.BOS() != 1 || l2.EOS() != 2 || l2.EOT() != -1 || !l2.AddBOS() || l2.AddEOS() {
		t.Errorf("llama2: BOS %d EOS %d EOT %d addBOS %v addEOS %v", l2.BOS(), l2.EOS(), l2.EOT(), l2.AddBOS(), l2.AddEOS())
	}
	for _, c := range []struct {
		tok  *Tokenizer
		text string
		want []int32
	}{
		{l3, "Hello", []int32{128000, 9906}},
		{l3, "", []int32{128000}},
		{l2, "Hello", []int32{1, 15043}},
		{l2, "", []int32{1}},
	} {
		got, err := c.tok.Encode(c.text, true, false)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s Encode(%q, addSpecial) = %v, want %v", c.tok.Model(), c.text, got, c.want)
		}
		got, _ = c.tok.Encode(c.text, false, false)
		if !slices.Equal(got, c.want[1:]) {
			t.Errorf("%s Encode(%q) = %v, want %v", c.tok.Model(), c.text, got, c.want[1:])
		}
	}

	// EOS is added where the vocabulary asks for it.
	v := smallVocab()
	v.AddEOS = true
	tok, err := New(v)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := tok.Encode("ab", true, false)
	if want := []int32{v.BOS, 3, v.EOS}; !slices.Equal(got, want) {
		t.Errorf("with add_eos: %v, want %v", got, want)
	}
}

// TestEndOfGeneration checks the EOG set found from token texts.
func TestEndOfGeneration(t *testing.T) {
	l3 := llama3(t)
	for _, id := range []int32{128001, 128009} { // <|end_of_text|>, <|eot_id|>
		if !l3.IsEOG(id) {
			t.Errorf("llama3: %d should end generation", id)
		}
	}
	for _, id := range []int32{128000, 128006, 9906, -1, 1 << 30} {
		if l3.IsEOG(id) {
			t.Errorf("llama3: %d should not end generation", id)
		}
	}
	if !llama2(t).IsEOG(2) || llama2(t).IsEOG(1) {
		t.Errorf("llama2: EOG should be exactly </s>")
	}
	if got := l3.EOGTokens(); !slices.Equal(got, []int32{128001, 128009}) {
		t.Errorf("llama3 EOG tokens %v", got)
	}
}

// TestInvalidIDs checks that bad ids are errors, never panics.
func TestInvalidIDs(t *testing.T) {
	for _, tok := range []*Tokenizer{llama3(t), llama2(t)} {
		for _, id := range []int32{-1, -1 << 31, int32(tok.VocabSize()), 1<<31 - 1} {
			if _, err := tok.Decode([]int32{1, id}); !errors.Is(err, ErrInvalidToken) {
				t.Errorf("%s Decode(%d): err %v, want ErrInvalidToken", tok.Model(), id, err)
			}
			if _, err := tok.Piece(id); !errors.Is(err, ErrInvalidToken) {
				t.Errorf("%s Piece(%d): err %v", tok.Model(), id, err)
			}
			if _, err := tok.TokenText(id); !errors.Is(err, ErrInvalidToken) {
				t.Errorf("%s TokenText(%d): err %v", tok.Model(), id, err)
			}
			d := tok.NewStreamDecoder()
			if _, err := d.Add(id); !errors.Is(err, ErrInvalidToken) {
				t.Errorf("%s StreamDecoder.Add(%d): err %v", tok.Model(), id, err)
			}
		}
	}
}

// TestPieces checks what single tokens decode to, by token type.
func TestPieces(t *testing.T) {
	cases := []struct {
		tok  *Tokenizer
		id   int32
		want string
	}{
		{llama3(t), 9906, "Hello"},
		{llama3(t), 22691, " Hello"},
		{llama3(t), 198, "\n"},
		{llama3(t), 128009, "<|eot_id|>"},
		{llama3(t), 11410, " \xf0\x9f"}, // a space and half of 🦙
		{llama2(t), 15043, " Hello"},
		{llama2(t), 13, "\n"},    // <0x0A>
		{llama2(t), 246, "\xf3"}, // <0xF3>
		{llama2(t), 2, "</s>"},
		{llama2(t), 0, "<unk>"},
	}
	for _, c := range cases {
		got, err := c.tok.Piece(c.id)
		if err != nil || string(got) != c.want {
			t.Errorf("%s Piece(%d) = %q, %v; want %q", c.tok.Model(), c.id, got, err, c.want)
		}
	}
	// SPM drops the space it added in front of the text; BPE keeps all.
	l2 := llama2(t)
	for _, c := range []struct {
		ids  []int32
		want string
	}{
		{[]int32{15043}, "Hello"},
		{[]int32{29871, 15043}, " Hello"},
		{[]int32{1, 15043}, "<s> Hello"},
	} {
		if got, _ := l2.Decode(c.ids); got != c.want {
			t.Errorf("llama2 Decode(%v) = %q, want %q", c.ids, got, c.want)
		}
	}
}

// TestStreamDecoder feeds tokens one at a time and checks that every piece
// of output is valid UTF-8 and that together they make the text.
func TestStreamDecoder(t *testing.T) {
	texts := []string{
		"🦙 llamas and 한국어 and 😶‍🌫️ — ok",
		" this is 🦙.cpp",
		"កាន់តែពិសេសអាចខលចេញ",
	}
	for _, tok := range []*Tokenizer{llama3(t), llama2(t)} {
		for _, text := range texts {
			ids, err := tok.Encode(text, false, false)
			if err != nil {
				t.Fatal(err)
			}
			d := tok.NewStreamDecoder()
			var out strings.Builder
			held := 0
			for _, id := range ids {
				s, err := d.Add(id)
				if err != nil {
					t.Fatal(err)
				}
				if !utf8.ValidString(s) {
					t.Fatalf("%s: Add(%d) returned invalid UTF-8 %q", tok.Model(), id, s)
				}
				if s == "" {
					held++
				}
				out.WriteString(s)
			}
			out.WriteString(d.Flush())
			want := text
			if tok.Model() == ModelSPM {
				want = " " + text // the stream keeps SPM's leading space
			}
			if out.String() != want {
				t.Errorf("%s: streamed %q, want %q", tok.Model(), out.String(), want)
			}
			if held == 0 && strings.ContainsAny(text, "🦙😶") {
				t.Errorf("%s: no token was held back for %q; the test does not split characters", tok.Model(), text)
			}
		}
	}

	// Byte tokens that split a character: <0xF0> <0x9F> <0xA6> <0x99> is 🦙.
	l2 := llama2(t)
	d := l2.NewStreamDecoder()
	var got []string
	for _, b := range []byte("🦙") {
		s, err := d.Add(l2.byteToken[b])
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	if want := []string{"", "", "", "🦙"}; !slices.Equal(got, want) {
		t.Errorf("byte tokens of 🦙 streamed as %q, want %q", got, want)
	}
	// Bytes that can never be valid come out at once as U+FFFD; an
	// incomplete character left at the end is flushed as U+FFFD.
	d.Reset()
	s1, _ := d.Add(l2.byteToken[0xFF])
	s2, _ := d.Add(l2.byteToken['a'])
	s3, _ := d.Add(l2.byteToken[0xE2])
	s4 := d.Flush()
	if s1 != "\uFFFD" || s2 != "a" || s3 != "" || s4 != "\uFFFD" {
		t.Errorf("invalid bytes streamed as %q %q %q %q", s1, s2, s3, s4)
	}

	// Control tokens are left out unless Special is set.
	l3 := llama3(t)
	d = l3.NewStreamDecoder()
	if s, _ := d.Add(l3.EOT()); s != "" {
		t.Errorf("control token streamed as %q", s)
	}
	d.Special = true
	if s, _ := d.Add(l3.EOT()); s != "<|eot_id|>" {
		t.Errorf("control token with Special streamed as %q", s)
	}
}

// TestInvalidUTF8 checks llama.cpp's handling of bytes that are not UTF-8:
// BPE sees U+FFFD for each byte that starts no character; SPM keeps the
// bytes as byte tokens.
func TestInvalidUTF8(t *testing.T) {
	l3, l2 := llama3(t), llama2(t)
	for _, c := range []struct{ bad, same string }{
		{"a\xffb", "a\uFFFDb"},
		{"\x80\x80", "\uFFFD\uFFFD"},
		{"x\xe2\x82", "x\uFFFD\uFFFD"},
		{"\xed\xa0\x80", "\xed\xa0\x80"}, // a surrogate stays as it is
		{"\xc0\x80z", "\x00z"},           // an overlong form is re-encoded
		{"\xf4\x90\x80\x80", "\uFFFD\uFFFD\uFFFD\uFFFD"},
	} {
		got, err := l3.Encode(c.bad, false, false)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := l3.Encode(c.same, false, false)
		if !slices.Equal(got, want) {
			t.Errorf("llama3 Encode(%q) = %v, want %v (as %q)", c.bad, got, want, c.same)
		}
		ids, err := l2.Encode(c.bad, false, false)
		if err != nil {
			t.Fatal(err)
		}
		if dec, _ := l2.Decode(ids); dec != c.bad {
			t.Errorf("llama2 Decode(Encode(%q)) = %q", c.bad, dec)
		}
	}
}

// TestMergeLongMatchesShort checks the heap merge against the scanning
// merge on words of every length up to a few hundred bytes.
func TestMergeLongMatchesShort(t *testing.T) {
	m := llama3(t).bpe
	var w1, w2 bpeWork
	r := splitmix64(1)
	alphabets := []string{"abcdefghij", "aab", "가나다한국어", "0123 \n!", "the quick brown fox"}
	for i := 0; i < 3000; i++ {
		al := []rune(alphabets[i%len(alphabets)])
		var b strings.Builder
		for n := 2 + r.intn(300); b.Len() < n; {
			b.WriteRune(al[r.intn(len(al))])
		}
		word := b.String()
		short := slices.Clone(m.mergeShort(&w1, word))
		long := m.mergeLong(&w2, word)
		if !slices.Equal(short, long) {
			t.Fatalf("word %q: scanning merge %v, heap merge %v", word, short, long)
		}
	}
}

// TestSPMWordSplit checks that merging SPM text word by word gives what
// merging it whole (llama.cpp's way) gives.
func TestSPMWordSplit(t *testing.T) {
	tok := llama2(t)
	if !tok.spm.wordSplit {
		t.Fatal("the Llama 2 vocabulary should allow word splitting")
	}
	whole, err := Load(filepath.Join(testutil.VocabDir(t), "ggml-vocab-llama-spm.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	whole.spm.wordSplit = false
	for _, text := range append(randomCases()[:500], mixedText(20000, 5), "  a  b  ", "▁▁x ▁y▁", strings.Repeat(" ", 100)+"z") {
		a, err1 := tok.Encode(text, false, true)
		b, err2 := whole.Encode(text, false, true)
		if err1 != nil || err2 != nil || !slices.Equal(a, b) {
			t.Fatalf("%q: word by word %v (%v), whole %v (%v)", text, a, err1, b, err2)
		}
	}
}

// TestRoundTrip checks Decode(Encode(s)) == s on varied text, for both
// vocabularies and with special tokens parsed or not.
func TestRoundTrip(t *testing.T) {
	texts := append(randomCases()[:1000], mixedText(50000, 3), "", " ", "\n")
	for _, tok := range []*Tokenizer{llama3(t), llama2(t)} {
		for _, text := range texts {
			for _, special := range []bool{false, true} {
				ids, err := tok.Encode(text, false, special)
				if err != nil {
					t.Fatal(err)
				}
				got, err := tok.Decode(ids)
				if err != nil {
					t.Fatal(err)
				}
				want := text
				if tok.Model() == ModelSPM {
					want = strings.ReplaceAll(text, "▁", " ")
					if special {
						want = strings.ReplaceAll(spmSpaced(tok, text), "▁", " ")
					}
				}
				if got != want {
					t.Fatalf("%s special=%v: Decode(Encode(%q)) = %q", tok.Model(), special, text, got)
				}
			}
		}
	}
}

// spmSpaced returns what Decode gives for text encoded with special tokens
// parsed: for SPM, text that follows a special token has a space in front,
// as in llama.cpp (the leading-space rule applies to it, and
// llama_detokenize removes only the first token's space).
func spmSpaced(tok *Tokenizer, text string) string {
	if tok.Model() != ModelSPM {
		return text
	}
	var b strings.Builder
	for i, f := range tok.partition(text, true) {
		if f.id < 0 && i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(text[f.start:f.end])
	}
	return b.String()
}

// TestVocabErrors checks that bad vocabularies are refused with a reason.
func TestVocabErrors(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(v *Vocab)
		error string
	}{
		{"no tokens", func(v *Vocab) { v.Tokens = nil }, "no tokens"},
		{"model", func(v *Vocab) { v.Model = "bert" }, "unsupported tokenizer model"},
		{"pre", func(v *Vocab) { v.Pre = "qwen2" }, "unsupported BPE pre-tokenizer"},
		{"dup", func(v *Vocab) { v.Tokens[5] = v.Tokens[4] }, "duplicate token"},
		{"bos range", func(v *Vocab) { v.BOS = int32(len(v.Tokens)) }, "BOS token id"},
		{"add bos", func(v *Vocab) { v.BOS = -1 }, "no BOS token"},
		{"types", func(v *Vocab) { v.Types = v.Types[:3] }, "token types"},
	}
	for _, c := range cases {
		v := smallVocab()
		c.edit(v)
		_, err := New(v)
		if err == nil || !strings.Contains(err.Error(), c.error) {
			t.Errorf("%s: err %v, want one containing %q", c.name, err, c.error)
		}
	}
}

// smallVocab returns a tiny byte-level BPE vocabulary: the 256 bytes, one
// merge ("a" "b"), and BOS/EOS.
func smallVocab() *Vocab {
	v := &Vocab{Model: ModelBPE, Pre: "llama-bpe", EOT: -1, EOM: -1, UNK: -1, PAD: -1, AddBOS: true}
	for _, b := range byteOrder {
		v.Tokens = append(v.Tokens, byteToUnicode[b])
		v.Types = append(v.Types, TypeNormal)
	}
	v.Tokens[3] = "ab" // replaces "$", which the tests do not use
	v.Merges = []string{"a b"}
	v.Tokens = append(v.Tokens, "<|begin_of_text|>", "<|end_of_text|>")
	v.Types = append(v.Types, TypeControl, TypeControl)
	v.BOS, v.EOS = int32(len(v.Tokens)-2), int32(len(v.Tokens)-1)
	return v
}

// TestUserDefinedTokens checks that user-defined tokens are recognised in
// the text even without parseSpecial, as llama.cpp does, while control
// tokens are not.
func TestUserDefinedTokens(t *testing.T) {
	v := smallVocab()
	v.Tokens = append(v.Tokens, "<tool>")
	v.Types = append(v.Types, TypeUserDefined)
	tok, err := New(v)
	if err != nil {
		t.Fatal(err)
	}
	user := int32(len(v.Tokens) - 1)
	for _, special := range []bool{false, true} {
		ids, err := tok.Encode("ab<tool>ab", false, special)
		if err != nil {
			t.Fatal(err)
		}
		if want := []int32{3, user, 3}; !slices.Equal(ids, want) {
			t.Errorf("special=%v: %v, want %v", special, ids, want)
		}
		if s, _ := tok.Decode(ids); s != "ab<tool>ab" {
			t.Errorf("Decode = %q", s)
		}
	}
	ids, _ := tok.Encode("<|begin_of_text|>", false, false)
	if slices.Contains(ids, v.BOS) {
		t.Errorf("control token parsed without parseSpecial: %v", ids)
	}
	// A stream decoder writes user-defined tokens even without Special.
	d := tok.NewStreamDecoder()
	if s, _ := d.Add(user); s != "<tool>" {
		t.Errorf("user-defined token streamed as %q", s)
	}
}

// TestConcurrentEncode encodes from many goroutines at once (run it with
// -race): the tokenizer is shared, each call gets its own scratch space.
func TestConcurrentEncode(t *testing.T) {
	tok := llama3(t)
	texts := make([]string, 16)
	want := make([][]int32, len(texts))
	for i := range texts {
		texts[i] = mixedText(20000, uint64(100+i))
		want[i], _ = tok.Encode(texts[i], false, false)
	}
	errs := make(chan string, len(texts)*4)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < len(texts)*2; k++ {
				i := (g + k) % len(texts)
				got, err := tok.Encode(texts[i], false, false)
				if err != nil || !slices.Equal(got, want[i]) {
					errs <- fmt.Sprintf("goroutine %d text %d: ids differ (%v)", g, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
