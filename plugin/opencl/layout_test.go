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

// TestLayoutChunks checks toDeviceChunks against a whole-tensor
// conversion written out block by block: for every split type and
// staging sizes from one part to more than the tensor, the chunks cover
// the device buffer exactly once, in order, and fromDevice gives the raw
// bytes back. A staging buffer smaller than a part is an error.
func TestLayoutChunks(t *testing.T) {
	for _, typ := range []quant.Type{quant.Q4_0, quant.Q8_0, quant.Q6_K, quant.F16} {
		l, err := newLayout(typ, [4]int{2 * typ.BlockSize(), 5, 1, 1})
		if err != nil {
			t.Fatal(err)
		}
		raw := make([]byte, l.size)
		for i := range raw {
			raw[i] = byte(i*7 + i>>8)
		}
		// The device layout, built directly from the parts table.
		want := make([]byte, 0, l.size)
		ts := int64(typ.TypeSize())
		if ps := parts[typ]; ps == nil {
			want = append(want, raw...)
		} else {
			for _, p := range ps {
				for b := int64(0); b < l.blocks; b++ {
					want = append(want, raw[b*ts+int64(p.at):][:p.n]...)
				}
			}
		}
		for _, stage := range []int{128, 129, 200, 1000, int(l.size), int(l.size) + 100} {
			got := make([]byte, 0, l.size)
			err := l.toDeviceChunks(raw, make([]byte, stage), func(off int64, b []byte) error {
				if off != int64(len(got)) {
					t.Fatalf("%s stage %d: a chunk at offset %d after %d bytes", typ, stage, off, len(got))
				}
				if len(b) > stage {
					t.Fatalf("%s stage %d: a chunk of %d bytes", typ, stage, len(b))
				}
				got = append(got, b...)
				return nil
			})
			if err != nil {
				t.Fatalf("%s stage %d: %v", typ, stage, err)
			}
			if string(got) != string(want) {
				t.Fatalf("%s stage %d: device bytes differ from the parts' layout", typ, stage)
			}
			back := make([]byte, l.size)
			l.fromDevice(back, got)
			if string(back) != string(raw) {
				t.Fatalf("%s stage %d: fromDevice does not give the raw bytes back", typ, stage)
			}
		}
	}
	l, _ := newLayout(quant.Q6_K, [4]int{256, 2, 1, 1})
	if err := l.toDeviceChunks(make([]byte, l.size), make([]byte, 127), func(int64, []byte) error { return nil }); err == nil {
		t.Error("Q6_K with a 127-byte staging buffer: no error, want one (its largest part has 128 bytes)")
	}
}

// BenchmarkToDevice is the host's share of uploading a split tensor: the
// conversion of a 4096x4096 Q4_0 matrix (9 MiB) to the device layout in
// uploadChunk pieces (put does nothing).
func BenchmarkToDevice(b *testing.B) {
	for _, typ := range []quant.Type{quant.Q4_0, quant.Q6_K} {
		b.Run(typ.String(), func(b *testing.B) {
			lay, err := newLayout(typ, [4]int{4096, 4096, 1, 1})
			if err != nil {
				b.Fatal(err)
			}
			raw := make([]byte, lay.size)
			buf := make([]byte, uploadChunk)
			b.SetBytes(lay.size)
			for b.Loop() {
				if err := lay.toDeviceChunks(raw, buf, func(int64, []byte) error { return nil }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
