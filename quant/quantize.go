package quant

import (
	"encoding/binary"
	"fmt"
	"math"
)

// The quantizers below reproduce ggml's reference quantizers
// (quantize_row_*_ref in ggml-quants.c) bit for bit, as ggml's CPU builds
// run them: every operation in float32, rounded after each step, with no
// fused multiply-add. Go may fuse x*y+z into one FMA on some architectures
// (arm64, or amd64 with GOAMD64=v3) unless the product is converted
// explicitly, which is why products that feed a sum are written
// float32(x*y) here. Inputs ggml leaves undefined (NaN, ±inf, values whose
// conversion to an integer overflows) are given the results that ggml's
// x86-64 builds produce, where a float-to-integer conversion that overflows
// yields 0x80000000 before it is narrowed.

// groupMaxEps is ggml's GROUP_MAX_EPS: a group whose largest magnitude is
// below it counts as all zero.
const groupMaxEps = float32(1e-15)

// Quantize converts len(src) float32 values to type t and writes the
// RowSize(t, len(src)) bytes into the front of dst. t must be F32, F16, BF16,
// Q4_0, Q8_0 or Q6_K; len(src) must be a whole number of t's blocks and dst
// must be large enough. Bytes of dst past the row are left untouched.
func Quantize(t Type, dst []byte, src []float32) error {
	switch t {
	case F32:
		return QuantizeF32(dst, src)
	case F16:
		return QuantizeF16(dst, src)
	case BF16:
		return QuantizeBF16(dst, src)
	case Q4_0:
		return QuantizeQ4_0(dst, src)
	case Q8_0:
		return QuantizeQ8_0(dst, src)
	case Q6_K:
		return QuantizeQ6_K(dst, src)
	}
	return fmt.Errorf("quant: quantize: %s is not supported", t)
}

// checkQuantize validates the lengths for quantizing len(src) elements of t
// into dst and returns the number of blocks.
func checkQuantize(t Type, dst []byte, src []float32) (int, error) {
	bs, ts := t.BlockSize(), t.TypeSize()
	if len(src)%bs != 0 {
		return 0, fmt.Errorf("quant: quantize %s: %d elements is not a whole number of %d-element blocks", t, len(src), bs)
	}
	nb := len(src) / bs
	if need := nb * ts; len(dst) < need {
		return 0, fmt.Errorf("quant: quantize %s: dst has %d bytes, %d elements need %d", t, len(dst), len(src), need)
	}
	return nb, nil
}

// QuantizeF32 stores src as little-endian float32 in dst (4 bytes each).
func QuantizeF32(dst []byte, src []float32) error {
	if _, err := checkQuantize(F32, dst, src); err != nil {
		return err
	}
	for i, v := range src {
		binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
	}
	return nil
}

// QuantizeF16 stores src as little-endian IEEE half precision in dst (2 bytes
// each), rounding as Float32ToFP16 does.
func QuantizeF16(dst []byte, src []float32) error {
	if _, err := checkQuantize(F16, dst, src); err != nil {
		return err
	}
	for i, v := range src {
		var h uint16
		if b := math.Float32bits(v); float32ToFP16IsNormal(b) {
			h = float32ToFP16Normal(b)
		} else {
			h = float32ToFP16Special(b)
		}
		binary.LittleEndian.PutUint16(dst[2*i:], h)
	}
	return nil
}

// QuantizeBF16 stores src as little-endian bfloat16 in dst (2 bytes each),
// rounding as Float32ToBF16 does.
func QuantizeBF16(dst []byte, src []float32) error {
	if _, err := checkQuantize(BF16, dst, src); err != nil {
		return err
	}
	for i, v := range src {
		binary.LittleEndian.PutUint16(dst[2*i:], Float32ToBF16(v))
	}
	return nil
}

// abs32 is C's fabsf.
func abs32(x float32) float32 {
	return math.Float32frombits(math.Float32bits(x) &^ (1 << 31))
}

// toInt8 is C's (int8_t)f as x86-64 compilers emit it: truncate toward zero
// to 32 bits (0x80000000 for NaN and out-of-range values), then keep the low
// byte.
func toInt8(f float32) int8 {
	if f >= -2147483648 && f < 2147483648 {
		return int8(int32(f))
	}
	return 0
}

