package main

import "fmt"

// Encoders for the AArch64 Advanced SIMD instructions that Go's arm64
// assembler does not know. Each emits a WORD with the instruction in
// the comment; `go run . -check-neon` prints them in a form llvm-mc can
// assemble, to verify the encodings (see neonCheck).

// neonEnc encodes a three-register instruction: base | m<<16 | n<<5 | d.
func neonEnc(base uint32, d, n, m int) uint32 {
	return base | uint32(m&31)<<16 | uint32(n&31)<<5 | uint32(d&31)
}

// neonElem encodes a by-element instruction on 32-bit elements: the
// element index is H:L and the register M:Rm.
func neonElem(base uint32, d, n, m, idx int) uint32 {
	return base | uint32(idx&1)<<21 | uint32(m>>4&1)<<20 | uint32(m&15)<<16 | uint32(idx>>1&1)<<11 | uint32(n&31)<<5 | uint32(d&31)
}

// neonLog records every encoded instruction for -check-neon.
var neonLog []struct {
	text string
	word uint32
}

func (f *file) word(w uint32, format string, args ...any) {
	text := fmt.Sprintf(format, args...)
	neonLog = append(neonLog, struct {
		text string
		word uint32
	}{text, w})
	f.ins("WORD $0x%08x // %s", w, text)
}

func (f *file) sdot(d, n, m int) {
	f.word(neonEnc(0x4e809400, d, n, m), "sdot v%d.4s, v%d.16b, v%d.16b", d, n, m)
}

func (f *file) sdotElem(d, n, m, idx int) {
	f.word(neonElem(0x4f80e000, d, n, m, idx), "sdot v%d.4s, v%d.16b, v%d.4b[%d]", d, n, m, idx)
}

func (f *file) smull(d, n, m int, hi bool) {
	if hi {
		f.word(neonEnc(0x4e20c000, d, n, m), "smull2 v%d.8h, v%d.16b, v%d.16b", d, n, m)
	} else {
		f.word(neonEnc(0x0e20c000, d, n, m), "smull v%d.8h, v%d.8b, v%d.8b", d, n, m)
	}
}

func (f *file) smlal(d, n, m int, hi bool) {
	if hi {
		f.word(neonEnc(0x4e208000, d, n, m), "smlal2 v%d.8h, v%d.16b, v%d.16b", d, n, m)
	} else {
		f.word(neonEnc(0x0e208000, d, n, m), "smlal v%d.8h, v%d.8b, v%d.8b", d, n, m)
	}
}

func (f *file) saddlp(d, n int) {
	f.word(neonEnc(0x4e602800, d, n, 0), "saddlp v%d.4s, v%d.8h", d, n)
}

func (f *file) sadalp(d, n int) {
	f.word(neonEnc(0x4e606800, d, n, 0), "sadalp v%d.4s, v%d.8h", d, n)
}

func (f *file) scvtf(d, n int) {
	f.word(neonEnc(0x4e21d800, d, n, 0), "scvtf v%d.4s, v%d.4s", d, n)
}

func (f *file) fmul(d, n, m int) {
	f.word(neonEnc(0x6e20dc00, d, n, m), "fmul v%d.4s, v%d.4s, v%d.4s", d, n, m)
}

func (f *file) fmulElem(d, n, m, idx int) {
	f.word(neonElem(0x4f809000, d, n, m, idx), "fmul v%d.4s, v%d.4s, v%d.s[%d]", d, n, m, idx)
}

func (f *file) fmla(d, n, m int) {
	f.word(neonEnc(0x4e20cc00, d, n, m), "fmla v%d.4s, v%d.4s, v%d.4s", d, n, m)
}

func (f *file) fmlaElem(d, n, m, idx int) {
	f.word(neonElem(0x4f801000, d, n, m, idx), "fmla v%d.4s, v%d.4s, v%d.s[%d]", d, n, m, idx)
}

func (f *file) fadd(d, n, m int) {
	f.word(neonEnc(0x4e20d400, d, n, m), "fadd v%d.4s, v%d.4s, v%d.4s", d, n, m)
}

