package main

import "fmt"

// The arm64 kernels. Two variants: "Neon" (ARMv8.0 Advanced SIMD:
// smull/smlal/sadalp) and "Dot" (with SDOT, FEAT_DotProd). SDOT multiplies
// signed by signed bytes, so the quants are used signed (q-8, q, q-32) and
// no correction is needed.

func genARM64(f *file) {
	for _, dot := range []bool{true, false} {
		for _, R := range []int{4, 1} {
			genArmGemvQ4_0(f, dot, R)
			genArmGemvQ8_0(f, dot, R)
		}
		genArmGemvQ6_K(f, dot)
	}
	for _, G := range []int{8, 4} {
		tab := fmt.Sprintf("tileDotG%d", G)
		f.goCode("// %s[T] is the %d-element-block SDOT tile kernel of T activation rows.\nvar %s = []func(w, a *byte, nb int, out *float32, outStride int){nil", tab, 4*G, tab)
		for T := 1; T <= 8; T++ {
			f.goCode(", %sT%d", tab, T)
		}
		f.goCode("}\n\n")
		for T := 1; T <= 8; T++ {
			genArmTile(f, G, T)
		}
	}
	for _, kind := range []string{"F32", "F16", "BF16"} {
		genArmDot(f, kind)
		genArmFloatTile(f, kind)
	}
	genArmQuantQ8_0(f)
	genArmPack(f, false)
	genArmPack(f, true)
}

func armName(dot bool) string {
	if dot {
		return "Dot"
	}
	return "Neon"
}

// armGemvProlog loads the GEMV arguments: R0 the current group of rows,
// R1 the row stride, R2 the activation row, R3 nb, R4 out, R5 rows left.
// In the row loop R6-R9 point at the rows, R10 at the activation, R11
// counts blocks.
func armGemvProlog(f *file, name string, doc string) {
	f.fn(name, "w *byte, rowBytes int, a *byte, nb int, out *float32, rows int", doc)
	f.ins("MOVD w+0(FP), R0")
	f.ins("MOVD rowBytes+8(FP), R1")
	f.ins("MOVD a+16(FP), R2")
	f.ins("MOVD nb+24(FP), R3")
	f.ins("MOVD out+32(FP), R4")
	f.ins("MOVD rows+40(FP), R5")
}

func armRowStart(f *file, R int) {
	f.label("rows")
	f.ins("MOVD R0, R6")
	for r := 1; r < R; r++ {
		f.ins("ADD R1, R%d, R%d", 5+r, 6+r)
	}
	if R > 1 {
		f.ins("ADD R1, R%d, R13", 5+R) // the next group, for armPrefetch
	}
	f.ins("MOVD R2, R10")
	f.ins("MOVD R3, R11")
	for r := range R {
		f.ins("VEOR V%d.B16, V%d.B16, V%d.B16", r, r, r)
	}
}

// armRowEnd sums the four lanes of accumulators V0..V(R-1), stores the R
// sums and moves to the next group of rows.
func armRowEnd(f *file, R int) {
	if R == 4 {
		f.faddp(8, 0, 1)
		f.faddp(9, 2, 3)
		f.faddp(8, 8, 9)
		f.ins("VST1.P [V8.S4], 16(R4)")
		f.ins("ADD R1<<2, R0, R0")
	} else {
		f.faddp(8, 0, 0)
		f.faddp(8, 8, 8)
		f.ins("FMOVS F8, (R4)")
		f.ins("ADD $4, R4, R4")
		f.ins("ADD R1, R0, R0")
	}
	f.ins("SUBS $%d, R5, R5", R)
	f.ins("BNE rows")
	f.ins("RET")
}

// armPrefetch prefetches the next group of R rows in step with the
// reading of the current one, step bytes per block from R13 (see
// gemvPrefetch in amd64.go).
func armPrefetch(f *file, R, step int) {
	if R == 1 {
		return
	}
	for off := 0; off < step; off += 64 {
		f.ins("PRFM %d(R13), PLDL1KEEP", off)
	}
	f.ins("ADD $%d, R13, R13", step)
}

