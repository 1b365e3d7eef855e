// Package model describes a Llama model as ocelot runs it: its
// hyperparameters (Config), typed views of its weights over a GGUF file's
// memory map (Weight, Layer, Model), the loader that validates them
// (Load), and the facts every engine shares: which logits a pass returns,
// how a prompt is cut into micro-batches, and the KV cache's types and
// size.
//
// The reference engine (package ref) and the op graph (package graph)
// both start from a *Model; neither depends on the other.
package model

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/ocelot-llm/ocelot/gguf"
	"github.com/ocelot-llm/ocelot/quant"
)

// Config holds a Llama model's hyperparameters.
type Config struct {
	NEmbd     int     // embedding width
	NLayer    int     // transformer blocks
	NHead     int     // query heads
	NHeadKV   int     // key/value heads (grouped-query attention)
	HeadDim   int     // NEmbd / NHead
	NFF       int     // feed-forward width
	NVocab    int     // vocabulary size
	NCtxTrain int     // context length the model was trained for
	RopeBase  float32 // RoPE frequency base
	RMSEps    float32 // RMSNorm epsilon
}

// NEmbdKV is the width of one K or V row: all key/value heads of a token.
func (c Config) NEmbdKV() int { return c.NHeadKV * c.HeadDim }

// Weight is a matrix of Rows rows, each Cols elements of Type, stored as
// GGUF stores it (ggml's ne0 = Cols is the row length). Data is the raw
// block bytes, usually a slice of the memory-mapped file.
type Weight struct {
	Name       string
	Type       quant.Type
	Rows, Cols int
	RowBytes   int
	Data       []byte
}

// Row dequantizes row i into dst (len Cols).
func (w *Weight) Row(i int, dst []float32) error {
	return quant.Dequantize(w.Type, dst, w.Data[i*w.RowBytes:(i+1)*w.RowBytes])
}

// Layer is one transformer block's weights.
type Layer struct {
	AttnNorm []float32 // RMSNorm scale before attention
	Wq       *Weight   // [NEmbd] -> [NHead*HeadDim]
	Wk       *Weight   // [NEmbd] -> [NHeadKV*HeadDim]
	Wv       *Weight   // [NEmbd] -> [NHeadKV*HeadDim]
	Wo       *Weight   // [NHead*HeadDim] -> [NEmbd]
	FFNNorm  []float32 // RMSNorm scale before the feed-forward network
	WGate    *Weight   // [NEmbd] -> [NFF]
	WUp      *Weight   // [NEmbd] -> [NFF]
	WDown    *Weight   // [NFF] -> [NEmbd]
}

// Model is a loaded Llama model.
type Model struct {
	Config
	TokEmbd    *Weight // [NVocab rows of NEmbd]
	Layers     []Layer
	OutputNorm []float32
	Output     *Weight   // [NEmbd] -> [NVocab]; TokEmbd when the model is tied
	Tied       bool      // Output is TokEmbd
	RopeFreqs  []float32 // per-pair frequency divisors (Llama 3.1), or nil
}

