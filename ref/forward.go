package ref

import (
	"context"
	"fmt"
	"math"

	"github.com/ocelot-llm/ocelot/model"
)

// State is one sequence's memory: its KV cache, and how many positions
// of it are filled.
type State struct {
	KV  *KVCache
	Pos int
}

// Forward runs one micro-batch: tokens at positions st.Pos, st.Pos+1, ...
// Their keys and values are written into the cache, and the logits that
// `want` asks for are returned.
func (m *Model) Forward(st *State, tokens []int32, want model.Logits, threads int) ([][]float32, error) {
	n := len(tokens)
	if n == 0 {
		return nil, nil
	}
	if st.Pos+n > st.KV.NCtx {
		return nil, fmt.Errorf("ref: %d tokens at position %d exceed the context of %d", n, st.Pos, st.KV.NCtx)
	}
	x, err := m.embed(tokens)
	if err != nil {
		return nil, err
	}
	xb := batch(n, m.NEmbd)
	for l := range m.Layers {
		layer := &m.Layers[l]

		// Attention: x += Wo · attention(rope(Wq·norm(x)), cache)
		normAll(xb, x, layer.AttnNorm, m.RMSEps)
		q, k, v := batch(n, m.NHead*m.HeadDim), batch(n, m.NEmbdKV()), batch(n, m.NEmbdKV())
		if err := m.matmuls(threads, mm{q, xb, layer.Wq}, mm{k, xb, layer.Wk}, mm{v, xb, layer.Wv}); err != nil {
			return nil, err
		}
		for t := range n {
			Rope(q[t], m.HeadDim, st.Pos+t, m.RopeBase, m.RopeFreqs)
			Rope(k[t], m.HeadDim, st.Pos+t, m.RopeBase, m.RopeFreqs)
			if err := st.KV.Put(l, st.Pos+t, k[t], v[t]); err != nil {
				return nil, err
			}
		}
		att, err := m.attention(l, q, st, threads)
		if err != nil {
			return nil, err
		}
		o := batch(n, m.NEmbd)
		if err := m.matmuls(threads, mm{o, att, layer.Wo}); err != nil {
			return nil, err
		}
		addAll(x, o)

		// Feed-forward: x += Wdown · (silu(Wgate·norm(x)) * Wup·norm(x))
		normAll(xb, x, layer.FFNNorm, m.RMSEps)
		gate, up := batch(n, m.NFF), batch(n, m.NFF)
		if err := m.matmuls(threads, mm{gate, xb, layer.WGate}, mm{up, xb, layer.WUp}); err != nil {
			return nil, err
		}
		for t := range n {
			for i := range gate[t] {
				gate[t][i] = SiLU(gate[t][i]) * up[t][i]
			}
		}
		down := batch(n, m.NEmbd)
		if err := m.matmuls(threads, mm{down, gate, layer.WDown}); err != nil {
			return nil, err
		}
		addAll(x, down)
	}
	st.Pos += n

	// Output: logits = Wout · norm(x), for the positions asked for.
	switch want {
	case model.LogitsNone:
		return nil, nil
	case model.LogitsLast:
		x, xb = x[n-1:], xb[n-1:]
	}
	normAll(xb, x, m.OutputNorm, m.RMSEps)
	if want == model.Hidden {
		return xb, nil
	}
	logits := batch(len(xb), m.NVocab)
	if err := m.matmuls(threads, mm{logits, xb, m.Output}); err != nil {
		return nil, err
	}
	return logits, nil
}

// embed looks the tokens' rows up in the embedding table.
func (m *Model) embed(tokens []int32) ([][]float32, error) {
	x := batch(len(tokens), m.NEmbd)
	for t, id := range tokens {
		if id < 0 || int(id) >= m.NVocab {
			return nil, fmt.Errorf("ref: token id %d at batch index %d is outside the vocabulary [0, %d)", id, t, m.NVocab)
		}
		if err := m.TokEmbd.Row(int(id), x[t]); err != nil {
			return nil, fmt.Errorf("ref: embedding of token %d: %w", id, err)
		}
	}
	return x, nil
}

