package quant

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Float32sToBytes returns src as little-endian float32 bytes (the F32 row
// layout of GGUF files), 4 bytes per value, in a new slice.
func Float32sToBytes(src []float32) []byte {
	b := make([]byte, 4*len(src))
	for i, v := range src {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

// BytesToFloat32s decodes little-endian float32 bytes into a new slice. It
// fails if len(src) is not a multiple of 4.
func BytesToFloat32s(src []byte) ([]float32, error) {
	if len(src)%4 != 0 {
		return nil, fmt.Errorf("quant: %d bytes is not a whole number of 4-byte float32 values", len(src))
	}
	f := make([]float32, len(src)/4)
	for i := range f {
		f[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
	}
	return f, nil
}
