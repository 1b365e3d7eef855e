package accel

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"github.com/klauspost/cpuid/v2"

	"github.com/ocelot-llm/ocelot/graph"
	"github.com/ocelot-llm/ocelot/model"
	"github.com/ocelot-llm/ocelot/quant"
)

// CPU is ocelot's CPU backend: it runs every op of the Llama graph on the
// host, over weights used in place (usually in the model's memory map).
// Matrix products with Q4_0 and Q8_0 weights quantize the activations to
// Q8_0 once per node and multiply with integer dot products, Q6_K weights
// against Q8_K activations, as llama.cpp's CPU backend does; f32, f16 and
// bf16 weights multiply in float32. Attention is fused and reads the
// quantized KV cache directly.
//
// Work is spread over a persistent pool of threads started by NewCPU;
// Compute runs its nodes synchronously, one at a time, each over the
// whole pool. A CPU may be shared by several sequences: Compute calls are
// serialised.
type CPU struct {
	threads   int
	pool      *pool
	precision Precision

	mu     sync.Mutex // serialises Compute, Read, Write and Close
	closed bool

	// profiling times every node; prof holds the times per op.
	profiling bool
	prof      map[string]*OpTime

	// Scratch, reused across nodes and graphs so the hot path does not
	// allocate: one set per worker, and the quantized activations of the
	// current MUL_MAT, shared by all workers.
	scratch []workerScratch
	acts    actCache
	rope    ropeCache

	// Task structs of the ops, reused by every node (see task).
	mm    mulMatTask
	quant quantizeTask
	attn  attentionTask
	rows  rowsTask
}

// workerScratch is one worker's private memory.
type workerScratch struct {
	f32 []float32 // a dequantized weight row, attention scores and sums
	b   []byte    // a quantized attention query
}

// cpuBuf is the CPU's handle for a resident weight or cache, kept in the
// tensor's Bufs[graph.CPU].
type cpuBuf struct {
	data  []byte    // raw bytes, in the tensor's type
	f32   []float32 // data viewed as float32, for f32 tensors
	owned bool      // data is the backend's own memory, not the tensor's Data
}

// cpuArena holds one sequence's intermediates: float32 values at the
// byte offsets the planner gives.
type cpuArena struct {
	f []float32
}

func (a *cpuArena) Size() int64 { return 4 * int64(len(a.f)) }
func (a *cpuArena) Free()       { a.f = nil }

// NewCPU returns a CPU backend running on `threads` threads (the calling
// goroutine and threads-1 helpers); threads <= 0 means GOMAXPROCS. Close
// stops the helpers.
func NewCPU(threads int) *CPU {
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	initF16Table()
	c := &CPU{threads: threads, pool: newPool(threads), scratch: make([]workerScratch, threads), precision: PrecisionInt8}
	c.mm.c, c.attn.c, c.quant.c, c.rows.c = c, c, c, c
	return c
}

// Name is "cpu".
func (c *CPU) Name() string { return "cpu" }

// Device names the processor and the number of threads.
func (c *CPU) Device() string {
	name := cpuid.CPU.BrandName
	if name == "" {
		name = runtime.GOARCH
	}
	return fmt.Sprintf("%s, %d threads", name, c.threads)
}

// SetPrecision sets how activations are rounded for the products with
// quantized weights and a quantized K cache; NewCPU starts with
// PrecisionInt8. It takes effect at the next Compute.
func (c *CPU) SetPrecision(p Precision) {
	c.mu.Lock()
	c.precision = p
	c.mu.Unlock()
}

// Precision reports the precision in use.
func (c *CPU) Precision() Precision {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.precision
}

// Threads is the size of the worker pool.
func (c *CPU) Threads() int { return c.threads }

// weightType reports whether MUL_MAT and GET_ROWS read t: every type
// quant computes with.
func weightType(t quant.Type) bool { return model.HasType(model.WeightTypes, t) }