// armF16Scale loads the f16 at (Rp) into F<d> as float32, using R12.
func armF16Scale(f *file, p string, d int) {
	f.ins("MOVHU (%s), R12", p)
	f.ins("FMOVS R12, F%d", d)
	f.ins("FCVTHS F%d, F%d", d, d)
}

// armDot16 adds to int32x4 acc the dot products of the 16 signed bytes in
// w and a (lane i: bytes 4i..4i+3), with SDOT or with smull/smlal and a
// pairwise widening add (tmp is clobbered).
func armDot16(f *file, dot bool, acc, w, a, tmp int, first bool) {
	if dot {
		if first {
			f.ins("VEOR V%d.B16, V%d.B16, V%d.B16", acc, acc, acc)
		}
		f.sdot(acc, w, a)
		return
	}
	f.smull(tmp, w, a, false)
	f.smlal(tmp, w, a, true)
	if first {
		f.saddlp(acc, tmp)
	} else {
		f.sadalp(acc, tmp)
	}
}

func genArmGemvQ4_0(f *file, dot bool, R int) {
	name := fmt.Sprintf("gemvQ4_0%sR%d", armName(dot), R)
	armGemvProlog(f, name, fmt.Sprintf("%s multiplies Q4_0 rows, %d at a time, by a Q8_0 activation row.", name, R))
	f.ins("VMOVI $15, V31.B16")
	f.ins("VMOVI $8, V30.B16")
	armRowStart(f, R)
	f.label("blocks")
	armPrefetch(f, R, 18*R)
	armF16Scale(f, "R10", 18)
	f.ins("ADD $2, R10, R10")
	f.ins("VLD1.P 32(R10), [V16.B16, V17.B16]")
	for r := range R {
		p := fmt.Sprintf("R%d", 6+r)
		armF16Scale(f, p, 19)
		f.ins("FMULS F18, F19, F19")
		f.ins("ADD $2, %s, %s", p, p)
		f.ins("VLD1.P 16(%s), [V4.B16]", p)
		f.ins("VAND V31.B16, V4.B16, V5.B16")
		f.ins("VUSHR $4, V4.B16, V6.B16")
		f.ins("VSUB V30.B16, V5.B16, V5.B16")
		f.ins("VSUB V30.B16, V6.B16, V6.B16")
		armDot16(f, dot, 7, 5, 16, 8, true)
		armDot16(f, dot, 7, 6, 17, 8, false)
		f.scvtf(7, 7)
		f.fmlaElem(r, 7, 19, 0)
	}
	f.ins("SUBS $1, R11, R11")
	f.ins("BNE blocks")
	armRowEnd(f, R)
}

func genArmGemvQ8_0(f *file, dot bool, R int) {
	name := fmt.Sprintf("gemvQ8_0%sR%d", armName(dot), R)
	armGemvProlog(f, name, fmt.Sprintf("%s multiplies Q8_0 rows, %d at a time, by a Q8_0 activation row.", name, R))
	armRowStart(f, R)
	f.label("blocks")
	armPrefetch(f, R, 34*R)
	armF16Scale(f, "R10", 18)
	f.ins("ADD $2, R10, R10")
	f.ins("VLD1.P 32(R10), [V16.B16, V17.B16]")
	for r := range R {
		p := fmt.Sprintf("R%d", 6+r)
		armF16Scale(f, p, 19)
		f.ins("FMULS F18, F19, F19")
		f.ins("ADD $2, %s, %s", p, p)
		f.ins("VLD1.P 32(%s), [V4.B16, V5.B16]", p)
		armDot16(f, dot, 7, 4, 16, 8, true)
		armDot16(f, dot, 7, 5, 17, 8, false)
		f.scvtf(7, 7)
		f.fmlaElem(r, 7, 19, 0)
	}
	f.ins("SUBS $1, R11, R11")
	f.ins("BNE blocks")
	armRowEnd(f, R)
}

