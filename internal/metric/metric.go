// Package metric holds the one definition of the error measure every
// comparison of a backend with the reference uses: ggml's
// test-backend-ops NMSE. The conformance suite, the backends' self-tests
// and the tests all call it.
package metric

import "math"

// MatMulNMSE is the most NMSE a matrix product may show against the
// reference: products quantize activations (to Q8_0 or Q8_K on the CPU)
// or sum in another order. The conformance suite's threshold for
// products (conformance.MatMulNMSE), the OpenCL self-test's and its
// tuner's candidate check are this one value.
const MatMulNMSE = 5e-4

// NMSE is mse(want, got) / mse(want, 0). It is +Inf when the lengths
// differ or got holds a NaN or an Inf that want does not, and 0 when both
// are all zero.
func NMSE(want, got []float32) float64 {
	if len(want) != len(got) {
		return math.Inf(1)
	}
	var num, den float64
	for i := range want {
		r, g := float64(want[i]), float64(got[i])
		if math.IsNaN(g) || math.IsInf(g, 0) {
			if !(math.IsNaN(r) && math.IsNaN(g)) && r != g {
				return math.Inf(1)
			}
			continue
		}
		d := r - g
		num += d * d
		den += r * r
	}
	if den == 0 {
		if num == 0 {
			return 0
		}
		return math.Inf(1)
	}
	return num / den
}

// NMSERows is NMSE over rows of equal length, as one flat vector.
func NMSERows(want, got [][]float32) float64 {
	if len(want) != len(got) {
		return math.Inf(1)
	}
	var w, g []float32
	for i := range want {
		if len(want[i]) != len(got[i]) {
			return math.Inf(1)
		}
		w, g = append(w, want[i]...), append(g, got[i]...)
	}
	return NMSE(w, g)
}
