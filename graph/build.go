package graph

import (
	"fmt"
	"math"

	"github.com/ocelot-llm/ocelot/model"
	"github.com/ocelot-llm/ocelot/quant"
)

// Layer holds one transformer block's weight leaves.
type Layer struct {
	AttnNorm, Wq, Wk, Wv, Wo, FFNNorm, WGate, WUp, WDown *Tensor

	names [len(nodeNames)]string // the layer's node names, made once
}

// nodeNames are the names of a layer's nodes, llama.cpp's, with the
// layer's number appended ("Qcur-3").
var nodeNames = [...]string{"attn_norm", "attn_norm_w", "Qcur", "Kcur", "Vcur", "Qrope", "Krope", "k_store", "v_store",
	"attn", "attn_out", "ffn_inp", "ffn_norm", "ffn_norm_w", "ffn_gate", "ffn_up", "ffn_swiglu", "ffn_out", "l_out"}

// The indices of nodeNames.
const (
	nAttnNorm = iota
	nAttnNormW
	nQcur
	nKcur
	nVcur
	nQrope
	nKrope
	nKStore
	nVStore
	nAttn
	nAttnOut
	nFFNInp
	nFFNNorm
	nFFNNormW
	nFFNGate
	nFFNUp
	nFFNSwiGLU
	nFFNOut
	nLOut
)

// name is node i's name in layer l: NewModel makes them once, since
// Build runs for every micro-batch.
func (ly *Layer) name(i, l int) string {
	if ly.names[i] != "" {
		return ly.names[i]
	}
	return fmt.Sprintf("%s-%d", nodeNames[i], l)
}

// Model holds a Llama model's weights as persistent leaves, shared by
// every graph built for the model.
type Model struct {
	Config     model.Config
	TokEmbd    *Tensor
	Layers     []Layer
	OutputNorm *Tensor
	Output     *Tensor // TokEmbd when the model is tied
	RopeFreqs  *Tensor // nil when the model has none
}

// weight makes a weight leaf over a matrix's bytes.
func weight(w *model.Weight, layer int) *Tensor {
	return &Tensor{Name: w.Name, Type: w.Type, Shape: [4]int{w.Cols, w.Rows, 1, 1}, Kind: Weight, Layer: layer, Data: w.Data}
}

func vector(name string, v []float32, layer int) *Tensor {
	return &Tensor{Name: name, Type: quant.F32, Shape: [4]int{len(v), 1, 1, 1}, Kind: Weight, Layer: layer, Data: quant.Float32sToBytes(v)}
}

// NewModel wraps a loaded model's weights as graph leaves. The matrices
// keep pointing at the model's bytes (usually its memory map).
func NewModel(m *model.Model) *Model {
	g := &Model{Config: m.Config, TokEmbd: weight(m.TokEmbd, -1)}
	for l, ly := range m.Layers {
		p := fmt.Sprintf("blk.%d.", l)
		g.Layers = append(g.Layers, Layer{
			AttnNorm: vector(p+"attn_norm.weight", ly.AttnNorm, l),
			Wq:       weight(ly.Wq, l), Wk: weight(ly.Wk, l), Wv: weight(ly.Wv, l), Wo: weight(ly.Wo, l),
			FFNNorm: vector(p+"ffn_norm.weight", ly.FFNNorm, l),
			WGate:   weight(ly.WGate, l), WUp: weight(ly.WUp, l), WDown: weight(ly.WDown, l),
		})
		for i, n := range nodeNames {
			g.Layers[l].names[i] = fmt.Sprintf("%s-%d", n, l)
		}
	}
	n := m.NLayer
	g.OutputNorm = vector("output_norm.weight", m.OutputNorm, n)
	if m.Tied {
		g.Output = g.TokEmbd
	} else {
		g.Output = weight(m.Output, n)
	}
	if m.RopeFreqs != nil {
		g.RopeFreqs = vector("rope_freqs.weight", m.RopeFreqs, n)
		g.RopeFreqs.Layer = -1 // shared by every layer
	}
	return g
}