// genArmGemvQ6_K writes the Q6_K × Q8_K GEMV, one row at a time. Each
// 16-element sub-block is one vector; its int32 dot product is multiplied
// by the sub-block's scale (mla by element) into an int32 accumulator per
// super-block.
func genArmGemvQ6_K(f *file, dot bool) {
	name := fmt.Sprintf("gemvQ6_K%s", armName(dot))
	armGemvProlog(f, name, name+" multiplies Q6_K rows by a Q8_K activation row.")
	f.ins("VMOVI $15, V31.B16")
	f.ins("VMOVI $48, V12.B16")
	f.ins("VMOVI $32, V13.B16")
	armRowStart(f, 1)
	f.label("blocks")
	f.ins("FMOVS (R10), F18")      // da
	f.ins("MOVHU 208(R6), R12")    // dw
	f.ins("FMOVS R12, F14")        //
	f.ins("FCVTHS F14, F14")       //
	f.ins("FMULS F18, F14, F14")   // dw*da
	f.ins("ADD $192, R6, R13")     //
	f.ins("VLD1 (R13), [V24.B16]") // 16 scales
	f.sxtlB(25, 24, false)
	f.sxtlB(26, 24, true)
	f.sxtlH(27, 25, false)
	f.sxtlH(28, 25, true)
	f.sxtlH(29, 26, false)
	f.sxtlH(30, 26, true)
	f.ins("VEOR V1.B16, V1.B16, V1.B16")
	f.ins("ADD $4, R10, R13")
	for h := range 2 {
		f.ins("ADD $%d, R6, R14", 64*h)
		f.ins("VLD1 (R14), [V4.B16, V5.B16, V6.B16, V7.B16]")
		f.ins("ADD $%d, R6, R14", 128+32*h)
		f.ins("VLD1 (R14), [V8.B16, V9.B16]")
		f.ins("VLD1.P 64(R13), [V16.B16, V17.B16, V18.B16, V19.B16]")
		f.ins("VLD1.P 64(R13), [V20.B16, V21.B16, V22.B16, V23.B16]")
		for e := range 8 {
			ql, qh := 4+e%4, 8+e%2
			// Low four bits.
			if e < 4 {
				f.ins("VAND V31.B16, V%d.B16, V2.B16", ql)
			} else {
				f.ins("VUSHR $4, V%d.B16, V2.B16", ql)
			}
			// High two bits, moved to bits 4-5.
			switch (e / 2) % 4 {
			case 0:
				f.ins("VSHL $4, V%d.B16, V3.B16", qh)
			case 1:
				f.ins("VSHL $2, V%d.B16, V3.B16", qh)
			case 2:
				f.ins("VMOV V%d.B16, V3.B16", qh)
			case 3:
				f.ins("VUSHR $2, V%d.B16, V3.B16", qh)
			}
			f.ins("VAND V12.B16, V3.B16, V3.B16")
			f.ins("VORR V3.B16, V2.B16, V2.B16")
			f.ins("VSUB V13.B16, V2.B16, V2.B16")
			armDot16(f, dot, 10, 2, 16+e, 11, true)
			j := 8*h + e
			f.mlaElem(1, 10, 27+j/4, j%4)
		}
	}
	f.scvtf(1, 1)
	f.fmlaElem(0, 1, 14, 0)
	f.ins("ADD $210, R6, R6")
	f.ins("ADD $292, R10, R10")
	f.ins("SUBS $1, R11, R11")
	f.ins("BNE blocks")
	armRowEnd(f, 1)
}

