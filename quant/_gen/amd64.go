package main

import "fmt"

// isa is one amd64 vector instruction set the kernels are written for.
type isa struct {
	name string // in symbol names: Avx2, AvxVnni, Avx512, Vnni512
	zmm  bool   // 512-bit registers (and 32 of them)
	vnni bool   // vpdpbusd
	vex  bool   // vpdpbusd is the VEX form of AVX-VNNI (no EVEX)
}

var (
	avx2    = isa{name: "Avx2"}
	avxVnni = isa{name: "AvxVnni", vnni: true, vex: true}
	avx512  = isa{name: "Avx512", zmm: true}
	vnni512 = isa{name: "Vnni512", zmm: true, vnni: true}
)

// v names vector register i at the isa's width.
func (x isa) v(i int) string {
	if x.zmm {
		return fmt.Sprintf("Z%d", i)
	}
	return fmt.Sprintf("Y%d", i)
}

func (x isa) lanes() int { // 32-bit lanes per register
	if x.zmm {
		return 16
	}
	return 8
}

// movdqu is the unaligned integer load that reaches all of x's registers.
func movdqu(x isa) string {
	if x.zmm {
		return "VMOVDQU32"
	}
	return "VMOVDQU"
}

func X(i int) string { return fmt.Sprintf("X%d", i) }
func Y(i int) string { return fmt.Sprintf("Y%d", i) }
func Z(i int) string { return fmt.Sprintf("Z%d", i) }

// vexDpbusd emits the VEX-encoded (AVX-VNNI) vpdpbusd dst += u8(src1) ·
// s8(src2) on ymm registers 0-15, which Go's assembler would encode as
// EVEX (AVX512-VNNI + AVX512VL) instead.
func (f *file) vexDpbusd(dst, src1, src2 int) {
	if dst > 15 || src1 > 15 || src2 > 15 {
		panic("vexDpbusd: ymm0-15 only")
	}
	b1 := 0x02 | (^(dst>>3)&1)<<7 | 1<<6 | (^(src2>>3)&1)<<5
	b2 := (^src1&15)<<3 | 1<<2 | 1
	modrm := 0xc0 | (dst&7)<<3 | src2&7
	f.ins("BYTE $0xc4; BYTE $0x%02x; BYTE $0x%02x; BYTE $0x50; BYTE $0x%02x // VPDPBUSD (VEX) Y%d, Y%d, Y%d", b1, b2, modrm, src2, src1, dst)
}

// splat puts the 32-bit constant c in every lane of vector register r,
// using AX.
func (f *file) splat(x isa, r int, c uint32) {
	f.ins("MOVL $0x%08x, AX", c)
	if x.zmm {
		f.ins("VPBROADCASTD AX, %s", Z(r))
		return
	}
	f.ins("VMOVD AX, %s", X(r))
	f.ins("VPBROADCASTD %s, %s", X(r), Y(r))
}

func genAMD64(f *file) {
	f.data("ones16", 0x0001000100010001, 0x0001000100010001, 0x0001000100010001, 0x0001000100010001)

	// Tile kernels: G = 8 serves Q4_0 and Q8_0 (VNNI only for Q8_0,
	// whose offset quants would saturate vpmaddubsw), G = 4 serves Q6_K.
	for _, x := range []isa{vnni512, avx512, avxVnni, avx2} {
		for _, G := range []int{8, 4} {
			tab := fmt.Sprintf("tile%sG%d", x.name, G)
			f.goCode("// %s[T] is the %d-element-block tile kernel of T activation rows.\nvar %s = []func(w, a *byte, nb int, out *float32, outStride int){nil", tab, 4*G, tab)
			for T := 1; T <= tileTmax(x, G); T++ {
				f.goCode(", %s%s", tab, fmt.Sprintf("T%d", T))
			}
			f.goCode("}\n\n")
			for T := 1; T <= tileTmax(x, G); T++ {
				genTile(f, x, G, T)
			}
		}
	}
	for _, x := range []isa{vnni512, avx512, avxVnni, avx2} {
		for _, R := range []int{4, 1} {
			genGemvQ4_0(f, x, R)
		}
	}
	for _, x := range []isa{vnni512, avxVnni, avx2} {
		for _, R := range []int{4, 1} {
			genGemvQ8_0(f, x, R)
		}
	}
	genGemvQ6_KZmm(f)
	genGemvQ6_KYmm(f)
	genGemvQ6_KAvx2Ns(f)
	for _, x := range []isa{avx2, avx512} {
		genDotFloat(f, x, "F32")
		genDotFloat(f, x, "F16")
		genDotFloat(f, x, "BF16")
	}
	genQuantQ8_0(f)
	genSwiGLUAvx2(f)
	genExpSubAvx2(f)
	genPack(f, avx512, false)
	genPack(f, avx512, true)
	genPack(f, avx2, false)
	genPack(f, avx2, true)
	genPackQ6_K(f, avx512)
	genPackQ6_K(f, avx2)
	for _, kind := range []string{"F32", "F16", "BF16"} {
		genFloatTile(f, avx512, kind)
		genFloatTile(f, avx2, kind)
	}
}

// tileTmax is the most activation rows a tile kernel of x and G takes: as
// many float accumulators as the registers left over hold.
func tileTmax(x isa, G int) int {
	switch {
	case x.zmm:
		return 8
	case G == 8:
		return 4
	}
	return 8
}

