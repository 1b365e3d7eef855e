package opencl

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"unsafe"

	"github.com/ocelot-llm/ocelot/accel"
	"github.com/ocelot-llm/ocelot/graph"
	"github.com/ocelot-llm/ocelot/quant"
)

// localMem is a kernel argument that reserves local memory.
type localMem int

// launch sets a kernel's arguments and enqueues it over global (rounded
// up to whole work-groups) with work-groups of local.
func (b *Backend) launch(name string, global, local [2]int, args ...any) error {
	k := b.kernels[name]
	if k == nil {
		return errorf("no kernel %s", name)
	}
	if len(args) > len(b.argBuf) {
		return errorf("kernel %s: %d arguments, at most %d", name, len(args), len(b.argBuf))
	}
	// Argument values go through one scratch array (clSetKernelArg copies
	// them at once), so a launch allocates nothing.
	for i, arg := range args {
		var err error
		idx := uint32(i)
		p := unsafe.Pointer(&b.argBuf[i])
		switch v := arg.(type) {
		case clMem:
			*(*clMem)(p) = v
			err = b.a.setArg(k.k, name, idx, unsafe.Sizeof(v), p)
		case uint64:
			*(*uint64)(p) = v
			err = b.a.setArg(k.k, name, idx, 8, p)
		case uint32:
			*(*uint32)(p) = v
			err = b.a.setArg(k.k, name, idx, 4, p)
		case int32:
			*(*int32)(p) = v
			err = b.a.setArg(k.k, name, idx, 4, p)
		case float32:
			*(*float32)(p) = v
			err = b.a.setArg(k.k, name, idx, 4, p)
		case localMem:
			err = b.a.setArg(k.k, name, idx, uintptr(max(int(v), 4)), nil)
		default:
			return fmt.Errorf("opencl: kernel %s: argument %d has Go type %T", name, i, arg)
		}
		if err != nil {
			return err
		}
	}
	var gws, lws [3]uintptr
	for i := range 2 {
		l := max(local[i], 1)
		g := (max(global[i], 1) + l - 1) / l * l
		gws[i], lws[i] = uintptr(g), uintptr(l)
	}
	var ev *clEvent
	if b.opts.Profile {
		ev = new(clEvent)
	}
	if err := b.a.launch(b.q, k.k, name, 2, &gws, &lws, ev); err != nil {
		return err
	}
	if ev != nil && *ev != 0 {
		b.events = append(b.events, profEvent{name, *ev})
	}
	return nil
}

// Compute enqueues the nodes' kernels in order, fusing RMS_NORM with the
// MUL by its weight and ROPE with the SET_ROWS that stores it. It never
// waits for the device.
func (b *Backend) Compute(x accel.Arena, nodes []*graph.Tensor) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errorf("backend is closed")
	}
	a, err := b.arenaOf(x)
	if err != nil {
		return err
	}
	for i := 0; i < len(nodes); i++ {
		n := nodes[i]
		var next *graph.Tensor
		if i+1 < len(nodes) {
			next = nodes[i+1]
		}
		fused, err := b.compute(a, n, next)
		if err != nil {
			return fmt.Errorf("%s %s: %w", n.Op, n.Name, err)
		}
		if fused {
			i++
		}
		if faultNaN != nil {
			if err := b.poisonNaN(a, nodes[i]); err != nil {
				return err
			}
		}
	}
	return b.a.flushQueue(b.q)
}

// kernelSuffix names a type in kernel names.
func kernelSuffix(t quant.Type) string { return t.String() }