func (f *file) faddp(d, n, m int) {
	f.word(neonEnc(0x6e20d400, d, n, m), "faddp v%d.4s, v%d.4s, v%d.4s", d, n, m)
}

func (f *file) fcvtl(d, n int, hi bool) {
	if hi {
		f.word(neonEnc(0x4e217800, d, n, 0), "fcvtl2 v%d.4s, v%d.8h", d, n)
	} else {
		f.word(neonEnc(0x0e217800, d, n, 0), "fcvtl v%d.4s, v%d.4h", d, n)
	}
}

func (f *file) fabs(d, n int) {
	f.word(neonEnc(0x4ea0f800, d, n, 0), "fabs v%d.4s, v%d.4s", d, n)
}

func (f *file) fmax(d, n, m int) {
	f.word(neonEnc(0x4e20f400, d, n, m), "fmax v%d.4s, v%d.4s, v%d.4s", d, n, m)
}

func (f *file) fmaxv(d, n int) {
	f.word(neonEnc(0x6e30f800, d, n, 0), "fmaxv s%d, v%d.4s", d, n)
}

func (f *file) fcvtas(d, n int) {
	f.word(neonEnc(0x4e21c800, d, n, 0), "fcvtas v%d.4s, v%d.4s", d, n)
}

func (f *file) facge(d, n, m int) {
	f.word(neonEnc(0x6e20ec00, d, n, m), "facge v%d.4s, v%d.4s, v%d.4s", d, n, m)
}

func (f *file) fcmeq(d, n, m int) {
	f.word(neonEnc(0x4e20e400, d, n, m), "fcmeq v%d.4s, v%d.4s, v%d.4s", d, n, m)
}

func (f *file) uminv(d, n int) {
	f.word(neonEnc(0x6eb1a800, d, n, 0), "uminv s%d, v%d.4s", d, n)
}

// xtn narrows 4S to 4H (or, hi, into the upper half: 8H).
func (f *file) xtnS(d, n int, hi bool) {
	if hi {
		f.word(neonEnc(0x4e612800, d, n, 0), "xtn2 v%d.8h, v%d.4s", d, n)
	} else {
		f.word(neonEnc(0x0e612800, d, n, 0), "xtn v%d.4h, v%d.4s", d, n)
	}
}

// xtnH narrows 8H to 8B (or, hi, into the upper half: 16B).
func (f *file) xtnH(d, n int, hi bool) {
	if hi {
		f.word(neonEnc(0x4e212800, d, n, 0), "xtn2 v%d.16b, v%d.8h", d, n)
	} else {
		f.word(neonEnc(0x0e212800, d, n, 0), "xtn v%d.8b, v%d.8h", d, n)
	}
}

// sxtlB sign-extends bytes to halfwords (the low 8, or hi: the upper 8).
func (f *file) sxtlB(d, n int, hi bool) {
	if hi {
		f.word(neonEnc(0x4f08a400, d, n, 0), "sshll2 v%d.8h, v%d.16b, #0", d, n)
	} else {
		f.word(neonEnc(0x0f08a400, d, n, 0), "sshll v%d.8h, v%d.8b, #0", d, n)
	}
}

// sxtlH sign-extends halfwords to words.
func (f *file) sxtlH(d, n int, hi bool) {
	if hi {
		f.word(neonEnc(0x4f10a400, d, n, 0), "sshll2 v%d.4s, v%d.8h, #0", d, n)
	} else {
		f.word(neonEnc(0x0f10a400, d, n, 0), "sshll v%d.4s, v%d.4h, #0", d, n)
	}
}

func (f *file) mlaElem(d, n, m, idx int) {
	f.word(neonElem(0x6f800000, d, n, m, idx), "mla v%d.4s, v%d.4s, v%d.s[%d]", d, n, m, idx)
}

// neonCheckText returns every encoded instruction as llvm-mc input
// followed by its word, for -check-neon.
func neonCheckText() string {
	s := ""
	for _, e := range neonLog {
		s += fmt.Sprintf("%s // 0x%08x\n", e.text, e.word)
	}
	return s
}
