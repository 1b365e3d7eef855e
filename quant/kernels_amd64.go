//go:build !noasm

package quant

import "github.com/klauspost/cpuid/v2"

// The amd64 paths and the kernels each one runs (the assembly is generated
// by quant/_gen into kernels_gen_amd64.s):
//
//	path        GEMM tiles (weights)          GEMV Q4_0 / Q8_0 / Q6_K           float tiles, dots
//	avx2        ymm maddubs: q4_0, q6_K       avx2 / avx2 (vpsignb) / avx2       ymm 4x2, fma
//	avxvnni     ymm vpdpbusd: q4_0 q8_0 q6_K  avxvnni / avxvnni / avx2           ymm 4x2, fma
//	avx512      zmm maddubs: q4_0, q6_K       avx512 / avx2 / avx512             zmm 4x4, fma
//	avx512vnni  zmm vpdpbusd: q4_0 q8_0 q6_K  avx512vnni / avx512vnni / avx512   zmm 4x4, fma
//
// The GEMM tiles take panels packed by assembly (16 rows for zmm, 8 for
// ymm). Q8_0 weights have no vpmaddubsw tile (their offset quants, up to
// 255, would saturate its int16 sums), so on avx2 and avx512 MatMul
// multiplies them one activation row at a time with the GEMV kernel. Every
// path quantizes Q8_0 activations with the AVX2 quantizer and Q8_K ones in
// Go. The avx2 kernels use no AVX-512 instruction or register and the
// avx512 ones no vpdpbusd (TestAsmInstructionSets).

// hasAVX2 is what every amd64 path needs: AVX2, FMA and F16C.
func hasAVX2() bool {
	return cpuid.CPU.Supports(cpuid.AVX, cpuid.AVX2, cpuid.FMA3, cpuid.F16C)
}

func hasAVX512() bool {
	return hasAVX2() && cpuid.CPU.Supports(cpuid.AVX512F, cpuid.AVX512BW, cpuid.AVX512VL)
}

