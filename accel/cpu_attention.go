package accel

import (
	"fmt"
	"math"

	"github.com/ocelot-llm/ocelot/graph"
	"github.com/ocelot-llm/ocelot/quant"
)

// attnTile is how many cache cells attention scores at a time before it
// folds them into the running softmax.
const attnTile = 64

// A tile of positions must not straddle a page (its cells are read as
// one run): this fails to compile unless attnTile divides a page.
var _ = [1]int{}[graph.PageCells%attnTile]

// attentionTask is fused attention. A job is a block of query tokens and
// one KV head with its group of query heads (grouped-query attention), so
// each K and V row is read once for the whole block and group. The scores of a tile of cells
// are one quant.MatMul of the K rows, straight from the cache in its type,
// by the group's queries (quantized to Q8_0 for a q8_0 or q4_0 cache); they
// are folded into an online softmax (running maximum m, running sum l, and
// the accumulators rescaled whenever m grows) together with the V rows,
// expanded to f32 once per cell.
type attentionTask struct {
	c                *CPU
	q, out           []float32
	k, v             []byte
	tk, tv           quant.Type
	rowK, rowV       int
	hd, nHead, group int
	nHeadKV          int
	idx              graph.KVIndex
	blocks           [][2]int // the jobs' query tokens: runs of one sequence, up to attnQBlock long
	scale            float32
	qTerms           int  // 0: f32 queries; 1 or 2: Q8_0 queries in that many terms
	kDirect          bool // K head rows can be multiplied in place (else expanded to f32 first)
	vBlocked         bool // V heads start on block boundaries
}

// attnQBlock is how many query tokens one job takes: each tile of K and V
// rows is read and expanded once for all of them, and their scores are
// one matrix product.
const attnQBlock = 16

// rowsPerJob is the most query rows (token × head of the group) a job has.
func (t *attentionTask) rowsPerJob() int { return attnQBlock * t.group }

// scratch layout of one worker, in floats.
func (t *attentionTask) scratchSize() int {
	R, hd := t.rowsPerJob(), t.hd
	return R*max(t.qTerms, 1)*attnTile + // scores (one row per query row and term)
		R*2 + // m and l per row
		R*hd + // accumulators
		R*hd + // the block's queries, gathered
		attnTile*hd + // a tile of K rows expanded to f32
		hd*attnTile + R*hd + // a tile of V transposed, and its products
		hd + 2*quant.QK_K // one V row, and room for straddling blocks
}

