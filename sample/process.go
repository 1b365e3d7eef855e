package sample

import (
	"math"
)

// history is the recent tokens a penalty looks at: at most 4 × lastN ids
// are kept, the last lastN used.
type history struct {
	ids    []int32
	counts map[int32]int32 // scratch
}

func lastN(n int) int {
	switch {
	case n <= 0:
		return 64
	case n > MaxRepeatLastN:
		return MaxRepeatLastN
	}
	return n
}

func (h *history) add(id int32, n int) {
	h.ids = append(h.ids, id)
	if len(h.ids) > 4*n {
		h.ids = append(h.ids[:0], h.ids[len(h.ids)-n:]...)
	}
}

// count returns how often each id occurs among the last n (scratch map,
// valid until the next call).
func (h *history) count(n int) map[int32]int32 {
	if h.counts == nil {
		h.counts = map[int32]int32{}
	}
	clear(h.counts)
	for _, id := range h.ids[max(0, len(h.ids)-n):] {
		h.counts[id]++
	}
	return h.counts
}

// each calls f with the index of every candidate whose id is in counts.
func each(c *Candidates, counts map[int32]int32, f func(i int, n int32)) {
	if c.dense {
		for id, n := range counts {
			if id >= 0 && int(id) < len(c.items) {
				f(int(id), n)
			}
		}
		return
	}
	for i := range c.items {
		if n, ok := counts[c.items[i].id]; ok {
			f(i, n)
		}
	}
}

// clampFinite keeps v finite when was (the logit before a change) was: a
// penalty or bias can make a token very likely or unlikely, never certain
// or impossible (except a bias of -Inf, which bans).
func clampFinite(v, was float32) float32 {
	if finite(was) {
		return min(max(v, -math.MaxFloat32), math.MaxFloat32)
	}
	return v
}

// RepeatPenalty is llama.cpp's repetition penalty: the logit of every
// token among the last LastN accepted (prompt and generated) is divided by
// Penalty when positive and multiplied by it otherwise. Penalty 1 is off;
// it must be finite and above 0 (other values are taken as off). LastN 0
// is 64; it is at most MaxRepeatLastN.
type RepeatPenalty struct {
	Penalty float32
	LastN   int
	h       history
}

// Apply penalises the recent tokens.
func (r *RepeatPenalty) Apply(c *Candidates) {
	pen := r.Penalty
	if !(pen > 0) || pen == 1 || !finite(pen) || len(r.h.ids) == 0 {
		return
	}
	each(c, r.h.count(lastN(r.LastN)), func(i int, _ int32) {
		was := c.items[i].logit
		v := was
		if v > 0 {
			v /= pen
		} else {
			v *= pen
		}
		c.items[i].logit = clampFinite(v, was)
	})
	c.sorted, c.probs = false, probNone
}

// Accept records id in the history.
func (r *RepeatPenalty) Accept(id int32, _ bool) { r.h.add(id, lastN(r.LastN)) }

// PresenceFrequency are OpenAI's presence and frequency penalties: the
// logit of a token that occurs count > 0 times among the last LastN
// accepted is lowered by Presence + Frequency × count. Negative values
// raise it. OpenAI's range for both is [-2, 2] (Params.Validate checks
// it); 0 is off. LastN 0 is 64.
type PresenceFrequency struct {
	Presence, Frequency float32
	LastN               int
	h                   history
}

// Apply penalises the recent tokens.
func (p *PresenceFrequency) Apply(c *Candidates) {
	if p.Presence == 0 && p.Frequency == 0 || !finite(p.Presence) || !finite(p.Frequency) || len(p.h.ids) == 0 {
		return
	}
	each(c, p.h.count(lastN(p.LastN)), func(i int, n int32) {
		was := c.items[i].logit
		c.items[i].logit = clampFinite(was-(p.Presence+p.Frequency*float32(n)), was)
	})
	c.sorted, c.probs = false, probNone
}

// Accept records id in the history.
func (p *PresenceFrequency) Accept(id int32, _ bool) { p.h.add(id, lastN(p.LastN)) }

// LogitBias adds a value to the logit of each token it names (OpenAI's
// and llama.cpp's logit_bias). -Inf bans the token; +Inf and NaN are
// ignored (Params.Validate refuses them). A finite logit stays finite.
// Ids outside the vocabulary are ignored.
type LogitBias map[int32]float32

