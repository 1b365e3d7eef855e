package quant

import "fmt"

// Dot products of one weight row with one activation row, on the active
// kernel path: the quantized ones run the path's GEMV kernel (what MatMul
// runs for a single activation row) on one weight row, the float ones the
// path's dot kernel. They are for a single pair of rows; MatMul is the fast
// way to multiply many rows.
//
// n is the number of elements and must be a whole number of the weight
// type's blocks; w and a must hold at least n elements in their formats
// (the activation format is ActType of the weight type). These functions
// panic when that is not so, as an out-of-range index would: a wrong length
// here is a bug in the caller, not bad input.
//
// The integer block sums are exact on every path; the float result depends
// on the order in which each path adds the per-block products, so two paths
// may differ in the last bits (see MatMul).

// VecDotQ4_0Q8_0 returns the dot product of n Q4_0 weights in w with n Q8_0
// activations in a.
func VecDotQ4_0Q8_0(n int, w, a []byte) float32 {
	return vecDotQ(qQ4_0, Q4_0, n, w, a)
}

// VecDotQ8_0Q8_0 returns the dot product of n Q8_0 weights in w with n Q8_0
// activations in a.
func VecDotQ8_0Q8_0(n int, w, a []byte) float32 {
	return vecDotQ(qQ8_0, Q8_0, n, w, a)
}

// VecDotQ6_KQ8_K returns the dot product of n Q6_K weights in w with n Q8_K
// activations in a.
func VecDotQ6_KQ8_K(n int, w, a []byte) float32 {
	return vecDotQ(qQ6_K, Q6_K, n, w, a)
}

func vecDotQ(q qtype, wt Type, n int, w, a []byte) float32 {
	at, _ := ActType(wt)
	bs := wt.BlockSize()
	if n < 0 || n%bs != 0 {
		panic(fmt.Sprintf("quant: dot %s: %d elements is not a whole number of %d-element blocks", wt, n, bs))
	}
	if n == 0 {
		return 0
	}
	nw := n / bs * wt.TypeSize()
	na := n / at.BlockSize() * at.TypeSize()
	if len(w) < nw || len(a) < na {
		panic(fmt.Sprintf("quant: dot %s: %d elements need %d weight and %d activation bytes, have %d and %d", wt, n, nw, na, len(w), len(a)))
	}
	var out [1]float32
	active().gemv[q](n, w[:nw], nw, 1, a[:na], out[:])
	return out[0]
}

// VecDotF32 returns the dot product of the first n elements of w and a.
func VecDotF32(n int, w, a []float32) float32 {
	if n < 0 || len(w) < n || len(a) < n {
		panic(fmt.Sprintf("quant: dot f32: %d elements, have %d and %d", n, len(w), len(a)))
	}
	if n == 0 {
		return 0
	}
	return active().dotF32(n, w[:n], a[:n])
}

// VecDotF16F32 returns the dot product of n F16 weights (little-endian
// IEEE half precision, 2 bytes each) in w with n float32 activations.
func VecDotF16F32(n int, w []byte, a []float32) float32 {
	if n < 0 || len(w) < 2*n || len(a) < n {
		panic(fmt.Sprintf("quant: dot f16: %d elements need %d weight bytes and %d activations, have %d and %d", n, 2*n, n, len(w), len(a)))
	}
	if n == 0 {
		return 0
	}
	return active().dotF16(n, w[:2*n], a[:n])
}

// VecDotBF16F32 returns the dot product of n BF16 weights (little-endian
// bfloat16, 2 bytes each) in w with n float32 activations.
func VecDotBF16F32(n int, w []byte, a []float32) float32 {
	if n < 0 || len(w) < 2*n || len(a) < n {
		panic(fmt.Sprintf("quant: dot bf16: %d elements need %d weight bytes and %d activations, have %d and %d", n, 2*n, n, len(w), len(a)))
	}
	if n == 0 {
		return 0
	}
	return active().dotBF16(n, w[:2*n], a[:n])
}
