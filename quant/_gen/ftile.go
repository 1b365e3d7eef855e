package main

import "fmt"

// Float tile kernels: out[t][r] = Σ_k W[r][k] * A[t][k] for R weight rows
// (F32, F16 or BF16) and T float32 activation rows, with k in the vector
// lanes: each step loads R weight vectors and T activation vectors and
// does R*T FMAs, and the R*T accumulators are summed at the end by a
// transposing reduction network. No packing: the kernels serve attention
// (head-sized k, few activations) as well as float weight matrices.

// shuffle-network simulation: each lane of a vector holds partial sums of
// one accumulator; the generator tracks which, checks that additions only
// combine lanes of the same accumulator, and derives the final lane order.
type simVec []int

func simShuf128(a, b simVec, imm int) simVec { // vshuff32x4/64x2 on zmm
	out := make(simVec, 16)
	for l := range 4 {
		src := a
		if l >= 2 {
			src = b
		}
		sel := imm >> (2 * l) & 3
		copy(out[4*l:4*l+4], src[4*sel:4*sel+4])
	}
	return out
}

func simUnpck64(a, b simVec, hi bool) simVec { // vunpck[lh]pd, per 128-bit lane
	out := make(simVec, len(a))
	for l := 0; l < len(a); l += 4 {
		o := 0
		if hi {
			o = 2
		}
		copy(out[l:l+2], a[l+o:l+o+2])
		copy(out[l+2:l+4], b[l+o:l+o+2])
	}
	return out
}

func simShufps(a, b simVec, imm int) simVec { // vshufps, per 128-bit lane
	out := make(simVec, len(a))
	for l := 0; l < len(a); l += 4 {
		out[l] = a[l+imm&3]
		out[l+1] = a[l+imm>>2&3]
		out[l+2] = b[l+imm>>4&3]
		out[l+3] = b[l+imm>>6&3]
	}
	return out
}

func simPerm2(a, b simVec, imm int) simVec { // vperm2f128 on ymm
	out := make(simVec, 8)
	for h := range 2 {
		sel := imm >> (4 * h) & 3
		src := a
		if sel >= 2 {
			src = b
		}
		copy(out[4*h:4*h+4], src[4*(sel&1):4*(sel&1)+4])
	}
	return out
}

func simAdd(a, b simVec) simVec {
	out := make(simVec, len(a))
	for i := range a {
		if a[i] != b[i] {
			panic(fmt.Sprintf("reduction adds lanes of accumulators %d and %d", a[i], b[i]))
		}
		out[i] = a[i]
	}
	return out
}

func splatSim(id, n int) simVec {
	v := make(simVec, n)
	for i := range v {
		v[i] = id
	}
	return v
}

