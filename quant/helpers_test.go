package quant

import "math"

// rng is splitmix64: small, fast and identical on every platform, so the
// inputs of the golden tests never change.
type rng struct{ s uint64 }

func newRNG(seed uint64) *rng { return &rng{seed} }

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// intn returns a uniform int in [0, n).
func (r *rng) intn(n int) int { return int(r.next() % uint64(n)) }

// uniform returns a float32 uniform in [-1, 1), built from 24 random bits so
// that no rounding is involved.
func (r *rng) uniform() float32 {
	return float32(int32(r.next()>>40)-(1<<23)) / (1 << 23)
}

// normal returns an approximately normal float32 (mean 0, variance 1) as the
// scaled sum of four uniforms; only exact-or-deterministic float arithmetic
// is used, so every platform gets the same bits.
func (r *rng) normal() float32 {
	s := r.uniform() + r.uniform() + r.uniform() + r.uniform()
	return s * 0.8660254 // sqrt(3/4): each uniform has variance 1/3
}

// goldenInput returns n (a multiple of 256) float32 values that exercise the
// quantizers: ordinary weights at many scales, ties, equal magnitudes of
// both signs, zeros, constants, outliers, tiny and huge values, and blocks
// whose scale under- or overflows f16.
func goldenInput(n int) []float32 {
	r := newRNG(0x0ce107)
	x := make([]float32, n)
	for c := 0; c < n/256; c++ {
		v := x[256*c : 256*c+256]
		switch c % 16 {
		case 0: // weights
			for i := range v {
				v[i] = r.normal() * 0.02
			}
		case 1: // per-32 scales from 2^-20 to 2^20
			for b := range 8 {
				s := float32(math.Ldexp(1, r.intn(41)-20))
				for i := range 32 {
					v[32*b+i] = r.uniform() * s
				}
			}
		case 2: // per-16 scales over the whole float32 range, some f16 overflow
			for b := range 16 {
				s := float32(math.Ldexp(1, r.intn(200)-100))
				for i := range 16 {
					v[16*b+i] = r.normal() * s
				}
			}
		case 3: // sparse: zeros with a few spikes; some all-zero groups
			for range 6 {
				v[r.intn(256)] = r.normal() * 4
			}
		case 4: // all zero (sign of zero varies)
			for i := range v {
				if r.intn(2) == 0 {
					v[i] = float32(math.Copysign(0, -1))
				}
			}
		case 5: // halves in [-8, 8]: exact ties for Q4_0; ±8 sets d = ∓1
			for b := range 8 {
				for i := range 32 {
					v[32*b+i] = float32(r.intn(33)-16) / 2
				}
				v[32*b+r.intn(32)] = float32(8 * (1 - 2*r.intn(2)))
			}
		case 6: // k+0.5 with a ±127 per block: ties for Q8_0's roundf
			for b := range 8 {
				for i := range 32 {
					v[32*b+i] = float32(r.intn(254)-127) + 0.5
				}
				v[32*b+r.intn(32)] = float32(127 * (1 - 2*r.intn(2)))
			}
		case 7: // random finite bit patterns
			for i := range v {
				b := uint32(r.next())
				if b&0x7f800000 == 0x7f800000 {
					b &^= 0x00800000
				}
				v[i] = math.Float32frombits(b)
			}
		case 8: // equal magnitudes of both signs: which one wins matters
			for b := range 16 {
				m := float32(r.intn(100) + 1)
				for i := range 16 {
					v[16*b+i] = r.uniform() * m
				}
				v[16*b+r.intn(16)] = m
				v[16*b+r.intn(16)] = -m
			}
		case 9: // constants
			for b := range 8 {
				k := r.normal()
				for i := range 32 {
					v[32*b+i] = k
				}
			}
		case 10: // weights with one outlier per 32
			for b := range 8 {
				for i := range 32 {
					v[32*b+i] = r.normal() * 0.05
				}
				v[32*b+r.intn(32)] = r.normal() * 5
			}
		case 11: // tiny: float32 subnormals and f16-subnormal scales
			for i := range v {
				if i < 128 {
					v[i] = r.uniform() * 1e-38
				} else {
					v[i] = r.uniform() * 1e-6
				}
			}
		case 12: // huge
			for i := range v {
				v[i] = r.uniform() * 1e30
			}
		case 13: // one weight per 16 group
			for b := range 16 {
				v[16*b+r.intn(16)] = r.normal()
			}
		case 14: // near f16 midpoints around 1
			for i := range v {
				h := 0x3c00 + r.intn(1024)
				lo, hi := FP16ToFloat32(uint16(h)), FP16ToFloat32(uint16(h+1))
				mid := math.Float32bits((lo + hi) / 2)
				v[i] = math.Float32frombits(mid + uint32(r.intn(3)) - 1)
			}
		case 15: // wide weights
			for i := range v {
				v[i] = r.normal() * 3
			}
		}
	}
	return x
}

// specialInput returns blocks with NaN and ±inf mixed into weights, where
// ggml's behaviour is defined only by its x86-64 code generation.
func specialInput() []float32 {
	r := newRNG(0x5bec1a1)
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	x := make([]float32, 256*8)
	for c := range 8 {
		v := x[256*c : 256*c+256]
		for i := range v {
			v[i] = r.normal()
		}
		switch c {
		case 0:
			v[r.intn(256)] = nan
		case 1:
			v[r.intn(256)] = inf
		case 2:
			v[r.intn(256)] = -inf
		case 3:
			v[0] = nan
		case 4:
			for i := range v {
				v[i] = nan
			}
		case 5:
			v[r.intn(256)], v[r.intn(256)] = inf, -inf
		case 6:
			for i := range v {
				if i%3 == 0 {
					v[i] = nan
				}
			}
		case 7:
			for i := range v {
				v[i] = inf
			}
		}
	}
	return x
}

// randomBytes returns n pseudo-random bytes.
func randomBytes(seed uint64, n int) []byte {
	r := newRNG(seed)
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.next())
	}
	return b
}