func registerArch() {
	if !hasAVX2() {
		return
	}
	dotF32Y := dotF32Asm(dotF32Avx2, 32)
	dotF16Y := dot16Asm(dotF16Avx2, 32, dotF16Generic)
	dotBF16Y := dot16Asm(dotBF16Avx2, 32, dotBF16Generic)
	q4Y := gemvAsm(gemvQ4_0Avx2R4, gemvQ4_0Avx2R1, QK4_0)
	q8Y := gemvAsm(gemvQ8_0Avx2R4, gemvQ8_0Avx2R1, QK8_0)
	q6Y := gemvAsm(nil, gemvQ6_KAvx2, QK_K)
	q6YN := gemvNAsm(gemvQ6_KAvx2N, QK_K)
	swiglu := swigluAsm(swigluAvx2, 8) // the AVX2 kernels serve the 512-bit paths too
	expSub := expSubAsm(expSubAvx2, 8)
	ftY := [3]*floatTile{
		{rows: 4, acts: 2, step: 8, run: ftileF32Avx2},
		{rows: 4, acts: 2, step: 8, run: ftileF16Avx2},
		{rows: 4, acts: 2, step: 8, run: ftileBF16Avx2},
	}

	register(&kernels{
		path:      PathAVX2,
		quantQ8_0: quantQ8_0Asm(quantQ8_0Avx2),
		dotF32:    dotF32Y,
		dotF16:    dotF16Y,
		dotBF16:   dotBF16Y,
		ftile:     ftY,
		swiglu:    swiglu,
		expSub:    expSub,
		gemv:      [numQTypes]func(int, []byte, int, int, []byte, []float32){q4Y, q8Y, q6Y},
		gemvN:     [numQTypes]*gemvNKernel{qQ6_K: q6YN},
		tile: [numQTypes]*tileKernel{
			qQ4_0: {rows: 8, tmax: 4, groups: 8, off: 8, minAct: 2, run: tileAvx2G8, pack: packQ4_0Avx2},
			qQ6_K: {rows: 8, tmax: 8, groups: 4, off: 32, minAct: 2, run: tileAvx2G4, pack: packQ6_KAvx2},
		},
	})
	if cpuid.CPU.Supports(cpuid.AVXVNNI) {
		register(&kernels{
			path:      PathAVXVNNI,
			quantQ8_0: quantQ8_0Asm(quantQ8_0Avx2),
			dotF32:    dotF32Y,
			dotF16:    dotF16Y,
			dotBF16:   dotBF16Y,
			ftile:     ftY,
			swiglu:    swiglu,
			expSub:    expSub,
			gemv: [numQTypes]func(int, []byte, int, int, []byte, []float32){
				gemvAsm(gemvQ4_0AvxVnniR4, gemvQ4_0AvxVnniR1, QK4_0),
				gemvAsm(gemvQ8_0AvxVnniR4, gemvQ8_0AvxVnniR1, QK8_0),
				q6Y,
			},
			tile: [numQTypes]*tileKernel{
				qQ4_0: {rows: 8, tmax: 4, groups: 8, off: 8, minAct: 2, run: tileAvxVnniG8, pack: packQ4_0Avx2},
				qQ8_0: {rows: 8, tmax: 4, groups: 8, off: 128, minAct: 2, run: tileAvxVnniG8, pack: packQ8_0Avx2},
				qQ6_K: {rows: 8, tmax: 8, groups: 4, off: 32, minAct: 2, run: tileAvxVnniG4, pack: packQ6_KAvx2},
			},
		})
	}
	if !hasAVX512() {
		return
	}
	dotF32Z := dotF32Asm(dotF32Avx512, 64)
	dotF16Z := dot16Asm(dotF16Avx512, 64, dotF16Generic)
	dotBF16Z := dot16Asm(dotBF16Avx512, 64, dotBF16Generic)
	q6Z := gemvAsm(nil, gemvQ6_KAvx512, QK_K)
	ftZ := [3]*floatTile{
		{rows: 4, acts: 4, step: 16, run: ftileF32Avx512},
		{rows: 4, acts: 4, step: 16, run: ftileF16Avx512},
		{rows: 4, acts: 4, step: 16, run: ftileBF16Avx512},
	}
	register(&kernels{
		path:      PathAVX512,
		quantQ8_0: quantQ8_0Asm(quantQ8_0Avx2),
		dotF32:    dotF32Z,
		dotF16:    dotF16Z,
		dotBF16:   dotBF16Z,
		ftile:     ftZ,
		swiglu:    swiglu,
		expSub:    expSub,
		gemv: [numQTypes]func(int, []byte, int, int, []byte, []float32){
			gemvAsm(gemvQ4_0Avx512R4, gemvQ4_0Avx512R1, QK4_0),
			q8Y,
			q6Z,
		},
		tile: [numQTypes]*tileKernel{
			qQ4_0: {rows: 16, tmax: 8, groups: 8, off: 8, minAct: 2, run: tileAvx512G8, pack: packQ4_0Avx512},
			qQ6_K: {rows: 16, tmax: 8, groups: 4, off: 32, minAct: 2, run: tileAvx512G4, pack: packQ6_KAvx512},
		},
	})
	if cpuid.CPU.Supports(cpuid.AVX512VNNI) {
		register(&kernels{
			path:      PathAVX512VNNI,
			quantQ8_0: quantQ8_0Asm(quantQ8_0Avx2),
			dotF32:    dotF32Z,
			dotF16:    dotF16Z,
			dotBF16:   dotBF16Z,
			ftile:     ftZ,
			swiglu:    swiglu,
			expSub:    expSub,
			gemv: [numQTypes]func(int, []byte, int, int, []byte, []float32){
				gemvAsm(gemvQ4_0Vnni512R4, gemvQ4_0Vnni512R1, QK4_0),
				gemvAsm(gemvQ8_0Vnni512R4, gemvQ8_0Vnni512R1, QK8_0),
				q6Z,
			},
			tile: [numQTypes]*tileKernel{
				qQ4_0: {rows: 16, tmax: 8, groups: 8, off: 8, minAct: 2, run: tileVnni512G8, pack: packQ4_0Avx512},
				qQ8_0: {rows: 16, tmax: 8, groups: 8, off: 128, minAct: 2, run: tileVnni512G8, pack: packQ8_0Avx512},
				qQ6_K: {rows: 16, tmax: 8, groups: 4, off: 32, minAct: 2, run: tileVnni512G4, pack: packQ6_KAvx512},
			},
		})
	}
}
