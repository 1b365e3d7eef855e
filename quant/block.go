package quant

import (
	"encoding/binary"
	"fmt"
)

// Block sizes, in elements, of the quantized formats (ggml's QK4_0, QK8_0;
// QK_K is the k-quant super-block).
const (
	QK4_0 = 32
	QK8_0 = 32
)

// Block layouts. All multi-byte fields are little-endian, blocks are packed
// back to back with no padding, and a row of n elements is n/BlockSize
// blocks (see RowSize).
//
//	Q4_0 (18 bytes / 32 elements): d f16 | qs [16]uint8
//	Q8_0 (34 bytes / 32 elements): d f16 | qs [32]int8
//	Q6_K (210 bytes / 256 elements): ql [128]uint8 | qh [64]uint8 | scales [16]int8 | d f16

// BlockQ4_0 is one Q4_0 block: 32 weights w[i] = D*(q[i]-8) with 4-bit q.
// Qs[j] holds element j in its low nibble and element j+16 in its high
// nibble.
type BlockQ4_0 struct {
	D  uint16          // scale, as IEEE half-precision bits
	Qs [QK4_0 / 2]byte // packed 4-bit quants
}

// BlockQ8_0 is one Q8_0 block: 32 weights w[i] = D*Qs[i].
type BlockQ8_0 struct {
	D  uint16      // scale, as IEEE half-precision bits
	Qs [QK8_0]int8 // quants
}

// BlockQ6_K is one Q6_K super-block of 256 weights in 16 sub-blocks of 16:
// w[i] = D * Scales[i/16] * (q[i]-32) with 6-bit q. In each half of 128
// elements h (0 or 1), for l < 32, the low 4 bits of q are
//
//	element 128h+l    : Ql[64h+l]    & 0xf
//	element 128h+l+32 : Ql[64h+l+32] & 0xf
//	element 128h+l+64 : Ql[64h+l]    >> 4
//	element 128h+l+96 : Ql[64h+l+32] >> 4
//
// and their top 2 bits are bits 0-1, 2-3, 4-5 and 6-7 of Qh[32h+l].
type BlockQ6_K struct {
	Ql     [QK_K / 2]byte // low 4 bits of the quants
	Qh     [QK_K / 4]byte // high 2 bits of the quants
	Scales [QK_K / 16]int8
	D      uint16 // super-block scale, as IEEE half-precision bits
}

// UnmarshalBinary decodes an 18-byte Q4_0 block.
func (b *BlockQ4_0) UnmarshalBinary(data []byte) error {
	if len(data) != 18 {
		return fmt.Errorf("quant: q4_0 block is 18 bytes, got %d", len(data))
	}
	b.D = binary.LittleEndian.Uint16(data)
	copy(b.Qs[:], data[2:])
	return nil
}

// AppendBinary appends the block's 18 bytes to dst.
func (b *BlockQ4_0) AppendBinary(dst []byte) ([]byte, error) {
	dst = binary.LittleEndian.AppendUint16(dst, b.D)
	return append(dst, b.Qs[:]...), nil
}

// UnmarshalBinary decodes a 34-byte Q8_0 block.
func (b *BlockQ8_0) UnmarshalBinary(data []byte) error {
	if len(data) != 34 {
		return fmt.Errorf("quant: q8_0 block is 34 bytes, got %d", len(data))
	}
	b.D = binary.LittleEndian.Uint16(data)
	for i := range b.Qs {
		b.Qs[i] = int8(data[2+i])
	}
	return nil
}

// AppendBinary appends the block's 34 bytes to dst.
func (b *BlockQ8_0) AppendBinary(dst []byte) ([]byte, error) {
	dst = binary.LittleEndian.AppendUint16(dst, b.D)
	for _, q := range b.Qs {
		dst = append(dst, byte(q))
	}
	return dst, nil
}

// UnmarshalBinary decodes a 210-byte Q6_K block.
func (b *BlockQ6_K) UnmarshalBinary(data []byte) error {
	if len(data) != 210 {
		return fmt.Errorf("quant: q6_K block is 210 bytes, got %d", len(data))
	}
	copy(b.Ql[:], data[0:128])
	copy(b.Qh[:], data[128:192])
	for i := range b.Scales {
		b.Scales[i] = int8(data[192+i])
	}
	b.D = binary.LittleEndian.Uint16(data[208:])
	return nil
}

// AppendBinary appends the block's 210 bytes to dst.
func (b *BlockQ6_K) AppendBinary(dst []byte) ([]byte, error) {
	dst = append(dst, b.Ql[:]...)
	dst = append(dst, b.Qh[:]...)
	for _, s := range b.Scales {
		dst = append(dst, byte(s))
	}
	return binary.LittleEndian.AppendUint16(dst, b.D), nil
}