// Weights lists every weight leaf once.
func (m *Model) Weights() []*Tensor {
	out := []*Tensor{m.TokEmbd}
	for _, l := range m.Layers {
		out = append(out, l.AttnNorm, l.Wq, l.Wk, l.Wv, l.Wo, l.FFNNorm, l.WGate, l.WUp, l.WDown)
	}
	out = append(out, m.OutputNorm)
	if m.Output != m.TokEmbd {
		out = append(out, m.Output)
	}
	if m.RopeFreqs != nil {
		out = append(out, m.RopeFreqs)
	}
	return out
}

// KV is a cache of KV cells shared by sequences (see Batch): a K and a
// V leaf per layer, each [NEmbdKV, Cells] of its type.
type KV struct {
	K, V  []*Tensor
	Cells int // a multiple of PageCells
}

// NewKV describes a cache of at least cells cells, rounded up to whole
// pages (backends allocate it).
func NewKV(c model.Config, cells int, typeK, typeV quant.Type) *KV {
	cells = (cells + PageCells - 1) / PageCells * PageCells
	kv := &KV{Cells: cells}
	for l := 0; l < c.NLayer; l++ {
		kv.K = append(kv.K, &Tensor{Name: fmt.Sprintf("cache_k.%d", l), Type: typeK, Shape: [4]int{c.NEmbdKV(), cells, 1, 1}, Kind: Cache, Layer: l})
		kv.V = append(kv.V, &Tensor{Name: fmt.Sprintf("cache_v.%d", l), Type: typeV, Shape: [4]int{c.NEmbdKV(), cells, 1, 1}, Kind: Cache, Layer: l})
	}
	return kv
}

// builder appends nodes to a graph.
type builder struct {
	g     *Graph
	layer int
}

func (b *builder) node(op Op, name string, shape [4]int, src ...*Tensor) *Tensor {
	t := &Tensor{Name: name, Op: op, Type: quant.F32, Shape: shape, Kind: Intermediate, Layer: b.layer}
	copy(t.Src[:], src)
	b.g.Nodes = append(b.g.Nodes, t)
	return t
}

func rows(width, n int) [4]int { return [4]int{width, n, 1, 1} }

func input(name string, v []int32) *Tensor {
	return &Tensor{Name: name, Type: I32, Shape: [4]int{len(v), 1, 1, 1}, Kind: Input, I32s: v, Layer: -1}
}

// Build emits one micro-batch of a single sequence whose position i
// sits in cell i of kv: tokens at positions pos0, pos0+1, ..., and the
// logits (or hidden states) `want` asks for.
func Build(m *Model, kv *KV, tokens []int32, pos0 int, want model.Logits) (*Graph, error) {
	n := len(tokens)
	if pos0 < 0 || pos0+n > kv.Cells {
		return nil, fmt.Errorf("graph: %d tokens at position %d exceed the cache of %d cells", n, pos0, kv.Cells)
	}
	b := seqBatch(tokens, pos0, kv.Cells/PageCells)
	b.Hidden = want == model.Hidden
	switch want {
	case model.LogitsLast:
		if n > 0 {
			b.Out = []int32{int32(n - 1)}
		}
	case model.LogitsAll, model.Hidden:
		b.Out = b.Pos[:0:0]
		for i := range n {
			b.Out = append(b.Out, int32(i))
		}
	}
	return BuildBatch(m, kv, b)
}

