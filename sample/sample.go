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

// Params configure a Sampler. The zero value is greedy decoding. Every
// field has a range, checked by Validate and New (see MaxRepeatLastN).
type Params struct {
	Temp          float32 // any finite number; 0 or less: greedy (always the most likely token)
	TopK          int     // 0 or more: keep the k most likely tokens (0, or more than the vocabulary: all)
	TopP          float32 // [0, 1]: keep the smallest set whose probability reaches p (1 or 0: all)
	MinP          float32 // [0, 1]: drop tokens below min_p × the top probability (0: none)
	RepeatPenalty float32 // finite, 0 or more: divide the logits of recent tokens by this (1 or 0: off)
	RepeatLastN   int     // [0, MaxRepeatLastN]: how many recent tokens the penalty looks at (0: 64)
	Seed          uint64  // any: the random stream; the same seed gives the same tokens
}

// MaxRepeatLastN is the largest RepeatLastN: a million tokens, more than
// any context ocelot runs, and small enough that the history Accept keeps
// (at most 4 × RepeatLastN ids) stays bounded.
const MaxRepeatLastN = 1 << 20

// Defaults returns llama.cpp's default sampling settings.
func Defaults() Params {
	return Params{Temp: 0.8, TopK: 40, TopP: 0.95, MinP: 0.05, RepeatPenalty: 1, RepeatLastN: 64, Seed: 1}
}

// finite reports whether v is neither NaN nor ±Inf.
func finite(v float32) bool {
	return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0)
}

// outside is the error for a parameter out of its range: it names the
// field (and its llama.cpp flag), the value and the range allowed.
func outside(field, flag string, v any, allowed string) error {
	return fmt.Errorf("sample: %s (--%s) %v is outside the allowed range: %s", field, flag, v, allowed)
}

// Validate reports the first parameter outside its range, naming the
// field, the value and the range allowed.
func (p Params) Validate() error {
	switch {
	case !finite(p.Temp):
		return outside("Temp", "temp", p.Temp, "a finite number (0 or less: greedy)")
	case p.TopK < 0:
		return outside("TopK", "top-k", p.TopK, "0 or more (0: all tokens)")
	case !(p.TopP >= 0 && p.TopP <= 1):
		return outside("TopP", "top-p", p.TopP, "[0, 1] (0 or 1: off)")
	case !(p.MinP >= 0 && p.MinP <= 1):
		return outside("MinP", "min-p", p.MinP, "[0, 1] (0: off)")
	case !(p.RepeatPenalty >= 0) || !finite(p.RepeatPenalty):
		return outside("RepeatPenalty", "repeat-penalty", p.RepeatPenalty, "a finite number, 0 or more (0 or 1: off)")
	case p.RepeatLastN < 0:
		return outside("RepeatLastN", "repeat-last-n", p.RepeatLastN,
			fmt.Sprintf("[0, %d] (llama.cpp's -1, the whole context, is not supported: give the context size)", MaxRepeatLastN))
	case p.RepeatLastN > MaxRepeatLastN:
		return outside("RepeatLastN", "repeat-last-n", p.RepeatLastN, fmt.Sprintf("[0, %d]", MaxRepeatLastN))
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
// repetition penalty. Any id is accepted; ids outside the vocabulary of a
// later Sample are not penalised. The history kept is bounded (at most
// 4 × RepeatLastN ids).
func (s *Sampler) Accept(id int32) {
	s.recent = append(s.recent, id)
	if len(s.recent) > 4*s.p.RepeatLastN {
		s.recent = append(s.recent[:0], s.recent[len(s.recent)-s.p.RepeatLastN:]...)
	}
}

// Argmax returns the index of the largest logit (the first, on ties).
// NaN never wins; it returns -1 when logits is empty or all NaN.
func Argmax(logits []float32) int32 {
	best := -1
	for i, v := range logits {
		if v == v && (best < 0 || v > logits[best]) {
			best = i
		}
	}
	return int32(best)
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
func (s *Sampler) Sample(logits []float32) int32 {
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
	// Rounding left the sum below r: take the last candidate that has a
	// probability (c[0] always has), never one of probability zero.
	for i := len(c) - 1; i > 0; i-- {
		if c[i].p > 0 {
			return c[i].id
		}
	}
	return c[0].id
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
// A finite logit stays finite: a result past ±MaxFloat32 is held there, so
// a huge or tiny penalty cannot make a token certain or impossible.
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
func probs(c []candidate, temp float32) {
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