// compute enqueues one node (two when it fuses n with next).
func (b *Backend) compute(a *arena, n, next *graph.Tensor) (bool, error) {
	if !b.Supports(n) {
		return false, errorf("not supported on this device with these types and shapes")
	}
	dst, err := b.locate(a, n)
	if err != nil {
		return false, err
	}
	var src [3]loc
	for i, s := range n.Src {
		if s == nil {
			continue
		}
		if src[i], err = b.locate(a, s); err != nil {
			return false, err
		}
	}
	width, rows := n.Shape[0], n.Rows()
	switch n.Op {
	case graph.OpGetRows:
		table := n.Src[0]
		if len(n.Src[1].I32s) != rows {
			return false, errorf("input %s has %d values for %d rows", n.Src[1].Name, len(n.Src[1].I32s), rows)
		}
		for i, id := range n.Src[1].I32s {
			if id < 0 || int(id) >= table.Rows() {
				return false, errorf("row id %d at index %d is outside the %d rows of %s", id, i, table.Rows(), table.Name)
			}
		}
		s := src[0]
		return false, b.launch("get_rows_"+kernelSuffix(table.Type), [2]int{(width + 31) / 32, rows}, [2]int{b.lws2D, 1},
			s.mem, s.off[0], s.off[1], s.off[2], s.off[3], src[1].mem, src[1].off[0], dst.mem, dst.off[0], uint32(width), uint32(rows))

	case graph.OpMulMat:
		w := n.Src[0]
		k, m := w.Shape[0], w.Shape[1]
		s := src[0]
		args := []any{s.mem, s.off[0], s.off[1], s.off[2], s.off[3], src[1].mem, src[1].off[0], dst.mem, dst.off[0], uint32(k), uint32(m), uint32(rows)}
		name := b.mulMatKernel(w.Type, rows)
		switch {
		case strings.HasPrefix(name, "mul_mm_tc_"):
			args = append(args, localMem(2*tcLD*tcBM), localMem(2*tcLD*tcBN))
			if b.variant.emulate {
				args = append(args, localMem(4*6*128))
			}
			return false, b.launch(name, [2]int{(m + tcBM - 1) / tcBM * 128, (rows + tcBN - 1) / tcBN}, [2]int{128, 1}, args...)
		case strings.HasPrefix(name, "mul_mm_"):
			args = append(args, localMem(4*32*(mmTM+1)), localMem(4*32*(mmTN+1)))
			return false, b.launch(name, [2]int{m, (rows + mmTN - 1) / mmTN}, [2]int{mmTM, 1}, args...)
		}
		lanes, units := b.mvShape(name, k, m, rows)
		args = append(args, localMem(4*lanes*units*mvR*min(rows, mvNT)))
		return false, b.launch(name, [2]int{lanes, (m + mvR - 1) / mvR}, [2]int{lanes, units}, args...)

	case graph.OpRMSNorm:
		if b.fuse && next != nil && next.Op == graph.OpMul && next.Src[0] == n && b.Supports(next) && next.Src[1].Rows() == 1 {
			wl, err := b.locate(a, next.Src[1])
			if err != nil {
				return false, err
			}
			out, err := b.locate(a, next)
			if err != nil {
				return false, err
			}
			return true, b.launch("rms_norm_mul_f32", [2]int{rows * b.lwsNorm, 1}, [2]int{b.lwsNorm, 1},
				src[0].mem, src[0].off[0], dst.mem, dst.off[0], uint32(width), n.Param.Eps, wl.mem, wl.off[0], out.mem, out.off[0], localMem(4*b.lwsNorm))
		}
		return false, b.launch("rms_norm_f32", [2]int{rows * b.lwsNorm, 1}, [2]int{b.lwsNorm, 1},
			src[0].mem, src[0].off[0], dst.mem, dst.off[0], uint32(width), n.Param.Eps, localMem(4*b.lwsNorm))

	case graph.OpAdd, graph.OpMul, graph.OpSwiGLU:
		name := map[graph.Op]string{graph.OpAdd: "add_f32", graph.OpMul: "mul_f32", graph.OpSwiGLU: "swiglu_f32"}[n.Op]
		total := width * rows
		bn := n.Src[1].Elements()
		return false, b.launch(name, [2]int{total, 1}, [2]int{b.lwsElem, 1},
			src[0].mem, src[0].off[0], src[1].mem, src[1].off[0], dst.mem, dst.off[0], uint32(total), uint32(bn))

	case graph.OpRope:
		if len(n.Src[1].I32s) != rows {
			return false, errorf("input %s has %d values for %d rows", n.Src[1].Name, len(n.Src[1].I32s), rows)
		}
		tab, err := b.ropeTable(n)
		if err != nil {
			return false, err
		}
		hd := n.Param.HeadDim
		if b.fuse && next != nil && next.Op == graph.OpSetRows && next.Src[0] == n && width%32 == 0 && b.Supports(next) {
			cache, err := b.locate(a, next.Src[1])
			if err != nil {
				return false, err
			}
			if err := b.checkCells(next); err != nil {
				return false, err
			}
			cells, err := b.locate(a, next.Src[2])
			if err != nil {
				return false, err
			}
			return true, b.launch("rope_set_rows_"+kernelSuffix(cache.typ), [2]int{width / 32, rows}, [2]int{b.lws2D, 1},
				src[0].mem, src[0].off[0], dst.mem, dst.off[0], src[1].mem, src[1].off[0], tab, uint64(0),
				uint32(width), uint32(hd), uint32(rows), cells.mem, cells.off[0], cache.mem, cache.off[0], cache.off[1])
		}
		return false, b.launch("rope_f32", [2]int{width / 2, rows}, [2]int{b.lws2D, 1},
			src[0].mem, src[0].off[0], dst.mem, dst.off[0], src[1].mem, src[1].off[0], tab, uint64(0), uint32(width), uint32(hd), uint32(rows))

	case graph.OpSetRows:
		if err := b.checkCells(n); err != nil {
			return false, err
		}
		cache := src[1]
		nr := n.Src[0].Rows()
		w := n.Src[0].Shape[0]
		global := [2]int{w, nr}
		if cache.typ == quant.Q8_0 || cache.typ == quant.Q4_0 {
			global[0] = w / 32
		}
		return false, b.launch("set_rows_"+kernelSuffix(cache.typ), global, [2]int{b.lws2D, 1},
			src[0].mem, src[0].off[0], src[2].mem, src[2].off[0], cache.mem, cache.off[0], cache.off[1], uint32(w), uint32(nr))

	case graph.OpAttention:
		p := n.Param
		k, v := src[1], src[2]
		L := b.lwsAttn
		return false, b.launch("attention", [2]int{p.NHead * L, rows}, [2]int{L, 1},
			src[0].mem, src[0].off[0],
			k.mem, k.off[0], k.off[1], int32(k.typ),
			v.mem, v.off[0], v.off[1], int32(v.typ),
			dst.mem, dst.off[0],
			uint32(p.HeadDim), uint32(p.NHead), uint32(p.NHeadKV), uint32(p.Pos0), uint32(p.NKV), p.Scale,
			localMem(4*p.HeadDim), localMem(4*L), localMem(4*L))
	}
	return false, errorf("op %s is not implemented", n.Op)
}