// Load builds a Model over a GGUF file's tensors, after validating
// everything it will compute with: the hyperparameters (types, ranges and
// agreement with the tensors), the layer count against the layers the
// file holds, every tensor's type and shape, and the norm and RoPE
// vectors, and every weight's values or block scales (finite, see
// CheckFinite). The weights are not copied: they stay in the file's
// memory map, which must stay open while the model is used. The first
// problem found is the error; nothing after it is read.
func Load(f *gguf.File) (*Model, error) {
	if arch := f.Architecture(); arch != "llama" {
		return nil, fmt.Errorf("model: architecture %q is not supported (ocelot runs llama)", arch)
	}
	cfg, err := loadConfig(f)
	if err != nil {
		return nil, err
	}
	if err := checkLayers(f, cfg.NLayer); err != nil {
		return nil, err
	}
	l := loader{f: f}
	m := &Model{Config: cfg}
	embd, ok := f.Tensor("token_embd.weight")
	if !ok {
		return nil, fmt.Errorf("model: tensor token_embd.weight is missing")
	}
	if len(embd.Shape) != 2 {
		return nil, fmt.Errorf("model: tensor token_embd.weight has %d dims, want 2", len(embd.Shape))
	}
	if embd.Shape[1] < 1 || embd.Shape[1] > MaxVocab {
		return nil, fmt.Errorf("model: tensor token_embd.weight has %d rows (the vocabulary), want 1..%d", embd.Shape[1], MaxVocab)
	}
	m.NVocab = int(embd.Shape[1])
	m.TokEmbd = l.matrix("token_embd.weight", cfg.NEmbd, m.NVocab)
	for i := 0; i < cfg.NLayer && l.err == nil; i++ {
		p := fmt.Sprintf("blk.%d.", i)
		m.Layers = append(m.Layers, Layer{
			AttnNorm: l.vector(p+"attn_norm.weight", cfg.NEmbd),
			Wq:       l.matrix(p+"attn_q.weight", cfg.NEmbd, cfg.NHead*cfg.HeadDim),
			Wk:       l.matrix(p+"attn_k.weight", cfg.NEmbd, cfg.NEmbdKV()),
			Wv:       l.matrix(p+"attn_v.weight", cfg.NEmbd, cfg.NEmbdKV()),
			Wo:       l.matrix(p+"attn_output.weight", cfg.NHead*cfg.HeadDim, cfg.NEmbd),
			FFNNorm:  l.vector(p+"ffn_norm.weight", cfg.NEmbd),
			WGate:    l.matrix(p+"ffn_gate.weight", cfg.NEmbd, cfg.NFF),
			WUp:      l.matrix(p+"ffn_up.weight", cfg.NEmbd, cfg.NFF),
			WDown:    l.matrix(p+"ffn_down.weight", cfg.NFF, cfg.NEmbd),
		})
	}
	m.OutputNorm = l.vector("output_norm.weight", cfg.NEmbd)
	if _, ok := f.Tensor("output.weight"); ok {
		m.Output = l.matrix("output.weight", cfg.NEmbd, m.NVocab)
	} else {
		m.Output, m.Tied = m.TokEmbd, true
	}
	if _, ok := f.Tensor("rope_freqs.weight"); ok {
		m.RopeFreqs = l.vector("rope_freqs.weight", cfg.HeadDim/2)
		for i, v := range m.RopeFreqs {
			if l.err == nil && !(v > 0) {
				l.err = fmt.Errorf("model: tensor rope_freqs.weight: factor %d is %v; RoPE frequency factors must be positive", i, v)
			}
		}
	}
	if l.err != nil {
		return nil, l.err
	}
	if err := m.CheckFinite(); err != nil {
		return nil, err
	}
	return m, nil
}

// Sanity bounds on hyperparameters, far above any real Llama model; a file
// beyond them is refused before anything is allocated for it.
const (
	MaxLayers = 1024    // block_count
	MaxWidth  = 1 << 17 // embedding_length, feed_forward_length
	MaxHeads  = 4096    // head_count, head_count_kv
	MaxVocab  = 1 << 24 // rows of token_embd.weight
)

// checkLayers compares block_count with the layers whose tensors the file
// holds (blk.N.*): a count above them would load nothing but missing
// tensors, one below them would ignore weights silently.
func checkLayers(f *gguf.File, nLayer int) error {
	top := -1
	for _, t := range f.Tensors {
		rest, ok := strings.CutPrefix(t.Name, "blk.")
		if !ok {
			continue
		}
		n, _, ok := strings.Cut(rest, ".")
		if !ok {
			continue
		}
		if i, err := strconv.Atoi(n); err == nil && i > top {
			top = i
		}
	}
	key := f.ArchKey("block_count")
	switch {
	case top+1 < nLayer:
		return fmt.Errorf("model: %s is %d but the file holds tensors for %d layers (blk.0 to blk.%d)", key, nLayer, top+1, top)
	case top+1 > nLayer:
		return fmt.Errorf("model: the file holds tensors of layer %d (blk.%d.*) but %s is %d", top, top, key, nLayer)
	}
	return nil
}

