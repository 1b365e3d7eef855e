package sample

import (
	"math"
	"math/rand/v2"
)

// GreedyPicker picks the most likely candidate (the smallest id on ties).
type GreedyPicker struct{}

// Pick returns the id of the largest logit, or -1 when there is no
// candidate or every logit is -Inf.
func (GreedyPicker) Pick(c *Candidates) int32 {
	i := c.max()
	if i < 0 || math.IsInf(float64(c.items[i].logit), -1) {
		return -1
	}
	return c.items[i].id
}

// RandomPicker draws a candidate with the probabilities of the softmax of
// the logits, from a seeded random stream: the same seed gives the same
// draws (llama.cpp's dist sampler). It never draws a candidate of
// probability zero.
type RandomPicker struct {
	rng *rand.Rand
}

// NewRandomPicker returns a picker drawing from the stream of seed (see
// RandomSeed for a seed that differs each run).
func NewRandomPicker(seed uint64) *RandomPicker {
	return &RandomPicker{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Pick draws a candidate, or returns -1 (drawing nothing) when there is no
// candidate or every logit is -Inf.
func (r *RandomPicker) Pick(c *Candidates) int32 {
	if len(c.items) == 0 {
		return -1
	}
	if c.probs != probExact || !c.sorted {
		c.Softmax()
	}
	items := c.items
	if math.IsInf(float64(items[0].logit), -1) {
		return -1
	}
	x := r.rng.Float32()
	var cum float32
	for i := range items {
		cum += items[i].p
		if x < cum {
			return items[i].id
		}
	}
	// Rounding left the sum below x: take the last candidate that has a
	// probability (items[0] always has), never one of probability zero.
	for i := len(items) - 1; i > 0; i-- {
		if items[i].p > 0 {
			return items[i].id
		}
	}
	return items[0].id
}

// RandomSeed returns a seed that differs from run to run, for
// Params.Seed or NewRandomPicker. Defaults keeps Seed 1, and a Seed of 0
// stays an ordinary seed, so that runs stay repeatable unless asked.
func RandomSeed() uint64 { return rand.Uint64() }
