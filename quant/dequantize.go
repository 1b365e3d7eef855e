package quant

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Dequantize converts len(dst) elements of type t, read from the front of
// src, to float32. t must be F32, F16, BF16, Q4_0, Q8_0 or Q6_K; len(dst)
// must be a whole number of t's blocks and src must hold at least
// RowSize(t, len(dst)) bytes. The results are bit-identical with ggml's
// dequantize_row_* (and its f16/bf16 to f32 conversions).
func Dequantize(t Type, dst []float32, src []byte) error {
	switch t {
	case F32:
		return DequantizeF32(dst, src)
	case F16:
		return DequantizeF16(dst, src)
	case BF16:
		return DequantizeBF16(dst, src)
	case Q4_0:
		return DequantizeQ4_0(dst, src)
	case Q8_0:
		return DequantizeQ8_0(dst, src)
	case Q6_K:
		return DequantizeQ6_K(dst, src)
	}
	return fmt.Errorf("quant: dequantize: %s is not supported", t)
}

// checkDequantize validates the lengths for dequantizing len(dst) elements of
// t from src and returns the number of blocks.
func checkDequantize(t Type, dst []float32, src []byte) (int, error) {
	bs, ts := t.BlockSize(), t.TypeSize()
	if len(dst)%bs != 0 {
		return 0, fmt.Errorf("quant: dequantize %s: %d elements is not a whole number of %d-element blocks", t, len(dst), bs)
	}
	nb := len(dst) / bs
	if need := nb * ts; len(src) < need {
		return 0, fmt.Errorf("quant: dequantize %s: src has %d bytes, %d elements need %d", t, len(src), len(dst), need)
	}
	return nb, nil
}

// DequantizeF32 reads len(dst) little-endian float32 values from src.
func DequantizeF32(dst []float32, src []byte) error {
	if _, err := checkDequantize(F32, dst, src); err != nil {
		return err
	}
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
	}
	return nil
}

// DequantizeF16 reads len(dst) little-endian IEEE half-precision values from
// src.
func DequantizeF16(dst []float32, src []byte) error {
	if _, err := checkDequantize(F16, dst, src); err != nil {
		return err
	}
	src = src[:2*len(dst)]
	for i := range dst {
		h := binary.LittleEndian.Uint16(src[2*i:])
		if fp16IsNormal(h) {
			dst[i] = fp16NormalToFloat32(h)
		} else {
			dst[i] = fp16SpecialToFloat32(h)
		}
	}
	return nil
}

// DequantizeBF16 reads len(dst) little-endian bfloat16 values from src.
func DequantizeBF16(dst []float32, src []byte) error {
	if _, err := checkDequantize(BF16, dst, src); err != nil {
		return err
	}
	src = src[:2*len(dst)]
	for i := range dst {
		dst[i] = BF16ToFloat32(binary.LittleEndian.Uint16(src[2*i:]))
	}
	return nil
}

// DequantizeQ4_0 expands Q4_0 blocks from src into dst: w = d*(q-8).
func DequantizeQ4_0(dst []float32, src []byte) error {
	nb, err := checkDequantize(Q4_0, dst, src)
	if err != nil {
		return err
	}
	for i := range nb {
		b := src[i*18 : i*18+18 : i*18+18]
		y := dst[i*QK4_0 : i*QK4_0+QK4_0 : i*QK4_0+QK4_0]
		d := FP16ToFloat32(binary.LittleEndian.Uint16(b))
		qs := b[2:18]
		lo, hi := y[:16:16], y[16:32:32]
		for j, q := range qs {
			lo[j] = float32(int32(q&0xf)-8) * d
			hi[j] = float32(int32(q>>4)-8) * d
		}
	}
	return nil
}

// DequantizeQ8_0 expands Q8_0 blocks from src into dst: w = d*q.
func DequantizeQ8_0(dst []float32, src []byte) error {
	nb, err := checkDequantize(Q8_0, dst, src)
	if err != nil {
		return err
	}
	for i := range nb {
		b := src[i*34 : i*34+34 : i*34+34]
		y := dst[i*QK8_0 : i*QK8_0+QK8_0 : i*QK8_0+QK8_0]
		d := FP16ToFloat32(binary.LittleEndian.Uint16(b))
		qs := b[2:34]
		for j, q := range qs {
			y[j] = float32(int8(q)) * d
		}
	}
	return nil
}

// DequantizeQ6_K expands Q6_K super-blocks from src into dst:
// w = (d*scale)*(q-32), multiplied in that order as ggml does.
func DequantizeQ6_K(dst []float32, src []byte) error {
	nb, err := checkDequantize(Q6_K, dst, src)
	if err != nil {
		return err
	}
	for i := range nb {
		b := src[i*210 : i*210+210 : i*210+210]
		y := dst[i*QK_K : i*QK_K+QK_K : i*QK_K+QK_K]
		d := FP16ToFloat32(binary.LittleEndian.Uint16(b[208:]))
		var ds [16]float32
		for k, s := range b[192:208] {
			ds[k] = d * float32(int8(s))
		}
		for h := range 2 {
			ql := b[64*h : 64*h+64 : 64*h+64]
			qh := b[128+32*h : 128+32*h+32 : 128+32*h+32]
			yh := y[128*h : 128*h+128 : 128*h+128]
			sc := ds[8*h : 8*h+8 : 8*h+8]
			for l := range 32 {
				is := l / 16
				h2 := qh[l]
				q1 := int32(ql[l]&0xf|(h2&3)<<4) - 32
				q2 := int32(ql[l+32]&0xf|(h2>>2&3)<<4) - 32
				q3 := int32(ql[l]>>4|(h2>>4&3)<<4) - 32
				q4 := int32(ql[l+32]>>4|(h2>>6)<<4) - 32
				yh[l] = sc[is] * float32(q1)
				yh[l+32] = sc[is+2] * float32(q2)
				yh[l+64] = sc[is+4] * float32(q3)
				yh[l+96] = sc[is+6] * float32(q4)
			}
		}
	}
	return nil
}
