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

// ropeKey identifies a RoPE table by its shape and the address of its
// frequency factors.
type ropeKey struct {
	hd   int
	base uint32
	p    *byte
	n    int
}

// slotKey names a kernel slot: one graph node's use of one kernel.
type slotKey struct{ node, kernel string }

// slot is a kernel object of its own for one graph node and the argument
// values last set on it. Successive passes run the same nodes with mostly
// the same arguments (the arena plan repeats), so a launch sets only the
// arguments that changed: clSetKernelArg costs about as much as the launch
// itself on some drivers.
type slot struct {
	k       clKernel
	set     uint64 // bit i: argument i holds size[i]/val[i]
	memArgs uint64 // bit i: argument i is a buffer
	memGen  uint64 // launcher.memGen when the buffer arguments were set
	size    [maxArgs]uintptr
	val     [maxArgs]uint64
}

// freeBuffer releases m. A later buffer may get m's handle, and a driver
// may have resolved the handle when it was set as a kernel argument, so
// every slot sets its buffer arguments again after any release.
func (b *Backend) freeBuffer(m clMem) {
	b.a.freeBuffer(m)
	b.launcher.memGen++
}

// maxSlots bounds the kernel objects the slots may create; past it,
// launches share the program's kernel and set every argument.
const maxSlots = 4096

// maxArgs is the most arguments a launch takes (the fused decode kernels
// take up to 45).
const maxArgs = 64

// launch sets a kernel's arguments and enqueues it over global (rounded
// up to whole work-groups) with work-groups of local. Inside Compute it
// uses the current node's slot for the kernel.
func (b *Backend) launch(name string, global, local [2]int, args ...any) error {
	k := b.kernels[name]
	if k == nil {
		return errorf("no kernel %s", name)
	}
	if len(args) > len(b.launcher.argBuf) {
		return errorf("kernel %s: %d arguments, at most %d", name, len(args), len(b.launcher.argBuf))
	}
	ck := k.k
	var sl *slot
	if b.launcher.cur != "" {
		key := slotKey{b.launcher.cur, name}
		sl = b.launcher.slots[key]
		if sl == nil && len(b.launcher.slots) < maxSlots {
			kk, err := b.a.newKernel(b.prog, name)
			if err != nil {
				return err
			}
			sl = &slot{k: kk}
			if b.launcher.slots == nil {
				b.launcher.slots = make(map[slotKey]*slot)
			}
			b.launcher.slots[key] = sl
		}
		if sl != nil {
			ck = sl.k
			if sl.memGen != b.launcher.memGen {
				sl.set &^= sl.memArgs
				sl.memGen = b.launcher.memGen
			}
		}
	}
	// Argument values go through one scratch array (clSetKernelArg copies
	// them at once), so a launch allocates nothing.
	for i, arg := range args {
		var size uintptr
		var val uint64
		switch v := arg.(type) {
		case clMem:
			size, val = unsafe.Sizeof(v), uint64(v)
		case uint64:
			size, val = 8, v
		case uint32:
			size, val = 4, uint64(v)
		case int32:
			size, val = 4, uint64(uint32(v))
		case float32:
			size, val = 4, uint64(math.Float32bits(v))
		case localMem:
			// A local-memory argument has a size and no value.
			size, val = uintptr(max(int(v), 4)), 1<<63
		default:
			return fmt.Errorf("opencl: kernel %s: argument %d has Go type %T", name, i, arg)
		}
		bit := uint64(1) << i
		if sl != nil && sl.set&bit != 0 && sl.size[i] == size && sl.val[i] == val {
			continue
		}
		var p unsafe.Pointer // nil for local memory
		if _, local := arg.(localMem); !local {
			b.launcher.argBuf[i] = val
			p = unsafe.Pointer(&b.launcher.argBuf[i])
		}
		if err := b.a.setArg(ck, name, uint32(i), size, p); err != nil {
			if sl != nil {
				sl.set &^= bit
			}
			return err
		}
		if sl != nil {
			sl.set |= bit
			sl.size[i], sl.val[i] = size, val
			if _, mem := arg.(clMem); mem {
				sl.memArgs |= bit
			} else {
				sl.memArgs &^= bit
			}
		}
	}
	for i := range 2 {
		l := max(local[i], 1)
		g := (max(global[i], 1) + l - 1) / l * l
		b.launcher.gws[i], b.launcher.lws[i] = uintptr(g), uintptr(l)
	}
	var ev *clEvent
	if b.opts.Profile {
		ev = new(clEvent)
	}
	if err := b.a.launch(b.q, ck, name, 2, &b.launcher.gws, &b.launcher.lws, ev); err != nil {
		return err
	}
	if ev != nil && *ev != 0 {
		op := b.launcher.curOp
		if op == "" {
			op = "(outside a graph)"
		}
		b.profile.events = append(b.profile.events, profEvent{op, name, *ev})
	}
	return nil
}

// freeSlots releases the slots' kernel objects.
func (b *Backend) freeSlots() {
	for _, sl := range b.launcher.slots {
		b.a.freeKernel(sl.k)
	}
	b.launcher.slots = nil
}

// Compute enqueues the nodes' kernels in order; an OpFused node (see
// graph.Fuse) runs as one kernel where its shapes allow, else part by
// part. It never waits for the device.
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
	defer func() { b.launcher.cur, b.launcher.curOp = "", "" }()
	b.scratch.actQFor = nil // a new graph: tensor pointers may be reused
	for _, n := range nodes {
		b.launcher.cur, b.launcher.curOp = n.Name, n.Op.String()
		if n.Op == graph.OpFused {
			b.launcher.cur, b.launcher.curOp = n.Parts[0].Name, n.Fusion.String()
			err = b.computeFused(a, n)
		} else {
			err = b.compute(a, n)
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", b.launcher.curOp, n.Name, err)
		}
		if faultNaN != nil {
			for _, o := range n.Outputs() { // every part of a fused node
				if err := b.poisonNaN(a, o); err != nil {
					return err
				}
			}
		}
	}
	return b.a.flushQueue(b.q)
}

// supportsFused says whether the backend runs fused node n as one
// kernel: every part on its own, and the shapes and types the fused
// kernel takes. (Alignments of where the tensors lie are checked at
// launch, which falls back to the parts.)
func (b *Backend) supportsFused(n *graph.Tensor) bool { return b.supportsParts(n.Fusion, n.Parts) }