// genArmTile writes the SDOT GEMM micro-kernel for a panel of 4 weight
// rows and T activation rows (see quant/tile.go): sdot by element takes
// the four bytes of one group of an activation row straight from the
// register that holds four groups.
func genArmTile(f *file, G, T int) {
	E := 4 * G
	name := fmt.Sprintf("tileDotG%dT%d", G, T)
	f.fn(name, "w, a *byte, nb int, out *float32, outStride int",
		fmt.Sprintf("%s multiplies a panel of 4 weight rows by a tile of %d activation rows, %d-element blocks.", name, T, E))
	f.ins("MOVD w+0(FP), R0")
	f.ins("MOVD a+8(FP), R1")
	f.ins("MOVD nb+16(FP), R2")
	f.ins("MOVD out+24(FP), R3")
	f.ins("MOVD outStride+32(FP), R4")
	f.ins("LSL $2, R4, R4")
	for t := range T {
		f.ins("VEOR V%d.B16, V%d.B16, V%d.B16", 12+t, 12+t, 12+t)
	}
	f.label("loop")
	if G == 8 {
		f.ins("VLD1.P 64(R0), [V0.B16, V1.B16, V2.B16, V3.B16]")
		f.ins("VLD1.P 64(R0), [V4.B16, V5.B16, V6.B16, V7.B16]")
	} else {
		f.ins("VLD1.P 64(R0), [V0.B16, V1.B16, V2.B16, V3.B16]")
	}
	f.ins("VLD1.P 16(R0), [V8.S4]")
	f.ins("MOVD R1, R5")
	for t := range T {
		acc := 9 + t%2
		a := 20 + 2*(t%2)
		if G == 8 {
			f.ins("VLD1.P 32(R5), [V%d.B16, V%d.B16]", a, a+1)
		} else {
			f.ins("VLD1.P 16(R5), [V%d.B16]", a)
		}
		f.ins("VEOR V%d.B16, V%d.B16, V%d.B16", acc, acc, acc)
		for g := range G {
			f.sdotElem(acc, g, a+g/4, g%4)
		}
		f.scvtf(acc, acc)
		f.ins("FMOVS %d(R1), F11", T*E+4*t)
		f.fmulElem(11, 8, 11, 0)
		f.fmla(12+t, acc, 11)
	}
	f.ins("ADD $%d, R1, R1", T*(E+8))
	f.ins("SUBS $1, R2, R2")
	f.ins("BNE loop")
	for t := range T {
		f.ins("VST1 [V%d.S4], (R3)", 12+t)
		if t < T-1 {
			f.ins("ADD R4, R3, R3")
		}
	}
	f.ins("RET")
}

// genArmDot writes the dot product of n float weights (F32, F16 or BF16)
// with n float32 activations, n a multiple of 16.
func genArmDot(f *file, kind string) {
	name := "dot" + kind + "Neon"
	f.fnRet(name, "w *byte, a *float32, n int", "float32",
		fmt.Sprintf("%s returns the dot product of n %s weights and n float32 activations; n is a multiple of 16.", name, kind))
	f.ins("MOVD w+0(FP), R0")
	f.ins("MOVD a+8(FP), R1")
	f.ins("MOVD n+16(FP), R2")
	for i := range 4 {
		f.ins("VEOR V%d.B16, V%d.B16, V%d.B16", i, i, i)
	}
	f.ins("VEOR V31.B16, V31.B16, V31.B16")
	f.label("loop")
	switch kind {
	case "F32":
		f.ins("VLD1.P 64(R0), [V4.S4, V5.S4, V6.S4, V7.S4]")
	case "F16":
		f.ins("VLD1.P 32(R0), [V8.H8, V9.H8]")
		f.fcvtl(4, 8, false)
		f.fcvtl(5, 8, true)
		f.fcvtl(6, 9, false)
		f.fcvtl(7, 9, true)
	case "BF16":
		f.ins("VLD1.P 32(R0), [V8.H8, V9.H8]")
		f.ins("VZIP1 V8.H8, V31.H8, V4.H8")
		f.ins("VZIP2 V8.H8, V31.H8, V5.H8")
		f.ins("VZIP1 V9.H8, V31.H8, V6.H8")
		f.ins("VZIP2 V9.H8, V31.H8, V7.H8")
	}
	f.ins("VLD1.P 64(R1), [V16.S4, V17.S4, V18.S4, V19.S4]")
	for i := range 4 {
		f.fmla(i, 4+i, 16+i)
	}
	f.ins("SUBS $16, R2, R2")
	f.ins("BNE loop")
	f.fadd(0, 0, 1)
	f.fadd(2, 2, 3)
	f.fadd(0, 0, 2)
	f.faddp(0, 0, 0)
	f.faddp(0, 0, 0)
	f.ins("FMOVS F0, ret+24(FP)")
	f.ins("RET")
}

