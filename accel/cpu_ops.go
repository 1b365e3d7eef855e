package accel

import (
	"fmt"
	"github.com/ocelot-llm/ocelot/internal/plant"
	"math"
	"sync"

	"github.com/ocelot-llm/ocelot/graph"
	"github.com/ocelot-llm/ocelot/quant"
)

// rowsTask runs a row-wise op (GET_ROWS, RMS_NORM, MUL, ADD, SWIGLU,
// ROPE, SET_ROWS) over a range of rows.
type rowsTask struct {
	c     *CPU
	op    graph.Op
	width int
	x, y  []float32 // sources (y is broadcast when it has one row)
	out   []float32
	eps   float32

	// GET_ROWS and SET_ROWS
	ids      []int32
	typ      quant.Type
	table    []byte // GET_ROWS: the table's bytes (or f32 values as bytes)
	dst      []byte // SET_ROWS: the cache's bytes
	rowBytes int

	// ROPE: cos and sin of every (row, pair), HeadDim/2 per row.
	hd       int
	cos, sin []float32

	mu  sync.Mutex
	err error
}

func (t *rowsTask) fail(err error) {
	t.mu.Lock()
	if t.err == nil {
		t.err = err
	}
	t.mu.Unlock()
}

// grainRows is how many rows of `width` make a chunk of parallel work
// worth handing to another thread.
func grainRows(width int) int {
	return max(1, (1<<14)/max(width, 1))
}

func (c *CPU) runRows(n, width int, t *rowsTask) error {
	t.err = nil
	c.pool.parallelFor(n, grainRows(width), t)
	err := t.err
	t.reset()
	return err
}

// reset drops the task's references to node data.
func (t *rowsTask) reset() {
	t.x, t.y, t.out, t.ids, t.table, t.dst, t.cos, t.sin = nil, nil, nil, nil, nil, nil, nil, nil
	t.err = nil
}

func (t *rowsTask) run(_, lo, hi int) {
	w := t.width
	switch t.op {
	case graph.OpGetRows:
		for r := lo; r < hi; r++ {
			id := int(t.ids[r])
			src := t.table[id*t.rowBytes : (id+1)*t.rowBytes]
			if err := quant.Dequantize(t.typ, t.out[r*w:(r+1)*w], src); err != nil {
				t.fail(err)
				return
			}
			if t.typ == quant.Q4_0 && plant.Is(plant.Q4Nibbles) {
				swapNibbleHalves(t.out[r*w : (r+1)*w]) // a planted bug (tests only)
			}
		}
	case graph.OpRMSNorm:
		for r := lo; r < hi; r++ {
			rmsNorm(t.out[r*w:(r+1)*w], t.x[r*w:(r+1)*w], t.eps)
		}
	case graph.OpMul:
		for r := lo; r < hi; r++ {
			x, out := t.x[r*w:(r+1)*w], t.out[r*w:(r+1)*w]
			y := t.y[:w]
			if len(t.y) > w {
				y = t.y[r*w : (r+1)*w]
			}
			for i := range out {
				out[i] = x[i] * y[i]
			}
		}
	case graph.OpAdd:
		x, y, out := t.x[lo*w:hi*w], t.y[lo*w:hi*w], t.out[lo*w:hi*w]
		for i := range out {
			out[i] = x[i] + y[i]
		}
	case graph.OpSwiGLU:
		x, y, out := t.x[lo*w:hi*w], t.y[lo*w:hi*w], t.out[lo*w:hi*w]
		quant.SwiGLU(out, x, y)
	case graph.OpRope:
		half := t.hd / 2
		for r := lo; r < hi; r++ {
			cos, sin := t.cos[r*half:(r+1)*half], t.sin[r*half:(r+1)*half]
			x, out := t.x[r*w:(r+1)*w], t.out[r*w:(r+1)*w]
			for h := 0; h < w; h += t.hd {
				xh, oh := x[h:h+t.hd], out[h:h+t.hd]
				for i := range half {
					a, b := xh[2*i], xh[2*i+1]
					oh[2*i] = a*cos[i] - b*sin[i]
					oh[2*i+1] = a*sin[i] + b*cos[i]
				}
			}
		}
	case graph.OpSetRows:
		for r := lo; r < hi; r++ {
			cell := int(t.ids[r])
			if err := quant.Quantize(t.typ, t.dst[cell*t.rowBytes:(cell+1)*t.rowBytes], t.x[r*w:(r+1)*w]); err != nil {
				t.fail(err)
				return
			}
		}
	}
}

// rmsNorm writes x / sqrt(mean(x²) + eps) into out: ref.RMSNorm without
// the weight, which follows as a MUL. The sum of squares is taken in
// float64 in order, as ref does, so the result is bit-identical.
func rmsNorm(out, x []float32, eps float32) {
	var ss float64
	for _, v := range x {
		ss += float64(v) * float64(v)
	}
	scale := float32(1 / math.Sqrt(ss/float64(len(x))+float64(eps)))
	out = out[:len(x)]
	for i, v := range x {
		out[i] = v * scale
	}
}