// mulMatKernel is the kernel a product with weights of type t and n
// tokens runs: the GEMV for small batches (mul_mv1_* for one token),
// else the tensor-core GEMM where there is one, else the tiled GEMM.
func (b *Backend) mulMatKernel(t quant.Type, n int) string {
	switch {
	case b.tc && n >= b.mmMin:
		return "mul_mm_tc_" + kernelSuffix(t)
	case b.gemm && n >= b.mmMin:
		return "mul_mm_" + kernelSuffix(t)
	case n == 1:
		return "mul_mv1_" + kernelSuffix(t)
	}
	return "mul_mv_" + kernelSuffix(t)
}

// checkCells verifies a SET_ROWS node's cells lie inside its cache.
func (b *Backend) checkCells(n *graph.Tensor) error {
	cache := n.Src[1].Storage()
	if len(n.Src[2].I32s) != n.Src[0].Rows() {
		return errorf("input %s has %d values for %d rows", n.Src[2].Name, len(n.Src[2].I32s), n.Src[0].Rows())
	}
	for i, c := range n.Src[2].I32s {
		if c < 0 || int(c) >= cache.Rows() {
			return errorf("cell %d at index %d is outside the %d cells of %s", c, i, cache.Rows(), cache.Name)
		}
	}
	return nil
}

