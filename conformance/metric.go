// Package conformance checks that every backend gives the reference
// engine's answers: op by op, against the ref package's definitions, and
// end to end, against ref's logits and greedy text.
//
// The metric is ggml's test-backend-ops NMSE: mse(ref, got) / mse(ref, 0).
package conformance

import (
	"math"

	"github.com/ocelot-llm/ocelot/internal/metric"
)

// Thresholds per kind of op. Exact ops agree to float rounding; matrix
// products and quantized paths quantize activations (to Q8_0 or Q8_K on
// the CPU) or sum in another order, which costs more.
const (
	ExactNMSE     = 1e-7
	MatMulNMSE    = metric.MatMulNMSE
	QuantizedNMSE = 5e-4
	// RopeNMSE: ref computes each angle in float64; backends compute it
	// in float32, whose rounding at positions in the thousands is ~1e-4
	// radians. That is above the exact-op threshold but far below any
	// visible effect.
	RopeNMSE = 1e-6
)

// NMSE is mse(ref, got) / mse(ref, 0), as internal/metric defines it
// for every comparison in ocelot.
func NMSE(ref, got []float32) float64 { return metric.NMSE(ref, got) }

// NonFinite counts NaN and Inf values.
func NonFinite(v []float32) int {
	n := 0
	for _, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			n++
		}
	}
	return n
}

// worst describes where two slices differ most, for failure messages.
func worst(ref, got []float32) (idx int, r, g float32) {
	best := -1.0
	for i := range ref {
		d := math.Abs(float64(ref[i]) - float64(got[i]))
		if math.IsNaN(float64(got[i])) {
			d = math.Inf(1)
		}
		if d > best {
			best, idx = d, i
		}
	}
	if idx < len(ref) {
		return idx, ref[idx], got[idx]
	}
	return 0, 0, 0
}

// softmax64 returns probabilities of logits in float64.
func softmax64(l []float32) []float64 {
	m := math.Inf(-1)
	for _, v := range l {
		m = math.Max(m, float64(v))
	}
	p := make([]float64, len(l))
	var s float64
	for i, v := range l {
		p[i] = math.Exp(float64(v) - m)
		s += p[i]
	}
	for i := range p {
		p[i] /= s
	}
	return p
}

// KL is the Kullback-Leibler divergence KL(ref ‖ got) of the softmax
// distributions of two logit vectors, in nats.
func KL(ref, got []float32) float64 {
	p, q := softmax64(ref), softmax64(got)
	var kl float64
	for i := range p {
		if p[i] > 0 {
			kl += p[i] * math.Log(p[i]/math.Max(q[i], 1e-300))
		}
	}
	return kl
}

func argmax(v []float32) int {
	b := 0
	for i := range v {
		if v[i] > v[b] {
			b = i
		}
	}
	return b
}
