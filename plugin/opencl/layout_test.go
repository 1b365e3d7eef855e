package opencl

import (
	"testing"

	"github.com/ocelot-llm/ocelot/quant"
)

// TestLayoutSizes checks that newLayout multiplies a shape's sizes
// without wrapping: a shape whose bytes pass 64 bits is an error, and a
// fitting one gets its exact size and region offsets.
func TestLayoutSizes(t *testing.T) {
	l, err := newLayout(quant.Q4_0, [4]int{4096, 3, 2, 1})
	if err != nil {
		t.Fatal(err)
	}
	if l.rows != 6 || l.blocks != 128*6 || l.size != 18*128*6 || l.off != [4]int64{0, 16 * 128 * 6} {
		t.Errorf("Q4_0 [4096 3 2 1]: rows %d, blocks %d, size %d, offsets %v", l.rows, l.blocks, l.size, l.off)
	}
	for _, c := range []struct {
		typ   quant.Type
		shape [4]int
	}{
		{quant.F32, [4]int{1 << 32, 1 << 30, 1, 1}},       // bytes: 2^64
		{quant.Q4_0, [4]int{1 << 40, 1 << 20, 1 << 4, 1}}, // bytes: 18×2^59
		{quant.F16, [4]int{2, 1 << 31, 1 << 31, 1 << 31}}, // rows: 2^93
		{quant.F32, [4]int{4, 3, -1, 1}},
		{quant.F32, [4]int{4, 0, 1, 1}},
	} {
		if l, err := newLayout(c.typ, c.shape); err == nil {
			t.Errorf("%s %v: a layout of %d bytes, want an error", c.typ, c.shape, l.size)
		}
	}
}
