package quant

import (
	"encoding/binary"
	"fmt"
	"math"
)

// scaleAt lists, for the block types, the byte offset of each block's f16
// scale (the only field of the block that can hold a NaN or Inf).
var scaleAt = map[Type]int{Q4_0: 0, Q8_0: 0, Q6_K: 208}

// FirstNonFinite returns the index of the first element (plain types) or
// block (block types) of data whose value, or whose block scale, is a NaN
// or an infinity, or -1 when there is none. data must hold whole
// elements or blocks of a type Supported accepts.
func FirstNonFinite(t Type, data []byte) (int, error) {
	if !t.Supported() {
		return -1, fmt.Errorf("quant: type %s is not supported", t)
	}
	size := t.TypeSize()
	if len(data)%size != 0 {
		return -1, fmt.Errorf("quant: %d bytes is not a whole number of %d-byte %s blocks", len(data), size, t)
	}
	switch t {
	case F32:
		for i := 0; i < len(data); i += 4 {
			if binary.LittleEndian.Uint32(data[i:])&0x7f800000 == 0x7f800000 {
				return i / 4, nil
			}
		}
	case F16:
		for i := 0; i < len(data); i += 2 {
			if binary.LittleEndian.Uint16(data[i:])&0x7c00 == 0x7c00 {
				return i / 2, nil
			}
		}
	case BF16:
		for i := 0; i < len(data); i += 2 {
			if binary.LittleEndian.Uint16(data[i:])&0x7f80 == 0x7f80 {
				return i / 2, nil
			}
		}
	default:
		off, ok := scaleAt[t]
		if !ok {
			return -1, fmt.Errorf("quant: no scale layout for %s", t)
		}
		for i := off; i < len(data); i += size {
			if binary.LittleEndian.Uint16(data[i:])&0x7c00 == 0x7c00 {
				return i / size, nil
			}
		}
	}
	return -1, nil
}

// FirstNonFiniteF32 returns the index of the first NaN or ±Inf in v, or
// -1. It is meant for every row of logits, so its common case (all
// finite) is one pass of the active path's SIMD dot product of v with
// itself, which is non-finite exactly when v holds a NaN or an Inf or
// when the squares overflow; only then are the values looked at one by
// one.
func FirstNonFiniteF32(v []float32) int {
	if s := VecDotF32(len(v), v, v); s-s == 0 {
		return -1
	}
	for i, x := range v {
		if x != x || x > math.MaxFloat32 || x < -math.MaxFloat32 {
			return i
		}
	}
	return -1 // the squares overflowed; every value is finite
}
