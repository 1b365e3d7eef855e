package ocelot

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/ocelot-llm/ocelot/quant"
)

// Pooling says how Embed turns a sequence's hidden states into one
// vector.
type Pooling int

// The poolings.
const (
	PoolMean Pooling = iota // the mean over every position
	PoolLast                // the last position's (what causal models summarise into)
)

func (p Pooling) String() string {
	switch p {
	case PoolMean:
		return "mean"
	case PoolLast:
		return "last"
	}
	return fmt.Sprintf("pooling(%d)", int(p))
}

// Embed returns one embedding per input: the model's final hidden states
// (after the output norm, where the logits would be computed from)
// pooled as pool says and scaled to unit length. Each input is evaluated
// on its own in a scratch session, so inputs do not see each other; each
// must fit n_ctx.
func (m *Model) Embed(ctx context.Context, inputs [][]int32, pool Pooling) ([][]float32, error) {
	if pool != PoolMean && pool != PoolLast {
		return nil, fmt.Errorf("ocelot: embed: unknown pooling %d", int(pool))
	}
	s, err := m.NewSession()
	if err != nil {
		return nil, err
	}
	defer s.Close()
	out := make([][]float32, len(inputs))
	for i, in := range inputs {
		if len(in) == 0 {
			return nil, fmt.Errorf("ocelot: embed: input %d is empty", i)
		}
		s.Reset()
		hs, err := s.hidden(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("ocelot: embed: input %d: %w", i, err)
		}
		out[i] = poolRows(hs, pool)
	}
	return out, nil
}

// hidden evaluates tokens into the (empty) session and returns every
// position's final hidden state.
func (s *Session) hidden(ctx context.Context, tokens []int32) ([][]float32, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.m
	m.mu.RLock()
	defer m.mu.RUnlock()
	if s.closed || m.closed {
		return nil, ErrClosed
	}
	if len(s.tokens) != 0 {
		return nil, errors.New("ocelot: embed: the session is not empty")
	}
	for i, id := range tokens {
		if id < 0 || int(id) >= m.net.NVocab {
			return nil, fmt.Errorf("token id %d at index %d is outside the vocabulary [0, %d)", id, i, m.net.NVocab)
		}
	}
	if len(tokens) > m.opt.NCtx {
		return nil, fmt.Errorf("%d tokens do not fit the context of %d (n_ctx)", len(tokens), m.opt.NCtx)
	}
	hs, err := s.sq.hidden(ctx, tokens)
	s.sq.reset()
	if err != nil {
		return nil, err
	}
	for i, row := range hs {
		if j := quant.FirstNonFiniteF32(row); j >= 0 {
			return nil, m.nonFinite(fmt.Sprintf("hidden state %d of position %d is %v", j, i, row[j]))
		}
	}
	return hs, nil
}

// poolRows pools hidden states and normalises the result to unit length.
func poolRows(hs [][]float32, pool Pooling) []float32 {
	v := make([]float64, len(hs[0]))
	switch pool {
	case PoolLast:
		for j, x := range hs[len(hs)-1] {
			v[j] = float64(x)
		}
	default:
		for _, row := range hs {
			for j, x := range row {
				v[j] += float64(x)
			}
		}
	}
	var ss float64
	for _, x := range v {
		ss += x * x
	}
	out := make([]float32, len(v))
	if ss == 0 {
		return out
	}
	inv := 1 / math.Sqrt(ss)
	for j, x := range v {
		out[j] = float32(x * inv)
	}
	return out
}