// genFloatTile writes the R×T float tile kernel of x for kind (F32, F16
// or BF16): zmm R = T = 4, ymm R = 4, T = 2. n is a multiple of the lanes.
func genFloatTile(f *file, x isa, kind string) {
	R, T := 4, 4
	if !x.zmm {
		T = 2
	}
	L := x.lanes()
	wsize := 4
	if kind != "F32" {
		wsize = 2
	}
	name := fmt.Sprintf("ftile%s%s", kind, x.name)
	f.fn(name, "w *byte, rowBytes int, a *byte, aStride int, n int, out *float32, outStride int",
		fmt.Sprintf("%s computes out[t*outStride+r] = Σ w[r][k]*a[t][k] for %d %s weight rows and %d float32 activation rows of n elements (a multiple of %d).", name, R, kind, T, L))
	f.ins("MOVQ w+0(FP), SI")
	f.ins("MOVQ rowBytes+8(FP), BX")
	f.ins("MOVQ a+16(FP), DI")
	f.ins("MOVQ aStride+24(FP), R10")
	f.ins("MOVQ n+32(FP), CX")
	f.ins("MOVQ out+40(FP), DX")
	f.ins("MOVQ outStride+48(FP), R8")
	f.ins("SHLQ $2, R8")
	f.ins("LEAQ (SI)(BX*2), R9")
	f.ins("ADDQ BX, R9")
	f.ins("LEAQ (DI)(R10*2), R11")
	f.ins("ADDQ R10, R11")
	v := x.v
	acc := func(r, t int) int { return T*r + t }
	wr := func(r int) int { return R*T + r }
	ar := func(t int) int { return R*T + R + t }
	for i := range R * T {
		f.ins("VXORPS %s, %s, %s", v(i), v(i), v(i))
	}
	actMem := func(t int) string {
		switch t {
		case 0:
			return "(DI)"
		case 1:
			return "(DI)(R10*1)"
		case 2:
			return "(DI)(R10*2)"
		}
		return "(R11)"
	}
	f.label("loop")
	for r := range R {
		m := rowMem(0, r)
		switch kind {
		case "F32":
			f.ins("VMOVUPS %s, %s", m, v(wr(r)))
		case "F16":
			f.ins("VCVTPH2PS %s, %s", m, v(wr(r)))
		case "BF16":
			f.ins("VPMOVZXWD %s, %s", m, v(wr(r)))
			f.ins("VPSLLD $16, %s, %s", v(wr(r)), v(wr(r)))
		}
	}
	for t := range T {
		f.ins("VMOVUPS %s, %s", actMem(t), v(ar(t)))
	}
	for r := range R {
		for t := range T {
			f.ins("VFMADD231PS %s, %s, %s", v(ar(t)), v(wr(r)), v(acc(r, t)))
		}
	}
	f.ins("ADDQ $%d, SI", L*wsize)
	f.ins("ADDQ $%d, R9", L*wsize)
	f.ins("ADDQ $%d, DI", 4*L)
	f.ins("ADDQ $%d, R11", 4*L)
	f.ins("SUBQ $%d, CX", L)
	f.ins("JNZ loop")

	// Reduction network, simulated alongside.
	n := R * T
	sim := make([]simVec, 32)
	for i := range n {
		sim[i] = splatSim(i, L)
	}
	tmp1, tmp2 := 30, 31
	if !x.zmm {
		tmp1, tmp2 = 14, 15
	}
	// combine emits dst = op(a, b, immA) + op(a, b, immB) for a shuffle op.
	type shuf struct {
		ins string
		sim func(a, b simVec) simVec
	}
	combine := func(dst, a, b int, s1, s2 shuf) {
		f.ins(s1.ins, v(b), v(a), v(tmp1))
		f.ins(s2.ins, v(b), v(a), v(tmp2))
		f.ins("VADDPS %s, %s, %s", v(tmp2), v(tmp1), v(dst))
		sim[dst] = simAdd(s1.sim(sim[a], sim[b]), s2.sim(sim[a], sim[b]))
	}
	live := make([]int, n)
	for i := range live {
		live[i] = i
	}
	if x.zmm {
		stage := func(s1, s2 shuf) {
			h := len(live) / 2
			next := live[:h]
			for i := range h {
				combine(live[i], live[i], live[i+h], s1, s2)
			}
			live = next
		}
		stage(shuf{"VSHUFF64X2 $0x44, %s, %s, %s", func(a, b simVec) simVec { return simShuf128(a, b, 0x44) }},
			shuf{"VSHUFF64X2 $0xee, %s, %s, %s", func(a, b simVec) simVec { return simShuf128(a, b, 0xee) }})
		stage(shuf{"VSHUFF32X4 $0x88, %s, %s, %s", func(a, b simVec) simVec { return simShuf128(a, b, 0x88) }},
			shuf{"VSHUFF32X4 $0xdd, %s, %s, %s", func(a, b simVec) simVec { return simShuf128(a, b, 0xdd) }})
		stage(shuf{"VUNPCKLPD %s, %s, %s", func(a, b simVec) simVec { return simUnpck64(a, b, false) }},
			shuf{"VUNPCKHPD %s, %s, %s", func(a, b simVec) simVec { return simUnpck64(a, b, true) }})
		stage(shuf{"VSHUFPS $0x88, %s, %s, %s", func(a, b simVec) simVec { return simShufps(a, b, 0x88) }},
			shuf{"VSHUFPS $0xdd, %s, %s, %s", func(a, b simVec) simVec { return simShufps(a, b, 0xdd) }})
	} else {
		stage := func(s1, s2 shuf) {
			h := len(live) / 2
			next := live[:h]
			for i := range h {
				combine(live[i], live[i], live[i+h], s1, s2)
			}
			live = next
		}
		stage(shuf{"VPERM2F128 $0x20, %s, %s, %s", func(a, b simVec) simVec { return simPerm2(a, b, 0x20) }},
			shuf{"VPERM2F128 $0x31, %s, %s, %s", func(a, b simVec) simVec { return simPerm2(a, b, 0x31) }})
		stage(shuf{"VUNPCKLPD %s, %s, %s", func(a, b simVec) simVec { return simUnpck64(a, b, false) }},
			shuf{"VUNPCKHPD %s, %s, %s", func(a, b simVec) simVec { return simUnpck64(a, b, true) }})
		stage(shuf{"VSHUFPS $0x88, %s, %s, %s", func(a, b simVec) simVec { return simShufps(a, b, 0x88) }},
			shuf{"VSHUFPS $0xdd, %s, %s, %s", func(a, b simVec) simVec { return simShufps(a, b, 0xdd) }})
	}
	res := sim[live[0]]
	// Permute the lanes to t*R + r.
	perm := make([]int, L)
	seen := make([]bool, n)
	for lane, id := range res {
		r, t := id/T, id%T
		perm[t*R+r] = lane
		if seen[id] {
			panic("reduction lost an accumulator")
		}
		seen[id] = true
	}
	var words []uint64
	for i := 0; i < L; i += 2 {
		words = append(words, uint64(perm[i])|uint64(perm[i+1])<<32)
	}
	tab := fmt.Sprintf("ftperm%d", L)
	f.data(tab, words...)
	if x.zmm {
		f.ins("VMOVDQU32 %s<>(SB), %s", tab, v(tmp1))
	} else {
		f.ins("VMOVDQU %s<>(SB), %s", tab, v(tmp1))
	}
	f.ins("VPERMPS %s, %s, %s", v(live[0]), v(tmp1), v(live[0]))
	for t := range T {
		if x.zmm && t > 0 {
			f.ins("VEXTRACTF32X4 $%d, %s, X%d", t, v(live[0]), tmp2)
			f.ins("VMOVUPS X%d, (DX)", tmp2)
		} else if t > 0 {
			f.ins("VEXTRACTF128 $%d, %s, X%d", t, v(live[0]), tmp2)
			f.ins("VMOVUPS X%d, (DX)", tmp2)
		} else {
			f.ins("VMOVUPS X%d, (DX)", live[0])
		}
		if t < T-1 {
			f.ins("ADDQ R8, DX")
		}
	}
	f.ins("VZEROUPPER")
	f.ins("RET")
}

