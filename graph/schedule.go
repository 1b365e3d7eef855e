package graph

import (
	"fmt"
	"sort"
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
	lastUse := map[*Tensor]int{}
	for i, n := range g.Nodes {
		for _, s := range n.Inputs() {
			lastUse[s.Storage()] = i
		}
	}
	if g.Out != nil {
		lastUse[g.Out] = len(g.Nodes)
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
	release := func(b int, off, n int64) {
		n = (n + planAlign - 1) / planAlign * planAlign
		spans := append(free[b], span{off, n})
		sort.Slice(spans, func(i, j int) bool { return spans[i].off < spans[j].off })
		// Merge neighbours so large tensors can reuse freed runs.
		merged := spans[:1]
		for _, s := range spans[1:] {
			if last := &merged[len(merged)-1]; last.off+last.size == s.off {
				last.size += s.size
			} else {
				merged = append(merged, s)
			}
		}
		free[b] = merged
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
		for _, s := range n.Inputs() {
			s = s.Storage()
			if s.Kind == Intermediate && s.Op != OpLeaf && lastUse[s] == i {
				release(s.Backend, s.Offset, s.Bytes())
			}
		}
		for _, o := range outs {
			if _, read := lastUse[o]; !read && o.Op != OpSetRows {
				// Computed but read by nothing after this node: a part
				// that only the fused node itself reads.
				release(o.Backend, o.Offset, o.Bytes())
			}
		}
	}
	return size
}