// ropeTable returns the device table of per-pair angle factors
// f[i] = base^(-2i/headDim) / freqs[i], each as a float pair (hi, lo)
// whose sum is the float64 value, made once per distinct table.
func (b *Backend) ropeTable(n *graph.Tensor) (clMem, error) {
	hd, base := n.Param.HeadDim, n.Param.RopeBase
	var freqs []byte
	if f := n.Src[2]; f != nil {
		freqs = f.Data
	}
	key := fmt.Sprintf("%d/%08x/%x", hd, math.Float32bits(base), freqs)
	if m, ok := b.ropeTabs[key]; ok {
		return m, nil
	}
	tab := make([]byte, 8*(hd/2))
	for i := 0; i < hd/2; i++ {
		f := math.Pow(float64(base), -2*float64(i)/float64(hd))
		if freqs != nil {
			f /= float64(math.Float32frombits(binary.LittleEndian.Uint32(freqs[4*i:])))
		}
		hi := float32(f)
		lo := float32(f - float64(hi))
		binary.LittleEndian.PutUint32(tab[8*i:], math.Float32bits(hi))
		binary.LittleEndian.PutUint32(tab[8*i+4:], math.Float32bits(lo))
	}
	m, err := b.alloc("rope table", int64(len(tab)))
	if err != nil {
		return 0, err
	}
	// A non-blocking write: tab stays referenced until the next Sync.
	b.pending = append(b.pending, tab)
	if err := b.a.write(b.q, m, "rope table", false, 0, unsafe.Pointer(&tab[0]), int64(len(tab)), nil); err != nil {
		b.a.freeBuffer(m)
		b.used -= int64(len(tab))
		return 0, err
	}
	b.ropeTabs[key] = m
	return m, nil
}

// mvShape chooses the GEMV's work-group shape for k columns, m rows and n
// tokens (see mul_mv in kernels.cl): lanes work-items share each unit of
// mvR rows, units units make a work-group. Enough lanes per unit that the
// device's compute units hold about mvThreadsPerCU work-items each (many
// loads in flight), but at most the pieces of a row; units to make groups
// of up to mvGroup work-items while keeping at least as many groups as
// compute units; all within the kernel's limit and the local memory.
func (b *Backend) mvShape(name string, k, m, n int) (lanes, units int) {
	limit := b.info.MaxWorkGroup
	if kr := b.kernels[name]; kr != nil && kr.maxWG > 0 {
		limit = min(limit, kr.maxWG)
	}
	limit = pow2Floor(max(1, min(limit, mvGroup)))
	cus := max(1, b.info.Units)
	perCU := mvThreadsPerCU
	if b.info.Type == "CPU" {
		perCU = 64
	}
	if b.mvPerCU > 0 {
		perCU = b.mvPerCU
	}
	pieces := (k + 7) / 8
	nUnits := (m + mvR - 1) / mvR
	lanes = pow2Ceil((cus*perCU + nUnits - 1) / nUnits)
	lanes = min(max(lanes, mvMinLanes), mvMaxLanes, pow2Ceil(pieces), limit)
	if b.mvLanes > 0 {
		lanes = min(b.mvLanes, limit)
	}
	units = max(1, limit/lanes)
	units = min(units, pow2Ceil(nUnits))
	for units > 1 && (nUnits+units-1)/units < cus {
		units /= 2
	}
	red := func() int64 { return int64(4 * lanes * units * mvR * min(n, mvNT)) }
	for units > 1 && red() > b.info.LocalMem/2 {
		units /= 2
	}
	for lanes > 1 && red() > b.info.LocalMem/2 {
		lanes /= 2
	}
	return lanes, units
}

// pow2Ceil is the smallest power of two >= n (n >= 1).
func pow2Ceil(n int) int {
	p := 1
	for p < n {
		p *= 2
	}
	return p
}
