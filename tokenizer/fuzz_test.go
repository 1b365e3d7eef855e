package tokenizer

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func addSeeds(f *testing.F) {
	for _, c := range namedCases {
		f.Add(c.text)
	}
	for _, s := range []string{
		"", " ", "\x00", "\xff", "a\xffb", "\xe2\x82", "\xed\xa0\x80", "\xc0\x80", "\xf4\x90\x80\x80",
		"\xe2▁", "▁▁x", "<|eot_id|>x", "a</s>b<unk>c", "<s>[INST] hi [/INST]", "it's 'RE 1234567",
		strings.Repeat(" ", 70) + "x", strings.Repeat("ab", 40), "🦙🦙\n\n\t 3.14",
	} {
		f.Add(s)
	}
}

// FuzzRoundTrip checks that decoding the encoding gives the text back, for
// any input:
//
//   - Llama 3 BPE: exactly, for valid UTF-8; for other bytes, the text as
//     llama.cpp sees it (U+FFFD for each byte that starts no character).
//   - Llama 2 SPM: exactly (its byte fallback keeps every byte), except
//     that "▁" in the text comes back as a space, since SPM writes spaces
//     as "▁"; and for text that follows a special token, a space that the
//     leading-space rule put there.
//
// Special tokens parsed or not, encoding never fails or panics.
func FuzzRoundTrip(f *testing.F) {
	addSeeds(f)
	l3, l2 := llama3(f), llama2(f)
	f.Fuzz(func(t *testing.T, s string) {
		for _, special := range []bool{false, true} {
			ids, err := l3.Encode(s, false, special)
			if err != nil {
				t.Fatalf("llama3 Encode(%q): %v", s, err)
			}
			got, err := l3.Decode(ids)
			if err != nil {
				t.Fatalf("llama3 Decode: %v", err)
			}
			want := normalizeUTF8(s)
			if utf8.ValidString(s) && want != s {
				t.Fatalf("normalizeUTF8 changed valid UTF-8 %q", s)
			}
			if got != want {
				t.Fatalf("llama3 special=%v: Decode(Encode(%q)) = %q, want %q", special, s, got, want)
			}

			ids, err = l2.Encode(s, false, special)
			if err != nil {
				t.Fatalf("llama2 Encode(%q): %v", s, err)
			}
			got, err = l2.Decode(ids)
			if err != nil {
				t.Fatalf("llama2 Decode: %v", err)
			}
			want = s
			if special {
				want = spmSpaced(l2, s)
			}
			unescape := func(x string) string { return strings.ReplaceAll(x, "▁", " ") }
			if unescape(got) != unescape(want) {
				t.Fatalf("llama2 special=%v: Decode(Encode(%q)) = %q, want %q", special, s, got, want)
			}
		}
		if _, err := l3.Encode(s, true, true); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzStreamDecoder feeds arbitrary tokens to a StreamDecoder: every piece
// of output must be valid UTF-8, and together they must be the tokens'
// bytes with each byte that is not part of a character as U+FFFD.
func FuzzStreamDecoder(f *testing.F) {
	f.Add([]byte{0x12, 0x34, 0xff, 0x00, 0x7f})
	f.Add([]byte("🦙 한국어"))
	l3, l2 := llama3(f), llama2(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, tok := range []*Tokenizer{l3, l2} {
			d := tok.NewStreamDecoder()
			d.Special = true
			var out, all strings.Builder
			for i := 0; i+1 < len(data); i += 2 {
				// Mostly byte-level tokens, which split characters.
				id := int32(data[i])<<8 | int32(data[i+1])
				if tok.Model() == ModelSPM && data[i]&1 == 0 {
					id = tok.byteToken[data[i+1]]
				}
				id %= int32(tok.VocabSize())
				s, err := d.Add(id)
				if err != nil {
					t.Fatal(err)
				}
				if !utf8.ValidString(s) {
					t.Fatalf("%s: Add(%d) gave invalid UTF-8 %q", tok.Model(), id, s)
				}
				out.WriteString(s)
				all.Write(tok.pieces[id])
			}
			s := d.Flush()
			if !utf8.ValidString(s) {
				t.Fatalf("Flush gave invalid UTF-8 %q", s)
			}
			out.WriteString(s)
			if want := validPerByte([]byte(all.String())); out.String() != want {
				t.Fatalf("%s: streamed %q, want %q", tok.Model(), out.String(), want)
			}
		}
	})
}

// FuzzChatTemplate feeds arbitrary template texts and messages to the chat
// renderer: it either renders or says why not, and never panics. Text it
// renders holds every message's content.
func FuzzChatTemplate(f *testing.F) {
	f.Add("llama3", "system", "You are kind.", "user", "Hi")
	f.Add("llama2", "user", "<<SYS>>", "assistant", "[INST]")
	f.Add(Llama3ChatTemplate, "user", "안녕", "assistant", "")
	f.Add("{% for m in messages %}[INST] {{ m.content }} [/INST]{% endfor %}", "user", "x", "user", "y")
	f.Add("", "", "", "", "")
	f.Fuzz(func(t *testing.T, tmpl, role1, content1, role2, content2 string) {
		msgs := []Message{{Role: role1, Content: content1}, {Role: role2, Content: content2}}
		out, err := RenderChat(tmpl, msgs, true)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error without a message")
			}
			return
		}
		for _, m := range msgs {
			if m.Role == "system" || m.Role == "user" || m.Role == "assistant" {
				if !strings.Contains(out, strings.TrimSpace(m.Content)) {
					t.Fatalf("rendered text %q lacks the content %q", out, m.Content)
				}
			}
		}
	})
}