// Apply adds the biases.
func (b LogitBias) Apply(c *Candidates) {
	if len(b) == 0 {
		return
	}
	negInf := float32(math.Inf(-1))
	add := func(i int, v float32) {
		if v != v || math.IsInf(float64(v), 1) {
			return
		}
		was := c.items[i].logit
		if math.IsInf(float64(v), -1) {
			c.items[i].logit = negInf
			return
		}
		c.items[i].logit = clampFinite(was+v, was)
	}
	if c.dense {
		for id, v := range b {
			if id >= 0 && int(id) < len(c.items) {
				add(int(id), v)
			}
		}
	} else {
		for i := range c.items {
			if v, ok := b[c.items[i].id]; ok {
				add(i, v)
			}
		}
	}
	c.sorted, c.probs = false, probNone
}

// Accept does nothing.
func (LogitBias) Accept(int32, bool) {}

// Temperature divides the logits by T: above 1 flattens the
// distribution, below sharpens it. T of 0 or less (or NaN) keeps only the
// most likely token, as llama.cpp's temperature sampler does.
//
// The largest logit is subtracted first (which changes no probability) so
// that a picker's softmax computes exactly exp((l - max) / T), as New has
// always drawn; the candidates are sorted first.
type Temperature struct{ T float32 }

// Apply scales the logits.
func (t Temperature) Apply(c *Candidates) {
	mi := c.max()
	if mi < 0 || t.T == 1 {
		return
	}
	if !(t.T > 0) {
		c.items[0], c.items[mi] = c.items[mi], c.items[0]
		c.Truncate(1)
		c.sorted = true
		return
	}
	maxv := c.items[mi].logit
	if math.IsInf(float64(maxv), -1) {
		return // nothing drawable; leave it so
	}
	// Sort first: scaling can round distinct logits to one value, and the
	// order of a draw must be that of the logits before (New's draws
	// always were; a random picker would sort now anyway).
	c.Sort()
	for i := range c.items {
		if v := c.items[i].logit; v == maxv {
			c.items[i].logit = 0
		} else {
			r := (v - maxv) / t.T
			if r != r { // -Inf/+Inf, with T = +Inf
				r = float32(math.Inf(-1))
			}
			c.items[i].logit = r
		}
	}
	// The order is kept (the map is monotone), the probabilities are not.
	c.probs = probNone
}

// Accept does nothing.
func (Temperature) Accept(int32, bool) {}

// TopK keeps the K most likely tokens (ties by id). K of 0 or less, or at
// least the number of candidates, keeps all.
type TopK struct{ K int }

// Apply keeps the K best, sorted.
func (t TopK) Apply(c *Candidates) {
	if t.K <= 0 || t.K >= len(c.items) {
		return
	}
	if c.sorted {
		c.Truncate(t.K)
		return
	}
	c.items = best(c.items, t.K)
	c.sorted, c.dense = true, false
	if c.probs == probExact {
		c.probs = probRelative
	}
}

// Accept does nothing.
func (TopK) Accept(int32, bool) {}

// TopP keeps the smallest set of most likely tokens whose probabilities
// add up to at least P (nucleus sampling). P of 0, 1 or outside (0, 1) is
// off.
type TopP struct{ P float32 }

// Apply keeps the nucleus.
func (t TopP) Apply(c *Candidates) {
	if !(t.P > 0 && t.P < 1) || len(c.items) == 0 {
		return
	}
	if c.probs != probExact || !c.sorted {
		c.Softmax()
	}
	var cum float32
	for i := range c.items {
		cum += c.items[i].p
		if cum >= t.P {
			c.Truncate(i + 1)
			return
		}
	}
}

// Accept does nothing.
func (TopP) Accept(int32, bool) {}

// MinP drops the tokens whose probability is below P times that of the
// most likely one. P of 0 or less is off.
type MinP struct{ P float32 }

// Apply drops the unlikely tokens.
func (m MinP) Apply(c *Candidates) {
	if !(m.P > 0) || len(c.items) == 0 {
		return
	}
	if c.probs == probNone {
		c.Softmax()
	}
	c.Sort()
	limit := c.items[0].p * m.P
	keep := 1
	for keep < len(c.items) && c.items[keep].p >= limit {
		keep++
	}
	c.Truncate(keep)
}

// Accept does nothing.
func (MinP) Accept(int32, bool) {}