// genTile writes the GEMM micro-kernel for one panel of P weight rows
// (P = lanes) and T activation rows: see quant/tile.go for the layouts.
//
// Per block it loads the G weight vectors and the P scales once, then for
// each activation row t: starts an int32 accumulator at the row's
// correction (-off * Σa), adds the G group dot products (each a broadcast
// of four activation bytes against one weight vector), converts to float
// and adds it times (weight scales * activation scale) to the row's float
// accumulator.
func genTile(f *file, x isa, G, T int) {
	P := x.lanes()
	E := 4 * G
	wstride := P * (E + 4)
	astride := T * (E + 8)
	qsOff := func(t, g int) int { return t*E + 4*g }
	daOff := func(t int) int { return T*E + 4*t }
	corrOff := func(t int) int { return T*E + 4*T + 4*t }

	name := fmt.Sprintf("tile%sG%dT%d", x.name, G, T)
	f.fn(name, "w, a *byte, nb int, out *float32, outStride int",
		fmt.Sprintf("%s multiplies a panel of %d weight rows by a tile of %d activation rows, %d-element blocks.", name, P, T, E))
	f.ins("MOVQ w+0(FP), SI")
	f.ins("MOVQ a+8(FP), DI")
	f.ins("MOVQ nb+16(FP), CX")
	f.ins("MOVQ out+24(FP), DX")
	f.ins("MOVQ outStride+32(FP), R8")
	f.ins("SHLQ $2, R8")

	// Register plan.
	wreg := func(g int) int { return g }
	var dw, ones int = -1, -1
	next := G
	if x.zmm {
		dw = next
		next++
	}
	if x.zmm && !x.vnni {
		ones = next
		next++
		f.ins("MOVL $0x00010001, AX")
		f.ins("VPBROADCASTD AX, %s", Z(ones))
	}
	acc := make([]int, T)
	for t := range T {
		acc[t] = next
		next++
	}
	// Temporaries: the int32 accumulator of the current activation row
	// (alternating between rows where registers allow; renaming makes
	// reuse free), the sum of a second int16 chunk, and broadcasts.
	nreg := 16
	if x.zmm {
		nreg = 32
	}
	var tmp []int
	for r := next; r < nreg; r++ {
		tmp = append(tmp, r)
	}
	ni := 1
	if x.zmm {
		ni = 2
	}
	if len(tmp) < ni+3 {
		panic(fmt.Sprintf("%s: %d registers left", name, len(tmp)))
	}
	iRegs, sReg, bRegs := tmp[:ni], tmp[ni], tmp[ni+1:]
	bi := 0
	take := func() int { r := bRegs[bi%len(bRegs)]; bi++; return r }

	for t := range T {
		f.ins("VXORPS %s, %s, %s", x.v(acc[t]), x.v(acc[t]), x.v(acc[t]))
	}
	f.label("loop")
	for g := range G {
		if x.zmm {
			f.ins("VMOVDQU32 %d(SI), %s", g*4*P, Z(wreg(g)))
		} else {
			f.ins("VMOVDQU %d(SI), %s", g*4*P, Y(wreg(g)))
		}
	}
	if x.zmm {
		f.ins("VMOVUPS %d(SI), %s", E*P, Z(dw))
	}
	// chunk: how many vpmaddubsw int16 results may be summed before
	// vpmaddwd: 8 for Q4_0 (|q| <= 15), 2 for Q6_K (q <= 63).
	chunk := 8
	if G == 4 {
		chunk = 2
	}
	for t := range T {
		ri := iRegs[t%ni]
		switch {
		case x.vnni && x.zmm:
			f.ins("VPBROADCASTD %d(DI), %s", corrOff(t), Z(ri))
			for g := range G {
				f.ins("VPDPBUSD.BCST %d(DI), %s, %s", qsOff(t, g), Z(wreg(g)), Z(ri))
			}
		case x.vnni:
			f.ins("VPBROADCASTD %d(DI), %s", corrOff(t), Y(ri))
			for g := range G {
				b := take()
				f.ins("VPBROADCASTD %d(DI), %s", qsOff(t, g), Y(b))
				f.vexDpbusd(ri, wreg(g), b)
			}
		default:
			first := true
			for cs := 0; cs < G; cs += chunk {
				sum := ri
				if !first {
					sum = sReg
				}
				for g := cs; g < cs+chunk; g++ {
					b := take()
					f.ins("VPBROADCASTD %d(DI), %s", qsOff(t, g), x.v(b))
					if g == cs {
						f.ins("VPMADDUBSW %s, %s, %s", x.v(b), x.v(wreg(g)), x.v(sum))
					} else {
						f.ins("VPMADDUBSW %s, %s, %s", x.v(b), x.v(wreg(g)), x.v(b))
						f.ins("VPADDW %s, %s, %s", x.v(b), x.v(sum), x.v(sum))
					}
				}
				if x.zmm {
					f.ins("VPMADDWD %s, %s, %s", Z(ones), Z(sum), Z(sum))
				} else {
					f.ins("VPMADDWD ones16<>(SB), %s, %s", Y(sum), Y(sum))
				}
				if !first {
					f.ins("VPADDD %s, %s, %s", x.v(sum), x.v(ri), x.v(ri))
				}
				first = false
			}
			if x.zmm {
				f.ins("VPADDD.BCST %d(DI), %s, %s", corrOff(t), Z(ri), Z(ri))
			} else {
				b := take()
				f.ins("VPBROADCASTD %d(DI), %s", corrOff(t), Y(b))
				f.ins("VPADDD %s, %s, %s", Y(b), Y(ri), Y(ri))
			}
		}
		f.ins("VCVTDQ2PS %s, %s", x.v(ri), x.v(ri))
		st := take()
		if x.zmm {
			f.ins("VMULPS.BCST %d(DI), %s, %s", daOff(t), Z(dw), Z(st))
		} else {
			f.ins("VBROADCASTSS %d(DI), %s", daOff(t), Y(st))
			f.ins("VMULPS %d(SI), %s, %s", E*P, Y(st), Y(st))
		}
		f.ins("VFMADD231PS %s, %s, %s", x.v(st), x.v(ri), x.v(acc[t]))
	}
	f.ins("ADDQ $%d, SI", wstride)
	f.ins("ADDQ $%d, DI", astride)
	f.ins("DECQ CX")
	f.ins("JNZ loop")
	for t := range T {
		f.ins("VMOVUPS %s, (DX)", x.v(acc[t]))
		if t < T-1 {
			f.ins("ADDQ R8, DX")
		}
	}
	f.ins("VZEROUPPER")
	f.ins("RET")
}

// rowMem returns the address of byte off of weight row r of a group of
// R rows: SI is row 0, BX the row stride, R9 row 3.
func rowMem(off, r int) string {
	switch r {
	case 0:
		return fmt.Sprintf("%d(SI)", off)
	case 1:
		return fmt.Sprintf("%d(SI)(BX*1)", off)
	case 2:
		return fmt.Sprintf("%d(SI)(BX*2)", off)
	}
	return fmt.Sprintf("%d(R9)", off)
}

// gemvProlog loads the arguments of a GEMV kernel and opens its row loop;
// gemvEpilog closes it. Registers: R13 the current group of rows, BX the
// row stride, R11 the activation row, R12 nb, DX out, R10 rows left; in
// the loop SI (and R9) point at the rows, DI at the activation block, CX
// counts blocks.
func gemvProlog(f *file, name string, R int, doc string) {
	f.fn(name, "w *byte, rowBytes int, a *byte, nb int, out *float32, rows int", doc)
	f.ins("MOVQ w+0(FP), R13")
	f.ins("MOVQ rowBytes+8(FP), BX")
	f.ins("MOVQ a+16(FP), R11")
	f.ins("MOVQ nb+24(FP), R12")
	f.ins("MOVQ out+32(FP), DX")
	f.ins("MOVQ rows+40(FP), R10")
}

func gemvRowStart(f *file, R int) {
	f.label("rows")
	f.ins("MOVQ R13, SI")
	if R == 4 {
		f.ins("LEAQ (SI)(BX*2), R9")
		f.ins("ADDQ BX, R9")
		f.ins("LEAQ (SI)(BX*4), R14") // the next group, for gemvPrefetch
	}
	f.ins("MOVQ R11, DI")
	f.ins("MOVQ R12, CX")
}

func gemvRowEnd(f *file, R int) {
	f.ins("ADDQ $%d, DX", 4*R)
	if R == 4 {
		f.ins("LEAQ (R13)(BX*4), R13")
	} else {
		f.ins("ADDQ BX, R13")
	}
	f.ins("SUBQ $%d, R10", R)
	f.ins("JNZ rows")
	f.ins("VZEROUPPER")
	f.ins("RET")
}

// reduceStore sums the 8 lanes of each of ymm accumulators Y0..Y(R-1) and
// stores the R sums at (DX). It uses X4.
func reduceStore(f *file, R int) {
	for r := range R {
		f.ins("VEXTRACTF128 $1, %s, X4", Y(r))
		f.ins("VADDPS X4, %s, %s", X(r), X(r))
	}
	if R == 4 {
		f.ins("VHADDPS X1, X0, X0")
		f.ins("VHADDPS X3, X2, X2")
		f.ins("VHADDPS X2, X0, X0")
		f.ins("VMOVUPS X0, (DX)")
		return
	}
	f.ins("VHADDPS X0, X0, X0")
	f.ins("VHADDPS X0, X0, X0")
	f.ins("VMOVSS X0, (DX)")
}

