package quant

import "math"

// IEEE 754 binary16 ("f16") and bfloat16 ("bf16") conversions, bit-exact
// with ggml (ggml-impl.h):
//
//   - f16 -> f32 and bf16 -> f32 are exact.
//   - f32 -> f16 and f32 -> bf16 round to nearest, ties to even; nothing is
//     flushed to zero (f16 subnormals are produced, f32 subnormals survive in
//     bf16), and a finite value too large for f16 becomes ±inf.
//   - NaN stays NaN: f32 -> f16 gives the quiet NaN 0x7e00 with the input's
//     sign, f32 -> bf16 keeps the upper 16 bits and sets the quiet bit
//     (bits>>16 | 0x40), f16 -> f32 keeps the payload and sets the quiet bit.
//
// For every input but NaN, ggml's portable C conversion, F16C and NEON agree
// with each other and with these functions. For NaN they follow the portable
// code, which ggml's base library (its quantizers and GGUF conversion) uses
// on x86-64 builds without F16C, such as the prebuilt libraries checked in
// golden_test.go; hardware conversions would keep more of a NaN's payload.

// FP16ToFloat32 converts the IEEE half-precision value with bits h to float32.
// Every f16 value is exactly representable; a NaN becomes a quiet NaN that
// keeps its payload.
func FP16ToFloat32(h uint16) float32 {
	if fp16IsNormal(h) {
		return fp16NormalToFloat32(h)
	}
	return fp16SpecialToFloat32(h)
}

// fp16IsNormal reports whether h is a normal (finite, non-zero,
// non-subnormal) f16. It and fp16NormalToFloat32 are small enough to be
// inlined into the row loops, where nearly every value takes this path.
func fp16IsNormal(h uint16) bool {
	e := h & 0x7c00
	return e != 0 && e != 0x7c00
}

// fp16NormalToFloat32 converts a normal f16: it shifts exponent and
// mantissa into place and rebiases the exponent from 15 to 127.
func fp16NormalToFloat32(h uint16) float32 {
	return math.Float32frombits(uint32(h&0x8000)<<16 | (uint32(h&0x7fff)<<13 + (127-15)<<23))
}

// fp16SpecialToFloat32 converts ±0, subnormals, ±inf and NaN.
func fp16SpecialToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	mant := uint32(h & 0x3ff)
	if h&0x7c00 == 0 {
		// mant * 2^-24, exact in float32.
		return math.Float32frombits(sign | math.Float32bits(float32(mant)*(1.0/(1<<24))))
	}
	if mant != 0 {
		return math.Float32frombits(sign | 0x7fc00000 | mant<<13)
	}
	return math.Float32frombits(sign | 0x7f800000)
}

// Float32ToFP16 converts f to IEEE half-precision bits, rounding to nearest
// with ties to even. Values at or beyond 65520 in magnitude become ±inf,
// values below 2^-14 become subnormal (or ±0), and NaN becomes 0x7e00 with
// f's sign, as in ggml.
func Float32ToFP16(f float32) uint16 {
	b := math.Float32bits(f)
	if float32ToFP16IsNormal(b) {
		return float32ToFP16Normal(b)
	}
	return float32ToFP16Special(b)
}

// float32ToFP16IsNormal reports whether the float32 with bits b has an f16
// exponent of 1 to 30 before rounding (2^-14 <= |f| < 2^16).
func float32ToFP16IsNormal(b uint32) bool {
	return (b>>23)&0xff-113 < 30
}

// float32ToFP16Normal converts the float32 with bits b for which
// float32ToFP16IsNormal holds: it rebiases the exponent from 127 to 15 and
// rounds the 13 dropped mantissa bits to nearest even; a carry moves into
// the exponent, up to inf at the top.
func float32ToFP16Normal(b uint32) uint16 {
	v := b&0x7fffffff - (127-15)<<23
	v = (v + 0x0fff + (v>>13)&1) >> 13
	return uint16(b>>16)&0x8000 | uint16(v)
}

// float32ToFP16Special converts the float32 with bits b whose f16 result is
// zero, subnormal, infinite or NaN.
func float32ToFP16Special(b uint32) uint16 {
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	if exp >= 127+16 {
		return sign | 0x7c00 // |f| >= 2^16
	}
	// |f| < 2^-14. The value is m * 2^(exp-150) with the hidden bit in
	// m, and the f16 subnormal unit is 2^-24, so the result is
	// m >> (126-exp), rounded to nearest even; it may round up to the
	// smallest normal, 0x0400, which is right. float32 subnormals
	// (exp == 0) are far below half the smallest f16 subnormal.
	if exp == 0 {
		return sign
	}
	m := mant | 0x800000
	shift := uint32(126 - exp) // >= 14
	if shift > 24 {
		return sign // below half of 2^-24
	}
	h := m >> shift
	rem := m & (1<<shift - 1)
	half := uint32(1) << (shift - 1)
	if rem > half || rem == half && h&1 != 0 {
		h++
	}
	return sign | uint16(h)
}

// BF16ToFloat32 converts the bfloat16 value with bits h to float32; this is
// exact and keeps NaN payloads.
func BF16ToFloat32(h uint16) float32 {
	return math.Float32frombits(uint32(h) << 16)
}

// Float32ToBF16 converts f to bfloat16 bits as ggml does: NaN becomes a quiet
// NaN (upper 16 bits with bit 6 set), anything else rounds to nearest with
// ties to even on the upper 16 bits (so large finite values may round to
// ±inf); subnormals are kept, not flushed.
func Float32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}