// kvType reports whether t can be a KV cache type (SET_ROWS, ATTENTION).
func kvType(t quant.Type) bool { return model.HasType(model.KVTypes, t) }

// Caps says what the CPU holds and runs: every weight and KV type, any
// head size, no fused ops (it runs each op over the whole thread pool,
// and the activations it converts are reused across the products of one
// input anyway), and it times its ops when profiling is on.
func (c *CPU) Caps() Caps {
	return Caps{WeightTypes: model.WeightTypes, KVTypes: model.KVTypes, Timing: true}
}

// Start is zero: the CPU builds nothing.
func (c *CPU) Start() StartInfo { return StartInfo{} }

// Memory is the host's memory (HostMemory).
func (c *CPU) Memory() Memory { return HostMemory() }

// SetProfiling turns the timing of every node on or off.
func (c *CPU) SetProfiling(on bool) {
	c.mu.Lock()
	c.profiling = on
	c.mu.Unlock()
}

// Profile returns the time spent in each op since profiling was turned
// on or the profile reset, longest first.
func (c *CPU) Profile() []OpTime {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]OpTime, 0, len(c.prof))
	for _, p := range c.prof {
		out = append(out, *p)
	}
	SortProfile(out)
	return out
}

// ResetProfile clears the times.
func (c *CPU) ResetProfile() {
	c.mu.Lock()
	clear(c.prof)
	c.mu.Unlock()
}

// Supports reports whether the CPU runs node n: its op with its types and
// shapes. It runs every op of the Llama graph for every type in
// model.WeightTypes and model.KVTypes, and no fused node.
func (c *CPU) Supports(n *graph.Tensor) bool {
	return c.check(n) == nil
}