// genGemvQ4_0 writes out[r] = dot(Q4_0 row r, Q8_0 activation row) for
// rows in groups of R.
//
// The Q4_0 quants are used unsigned (0..15) and the activation sums of
// each 4-element group, times 8, are subtracted: Σ(q-8)a = Σqa - 8Σa. The
// 512-bit kernels take two blocks per step, with the activation's 128-bit
// lanes permuted to the order in which the nibbles unpack:
// [b0 0-15 | b1 0-15 | b0 16-31 | b1 16-31].
func genGemvQ4_0(f *file, x isa, R int) {
	name := fmt.Sprintf("gemvQ4_0%sR%d", x.name, R)
	gemvProlog(f, name, R, fmt.Sprintf("%s multiplies Q4_0 rows, %d at a time, by a Q8_0 activation row.", name, R))
	// Constants.
	var mask, eights, ones, act, corr, da, zero int
	if x.zmm {
		mask, eights, ones, act, corr, da, zero = 31, 30, 29, 28, 27, 26, 25
	} else {
		mask, eights, ones, act, corr, da, zero = 15, 10, 11, 13, 14, 12, 9
	}
	f.splat(x, mask, 0x0f0f0f0f)
	f.splat(x, eights, 0x08080808)
	if !x.vnni {
		f.splat(x, ones, 0x00010001)
	}
	f.ins("VPXOR %s, %s, %s", X(min(zero, 15)), X(min(zero, 15)), X(min(zero, 15)))
	if x.zmm {
		f.ins("VPXORD %s, %s, %s", Z(zero), Z(zero), Z(zero))
	}
	gemvRowStart(f, R)
	for r := range R {
		f.ins("VXORPS %s, %s, %s", x.v(r), x.v(r), x.v(r))
		if x.zmm {
			f.ins("VXORPS %s, %s, %s", Z(8+r), Z(8+r), Z(8+r)) // the odd block's
		}
	}

	if x.zmm {
		// Word permutations (vpermw/vpermt2w) gather the quants and
		// scales of a pair of blocks from two overlapping loads, at +0 and
		// +4, that stay within the pair's bytes.
		wordIdx(f, "q40act", 24, 1, 2, 3, 4, 5, 6, 7, 8, 48, 49, 50, 51, 52, 53, 54, 55,
			9, 10, 11, 12, 13, 14, 15, 16, 56, 57, 58, 59, 60, 61, 62, 63)
		wordIdx(f, "q40ds", 23, 0, 0, 0, 0, 17, 17, 17, 17, 0, 0, 0, 0, 17, 17, 17, 17)
		wordIdx(f, "q40wqs", 22, 1, 2, 3, 4, 5, 6, 7, 8, 24, 25, 26, 27, 28, 29, 30, 31)
		wordIdx(f, "q40wd", 21, 0, 0, 0, 0, 9, 9, 9, 9, 0, 0, 0, 0, 9, 9, 9, 9)
		f.ins("SHRQ $1, CX")
		f.ins("JZ odd")
		f.label("pairs")
		gemvPrefetch(f, R, 36*R)
		f.ins("VMOVDQU64 (DI), %s", Z(act))
		f.ins("VMOVDQU64 4(DI), Z4")
		f.ins("VPERMW %s, Z23, Z5", Z(act))
		f.ins("VPERMT2W Z4, Z24, %s", Z(act))
		if x.vnni {
			f.ins("VPXORD %s, %s, %s", Z(corr), Z(corr), Z(corr))
			f.ins("VPDPBUSD %s, %s, %s", Z(act), Z(eights), Z(corr))
			f.ins("VPSUBD %s, %s, %s", Z(corr), Z(zero), Z(corr))
		} else {
			f.ins("VPMADDUBSW %s, %s, %s", Z(act), Z(eights), Z(corr))
			f.ins("VPMADDWD %s, %s, %s", Z(ones), Z(corr), Z(corr))
		}
		f.ins("VCVTPH2PS Y5, %s", Z(da))
		for r := range R {
			q, s, d := 12, 13, 14
			f.ins("VMOVDQU %s, Y%d", rowMem(0, r), q)
			f.ins("VMOVDQU %s, Y%d", rowMem(4, r), s)
			f.ins("VPERMW Y%d, Y21, Y%d", q, d)
			f.ins("VPERMT2W Y%d, Y22, Y%d", s, q)
			f.ins("VPSRLW $4, Y%d, Y%d", q, s)
			f.ins("VINSERTI64X4 $1, Y%d, Z%d, Z%d", s, q, q)
			f.ins("VPANDD %s, Z%d, Z%d", Z(mask), q, q)
			if x.vnni {
				f.ins("VMOVDQA32 %s, Z%d", Z(corr), s)
				f.ins("VPDPBUSD %s, Z%d, Z%d", Z(act), q, s)
			} else {
				f.ins("VPMADDUBSW %s, Z%d, Z%d", Z(act), q, s)
				f.ins("VPMADDWD %s, Z%d, Z%d", Z(ones), s, s)
				f.ins("VPSUBD %s, Z%d, Z%d", Z(corr), s, s)
			}
			f.ins("VCVTDQ2PS Z%d, Z%d", s, s)
			f.ins("VCVTPH2PS Y%d, Z%d", d, d)
			f.ins("VMULPS %s, Z%d, Z%d", Z(da), d, d)
			f.ins("VFMADD231PS Z%d, Z%d, Z%d", d, s, r)
		}
		f.ins("ADDQ $36, SI")
		if R == 4 {
			f.ins("ADDQ $36, R9")
		}
		f.ins("ADDQ $68, DI")
		f.ins("DECQ CX")
		f.ins("JNZ pairs")
		f.label("odd")
		f.ins("TESTQ $1, R12")
		f.ins("JZ reduce")
	} else {
		f.label("blocks")
		gemvPrefetch(f, R, 18*R)
	}

	// One block on ymm registers. For the zmm kernels, whose constants
	// sit in registers 16-31, EVEX forms are used.
	{
		yact, ycorr, yda := act, corr, da
		f.ins("%s 2(DI), %s", movdqu(x), Y(yact))
		switch {
		case x.vnni && x.vex:
			f.ins("VPXOR %s, %s, %s", Y(ycorr), Y(ycorr), Y(ycorr))
			f.vexDpbusd(ycorr, eights, yact)
			f.ins("VPSUBD %s, %s, %s", Y(ycorr), Y(zero), Y(ycorr))
		case x.vnni:
			f.ins("VPXORD %s, %s, %s", Y(ycorr), Y(ycorr), Y(ycorr))
			f.ins("VPDPBUSD %s, %s, %s", Y(yact), Y(eights), Y(ycorr))
			f.ins("VPSUBD %s, %s, %s", Y(ycorr), Y(zero), Y(ycorr))
		default:
			f.ins("VPMADDUBSW %s, %s, %s", Y(yact), Y(eights), Y(ycorr))
			f.ins("VPMADDWD %s, %s, %s", Y(ones), Y(ycorr), Y(ycorr))
		}
		f.ins("VPBROADCASTW (DI), X4")
		f.ins("VCVTPH2PS X4, %s", Y(yda))
		for r := range R {
			q, s, d := 4, 5, 6
			f.ins("VMOVDQU %s, X%d", rowMem(2, r), q)
			f.ins("VPSRLW $4, X%d, X%d", q, s)
			f.ins("VINSERTI128 $1, X%d, Y%d, Y%d", s, q, q)
			if x.zmm {
				f.ins("VPANDD %s, Y%d, Y%d", Y(mask), q, q)
			} else {
				f.ins("VPAND %s, Y%d, Y%d", Y(mask), q, q)
			}
			switch {
			case x.vnni && x.vex:
				f.ins("VMOVDQA %s, Y%d", Y(ycorr), s)
				f.vexDpbusd(s, q, yact)
			case x.vnni:
				f.ins("VMOVDQA32 %s, Y%d", Y(ycorr), s)
				f.ins("VPDPBUSD %s, Y%d, Y%d", Y(yact), q, s)
			default:
				f.ins("VPMADDUBSW %s, Y%d, Y%d", Y(yact), q, s)
				f.ins("VPMADDWD %s, Y%d, Y%d", Y(ones), s, s)
				f.ins("VPSUBD %s, Y%d, Y%d", Y(ycorr), s, s)
			}
			f.ins("VCVTDQ2PS Y%d, Y%d", s, s)
			f.ins("VPBROADCASTW %s, X%d", rowMem(0, r), d)
			f.ins("VCVTPH2PS X%d, Y%d", d, d)
			f.ins("VMULPS %s, Y%d, Y%d", Y(yda), d, d)
			accr := r
			if x.zmm {
				accr = 8 + r
			}
			f.ins("VFMADD231PS Y%d, Y%d, Y%d", d, s, accr)
		}
		if !x.zmm {
			f.ins("ADDQ $18, SI")
			if R == 4 {
				f.ins("ADDQ $18, R9")
			}
			f.ins("ADDQ $34, DI")
			f.ins("DECQ CX")
			f.ins("JNZ blocks")
		}
	}
	if x.zmm {
		f.label("reduce")
		for r := range R {
			f.ins("VADDPS Z%d, Z%d, Z%d", 8+r, r, r)
			f.ins("VEXTRACTF64X4 $1, Z%d, Y4", r)
			f.ins("VADDPS Y4, Y%d, Y%d", r, r)
		}
	}
	reduceStore(f, R)
	gemvRowEnd(f, R)
}

