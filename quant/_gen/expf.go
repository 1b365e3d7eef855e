package main

import "math"

// The element-wise exponential kernels (AVX2): SwiGLU and ExpSub of
// quant/expf.go, eight lanes at a time with the float32 operations of
// quant.Exp in its order, so that they are bit-identical with it (quant's
// tests compare every lane pattern they can think of, which also checks
// that the constants here are quant's).

// splat8 defines a 32-byte constant holding the 32-bit word w eight times.
func (f *file) splat8(name string, w uint32) string {
	d := uint64(w) | uint64(w)<<32
	f.data(name, d, d, d, d)
	return name + "<>(SB)"
}

func f32c(f *file, name string, v float32) string { return f.splat8(name, math.Float32bits(v)) }

// expYmm writes Y0 = Exp(Y0), using Y1-Y6.
func expYmm(f *file) {
	hi := f32c(f, "exphi", 88.72283)
	lo := f32c(f, "explo", -87.33654)
	f.ins("VMOVAPS Y0, Y6")
	f.ins("VMINPS %s, Y0, Y0", hi) // NaN lanes become hi here and NaN again at the end
	f.ins("VMAXPS %s, Y0, Y0", lo)
	f.ins("VMULPS %s, Y0, Y1", f32c(f, "explog2e", float32(1.44269504088896341)))
	f.ins("VADDPS %s, Y1, Y1", f32c(f, "exphalf", 0.5)) // fx
	f.ins("VROUNDPS $1, Y1, Y2")                        // n = floor(fx)
	f.ins("VMULPS %s, Y2, Y3", f32c(f, "expc1", 0.693359375))
	f.ins("VSUBPS Y3, Y0, Y3") // r = x - n*c1
	f.ins("VMULPS %s, Y2, Y4", f32c(f, "expc2", -2.12194440e-4))
	f.ins("VSUBPS Y4, Y3, Y3") // r -= n*c2
	f.ins("VMULPS Y3, Y3, Y4") // z = r*r
	p := []float32{1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1}
	f.ins("VMULPS %s, Y3, Y5", f32c(f, "expp0", p[0]))
	for i := 1; i < len(p); i++ {
		f.ins("VADDPS %s, Y5, Y5", f32c(f, "expp"+string(rune('0'+i)), p[i]))
		if i < len(p)-1 {
			f.ins("VMULPS Y3, Y5, Y5")
		}
	}
	one := f32c(f, "one", 1)
	f.ins("VMULPS Y4, Y5, Y5") // y*z
	f.ins("VADDPS Y3, Y5, Y5") // + r
	f.ins("VADDPS %s, Y5, Y5", one)
	// y·2^n: for n = 128 as (2y)·2^127.
	c127 := f32c(f, "exp127", 127)
	f.ins("VCMPPS $0x1e, %s, Y2, Y1", c127) // n > 127
	f.ins("VADDPS Y5, Y5, Y3")
	f.ins("VBLENDVPS Y1, Y3, Y5, Y5")
	f.ins("VMINPS %s, Y2, Y2", c127)
	f.ins("VCVTTPS2DQ Y2, Y2")
	f.ins("VPADDD %s, Y2, Y2", f.splat8("expbias", 127))
	f.ins("VPSLLD $23, Y2, Y2")
	f.ins("VMULPS Y2, Y5, Y0")
	// Outside the range: +Inf above, 0 below, NaN for NaN.
	f.ins("VCMPPS $0x1e, %s, Y6, Y1", hi) // x > hi
	f.ins("VBLENDVPS Y1, %s, Y0, Y0", f.splat8("expinf", 0x7f800000))
	f.ins("VCMPPS $0x11, %s, Y6, Y1", lo) // x < lo
	f.ins("VANDNPS Y0, Y1, Y0")
	f.ins("VCMPPS $3, Y6, Y6, Y1") // unordered: NaN
	f.ins("VBLENDVPS Y1, Y6, Y0, Y0")
}

func genSwiGLUAvx2(f *file) {
	name := "swigluAvx2"
	f.fn(name, "dst, x, y *float32, n int", name+" writes dst[i] = SiLU(x[i])·y[i] for i < n; n is a positive multiple of 8.")
	f.ins("MOVQ dst+0(FP), DX")
	f.ins("MOVQ x+8(FP), SI")
	f.ins("MOVQ y+16(FP), DI")
	f.ins("MOVQ n+24(FP), CX")
	sign := f.splat8("signbit", 0x80000000)
	f.label("loop")
	f.ins("VMOVUPS (SI), Y7")
	f.ins("VXORPS %s, Y7, Y0", sign) // -x
	expYmm(f)
	f.ins("VADDPS %s, Y0, Y0", "one<>(SB)")
	f.ins("VDIVPS Y0, Y7, Y0") // x / (1 + e^-x)
	f.ins("VMULPS (DI), Y0, Y0")
	f.ins("VMOVUPS Y0, (DX)")
	f.ins("ADDQ $32, SI")
	f.ins("ADDQ $32, DI")
	f.ins("ADDQ $32, DX")
	f.ins("SUBQ $8, CX")
	f.ins("JNZ loop")
	f.ins("VZEROUPPER")
	f.ins("RET")
}

func genExpSubAvx2(f *file) {
	name := "expSubAvx2"
	f.fn(name, "x *float32, n int, m *float32", name+" replaces x[i] with Exp(x[i]-*m) for i < n; n is a positive multiple of 8.")
	f.ins("MOVQ x+0(FP), SI")
	f.ins("MOVQ n+8(FP), CX")
	f.ins("MOVQ m+16(FP), AX")
	f.ins("VBROADCASTSS (AX), Y7")
	f.label("loop")
	f.ins("VMOVUPS (SI), Y0")
	f.ins("VSUBPS Y7, Y0, Y0")
	expYmm(f)
	f.ins("VMOVUPS Y0, (SI)")
	f.ins("ADDQ $32, SI")
	f.ins("SUBQ $8, CX")
	f.ins("JNZ loop")
	f.ins("VZEROUPPER")
	f.ins("RET")
}