// check says why node n cannot run here, or returns nil.
func (c *CPU) check(n *graph.Tensor) error {
	src := func(i int) *graph.Tensor { return n.Src[i] }
	need := func(k int) error {
		for i := 0; i < k; i++ {
			if n.Src[i] == nil {
				return fmt.Errorf("%s %s: source %d is missing", n.Op, n.Name, i)
			}
		}
		return nil
	}
	f32 := func(ts ...*graph.Tensor) error {
		for _, t := range ts {
			if t.Type != quant.F32 {
				return fmt.Errorf("%s %s: %s has type %s, want f32", n.Op, n.Name, t.Name, t.Type)
			}
		}
		return nil
	}
	i32 := func(t *graph.Tensor, count int) error {
		if t.Type != graph.I32 || t.Kind != graph.Input {
			return fmt.Errorf("%s %s: %s must be an i32 input", n.Op, n.Name, t.Name)
		}
		if len(t.I32s) != count {
			return fmt.Errorf("%s %s: %s holds %d values, want %d", n.Op, n.Name, t.Name, len(t.I32s), count)
		}
		return nil
	}
	shape := func(t *graph.Tensor, width, rows int) error {
		if t.Shape[0] != width || t.Rows() != rows {
			return fmt.Errorf("%s %s: %s is [%d x %d], want [%d x %d]", n.Op, n.Name, t.Name, t.Shape[0], t.Rows(), width, rows)
		}
		return nil
	}
	if n.Op != graph.OpCpy && n.Op != graph.OpLeaf && n.Type != quant.F32 && n.Op != graph.OpSetRows {
		return fmt.Errorf("%s %s: result type %s, want f32", n.Op, n.Name, n.Type)
	}
	w, rows := n.Shape[0], n.Rows()
	switch n.Op {
	case graph.OpCpy:
		return nil
	case graph.OpGetRows:
		if err := need(2); err != nil {
			return err
		}
		if !weightType(src(0).Type) {
			return fmt.Errorf("GET_ROWS %s: table type %s is not supported", n.Name, src(0).Type)
		}
		if src(0).Shape[0] != w {
			return fmt.Errorf("GET_ROWS %s: table rows of %d, result rows of %d", n.Name, src(0).Shape[0], w)
		}
		return i32(src(1), rows)
	case graph.OpRMSNorm:
		if err := need(1); err != nil {
			return err
		}
		if err := f32(src(0)); err != nil {
			return err
		}
		return shape(src(0), w, rows)
	case graph.OpMul, graph.OpAdd, graph.OpSwiGLU:
		if err := need(2); err != nil {
			return err
		}
		if err := f32(src(0), src(1)); err != nil {
			return err
		}
		if err := shape(src(0), w, rows); err != nil {
			return err
		}
		if n.Op == graph.OpMul && src(1).Rows() == 1 {
			return shape(src(1), w, 1)
		}
		return shape(src(1), w, rows)
	case graph.OpMulMat:
		if err := need(2); err != nil {
			return err
		}
		wt := src(0)
		if !weightType(wt.Type) {
			return fmt.Errorf("MUL_MAT %s: weight type %s is not supported", n.Name, wt.Type)
		}
		if err := f32(src(1)); err != nil {
			return err
		}
		k := wt.Shape[0]
		if k%wt.Type.BlockSize() != 0 {
			return fmt.Errorf("MUL_MAT %s: rows of %d are not whole %s blocks", n.Name, k, wt.Type)
		}
		if err := shape(src(1), k, rows); err != nil {
			return err
		}
		return shape(n, wt.Rows(), rows)
	case graph.OpRope:
		if err := need(2); err != nil {
			return err
		}
		if err := f32(src(0)); err != nil {
			return err
		}
		hd := n.Param.HeadDim
		if hd <= 0 || hd%2 != 0 || w%hd != 0 {
			return fmt.Errorf("ROPE %s: head size %d does not split rows of %d into pairs", n.Name, hd, w)
		}
		if src(2) != nil {
			if err := f32(src(2)); err != nil {
				return err
			}
			if src(2).Elements() < hd/2 {
				return fmt.Errorf("ROPE %s: %d frequency factors, want %d", n.Name, src(2).Elements(), hd/2)
			}
		}
		if err := shape(src(0), w, rows); err != nil {
			return err
		}
		return i32(src(1), rows)
	case graph.OpSetRows:
		if err := need(3); err != nil {
			return err
		}
		if err := f32(src(0)); err != nil {
			return err
		}
		cache := src(1).Storage()
		if !kvType(cache.Type) {
			return fmt.Errorf("SET_ROWS %s: cache type %s is not supported (f32, f16, q8_0, q4_0)", n.Name, cache.Type)
		}
		if cache.Shape[0] != src(0).Shape[0] || cache.Shape[0]%cache.Type.BlockSize() != 0 {
			return fmt.Errorf("SET_ROWS %s: rows of %d into a %s cache of rows of %d", n.Name, src(0).Shape[0], cache.Type, cache.Shape[0])
		}
		return i32(src(2), src(0).Rows())
	case graph.OpAttention:
		if err := need(4); err != nil {
			return err
		}
		if err := f32(src(0)); err != nil {
			return err
		}
		p := n.Param
		if p.HeadDim <= 0 || p.NHead <= 0 || p.NHeadKV <= 0 || p.NHead%p.NHeadKV != 0 {
			return fmt.Errorf("ATTENTION %s: %d heads over %d KV heads of size %d", n.Name, p.NHead, p.NHeadKV, p.HeadDim)
		}
		if err := shape(src(0), p.HeadDim*p.NHead, rows); err != nil {
			return err
		}
		if w != p.HeadDim*p.NHead {
			return fmt.Errorf("ATTENTION %s: result rows of %d, want %d", n.Name, w, p.HeadDim*p.NHead)
		}
		for _, s := range []*graph.Tensor{src(1), src(2)} {
			kv := s.Storage()
			if !kvType(kv.Type) {
				return fmt.Errorf("ATTENTION %s: cache %s has type %s (f32, f16, q8_0, q4_0 are supported)", n.Name, kv.Name, kv.Type)
			}
			if kv.Shape[0] != p.HeadDim*p.NHeadKV {
				return fmt.Errorf("ATTENTION %s: cache %s rows of %d, want %d", n.Name, kv.Name, kv.Shape[0], p.HeadDim*p.NHeadKV)
			}
		}
		if x := src(3); x.Type != graph.I32 || x.Kind != graph.Input {
			return fmt.Errorf("ATTENTION %s: KV index %s must be an i32 input", n.Name, x.Name)
		}
		return nil
	}
	return fmt.Errorf("%s %s: op is not supported", n.Op, n.Name)
}

