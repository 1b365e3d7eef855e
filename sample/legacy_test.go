package sample

// legacy is the sampler as it was before it became a Chain, frozen here so
// that TestChainMatchesLegacy can check that New gives the same tokens for
// the same seed as it always did.

import (
	"math"
	"math/rand/v2"
)

// legacySampler is the old Sampler, unchanged but for its name.
type legacySampler struct {
	p       Params
	rng     *rand.Rand
	recent  []int32
	cand    []candidate
	visited map[int32]bool
}

// newLegacy is the old New.
func newLegacy(p Params) (*legacySampler, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if p.RepeatLastN == 0 {
		p.RepeatLastN = 64
	}
	return &legacySampler{p: p, rng: rand.New(rand.NewPCG(p.Seed, p.Seed^0x9e3779b97f4a7c15))}, nil
}

// Accept records a token of the sequence (prompt or generated) for the
// repetition penalty. Any id is accepted; ids outside the vocabulary of a
// later Sample are not penalised. The history kept is bounded (at most
// 4 × RepeatLastN ids).
func (s *legacySampler) Accept(id int32) {
	s.recent = append(s.recent, id)
	if len(s.recent) > 4*s.p.RepeatLastN {
		s.recent = append(s.recent[:0], s.recent[len(s.recent)-s.p.RepeatLastN:]...)
	}
}

// Sample picks the next token from logits. It does not modify logits.
//
// The engine refuses non-finite logits before sampling; for any other
// caller the behaviour is defined, and Sample never panics: a NaN logit is
// treated as -Inf, and -Inf is a probability of zero, so neither is ever
// picked while some token is finite or +Inf; +Inf logits share all the
// probability among themselves (greedy picks the first). Sample returns
// -1, which is no token, when logits is empty, longer than an int32 id can
// index, or holds nothing but NaN and -Inf. Whenever at least one logit is
// finite or +Inf, the id returned is in [0, len(logits)).
func (s *legacySampler) Sample(logits []float32) int32 {
	if len(logits) == 0 || len(logits) > math.MaxInt32 {
		return -1
	}
	negInf := float32(math.Inf(-1))
	c := s.cand[:0]
	for i, v := range logits {
		if v != v {
			v = negInf
		}
		c = append(c, candidate{id: int32(i), logit: v})
	}
	s.cand = c
	// The penalty keeps finite logits finite and ±Inf as they are, so the
	// best logit after it is -Inf only when nothing was drawable before.
	s.penalize(c)
	if s.p.Temp <= 0 {
		best := 0
		for i := range c {
			if c[i].logit > c[best].logit {
				best = i
			}
		}
		if c[best].logit == negInf {
			return -1
		}
		return c[best].id
	}
	c = best(c, s.p.TopK)
	if c[0].logit == negInf {
		return -1
	}
	legacyProbs(c, 1)
	if p := s.p.TopP; p > 0 && p < 1 {
		var cum float32
		for i := range c {
			cum += c[i].p
			if cum >= p {
				c = c[:i+1]
				break
			}
		}
	}
	if m := s.p.MinP; m > 0 {
		limit := c[0].p * m
		keep := 1
		for keep < len(c) && c[keep].p >= limit {
			keep++
		}
		c = c[:keep]
	}
	legacyProbs(c, s.p.Temp)
	r := s.rng.Float32()
	var cum float32
	for i := range c {
		cum += c[i].p
		if r < cum {
			return c[i].id
		}
	}
	// Rounding left the sum below r: take the last candidate that has a
	// probability (c[0] always has), never one of probability zero.
	for i := len(c) - 1; i > 0; i-- {
		if c[i].p > 0 {
			return c[i].id
		}
	}
	return c[0].id
}

// penalize applies the repetition penalty to the recent tokens: positive
// logits are divided by it, negative ones multiplied, as llama.cpp does.
// A finite logit stays finite: a result past ±MaxFloat32 is held there, so
// a huge or tiny penalty cannot make a token certain or impossible.
func (s *legacySampler) penalize(c []candidate) {
	pen := s.p.RepeatPenalty
	if pen == 0 || pen == 1 || len(s.recent) == 0 {
		return
	}
	if s.visited == nil {
		s.visited = map[int32]bool{}
	}
	clear(s.visited)
	start := max(0, len(s.recent)-s.p.RepeatLastN)
	for _, id := range s.recent[start:] {
		if id < 0 || int(id) >= len(c) || s.visited[id] {
			continue
		}
		s.visited[id] = true
		v := c[id].logit
		if v > 0 {
			v /= pen
		} else {
			v *= pen
		}
		if finite(c[id].logit) {
			v = min(max(v, -math.MaxFloat32), math.MaxFloat32)
		}
		c[id].logit = v
	}
}

// probs sets p to the softmax of logit/temp over the candidates (sorted,
// largest first; no NaN, c[0] above -Inf; temp > 0). A logit equal to the
// largest has weight 1 even when both are +Inf, so the sum is at least 1.
func legacyProbs(c []candidate, temp float32) {
	maxv := c[0].logit
	var sum float64
	for i := range c {
		e := 1.0
		if v := c[i].logit; v != maxv {
			e = math.Exp(float64((v - maxv) / temp))
		}
		c[i].p = float32(e)
		sum += e
	}
	for i := range c {
		c[i].p = float32(float64(c[i].p) / sum)
	}
}
