package main

import (
	"fmt"
	"strings"
)

// genGemvQ6_KAvx2N writes the AVX2 Q6_K GEMV of T = 2..6 activation rows
// at once (small batches: several sequences decoding together): each
// super-block's quants are unpacked and its scales widened once and
// multiplied by every activation row, where T separate GEMVs would unpack
// them T times and the tile kernel repacks the whole matrix per call. For
// each activation row it performs exactly the operations of gemvQ6_KAvx2
// in its order, so the results are bit-identical with T calls of it.
//
// Registers: SI the weight super-block, CX super-blocks left, R13 the
// weight row, BX rowBytes, R11 the first activation row, R8 aRowBytes, DI,
// R9 = DI+3·R8 and R10 = DI+2·R8 the bases of the activation super-blocks,
// DX out (row r), R12 outStride in bytes, R14 rows left, R15 nb, AX the
// output address. Y0, Y1, Y12, Y13 hold four unpacked vectors, Y2 and Y3
// are scratch, Y4..Y(3+T) the integer sums of the super-block per
// activation row. The stack holds the eight vectors of 16-bit scales
// (0-255) and the T float accumulators (256 + 32t).
func genGemvQ6_KAvx2N(f *file, T int) {
	name := fmt.Sprintf("gemvQ6_KAvx2N%d", T)
	f.fnFrame(name, "w *byte, rowBytes int, a *byte, aRowBytes int, nb int, out *float32, outStride int, rows int", 256+32*8,
		fmt.Sprintf("%s multiplies Q6_K rows by %d Q8_K activation rows aRowBytes apart, writing out[t*outStride+r]; bit-identical with %d calls of gemvQ6_KAvx2.", name, T, T))
	f.ins("MOVQ w+0(FP), R13")
	f.ins("MOVQ rowBytes+8(FP), BX")
	f.ins("MOVQ a+16(FP), R11")
	f.ins("MOVQ aRowBytes+24(FP), R8")
	f.ins("MOVQ nb+32(FP), R15")
	f.ins("MOVQ out+40(FP), DX")
	f.ins("MOVQ outStride+48(FP), R12")
	f.ins("SHLQ $2, R12")
	f.ins("MOVQ rows+56(FP), R14")
	act := func(t, off int) string { // byte off of activation row t's super-block
		switch t {
		case 0:
			return fmt.Sprintf("%d(DI)", off)
		case 1:
			return fmt.Sprintf("%d(DI)(R8*1)", off)
		case 2:
			return fmt.Sprintf("%d(DI)(R8*2)", off)
		case 3:
			return fmt.Sprintf("%d(R9)", off)
		case 4:
			return fmt.Sprintf("%d(DI)(R8*4)", off)
		case 5:
			return fmt.Sprintf("%d(R9)(R8*2)", off)
		case 6:
			return fmt.Sprintf("%d(R10)(R8*4)", off)
		}
		return fmt.Sprintf("%d(R9)(R8*4)", off)
	}
	facc := func(t int) string { return fmt.Sprintf("%d(SP)", 256+32*t) }
	f.label("rows")
	f.ins("MOVQ R13, SI")
	f.ins("MOVQ R11, DI")
	f.ins("LEAQ (DI)(R8*2), R10")
	f.ins("LEAQ (R10)(R8*1), R9")
	f.ins("MOVQ R15, CX")
	f.ins("VXORPS Y2, Y2, Y2")
	for t := range T {
		f.ins("VMOVUPS Y2, %s", facc(t))
		f.ins("VPXOR Y%d, Y%d, Y%d", 4+t, 4+t, 4+t)
	}
	f.label("blocks")
	// The 16 scales widened to words, two per vector: vector v takes
	// scales 2v (words 0-7) and 2v+1, as in gemvQ6_KAvx2.
	f.ins("VBROADCASTI128 192(SI), Y12")
	for v := range 8 {
		f.ins("VPSHUFB q6kshuf<>+%d(SB), X12, X13", 16*v)
		f.ins("VPMOVSXBW X13, Y13")
		f.ins("VMOVDQU Y13, %d(SP)", 32*v)
	}
	for h := range 2 {
		f.ins("VMOVDQU %d(SI), Y0", 64*h)
		f.ins("VMOVDQU %d(SI), Y1", 64*h+32)
		f.ins("VMOVDQU %d(SI), Y2", 128+32*h)
		// Y12 = Lq0&15 | (H<<4)&0x30, Y13 = Lq1&15 | (H<<2)&0x30,
		// Y0 = Lq0>>4&15 | H&0x30, Y1 = Lq1>>4&15 | (H>>2)&0x30.
		f.ins("VPSLLW $4, Y2, Y3")
		f.ins("VPAND q6m30<>(SB), Y3, Y3")
		f.ins("VPAND q6m0f<>(SB), Y0, Y12")
		f.ins("VPOR Y3, Y12, Y12")
		f.ins("VPSLLW $2, Y2, Y3")
		f.ins("VPAND q6m30<>(SB), Y3, Y3")
		f.ins("VPAND q6m0f<>(SB), Y1, Y13")
		f.ins("VPOR Y3, Y13, Y13")
		f.ins("VPSRLW $4, Y0, Y0")
		f.ins("VPAND q6m0f<>(SB), Y0, Y0")
		f.ins("VPAND q6m30<>(SB), Y2, Y3")
		f.ins("VPOR Y3, Y0, Y0")
		f.ins("VPSRLW $4, Y1, Y1")
		f.ins("VPAND q6m0f<>(SB), Y1, Y1")
		f.ins("VPSRLW $2, Y2, Y3")
		f.ins("VPAND q6m30<>(SB), Y3, Y3")
		f.ins("VPOR Y3, Y1, Y1")
		for t := range T {
			for i, q := range []int{12, 13, 0, 1} {
				v := 4*h + i
				s := []string{"Y2", "Y3"}[i%2]
				f.ins("VPMADDUBSW %s, Y%d, %s", act(t, 4+32*v), q, s)
				f.ins("VPMADDWD %d(SP), %s, %s", 32*v, s, s)
				f.ins("VPADDD %s, Y%d, Y%d", s, 4+t, 4+t)
			}
		}
	}
	// Per activation row: the -32 offset through bsums, then
	// acc += float(sum) * (d * da).
	f.ins("VPMOVSXBW 192(SI), Y13")
	f.ins("VPBROADCASTW 208(SI), X12")
	f.ins("VCVTPH2PS X12, X12")
	for t := range T {
		a := fmt.Sprintf("Y%d", 4+t)
		f.ins("VPMADDWD %s, Y13, Y2", act(t, 260))
		f.ins("VPSLLD $5, Y2, Y2")
		f.ins("VPSUBD Y2, %s, %s", a, a)
		f.ins("VCVTDQ2PS %s, %s", a, a)
		f.ins("VMULSS %s, X12, X2", act(t, 0))
		f.ins("VBROADCASTSS X2, Y2")
		f.ins("VMOVUPS %s, Y3", facc(t))
		f.ins("VFMADD231PS Y2, %s, Y3", a)
		f.ins("VMOVUPS Y3, %s", facc(t))
		f.ins("VPXOR %s, %s, %s", a, a, a)
	}
	f.ins("ADDQ $210, SI")
	f.ins("ADDQ $292, DI")
	f.ins("ADDQ $292, R9")
	f.ins("ADDQ $292, R10")
	f.ins("DECQ CX")
	f.ins("JNZ blocks")
	// Reduce each accumulator as reduceStore does and store it.
	f.ins("MOVQ DX, AX")
	for t := range T {
		f.ins("VMOVUPS %s, Y0", facc(t))
		f.ins("VEXTRACTF128 $1, Y0, X4")
		f.ins("VADDPS X4, X0, X0")
		f.ins("VHADDPS X0, X0, X0")
		f.ins("VHADDPS X0, X0, X0")
		f.ins("VMOVSS X0, (AX)")
		if t < T-1 {
			f.ins("ADDQ R12, AX")
		}
	}
	f.ins("ADDQ $4, DX")
	f.ins("ADDQ BX, R13")
	f.ins("DECQ R14")
	f.ins("JNZ rows")
	f.ins("VZEROUPPER")
	f.ins("RET")
}

// genGemvQ6_KAvx2Ns writes the kernels of every T and their table.
func genGemvQ6_KAvx2Ns(f *file) {
	f.splat8("q6m0f", 0x0f0f0f0f)
	f.splat8("q6m30", 0x30303030)
	var names []string
	// Up to 6 rows: at 8 the tile kernel was faster (AVX2 on Zen 3:
	// 4.2 ms against 3.8 for 8192x2048 weights by 8 rows; 2.2 against
	// 2.7 by 4, 1.34 against 1.73 by 2), the int8 multiplies being the
	// bound either way.
	for T := 2; T <= 6; T++ {
		genGemvQ6_KAvx2N(f, T)
		names = append(names, fmt.Sprintf("gemvQ6_KAvx2N%d", T))
	}
	f.goCode("// gemvQ6_KAvx2N[T] is the Q6_K GEMV of T activation rows, for T in 2..6.\nvar gemvQ6_KAvx2N = []func(w *byte, rowBytes int, a *byte, aRowBytes int, nb int, out *float32, outStride int, rows int){nil, nil, %s}\n\n", strings.Join(names, ", "))
}