// genArmQuantQ8_0 writes the NEON Q8_0 quantizer, bit-identical with
// QuantizeQ8_0 (see genQuantQ8_0 for amd64): fcvtas rounds halves away from
// zero as roundf does, values whose magnitude reaches 2^31 become 0 as on
// x86-64, and a block with a NaN ends the call. When d is 0, 1/d is
// infinite and every x*id is infinite or NaN, which gives 0 as id = 0
// would.
func genArmQuantQ8_0(f *file) {
	name := "quantQ8_0Neon"
	f.fnRet(name, "dst *byte, src *float32, nb int", "int",
		name+" quantizes nb blocks of 32 float32 to Q8_0, stopping before the first block that holds a NaN; it returns the number of blocks done.")
	f.ins("MOVD dst+0(FP), R0")
	f.ins("MOVD src+8(FP), R1")
	f.ins("MOVD nb+16(FP), R2")
	f.ins("MOVD $0, R3")
	f.ins("FMOVS $127.0, F20")
	f.ins("FMOVS $1.0, F21")
	f.ins("MOVW $0x4f000000, R4") // 2^31
	f.ins("VDUP R4, V22.S4")
	f.ins("CBZ R2, done")
	f.label("block")
	f.ins("VLD1.P 64(R1), [V0.S4, V1.S4, V2.S4, V3.S4]")
	f.ins("VLD1.P 64(R1), [V4.S4, V5.S4, V6.S4, V7.S4]")
	// NaN check: x == x fails only for NaN.
	for i := range 8 {
		f.fcmeq(8+i, i, i)
	}
	f.ins("VAND V9.B16, V8.B16, V8.B16")
	f.ins("VAND V11.B16, V10.B16, V10.B16")
	f.ins("VAND V13.B16, V12.B16, V12.B16")
	f.ins("VAND V15.B16, V14.B16, V14.B16")
	f.ins("VAND V10.B16, V8.B16, V8.B16")
	f.ins("VAND V14.B16, V12.B16, V12.B16")
	f.ins("VAND V12.B16, V8.B16, V8.B16")
	f.uminv(8, 8)
	f.ins("FMOVS F8, R6")
	f.ins("CBZW R6, nan")
	// amax, d and id.
	for i := range 8 {
		f.fabs(8+i, i)
	}
	f.fmax(8, 8, 9)
	f.fmax(10, 10, 11)
	f.fmax(12, 12, 13)
	f.fmax(14, 14, 15)
	f.fmax(8, 8, 10)
	f.fmax(12, 12, 14)
	f.fmax(8, 8, 12)
	f.fmaxv(16, 8)
	f.ins("FDIVS F20, F16, F17") // d = amax/127
	f.ins("FCVTSH F17, F18")
	f.ins("FMOVS F18, R6")
	f.ins("MOVH R6, (R0)")
	f.ins("FDIVS F17, F21, F19") // id = 1/d
	for i := range 8 {
		f.fmulElem(i, i, 19, 0)
		f.fcvtas(8+i, i)
		m := 28 + i%2 // |p| >= 2^31: clear (x | m) ^ m
		f.facge(m, i, 22)
		f.ins("VORR V%d.B16, V%d.B16, V%d.B16", m, 8+i, 8+i)
		f.ins("VEOR V%d.B16, V%d.B16, V%d.B16", m, 8+i, 8+i)
	}
	f.xtnS(24, 8, false)
	f.xtnS(24, 9, true)
	f.xtnS(25, 10, false)
	f.xtnS(25, 11, true)
	f.xtnS(26, 12, false)
	f.xtnS(26, 13, true)
	f.xtnS(27, 14, false)
	f.xtnS(27, 15, true)
	f.xtnH(28, 24, false)
	f.xtnH(28, 25, true)
	f.xtnH(29, 26, false)
	f.xtnH(29, 27, true)
	f.ins("ADD $2, R0, R5")
	f.ins("VST1 [V28.B16, V29.B16], (R5)")
	f.ins("ADD $34, R0, R0")
	f.ins("ADD $1, R3, R3")
	f.ins("SUBS $1, R2, R2")
	f.ins("BNE block")
	f.label("done")
	f.ins("MOVD R3, ret+24(FP)")
	f.ins("RET")
	f.label("nan")
	f.ins("MOVD R3, ret+24(FP)")
	f.ins("RET")
}

