package sample

import (
	"math"
	"slices"
)

// TokenSampler is what generation needs of a sampler: Sample picks the
// next token from the model's logits, and Accept tells it each token of
// the sequence, the prompt's and those it sampled, in order. *Sampler and
// *Chain are TokenSamplers.
type TokenSampler interface {
	Sample(logits []float32) int32
	Accept(id int32)
}

var (
	_ TokenSampler = (*Sampler)(nil)
	_ TokenSampler = (*Chain)(nil)
)

// Candidates are the tokens a Chain chooses among, with their logits and,
// once computed, probabilities. They begin as the whole vocabulary in id
// order; processors change logits, drop tokens and reorder them.
type Candidates struct {
	items  []candidate
	sorted bool      // items are in order of falling logit
	dense  bool      // items[i].id == i for every i: the whole vocabulary
	probs  probState // what the p fields hold
}

type probState uint8

const (
	probNone     probState = iota // p means nothing
	probExact                     // p is the softmax of the logits over exactly the items
	probRelative                  // p is a softmax over more tokens than are left: ratios hold
)

// reset fills c with logits, NaN turned into -Inf.
func (c *Candidates) reset(logits []float32) {
	negInf := float32(math.Inf(-1))
	items := c.items[:0]
	for i, v := range logits {
		if v != v {
			v = negInf
		}
		items = append(items, candidate{id: int32(i), logit: v})
	}
	*c = Candidates{items: items, dense: true}
}

// Len returns the number of candidates.
func (c *Candidates) Len() int { return len(c.items) }

// ID returns the token id of candidate i.
func (c *Candidates) ID(i int) int32 { return c.items[i].id }

// Logit returns the logit of candidate i (never NaN).
func (c *Candidates) Logit(i int) float32 { return c.items[i].logit }

// SetLogit sets the logit of candidate i (NaN is taken as -Inf). The
// candidates are then no longer sorted, and their probabilities unknown.
func (c *Candidates) SetLogit(i int, v float32) {
	if v != v {
		v = float32(math.Inf(-1))
	}
	c.items[i].logit = v
	c.sorted, c.probs = false, probNone
}

// P returns the probability of candidate i: the softmax of the logits over
// the candidates, computed (see Softmax) if it is not known.
func (c *Candidates) P(i int) float32 {
	if c.probs == probNone {
		c.Softmax()
	}
	return c.items[i].p
}

// Sorted reports whether the candidates are in order of falling logit.
func (c *Candidates) Sorted() bool { return c.sorted }

// Sort orders the candidates by falling logit, ties by rising id.
func (c *Candidates) Sort() {
	if !c.sorted {
		slices.SortFunc(c.items, before)
		c.sorted = true
		c.dense = false
	}
}

// Softmax sorts the candidates and sets their probabilities to the
// softmax of their logits. A logit equal to the largest has weight 1, even
// when both are +Inf; when every logit is -Inf all are equally likely (no
// token is drawable then: pickers return -1).
func (c *Candidates) Softmax() {
	c.Sort()
	if len(c.items) > 0 {
		probs(c.items, 1)
	}
	c.probs = probExact
}

// Truncate keeps the first n candidates. Probabilities already known
// keep their values (they no longer sum to 1; their ratios are right).
func (c *Candidates) Truncate(n int) {
	if n < 0 || n >= len(c.items) {
		return
	}
	c.items = c.items[:n]
	c.dense = false
	if c.probs == probExact {
		c.probs = probRelative
	}
}

// max returns the index of the largest logit (the first on ties; by id
// when the candidates are dense), or -1 if there are none.
func (c *Candidates) max() int {
	if len(c.items) == 0 {
		return -1
	}
	if c.sorted {
		return 0
	}
	best := 0
	for i := 1; i < len(c.items); i++ {
		if before(c.items[i], c.items[best]) < 0 {
			best = i
		}
	}
	return best
}

// Processor is one step of a Chain before the pick: it changes the
// candidates' logits, or drops candidates (llama.cpp's samplers other than
// the final one).
//
// Apply works on the candidates of one Sample. Accept is told every token
// of the sequence, in order, as TokenSampler.Accept is; generated is true
// for the token the chain has just sampled and false for the others (the
// prompt, which the engine accepts for the penalties to see), so that a
// grammar constrains only what is generated.
type Processor interface {
	Apply(c *Candidates)
	Accept(id int32, generated bool)
}

// Picker makes the final choice of a Chain: it returns the id of one of
// the candidates, or -1 when no candidate is drawable (all logits -Inf, or
// none left).
type Picker interface {
	Pick(c *Candidates) int32
}

// Chain is a sampler built of steps, as llama.cpp's sampler chains: its
// processors in order, then a picker. For example llama.cpp's default
// chain is
//
//	sample.NewChain(sample.NewRandomPicker(seed),
//		&sample.RepeatPenalty{Penalty: 1.1},
//		sample.TopK{K: 40}, sample.TopP{P: 0.95}, sample.MinP{P: 0.05},
//		sample.Temperature{T: 0.8})
//
// which is what New builds from Params. A Chain is not safe for
// concurrent use; give each sequence its own.
type Chain struct {
	procs  []Processor
	picker Picker
	c      Candidates
	last   int32 // what the last Sample returned
	fresh  bool  // last is not accepted yet
	valid  bool  // c holds the last Sample's distribution
}