// genGemvQ8_0 writes out[r] = dot(Q8_0 row r, Q8_0 activation row) for
// rows in groups of R. VNNI kernels offset the weights by 128 to make
// them unsigned and subtract 128Σa; the AVX2 kernel moves the weights'
// signs onto the activations (vpsignb) and multiplies magnitudes.
func genGemvQ8_0(f *file, x isa, R int) {
	name := fmt.Sprintf("gemvQ8_0%sR%d", x.name, R)
	gemvProlog(f, name, R, fmt.Sprintf("%s multiplies Q8_0 rows, %d at a time, by a Q8_0 activation row.", name, R))
	var bias, ones, act, corr, da, zero int
	if x.zmm {
		bias, ones, act, corr, da, zero = 30, 29, 28, 27, 26, 25
	} else {
		bias, ones, act, corr, da, zero = 10, 11, 13, 14, 12, 9
	}
	if x.vnni {
		f.splat(x, bias, 0x80808080)
	} else {
		f.splat(x, ones, 0x00010001)
	}
	f.ins("VPXOR %s, %s, %s", X(min(zero, 15)), X(min(zero, 15)), X(min(zero, 15)))
	if x.zmm {
		f.ins("VPXORD %s, %s, %s", Z(zero), Z(zero), Z(zero))
	}
	gemvRowStart(f, R)
	for r := range R {
		f.ins("VXORPS %s, %s, %s", x.v(r), x.v(r), x.v(r))
		if x.zmm {
			f.ins("VXORPS %s, %s, %s", Z(8+r), Z(8+r), Z(8+r))
		}
	}
	if x.zmm {
		wordIdx(f, "q80qs", 24, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
			48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63)
		wordIdx(f, "q80ds", 23, 0, 0, 0, 0, 0, 0, 0, 0, 17, 17, 17, 17, 17, 17, 17, 17)
		f.ins("SHRQ $1, CX")
		f.ins("JZ odd")
		f.label("pairs")
		gemvPrefetch(f, R, 68*R)
		f.ins("VMOVDQU64 (DI), %s", Z(act))
		f.ins("VMOVDQU64 4(DI), Z4")
		f.ins("VPERMW %s, Z23, Z5", Z(act))
		f.ins("VPERMT2W Z4, Z24, %s", Z(act))
		f.ins("VPXORD %s, %s, %s", Z(corr), Z(corr), Z(corr))
		f.ins("VPDPBUSD %s, %s, %s", Z(act), Z(bias), Z(corr))
		f.ins("VPSUBD %s, %s, %s", Z(corr), Z(zero), Z(corr))
		f.ins("VCVTPH2PS Y5, %s", Z(da))
		for r := range R {
			q, s, d := 12, 13, 14
			f.ins("VMOVDQU64 %s, Z%d", rowMem(0, r), q)
			f.ins("VMOVDQU64 %s, Z%d", rowMem(4, r), s)
			f.ins("VPERMW Z%d, Z23, Z%d", q, d)
			f.ins("VPERMT2W Z%d, Z24, Z%d", s, q)
			f.ins("VPXORD %s, Z%d, Z%d", Z(bias), q, q)
			f.ins("VMOVDQA32 %s, Z%d", Z(corr), s)
			f.ins("VPDPBUSD %s, Z%d, Z%d", Z(act), q, s)
			f.ins("VCVTDQ2PS Z%d, Z%d", s, s)
			f.ins("VCVTPH2PS Y%d, Z%d", d, d)
			f.ins("VMULPS %s, Z%d, Z%d", Z(da), d, d)
			f.ins("VFMADD231PS Z%d, Z%d, Z%d", d, s, r)
		}
		f.ins("ADDQ $68, SI")
		if R == 4 {
			f.ins("ADDQ $68, R9")
		}
		f.ins("ADDQ $68, DI")
		f.ins("DECQ CX")
		f.ins("JNZ pairs")
		f.label("odd")
		f.ins("TESTQ $1, R12")
		f.ins("JZ reduce")
	} else {
		f.label("blocks")
		gemvPrefetch(f, R, 34*R)
	}
	f.ins("%s 2(DI), %s", movdqu(x), Y(act))
	switch {
	case x.vnni && x.vex:
		f.ins("VPXOR %s, %s, %s", Y(corr), Y(corr), Y(corr))
		f.vexDpbusd(corr, bias, act)
		f.ins("VPSUBD %s, %s, %s", Y(corr), Y(zero), Y(corr))
	case x.vnni:
		f.ins("VPXORD %s, %s, %s", Y(corr), Y(corr), Y(corr))
		f.ins("VPDPBUSD %s, %s, %s", Y(act), Y(bias), Y(corr))
		f.ins("VPSUBD %s, %s, %s", Y(corr), Y(zero), Y(corr))
	}
	f.ins("VPBROADCASTW (DI), X4")
	f.ins("VCVTPH2PS X4, %s", Y(da))
	for r := range R {
		q, s, d := 4, 5, 6
		f.ins("VMOVDQU %s, Y%d", rowMem(2, r), q)
		switch {
		case x.vnni && x.vex:
			f.ins("VPXOR %s, Y%d, Y%d", Y(bias), q, q)
			f.ins("VMOVDQA %s, Y%d", Y(corr), s)
			f.vexDpbusd(s, q, act)
		case x.vnni:
			f.ins("VPXORD %s, Y%d, Y%d", Y(bias), q, q)
			f.ins("VMOVDQA32 %s, Y%d", Y(corr), s)
			f.ins("VPDPBUSD %s, Y%d, Y%d", Y(act), q, s)
		default:
			f.ins("VPSIGNB Y%d, %s, Y%d", q, Y(act), s)
			f.ins("VPABSB Y%d, Y%d", q, q)
			f.ins("VPMADDUBSW Y%d, Y%d, Y%d", s, q, s)
			f.ins("VPMADDWD %s, Y%d, Y%d", Y(ones), s, s)
		}
		f.ins("VCVTDQ2PS Y%d, Y%d", s, s)
		f.ins("VPBROADCASTW %s, X%d", rowMem(0, r), d)
		f.ins("VCVTPH2PS X%d, Y%d", d, d)
		f.ins("VMULPS %s, Y%d, Y%d", Y(da), d, d)
		accr := r
		if x.zmm {
			accr = 8 + r
		}
		f.ins("VFMADD231PS Y%d, Y%d, Y%d", d, s, accr)
	}
	if !x.zmm {
		f.ins("ADDQ $34, SI")
		if R == 4 {
			f.ins("ADDQ $34, R9")
		}
		f.ins("ADDQ $34, DI")
		f.ins("DECQ CX")
		f.ins("JNZ blocks")
	} else {
		f.label("reduce")
		for r := range R {
			f.ins("VADDPS Z%d, Z%d, Z%d", 8+r, r, r)
			f.ins("VEXTRACTF64X4 $1, Z%d, Y4", r)
			f.ins("VADDPS Y4, Y%d, Y%d", r, r)
		}
	}
	reduceStore(f, R)
	gemvRowEnd(f, R)
}

