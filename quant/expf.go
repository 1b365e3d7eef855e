package quant

import "math"

// The exponential and the activation functions built on it. Every path
// computes them element by element with the same float32 operations in the
// same order (no fused multiply-adds), so the SIMD kernels are
// bit-identical to Exp, and results do not depend on the path or on how
// a caller splits a row.

// Exp is e^x in float32 to within about one ulp (Cephes' expf): x is split
// as n·ln2 + r with |r| <= ln2/2 and e^r comes from a degree-6 polynomial.
// Results below float32's normal range flush to 0; NaN stays NaN.
func Exp(x float32) float32 {
	switch {
	case x != x:
		return x
	case x > expHi:
		return float32(math.Inf(1))
	case x < expLo:
		return 0
	}
	fx := x*log2e + 0.5
	n := float32(int32(fx))
	if n > fx { // floor for negative fx
		n--
	}
	r := x - n*ln2Hi - n*ln2Lo
	z := r * r
	y := ((((expP0*r+expP1)*r+expP2)*r+expP3)*r+expP4)*r + expP5
	y = y*z + r + 1
	if n > 127 { // 2^128 overflows: scale in two steps
		return y * 2 * math.Float32frombits(uint32(int32(n)+126)<<23)
	}
	return y * math.Float32frombits(uint32(int32(n)+127)<<23)
}

// The constants of Exp, shared with the generator of the SIMD kernels
// (quant/_gen writes the same float32 values).
const (
	expHi = 88.72283  // above: +Inf
	expLo = -87.33654 // below: 0
	log2e = float32(1.44269504088896341)
	ln2Hi = 0.693359375 // ln 2 = ln2Hi + ln2Lo
	ln2Lo = -2.12194440e-4
	expP0 = 1.9875691500e-4
	expP1 = 1.3981999507e-3
	expP2 = 8.3334519073e-3
	expP3 = 4.1665795894e-2
	expP4 = 1.6666665459e-1
	expP5 = 5.0000001201e-1
)

// SiLU is x·sigmoid(x) = x / (1 + Exp(-x)).
func SiLU(x float32) float32 { return x / (1 + Exp(-x)) }

// SwiGLU writes dst[i] = SiLU(x[i]) · y[i] for i < len(dst); x and y hold
// at least len(dst) elements. dst may be x or y.
func SwiGLU(dst, x, y []float32) {
	active().swiglu(dst, x[:len(dst)], y[:len(dst)])
}

// ExpSub replaces every x[i] with Exp(x[i] - m): the numerators of a
// softmax whose maximum is m.
func ExpSub(x []float32, m float32) {
	active().expSub(x, m)
}

func swigluGeneric(dst, x, y []float32) {
	for i := range dst {
		dst[i] = SiLU(x[i]) * y[i]
	}
}

func expSubGeneric(x []float32, m float32) {
	for i, v := range x {
		x[i] = Exp(v - m)
	}
}
