package opencl

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/ocelot-llm/ocelot/model"
	"github.com/ocelot-llm/ocelot/quant"
)

// layout is how a tensor's bytes sit in its device buffer. Quantized
// blocks are split into their parts, each part a dense array (Q4_0: the
// 16-byte quant groups, then the f16 scales), so kernels read aligned
// vectors; float types keep ggml's row-major layout. Download joins the
// parts again, so what comes back equals what went up.
type layout struct {
	typ    quant.Type
	cols   int      // elements per row
	rows   int64    // rows (the product of the shape's outer dimensions)
	blocks int64    // blocks in the tensor (elements for float types)
	off    [4]int64 // byte offset of each region in the buffer
	size   int64    // bytes on the device (equal to the raw size)
}

// part is one region of a split block: where it sits in a raw block, and
// how many bytes it has.
type part struct{ at, n int }

// parts lists the regions of a quantized type's block in device order.
var parts = map[quant.Type][]part{
	quant.Q4_0: {{2, 16}, {0, 2}},
	quant.Q8_0: {{2, 32}, {0, 2}},
	quant.Q6_K: {{0, 128}, {128, 64}, {192, 16}, {208, 2}},
}

// deviceType reports whether a device buffer may hold t: every weight
// type ocelot has (the layout splits the quantized ones into regions).
func deviceType(t quant.Type) bool { return model.HasType(model.WeightTypes, t) }

// newLayout lays out a tensor of type t and shape (from the model or the
// graph): its rows, blocks and bytes are multiplied with quant.MulSize, so
// a shape too large for a 64-bit byte count is an error, not a wrapped
// size.
func newLayout(t quant.Type, shape [4]int) (layout, error) {
	if !deviceType(t) {
		return layout{}, fmt.Errorf("type %s cannot be stored on the device", t)
	}
	cols := shape[0]
	rows, err := quant.MulSize(int64(shape[1]), int64(shape[2]), int64(shape[3]))
	if err != nil {
		return layout{}, fmt.Errorf("rows of shape %v: %w", shape, err)
	}
	if cols <= 0 || rows <= 0 {
		return layout{}, fmt.Errorf("shape %v is empty", shape)
	}
	rb, err := quant.RowSize(t, int64(cols))
	if err != nil {
		return layout{}, err
	}
	size, err := quant.MulSize(rb, rows)
	if err != nil {
		return layout{}, fmt.Errorf("bytes of %s %v: %w", t, shape, err)
	}
	blocks, err := quant.MulSize(int64(cols)/int64(t.BlockSize()), rows)
	if err != nil {
		return layout{}, fmt.Errorf("blocks of %s %v: %w", t, shape, err)
	}
	l := layout{typ: t, cols: cols, rows: rows, blocks: blocks, size: size}
	// The regions' bytes add up to size (a block's parts cover the
	// block), so these offsets cannot wrap.
	var at int64
	for i, p := range parts[t] {
		l.off[i] = at
		at += int64(p.n) * l.blocks
	}
	return l, nil
}

// split reports whether the device layout differs from the raw one.
func (l layout) split() bool { return parts[l.typ] != nil }

// uploadChunk is the most bytes of a split tensor that toDeviceChunks
// lays out at once: an upload holds this much host memory beside the
// tensor's own bytes, not a whole device-layout copy of the tensor.
const uploadChunk = 4 << 20

// toDeviceChunks converts raw bytes (ggml's layout) to the device layout
// piece by piece: it fills buf (at least one block's largest part) with
// consecutive device-layout bytes and calls put with their offset in the
// device buffer, until all l.size bytes are put. put must be done with
// the bytes when it returns; its first error is returned. Float types
// are put straight from raw, in one call.
func (l layout) toDeviceChunks(raw, buf []byte, put func(off int64, b []byte) error) error {
	ps := parts[l.typ]
	if ps == nil {
		return put(0, raw[:l.size])
	}
	ts := int64(l.typ.TypeSize())
	for i, p := range ps {
		n := int64(p.n)
		per := int64(len(buf)) / n // blocks per chunk
		if per < 1 {
			return fmt.Errorf("opencl: a staging buffer of %d bytes cannot hold one %d-byte part of a %s block", len(buf), n, l.typ)
		}
		for b0 := int64(0); b0 < l.blocks; b0 += per {
			b1 := min(b0+per, l.blocks)
			chunk := buf[:(b1-b0)*n]
			gatherPart(chunk, raw[b0*ts:b1*ts], p, int(ts))
			if err := put(l.off[i]+b0*n, chunk); err != nil {
				return err
			}
		}
	}
	return nil
}

// gatherMin is the fewest bytes gatherPart hands to one goroutine.
const gatherMin = 256 << 10

// gatherPart copies part p of each ts-byte block of src into dst, densely
// (dst holds len(src)/ts parts). Loading a model runs it over every byte
// of the quantized weights, so it moves the common part sizes as fixed
// arrays instead of a copy call per block, and splits big chunks over the
// cores.
func gatherPart(dst, src []byte, p part, ts int) {
	count := len(src) / ts
	if workers := min(runtime.GOMAXPROCS(0), count*p.n/gatherMin); workers > 1 {
		var wg sync.WaitGroup
		per := (count + workers - 1) / workers
		for b0 := 0; b0 < count; b0 += per {
			b1 := min(b0+per, count)
			wg.Go(func() { gatherPart(dst[b0*p.n:b1*p.n], src[b0*ts:b1*ts], p, ts) })
		}
		wg.Wait()
		return
	}
	switch p.n {
	case 2:
		for b := range count {
			s := b*ts + p.at
			dst[2*b], dst[2*b+1] = src[s], src[s+1]
		}
	case 16:
		for b := range count {
			*(*[16]byte)(dst[16*b:]) = *(*[16]byte)(src[b*ts+p.at:])
		}
	case 32:
		for b := range count {
			*(*[32]byte)(dst[32*b:]) = *(*[32]byte)(src[b*ts+p.at:])
		}
	default:
		for b := range count {
			copy(dst[b*p.n:(b+1)*p.n], src[b*ts+p.at:])
		}
	}
}

// fromDevice converts device-layout bytes back to ggml's layout, into raw.
func (l layout) fromDevice(raw, dev []byte) {
	ps := parts[l.typ]
	if ps == nil {
		copy(raw, dev)
		return
	}
	ts := l.typ.TypeSize()
	for i, p := range ps {
		region := dev[l.off[i]:]
		for b := int64(0); b < l.blocks; b++ {
			copy(raw[b*int64(ts)+int64(p.at):][:p.n], region[b*int64(p.n):(b+1)*int64(p.n)])
		}
	}
}