// supportsParts is supportsFused for fusion f of parts p, so that a
// fusion can ask about the shorter ones it joins without making nodes.
func (b *Backend) supportsParts(f graph.Fusion, p []*graph.Tensor) bool {
	if !b.tune.fuse {
		return false
	}
	for _, part := range p {
		if !b.Supports(part) {
			return false
		}
	}
	q4 := func(mm *graph.Tensor) bool {
		return mm.Src[0].Type == quant.Q4_0 && mm.Src[0].Shape[0] == p[0].Src[0].Shape[0]
	}
	switch f {
	case graph.FuseNormMul:
		return true
	case graph.FuseAddNormMul:
		return p[0].Src[0].Shape == p[0].Shape && p[0].Src[1].Shape == p[0].Shape
	case graph.FuseRopeSetRows:
		return p[0].Shape[0]%32 == 0
	case graph.FuseRopeQKV:
		rq, rk, sk, sv := p[0], p[1], p[2], p[3]
		rows := rq.Rows()
		return rk.Rows() == rows && sv.Src[0].Rows() == rows && rq.Shape[0]%32 == 0 && rk.Shape[0]%32 == 0 && sv.Src[0].Shape[0]%32 == 0 &&
			sk.Src[1].Storage().Type == sv.Src[1].Storage().Type
	case graph.FuseMulMatAdd:
		res := p[1].Src[0]
		if res == p[0] {
			res = p[1].Src[1]
		}
		return b.tune.mw && b.untuned(p[0].Src[0].Type, p[0].Rows()) && (p[0].Rows() == 1 || b.fewInt8(p[0].Rows()) && q4(p[0])) && p[1].Shape == p[0].Shape && res.Shape == p[0].Shape
	case graph.FuseMulMat3:
		return b.tune.mw && b.untuned(quant.Q4_0, p[0].Rows()) && (p[0].Rows() == 1 || b.fewInt8(p[0].Rows())) && q4(p[0]) && q4(p[1]) && q4(p[2])
	case graph.FuseMulMatSwiGLU:
		return b.tune.mw && b.untuned(quant.Q4_0, p[0].Rows()) && (p[0].Rows() == 1 || b.fewInt8(p[0].Rows())) && q4(p[0]) && q4(p[1]) && p[1].Shape == p[0].Shape && p[2].Shape == p[0].Shape
	case graph.FuseNormQKV:
		// The attention block's start for one token: what the two
		// fusions it joins take, K and V caches of one type.
		rq, sk, sv := p[5], p[7], p[8]
		kt, vt := sk.Src[1].Storage().Type, sv.Src[1].Storage().Type
		return kt == vt && rq.Rows() == 1 &&
			b.supportsParts(graph.FuseNormMulMat3, p[:5]) && b.supportsParts(graph.FuseRopeQKV, p[5:])
	case graph.FuseNormMulMat3, graph.FuseNormMulSwiGLU:
		// The norm's row is the products' input; they take it whole.
		mm := p[2:]
		ok := b.tune.mw && b.untuned(quant.Q4_0, 1) && p[0].Rows() == 1 && p[0].Shape[0]%32 == 0 && q4(mm[0]) && q4(mm[1]) &&
			mm[0].Src[0].Shape[0] == p[0].Shape[0] && mm[0].Src[1] == p[1]
		if f == graph.FuseNormMulMat3 {
			return ok && q4(mm[2])
		}
		return ok && mm[1].Shape == mm[0].Shape && mm[2].Shape == mm[0].Shape
	}
	return false
}

// computeFused enqueues a fused node: its one kernel where that applies
// here, else its parts one by one. The arena plan never lets a fused
// node's outputs share memory with its inputs, so the kernels read and
// write freely.
func (b *Backend) computeFused(a *arena, n *graph.Tensor) error {
	return b.computeFusion(a, n.Fusion, n.Parts)
}

// computeFusion is computeFused for fusion f of parts p.
func (b *Backend) computeFusion(a *arena, f graph.Fusion, p []*graph.Tensor) error {
	if !b.supportsParts(f, p) {
		return errorf("fused %s is not supported on this device with these types and shapes", f)
	}
	var ok bool
	var err error
	switch f {
	case graph.FuseNormMul:
		ok, err = b.rmsNormMul(a, p[0], p[1])
	case graph.FuseAddNormMul:
		ok, err = b.addRMSNormMul(a, p[0], p[1], p[2])
	case graph.FuseRopeSetRows:
		ok, err = b.ropeSetRows(a, p[0], p[1])
	case graph.FuseRopeQKV:
		ok, err = b.ropeQKV(a, p[0], p[1], p[2], p[3])
	case graph.FuseMulMatAdd:
		res := p[1].Src[0]
		if res == p[0] {
			res = p[1].Src[1]
		}
		if p[0].Rows() > 1 {
			ok, err = b.mulMatAddFew(a, p[0], res, p[1])
		} else {
			ok, err = b.mulMatRowGroups(a, p[0], res, p[1])
		}
	case graph.FuseMulMat3:
		if p[0].Rows() > 1 {
			ok, err = b.mulMat3Few(a, p[0], p[1], p[2])
		} else {
			ok, err = b.mulMat3(a, p[0], p[1], p[2], nil, nil, nil)
		}
	case graph.FuseNormQKV:
		if ok, err = b.mulMat3(a, p[2], p[3], p[4], p[0], p[1], p[5:]); !ok && err == nil {
			// Where the tensors lie rules the one kernel out.
			return b.computeParts(a, graph.FuseNormMulMat3, p[:5], graph.FuseRopeQKV, p[5:])
		}
	case graph.FuseMulMatSwiGLU:
		if p[0].Rows() > 1 {
			ok, err = b.mulMatSwiGLUFew(a, p[0], p[1], p[2])
		} else {
			ok, err = b.mulMatSwiGLU(a, p[0], p[1], p[2], nil, nil)
		}
	case graph.FuseNormMulMat3, graph.FuseNormMulSwiGLU:
		rest := graph.FuseMulMat3
		if f == graph.FuseNormMulMat3 {
			ok, err = b.mulMat3(a, p[2], p[3], p[4], p[0], p[1], nil)
		} else {
			rest = graph.FuseMulMatSwiGLU
			ok, err = b.mulMatSwiGLU(a, p[2], p[3], p[4], p[0], p[1])
		}
		if !ok && err == nil {
			// Where the tensors lie rules the one kernel out: the norm
			// and the products as two fused nodes.
			return b.computeParts(a, graph.FuseNormMul, p[:2], rest, p[2:])
		}
	}
	if ok || err != nil {
		return err
	}
	for _, part := range p {
		b.launcher.cur = part.Name
		if err := b.compute(a, part); err != nil {
			return fmt.Errorf("%s %s: %w", part.Op, part.Name, err)
		}
	}
	return nil
}

