package quant

import (
	"encoding/binary"
	"math"
)

// The generic kernels: portable Go, the reference every SIMD path is tested
// against. Per block they compute the exact integer dot product of the
// quants and add float32(isum) * (dw*da) to a float32 sum, as ggml's
// generic kernels do.

var genericSet = &kernels{
	path:      PathGeneric,
	quantQ8_0: quantQ8_0Generic,
	quantQ8_K: quantizeQ8KGeneric,
	dotF32:    dotF32Generic,
	dotF16:    dotF16Generic,
	dotBF16:   dotBF16Generic,
	swiglu:    swigluGeneric,
	expSub:    expSubGeneric,
	gemv: [numQTypes]func(k int, w []byte, rowBytes, rows int, a []byte, out []float32){
		qQ4_0: gemvQ4_0Generic,
		qQ8_0: gemvQ8_0Generic,
		qQ6_K: gemvQ6_KGeneric,
	},
}

func genericKernels() *kernels { return genericSet }

func quantQ8_0Generic(dst []byte, src []float32) {
	if err := QuantizeQ8_0(dst, src); err != nil {
		panic(err) // the callers checked the sizes
	}
}

func f16At(b []byte) float32 { return FP16ToFloat32(binary.LittleEndian.Uint16(b)) }

func gemvQ4_0Generic(k int, w []byte, rowBytes, rows int, a []byte, out []float32) {
	nb := k / QK4_0
	a = a[:nb*34]
	for r := range rows {
		row := w[r*rowBytes : r*rowBytes+nb*18]
		var sum float32
		for b := range nb {
			x := row[b*18 : b*18+18 : b*18+18]
			y := a[b*34 : b*34+34 : b*34+34]
			var s int32
			for j := range 16 {
				q := x[2+j]
				s += (int32(q&0xf) - 8) * int32(int8(y[2+j]))
				s += (int32(q>>4) - 8) * int32(int8(y[18+j]))
			}
			sum += float32(s) * (f16At(x) * f16At(y))
		}
		out[r] = sum
	}
}

func gemvQ8_0Generic(k int, w []byte, rowBytes, rows int, a []byte, out []float32) {
	nb := k / QK8_0
	a = a[:nb*34]
	for r := range rows {
		row := w[r*rowBytes : r*rowBytes+nb*34]
		var sum float32
		for b := range nb {
			x := row[b*34 : b*34+34 : b*34+34]
			y := a[b*34 : b*34+34 : b*34+34]
			var s int32
			for j := 2; j < 34; j++ {
				s += int32(int8(x[j])) * int32(int8(y[j]))
			}
			sum += float32(s) * (f16At(x) * f16At(y))
		}
		out[r] = sum
	}
}

// q6KBlockDot returns the exact integer dot product of one Q6_K block x
// with the quants of one Q8_K block y:
// Σ_j scale[j] * Σ_{i in sub-block j} (q[i]-32) * y.qs[i].
func q6KBlockDot(x, y []byte) int32 {
	x = x[:210:210]
	qs := y[4 : 4+QK_K : 4+QK_K]
	var isum int32
	for h := range 2 {
		ql := x[64*h : 64*h+64 : 64*h+64]
		qh := x[128+32*h : 128+32*h+32 : 128+32*h+32]
		sc := x[192+8*h : 192+8*h+8 : 192+8*h+8]
		a := qs[128*h : 128*h+128 : 128*h+128]
		// Sub-block (l/16 + 2m) of this half holds element 32m+l.
		var s [8]int32
		for l := range 32 {
			h2 := qh[l]
			q1 := int32(ql[l]&0xf|(h2&3)<<4) - 32
			q2 := int32(ql[l+32]&0xf|(h2>>2&3)<<4) - 32
			q3 := int32(ql[l]>>4|(h2>>4&3)<<4) - 32
			q4 := int32(ql[l+32]>>4|(h2>>6)<<4) - 32
			is := l / 16
			s[is] += q1 * int32(int8(a[l]))
			s[is+2] += q2 * int32(int8(a[l+32]))
			s[is+4] += q3 * int32(int8(a[l+64]))
			s[is+6] += q4 * int32(int8(a[l+96]))
		}
		for j, v := range s {
			isum += int32(int8(sc[j])) * v
		}
	}
	return isum
}

func gemvQ6_KGeneric(k int, w []byte, rowBytes, rows int, a []byte, out []float32) {
	nb := k / QK_K
	a = a[:nb*q8KBytes]
	for r := range rows {
		row := w[r*rowBytes : r*rowBytes+nb*210]
		var sum float32
		for b := range nb {
			x := row[b*210 : b*210+210 : b*210+210]
			y := a[b*q8KBytes : b*q8KBytes+q8KBytes : b*q8KBytes+q8KBytes]
			d := f16At(x[208:]) * math.Float32frombits(binary.LittleEndian.Uint32(y))
			sum += float32(q6KBlockDot(x, y)) * d
		}
		out[r] = sum
	}
}

func dotF32Generic(n int, w, a []float32) float32 {
	w, a = w[:n], a[:n]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= n; i += 4 {
		s0 += w[i] * a[i]
		s1 += w[i+1] * a[i+1]
		s2 += w[i+2] * a[i+2]
		s3 += w[i+3] * a[i+3]
	}
	for ; i < n; i++ {
		s0 += w[i] * a[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func dotF16Generic(n int, w []byte, a []float32) float32 {
	w, a = w[:2*n], a[:n]
	var s0, s1 float32
	i := 0
	for ; i+2 <= n; i += 2 {
		s0 += FP16ToFloat32(binary.LittleEndian.Uint16(w[2*i:])) * a[i]
		s1 += FP16ToFloat32(binary.LittleEndian.Uint16(w[2*i+2:])) * a[i+1]
	}
	for ; i < n; i++ {
		s0 += FP16ToFloat32(binary.LittleEndian.Uint16(w[2*i:])) * a[i]
	}
	return s0 + s1
}

func dotBF16Generic(n int, w []byte, a []float32) float32 {
	w, a = w[:2*n], a[:n]
	var s0, s1 float32
	i := 0
	for ; i+2 <= n; i += 2 {
		s0 += math.Float32frombits(uint32(binary.LittleEndian.Uint16(w[2*i:]))<<16) * a[i]
		s1 += math.Float32frombits(uint32(binary.LittleEndian.Uint16(w[2*i+2:]))<<16) * a[i+1]
	}
	for ; i < n; i++ {
		s0 += math.Float32frombits(uint32(binary.LittleEndian.Uint16(w[2*i:]))<<16) * a[i]
	}
	return s0 + s1
}