// roundToInt8 is C's (int8_t)roundf(f) as x86-64 compilers emit it: round
// half away from zero, convert to 32 bits (0x80000000 for NaN and
// out-of-range values), keep the low byte. Within int32 range the fraction
// f - trunc(f) is exact in float32, so comparing it with ±0.5 rounds
// exactly as roundf does.
func roundToInt8(f float32) int8 {
	if f >= -2147483648 && f < 2147483648 {
		q := int32(f)
		if frac := f - float32(q); frac >= 0.5 {
			q++
		} else if frac <= -0.5 {
			q--
		}
		return int8(q)
	}
	return 0
}

// nearestInt is ggml's nearest_int: round to nearest, ties to even, by adding
// 1.5*2^23 and reading the mantissa. It is exact for |f| <= 4194303; beyond
// that it returns what ggml's release builds return.
func nearestInt(f float32) int32 {
	v := f + 12582912
	return int32(math.Float32bits(v)&0x007fffff) - 0x00400000
}

// QuantizeQ4_0 quantizes src to Q4_0 blocks in dst, bit-identical with
// ggml's quantize_row_q4_0_ref: per block of 32 the value of largest
// magnitude (the first, on ties) sets d = max/-8, and each element becomes
// min(15, int8(x/d + 8.5)).
func QuantizeQ4_0(dst []byte, src []float32) error {
	nb, err := checkQuantize(Q4_0, dst, src)
	if err != nil {
		return err
	}
	for i := range nb {
		x := src[i*QK4_0 : i*QK4_0+QK4_0 : i*QK4_0+QK4_0]
		y := dst[i*18 : i*18+18 : i*18+18]

		var amax, vmax float32
		for _, v := range x {
			if a := abs32(v); amax < a {
				amax = a
				vmax = v
			}
		}
		d := vmax / -8
		var id float32
		if d != 0 {
			id = 1 / d
		}
		binary.LittleEndian.PutUint16(y, Float32ToFP16(d))
		qs := y[2:18]
		for j := range 16 {
			x0 := float32(x[j] * id)
			x1 := float32(x[16+j] * id)
			xi0 := min(15, int32(toInt8(x0+8.5)))
			xi1 := min(15, int32(toInt8(x1+8.5)))
			qs[j] = uint8(xi0) | uint8(xi1)<<4
		}
	}
	return nil
}

// QuantizeQ8_0 quantizes src to Q8_0 blocks in dst, bit-identical with
// ggml's quantize_row_q8_0_ref: per block of 32, d = max|x|/127 and each
// element becomes roundf(x/d) (via x*(1/d)).
func QuantizeQ8_0(dst []byte, src []float32) error {
	nb, err := checkQuantize(Q8_0, dst, src)
	if err != nil {
		return err
	}
	for i := range nb {
		x := src[i*QK8_0 : i*QK8_0+QK8_0 : i*QK8_0+QK8_0]
		y := dst[i*34 : i*34+34 : i*34+34]

		var amax float32
		for _, v := range x {
			// ggml's MAX(amax, fabsf(v)), NaN behaviour included.
			if a := abs32(v); !(amax > a) {
				amax = a
			}
		}
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		binary.LittleEndian.PutUint16(y, Float32ToFP16(d))
		qs := y[2:34]
		for j, v := range x {
			qs[j] = byte(roundToInt8(float32(v * id)))
		}
	}
	return nil
}