// genArmPack writes the packer of a full 4-row panel of Q4_0 or Q8_0
// weights for the SDOT tiles: signed quants (q-8 for Q4_0, off = 0), the
// four rows' dwords transposed with trn1/trn2 so that each vector holds one
// group of four elements of the four rows, then the four scales widened
// from f16.
func genArmPack(f *file, q8 bool) {
	typ, blk := "Q4_0", 18
	if q8 {
		typ, blk = "Q8_0", 34
	}
	name := fmt.Sprintf("pack%sDot", typ)
	f.fn(name, "dst, w *byte, rowBytes, nb int",
		fmt.Sprintf("%s packs 4 %s rows (rowBytes apart) of nb blocks into an SDOT tile panel.", name, typ))
	f.ins("MOVD dst+0(FP), R0")
	f.ins("MOVD w+8(FP), R1")
	f.ins("MOVD rowBytes+16(FP), R2")
	f.ins("MOVD nb+24(FP), R6")
	f.ins("ADD R2, R1, R3")
	f.ins("ADD R2, R3, R4")
	f.ins("ADD R2, R4, R5")
	f.ins("VMOVI $15, V31.B16")
	f.ins("VMOVI $8, V30.B16")
	rows := []string{"R1", "R3", "R4", "R5"}
	f.ins("ADD R2, R5, R13") // the next panel, prefetched in step
	f.label("loop")
	for off := 0; off < 4*blk; off += 64 {
		f.ins("PRFM %d(R13), PLDL1KEEP", off)
	}
	f.ins("ADD $%d, R13, R13", 4*blk)
	for r, p := range rows {
		f.ins("MOVHU (%s), R7", p)
		f.ins("VMOV R7, V20.H[%d]", r)
		f.ins("ADD $2, %s, %s", p, p)
	}
	halves := 1
	if q8 {
		halves = 2
	}
	// transpose writes dword g of rows 0-3 of V0-V3 into V(dst+g).
	transpose := func(dst int) {
		f.ins("VTRN1 V1.S4, V0.S4, V4.S4")
		f.ins("VTRN2 V1.S4, V0.S4, V5.S4")
		f.ins("VTRN1 V3.S4, V2.S4, V6.S4")
		f.ins("VTRN2 V3.S4, V2.S4, V7.S4")
		f.ins("VTRN1 V6.D2, V4.D2, V%d.D2", dst)
		f.ins("VTRN1 V7.D2, V5.D2, V%d.D2", dst+1)
		f.ins("VTRN2 V6.D2, V4.D2, V%d.D2", dst+2)
		f.ins("VTRN2 V7.D2, V5.D2, V%d.D2", dst+3)
	}
	for h := range halves {
		for r, p := range rows {
			f.ins("VLD1.P 16(%s), [V%d.B16]", p, r)
		}
		transpose(8 + 4*h)
	}
	if !q8 {
		for g := range 4 {
			f.ins("VUSHR $4, V%d.B16, V%d.B16", 8+g, 12+g)
			f.ins("VAND V31.B16, V%d.B16, V%d.B16", 8+g, 8+g)
			f.ins("VSUB V30.B16, V%d.B16, V%d.B16", 8+g, 8+g)
			f.ins("VSUB V30.B16, V%d.B16, V%d.B16", 12+g, 12+g)
		}
	}
	f.ins("VST1.P [V8.B16, V9.B16, V10.B16, V11.B16], 64(R0)")
	f.ins("VST1.P [V12.B16, V13.B16, V14.B16, V15.B16], 64(R0)")
	f.fcvtl(21, 20, false)
	f.ins("VST1.P [V21.S4], 16(R0)")
	f.ins("SUBS $1, R6, R6")
	f.ins("BNE loop")
	f.ins("RET")
}