// attention reads the cache of layer l and attends the batch's queries
// over it.
func (m *Model) attention(l int, q [][]float32, st *State, threads int) ([][]float32, error) {
	n := len(q)
	cells := st.Pos + n
	keys := make([]float32, cells*m.NEmbdKV())
	vals := make([]float32, cells*m.NEmbdKV())
	if err := st.KV.Get(l, cells, keys, vals); err != nil {
		return nil, err
	}
	out := batch(n, m.NHead*m.HeadDim)
	Attention(out, q, keys, vals, st.Pos, m.NHead, m.NHeadKV, m.HeadDim, threads)
	return out, nil
}

// Attention computes, for every token t of a batch whose first token is at
// position pos0, and every query head h, softmax(q·Kᵀ/√d)·V over the
// positions 0..pos0+t (the causal mask). keys and vals hold one row of
// nHeadKV*headDim values per position; query heads share key/value heads
// in groups of nHead/nHeadKV (grouped-query attention). out rows must be
// zero on entry.
func Attention(out, q [][]float32, keys, vals []float32, pos0, nHead, nHeadKV, headDim, threads int) {
	hd, group, width := headDim, nHead/nHeadKV, nHeadKV*headDim
	scale := float32(1 / math.Sqrt(float64(hd)))
	parallel(len(q)*nHead, threads, func(lo, hi int) {
		scores := make([]float32, pos0+len(q))
		for job := lo; job < hi; job++ {
			t, h := job/nHead, job%nHead
			kvh := h / group
			qh := q[t][h*hd : (h+1)*hd]
			visible := pos0 + t + 1
			for j := 0; j < visible; j++ {
				scores[j] = Dot(qh, keys[j*width+kvh*hd:][:hd]) * scale
			}
			Softmax(scores[:visible])
			oh := out[t][h*hd : (h+1)*hd]
			for j := 0; j < visible; j++ {
				vj := vals[j*width+kvh*hd:][:hd]
				p := scores[j]
				for d := range oh {
					oh[d] += p * vj[d]
				}
			}
		}
	})
}

// mm is one matrix product of a batch: out = w · x.
type mm struct {
	out, x [][]float32
	w      *model.Weight
}

func (m *Model) matmuls(threads int, ops ...mm) error {
	for _, op := range ops {
		if err := MatMul(op.out, op.x, op.w, threads); err != nil {
			return fmt.Errorf("ref: %s: %w", op.w.Name, err)
		}
	}
	return nil
}

func batch(n, width int) [][]float32 {
	flat := make([]float32, n*width)
	rows := make([][]float32, n)
	for i := range rows {
		rows[i] = flat[i*width : (i+1)*width]
	}
	return rows
}

func normAll(out, x [][]float32, w []float32, eps float32) {
	for t := range x {
		RMSNorm(out[t], x[t], w, eps)
	}
}

func addAll(x, y [][]float32) {
	for t := range x {
		for i := range x[t] {
			x[t][i] += y[t][i]
		}
	}
}

// Eval runs tokens through the model with llama.cpp's batching: the tokens
// are split into logical batches of nBatch, and each of those into
// micro-batches of nUbatch that run through the whole model in turn. The
// sizes change the order of float operations only. It returns the logits
// of every position (all) or of the last one, and stops between
// micro-batches when ctx is cancelled.
func (m *Model) Eval(ctx context.Context, st *State, tokens []int32, nBatch, nUbatch int, all bool, threads int) ([][]float32, error) {
	if nBatch <= 0 || nUbatch <= 0 {
		return nil, fmt.Errorf("ref: n_batch %d and n_ubatch %d must be positive", nBatch, nUbatch)
	}
	if st.Pos+len(tokens) > st.KV.NCtx {
		return nil, fmt.Errorf("ref: %d tokens after %d cached need %d cells, but n_ctx is %d", len(tokens), st.Pos, st.Pos+len(tokens), st.KV.NCtx)
	}
	var out [][]float32
	err := model.Ubatches(ctx, tokens, nBatch, nUbatch, all, func(ub []int32, want model.Logits) error {
		logits, err := m.Forward(st, ub, want, threads)
		out = append(out, logits...)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
