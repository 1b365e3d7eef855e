package graph

import (
	"cmp"
	"fmt"
	"slices"
)

// Policy says where a graph's nodes may run.
type Policy struct {
	NLayer int
	// NGPULayers offloads layers [NLayer-NGPULayers, NLayer) to the
	// accelerator; more than NLayer also offloads the output layer, as in
	// llama.cpp. The embedding lookup always stays on the CPU.
	NGPULayers int
	// KVOnHost keeps every KV cache, and so SET_ROWS and ATTENTION, on the
	// CPU (llama.cpp's -nkvo).
	KVOnHost bool
	// Accel names the accelerator ("" when there is none).
	Accel string
	// Supports says whether the accelerator can run a node; nodes it
	// cannot run go to the CPU.
	Supports func(*Tensor) bool
}

// LayerOnAccel says whether a layer's weights live on the accelerator:
// layers 0..NLayer-1 are blocks, -1 the input part (never offloaded) and
// NLayer the output part.
func (p Policy) LayerOnAccel(layer int) bool {
	if p.Accel == "" || layer < 0 {
		return false
	}
	if layer >= p.NLayer {
		return p.NGPULayers > p.NLayer
	}
	return layer >= p.NLayer-p.NGPULayers
}

// CacheOnAccel says whether a layer's KV cache lives on the accelerator.
func (p Policy) CacheOnAccel(layer int) bool {
	return !p.KVOnHost && p.LayerOnAccel(layer)
}

// Schedule places every node on the CPU or the accelerator, then inserts
// a CPY node wherever a node reads an intermediate computed on the other
// backend, and counts those copies. SET_ROWS and ATTENTION run where their
// layer's cache lives; the caller allocates caches by the same policy and
// must only put a cache on an accelerator that supports those ops for its
// types.
func Schedule(g *Graph, p Policy) error {
	g.Backends = []string{"cpu"}
	if p.Accel != "" {
		g.Backends = append(g.Backends, p.Accel)
	}
	for _, n := range g.Nodes {
		if n.Op == OpCpy {
			return fmt.Errorf("graph: schedule: graph already scheduled (%s)", n.Name)
		}
		n.Backend = CPU
		switch {
		case n.Op == OpSetRows || n.Op == OpAttention:
			if p.CacheOnAccel(n.Layer) {
				n.Backend = Accel
			}
		case p.LayerOnAccel(n.Layer) && (p.Supports == nil || p.Supports(n)):
			n.Backend = Accel
		}
	}
	// Insert copies where data crosses backends.
	type key struct {
		t       *Tensor
		backend int
	}
	copies := map[key]*Tensor{}
	nodes := make([]*Tensor, 0, len(g.Nodes))
	g.Copies, g.CopyBytes = 0, 0
	for _, n := range g.Nodes {
		for i, s := range n.Src {
			if s == nil || s.Op == OpLeaf || s.Op == OpSetRows || s.Backend == n.Backend {
				continue
			}
			k := key{s, n.Backend}
			c, ok := copies[k]
			if !ok {
				c = &Tensor{Name: "cpy:" + s.Name, Op: OpCpy, Type: s.Type, Shape: s.Shape, Kind: Intermediate, Layer: n.Layer, Backend: n.Backend}
				c.Src[0] = s
				copies[k] = c
				nodes = append(nodes, c)
				g.Copies++
				g.CopyBytes += c.Bytes()
			}
			n.Src[i] = c
		}
		nodes = append(nodes, n)
	}
	g.Nodes = nodes
	return nil
}

// planAlign is the alignment of intermediates in an arena.
const planAlign = 256

// Plan gives every intermediate an offset in its backend's arena. A
// tensor's memory is reused once its last reader has run; a node's
// outputs (all parts of a fused node) never share memory with its inputs
// or with each other. It returns the arena size each backend needs.
func Plan(g *Graph) [MaxBackends]int64 {
	// Plan runs for every micro-batch: its notes live in the tensors
	// (lastRead) rather than in a map, and one buffer holds each node's
	// inputs.
	var in []*Tensor
	for _, n := range g.Nodes {
		for _, o := range n.Outputs() {
			o.lastRead = 0
		}
	}
	for i, n := range g.Nodes {
		in = n.appendInputs(in[:0])
		for _, s := range in {
			if s = s.Storage(); s.Kind == Intermediate {
				s.lastRead = i + 1
			}
		}
	}
	if g.Out != nil {
		g.Out.lastRead = len(g.Nodes) + 1
	}
	type span struct{ off, size int64 }
	var free [MaxBackends][]span
	var size [MaxBackends]int64
	alloc := func(b int, n int64) int64 {
		n = (n + planAlign - 1) / planAlign * planAlign
		for i, s := range free[b] {
			if s.size >= n {
				if s.size == n {
					free[b] = append(free[b][:i], free[b][i+1:]...)
				} else {
					free[b][i] = span{s.off + n, s.size - n}
				}
				return s.off
			}
		}
		off := size[b]
		size[b] += n
		return off
	}
	// release returns a run to the free list, which stays sorted by
	// offset with neighbours merged, so large tensors can reuse freed runs.
	release := func(b int, off, n int64) {
		n = (n + planAlign - 1) / planAlign * planAlign
		spans := free[b]
		i, _ := slices.BinarySearchFunc(spans, off, func(s span, off int64) int { return cmp.Compare(s.off, off) })
		spans = slices.Insert(spans, i, span{off, n})
		if i+1 < len(spans) && spans[i].off+spans[i].size == spans[i+1].off {
			spans[i].size += spans[i+1].size
			spans = slices.Delete(spans, i+1, i+2)
		}
		if i > 0 && spans[i-1].off+spans[i-1].size == spans[i].off {
			spans[i-1].size += spans[i].size
			spans = slices.Delete(spans, i, i+1)
		}
		free[b] = spans
	}
	var one [1]*Tensor // a plain node's outputs, without an allocation
	for i, n := range g.Nodes {
		// A fused node's outputs are all placed before any of its inputs
		// is released, so one kernel may read every input while it
		// writes every output.
		outs := n.Parts
		if n.Op != OpFused {
			one[0] = n
			outs = one[:]
		}
		for _, o := range outs {
			if o.Op != OpSetRows {
				o.Offset = alloc(o.Backend, o.Bytes())
			}
		}
		in = n.appendInputs(in[:0])
		for _, s := range in {
			s = s.Storage()
			if s.Kind == Intermediate && s.Op != OpLeaf && s.lastRead == i+1 {
				release(s.Backend, s.Offset, s.Bytes())
			}
		}
		for _, o := range outs {
			if o.lastRead == 0 && o.Op != OpSetRows {
				// Computed but read by nothing after this node: a part
				// that only the fused node itself reads.
				release(o.Backend, o.Offset, o.Bytes())
			}
		}
	}
	return size
}
