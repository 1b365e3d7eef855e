package conformance

import (
	"math/rand/v2"

	"github.com/ocelot-llm/ocelot/accel"
	"github.com/ocelot-llm/ocelot/graph"
	"github.com/ocelot-llm/ocelot/model"
	"github.com/ocelot-llm/ocelot/quant"
)

// WeightTypes are the weight types every backend must multiply.
var WeightTypes = []quant.Type{quant.F32, quant.F16, quant.BF16, quant.Q4_0, quant.Q8_0, quant.Q6_K}

// MulMatCases compares backend b's matrix products alone with ref's, for
// every weight type, shape and batch OpCases runs them with: the
// conformance runner calls it again for each product path a backend can
// be forced onto (accel.PathForcer).
func MulMatCases(b accel.Backend, slot int, quick bool) []Case {
	e := &opEnv{b: b, slot: slot, rng: rand.New(rand.NewPCG(1, 2))}
	return e.mulMats(quick)
}

func (e *opEnv) mulMats(quick bool) []Case {
	var cases []Case
	batches := []int{1, 7, 64, 512}
	if quick {
		batches = []int{1, 7, 33}
	}
	for _, t := range WeightTypes {
		bs := t.BlockSize()
		k := max(bs, 64)
		shapes := [][2]int{{k, 1}, {k, 37}, {4096, 33}, {2 * k, 300}}
		if bs == 1 {
			shapes = append(shapes, [2]int{67, 5})
		}
		for _, s := range shapes {
			for _, n := range batches {
				if int64(s[0])*int64(s[1])*int64(n) > 1<<24 && quick {
					continue
				}
				// NMSE over a single output is one sample of the rounding
				// error, not a measure of it: a product that happens to be
				// small next to its terms fails a correct kernel. One output
				// row is covered with several tokens instead.
				if s[1]*n < 4 {
					continue
				}
				cases = append(cases, e.mulMat(t, s[0], s[1], n))
			}
		}
	}
	return cases
}

// OpCases compares every op on backend b (in Bufs slot `slot`) with the
// reference: awkward shapes (1, odd sizes, sizes that are no multiple of a
// work-group, 4096-wide rows), batches from 1 to 512, every weight type
// and every KV type. quick runs a smaller set. A case the backend does not
// support is skipped, not failed: the scheduler runs such ops on the CPU.
func OpCases(b accel.Backend, slot int, quick bool) []Case {
	e := &opEnv{b: b, slot: slot, rng: rand.New(rand.NewPCG(1, 2))}
	var cases []Case
	widths := []int{1, 31, 256, 4096, 4099}
	// Element-wise and normalisation ops.
	for _, w := range widths {
		for _, n := range []int{1, 5, 64} {
			if w*n > 1<<18 {
				continue
			}
			cases = append(cases, e.rmsNorm(w, n), e.binary(graph.OpAdd, w, n, false), e.binary(graph.OpMul, w, n, false),
				e.binary(graph.OpMul, w, n, true), e.binary(graph.OpSwiGLU, w, n, false))
		}
	}
	// Lookups, upload/download and matrix products for every weight type.
	for _, t := range WeightTypes {
		bs := t.BlockSize()
		k := max(bs, 64)
		cases = append(cases, e.getRows(t, max(bs, 32), 50, 7), e.getRows(t, 4096, 3, 1), e.roundTrip(t, 4096, 5), e.roundTrip(t, k, 1))
	}
	cases = append(cases, e.mulMats(quick)...)
	// Rotary embeddings.
	for _, hd := range []int{32, 64, 128} {
		for _, c := range []struct{ heads, n, pos0 int }{{1, 1, 0}, {3, 7, 5}, {8, 33, 4000}} {
			cases = append(cases, e.rope(hd, c.heads, c.n, c.pos0, false), e.rope(hd, c.heads, c.n, c.pos0, true))
		}
	}
	// The KV cache: writes and attention over every KV type.
	for _, t := range model.KVTypes {
		cases = append(cases, e.setRows(t, 64, 40, 7), e.setRows(t, 1024, 9, 1), e.setRows(t, 32, 512, 33))
		for _, a := range []struct{ hd, heads, kvHeads, n, pos0 int }{
			{32, 1, 1, 1, 0}, {64, 4, 2, 7, 13}, {128, 8, 2, 1, 300}, {64, 8, 8, 33, 0}, {128, 32, 8, 3, 61},
		} {
			if quick && a.pos0 > 100 {
				continue
			}
			cases = append(cases, e.attention(t, t, a.hd, a.heads, a.kvHeads, a.n, a.pos0))
		}
	}
	cases = append(cases, e.attention(quant.Q8_0, quant.F16, 64, 8, 2, 5, 20), e.attention(quant.Q4_0, quant.Q8_0, 128, 4, 1, 9, 40))
	return cases
}