// computeParts runs a fused node's parts as two shorter fusions, f1 of
// parts p1 and f2 of p2 (each falling back further as computeFused does).
func (b *Backend) computeParts(a *arena, f1 graph.Fusion, p1 []*graph.Tensor, f2 graph.Fusion, p2 []*graph.Tensor) error {
	b.launcher.cur = p1[0].Name
	if err := b.computeFusion(a, f1, p1); err != nil {
		return err
	}
	b.launcher.cur = p2[0].Name
	return b.computeFusion(a, f2, p2)
}

// ropeQKV runs a layer's ROPE(Q), ROPE(K), SET_ROWS(K) and SET_ROWS(V)
// in one launch.
func (b *Backend) ropeQKV(a *arena, rq, rk, sk, sv *graph.Tensor) (bool, error) {
	rows := rq.Rows()
	if len(rq.Src[1].I32s) != rows {
		return false, errorf("input %s has %d values for %d rows", rq.Src[1].Name, len(rq.Src[1].I32s), rows)
	}
	if err := b.checkCells(sk); err != nil {
		return false, err
	}
	if err := b.checkCells(sv); err != nil {
		return false, err
	}
	l, err := b.locateAll(a, rq.Src[0], rq, rk.Src[0], rk, sv.Src[0], rq.Src[1], sk.Src[2], sk.Src[1], sv.Src[2], sv.Src[1])
	if err != nil {
		return false, err
	}
	kc, vc := l[7], l[9]
	tab, err := b.ropeTable(rq)
	if err != nil {
		return false, err
	}
	wq, wk, wv := rq.Shape[0], rk.Shape[0], sv.Src[0].Shape[0]
	const writeK = uint32(1) // rotated K is a part: later nodes may read it
	return true, b.launch("rope_qkv_"+kernelSuffix(kc.typ), [2]int{(wq + wk + wv) / 32, rows}, [2]int{b.tune.lws2D, 1},
		l[0].mem, l[0].off[0], l[1].mem, l[1].off[0], l[2].mem, l[2].off[0], l[3].mem, l[3].off[0], l[4].mem, l[4].off[0],
		l[5].mem, l[5].off[0], tab, uint64(0), uint32(wq), uint32(wk), uint32(wv), uint32(rq.Param.HeadDim), uint32(rows),
		l[6].mem, l[6].off[0], kc.mem, kc.off[0], kc.off[1], l[8].mem, l[8].off[0], vc.mem, vc.off[0], vc.off[1], writeK)
}

// ropeSetRows runs a ROPE and the SET_ROWS that stores its rows in one
// launch.
func (b *Backend) ropeSetRows(a *arena, rope, set *graph.Tensor) (bool, error) {
	rows := rope.Rows()
	if len(rope.Src[1].I32s) != rows {
		return false, errorf("input %s has %d values for %d rows", rope.Src[1].Name, len(rope.Src[1].I32s), rows)
	}
	if err := b.checkCells(set); err != nil {
		return false, err
	}
	l, err := b.locateAll(a, rope.Src[0], rope, rope.Src[1], set.Src[2], set.Src[1])
	if err != nil {
		return false, err
	}
	tab, err := b.ropeTable(rope)
	if err != nil {
		return false, err
	}
	width, cache := rope.Shape[0], l[4]
	return true, b.launch("rope_set_rows_"+kernelSuffix(cache.typ), [2]int{width / 32, rows}, [2]int{b.tune.lws2D, 1},
		l[0].mem, l[0].off[0], l[1].mem, l[1].off[0], l[2].mem, l[2].off[0], tab, uint64(0),
		uint32(width), uint32(rope.Param.HeadDim), uint32(rows), l[3].mem, l[3].off[0], cache.mem, cache.off[0], cache.off[1])
}

// rmsNormMul runs an RMS_NORM and the MUL by its weight in one launch.
func (b *Backend) rmsNormMul(a *arena, norm, mul *graph.Tensor) (bool, error) {
	l, err := b.locateAll(a, norm.Src[0], norm, mul.Src[1], mul)
	if err != nil {
		return false, err
	}
	return true, b.launch("rms_norm_mul_f32", [2]int{norm.Rows() * b.tune.lwsNorm, 1}, [2]int{b.tune.lwsNorm, 1},
		l[0].mem, l[0].off[0], l[1].mem, l[1].off[0], uint32(norm.Shape[0]), norm.Param.Eps, l[2].mem, l[2].off[0], l[3].mem, l[3].off[0], localMem(4*b.tune.lwsNorm))
}

// addRMSNormMul runs a residual ADD, the RMS_NORM of its sum and the MUL
// by the norm's weight in one launch (one work-group per row).
func (b *Backend) addRMSNormMul(a *arena, add, norm, mul *graph.Tensor) (bool, error) {
	l, err := b.locateAll(a, add.Src[0], add.Src[1], add, norm, mul.Src[1], mul)
	if err != nil {
		return false, err
	}
	rows := add.Rows()
	return true, b.launch("add_rms_norm_mul_f32", [2]int{rows * b.tune.lwsNorm, 1}, [2]int{b.tune.lwsNorm, 1},
		l[0].mem, l[0].off[0], l[1].mem, l[1].off[0], l[2].mem, l[2].off[0], l[3].mem, l[3].off[0],
		uint32(add.Shape[0]), norm.Param.Eps, l[4].mem, l[4].off[0], l[5].mem, l[5].off[0], localMem(4*b.tune.lwsNorm))
}

// rowGroupable reports whether the row-group GEMV takes weights w (at s)
// with the activations at x: Q4_0 needs 16-byte aligned quants and
// activations.
func (b *Backend) rowGroupable(w *graph.Tensor, s, x loc) bool {
	if !b.tune.mw {
		return false
	}
	switch w.Type {
	case quant.Q4_0:
		return s.off[0]%16 == 0 && x.off[0]%16 == 0 && w.Shape[0]%32 == 0
	case quant.Q6_K:
		return w.Shape[0]%256 == 0 && x.off[0]%16 == 0
	}
	return false
}

