package synth

// rng is a small, fast, seeded generator (splitmix64). ocelot defines its
// own so that a seed gives the same model on every platform and Go release:
// golden outputs are computed from these models.
type rng struct{ s uint64 }

func newRNG(seed uint64) *rng { return &rng{s: seed} }

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// uniform returns a float32 in [0, 1), exactly representable.
func (r *rng) uniform() float32 { return float32(r.next()>>40) * (1.0 / (1 << 24)) }

// normal returns an approximately standard-normal float32: the sum of four
// uniforms, centred and scaled to unit variance. It uses only exact
// float32 arithmetic, so it is the same on every platform (math.Log and
// friends may differ in the last bit between architectures).
func (r *rng) normal() float32 {
	const scale = 1.7320508 // sqrt(12/4)
	s := r.uniform() + r.uniform() + r.uniform() + r.uniform()
	return (s - 2) * scale
}

// hashString mixes a string into a seed, so each tensor gets its own
// stream that does not depend on the order tensors are written in.
func hashString(seed uint64, s string) uint64 {
	h := seed ^ 0xcbf29ce484222325
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 0x100000001b3
	}
	r := rng{s: h}
	return r.next()
}