// Load makes a weight or cache resident. A weight is used in place from
// t.Data (no copy) unless it is f32 data that is not 4-byte aligned; a
// cache is allocated zeroed. Loading a resident tensor again keeps it.
func (c *CPU) Load(t *graph.Tensor) error {
	if b, ok := t.Bufs[graph.CPU].(*cpuBuf); ok && b != nil {
		return nil
	}
	size := t.Bytes()
	if size <= 0 && t.Elements() > 0 {
		return fmt.Errorf("cpu: load %s: type %s with rows of %d has no size", t.Name, t.Type, t.Shape[0])
	}
	var b *cpuBuf
	switch t.Kind {
	case graph.Weight:
		if int64(len(t.Data)) < size {
			return fmt.Errorf("cpu: load %s: %d bytes of data, its %s shape %v needs %d", t.Name, len(t.Data), t.Type, t.Shape, size)
		}
		b = &cpuBuf{data: t.Data[:size:size]}
		if t.Type == quant.F32 {
			if f, ok := floatsView(b.data); ok {
				b.f32 = f
			} else {
				b = newOwnedBuf(size)
				copy(b.data, t.Data)
				b.f32 = floatsOf(b)
			}
		}
	case graph.Cache:
		b = newOwnedBuf(size)
		if t.Type == quant.F32 {
			b.f32 = floatsOf(b)
		}
	default:
		return fmt.Errorf("cpu: load %s: a %s tensor is not persistent", t.Name, t.Kind)
	}
	t.Bufs[graph.CPU] = b
	return nil
}

// newOwnedBuf allocates size zeroed bytes, 4-byte aligned.
func newOwnedBuf(size int64) *cpuBuf {
	f := make([]float32, (size+3)/4)
	var data []byte
	if len(f) > 0 {
		data = unsafe.Slice((*byte)(unsafe.Pointer(&f[0])), size)
	}
	return &cpuBuf{data: data, owned: true}
}

// floatsOf views an owned (aligned) buffer as float32.
func floatsOf(b *cpuBuf) []float32 {
	f, _ := floatsView(b.data)
	return f
}

// littleEndian is whether the host stores float32 as GGUF does, so byte
// buffers may be viewed as float32 in place.
var littleEndian = func() bool {
	x := uint32(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// floatsView views little-endian float32 bytes in place when the host is
// little-endian and the bytes are 4-byte aligned.
func floatsView(b []byte) ([]float32, bool) {
	if len(b) == 0 {
		return nil, true
	}
	if !littleEndian || uintptr(unsafe.Pointer(&b[0]))%4 != 0 || len(b)%4 != 0 {
		return nil, false
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4), true
}

// bytesView views float32 values as their bytes.
func bytesView(f []float32) []byte {
	if len(f) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&f[0])), 4*len(f))
}

func bufOf(t *graph.Tensor) (*cpuBuf, error) {
	b, ok := t.Bufs[graph.CPU].(*cpuBuf)
	if !ok || b == nil {
		return nil, fmt.Errorf("cpu: %s %s is not loaded on the CPU", t.Kind, t.Name)
	}
	return b, nil
}

// Free releases a resident tensor (a weight's bytes stay the caller's).
func (c *CPU) Free(t *graph.Tensor) {
	t.Bufs[graph.CPU] = nil
}

