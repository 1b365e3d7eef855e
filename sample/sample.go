// Package sample picks the next token from a model's logits: greedy, or
// random with temperature, top-k, top-p, min-p and a repetition penalty,
// from a seed that makes runs repeatable. The order of the steps is
// llama.cpp's: penalties, top-k, top-p, min-p, temperature, then a draw.
package sample

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Params configure a Sampler. The zero value is greedy decoding.
type Params struct {
	Temp          float32 // 0 or less: greedy (always the most likely token)
	TopK          int     // keep the k most likely tokens (0: all)
	TopP          float32 // keep the smallest set whose probability reaches p (1 or 0: all)
	MinP          float32 // drop tokens below min_p × the top probability (0: none)
	RepeatPenalty float32 // divide the logits of recent tokens by this (1 or 0: off)
	RepeatLastN   int     // how many recent tokens the penalty looks at (default 64)
	Seed          uint64  // the random stream; the same seed gives the same tokens
}

// Defaults returns llama.cpp's default sampling settings.
func Defaults() Params {
	return Params{Temp: 0.8, TopK: 40, TopP: 0.95, MinP: 0.05, RepeatPenalty: 1, RepeatLastN: 64, Seed: 1}
}

// Validate reports the first parameter that makes no sense.
func (p Params) Validate() error {
	switch {
	case math.IsNaN(float64(p.Temp)) || math.IsInf(float64(p.Temp), 0):
		return fmt.Errorf("sample: temperature %v is not a finite number", p.Temp)
	case p.TopK < 0:
		return fmt.Errorf("sample: top-k %d is negative", p.TopK)
	case !(p.TopP >= 0 && p.TopP <= 1):
		return fmt.Errorf("sample: top-p %v is outside [0, 1]", p.TopP)
	case !(p.MinP >= 0 && p.MinP <= 1):
		return fmt.Errorf("sample: min-p %v is outside [0, 1]", p.MinP)
	case !(p.RepeatPenalty >= 0) || math.IsInf(float64(p.RepeatPenalty), 0):
		return fmt.Errorf("sample: repeat penalty %v must be a non-negative number", p.RepeatPenalty)
	case p.RepeatLastN < 0:
		return fmt.Errorf("sample: repeat-last-n %d is negative", p.RepeatLastN)
	}
	return nil
}

// Sampler draws tokens. It is not safe for concurrent use; give each
// sequence its own.
type Sampler struct {
	p       Params
	rng     *rand.Rand
	recent  []int32
	cand    []candidate
	visited map[int32]bool
}

type candidate struct {
	id    int32
	logit float32
	p     float32
}

// New returns a sampler, or an error naming a bad parameter.
func New(p Params) (*Sampler, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if p.RepeatLastN == 0 {
		p.RepeatLastN = 64
	}
	return &Sampler{p: p, rng: rand.New(rand.NewPCG(p.Seed, p.Seed^0x9e3779b97f4a7c15))}, nil
}

// Greedy returns a sampler that always picks the most likely token.
func Greedy() *Sampler {
	s, _ := New(Params{})
	return s
}

// Accept records a token of the sequence (prompt or generated) for the
// repetition penalty.
func (s *Sampler) Accept(id int32) {
	s.recent = append(s.recent, id)
	if len(s.recent) > 4*s.p.RepeatLastN {
		s.recent = append(s.recent[:0], s.recent[len(s.recent)-s.p.RepeatLastN:]...)
	}
}

// Argmax returns the index of the largest logit (the first, on ties).
func Argmax(logits []float32) int32 {
	best := 0
	for i, v := range logits {
		if v > logits[best] {
			best = i
		}
	}
	return int32(best)
}

// Sample picks the next token from logits. It does not modify logits.
func (s *Sampler) Sample(logits []float32) int32 {
	if len(logits) == 0 {
		return -1
	}
	c := s.cand[:0]
	for i, v := range logits {
		c = append(c, candidate{id: int32(i), logit: v})
	}
	s.cand = c
	s.penalize(c)
	if s.p.Temp <= 0 {
		best := 0
		for i := range c {
			if c[i].logit > c[best].logit {
				best = i
			}
		}
		return c[best].id
	}
	c = best(c, s.p.TopK)
	probs(c, 1)
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
	probs(c, s.p.Temp)
	r := s.rng.Float32()
	var cum float32
	for i := range c {
		cum += c[i].p
		if r < cum {
			return c[i].id
		}
	}
	return c[len(c)-1].id
}

// before orders candidates the way a stable sort by falling logit does:
// larger logit first, then smaller id.
func before(a, b candidate) int {
	if c := cmp.Compare(b.logit, a.logit); c != 0 {
		return c
	}
	return cmp.Compare(a.id, b.id)
}

// best returns the k best candidates of c (all when k is 0 or at least
// len(c)) in that order, reordering c. For top-k it keeps a heap of the k
// best instead of sorting the whole vocabulary (128k tokens for Llama 3):
// O(n log k), with the same result as sorting all and taking k.
func best(c []candidate, k int) []candidate {
	if k <= 0 || k >= len(c) {
		slices.SortFunc(c, before)
		return c
	}
	h := c[:k] // a heap whose root is the worst of the k best so far
	down := func(i int) {
		for {
			w, l, r := i, 2*i+1, 2*i+2
			if l < k && before(h[w], h[l]) < 0 {
				w = l
			}
			if r < k && before(h[w], h[r]) < 0 {
				w = r
			}
			if w == i {
				return
			}
			h[i], h[w] = h[w], h[i]
			i = w
		}
	}
	for i := k/2 - 1; i >= 0; i-- {
		down(i)
	}
	for _, x := range c[k:] {
		if before(x, h[0]) < 0 {
			h[0] = x
			down(0)
		}
	}
	slices.SortFunc(h, before)
	return h
}

// penalize applies the repetition penalty to the recent tokens: positive
// logits are divided by it, negative ones multiplied, as llama.cpp does.
func (s *Sampler) penalize(c []candidate) {
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
		if c[id].logit > 0 {
			c[id].logit /= pen
		} else {
			c[id].logit *= pen
		}
	}
}

// probs sets p to the softmax of logit/temp over the candidates (sorted,
// largest first).
func probs(c []candidate, temp float32) {
	maxv := c[0].logit
	var sum float64
	for i := range c {
		e := math.Exp(float64((c[i].logit - maxv) / temp))
		c[i].p = float32(e)
		sum += e
	}
	for i := range c {
		c[i].p = float32(float64(c[i].p) / sum)
	}
}
