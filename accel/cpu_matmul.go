package accel

import (
	"fmt"
	"github.com/ocelot-llm/ocelot/internal/plant"
	"sync"

	"github.com/ocelot-llm/ocelot/graph"
	"github.com/ocelot-llm/ocelot/quant"
)

// Precision says how the CPU backend rounds the activations that MUL_MAT
// (with quantized weights) and attention (with a quantized K cache)
// multiply.
type Precision uint8

const (
	// PrecisionInt8 quantizes activations to Q8_0 (Q8_K for Q6_K
	// weights) and multiplies with int8 dot products, as llama.cpp's CPU
	// backend does: the fastest, and as close to ref as llama.cpp is
	// (each matmul's NMSE about 3e-5, logits about 1e-3).
	PrecisionInt8 Precision = iota
	// PrecisionInt8x2 quantizes activations to two int8 terms, Q8(x) and
	// Q8 of what Q8(x) leaves over, and adds both int8 dot products: twice
	// the integer work of PrecisionInt8 for about 1/250 of its rounding
	// error (matmul NMSE about 5e-10), which keeps the logits within 1e-7
	// of ref. The K and V projections that feed a quantized cache take a
	// third term: their results are rounded again on the way into the
	// cache, where a difference in the last bits can flip a rounding step,
	// so they must be as close to ref's as float rounding.
	PrecisionInt8x2
	// PrecisionFloat multiplies f32 activations by dequantized weight rows,
	// as ref does: the slowest, and equal to ref to float rounding.
	PrecisionFloat
)

var precisionNames = [...]string{"int8", "int8x2", "float"}

func (p Precision) String() string {
	if int(p) < len(precisionNames) {
		return precisionNames[p]
	}
	return fmt.Sprintf("precision(%d)", uint8(p))
}

// ParsePrecision looks a precision up by the name String gives it.
func ParsePrecision(name string) (Precision, error) {
	for i, n := range precisionNames {
		if n == name {
			return Precision(i), nil
		}
	}
	return 0, fmt.Errorf("cpu: unknown precision %q (have int8, int8x2, float)", name)
}

// actCache remembers the last converted activations, so the MUL_MATs
// that read the same tensor (Q, K and V; gate and up) convert it once.
// It is cleared at the start of every Compute.
type actCache struct {
	src      *graph.Tensor
	typ      quant.Type // activation format
	terms    int        // 1, or 2 for PrecisionInt8x2
	buf      []byte
	rowBytes int // bytes of one term of one row
}

func (a *actCache) reset() { a.src = nil }

// quantizeTask converts rows of activations to an activation format in
// `terms` terms: row r's terms are rows terms·r, terms·r+1, ... of dst,
// each term the quantized remainder of the ones before.
type quantizeTask struct {
	c        *CPU
	x        []float32
	k        int
	typ      quant.Type
	terms    int
	dst      []byte
	rowBytes int
}

func (t *quantizeTask) run(w, lo, hi int) {
	for r := lo; r < hi; r++ {
		src := t.x[r*t.k : (r+1)*t.k]
		dst := t.dst[r*t.terms*t.rowBytes:]
		quantizeRow(t.typ, dst[:t.rowBytes], src)
		if t.terms == 1 {
			continue
		}
		s := t.c.scratch[w].f32
		rest, scaled := s[:t.k], s[t.k:2*t.k]
		copy(rest, src)
		for term := 1; term < t.terms; term++ {
			// rest -= the previous term, then the next term quantizes
			// rest scaled up by 2^(8·term): exact, and it keeps the term's
			// block scales out of f16's subnormal range.
			prev := dst[(term-1)*t.rowBytes : term*t.rowBytes]
			dequantizeAct(t.typ, scaled, prev)
			down := termScale(term - 1)
			for i := range rest {
				rest[i] -= scaled[i] * down
			}
			up := 1 / termScale(term)
			for i, v := range rest {
				scaled[i] = v * up
			}
			quantizeRow(t.typ, dst[term*t.rowBytes:(term+1)*t.rowBytes], scaled)
		}
	}
}