// genArmFloatTile writes the NEON 4×4 float tile kernel (n a multiple of
// 4): faddp trees reduce the four accumulators of each activation row to
// one vector of the four rows' sums.
func genArmFloatTile(f *file, kind string) {
	const R, T = 4, 4
	name := fmt.Sprintf("ftile%sNeon", kind)
	f.fn(name, "w *byte, rowBytes int, a *byte, aStride int, n int, out *float32, outStride int",
		fmt.Sprintf("%s computes out[t*outStride+r] = Σ w[r][k]*a[t][k] for %d %s weight rows and %d float32 activation rows of n elements (a multiple of 4).", name, R, kind, T))
	f.ins("MOVD w+0(FP), R0")
	f.ins("MOVD rowBytes+8(FP), R1")
	f.ins("MOVD a+16(FP), R2")
	f.ins("MOVD aStride+24(FP), R3")
	f.ins("MOVD n+32(FP), R4")
	f.ins("MOVD out+40(FP), R5")
	f.ins("MOVD outStride+48(FP), R6")
	f.ins("LSL $2, R6, R6")
	// Rows in R7-R10, activations in R11-R14.
	f.ins("MOVD R0, R7")
	f.ins("ADD R1, R7, R8")
	f.ins("ADD R1, R8, R9")
	f.ins("ADD R1, R9, R10")
	f.ins("MOVD R2, R11")
	f.ins("ADD R3, R11, R12")
	f.ins("ADD R3, R12, R13")
	f.ins("ADD R3, R13, R14")
	for i := range R * T {
		f.ins("VEOR V%d.B16, V%d.B16, V%d.B16", i, i, i)
	}
	f.ins("VEOR V31.B16, V31.B16, V31.B16")
	f.label("loop")
	for r := range R {
		p := 7 + r
		switch kind {
		case "F32":
			f.ins("VLD1.P 16(R%d), [V%d.S4]", p, 16+r)
		case "F16":
			f.ins("VLD1.P 8(R%d), [V%d.H4]", p, 24+r)
			f.fcvtl(16+r, 24+r, false)
		case "BF16":
			f.ins("VLD1.P 8(R%d), [V%d.H4]", p, 24+r)
			f.ins("VZIP1 V%d.H8, V31.H8, V%d.H8", 24+r, 16+r)
		}
	}
	for t := range T {
		f.ins("VLD1.P 16(R%d), [V%d.S4]", 11+t, 20+t)
	}
	for r := range R {
		for t := range T {
			f.fmla(T*r+t, 16+r, 20+t)
		}
	}
	f.ins("SUBS $4, R4, R4")
	f.ins("BNE loop")
	for t := range T {
		f.faddp(16, t, T+t)
		f.faddp(17, 2*T+t, 3*T+t)
		f.faddp(16, 16, 17)
		f.ins("VST1 [V16.S4], (R5)")
		if t < T-1 {
			f.ins("ADD R6, R5, R5")
		}
	}
	f.ins("RET")
}
