package opencl

import (
	"fmt"
	"math"

	"github.com/ocelot-llm/ocelot/accel"
	"github.com/ocelot-llm/ocelot/graph"
	"github.com/ocelot-llm/ocelot/quant"
)

// faultNaN, when set (by tests), is asked after each node's kernels are
// enqueued; when it returns true for the node (by op and name), the node's
// f32 output is overwritten with NaN on the device, as a miscompiled or
// faulty kernel would leave it. It simulates "a kernel that writes NaN",
// which callHook cannot (a hook only makes calls fail).
var faultNaN func(op, name string) bool

// poisonNaN fills t's output with NaN if faultNaN asks for it.
func (b *Backend) poisonNaN(a *arena, t *graph.Tensor) error {
	if h := faultNaN; h == nil || t.Type != quant.F32 || t.Kind != graph.Intermediate || !h(t.Op.String(), t.Name) {
		return nil
	}
	l, err := b.locate(a, t)
	if err != nil {
		return err
	}
	return b.a.fill(b.q, l.mem, t.Name, int64(l.off[0]), t.Bytes(), math.Float32bits(float32(math.NaN())))
}

// checkFinite reports values that no correct kernel produces: NaN or
// ±Inf in what the self-test reads back. (During a forward pass the
// runner and the engine check what crosses to the host.)
func checkFinite(name string, v []float32) error {
	bad, first := 0, -1
	for i, x := range v {
		if x != x || x > math.MaxFloat32 || x < -math.MaxFloat32 {
			if first < 0 {
				first = i
			}
			bad++
		}
	}
	if bad == 0 {
		return nil
	}
	return fmt.Errorf("opencl: read %s: %d of %d values are NaN or Inf (the first at %d, %v): %w", name, bad, len(v), first, v[first], accel.ErrNonFinite)
}
