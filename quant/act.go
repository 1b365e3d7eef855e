package quant

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Activation formats.
//
// The matmul kernels multiply quantized weights by activations that are
// quantized too, as ggml's CPU backend does: a Q4_0 or Q8_0 weight row is
// multiplied by a Q8_0 activation row and a Q6_K weight row by a Q8_K
// activation row, with int8 dot products and one float multiply per block.
// Float weights (F32, F16, BF16) take F32 activations. ActType says which
// format a weight type wants and QuantizeAct produces it.
//
// Q8_K is ggml's internal activation format for k-quants; it never appears
// in model files (Type.Supported is false for it, and Quantize/Dequantize
// refuse it) but QuantizeQ8_K and DequantizeQ8_K convert it:
//
//	Q8_K (292 bytes / 256 elements): d f32 | qs [256]int8 | bsums [16]int16
//
// where element i is d*qs[i] and bsums[j] is the sum of qs[16j:16j+16].
// The x86 Q6_K kernels read bsums, so a Q8_K row must carry them as
// QuantizeRowQ8_K writes them, and, as for Q8_0, quants in [-127, 127].

// q8KBytes is the size of one Q8_K block.
const q8KBytes = 4 + QK_K + 2*QK_K/16

// ActType returns the activation format that weights of type wt are
// multiplied with: Q8_0 for Q4_0 and Q8_0, Q8_K for Q6_K, and F32 for F32,
// F16 and BF16. It returns an error for any other type.
func ActType(wt Type) (Type, error) {
	switch wt {
	case Q4_0, Q8_0:
		return Q8_0, nil
	case Q6_K:
		return Q8_K, nil
	case F32, F16, BF16:
		return F32, nil
	}
	return 0, fmt.Errorf("quant: no matmul kernels for %s weights", wt)
}

// ActRowSize returns the number of bytes of one activation row of k
// elements for weights of type wt (RowSize(ActType(wt), k)).
func ActRowSize(wt Type, k int) (int, error) {
	at, err := ActType(wt)
	if err != nil {
		return 0, err
	}
	n, err := RowSize(at, int64(k))
	if err != nil {
		return 0, err
	}
	return int(n), nil
}

// QuantizeAct converts one or more activation rows (len(src) values, a
// whole number of blocks) to ActType(wt) and writes them to the front of
// dst: Q8_0 through QuantizeRowQ8_0, Q8_K through QuantizeRowQ8_K, F32 as
// little-endian float32 bytes. Since every activation format has blocks
// that never straddle rows of a whole number of blocks, several rows may be
// converted in one call when they are contiguous.
func QuantizeAct(wt Type, dst []byte, src []float32) error {
	at, err := ActType(wt)
	if err != nil {
		return err
	}
	switch at {
	case Q8_0:
		return QuantizeRowQ8_0(dst, src)
	case Q8_K:
		return QuantizeRowQ8_K(dst, src)
	}
	return QuantizeF32(dst, src)
}

// QuantizeRowQ8_0 quantizes src to Q8_0 in dst exactly as QuantizeQ8_0
// does (bit for bit, NaN and infinities included), with the SIMD kernel of
// the active path where there is one. It is the activation quantizer of the
// Q4_0 and Q8_0 matmuls.
func QuantizeRowQ8_0(dst []byte, src []float32) error {
	nb, err := checkQuantize(Q8_0, dst, src)
	if err != nil {
		return err
	}
	if nb > 0 {
		active().quantQ8_0(dst[:nb*34], src)
	}
	return nil
}

// QuantizeRowQ8_K quantizes src to Q8_K in dst; it is QuantizeQ8_K with the
// SIMD kernel of the active path where there is one.
func QuantizeRowQ8_K(dst []byte, src []float32) error {
	nb, err := checkQ8K(dst, len(src))
	if err != nil {
		return err
	}
	if nb > 0 {
		active().quantQ8_K(dst[:nb*q8KBytes], src)
	}
	return nil
}

// QuantizeQ8_K quantizes src to Q8_K blocks in dst as ggml's
// quantize_row_q8_K_ref does: per block of 256 the value of largest
// magnitude max (the first, on ties) sets iscale = -127/max, each element
// becomes min(127, nearest_int(iscale*x)), d = 1/iscale, and bsums holds
// the sums of the 16 groups of 16. An all-zero block has d = 0 and zero
// quants and sums (ggml leaves its sums unset).
func QuantizeQ8_K(dst []byte, src []float32) error {
	nb, err := checkQ8K(dst, len(src))
	if err != nil {
		return err
	}
	quantizeQ8KGeneric(dst[:nb*q8KBytes], src)
	return nil
}

func checkQ8K(dst []byte, n int) (int, error) {
	if n%QK_K != 0 {
		return 0, fmt.Errorf("quant: quantize q8_K: %d elements is not a whole number of %d-element blocks", n, QK_K)
	}
	nb := n / QK_K
	if need := nb * q8KBytes; len(dst) < need {
		return 0, fmt.Errorf("quant: quantize q8_K: dst has %d bytes, %d elements need %d", len(dst), n, need)
	}
	return nb, nil
}

// quantizeQ8KGeneric is QuantizeQ8_K without the checks; len(dst) is
// exactly len(src)/256*292.
func quantizeQ8KGeneric(dst []byte, src []float32) {
	nb := len(src) / QK_K
	for i := range nb {
		x := src[i*QK_K : i*QK_K+QK_K : i*QK_K+QK_K]
		y := dst[i*q8KBytes : i*q8KBytes+q8KBytes : i*q8KBytes+q8KBytes]
		var amax, vmax float32
		for _, v := range x {
			if a := abs32(v); a > amax {
				amax = a
				vmax = v
			}
		}
		if amax == 0 {
			clear(y)
			continue
		}
		iscale := -127 / vmax
		qs := y[4 : 4+QK_K]
		for j, v := range x {
			qs[j] = byte(int8(min(127, nearestInt(float32(iscale*v)))))
		}
		for j := range QK_K / 16 {
			var s int32
			for _, q := range qs[16*j : 16*j+16] {
				s += int32(int8(q))
			}
			binary.LittleEndian.PutUint16(y[4+QK_K+2*j:], uint16(int16(s)))
		}
		binary.LittleEndian.PutUint32(y, math.Float32bits(1/iscale))
	}
}

// DequantizeQ8_K expands Q8_K blocks from src into dst: x = d*q.
func DequantizeQ8_K(dst []float32, src []byte) error {
	if len(dst)%QK_K != 0 {
		return fmt.Errorf("quant: dequantize q8_K: %d elements is not a whole number of %d-element blocks", len(dst), QK_K)
	}
	nb := len(dst) / QK_K
	if need := nb * q8KBytes; len(src) < need {
		return fmt.Errorf("quant: dequantize q8_K: src has %d bytes, %d elements need %d", len(src), len(dst), need)
	}
	for i := range nb {
		b := src[i*q8KBytes : i*q8KBytes+q8KBytes : i*q8KBytes+q8KBytes]
		d := math.Float32frombits(binary.LittleEndian.Uint32(b))
		y := dst[i*QK_K : i*QK_K+QK_K : i*QK_K+QK_K]
		for j, q := range b[4 : 4+QK_K] {
			y[j] = d * float32(int8(q))
		}
	}
	return nil
}