// QuantizeQ6_K quantizes src to Q6_K super-blocks in dst, bit-identical with
// ggml's quantize_row_q6_K_ref: each sub-block of 16 gets its own scale from
// a small search that minimises the x²-weighted squared error, the 16 scales
// are quantized to int8 against the super-block scale d, and the weights are
// then requantized to 6 bits against their quantized scales.
func QuantizeQ6_K(dst []byte, src []float32) error {
	nb, err := checkQuantize(Q6_K, dst, src)
	if err != nil {
		return err
	}
	var (
		L      [QK_K]int8
		scales [QK_K / 16]float32
	)
	for i := range nb {
		x := src[i*QK_K : i*QK_K+QK_K : i*QK_K+QK_K]
		y := dst[i*210 : i*210+210 : i*210+210]

		var maxScale, maxAbsScale float32
		for ib := range QK_K / 16 {
			scale := makeQXQuants6(x[16*ib:16*ib+16], L[16*ib:16*ib+16])
			scales[ib] = scale
			if a := abs32(scale); a > maxAbsScale {
				maxAbsScale = a
				maxScale = scale
			}
		}

		if maxAbsScale < groupMaxEps {
			clear(y)
			continue
		}

		iscale := -128 / maxScale
		d16 := Float32ToFP16(1 / iscale)
		binary.LittleEndian.PutUint16(y[208:], d16)
		sc := y[192:208]
		for ib := range QK_K / 16 {
			sc[ib] = byte(int8(min(127, nearestInt(float32(iscale*scales[ib])))))
		}

		dd := FP16ToFloat32(d16)
		for j := range QK_K / 16 {
			d := float32(dd * float32(int8(sc[j])))
			if d == 0 {
				// ggml keeps make_qx_quants' levels for this sub-block;
				// they dequantize to 0 all the same.
				continue
			}
			for ii := range 16 {
				l := nearestInt(x[16*j+ii] / d)
				l = max(-32, min(31, l))
				L[16*j+ii] = int8(l + 32)
			}
		}

		ql := y[0:128]
		qh := y[128:192]
		for h := range 2 {
			Lh := L[128*h : 128*h+128]
			qlh := ql[64*h : 64*h+64]
			qhh := qh[32*h : 32*h+32]
			for l := range 32 {
				q1 := uint8(Lh[l])
				q2 := uint8(Lh[l+32])
				q3 := uint8(Lh[l+64])
				q4 := uint8(Lh[l+96])
				qlh[l] = q1&0xf | (q3&0xf)<<4
				qlh[l+32] = q2&0xf | (q4&0xf)<<4
				qhh[l] = q1>>4 | (q2>>4)<<2 | (q3>>4)<<4 | (q4>>4)<<6
			}
		}
	}
	return nil
}

// makeQXQuants6 is ggml's make_qx_quants(16, 32, x, L, 1, NULL), the
// per-sub-block search of Q6_K: levels l in [-32, 31] stored as l+32 in L,
// weights x², and the scale is refined over 18 trial inverse scales
// -(32 + 0.1*is)/max, is = -9..9 except 0, keeping the one that maximises
// (Σwxl)²/Σwl². It returns the scale.
func makeQXQuants6(x []float32, L []int8) float32 {
	const nmax = 32
	x = x[:16:16]
	L = L[:16:16]

	var vmax, amax float32
	for _, v := range x {
		if a := abs32(v); a > amax {
			amax = a
			vmax = v
		}
	}
	if amax < groupMaxEps {
		clear(L)
		return 0
	}

	iscale := -nmax / vmax
	var sumlx, suml2 float32
	for i, v := range x {
		l := max(-nmax, min(nmax-1, nearestInt(float32(iscale*v))))
		L[i] = int8(l + nmax)
		w := float32(v * v)
		fl := float32(l)
		sumlx += float32(float32(w*v) * fl)
		suml2 += float32(float32(w*fl) * fl)
	}
	var scale float32
	if suml2 != 0 {
		scale = sumlx / suml2
	}
	best := float32(scale * sumlx)
	for is := int32(-9); is <= 9; is++ {
		if is == 0 {
			continue
		}
		iscale = -(nmax + float32(0.1*float32(is))) / vmax
		sumlx, suml2 = 0, 0
		for _, v := range x {
			l := max(-nmax, min(nmax-1, nearestInt(float32(iscale*v))))
			w := float32(v * v)
			fl := float32(l)
			sumlx += float32(float32(w*v) * fl)
			suml2 += float32(float32(w*fl) * fl)
		}
		if suml2 > 0 && float32(sumlx*sumlx) > float32(best*suml2) {
			for i, v := range x {
				l := max(-nmax, min(nmax-1, nearestInt(float32(iscale*v))))
				L[i] = int8(l + nmax)
			}
			scale = sumlx / suml2
			best = float32(scale * sumlx)
		}
	}
	return scale
}

// Encode returns src in type t: a new buffer of RowSize(t, len(src))
// bytes holding Quantize's output.
func Encode(t Type, src []float32) ([]byte, error) {
	n, err := RowSize(t, int64(len(src)))
	if err != nil {
		return nil, err
	}
	buf := make([]byte, n)
	if err := Quantize(t, buf, src); err != nil {
		return nil, err
	}
	return buf, nil
}
