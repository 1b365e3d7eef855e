package tokenizer

import (
	"sync"
	"unicode"
	"unicode/utf8"
)

// Character classes the Llama 3 pre-tokenizer needs: \p{L}, \p{N}, \s, and
// \r or \n. Every code point has at least classOther set, so that a zero
// class means "past the end of the text", like llama.cpp's empty flags.
const (
	classOther  uint8 = 1 << 0
	classLetter uint8 = 1 << 1
	classNumber uint8 = 1 << 2
	classSpace  uint8 = 1 << 3
	classCRLF   uint8 = 1 << 4
)

func classOfRune(r rune) uint8 {
	c := classOther
	switch {
	case unicode.IsLetter(r):
		c |= classLetter
	case unicode.IsNumber(r):
		c |= classNumber
	}
	// unicode.IsSpace is exactly Unicode's White_Space property, the set
	// llama.cpp uses for \s.
	if unicode.IsSpace(r) {
		c |= classSpace
	}
	if r == '\r' || r == '\n' {
		c |= classCRLF
	}
	return c
}

var asciiClass [128]uint8

func init() {
	for r := rune(0); r < 128; r++ {
		asciiClass[r] = classOfRune(r)
	}
}

// bmpClass caches the class of every code point below 0x10000, built on
// first use (64 KiB, a few milliseconds).
var (
	bmpOnce  sync.Once
	bmpClass []uint8
)

func buildBMP() {
	t := make([]uint8, 0x10000)
	for r := rune(0); r < 0x10000; r++ {
		t[r] = classOfRune(r)
	}
	bmpClass = t
}

// classAt decodes the code point at s[i] (s must be normalised, see
// normalizeUTF8) and returns its class and its length in bytes. Past the
// end it returns class 0.
func classAt(s string, i int) (uint8, int) {
	if i >= len(s) {
		return 0, 0
	}
	b := s[i]
	if b < utf8.RuneSelf {
		return asciiClass[b], 1
	}
	r, n := decodeLax(s, i)
	if n == 0 {
		// Not reachable on normalised text; never loop on it anyway.
		return classOther, 1
	}
	if r < 0x10000 {
		return bmpClass[r], n
	}
	return classOfRune(r), n
}

// decodeLax decodes one code point at s[i] the way llama.cpp's
// unicode_cpt_from_utf8 does: it trusts the lead byte and checks only that
// continuation bytes follow, so it also accepts overlong forms and
// surrogates. It returns n == 0 for bytes llama.cpp rejects (and for code
// points above U+10FFFF, which llama.cpp cannot re-encode).
func decodeLax(s string, i int) (rune, int) {
	b := s[i]
	switch {
	case b < 0x80:
		return rune(b), 1
	case b&0x40 == 0:
		return 0, 0
	case b&0x20 == 0:
		if i+1 >= len(s) || s[i+1]&0xc0 != 0x80 {
			return 0, 0
		}
		return rune(b&0x1f)<<6 | rune(s[i+1]&0x3f), 2
	case b&0x10 == 0:
		if i+2 >= len(s) || s[i+1]&0xc0 != 0x80 || s[i+2]&0xc0 != 0x80 {
			return 0, 0
		}
		return rune(b&0x0f)<<12 | rune(s[i+1]&0x3f)<<6 | rune(s[i+2]&0x3f), 3
	case b&0x08 == 0:
		if i+3 >= len(s) || s[i+1]&0xc0 != 0x80 || s[i+2]&0xc0 != 0x80 || s[i+3]&0xc0 != 0x80 {
			return 0, 0
		}
		r := rune(b&0x07)<<18 | rune(s[i+1]&0x3f)<<12 | rune(s[i+2]&0x3f)<<6 | rune(s[i+3]&0x3f)
		if r > unicode.MaxRune {
			return 0, 0
		}
		return r, 4
	}
	return 0, 0
}

// appendLax appends the UTF-8 form of r as llama.cpp's unicode_cpt_to_utf8
// writes it (surrogates included, unlike utf8.AppendRune).
func appendLax(dst []byte, r rune) []byte {
	switch {
	case r < 0x80:
		return append(dst, byte(r))
	case r < 0x800:
		return append(dst, 0xc0|byte(r>>6), 0x80|byte(r&0x3f))
	case r < 0x10000:
		return append(dst, 0xe0|byte(r>>12), 0x80|byte(r>>6&0x3f), 0x80|byte(r&0x3f))
	}
	return append(dst, 0xf0|byte(r>>18), 0x80|byte(r>>12&0x3f), 0x80|byte(r>>6&0x3f), 0x80|byte(r&0x3f))
}