// BuildBatch emits the Llama forward pass of one micro-batch of tokens
// from any number of sequences sharing kv (see Batch): each token's K and
// V go to its cell, each token attends to its own sequence, and the pass
// returns the rows b.Out asks for.
func BuildBatch(m *Model, kv *KV, bt *Batch) (*Graph, error) {
	c := m.Config
	if err := bt.check(kv.Cells); err != nil {
		return nil, err
	}
	n := len(bt.Tokens)
	cellv := make([]int32, n)
	for t := range cellv {
		cellv[t] = bt.Cell(t)
	}
	ids, positions := input("inp_tokens", append([]int32(nil), bt.Tokens...)), input("inp_pos", append([]int32(nil), bt.Pos...))
	cells := input("kv_cells", cellv)
	index := input("kv_index", bt.index())
	most := 0
	for _, p := range bt.Pos {
		most = max(most, int(p)+1)
	}

	b := &builder{g: &Graph{}, layer: -1}
	x := b.node(OpGetRows, "inp_embd", rows(c.NEmbd, n), m.TokEmbd, ids)
	for l := range m.Layers {
		w := &m.Layers[l]
		b.layer = l
		kvw := c.NEmbdKV()

		// Attention block.
		h := b.node(OpRMSNorm, w.name(nAttnNorm, l), rows(c.NEmbd, n), x)
		h.Param.Eps = c.RMSEps
		h = b.node(OpMul, w.name(nAttnNormW, l), rows(c.NEmbd, n), h, w.AttnNorm)
		q := b.node(OpMulMat, w.name(nQcur, l), rows(c.NHead*c.HeadDim, n), w.Wq, h)
		k := b.node(OpMulMat, w.name(nKcur, l), rows(kvw, n), w.Wk, h)
		v := b.node(OpMulMat, w.name(nVcur, l), rows(kvw, n), w.Wv, h)
		k.Param.QuantCacheFeed = kv.K[l].Type.BlockSize() > 1
		v.Param.QuantCacheFeed = kv.V[l].Type.BlockSize() > 1
		q = b.node(OpRope, w.name(nQrope, l), q.Shape, q, positions, m.RopeFreqs)
		k = b.node(OpRope, w.name(nKrope, l), k.Shape, k, positions, m.RopeFreqs)
		for _, r := range []*Tensor{q, k} {
			r.Param.RopeBase, r.Param.HeadDim = c.RopeBase, c.HeadDim
		}
		ks := b.node(OpSetRows, w.name(nKStore, l), kv.K[l].Shape, k, kv.K[l], cells)
		vs := b.node(OpSetRows, w.name(nVStore, l), kv.V[l].Shape, v, kv.V[l], cells)
		ks.Type, vs.Type = kv.K[l].Type, kv.V[l].Type
		att := b.node(OpAttention, w.name(nAttn, l), rows(c.NHead*c.HeadDim, n), q, ks, vs, index)
		att.Param = Params{HeadDim: c.HeadDim, NHead: c.NHead, NHeadKV: c.NHeadKV, Page: PageCells, NKV: most, Scale: attnScale(c.HeadDim)}
		o := b.node(OpMulMat, w.name(nAttnOut, l), rows(c.NEmbd, n), w.Wo, att)
		x = b.node(OpAdd, w.name(nFFNInp, l), rows(c.NEmbd, n), x, o)

		// Feed-forward block.
		h = b.node(OpRMSNorm, w.name(nFFNNorm, l), rows(c.NEmbd, n), x)
		h.Param.Eps = c.RMSEps
		h = b.node(OpMul, w.name(nFFNNormW, l), rows(c.NEmbd, n), h, w.FFNNorm)
		gate := b.node(OpMulMat, w.name(nFFNGate, l), rows(c.NFF, n), w.WGate, h)
		up := b.node(OpMulMat, w.name(nFFNUp, l), rows(c.NFF, n), w.WUp, h)
		act := b.node(OpSwiGLU, w.name(nFFNSwiGLU, l), rows(c.NFF, n), gate, up)
		down := b.node(OpMulMat, w.name(nFFNOut, l), rows(c.NEmbd, n), w.WDown, act)
		x = b.node(OpAdd, w.name(nLOut, l), rows(c.NEmbd, n), x, down)
	}
	if len(bt.Out) == 0 {
		return b.g, nil
	}
	b.layer = c.NLayer
	if !identity(bt.Out, n) {
		x = b.node(OpGetRows, "out_rows", rows(c.NEmbd, len(bt.Out)), x, input("inp_out_ids", append([]int32(nil), bt.Out...)))
	}
	h := b.node(OpRMSNorm, "result_norm", x.Shape, x)
	h.Param.Eps = c.RMSEps
	h = b.node(OpMul, "result_norm_w", x.Shape, h, m.OutputNorm)
	if bt.Hidden {
		b.g.Out = h // the final hidden states, for embeddings
		return b.g, nil
	}
	b.g.Out = b.node(OpMulMat, "result_output", rows(c.NVocab, x.Shape[1]), m.Output, h)
	return b.g, nil
}

// identity reports whether out is 0, 1, ..., n-1.
func identity(out []int32, n int) bool {
	if len(out) != n {
		return false
	}
	for i, r := range out {
		if int(r) != i {
			return false
		}
	}
	return true
}

func attnScale(headDim int) float32 {
	return float32(1 / math.Sqrt(float64(headDim)))
}
