package accel

import (
	"fmt"

	"github.com/ocelot-llm/ocelot/graph"
	"github.com/ocelot-llm/ocelot/quant"
)

// Runner executes scheduled graphs on up to two backends: the CPU (slot
// graph.CPU) and an accelerator (slot graph.Accel, may be nil).
type Runner struct {
	Backends [graph.MaxBackends]Backend
}

// Context is one sequence's scratch state: an arena per backend, grown as
// graphs need.
type Context struct {
	arenas  [graph.MaxBackends]Arena
	staging []float32
}

// Close frees the context's arenas.
func (c *Context) Close() {
	for i, a := range c.arenas {
		if a != nil {
			a.Free()
			c.arenas[i] = nil
		}
	}
}

// Fuse turns the patterns of a scheduled graph that its backends run as
// one kernel into fused nodes (graph.Fuse); Run does it too, so call it
// only to look at the graph first.
func (r *Runner) Fuse(g *graph.Graph) {
	graph.Fuse(g, func(n *graph.Tensor) bool {
		be := r.Backends[n.Backend]
		return be != nil && be.Supports(n)
	})
}

// Run fuses what its backends can fuse, plans g's memory, executes its
// nodes backend by backend, performs the copies between backends, and
// returns the values of g.Out (nil when the graph has no output). It waits
// only where data crosses backends and once at the end, for the output.
func (r *Runner) Run(c *Context, g *graph.Graph) ([]float32, error) {
	r.Fuse(g)
	sizes := graph.Plan(g)
	for b, need := range sizes {
		if need == 0 {
			continue
		}
		be := r.Backends[b]
		if be == nil {
			return nil, fmt.Errorf("accel: graph uses backend slot %d, which is empty", b)
		}
		if c.arenas[b] == nil || c.arenas[b].Size() < need {
			if c.arenas[b] != nil {
				c.arenas[b].Free()
				c.arenas[b] = nil
			}
			if free := be.Memory().Free; free > 0 && need > free {
				return nil, fmt.Errorf("accel: %s: the intermediates of this micro-batch need %d bytes (%.1f GiB) but %d bytes are free: lower -ub (n_ubatch)", be.Name(), need, float64(need)/(1<<30), free)
			}
			a, err := be.NewArena(need)
			if err != nil {
				return nil, fmt.Errorf("accel: %s: scratch memory of %d bytes: %w", be.Name(), need, err)
			}
			c.arenas[b] = a
		}
	}
	nodes := g.Nodes
	for len(nodes) > 0 {
		n := nodes[0]
		if n.Op == graph.OpCpy {
			if err := r.copy(c, n); err != nil {
				return nil, err
			}
			nodes = nodes[1:]
			continue
		}
		// The longest run of nodes on one backend, up to the next copy.
		end := 1
		for end < len(nodes) && nodes[end].Backend == n.Backend && nodes[end].Op != graph.OpCpy {
			end++
		}
		be := r.Backends[n.Backend]
		if err := be.Compute(c.arenas[n.Backend], nodes[:end]); err != nil {
			return nil, fmt.Errorf("accel: %s: %w", be.Name(), err)
		}
		nodes = nodes[end:]
	}
	var out []float32
	if g.Out != nil {
		out = make([]float32, g.Out.Elements())
		be := r.Backends[g.Out.Backend]
		if err := be.Read(c.arenas[g.Out.Backend], g.Out, out); err != nil {
			return nil, fmt.Errorf("accel: %s: read logits: %w", be.Name(), err)
		}
	}
	for _, be := range r.Backends {
		if be != nil {
			if err := be.Sync(); err != nil {
				return nil, fmt.Errorf("accel: %s: %w", be.Name(), err)
			}
		}
	}
	return out, nil
}

// copy moves a CPY node's source from its backend into the node's place on
// the other backend, through host memory.
func (r *Runner) copy(c *Context, n *graph.Tensor) error {
	src := n.Src[0]
	from, to := r.Backends[src.Backend], r.Backends[n.Backend]
	if cap(c.staging) < src.Elements() {
		c.staging = make([]float32, src.Elements())
	}
	buf := c.staging[:src.Elements()]
	if err := from.Read(c.arenas[src.Backend], src, buf); err != nil {
		return fmt.Errorf("accel: copy %s from %s: %w", src.Name, from.Name(), err)
	}
	if i := quant.FirstNonFiniteF32(buf); i >= 0 {
		return fmt.Errorf("accel: copy %s from %s: value %d is %v: %w", src.Name, from.Name(), i, buf[i], ErrNonFinite)
	}
	if err := to.Write(c.arenas[n.Backend], n, buf); err != nil {
		return fmt.Errorf("accel: copy %s to %s: %w", src.Name, to.Name(), err)
	}
	return nil
}