// loadConfig reads and checks the hyperparameters. A required key that
// is missing, a key of the wrong type (optional or not) and a value out
// of range are errors naming the key.
func loadConfig(f *gguf.File) (Config, error) {
	var c Config
	var err error
	// u reads a required integer in [lo, hi].
	u := func(suffix string, lo, hi int) int {
		if err != nil {
			return 0
		}
		v, e := f.ArchUint32(suffix)
		switch {
		case e != nil:
			err = fmt.Errorf("model: hyperparameter: %w", e)
		case int64(v) < int64(lo) || int64(v) > int64(hi):
			err = fmt.Errorf("model: hyperparameter %s is %d, want %d..%d", f.ArchKey(suffix), v, lo, hi)
		}
		return int(v)
	}
	// opt reports whether an optional key is present, failing for one
	// that is present with the wrong type.
	opt := func(e error) bool {
		if e == nil {
			return true
		}
		if err == nil && !errors.Is(e, gguf.ErrKeyNotFound) {
			err = fmt.Errorf("model: hyperparameter: %w", e)
		}
		return false
	}
	c.NEmbd = u("embedding_length", 1, MaxWidth)
	c.NLayer = u("block_count", 1, MaxLayers)
	c.NHead = u("attention.head_count", 1, MaxHeads)
	c.NFF = u("feed_forward_length", 1, MaxWidth)
	c.NHeadKV = c.NHead
	if v, e := f.ArchUint32("attention.head_count_kv"); opt(e) {
		c.NHeadKV = int(v)
	}
	if v, e := f.ArchUint32("context_length"); opt(e) {
		c.NCtxTrain = int(v)
	}
	c.RopeBase = 10000
	if v, e := f.ArchFloat32("rope.freq_base"); opt(e) {
		c.RopeBase = v
	}
	c.RMSEps = 1e-5
	if v, e := f.ArchFloat32("attention.layer_norm_rms_epsilon"); opt(e) {
		c.RMSEps = v
	}
	ropeDims, e := f.ArchUint32("rope.dimension_count")
	hasRopeDims := opt(e)
	if err != nil {
		return c, err
	}
	switch {
	case c.NHeadKV < 1 || c.NHeadKV > c.NHead:
		return c, fmt.Errorf("model: hyperparameter %s is %d, want 1..%d (head_count)", f.ArchKey("attention.head_count_kv"), c.NHeadKV, c.NHead)
	case c.NEmbd%c.NHead != 0:
		return c, fmt.Errorf("model: n_embd %d is not a multiple of head_count %d", c.NEmbd, c.NHead)
	case c.NHead%c.NHeadKV != 0:
		return c, fmt.Errorf("model: head_count %d is not a multiple of head_count_kv %d", c.NHead, c.NHeadKV)
	case !(c.RopeBase > 0) || math.IsInf(float64(c.RopeBase), 0):
		return c, fmt.Errorf("model: hyperparameter %s is %v; the RoPE frequency base must be positive and finite", f.ArchKey("rope.freq_base"), c.RopeBase)
	case !(c.RMSEps > 0 && c.RMSEps < 1):
		return c, fmt.Errorf("model: hyperparameter %s is %v; the RMSNorm epsilon must lie in (0, 1)", f.ArchKey("attention.layer_norm_rms_epsilon"), c.RMSEps)
	}
	c.HeadDim = c.NEmbd / c.NHead
	if c.HeadDim%2 != 0 {
		return c, fmt.Errorf("model: head size %d is odd; RoPE needs pairs", c.HeadDim)
	}
	if hasRopeDims && int(ropeDims) != c.HeadDim {
		return c, fmt.Errorf("model: rope.dimension_count %d differs from the head size %d (partial RoPE is not supported)", ropeDims, c.HeadDim)
	}
	return c, nil
}

// loader fetches tensors and remembers the first error, so Load reads as a
// list of the model's weights.
type loader struct {
	f   *gguf.File
	err error
}

func (l *loader) tensor(name string, shape ...int) *gguf.TensorInfo {
	if l.err != nil {
		return nil
	}
	t, ok := l.f.Tensor(name)
	if !ok {
		l.err = fmt.Errorf("model: tensor %s is missing", name)
		return nil
	}
	if !t.Type.Supported() {
		l.err = fmt.Errorf("model: tensor %s has type %s, which ocelot cannot run (it runs %s)", name, t.Type, typeList(WeightTypes))
		return nil
	}
	ok = len(t.Shape) == len(shape)
	for i := 0; ok && i < len(shape); i++ {
		ok = t.Shape[i] == int64(shape[i])
	}
	if !ok {
		l.err = fmt.Errorf("model: tensor %s has shape %v, want %v", name, t.Shape, shape)
		return nil
	}
	return t
}

// matrix is a 2-D weight of rows rows of cols elements.
func (l *loader) matrix(name string, cols, rows int) *Weight {
	return l.weight(name, cols, rows, cols, rows)
}

// weight fetches a tensor of the given GGUF shape as rows rows of cols
// elements.
func (l *loader) weight(name string, cols, rows int, shape ...int) *Weight {
	t := l.tensor(name, shape...)
	if t == nil {
		return nil
	}
	data, err := l.f.TensorData(name)
	if err != nil {
		l.err = fmt.Errorf("model: %w", err)
		return nil
	}
	rb, err := quant.RowSize(t.Type, int64(cols))
	if err != nil {
		l.err = fmt.Errorf("model: tensor %s: %w", name, err)
		return nil
	}
	return &Weight{Name: name, Type: t.Type, Rows: rows, Cols: cols, RowBytes: int(rb), Data: data}
}

func (l *loader) vector(name string, n int) []float32 {
	w := l.weight(name, n, 1, n) // a 1-D tensor: one row
	if w == nil {
		return nil
	}
	v := make([]float32, n)
	if err := w.Row(0, v); err != nil {
		l.err = fmt.Errorf("model: tensor %s: %w", name, err)
		return nil
	}
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			l.err = fmt.Errorf("model: tensor %s: element %d is %v; a norm or RoPE vector must be finite", name, i, x)
			return nil
		}
	}
	return v
}