// genGemvQ6_KZmm writes the 512-bit Q6_K × Q8_K GEMV, one row at a time:
// per super-block it unpacks the 256 6-bit quants (unsigned, 0..63) into
// four vectors in element order, multiplies them with the activation
// (vpmaddubsw), applies the 16 sub-block scales as int16 factors of
// vpmaddwd, and subtracts 32 * Σ scale[j] * bsums[j].
func genGemvQ6_KZmm(f *file) {
	name := "gemvQ6_KAvx512"
	gemvProlog(f, name, 1, name+" multiplies Q6_K rows by a Q8_K activation row (AVX512BW).")
	f.splat(avx512, 31, 0x0f0f0f0f)
	f.splat(avx512, 30, 0x30303030)
	// Per-qword shifts: lanes 0-3 hold the bits of the first 32 elements
	// of a quarter, lanes 4-7 those of the second.
	f.ins("MOVQ $4, AX")
	f.ins("VPBROADCASTQ AX, Y29")
	f.ins("MOVQ $2, AX")
	f.ins("VPBROADCASTQ AX, Y28")
	f.ins("VINSERTI64X4 $1, Y28, Z29, Z29") // shl: [4 x4, 2 x4]
	f.ins("VPXORD Y27, Y27, Y27")
	f.ins("VINSERTI64X4 $1, Y28, Z27, Z28") // shr: [0 x4, 2 x4]
	// vpermw indexes: word l of vector v takes scale 4v + l/8.
	for v := range 4 {
		var w [8]uint64
		for l := range 32 {
			w[l/4] |= uint64(4*v+l/8) << (16 * (l % 4))
		}
		f.data(fmt.Sprintf("q6kperm%d", v), w[:]...)
		f.ins("VMOVDQU64 q6kperm%d<>(SB), Z%d", v, 24+v)
	}
	gemvRowStart(f, 1)
	f.ins("VXORPS Z0, Z0, Z0")
	f.label("blocks")
	f.ins("VMOVDQU64 0(SI), Z4")
	f.ins("VMOVDQU64 64(SI), Z5")
	f.ins("VMOVDQU64 128(SI), Z6")
	f.ins("VSHUFI64X2 $0x44, Z6, Z6, Z7")
	f.ins("VSHUFI64X2 $0xee, Z6, Z6, Z6")
	orAnd := ternImm(func(a, b, c bool) bool { return a && c || b })
	// Half h: low bits in Z4/Z5, high bits in Z7/Z6.
	for h, regs := range [][2]int{{4, 7}, {5, 6}} {
		L, H := regs[0], regs[1]
		hi := 8 + 3*h
		f.ins("VPSRLW $4, Z%d, Z%d", L, hi)
		f.ins("VPSLLVQ Z29, Z%d, Z%d", H, 14)
		f.ins("VPANDD Z30, Z14, Z14")
		f.ins("VPTERNLOGD $0x%02x, Z31, Z14, Z%d", orAnd, L)
		f.ins("VPSRLVQ Z28, Z%d, Z%d", H, 15)
		f.ins("VPANDD Z30, Z15, Z15")
		f.ins("VPTERNLOGD $0x%02x, Z31, Z15, Z%d", orAnd, hi)
	}
	// Quants of elements 0-63, 64-127, 128-191, 192-255.
	qv := []int{4, 8, 5, 11}
	f.ins("VPMOVSXBW 192(SI), Y12")
	for v := range 4 {
		f.ins("VPERMW Z12, Z%d, Z%d", 24+v, 16+v)
		f.ins("VPMADDUBSW %d(DI), Z%d, Z%d", 4+64*v, qv[v], qv[v])
		f.ins("VPMADDWD Z%d, Z%d, Z%d", 16+v, qv[v], qv[v])
	}
	f.ins("VPADDD Z8, Z4, Z4")
	f.ins("VPADDD Z11, Z5, Z5")
	f.ins("VPADDD Z5, Z4, Z4")
	f.ins("VPMADDWD 260(DI), Y12, Y13")
	f.ins("VPSLLD $5, Y13, Y13")
	f.ins("VPSUBD Z13, Z4, Z4")
	f.ins("VCVTDQ2PS Z4, Z4")
	f.ins("VPBROADCASTW 208(SI), X14")
	f.ins("VCVTPH2PS X14, X14")
	f.ins("VMULSS (DI), X14, X14")
	f.ins("VBROADCASTSS X14, Z14")
	f.ins("VFMADD231PS Z14, Z4, Z0")
	f.ins("ADDQ $210, SI")
	f.ins("ADDQ $292, DI")
	f.ins("DECQ CX")
	f.ins("JNZ blocks")
	f.ins("VEXTRACTF64X4 $1, Z0, Y4")
	f.ins("VADDPS Y4, Y0, Y0")
	reduceStore(f, 1)
	gemvRowEnd(f, 1)
}

// genGemvQ6_KYmm is genGemvQ6_KZmm for AVX2, 32 elements per vector.
func genGemvQ6_KYmm(f *file) {
	name := "gemvQ6_KAvx2"
	gemvProlog(f, name, 1, name+" multiplies Q6_K rows by a Q8_K activation row (AVX2).")
	f.splat(avx2, 15, 0x0f0f0f0f)
	f.splat(avx2, 14, 0x30303030)
	// vpshufb indexes: vector v takes scales 2v (words 0-7) and 2v+1.
	var w []uint64
	for v := range 8 {
		lo := uint64(2*v) * 0x0101010101010101
		hi := uint64(2*v+1) * 0x0101010101010101
		w = append(w, lo, hi)
	}
	f.data("q6kshuf", w...)
	gemvRowStart(f, 1)
	f.ins("VXORPS Y0, Y0, Y0")
	f.ins("VPXOR Y1, Y1, Y1")
	f.label("blocks")
	f.ins("VBROADCASTI128 192(SI), Y12")
	for h := range 2 {
		f.ins("VMOVDQU %d(SI), Y4", 64*h)
		f.ins("VMOVDQU %d(SI), Y5", 64*h+32)
		f.ins("VMOVDQU %d(SI), Y6", 128+32*h)
		// v0 = Lq0&15 | (H<<4)&0x30, v1 = Lq1&15 | (H<<2)&0x30,
		// v2 = Lq0>>4&15 | H&0x30, v3 = Lq1>>4&15 | (H>>2)&0x30.
		f.ins("VPSLLW $4, Y6, Y7")
		f.ins("VPAND Y14, Y7, Y7")
		f.ins("VPAND Y15, Y4, Y8")
		f.ins("VPOR Y7, Y8, Y8")
		f.ins("VPSLLW $2, Y6, Y7")
		f.ins("VPAND Y14, Y7, Y7")
		f.ins("VPAND Y15, Y5, Y9")
		f.ins("VPOR Y7, Y9, Y9")
		f.ins("VPSRLW $4, Y4, Y4")
		f.ins("VPAND Y15, Y4, Y4")
		f.ins("VPAND Y14, Y6, Y7")
		f.ins("VPOR Y7, Y4, Y4")
		f.ins("VPSRLW $4, Y5, Y5")
		f.ins("VPAND Y15, Y5, Y5")
		f.ins("VPSRLW $2, Y6, Y7")
		f.ins("VPAND Y14, Y7, Y7")
		f.ins("VPOR Y7, Y5, Y5")
		for i, q := range []int{8, 9, 4, 5} {
			v := 4*h + i
			f.ins("VPSHUFB q6kshuf<>+%d(SB), X12, X13", 16*v)
			f.ins("VPMOVSXBW X13, Y13")
			f.ins("VPMADDUBSW %d(DI), Y%d, Y%d", 4+32*v, q, q)
			f.ins("VPMADDWD Y13, Y%d, Y%d", q, q)
			f.ins("VPADDD Y%d, Y1, Y1", q)
		}
	}
	f.ins("VPMOVSXBW 192(SI), Y13")
	f.ins("VPMADDWD 260(DI), Y13, Y13")
	f.ins("VPSLLD $5, Y13, Y13")
	f.ins("VPSUBD Y13, Y1, Y1")
	f.ins("VCVTDQ2PS Y1, Y1")
	f.ins("VPBROADCASTW 208(SI), X2")
	f.ins("VCVTPH2PS X2, X2")
	f.ins("VMULSS (DI), X2, X2")
	f.ins("VBROADCASTSS X2, Y2")
	f.ins("VFMADD231PS Y2, Y1, Y0")
	f.ins("VPXOR Y1, Y1, Y1")
	f.ins("ADDQ $210, SI")
	f.ins("ADDQ $292, DI")
	f.ins("DECQ CX")
	f.ins("JNZ blocks")
	reduceStore(f, 1)
	gemvRowEnd(f, 1)
}

// ternImm returns the vpternlogd immediate of f(A, B, C), where A is the
// destination operand (last in Go syntax), B the middle and C the first.
func ternImm(fn func(a, b, c bool) bool) uint8 {
	var imm uint8
	for i := range 8 {
		if fn(i&4 != 0, i&2 != 0, i&1 != 0) {
			imm |= 1 << i
		}
	}
	return imm
}