// Upload replaces a resident tensor's bytes. A weight used in place is
// copied first, so the caller's data (maybe a read-only memory map) is
// never written.
func (c *CPU) Upload(t *graph.Tensor, src []byte) error {
	b, err := bufOf(t)
	if err != nil {
		return err
	}
	if len(src) != len(b.data) {
		return fmt.Errorf("cpu: upload %s: %d bytes, the tensor has %d", t.Name, len(src), len(b.data))
	}
	if !b.owned {
		nb := newOwnedBuf(int64(len(b.data)))
		if b.f32 != nil {
			nb.f32 = floatsOf(nb)
		}
		*b = *nb
	}
	copy(b.data, src)
	return nil
}

// Download copies a resident tensor's raw bytes into dst.
func (c *CPU) Download(t *graph.Tensor, dst []byte) error {
	b, err := bufOf(t)
	if err != nil {
		return err
	}
	if len(dst) != len(b.data) {
		return fmt.Errorf("cpu: download %s: %d bytes of room, the tensor has %d", t.Name, len(dst), len(b.data))
	}
	c.mu.Lock() // no SET_ROWS is writing it meanwhile
	defer c.mu.Unlock()
	copy(dst, b.data)
	return nil
}

// CopyRows copies rows [src, src+n) of a resident tensor over rows
// [dst, dst+n).
func (c *CPU) CopyRows(t *graph.Tensor, dst, src, n int) error {
	b, err := bufOf(t)
	if err != nil {
		return err
	}
	rows := t.Rows()
	if n < 0 || src < 0 || dst < 0 || src+n > rows || dst+n > rows || src < dst+n && dst < src+n {
		return fmt.Errorf("cpu: copy rows [%d, %d) of %s over [%d, %d): outside its %d rows or overlapping", src, src+n, t.Name, dst, dst+n, rows)
	}
	rb := len(b.data) / rows
	c.mu.Lock()
	defer c.mu.Unlock()
	copy(b.data[dst*rb:(dst+n)*rb], b.data[src*rb:(src+n)*rb])
	return nil
}

// NewArena allocates size bytes of scratch for intermediates.
func (c *CPU) NewArena(size int64) (Arena, error) {
	if size < 0 {
		return nil, fmt.Errorf("cpu: arena of %d bytes", size)
	}
	if size/4 > int64(^uint(0)>>2) {
		return nil, fmt.Errorf("cpu: arena of %d bytes is too large for this machine", size)
	}
	return &cpuArena{f: make([]float32, (size+3)/4)}, nil
}

func arenaOf(a Arena) (*cpuArena, error) {
	ca, ok := a.(*cpuArena)
	if !ok || ca == nil {
		return nil, fmt.Errorf("cpu: arena %T is not the CPU's", a)
	}
	return ca, nil
}

// floats returns the f32 values of t: an intermediate in the arena or a
// resident f32 weight or cache.
func (a *cpuArena) floats(t *graph.Tensor) ([]float32, error) {
	if t.Op == graph.OpLeaf || t.Op == graph.OpSetRows {
		s := t.Storage()
		b, err := bufOf(s)
		if err != nil {
			return nil, err
		}
		if b.f32 == nil {
			return nil, fmt.Errorf("cpu: %s has type %s, want f32", s.Name, s.Type)
		}
		return b.f32, nil
	}
	if t.Type != quant.F32 {
		return nil, fmt.Errorf("cpu: intermediate %s has type %s, want f32", t.Name, t.Type)
	}
	if t.Offset < 0 || t.Offset%4 != 0 {
		return nil, fmt.Errorf("cpu: intermediate %s at offset %d is not float-aligned", t.Name, t.Offset)
	}
	lo, n := t.Offset/4, int64(t.Elements())
	if lo+n > int64(len(a.f)) {
		return nil, fmt.Errorf("cpu: intermediate %s (%d bytes at %d) is outside the arena of %d bytes", t.Name, 4*n, t.Offset, a.Size())
	}
	return a.f[lo : lo+n : lo+n], nil
}