func (t *attentionTask) run(w, lo, hi int) {
	s := &t.c.scratch[w]
	g, hd := t.group, t.hd
	terms := max(t.qTerms, 1)
	R := t.rowsPerJob()
	f := s.f32
	take := func(n int) []float32 { v := f[:n:n]; f = f[n:]; return v }
	scores := take(R * terms * attnTile)
	ms, ls := take(R), take(R)
	acc := take(R * hd)
	qf := take(R * hd)
	kTile := take(attnTile * hd)
	vT := take(hd * attnTile)
	pv := take(R * hd)
	vRow := take(hd)
	tmp := f
	qb := hd / 32 * q8Bytes
	for job := lo; job < hi; job++ {
		blk, kvh := job/t.nHeadKV, job%t.nHeadKV
		t0, t1 := t.blocks[blk][0], t.blocks[blk][1]
		rows := (t1 - t0) * g
		// The block's query rows: row r is token t0+r/g, head kvh*g+r%g.
		for tok := t0; tok < t1; tok++ {
			copy(qf[(tok-t0)*g*hd:(tok-t0+1)*g*hd], t.q[(tok*t.nHead+kvh*g)*hd:][:g*hd])
		}
		var act []byte
		aRow := 4 * hd
		if t.qTerms > 0 {
			aRow = qb
			act = s.b[:rows*terms*qb]
			for r := 0; r < rows; r++ {
				qh := qf[r*hd : (r+1)*hd]
				dst := act[r*terms*qb:]
				_ = quant.QuantizeRowQ8_0(dst[:qb], qh)
				if terms == 2 {
					rest := tmp[:hd]
					_ = quant.DequantizeQ8_0(rest, dst[:qb])
					up := 1 / termScale(1)
					for i, v := range qh {
						rest[i] = (v - rest[i]) * up
					}
					_ = quant.QuantizeRowQ8_0(dst[qb:2*qb], rest)
				}
			}
		} else {
			act = bytesView(qf[:rows*hd])
		}
		clear(acc[:rows*hd])
		for r := 0; r < rows; r++ {
			ms[r], ls[r] = float32(math.Inf(-1)), 0
		}
		// The block's tokens share a sequence: the one furthest on sees
		// the most positions; the others mask the positions past their
		// own (the causal mask). Tiles of positions never straddle a page,
		// so a tile's cells are consecutive.
		horizon := 0
		for tok := t0; tok < t1; tok++ {
			horizon = max(horizon, t.idx.Pos(tok)+1)
		}
		for c0 := 0; c0 < horizon; c0 += attnTile {
			nc := min(attnTile, horizon-c0)
			cell := t.idx.Cell(t0, c0)
			t.scores(scores, act, aRow, rows*terms, kvh, cell, nc, kTile, tmp)
			// Fold the tile into each row's softmax: rescale when the
			// maximum grows, then weight the V rows.
			for r := 0; r < rows; r++ {
				sc := scores[r*terms*attnTile:][:nc]
				if terms == 2 {
					lo := scores[(r*terms+1)*attnTile:][:nc]
					for j := range sc {
						sc[j] += lo[j] * termScale(1)
					}
				}
				nv := t.idx.Pos(t0+r/g) + 1 - c0 // cells of the tile this row sees
				if nv <= 0 {
					clear(sc)
					continue
				}
				nv = min(nv, nc)
				tmax := float32(math.Inf(-1))
				for j := 0; j < nv; j++ {
					sc[j] *= t.scale
					tmax = max(tmax, sc[j])
				}
				if tmax > ms[r] {
					if ls[r] != 0 {
						f := quant.Exp(ms[r] - tmax)
						ls[r] *= f
						a := acc[r*hd : (r+1)*hd]
						for i := range a {
							a[i] *= f
						}
					}
					ms[r] = tmax
				}
				quant.ExpSub(sc[:nv], ms[r])
				for _, p := range sc[:nv] {
					ls[r] += p
				}
				clear(sc[nv:])
			}
			// acc[r] += Σ_j p[r][j]·V[j]: one MatMul of the tile's V,
			// transposed, by the block's probability rows.
			for j := 0; j < nc; j++ {
				v := t.valueRow(vRow, kvh, cell+j, tmp)
				for d, x := range v {
					vT[d*attnTile+j] = x
				}
			}
			_ = quant.MatMul(quant.F32, nc, bytesView(vT), 4*attnTile, hd, bytesView(scores), 4*terms*attnTile, rows, pv, hd)
			for i, x := range pv[:rows*hd] {
				acc[i] += x
			}
		}
		for r := 0; r < rows; r++ {
			tok, h := t0+r/g, kvh*g+r%g
			inv := 1 / ls[r]
			a, o := acc[r*hd:(r+1)*hd], t.out[(tok*t.nHead+h)*hd:][:hd]
			for i := range o {
				o[i] = a[i] * inv
			}
		}
	}
}

// scores writes the raw scores q·K[c0+j], c0 the tile's first cell, of the group's heads (and terms)
// into rows of attnTile: one MatMul of the tile's K head rows by the
// group's queries.
func (t *attentionTask) scores(scores []float32, act []byte, aRow, nAct, kvh, c0, nc int, kTile, tmp []float32) {
	hd := t.hd
	if t.kDirect {
		bs, ts := t.tk.BlockSize(), t.tk.TypeSize()
		k := t.k[c0*t.rowK+kvh*hd/bs*ts:]
		_ = quant.MatMul(t.tk, hd, k, t.rowK, nc, act, aRow, nAct, scores, attnTile)
		return
	}
	// Expand the tile's K head rows to f32 first (blocks that straddle
	// heads, or float precision with a quantized cache).
	for j := 0; j < nc; j++ {
		row := t.k[(c0+j)*t.rowK:]
		if t.tk == quant.F16 {
			convertF16(kTile[j*hd:(j+1)*hd], row[2*kvh*hd:])
			continue
		}
		copy(kTile[j*hd:(j+1)*hd], headOf(tmp, row, t.tk, kvh*hd, hd))
	}
	_ = quant.MatMul(quant.F32, hd, bytesView(kTile), 4*hd, nc, act, aRow, nAct, scores, attnTile)
}