// genDotFloat writes the dot product of n float weights (F32, F16 or
// BF16) with n float32 activations, n a multiple of 4 vectors; four
// accumulators hide the FMA latency.
func genDotFloat(f *file, x isa, kind string) {
	name := fmt.Sprintf("dot%s%s", kind, x.name)
	wsize := 4
	if kind != "F32" {
		wsize = 2
	}
	step := 4 * x.lanes() // elements per iteration
	f.fnRet(name, "w *byte, a *float32, n int", "float32",
		fmt.Sprintf("%s returns the dot product of n %s weights and n float32 activations; n is a multiple of %d.", name, kind, step))
	f.ins("MOVQ w+0(FP), SI")
	f.ins("MOVQ a+8(FP), DI")
	f.ins("MOVQ n+16(FP), CX")
	for i := range 4 {
		f.ins("VXORPS %s, %s, %s", x.v(i), x.v(i), x.v(i))
	}
	f.label("loop")
	vb := 4 * x.lanes() // bytes of one activation vector
	for i := range 4 {
		wv := x.v(4 + i)
		woff := i * x.lanes() * wsize
		switch kind {
		case "F32":
			f.ins("VMOVUPS %d(SI), %s", woff, wv)
		case "F16":
			f.ins("VCVTPH2PS %d(SI), %s", woff, wv)
		case "BF16":
			f.ins("VPMOVZXWD %d(SI), %s", woff, wv)
			f.ins("VPSLLD $16, %s, %s", wv, wv)
		}
		f.ins("VFMADD231PS %d(DI), %s, %s", i*vb, wv, x.v(i))
	}
	f.ins("ADDQ $%d, SI", step*wsize)
	f.ins("ADDQ $%d, DI", step*4)
	f.ins("SUBQ $%d, CX", step)
	f.ins("JNZ loop")
	f.ins("VADDPS %s, %s, %s", x.v(1), x.v(0), x.v(0))
	f.ins("VADDPS %s, %s, %s", x.v(3), x.v(2), x.v(2))
	f.ins("VADDPS %s, %s, %s", x.v(2), x.v(0), x.v(0))
	if x.zmm {
		f.ins("VEXTRACTF64X4 $1, Z0, Y1")
		f.ins("VADDPS Y1, Y0, Y0")
	}
	f.ins("VEXTRACTF128 $1, Y0, X1")
	f.ins("VADDPS X1, X0, X0")
	f.ins("VHADDPS X0, X0, X0")
	f.ins("VHADDPS X0, X0, X0")
	f.ins("VZEROUPPER")
	f.ins("MOVSS X0, ret+24(FP)")
	f.ins("RET")
}

// genQuantQ8_0 writes the AVX2 Q8_0 quantizer, bit-identical with
// QuantizeQ8_0: d = amax/127 (IEEE division), id = 1/d (0 if d is 0), the
// f16 of d by F16C (which agrees with Float32ToFP16 but for NaN), and
// q = (int8)roundf(x*id) with roundf's halves away from zero and
// x86-64's conversion of out-of-range values (to 0x80000000, whose low byte
// is 0). A block with a NaN, whose amax depends on the order of the scan,
// ends the call: it returns the number of blocks done and the caller
// quantizes the NaN block in Go.
func genQuantQ8_0(f *file) {
	name := "quantQ8_0Avx2"
	f.fnRet(name, "dst *byte, src *float32, nb int", "int",
		name+" quantizes nb blocks of 32 float32 to Q8_0, stopping before the first block that holds a NaN; it returns the number of blocks done.")
	f.ins("MOVQ dst+0(FP), DI")
	f.ins("MOVQ src+8(FP), SI")
	f.ins("MOVQ nb+16(FP), CX")
	f.ins("XORQ R8, R8")
	f.splat(avx2, 15, 0x7fffffff) // abs mask
	f.splat(avx2, 14, 0x3f000000) // 0.5
	f.splat(avx2, 13, 0xbf000000) // -0.5
	f.splat(avx2, 12, 0x80000000) // int32 min
	f.splat(avx2, 11, 0x000000ff) // byte mask
	f.ins("MOVL $0x42fe0000, AX") // 127.0
	f.ins("VMOVD AX, X10")
	f.ins("MOVL $0x3f800000, AX") // 1.0
	f.ins("VMOVD AX, X9")
	f.ins("TESTQ CX, CX")
	f.ins("JZ done")
	f.label("block")
	for i := range 4 {
		f.ins("VMOVUPS %d(SI), Y%d", 32*i, i)
	}
	// NaN check.
	f.ins("VCMPPS $3, Y0, Y0, Y4")
	f.ins("VCMPPS $3, Y1, Y1, Y5")
	f.ins("VCMPPS $3, Y2, Y2, Y6")
	f.ins("VCMPPS $3, Y3, Y3, Y7")
	f.ins("VORPS Y5, Y4, Y4")
	f.ins("VORPS Y7, Y6, Y6")
	f.ins("VORPS Y6, Y4, Y4")
	f.ins("VPTEST Y4, Y4")
	f.ins("JNZ done")
	// amax
	for i := range 4 {
		f.ins("VANDPS Y15, Y%d, Y%d", i, 4+i)
	}
	f.ins("VMAXPS Y5, Y4, Y4")
	f.ins("VMAXPS Y7, Y6, Y6")
	f.ins("VMAXPS Y6, Y4, Y4")
	f.ins("VEXTRACTF128 $1, Y4, X5")
	f.ins("VMAXPS X5, X4, X4")
	f.ins("VPERMILPS $0x4e, X4, X5")
	f.ins("VMAXPS X5, X4, X4")
	f.ins("VPERMILPS $0xb1, X4, X5")
	f.ins("VMAXPS X5, X4, X4")
	// d = amax/127, stored as f16; id = d != 0 ? 1/d : 0.
	f.ins("VDIVSS X10, X4, X5")
	f.ins("VCVTPS2PH $0, X5, X6")
	f.ins("VMOVD X6, AX")
	f.ins("MOVW AX, (DI)")
	f.ins("VDIVSS X5, X9, X6")
	f.ins("VXORPS X7, X7, X7")
	f.ins("VCMPSS $4, X7, X5, X7")
	f.ins("VANDPS X7, X6, X6")
	f.ins("VBROADCASTSS X6, Y6")
	for i := range 4 {
		y := Y(i)
		f.ins("VMULPS Y6, %s, %s", y, y) // p = x*id
		f.ins("VCVTTPS2DQ %s, Y7", y)    // t = trunc(p)
		f.ins("VPCMPEQD Y12, Y7, Y8")    // t == 0x80000000: out of range
		f.ins("VCVTDQ2PS Y7, Y4")
		f.ins("VSUBPS Y4, %s, Y4", y)    // frac = p - t
		f.ins("VCMPPS $13, Y14, Y4, Y5") // frac >= 0.5
		f.ins("VPSUBD Y5, Y7, Y7")
		f.ins("VCMPPS $2, Y13, Y4, Y5") // frac <= -0.5
		f.ins("VPADDD Y5, Y7, Y7")
		f.ins("VPANDN Y7, Y8, Y7")
		f.ins("VPAND Y11, Y7, %s", y) // the low byte, as roundToInt8's int8()
	}
	f.ins("VPACKUSDW Y1, Y0, Y0")
	f.ins("VPACKUSDW Y3, Y2, Y2")
	f.ins("VPACKUSWB Y2, Y0, Y0")
	f.data("q80perm", 0x0000000400000000, 0x0000000500000001, 0x0000000600000002, 0x0000000700000003)
	f.ins("VMOVDQU q80perm<>(SB), Y1")
	f.ins("VPERMD Y0, Y1, Y0")
	f.ins("VMOVDQU Y0, 2(DI)")
	f.ins("ADDQ $128, SI")
	f.ins("ADDQ $34, DI")
	f.ins("INCQ R8")
	f.ins("DECQ CX")
	f.ins("JNZ block")
	f.label("done")
	f.ins("VZEROUPPER")
	f.ins("MOVQ R8, ret+24(FP)")
	f.ins("RET")
}

// packRow returns the address of byte off of row r (0..15) of a panel
// being packed, from the bases SI (row 0), R8 (row 3), R9 (row 6), R10
// (row 9) and R11 (row 11) and the row stride BX.
func packRow(off, r int) string {
	ref := [16]struct {
		base  string
		scale int
	}{
		{"SI", 0}, {"SI", 1}, {"SI", 2}, {"R8", 0}, {"SI", 4}, {"R8", 2}, {"R9", 0}, {"R8", 4},
		{"SI", 8}, {"R10", 0}, {"R9", 4}, {"R11", 0}, {"R11", 1}, {"R10", 4}, {"R9", 8}, {"R11", 4},
	}[r]
	if ref.scale == 0 {
		return fmt.Sprintf("%d(%s)", off, ref.base)
	}
	return fmt.Sprintf("%d(%s)(BX*%d)", off, ref.base, ref.scale)
}