// termScale is what the products with activation term i are multiplied
// by: 2^(-8i), undoing the scaling the term was quantized with.
func termScale(i int) float32 {
	return [...]float32{1, 1.0 / (1 << 8), 1.0 / (1 << 16)}[i]
}

// quantizeRow converts src to the activation format typ (Q8_0 or Q8_K);
// the lengths are checked by the callers.
func quantizeRow(typ quant.Type, dst []byte, src []float32) {
	if typ == quant.Q8_K {
		_ = quant.QuantizeRowQ8_K(dst, src)
	} else {
		_ = quant.QuantizeRowQ8_0(dst, src)
	}
}

func dequantizeAct(typ quant.Type, dst []float32, src []byte) {
	if typ == quant.Q8_K {
		_ = quant.DequantizeQ8_K(dst, src)
	} else {
		_ = quant.DequantizeQ8_0(dst, src)
	}
}

// quantizeActs returns src's rows converted to typ (Q8_0 or Q8_K) in
// `terms` terms each, and the bytes of one term, reusing the last result
// when it is of the same tensor.
func (c *CPU) quantizeActs(a *cpuArena, src *graph.Tensor, typ quant.Type, terms int) ([]byte, int, error) {
	if c.acts.src == src && c.acts.typ == typ && c.acts.terms == terms {
		return c.acts.buf, c.acts.rowBytes, nil
	}
	x, err := a.floats(src)
	if err != nil {
		return nil, 0, err
	}
	k, n := src.Shape[0], src.Rows()
	rb, err := quant.RowSize(typ, int64(k))
	if err != nil {
		return nil, 0, fmt.Errorf("activations %s: %w", src.Name, err)
	}
	c.acts.buf = grow(c.acts.buf, terms*n*int(rb))
	if terms > 1 {
		c.growScratch(2*k, 0)
	}
	t := &c.quant
	t.x, t.k, t.typ, t.terms, t.dst, t.rowBytes = x, k, typ, terms, c.acts.buf, int(rb)
	c.pool.parallelFor(n, grainRows(k), t)
	t.x, t.dst = nil, nil
	c.acts.src, c.acts.typ, c.acts.terms, c.acts.rowBytes = src, typ, terms, int(rb)
	return c.acts.buf, int(rb), nil
}

// growScratch makes every worker's scratch hold at least floats float32
// and bytes bytes.
func (c *CPU) growScratch(floats, bytes int) {
	for i := range c.scratch {
		s := &c.scratch[i]
		if len(s.f32) < floats {
			s.f32 = make([]float32, floats)
		}
		if len(s.b) < bytes {
			s.b = make([]byte, bytes)
		}
	}
}

// mulMatTask computes tiles of out[j][r] = W[r]·x[j]: tile i covers
// weight rows [tileM·(i/tilesN), +tileM) and tokens [tileN·(i%tilesN),
// +tileN). quant.MatMul packs each panel of weight rows once per tile and
// multiplies it with all the tile's tokens.
type mulMatTask struct {
	c        *CPU
	typ      quant.Type
	w        []byte // weight rows in typ
	rowBytes int
	k, m, n  int
	act      []byte // activations: terms rows of actRow bytes per token
	actRow   int
	terms    int
	x        []float32 // f32 activations (PrecisionFloat with quantized weights)
	out      []float32

	tileM, tileN, tilesN int

	mu  sync.Mutex
	err error
}

func (t *mulMatTask) fail(err error) {
	t.mu.Lock()
	if t.err == nil {
		t.err = err
	}
	t.mu.Unlock()
}