// NewChain returns a chain of processors followed by picker.
func NewChain(picker Picker, procs ...Processor) *Chain {
	return &Chain{picker: picker, procs: slices.Clone(procs), last: -1}
}

// Processors returns the chain's processors, in order.
func (ch *Chain) Processors() []Processor { return slices.Clone(ch.procs) }

// Sample runs the processors over logits and returns the picker's choice.
// It does not modify logits. NaN logits are taken as -Inf. It returns -1,
// which is no token, when logits is empty, longer than an int32 id can
// index, or the processors leave nothing drawable (for example a grammar
// that no token of the vocabulary can continue).
func (ch *Chain) Sample(logits []float32) int32 {
	ch.valid, ch.fresh, ch.last = false, false, -1
	if len(logits) == 0 || len(logits) > math.MaxInt32 {
		return -1
	}
	ch.c.reset(logits)
	for _, p := range ch.procs {
		p.Apply(&ch.c)
	}
	id := ch.picker.Pick(&ch.c)
	ch.valid, ch.fresh, ch.last = true, id >= 0, id
	return id
}

// Accept tells every processor the next token of the sequence. The token
// counts as generated when it is the one the last Sample returned, not yet
// accepted; any other (the prompt's, which the engine accepts first) is
// context only.
func (ch *Chain) Accept(id int32) {
	generated := ch.fresh && id == ch.last
	ch.fresh = false
	for _, p := range ch.procs {
		p.Accept(id, generated)
	}
}

// TokenLogprob is a token and its log-probability (natural log).
type TokenLogprob struct {
	ID      int32
	Logprob float32
}

// LastLogprobs returns, for the last Sample, the log-probability of the
// token it returned and the n most likely tokens (most likely first, ties
// by id; fewer if fewer were left), as OpenAI's logprobs and
// top_logprobs. They are computed from the distribution the picker drew
// from: the softmax of the logits after every processor, so that a token
// top-k, top-p, min-p or a grammar dropped is not among them, and
// temperature is applied. Before any Sample, or when it returned -1, the
// chosen token is ID -1 with log-probability -Inf.
func (ch *Chain) LastLogprobs(n int) (chosen TokenLogprob, top []TokenLogprob) {
	chosen = TokenLogprob{ID: -1, Logprob: float32(math.Inf(-1))}
	if !ch.valid {
		return chosen, nil
	}
	items := ch.c.items
	mi := ch.c.max()
	if mi < 0 || math.IsInf(float64(items[mi].logit), -1) {
		return chosen, nil
	}
	maxv := float64(items[mi].logit)
	// log p = (l - max) - log Σ exp(l - max); with +Inf logits, the +Inf
	// ones share everything.
	var lp func(l float32) float32
	if math.IsInf(maxv, 1) {
		k := 0
		for _, it := range items {
			if math.IsInf(float64(it.logit), 1) {
				k++
			}
		}
		share := float32(-math.Log(float64(k)))
		lp = func(l float32) float32 {
			if math.IsInf(float64(l), 1) {
				return share
			}
			return float32(math.Inf(-1))
		}
	} else {
		var sum float64
		for _, it := range items {
			sum += math.Exp(float64(it.logit) - maxv)
		}
		lse := math.Log(sum)
		lp = func(l float32) float32 { return float32(float64(l) - maxv - lse) }
	}
	if ch.last >= 0 {
		for _, it := range items {
			if it.id == ch.last {
				chosen = TokenLogprob{ID: it.id, Logprob: lp(it.logit)}
				break
			}
		}
	}
	if n <= 0 {
		return chosen, nil
	}
	var best []candidate
	if ch.c.sorted {
		best = items[:min(n, len(items))]
	} else {
		best = bestOf(items, n)
	}
	top = make([]TokenLogprob, 0, len(best))
	for _, it := range best {
		if l := lp(it.logit); !math.IsInf(float64(l), -1) { // impossible tokens are no alternative
			top = append(top, TokenLogprob{ID: it.id, Logprob: l})
		}
	}
	return chosen, top
}

// bestOf returns the n best of items (by before) without changing items.
func bestOf(items []candidate, n int) []candidate {
	if n > 64 || n >= len(items) {
		return best(slices.Clone(items), n)
	}
	// One pass keeping a sorted list of the n best: n is small (OpenAI
	// allows 20).
	out := make([]candidate, 0, n+1)
	for _, it := range items {
		if len(out) == n && before(it, out[n-1]) >= 0 {
			continue
		}
		i, _ := slices.BinarySearchFunc(out, it, before)
		out = slices.Insert(out, i, it)
		if len(out) > n {
			out = out[:n]
		}
	}
	return out
}