// genPack writes the packer of a full panel (P = lanes rows) of Q4_0 or
// Q8_0 weights into the tile layout (see quant/tile.go): for each 16 bytes
// of quants (one Q4_0 block; half a Q8_0 block) it loads the four dwords of
// every row so that register i holds rows i, 4+i, 8+i, 12+i in its 128-bit
// lanes, transposes the 4×4 dwords within each lane (so that register g
// holds dword g of rows 0..P-1 in order), and then splits the nibbles
// (Q4_0: low nibbles are elements 4g..4g+3, high ones 16+4g..) or offsets
// the bytes by 128 (Q8_0). The block scales are gathered and widened to
// float32.
func genPack(f *file, x isa, q8 bool) {
	P := x.lanes()
	typ, blk, off := "Q4_0", 18, 8
	if q8 {
		typ, blk, off = "Q8_0", 34, 128
	}
	name := fmt.Sprintf("pack%s%s", typ, x.name)
	f.fn(name, "dst, w *byte, rowBytes, nb int",
		fmt.Sprintf("%s packs %d %s rows (rowBytes apart) of nb blocks into a tile panel, with quants offset by %d.", name, P, typ, off))
	f.ins("MOVQ dst+0(FP), DI")
	f.ins("MOVQ w+8(FP), SI")
	f.ins("MOVQ rowBytes+16(FP), BX")
	f.ins("MOVQ nb+24(FP), CX")
	f.ins("LEAQ (SI)(BX*2), R8")
	f.ins("ADDQ BX, R8") // row 3
	f.ins("LEAQ (R8)(BX*2), R9")
	f.ins("ADDQ BX, R9") // row 6
	f.ins("LEAQ (R9)(BX*2), R10")
	f.ins("ADDQ BX, R10")          // row 9
	f.ins("LEAQ (R10)(BX*2), R11") // row 11
	if q8 {
		f.splat(x, 15, 0x80808080)
	} else {
		f.splat(x, 15, 0x0f0f0f0f)
	}
	// Gather offsets r*rowBytes.
	{
		f.data("iota16", 0x0000000100000000, 0x0000000300000002, 0x0000000500000004, 0x0000000700000006,
			0x0000000900000008, 0x0000000b0000000a, 0x0000000d0000000c, 0x0000000f0000000e)
	}
	if x.zmm {
		f.ins("VPBROADCASTD BX, Z14")
		f.ins("VPMULLD iota16<>(SB), Z14, Z14")
	} else {
		f.ins("VMOVD BX, X14")
		f.ins("VPBROADCASTD X14, Y14")
		f.ins("VPMULLD iota16<>(SB), Y14, Y14")
	}
	halves := 1
	if q8 {
		halves = 2
	}
	// The next panel follows this one: prefetch it in step, P*blk bytes
	// per block (see gemvPrefetch).
	f.ins("MOVQ BX, R14")
	f.ins("IMULQ $%d, R14", P)
	f.ins("ADDQ SI, R14")
	f.label("loop")
	for off := 0; off < P*blk; off += 64 {
		f.ins("PREFETCHT0 %d(R14)", off)
	}
	f.ins("ADDQ $%d, R14", P*blk)
	for h := range halves {
		qoff := 2 + 16*h
		for i := range 4 {
			f.ins("VMOVDQU %s, X%d", packRow(qoff, i), i)
			if x.zmm {
				for l := 1; l < 4; l++ {
					f.ins("VINSERTI32X4 $%d, %s, Z%d, Z%d", l, packRow(qoff, 4*l+i), i, i)
				}
			} else {
				f.ins("VINSERTI128 $1, %s, Y%d, Y%d", packRow(qoff, 4+i), i, i)
			}
		}
		v := x.v
		f.ins("VPUNPCKLDQ %s, %s, %s", v(1), v(0), v(4))
		f.ins("VPUNPCKHDQ %s, %s, %s", v(1), v(0), v(5))
		f.ins("VPUNPCKLDQ %s, %s, %s", v(3), v(2), v(6))
		f.ins("VPUNPCKHDQ %s, %s, %s", v(3), v(2), v(7))
		f.ins("VPUNPCKLQDQ %s, %s, %s", v(6), v(4), v(0))
		f.ins("VPUNPCKHQDQ %s, %s, %s", v(6), v(4), v(1))
		f.ins("VPUNPCKLQDQ %s, %s, %s", v(7), v(5), v(2))
		f.ins("VPUNPCKHQDQ %s, %s, %s", v(7), v(5), v(3))
		and, xor, mov := "VPAND", "VPXOR", "VMOVDQU"
		if x.zmm {
			and, xor, mov = "VPANDD", "VPXORD", "VMOVDQU32"
		}
		for g := range 4 {
			if q8 {
				f.ins("%s %s, %s, %s", xor, v(15), v(g), v(g))
				f.ins("%s %s, %d(DI)", mov, v(g), (4*h+g)*4*P)
				continue
			}
			f.ins("VPSRLW $4, %s, %s", v(g), v(8+g))
			f.ins("%s %s, %s, %s", and, v(15), v(g), v(g))
			f.ins("%s %s, %s, %s", and, v(15), v(8+g), v(8+g))
			f.ins("%s %s, %d(DI)", mov, v(g), g*4*P)
			f.ins("%s %s, %d(DI)", mov, v(8+g), (g+4)*4*P)
		}
	}
	// Scales: the dword at the start of each row's block holds d.
	if x.zmm {
		f.ins("KXNORW K1, K1, K1")
		f.ins("VPGATHERDD (SI)(Z14*1), K1, Z12")
		f.ins("VPMOVDW Z12, Y12")
		f.ins("VCVTPH2PS Y12, Z12")
		f.ins("VMOVUPS Z12, %d(DI)", 32*P)
	} else {
		f.ins("VPCMPEQD Y13, Y13, Y13")
		f.ins("VPGATHERDD Y13, (SI)(Y14*1), Y12")
		f.ins("VPSLLD $16, Y12, Y12")
		f.ins("VPSRLD $16, Y12, Y12")
		f.ins("VPACKUSDW Y12, Y12, Y12")
		f.ins("VPERMQ $0x08, Y12, Y12")
		f.ins("VCVTPH2PS X12, Y12")
		f.ins("VMOVUPS Y12, %d(DI)", 32*P)
	}
	for _, r := range []string{"SI", "R8", "R9", "R10", "R11"} {
		f.ins("ADDQ $%d, %s", blk, r)
	}
	f.ins("ADDQ $%d, DI", P*(32+4))
	f.ins("DECQ CX")
	f.ins("JNZ loop")
	f.ins("VZEROUPPER")
	f.ins("RET")
}

// wordIdx defines a table of 16-bit permutation indexes (padded with
// zeros to 32) and loads it into zmm register r. For vpermt2w, indexes
// below 32 (16 in the ymm form) select words of the first table, which is
// the destination (last in Go's operand order), and the others words of
// the second table, the instruction's first operand.
func wordIdx(f *file, name string, r int, idx ...int) {
	var w [8]uint64
	for i, v := range idx {
		w[i/4] |= uint64(v) << (16 * (i % 4))
	}
	f.data(name, w[:]...)
	f.ins("VMOVDQU64 %s<>(SB), Z%d", name, r)
}

// gemvPrefetch prefetches the next group of R rows, which follows the
// current one in memory, in step with the reading of the current group:
// step bytes per iteration from R14. A group's rows are read side by side,
// short interleaved streams that the hardware prefetchers of some cores
// (this one's included) follow poorly: without it, a GEMV of weights that
// are not in the caches ran at a quarter of the memory bandwidth.
func gemvPrefetch(f *file, R, step int) {
	if R == 1 {
		return // one sequential stream
	}
	for off := 0; off < step; off += 64 {
		f.ins("PREFETCHT0 %d(R14)", off)
	}
	f.ins("ADDQ $%d, R14", step)
}