func (c *CPU) getRows(a *cpuArena, n *graph.Tensor) error {
	table, ids := n.Src[0], n.Src[1].I32s
	data, err := a.raw(table)
	if err != nil {
		return err
	}
	out, err := a.floats(n)
	if err != nil {
		return err
	}
	rowBytes, err := quant.RowSize(table.Type, int64(table.Shape[0]))
	if err != nil {
		return err
	}
	nrows := table.Rows()
	if int64(len(data)) < rowBytes*int64(nrows) {
		return fmt.Errorf("table %s has %d bytes, want %d", table.Name, len(data), rowBytes*int64(nrows))
	}
	for i, id := range ids {
		if id < 0 || int(id) >= nrows {
			return fmt.Errorf("row id %d at index %d is outside the table %s of %d rows", id, i, table.Name, nrows)
		}
	}
	t := &c.rows
	t.op, t.width, t.ids, t.typ, t.table, t.rowBytes, t.out = graph.OpGetRows, n.Shape[0], ids, table.Type, data, int(rowBytes), out
	return c.runRows(len(ids), n.Shape[0], t)
}

func (c *CPU) elementwise(a *cpuArena, n *graph.Tensor) error {
	t := &c.rows
	var err error
	if t.x, err = a.floats(n.Src[0]); err != nil {
		return err
	}
	if n.Src[1] != nil {
		if t.y, err = a.floats(n.Src[1]); err != nil {
			return err
		}
	}
	if t.out, err = a.floats(n); err != nil {
		return err
	}
	t.op, t.width, t.eps = n.Op, n.Shape[0], n.Param.Eps
	return c.runRows(n.Rows(), n.Shape[0], t)
}

// ropeCache keeps the cos/sin table of the last positions and parameters
// ROPE ran with: Q and K of every layer share it.
type ropeCache struct {
	pos      []int32
	base     float32
	hd       int
	freqs    []float32
	cos, sin []float32
	theta    []float64
}

func (r *ropeCache) get(pos []int32, hd int, base float32, freqs []float32) (cos, sin []float32) {
	half := hd / 2
	if r.hd == hd && r.base == base && sameFloats(r.freqs, freqs) && sameInts(r.pos, pos) {
		return r.cos, r.sin
	}
	r.pos = append(r.pos[:0], pos...)
	r.hd, r.base = hd, base
	r.freqs = append(r.freqs[:0], freqs...)
	if freqs == nil {
		r.freqs = nil
	}
	// The angle of pair i at position p is p·base^(-2i/hd) / freqs[i],
	// in float64 as ref.Rope computes it.
	r.theta = r.theta[:0]
	for i := range half {
		r.theta = append(r.theta, math.Pow(float64(base), -2*float64(i)/float64(hd)))
	}
	n := len(pos) * half
	r.cos, r.sin = grow(r.cos, n), grow(r.sin, n)
	for t, p := range pos {
		for i := range half {
			theta := float64(p) * r.theta[i]
			if freqs != nil {
				theta /= float64(freqs[i])
			}
			s, c := math.Sincos(theta)
			r.cos[t*half+i], r.sin[t*half+i] = float32(c), float32(s)
		}
	}
	return r.cos, r.sin
}

func sameInts(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func sameFloats(a, b []float32) bool {
	if (a == nil) != (b == nil) || len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// grow returns s resized to n, reallocating only when it is too small.
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

func (c *CPU) ropeNode(a *cpuArena, n *graph.Tensor) error {
	t := &c.rows
	var err error
	if t.x, err = a.floats(n.Src[0]); err != nil {
		return err
	}
	if t.out, err = a.floats(n); err != nil {
		return err
	}
	var freqs []float32
	if n.Src[2] != nil {
		if freqs, err = a.floats(n.Src[2]); err != nil {
			return err
		}
		freqs = freqs[:n.Param.HeadDim/2]
	}
	t.cos, t.sin = c.rope.get(n.Src[1].I32s, n.Param.HeadDim, n.Param.RopeBase, freqs)
	t.op, t.width, t.hd = graph.OpRope, n.Shape[0], n.Param.HeadDim
	return c.runRows(n.Rows(), n.Shape[0], t)
}

func (c *CPU) setRows(a *cpuArena, n *graph.Tensor) error {
	cache := n.Src[1].Storage()
	b, err := bufOf(cache)
	if err != nil {
		return err
	}
	t := &c.rows
	if t.x, err = a.floats(n.Src[0]); err != nil {
		return err
	}
	rowBytes, err := quant.RowSize(cache.Type, int64(cache.Shape[0]))
	if err != nil {
		return err
	}
	cells := n.Src[2].I32s
	for i, cell := range cells {
		if cell < 0 || int(cell) >= cache.Rows() {
			return fmt.Errorf("cell %d at index %d is outside the cache %s of %d cells", cell, i, cache.Name, cache.Rows())
		}
	}
	t.op, t.width, t.ids, t.typ, t.dst, t.rowBytes = graph.OpSetRows, cache.Shape[0], cells, cache.Type, b.data, int(rowBytes)
	return c.runRows(len(cells), cache.Shape[0], t)
}

// swapNibbleHalves exchanges elements j and j+16 of every 32-element
// block: what reading Q4_0's nibbles in the wrong order gives.
func swapNibbleHalves(v []float32) {
	for b := 0; b+32 <= len(v); b += 32 {
		for j := 0; j < 16; j++ {
			v[b+j], v[b+16+j] = v[b+16+j], v[b+j]
		}
	}
}