// raw returns t's bytes in its type: a resident tensor's data, or an f32
// intermediate's values as bytes.
func (a *cpuArena) raw(t *graph.Tensor) ([]byte, error) {
	if t.Op == graph.OpLeaf || t.Op == graph.OpSetRows {
		b, err := bufOf(t.Storage())
		if err != nil {
			return nil, err
		}
		return b.data, nil
	}
	f, err := a.floats(t)
	if err != nil {
		return nil, err
	}
	return bytesView(f), nil
}

// Read copies an intermediate's values into dst (len = its elements).
func (c *CPU) Read(a Arena, t *graph.Tensor, dst []float32) error {
	ca, err := arenaOf(a)
	if err != nil {
		return err
	}
	src, err := ca.floats(t)
	if err != nil {
		return err
	}
	if len(dst) != len(src) {
		return fmt.Errorf("cpu: read %s: room for %d values, it has %d", t.Name, len(dst), len(src))
	}
	copy(dst, src)
	return nil
}

// Write copies values into an intermediate's place (a CPY's receiving
// end).
func (c *CPU) Write(a Arena, t *graph.Tensor, src []float32) error {
	ca, err := arenaOf(a)
	if err != nil {
		return err
	}
	if t.Op == graph.OpLeaf || t.Op == graph.OpSetRows {
		return fmt.Errorf("cpu: write %s: not an intermediate", t.Name)
	}
	dst, err := ca.floats(t)
	if err != nil {
		return err
	}
	if len(dst) != len(src) {
		return fmt.Errorf("cpu: write %s: %d values, it has %d", t.Name, len(src), len(dst))
	}
	copy(dst, src)
	return nil
}

// Sync returns nil: Compute has finished its work when it returns.
func (c *CPU) Sync() error { return nil }

// Close stops the worker pool. The backend must not be used afterwards.
func (c *CPU) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		c.pool.close()
	}
	return nil
}

var errClosed = errors.New("cpu: backend is closed")

// Compute runs the nodes in order, each spread over the worker pool, and
// returns when they are done. CPY nodes are receivers that Write fills;
// they compute nothing.
func (c *CPU) Compute(a Arena, nodes []*graph.Tensor) error {
	ca, err := arenaOf(a)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errClosed
	}
	c.acts.reset()
	for _, n := range nodes {
		var t0 time.Time
		if c.profiling {
			t0 = time.Now()
		}
		err := c.compute(ca, n)
		if c.profiling {
			c.record(n.Op.String(), time.Since(t0))
		}
		if ferr := c.pool.takeFault(); ferr != nil {
			err = fmt.Errorf("cpu: %s %s: %w", n.Op, n.Name, ferr)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// record adds one node's time to the profile.
func (c *CPU) record(op string, d time.Duration) {
	if c.prof == nil {
		c.prof = map[string]*OpTime{}
	}
	p := c.prof[op]
	if p == nil {
		p = &OpTime{Op: op}
		c.prof[op] = p
	}
	p.Launches++
	p.Device += d
}

func (c *CPU) compute(a *cpuArena, n *graph.Tensor) error {
	if n.Op == graph.OpCpy {
		return nil
	}
	if err := c.check(n); err != nil {
		return fmt.Errorf("cpu: %w", err)
	}
	var err error
	switch n.Op {
	case graph.OpGetRows:
		err = c.getRows(a, n)
	case graph.OpRMSNorm, graph.OpMul, graph.OpAdd, graph.OpSwiGLU:
		err = c.elementwise(a, n)
	case graph.OpMulMat:
		err = c.mulMat(a, n)
	case graph.OpRope:
		err = c.ropeNode(a, n)
	case graph.OpSetRows:
		err = c.setRows(a, n)
	case graph.OpAttention:
		err = c.attention(a, n)
	}
	if err != nil {
		return fmt.Errorf("cpu: %s %s: %w", n.Op, n.Name, err)
	}
	return nil
}