// valueRow returns V[cell] of KV head kvh as f32.
func (t *attentionTask) valueRow(dst []float32, kvh, cell int, tmp []float32) []float32 {
	hd := t.hd
	row := t.v[cell*t.rowV:]
	switch {
	case t.tv == quant.F32:
		f, _ := floatsView(row[4*kvh*hd : 4*(kvh+1)*hd])
		return f
	case t.tv == quant.F16:
		convertF16(dst, row[2*kvh*hd:])
	case t.vBlocked && t.tv == quant.Q8_0:
		_ = quant.DequantizeQ8_0(dst, row[kvh*hd/32*q8Bytes:])
	case t.vBlocked && t.tv == quant.Q4_0:
		_ = quant.DequantizeQ4_0(dst, row[kvh*hd/32*q4Bytes:])
	default:
		copy(dst, headOf(tmp, row, t.tv, kvh*hd, hd))
	}
	return dst
}

// headOf dequantizes elements [off, off+n) of a row of type typ, whose
// blocks need not align with them, into tmp and returns them.
func headOf(tmp []float32, row []byte, typ quant.Type, off, n int) []float32 {
	bs, ts := typ.BlockSize(), typ.TypeSize()
	b0, b1 := off/bs, (off+n+bs-1)/bs
	buf := tmp[:(b1-b0)*bs]
	_ = quant.Dequantize(typ, buf, row[b0*ts:b1*ts])
	return buf[off-b0*bs:][:n]
}

func (c *CPU) attention(a *cpuArena, n *graph.Tensor) error {
	p := n.Param
	kc, vc := n.Src[1].Storage(), n.Src[2].Storage()
	kb, err := bufOf(kc)
	if err != nil {
		return err
	}
	vb, err := bufOf(vc)
	if err != nil {
		return err
	}
	t := &c.attn
	defer func() { t.q, t.out, t.k, t.v, t.idx.Idx = nil, nil, nil, nil, nil }()
	if t.q, err = a.floats(n.Src[0]); err != nil {
		return err
	}
	if t.out, err = a.floats(n); err != nil {
		return err
	}
	rk, _ := quant.RowSize(kc.Type, int64(kc.Shape[0]))
	rv, _ := quant.RowSize(vc.Type, int64(vc.Shape[0]))
	t.k, t.v = kb.data, vb.data
	t.tk, t.tv, t.rowK, t.rowV = kc.Type, vc.Type, int(rk), int(rv)
	t.hd, t.nHead, t.nHeadKV, t.group = p.HeadDim, p.NHead, p.NHeadKV, p.NHead/p.NHeadKV
	t.scale = p.Scale
	t.idx = graph.KVIndex{Idx: n.Src[3].I32s, N: n.Rows()}
	if _, err := t.idx.Check(p.Page, min(kc.Rows(), vc.Rows())); err != nil {
		return fmt.Errorf("ATTENTION %s: %w", n.Name, err)
	}
	// Jobs: runs of tokens of one sequence (one list of pages), cut
	// into blocks of attnQBlock.
	t.blocks = t.blocks[:0]
	for t0 := 0; t0 < t.idx.N; {
		t1 := t0 + 1
		for t1 < t.idx.N && t1-t0 < attnQBlock && t.idx.Base(t1) == t.idx.Base(t0) {
			t1++
		}
		t.blocks = append(t.blocks, [2]int{t0, t1})
		t0 = t1
	}
	blocked := p.HeadDim%32 == 0
	quantK := kc.Type == quant.Q8_0 || kc.Type == quant.Q4_0
	t.qTerms = 0
	t.kDirect = kc.Type == quant.F32 // f16 converts faster through a table
	if blocked && quantK {
		switch c.precision {
		case PrecisionInt8:
			t.qTerms, t.kDirect = 1, true
		case PrecisionInt8x2:
			t.qTerms, t.kDirect = 2, true
		}
	}
	t.vBlocked = blocked
	c.growScratch(t.scratchSize(), t.rowsPerJob()*2*p.HeadDim/32*q8Bytes)
	c.pool.parallelFor(len(t.blocks)*p.NHeadKV, 1, t)
	return nil
}