// locateAll locates the tensors, in order.
func (b *Backend) locateAll(a *arena, ts ...*graph.Tensor) ([]loc, error) {
	out := make([]loc, len(ts))
	for i, t := range ts {
		var err error
		if out[i], err = b.locate(a, t); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// mulMatRowGroups runs the one-token product n with the row-group GEMV;
// with add (the ADD of n and res) it also writes add's output. It reports
// false, and enqueues nothing, where the kernel does not apply.
func (b *Backend) mulMatRowGroups(a *arena, n, res, add *graph.Tensor) (bool, error) {
	w := n.Src[0]
	ts := []*graph.Tensor{w, n.Src[1], n}
	if add != nil {
		ts = append(ts, res, add)
	}
	l, err := b.locateAll(a, ts...)
	if err != nil {
		return false, err
	}
	if !b.rowGroupable(w, l[0], l[1]) {
		return false, nil
	}
	k, m := w.Shape[0], w.Shape[1]
	r, z, addres := l[2], l[2], uint32(0)
	if add != nil {
		r, z, addres = l[3], l[4], 1
	}
	s := l[0]
	g := b.tune.mwGroups
	return true, b.launch("mul_mw_"+kernelSuffix(w.Type), [2]int{32, (m + mwR - 1) / mwR}, [2]int{32, g},
		s.mem, s.off[0], s.off[1], s.off[2], s.off[3], l[1].mem, l[1].off[0], l[2].mem, l[2].off[0], uint32(k), uint32(m),
		r.mem, r.off[0], z.mem, z.off[0], addres, localMem(4*32*mwR*g), localMem(16*256*b.env.mwB))
}

// mulMatRowGroupsN runs a product of a few tokens (batched decode) with
// the row-group GEMV for several tokens, where the weights suit it: on
// int8 activations (mul_mwq_*, Q4_0 and Q6_K) where the device runs it,
// else on float ones (mul_mwt_*).
func (b *Backend) mulMatRowGroupsN(a *arena, n *graph.Tensor) (bool, error) {
	w := n.Src[0]
	l, err := b.locateAll(a, w, n.Src[1], n)
	if err != nil {
		return false, err
	}
	if !b.rowGroupable(w, l[0], l[1]) || !b.tune.mwt {
		return false, nil
	}
	k, m := w.Shape[0], w.Shape[1]
	s := l[0]
	g := b.tune.mwGroups
	if name := "mul_mwq_" + kernelSuffix(w.Type); b.tune.mwq && b.fewKernel(name) {
		if err := b.quantizeActs(n.Src[1], l[1], k, n.Rows()); err != nil {
			return true, err
		}
		L, gq := b.mwqShape()
		args := []any{s.mem, s.off[0], s.off[1]}
		if w.Type == quant.Q6_K {
			args = append(args, s.off[2], s.off[3])
		}
		args = append(args, b.scratch.actQ, uint64(0), l[2].mem, l[2].off[0], uint32(k), uint32(m), uint32(n.Rows()), localMem(4*L*gq))
		return true, b.launch(name, [2]int{L, (m + mwtR - 1) / mwtR}, [2]int{L, gq}, args...)
	}
	return true, b.launch("mul_mwt_"+kernelSuffix(w.Type), [2]int{32, (m + mwtR - 1) / mwtR}, [2]int{32, g},
		s.mem, s.off[0], s.off[1], s.off[2], s.off[3], l[1].mem, l[1].off[0], l[2].mem, l[2].off[0], uint32(k), uint32(m), uint32(n.Rows()),
		localMem(4*32*g))
}

// fewInt8 reports whether products of rows tokens take the few-token
// GEMV on int8 activations (mul_mwq_*), the one the few-token fusions
// (mul_mwq3_q4_0, mul_mwq_swiglu_q4_0, mul_mwq_add_q4_0) are built on.
func (b *Backend) fewInt8(rows int) bool { return b.tune.mwq && rows >= 2 && rows < b.tune.mmMin }

// mwqShape is the work-group of the few-token GEMV on int8 activations:
// lanes per row group (MWQ_LANES) and row groups, as many work-items as
// the float one's 32 lanes by the tuned row groups (at least one group).
func (b *Backend) mwqShape() (lanes, groups int) {
	lanes = b.env.mwqLanes
	return lanes, max(1, 32*b.tune.mwGroups/lanes)
}

// fewKernel reports whether kernel name runs the few-token GEMV's
// work-groups (mwqShape).
func (b *Backend) fewKernel(name string) bool {
	k := b.kernels[name]
	L, gq := b.mwqShape()
	return k != nil && k.maxWG >= L*gq && b.info.MaxWorkGroup >= L*gq
}

// mulMat3Few runs three Q4_0 products of one input of a few tokens (Q, K
// and V of a batched decode) in one launch of mul_mwq3_q4_0, each token's
// results the bits mul_mwq_q4_0 gives it.
func (b *Backend) mulMat3Few(a *arena, n0, n1, n2 *graph.Tensor) (bool, error) {
	l, err := b.locateAll(a, n0.Src[0], n1.Src[0], n2.Src[0], n0.Src[1], n0, n1, n2)
	if err != nil {
		return false, err
	}
	rows := n0.Rows()
	for i := range 3 {
		if !b.rowGroupable(n0.Src[0], l[i], l[3]) {
			return false, nil
		}
	}
	if !b.fewInt8(rows) || !b.fewKernel("mul_mwq3_q4_0") {
		return false, nil
	}
	k := n0.Src[0].Shape[0]
	if err := b.quantizeActs(n0.Src[1], l[3], k, rows); err != nil {
		return true, err
	}
	ms := [3]int{n0.Src[0].Shape[1], n1.Src[0].Shape[1], n2.Src[0].Shape[1]}
	groups := 0
	for _, m := range ms {
		groups += (m + mwtR - 1) / mwtR
	}
	L, gq := b.mwqShape()
	return true, b.launch("mul_mwq3_q4_0", [2]int{L, groups}, [2]int{L, gq},
		l[0].mem, l[0].off[0], l[0].off[1], l[1].mem, l[1].off[0], l[1].off[1], l[2].mem, l[2].off[0], l[2].off[1],
		b.scratch.actQ, uint64(0), l[4].mem, l[4].off[0], l[5].mem, l[5].off[0], l[6].mem, l[6].off[0],
		uint32(k), uint32(ms[0]), uint32(ms[1]), uint32(ms[2]), uint32(rows), localMem(4*L*gq))
}

// mulMatSwiGLUFew runs the Q4_0 gate and up products of a few tokens and
// their SwiGLU in one launch of mul_mwq_swiglu_q4_0.
func (b *Backend) mulMatSwiGLUFew(a *arena, gate, up, sw *graph.Tensor) (bool, error) {
	l, err := b.locateAll(a, gate.Src[0], up.Src[0], gate.Src[1], gate, up, sw)
	if err != nil {
		return false, err
	}
	rows := gate.Rows()
	if !b.rowGroupable(gate.Src[0], l[0], l[2]) || !b.rowGroupable(up.Src[0], l[1], l[2]) || !b.fewInt8(rows) || !b.fewKernel("mul_mwq_swiglu_q4_0") {
		return false, nil
	}
	k, m := gate.Src[0].Shape[0], gate.Src[0].Shape[1]
	if err := b.quantizeActs(gate.Src[1], l[2], k, rows); err != nil {
		return true, err
	}
	L, gq := b.mwqShape()
	return true, b.launch("mul_mwq_swiglu_q4_0", [2]int{L, (m + mwtR - 1) / mwtR}, [2]int{L, gq},
		l[0].mem, l[0].off[0], l[0].off[1], l[1].mem, l[1].off[0], l[1].off[1], b.scratch.actQ, uint64(0),
		l[3].mem, l[3].off[0], l[4].mem, l[4].off[0], l[5].mem, l[5].off[0], uint32(k), uint32(m), uint32(rows), localMem(4*L*gq))
}

// mulMatAddFew runs a Q4_0 product of a few tokens and the ADD of its
// residual res (add's output) in one launch of mul_mwq_add_q4_0.
func (b *Backend) mulMatAddFew(a *arena, n, res, add *graph.Tensor) (bool, error) {
	w := n.Src[0]
	l, err := b.locateAll(a, w, n.Src[1], n, res, add)
	if err != nil {
		return false, err
	}
	rows := n.Rows()
	if w.Type != quant.Q4_0 || !b.rowGroupable(w, l[0], l[1]) || !b.fewInt8(rows) || !b.fewKernel("mul_mwq_add_q4_0") {
		return false, nil
	}
	k, m := w.Shape[0], w.Shape[1]
	if err := b.quantizeActs(n.Src[1], l[1], k, rows); err != nil {
		return true, err
	}
	L, gq := b.mwqShape()
	return true, b.launch("mul_mwq_add_q4_0", [2]int{L, (m + mwtR - 1) / mwtR}, [2]int{L, gq},
		l[0].mem, l[0].off[0], l[0].off[1], b.scratch.actQ, uint64(0), l[2].mem, l[2].off[0], l[3].mem, l[3].off[0],
		l[4].mem, l[4].off[0], uint32(k), uint32(m), uint32(rows), localMem(4*L*gq))
}

// normArgs locates the RMS_NORM norm and its MUL mul that a row-group
// GEMV computes before its product (norm nil: none) and returns the
// kernel's extra arguments, or ok false where the places do not suit its
// vector loads.
func (b *Backend) normArgs(a *arena, norm, mul *graph.Tensor) (args []any, ok bool, err error) {
	if norm == nil {
		return nil, true, nil
	}
	l, err := b.locateAll(a, mul.Src[1], norm, mul)
	if err != nil {
		return nil, false, err
	}
	for _, x := range l {
		if x.off[0]%16 != 0 {
			return nil, false, nil
		}
	}
	return []any{l[0].mem, l[0].off[0], l[1].mem, l[1].off[0], l[2].mem, l[2].off[0], norm.Param.Eps}, true, nil
}

// mulMat3 runs three one-token Q4_0 products of one input (Q, K, V) in
// one launch; with norm and mul (the RMS_NORM and the MUL whose output
// the products take), it computes those first in the same launch, and
// with rope (ROPE(Q), ROPE(K), SET_ROWS(K), SET_ROWS(V) of the products,
// f32 or f16 caches) it goes on to them.
func (b *Backend) mulMat3(a *arena, n0, n1, n2, norm, mul *graph.Tensor, rope []*graph.Tensor) (bool, error) {
	x := n0.Src[1]
	if norm != nil {
		x = norm.Src[0]
	}
	l, err := b.locateAll(a, n0.Src[0], n1.Src[0], n2.Src[0], x, n0, n1, n2)
	if err != nil {
		return false, err
	}
	ms := [3]int{n0.Src[0].Shape[1], n1.Src[0].Shape[1], n2.Src[0].Shape[1]}
	for i := range 3 {
		if ms[i]%mwR != 0 || !b.rowGroupable(n0.Src[0], l[i], l[3]) {
			return false, nil
		}
	}
	nargs, ok, err := b.normArgs(a, norm, mul)
	if !ok || err != nil {
		return false, err
	}
	g := b.tune.mwGroups
	args := []any{l[0].mem, l[0].off[0], l[0].off[1], l[1].mem, l[1].off[0], l[1].off[1], l[2].mem, l[2].off[0], l[2].off[1],
		l[3].mem, l[3].off[0], l[4].mem, l[4].off[0], l[5].mem, l[5].off[0], l[6].mem, l[6].off[0],
		uint32(n0.Src[0].Shape[0]), uint32(ms[0]), uint32(ms[1]), uint32(ms[2])}
	name := "mul_mw3_q4_0"
	if norm != nil {
		name = "mul_mw3n_q4_0"
		args = append(args, nargs...)
	}
	if rope != nil {
		rq, rk, sk, sv := rope[0], rope[1], rope[2], rope[3]
		if len(rq.Src[1].I32s) != 1 || len(sk.Src[2].I32s) != 1 || len(sv.Src[2].I32s) != 1 {
			return false, errorf("one-token rope %s has %d positions", rq.Name, len(rq.Src[1].I32s))
		}
		if err := b.checkCells(sk); err != nil {
			return false, err
		}
		if err := b.checkCells(sv); err != nil {
			return false, err
		}
		r, err := b.locateAll(a, rq, rk, sk.Src[1], sv.Src[1])
		if err != nil {
			return false, err
		}
		tab, err := b.ropeTable(rq)
		if err != nil {
			return false, err
		}
		kc, vc := r[2], r[3]
		name = "mul_mw3nr_" + kernelSuffix(kc.typ)
		if kc.typ == quant.Q8_0 || kc.typ == quant.Q4_0 {
			// A work-group of 32 rows writes whole cache blocks.
			g = 32 / mwR
			k := b.kernels[name]
			if k == nil || k.maxWG < 32*g || b.info.MaxWorkGroup < 32*g || ms[0]%32 != 0 || ms[1]%32 != 0 || ms[2]%32 != 0 {
				return false, nil
			}
		}
		args = append(args, rq.Src[1].I32s[0], tab, uint64(0), uint32(rq.Param.HeadDim), r[0].mem, r[0].off[0], r[1].mem, r[1].off[0],
			uint32(sk.Src[2].I32s[0]), kc.mem, kc.off[0], kc.off[1], uint32(sv.Src[2].I32s[0]), vc.mem, vc.off[0], vc.off[1])
	}
	args = append(args, localMem(4*32*mwR*g), localMem(16*256*b.env.mwB))
	return true, b.launch(name, [2]int{32, (ms[0] + ms[1] + ms[2]) / mwR}, [2]int{32, g}, args...)
}

// mulMatSwiGLU runs the one-token Q4_0 gate and up products and their
// SwiGLU in one launch; with norm and mul, it computes the RMS_NORM and
// the MUL whose output the products take first, in the same launch.
func (b *Backend) mulMatSwiGLU(a *arena, gate, up, sw, norm, mul *graph.Tensor) (bool, error) {
	x := gate.Src[1]
	if norm != nil {
		x = norm.Src[0]
	}
	l, err := b.locateAll(a, gate.Src[0], up.Src[0], x, gate, up, sw)
	if err != nil {
		return false, err
	}
	if !b.rowGroupable(gate.Src[0], l[0], l[2]) || !b.rowGroupable(up.Src[0], l[1], l[2]) {
		return false, nil
	}
	m := gate.Src[0].Shape[1]
	if m%(mwR/2) != 0 {
		return false, nil
	}
	nargs, ok, err := b.normArgs(a, norm, mul)
	if !ok || err != nil {
		return false, err
	}
	g := b.tune.mwGroups
	args := []any{l[0].mem, l[0].off[0], l[0].off[1], l[1].mem, l[1].off[0], l[1].off[1], l[2].mem, l[2].off[0],
		l[3].mem, l[3].off[0], l[4].mem, l[4].off[0], l[5].mem, l[5].off[0],
		uint32(gate.Src[0].Shape[0]), uint32(m)}
	name := "mul_mw_swiglu_q4_0"
	if norm != nil {
		name = "mul_mw_swiglun_q4_0"
		args = append(args, nargs...)
	}
	args = append(args, localMem(4*32*mwR*g), localMem(16*256*b.env.mwB))
	return true, b.launch(name, [2]int{32, m / (mwR / 2)}, [2]int{32, g}, args...)
}

// mulMatQ runs a Q4_0 product of rows tokens on the integer tensor cores:
// the activations are quantized to Q8_0 into a scratch buffer, then
// mul_mmq_q4_0 multiplies.
//
// Products of one input (Q, K and V; gate and up) quantize it once:
// scratch.actQFor remembers the tensor the buffer holds, within one
// Compute call.
func (b *Backend) mulMatQ(w loc, xt *graph.Tensor, x, y loc, k, m, rows int) error {
	if err := b.quantizeActs(xt, x, k, rows); err != nil {
		return err
	}
	return b.launchMMQ(w, y, k, m, rows)
}

// quantizeActs makes scratch.actQ hold xt's rows (at x) quantized to
// Q8_0 by quantize_act_q8, reusing the buffer's contents when they are
// xt's already (Q, K and V read one tensor). scratch.actQFor remembers
// the tensor the buffer holds, within one Compute call.
func (b *Backend) quantizeActs(xt *graph.Tensor, x loc, k, rows int) error {
	// Q8_0: 34 bytes per 32 activations, rounded up to 16 bytes.
	size, err := quant.MulSize(int64(rows), int64(k), 32+2)
	if err != nil {
		return errorf("size of the quantized activations of %d×%d: %w", rows, k, err)
	}
	size = (size/32 + 15) / 16 * 16
	if b.scratch.actQFor == xt && size <= b.scratch.actQSize {
		return nil
	}
	b.scratch.actQFor = nil
	if size > b.scratch.actQSize {
		mem, err := b.alloc("quantized activations", max(size, 2*b.scratch.actQSize))
		if err != nil {
			return err
		}
		if b.scratch.actQ != 0 {
			b.freeBuffer(b.scratch.actQ)
			b.used -= b.scratch.actQSize
		}
		b.scratch.actQ, b.scratch.actQSize = mem, max(size, 2*b.scratch.actQSize)
	}
	if err := b.launch("quantize_act_q8", [2]int{k / 32, rows}, [2]int{b.tune.lws2D, 1},
		x.mem, x.off[0], b.scratch.actQ, uint64(0), uint32(k), uint32(rows)); err != nil {
		return err
	}
	b.scratch.actQFor = xt
	return nil
}

// mqLocalBytes is the integer GEMM's local memory with mqBN tokens per
// work-group (switches.mqBN).
func mqLocalBytes(mqBN int) int64 { return int64(4*mqLD*(mqBM+mqBN) + 4*mqKB*(mqBM+mqBN)) }

// launchMMQ enqueues the integer GEMM over the quantized activations.
func (b *Backend) launchMMQ(w, y loc, k, m, rows int) error {
	mqBN := b.env.mqBN // the program's MQ_BN
	args := []any{w.mem, w.off[0], w.off[1], b.scratch.actQ, uint64(0), y.mem, y.off[0], uint32(k), uint32(m), uint32(rows),
		localMem(4 * mqLD * mqBM), localMem(4 * mqLD * mqBN), localMem(4 * mqKB * mqBM), localMem(4 * mqKB * mqBN)}
	if b.variant.emulate {
		args = append(args, localMem(4*6*128))
	}
	return b.launch("mul_mmq_q4_0", [2]int{(m + mqBM - 1) / mqBM * 128, (rows + mqBN - 1) / mqBN}, [2]int{128, 1}, args...)
}

// faLocalBytes is the local memory of attention_tiled for head size d.
func faLocalBytes(d int) int64 {
	return int64(4 * (faTQ*(d+1) + 2*faTK*(d+1) + faTQ*(faTK+1)))
}

// attnSplit chooses how many chunks of cells each (head, token) of an
// attention splits into: one for prompts (enough work-groups already),
// more for decoding long contexts, so that every compute unit works.
func (b *Backend) attnSplit(p graph.Params, rows int) (chunk, nch int) {
	visible := p.NKV
	groups := p.NHead * rows
	units := max(1, b.info.Units)
	L := b.tune.lwsAttn
	if groups >= 2*units || visible <= 2*L || !b.env.attnSplit {
		return max(visible, 1), 1
	}
	want := (4*units + groups - 1) / groups
	chunk = (visible + want - 1) / want
	chunk = max(L, (chunk+L-1)/L*L)
	return chunk, (visible + chunk - 1) / chunk
}

// partBuffer returns a scratch buffer of at least size bytes for the
// split attention's partial results, growing it when needed. Work queued
// on an old buffer keeps it alive until it completes.
func (b *Backend) partBuffer(size int64) (clMem, error) {
	if size <= b.scratch.attnPartSize {
		return b.scratch.attnPart, nil
	}
	size = max(size, 2*b.scratch.attnPartSize)
	m, err := b.alloc("attention partials", size)
	if err != nil {
		return 0, err
	}
	if b.scratch.attnPart != 0 {
		b.freeBuffer(b.scratch.attnPart)
		b.used -= b.scratch.attnPartSize
	}
	b.scratch.attnPart, b.scratch.attnPartSize = m, size
	return m, nil
}

// kernelSuffix names a type in kernel names.
func kernelSuffix(t quant.Type) string { return t.String() }

// compute enqueues one node.
func (b *Backend) compute(a *arena, n *graph.Tensor) error {
	if !b.Supports(n) {
		return errorf("not supported on this device with these types and shapes")
	}
	dst, err := b.locate(a, n)
	if err != nil {
		return err
	}
	var src [len(n.Src)]loc
	for i, s := range n.Src {
		if s == nil {
			continue
		}
		if src[i], err = b.locate(a, s); err != nil {
			return err
		}
	}
	width, rows := n.Shape[0], n.Rows()
	switch n.Op {
	case graph.OpGetRows:
		table := n.Src[0]
		if len(n.Src[1].I32s) != rows {
			return errorf("input %s has %d values for %d rows", n.Src[1].Name, len(n.Src[1].I32s), rows)
		}
		for i, id := range n.Src[1].I32s {
			if id < 0 || int(id) >= table.Rows() {
				return errorf("row id %d at index %d is outside the %d rows of %s", id, i, table.Rows(), table.Name)
			}
		}
		s := src[0]
		return b.launch("get_rows_"+kernelSuffix(table.Type), [2]int{(width + 31) / 32, rows}, [2]int{b.tune.lws2D, 1},
			s.mem, s.off[0], s.off[1], s.off[2], s.off[3], src[1].mem, src[1].off[0], dst.mem, dst.off[0], uint32(width), uint32(rows))

	case graph.OpMulMat:
		w := n.Src[0]
		if c, ok := b.tunedProd(w.Type, rows); ok {
			return b.mulMatVR(c, w, src[0], src[1], dst, rows)
		}
		if rows == 1 {
			if ok, err := b.mulMatRowGroups(a, n, nil, nil); ok || err != nil {
				return err
			}
		}
		if rows > 1 && rows < b.tune.mmMin {
			if ok, err := b.mulMatRowGroupsN(a, n); ok || err != nil {
				return err
			}
		}
		k, m := w.Shape[0], w.Shape[1]
		s := src[0]
		name := b.mulMatKernel(w.Type, rows, s.off[0]%16 == 0)
		if name == "mul_mmq_q4_0" {
			return b.mulMatQ(s, n.Src[1], src[1], dst, k, m, rows)
		}
		args := []any{s.mem, s.off[0], s.off[1], s.off[2], s.off[3], src[1].mem, src[1].off[0], dst.mem, dst.off[0], uint32(k), uint32(m), uint32(rows)}
		switch {
		case strings.HasPrefix(name, "mul_mm_tc_"):
			args = append(args, localMem(2*tcLD*tcBM), localMem(2*tcLD*tcBN))
			if b.variant.emulate {
				args = append(args, localMem(4*6*128))
			}
			return b.launch(name, [2]int{(m + tcBM - 1) / tcBM * 128, (rows + tcBN - 1) / tcBN}, [2]int{128, 1}, args...)
		case strings.HasPrefix(name, "mul_mm_"):
			args = append(args, localMem(4*32*(mmTM+1)), localMem(4*32*(mmTN+1)))
			return b.launch(name, [2]int{m, (rows + mmTN - 1) / mmTN}, [2]int{mmTM, 1}, args...)
		}
		lanes, units := b.mvShape(name, k, m, rows)
		args = append(args, localMem(4*lanes*units*mvR*min(rows, mvNT)))
		return b.launch(name, [2]int{lanes, (m + mvR - 1) / mvR}, [2]int{lanes, units}, args...)

	case graph.OpRMSNorm:
		return b.launch("rms_norm_f32", [2]int{rows * b.tune.lwsNorm, 1}, [2]int{b.tune.lwsNorm, 1},
			src[0].mem, src[0].off[0], dst.mem, dst.off[0], uint32(width), n.Param.Eps, localMem(4*b.tune.lwsNorm))

	case graph.OpAdd, graph.OpMul, graph.OpSwiGLU:
		name := map[graph.Op]string{graph.OpAdd: "add_f32", graph.OpMul: "mul_f32", graph.OpSwiGLU: "swiglu_f32"}[n.Op]
		total := width * rows
		bn := n.Src[1].Elements()
		return b.launch(name, [2]int{total, 1}, [2]int{b.tune.lwsElem, 1},
			src[0].mem, src[0].off[0], src[1].mem, src[1].off[0], dst.mem, dst.off[0], uint32(total), uint32(bn))

	case graph.OpRope:
		if len(n.Src[1].I32s) != rows {
			return errorf("input %s has %d values for %d rows", n.Src[1].Name, len(n.Src[1].I32s), rows)
		}
		tab, err := b.ropeTable(n)
		if err != nil {
			return err
		}
		hd := n.Param.HeadDim
		return b.launch("rope_f32", [2]int{width / 2, rows}, [2]int{b.tune.lws2D, 1},
			src[0].mem, src[0].off[0], dst.mem, dst.off[0], src[1].mem, src[1].off[0], tab, uint64(0), uint32(width), uint32(hd), uint32(rows))

	case graph.OpSetRows:
		if err := b.checkCells(n); err != nil {
			return err
		}
		cache := src[1]
		nr := n.Src[0].Rows()
		w := n.Src[0].Shape[0]
		global := [2]int{w, nr}
		if cache.typ == quant.Q8_0 || cache.typ == quant.Q4_0 {
			global[0] = w / 32
		}
		return b.launch("set_rows_"+kernelSuffix(cache.typ), global, [2]int{b.tune.lws2D, 1},
			src[0].mem, src[0].off[0], src[2].mem, src[2].off[0], cache.mem, cache.off[0], cache.off[1], uint32(w), uint32(nr))

	case graph.OpAttention:
		p := n.Param
		k, v, x := src[1], src[2], src[3]
		idx := graph.KVIndex{Idx: n.Src[3].I32s, N: rows}
		most, err := idx.Check(p.Page, min(n.Src[1].Storage().Rows(), n.Src[2].Storage().Rows()))
		if err != nil {
			return errorf("%w", err)
		}
		if most != p.NKV {
			return errorf("the KV index's tokens see %d positions, the node says %d", most, p.NKV)
		}
		if b.tune.faTiled && rows >= b.tune.mmMin && p.HeadDim <= faDMax && p.HeadDim%4 == 0 && b.info.LocalMem >= faLocalBytes(p.HeadDim)+1024 {
			ld := p.HeadDim + 1
			return b.launch("attention_tiled", [2]int{p.NHead * 128, (rows + faTQ - 1) / faTQ}, [2]int{128, 1},
				src[0].mem, src[0].off[0],
				k.mem, k.off[0], k.off[1], int32(k.typ),
				v.mem, v.off[0], v.off[1], int32(v.typ),
				dst.mem, dst.off[0],
				uint32(p.HeadDim), uint32(p.NHead), uint32(p.NHeadKV), x.mem, x.off[0], p.Scale, uint32(rows),
				localMem(4*faTQ*ld), localMem(4*faTK*ld), localMem(4*faTK*ld), localMem(4*faTQ*(faTK+1)))
		}
		L := b.tune.lwsAttn
		chunk, nch := b.attnSplit(p, rows)
		part := dst.mem // unused unless split
		if nch > 1 {
			// Per (token, head, chunk), as floats: the chunk's maximum
			// score, its sum of weights and its HeadDim outputs.
			size, err := quant.MulSize(4, int64(rows), int64(p.NHead), int64(nch), int64(p.HeadDim)+2)
			if err != nil {
				return errorf("size of the attention partials: %w", err)
			}
			if part, err = b.partBuffer(size); err != nil {
				return err
			}
		}
		if err := b.launch("attention", [2]int{p.NHead * L, rows * nch}, [2]int{L, 1},
			src[0].mem, src[0].off[0],
			k.mem, k.off[0], k.off[1], int32(k.typ),
			v.mem, v.off[0], v.off[1], int32(v.typ),
			dst.mem, dst.off[0],
			uint32(p.HeadDim), uint32(p.NHead), uint32(p.NHeadKV), x.mem, x.off[0], uint32(rows), p.Scale,
			uint32(chunk), uint32(nch), part, uint64(0),
			localMem(4*p.HeadDim), localMem(4*L), localMem(4*L)); err != nil || nch == 1 {
			return err
		}
		return b.launch("attention_merge", [2]int{p.NHead * L, rows}, [2]int{L, 1},
			part, uint64(0), dst.mem, dst.off[0], uint32(p.HeadDim), uint32(p.NHead), uint32(nch))
	}
	return errorf("op %s is not implemented", n.Op)
}

// mulMatKernel is the kernel a product with weights of type t and n
// tokens runs: the GEMV for small batches (mul_mv1_* for one token, where
// the row-group GEMV does not take it), else a tensor-core GEMM where
// there is one (the integer one for Q4_0 needs its quants 16-byte aligned:
// aligned16), else the tiled GEMM.
func (b *Backend) mulMatKernel(t quant.Type, n int, aligned16 bool) string {
	switch {
	case b.tune.mmq && t == quant.Q4_0 && n >= b.tune.mmMin && aligned16:
		return "mul_mmq_q4_0"
	case b.tune.tc && n >= b.tune.mmMin:
		return "mul_mm_tc_" + kernelSuffix(t)
	case b.tune.gemm && n >= b.tune.mmMin:
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
	// The weights' bytes do not move, so their address identifies the
	// table on every pass after the first without formatting a key.
	fast := ropeKey{hd, math.Float32bits(base), unsafe.SliceData(freqs), len(freqs)}
	if m, ok := b.scratch.ropeFast[fast]; ok {
		return m, nil
	}
	key := fmt.Sprintf("%d/%08x/%x", hd, math.Float32bits(base), freqs)
	if m, ok := b.scratch.ropeTabs[key]; ok {
		b.scratch.ropeFast[fast] = m
		return m, nil
	}
	size, err := quant.MulSize(8, int64(hd/2)) // a float pair per pair of dimensions
	if err != nil {
		return 0, errorf("size of the rope table of head size %d: %w", hd, err)
	}
	// The device buffer first: alloc checks the size against the
	// device's limits before the host table is made.
	m, err := b.alloc("rope table", size)
	if err != nil {
		return 0, err
	}
	tab := make([]byte, size)
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
	// A non-blocking write: tab stays referenced until the next Sync.
	b.pending = append(b.pending, tab)
	if err := b.a.write(b.q, m, "rope table", false, 0, unsafe.Pointer(&tab[0]), int64(len(tab)), nil); err != nil {
		b.freeBuffer(m)
		b.used -= int64(len(tab))
		return 0, err
	}
	b.scratch.ropeTabs[key] = m
	b.scratch.ropeFast[fast] = m
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
	if b.env.mvPerCU > 0 {
		perCU = b.env.mvPerCU
	}
	pieces := (k + 7) / 8
	nUnits := (m + mvR - 1) / mvR
	lanes = pow2Ceil((cus*perCU + nUnits - 1) / nUnits)
	lanes = min(max(lanes, mvMinLanes), mvMaxLanes, pow2Ceil(pieces), limit)
	if b.env.mvLanes > 0 {
		lanes = min(b.env.mvLanes, limit)
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
