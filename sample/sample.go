// Package sample picks the next token from a model's logits.
//
// A Chain is llama.cpp's sampler chain: processors that change the logits
// or drop tokens (RepeatPenalty, PresenceFrequency, LogitBias, Temperature,
// TopK, TopP, MinP, and Grammar, which keeps output inside a GBNF grammar
// from package sample/grammar), then a picker (GreedyPicker, or a seeded
// RandomPicker); it reports the log-probabilities of its choices
// (LastLogprobs). New builds the usual chain from Params: greedy, or random
// with penalties, top-k, top-p, min-p and temperature in llama.cpp's order
// (penalties, top-k, top-p, min-p, temperature, then a draw), from a seed
// that makes runs repeatable. TokenSampler is what generation needs of
// either.
package sample

import (
	"cmp"
	"fmt"
	"maps"
	"math"
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
	RepeatLastN   int     // [0, MaxRepeatLastN]: how many recent tokens the penalties look at (0: 64)
	Seed          uint64  // any: the random stream; the same seed gives the same tokens (RandomSeed gives a fresh one)

	// OpenAI's penalties over the last RepeatLastN tokens: a token seen
	// count > 0 times has its logit lowered by PresencePenalty +
	// FrequencyPenalty × count (see PresenceFrequency).
	PresencePenalty  float32 // [-2, 2] (0: off)
	FrequencyPenalty float32 // [-2, 2] (0: off)
	// LogitBias adds to the logits of the tokens it names (see LogitBias):
	// ids 0 or more, values finite, or -Inf to ban the token.
	LogitBias map[int32]float32
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
	case !(p.PresencePenalty >= -2 && p.PresencePenalty <= 2):
		return outside("PresencePenalty", "presence-penalty", p.PresencePenalty, "[-2, 2] (0: off)")
	case !(p.FrequencyPenalty >= -2 && p.FrequencyPenalty <= 2):
		return outside("FrequencyPenalty", "frequency-penalty", p.FrequencyPenalty, "[-2, 2] (0: off)")
	}
	ids := make([]int32, 0, len(p.LogitBias))
	for id := range p.LogitBias {
		ids = append(ids, id)
	}
	slices.Sort(ids) // report the same one every time
	for _, id := range ids {
		v := p.LogitBias[id]
		switch {
		case id < 0:
			return outside("LogitBias", "logit-bias", fmt.Sprintf("token %d", id), "token ids 0 or more")
		case v != v || math.IsInf(float64(v), 1):
			return outside("LogitBias", "logit-bias", fmt.Sprintf("%v for token %d", v, id), "a finite number, or -Inf to ban the token")
		}
	}
	return nil
}

// Sampler is the sampler New builds from Params: a Chain of the
// processors the parameters turn on. It is not safe for concurrent use;
// give each sequence its own.
type Sampler struct {
	chain *Chain
}

type candidate struct {
	id    int32
	logit float32
	p     float32
}

// New returns a sampler, or an error naming a bad parameter.
func New(p Params) (*Sampler, error) {
	ch, err := p.Chain()
	if err != nil {
		return nil, err
	}
	return &Sampler{chain: ch}, nil
}

// Chain returns the chain that Params stand for, with constraints (such
// as a Grammar) placed after the penalties and before top-k, as llama.cpp
// applies a grammar to the whole distribution: LogitBias, RepeatPenalty,
// PresenceFrequency, the constraints, then TopK, TopP, MinP and
// Temperature and a RandomPicker, or for Temp 0 or less a GreedyPicker.
// Steps that the parameters leave off are not in the chain. It returns an
// error naming a bad parameter.
func (p Params) Chain(constraints ...Processor) (*Chain, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	var procs []Processor
	if len(p.LogitBias) > 0 {
		procs = append(procs, LogitBias(maps.Clone(p.LogitBias)))
	}
	if p.RepeatPenalty != 0 && p.RepeatPenalty != 1 {
		procs = append(procs, &RepeatPenalty{Penalty: p.RepeatPenalty, LastN: p.RepeatLastN})
	}
	if p.PresencePenalty != 0 || p.FrequencyPenalty != 0 {
		procs = append(procs, &PresenceFrequency{Presence: p.PresencePenalty, Frequency: p.FrequencyPenalty, LastN: p.RepeatLastN})
	}
	procs = append(procs, constraints...)
	if p.Temp <= 0 {
		return NewChain(GreedyPicker{}, procs...), nil
	}
	if p.TopK > 0 {
		procs = append(procs, TopK{p.TopK})
	}
	if p.TopP > 0 && p.TopP < 1 {
		procs = append(procs, TopP{p.TopP})
	}
	if p.MinP > 0 {
		procs = append(procs, MinP{p.MinP})
	}
	procs = append(procs, Temperature{p.Temp})
	return NewChain(NewRandomPicker(p.Seed), procs...), nil
}

// Greedy returns a sampler that always picks the most likely token.
func Greedy() *Sampler {
	s, _ := New(Params{})
	return s
}

// Accept records a token of the sequence (prompt or generated) for the
// penalties. Any id is accepted; ids outside the vocabulary of a later
// Sample are not penalised. The history kept is bounded (at most
// 4 × RepeatLastN ids).
func (s *Sampler) Accept(id int32) { s.chain.Accept(id) }

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
// index, or holds nothing but NaN and -Inf (or a LogitBias bans every
// token left). Whenever at least one logit is finite or +Inf, the id
// returned is in [0, len(logits)).
func (s *Sampler) Sample(logits []float32) int32 { return s.chain.Sample(logits) }

// Chain returns the chain the sampler runs.
func (s *Sampler) Chain() *Chain { return s.chain }

// LastLogprobs is Chain.LastLogprobs: the log-probability of the token the
// last Sample returned and the n most likely ones, from the distribution
// it drew from.
func (s *Sampler) LastLogprobs(n int) (chosen TokenLogprob, top []TokenLogprob) {
	return s.chain.LastLogprobs(n)
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
