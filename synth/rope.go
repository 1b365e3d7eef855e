package synth

import "math"

// Llama 3.1's RoPE scaling, as its GGUF files carry it in rope_freqs.weight:
// one divisor per pair of dimensions of a head. Low frequencies (long
// wavelengths) are divided by the scale factor, high frequencies are kept,
// and the band between is blended smoothly.
const (
	ropeFreqBase       = 500000.0
	ropeScaleFactor    = 8.0
	ropeLowFreqFactor  = 1.0
	ropeHighFreqFactor = 4.0
	ropeOrigCtx        = 8192.0
)

// ropeFreqFactors returns the headDim/2 divisors for the rotary
// frequencies, computed as Llama 3.1's reference code and llama.cpp's
// converter do.
func ropeFreqFactors(headDim int) []float32 {
	lowWavelen := ropeOrigCtx / ropeLowFreqFactor
	highWavelen := ropeOrigCtx / ropeHighFreqFactor
	out := make([]float32, headDim/2)
	for i := range out {
		freq := 1 / math.Pow(ropeFreqBase, float64(2*i)/float64(headDim))
		wavelen := 2 * math.Pi / freq
		switch {
		case wavelen < highWavelen:
			out[i] = 1
		case wavelen > lowWavelen:
			out[i] = ropeScaleFactor
		default:
			smooth := (ropeOrigCtx/wavelen - ropeLowFreqFactor) / (ropeHighFreqFactor - ropeLowFreqFactor)
			out[i] = float32(1 / ((1-smooth)/ropeScaleFactor + smooth))
		}
	}
	return out
}