func (t *mulMatTask) run(wk, lo, hi int) {
	k, m := t.k, t.m
	for tile := lo; tile < hi; tile++ {
		r0 := tile / t.tilesN * t.tileM
		r1 := min(r0+t.tileM, m)
		if r1 == m && plant.Is(plant.TileEdge) {
			r1-- // a planted off-by-one (tests only)
		}
		j0 := tile % t.tilesN * t.tileN
		j1 := min(j0+t.tileN, t.n)
		w := t.w[r0*t.rowBytes:]
		switch {
		case t.x != nil:
			// Dequantize each weight row once for the tile's tokens.
			row := t.c.scratch[wk].f32[:k]
			for r := r0; r < r1; r++ {
				if err := quant.Dequantize(t.typ, row, t.w[r*t.rowBytes:(r+1)*t.rowBytes]); err != nil {
					t.fail(err)
					return
				}
				for j := j0; j < j1; j++ {
					t.out[j*m+r] = quant.VecDotF32(k, row, t.x[j*k:(j+1)*k])
				}
			}
		case t.terms == 1:
			if err := quant.MatMul(t.typ, k, w, t.rowBytes, r1-r0, t.act[j0*t.actRow:], t.actRow, j1-j0, t.out[j0*m+r0:], m); err != nil {
				t.fail(err)
				return
			}
		default:
			// All terms of every token in one call, then their sums.
			rows, nt := r1-r0, t.terms
			tmp := t.c.scratch[wk].f32[:nt*(j1-j0)*rows]
			if err := quant.MatMul(t.typ, k, w, t.rowBytes, rows, t.act[nt*j0*t.actRow:], t.actRow, nt*(j1-j0), tmp, rows); err != nil {
				t.fail(err)
				return
			}
			for j := j0; j < j1; j++ {
				o := t.out[j*m+r0:][:rows]
				terms := tmp[nt*(j-j0)*rows:]
				copy(o, terms[:rows])
				for term := 1; term < nt; term++ {
					part, scale := terms[term*rows:][:rows], termScale(term)
					for i := range o {
						o[i] += part[i] * scale
					}
				}
			}
		}
	}
}

// Tile shapes. A GEMV (a few tokens) splits the weight rows only, in
// enough pieces for the pool to balance; a GEMM splits rows and tokens,
// so that a tile's prepared activations stay in the L2 cache.
const (
	gemvMaxTokens = 4
	gemmTileN     = 64
	maxTileM      = 256
)

func (c *CPU) mulMat(a *cpuArena, n *graph.Tensor) error {
	w, src := n.Src[0], n.Src[1]
	t := &c.mm
	defer func() { t.w, t.act, t.x, t.out = nil, nil, nil, nil }()
	t.typ, t.k, t.m, t.n = w.Type, w.Shape[0], w.Rows(), src.Rows()
	rb, err := quant.RowSize(w.Type, int64(t.k))
	if err != nil {
		return err
	}
	t.rowBytes = int(rb)
	if t.w, err = a.raw(w); err != nil {
		return err
	}
	if len(t.w) < t.rowBytes*t.m {
		return fmt.Errorf("weight %s has %d bytes, want %d", w.Name, len(t.w), t.rowBytes*t.m)
	}
	if t.out, err = a.floats(n); err != nil {
		return err
	}
	at, err := quant.ActType(w.Type)
	if err != nil {
		return err
	}
	t.terms = 1
	switch {
	case at == quant.F32:
		x, err := a.floats(src)
		if err != nil {
			return err
		}
		t.act, t.actRow = bytesView(x), 4*t.k
	case c.precision == PrecisionFloat:
		if t.x, err = a.floats(src); err != nil {
			return err
		}
		c.growScratch(t.k, 0)
	default:
		if c.precision == PrecisionInt8x2 {
			t.terms = 2
			if n.Param.QuantCacheFeed {
				t.terms = 3
			}
		}
		if t.act, t.actRow, err = c.quantizeActs(a, src, at, t.terms); err != nil {
			return err
		}
	}
	if t.n <= gemvMaxTokens {
		t.tileN = t.n
		t.tileM = t.m / (8 * c.threads)
	} else {
		t.tileN = gemmTileN
		t.tileM = t.m / (4 * c.threads)
	}
	// Whole panels of quant.MatMulRowBlock rows.
	t.tileM = min(maxTileM, max(quant.MatMulRowBlock, t.tileM/quant.MatMulRowBlock*quant.MatMulRowBlock))
	t.tilesN = (t.n + t.tileN - 1) / t.tileN
	if t.terms > 1 {
		c.growScratch(t.terms*t.tileN*t.tileM, 0)
	}
	tiles := (t.m + t.tileM - 1) / t.tileM * t.tilesN
	t.err = nil
	c.pool.parallelFor(tiles, 1, t)
	return t.err
}