// packChunk loads 16 bytes at off of each of the P rows so that register
// dst[i] ends holding dword i of those bytes for rows 0..P-1 in order (a
// 4×4 dword transpose within each 128-bit lane), using tmp[0..3].
func packChunk(f *file, x isa, off int, dst, tmp [4]int) {
	v := x.v
	for i := range 4 {
		f.ins("VMOVDQU %s, X%d", packRow(off, i), dst[i])
		if x.zmm {
			for l := 1; l < 4; l++ {
				f.ins("VINSERTI32X4 $%d, %s, Z%d, Z%d", l, packRow(off, 4*l+i), dst[i], dst[i])
			}
		} else {
			f.ins("VINSERTI128 $1, %s, Y%d, Y%d", packRow(off, 4+i), dst[i], dst[i])
		}
	}
	f.ins("VPUNPCKLDQ %s, %s, %s", v(dst[1]), v(dst[0]), v(tmp[0]))
	f.ins("VPUNPCKHDQ %s, %s, %s", v(dst[1]), v(dst[0]), v(tmp[1]))
	f.ins("VPUNPCKLDQ %s, %s, %s", v(dst[3]), v(dst[2]), v(tmp[2]))
	f.ins("VPUNPCKHDQ %s, %s, %s", v(dst[3]), v(dst[2]), v(tmp[3]))
	f.ins("VPUNPCKLQDQ %s, %s, %s", v(tmp[2]), v(tmp[0]), v(dst[0]))
	f.ins("VPUNPCKHQDQ %s, %s, %s", v(tmp[2]), v(tmp[0]), v(dst[1]))
	f.ins("VPUNPCKLQDQ %s, %s, %s", v(tmp[3]), v(tmp[1]), v(dst[2]))
	f.ins("VPUNPCKHQDQ %s, %s, %s", v(tmp[3]), v(tmp[1]), v(dst[3]))
}

// genPackQ6_K writes the packer of a full panel of Q6_K rows into the
// 16-element-block tile layout, quants unsigned (0..63, off = 32) and
// scales d*scale[j]. Four consecutive elements 32m+l..+3 of half h of a
// super-block take their low bits from one dword of ql (at 64h+32(m%2)+l,
// nibble m/2) and their high bits from one dword of qh (at 32h+l, bits
// 2m..2m+1), so the raw bytes are transposed across the rows sixteen at a
// time (packChunk) and decoded with the rows in the lanes.
func genPackQ6_K(f *file, x isa) {
	P := x.lanes()
	name := fmt.Sprintf("packQ6_K%s", x.name)
	f.fn(name, "dst, w *byte, rowBytes, nsb int",
		fmt.Sprintf("%s packs %d Q6_K rows (rowBytes apart) of nsb super-blocks into a tile panel of 16-element blocks.", name, P))
	f.ins("MOVQ dst+0(FP), DI")
	f.ins("MOVQ w+8(FP), SI")
	f.ins("MOVQ rowBytes+16(FP), BX")
	f.ins("MOVQ nsb+24(FP), CX")
	f.ins("LEAQ (SI)(BX*2), R8")
	f.ins("ADDQ BX, R8")
	f.ins("LEAQ (R8)(BX*2), R9")
	f.ins("ADDQ BX, R9")
	f.ins("LEAQ (R9)(BX*2), R10")
	f.ins("ADDQ BX, R10")
	f.ins("LEAQ (R10)(BX*2), R11")
	v := x.v
	f.splat(x, 15, 0x0f0f0f0f)
	f.splat(x, 14, 0x30303030)
	if x.zmm {
		f.ins("VPBROADCASTD BX, Z13")
		f.ins("VPMULLD iota16<>(SB), Z13, Z13")
	} else {
		f.ins("VMOVD BX, X13")
		f.ins("VPBROADCASTD X13, Y13")
		f.ins("VPMULLD iota16<>(SB), Y13, Y13")
	}
	and, or, mov := "VPAND", "VPOR", "VMOVDQU"
	if x.zmm {
		and, or, mov = "VPANDD", "VPORD", "VMOVDQU32"
	}
	bs := P * (16 + 4) // bytes of one 16-element block of the panel
	ql, qh, tmp := [4]int{0, 1, 2, 3}, [4]int{4, 5, 6, 7}, [4]int{8, 9, 10, 11}
	f.ins("MOVQ BX, R14")
	f.ins("IMULQ $%d, R14", P)
	f.ins("ADDQ SI, R14")
	f.label("loop")
	for off := 0; off < P*210; off += 64 {
		f.ins("PREFETCHT0 %d(R14)", off)
	}
	f.ins("ADDQ $%d, R14", P*210)
	for h := range 2 {
		for c := range 2 {
			packChunk(f, x, 128+32*h+16*c, qh, tmp)
			for mm := range 2 {
				packChunk(f, x, 64*h+32*mm+16*c, ql, tmp)
				for _, m := range []int{mm, mm + 2} {
					for i := range 4 {
						e := 128*h + 32*m + 4*(4*c+i)
						j, g := e/16, e%16/4
						// High bits: (qh >> 2m) << 4, masked to bits 4-5.
						hb := 8
						switch m {
						case 0:
							f.ins("VPSLLD $4, %s, %s", v(qh[i]), v(hb))
						case 1:
							f.ins("VPSLLD $2, %s, %s", v(qh[i]), v(hb))
						case 2:
							hb = qh[i]
						case 3:
							f.ins("VPSRLD $2, %s, %s", v(qh[i]), v(hb))
						}
						f.ins("%s %s, %s, %s", and, v(14), v(hb), v(9))
						lo := ql[i]
						if m >= 2 {
							f.ins("VPSRLD $4, %s, %s", v(ql[i]), v(10))
							lo = 10
						}
						if x.zmm {
							f.ins("VPTERNLOGD $0x%02x, %s, %s, %s", ternImm(func(a, b, c bool) bool { return a || b && c }), v(15), v(lo), v(9))
						} else {
							f.ins("%s %s, %s, %s", and, v(15), v(lo), v(10))
							f.ins("%s %s, %s, %s", or, v(10), v(9), v(9))
						}
						f.ins("%s %s, %d(DI)", mov, v(9), j*bs+g*4*P)
					}
				}
			}
		}
	}
	// Scales: dword i of the scale bytes holds scales 4i..4i+3 of a row;
	// d sits in the high half of the dword at 206.
	packChunk(f, x, 192, ql, tmp)
	if x.zmm {
		f.ins("KXNORW K1, K1, K1")
		f.ins("VPGATHERDD 206(SI)(Z13*1), K1, Z12")
		f.ins("VPSRLD $16, Z12, Z12")
		f.ins("VPMOVDW Z12, Y12")
		f.ins("VCVTPH2PS Y12, Z12")
	} else {
		f.ins("VPCMPEQD Y4, Y4, Y4")
		f.ins("VPGATHERDD Y4, 206(SI)(Y13*1), Y12")
		f.ins("VPSRLD $16, Y12, Y12")
		f.ins("VPACKUSDW Y12, Y12, Y12")
		f.ins("VPERMQ $0x08, Y12, Y12")
		f.ins("VCVTPH2PS X12, Y12")
	}
	for j := range 16 {
		i, b := j/4, j%4
		src := ql[i]
		if b < 3 {
			f.ins("VPSLLD $%d, %s, %s", 24-8*b, v(ql[i]), v(8))
			src = 8
		}
		f.ins("VPSRAD $24, %s, %s", v(src), v(8))
		f.ins("VCVTDQ2PS %s, %s", v(8), v(8))
		f.ins("VMULPS %s, %s, %s", v(12), v(8), v(8))
		f.ins("VMOVUPS %s, %d(DI)", v(8), j*bs+16*P)
	}
	for _, r := range []string{"SI", "R8", "R9", "R10", "R11"} {
		f.ins("ADDQ $210, %s", r)
	}
	f.ins("ADDQ $%d, DI", 16*bs)
	f.ins("DECQ CX")
	f.ins("JNZ loop")
	f.ins("VZEROUPPER")
	f.ins("RET")
}