// normalizeUTF8 returns s as llama.cpp's BPE path sees it: each code point
// decoded leniently and re-encoded, and each byte that does not start a
// code point replaced by U+FFFD. Valid UTF-8 comes back unchanged (and
// uncopied).
func normalizeUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	out := make([]byte, 0, len(s)+len(s)/2)
	for i := 0; i < len(s); {
		r, n := decodeLax(s, i)
		if n == 0 {
			out = append(out, "\uFFFD"...)
			i++
			continue
		}
		out = appendLax(out, r)
		i += n
	}
	return string(out)
}

// splitLlama3 cuts s (normalised by normalizeUTF8) into the words of the
// Llama 3 pre-tokenizer and calls emit with each one, in order. The words
// are those of the pattern
//
//	(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//
// matched as llama.cpp's unicode_regex_split_custom_llama3 does; together
// they cover s exactly.
func splitLlama3(s string, emit func(word string)) {
	bmpOnce.Do(buildBMP)
	for pos := 0; pos < len(s); {
		end := nextLlama3Word(s, pos)
		emit(s[pos:end])
		pos = end
	}
}

// nextLlama3Word returns the end of the word that starts at s[pos].
func nextLlama3Word(s string, pos int) int {
	c0, n0 := classAt(s, pos)
	b0 := s[pos]

	// (?i:'s|'t|'re|'ve|'m|'ll|'d). No code point outside ASCII lowercases
	// to one of these letters, so an ASCII check is the whole test.
	if b0 == '\'' && pos+1 < len(s) {
		switch lowerASCII(s[pos+1]) {
		case 's', 't', 'm', 'd':
			return pos + 2
		case 'r', 'v':
			if pos+2 < len(s) && lowerASCII(s[pos+2]) == 'e' {
				return pos + 3
			}
		case 'l':
			if pos+2 < len(s) && lowerASCII(s[pos+2]) == 'l' {
				return pos + 3
			}
		}
	}

	// [^\r\n\p{L}\p{N}]?\p{L}+
	if c0&(classCRLF|classNumber) == 0 {
		c1, _ := classAt(s, pos+n0)
		if c0&classLetter != 0 || c1&classLetter != 0 {
			p := pos + n0
			for p < len(s) {
				if s[p] < utf8.RuneSelf {
					// ASCII fast path: letters are [A-Za-z].
					if asciiClass[s[p]]&classLetter == 0 {
						break
					}
					p++
					continue
				}
				c, n := classAt(s, p)
				if c&classLetter == 0 {
					break
				}
				p += n
			}
			return p
		}
	}

	// \p{N}{1,3}
	if c0&classNumber != 0 {
		p := pos + n0
		for k := 1; k < 3; k++ {
			c, n := classAt(s, p)
			if c&classNumber == 0 {
				break
			}
			p += n
		}
		return p
	}

	// ' ?[^\s\p{L}\p{N}]+[\r\n]*'
	c2 := c0
	p := pos
	if b0 == ' ' {
		c2, _ = classAt(s, pos+1)
		p = pos + 1
	}
	if c2&(classSpace|classLetter|classNumber) == 0 {
		for p < len(s) {
			c, n := classAt(s, p)
			if c&(classSpace|classLetter|classNumber) != 0 {
				break
			}
			p += n
		}
		for p < len(s) && (s[p] == '\r' || s[p] == '\n') {
			p++
		}
		return p
	}

	// Runs of whitespace: \s*[\r\n]+ | \s+(?!\S) | \s+
	p = pos
	lastNL := -1   // end of the last \r or \n in the run
	lastStart := p // start of the run's last code point
	count := 0
	for p < len(s) {
		c, n := classAt(s, p)
		if c&classSpace == 0 {
			break
		}
		if c&classCRLF != 0 {
			lastNL = p + n
		}
		lastStart = p
		p += n
		count++
	}
	if lastNL >= 0 {
		return lastNL
	}
	if count > 1 && p < len(s) {
		// Leave the last space to lead the next word.
		return lastStart
	}
	if count > 0 {
		return p
	}
	// Nothing matched: one code point on its own.
	return pos + n0
}

func lowerASCII(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}
