package quant

import (
	"math"
	"runtime"
	"sync"
	"testing"
)

func isNaN32(f float32) bool { return f != f }

func isNaN16(h uint16) bool { return h&0x7c00 == 0x7c00 && h&0x3ff != 0 }

func TestFP16KnownValues(t *testing.T) {
	tests := []struct {
		h uint16
		f float32
	}{
		{0x0000, 0},
		{0x3c00, 1},
		{0xbc00, -1},
		{0x4000, 2},
		{0x3800, 0.5},
		{0x3555, 0.333251953125},
		{0x7bff, 65504},
		{0xfbff, -65504},
		{0x0400, 1.0 / (1 << 14)},       // smallest normal
		{0x03ff, 1023.0 / (1 << 24)},    // largest subnormal
		{0x0001, 1.0 / (1 << 24)},       // smallest subnormal
		{0x8001, -1.0 / (1 << 24)},      // negative subnormal
		{0x7c00, float32(math.Inf(1))},  // +inf
		{0xfc00, float32(math.Inf(-1))}, // -inf
		{0x5640, 100},                   // 1.5625 * 64
		{0xc8d0, -9.625},                // -(1 + 0.203125) * 8
		{0x3bff, 1 - 1.0/(1<<11)},       // largest below 1
		{0x3c01, 1 + 1.0/(1<<10)},       // smallest above 1
		{0x1400, 1.0 / (1 << 10)},       // 2^-10
		{0x0200, 1.0 / (1 << 15)},       // subnormal 2^-15
		{0x4248, 3.140625},              // pi in f16
		{0x57d0, 125},                   // integer
		{0xd7f0, -127},                  // integer
		{0x2e66, 0.0999755859375},       // 0.1 in f16
		{0x4c00, 16},                    // power of two
		{0x7800, 32768},                 // 2^15
		{0x0002, 2.0 / (1 << 24)},       // subnormal
		{0x8400, -1.0 / (1 << 14)},      // -smallest normal
		{0x3e00, 1.5},                   // 1.5
		{0x4900, 10},                    // 10
	}
	for _, tc := range tests {
		if got := FP16ToFloat32(tc.h); got != tc.f {
			t.Errorf("FP16ToFloat32(%#04x) = %g, want %g", tc.h, got, tc.f)
		}
		if got := Float32ToFP16(tc.f); got != tc.h {
			t.Errorf("Float32ToFP16(%g) = %#04x, want %#04x", tc.f, got, tc.h)
		}
	}
	// Signed zero.
	if got := FP16ToFloat32(0x8000); got != 0 || !math.Signbit(float64(got)) {
		t.Errorf("FP16ToFloat32(0x8000) = %g, want -0", got)
	}
	if got := Float32ToFP16(float32(math.Copysign(0, -1))); got != 0x8000 {
		t.Errorf("Float32ToFP16(-0) = %#04x, want 0x8000", got)
	}
}

// TestFP16RoundTripExhaustive converts every f16 value to float32 and back.
func TestFP16RoundTripExhaustive(t *testing.T) {
	for i := range 1 << 16 {
		h := uint16(i)
		f := FP16ToFloat32(h)
		back := Float32ToFP16(f)
		if isNaN16(h) {
			if !isNaN32(f) {
				t.Fatalf("FP16ToFloat32(%#04x) = %g, want NaN", h, f)
			}
			// ggml canonicalises NaN to 0x7e00 with the sign kept.
			if want := h&0x8000 | 0x7e00; back != want {
				t.Fatalf("round trip of NaN %#04x = %#04x, want %#04x", h, back, want)
			}
			// The payload survives f16 -> f32, quieted.
			if bits := math.Float32bits(f); bits&0x7fffff != uint32(h&0x3ff)<<13|0x400000 {
				t.Fatalf("FP16ToFloat32(%#04x) = %#08x, payload lost", h, bits)
			}
			continue
		}
		if back != h {
			t.Fatalf("round trip %#04x -> %g -> %#04x", h, f, back)
		}
		// The value is exactly the one IEEE 754 defines.
		if want := f16Value(h); float64(f) != want {
			t.Fatalf("FP16ToFloat32(%#04x) = %g, want %g", h, f, want)
		}
	}
}

// f16Value computes the value of a finite or infinite f16 from its
// definition.
func f16Value(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	mant := float64(h & 0x3ff)
	switch exp {
	case 0:
		return sign * mant * math.Ldexp(1, -24)
	case 0x1f:
		return math.Inf(int(sign))
	}
	return sign * (1 + mant/1024) * math.Ldexp(1, exp-15)
}

// f16Reference rounds f to f16 by brute force: it finds the two f16
// neighbours of f by binary search and takes the nearer, ties to the even
// one. float64 holds f, the neighbours and their differences exactly.
func f16Reference(f float32) uint16 {
	if isNaN32(f) {
		return uint16(math.Float32bits(f)>>16)&0x8000 | 0x7e00
	}
	var sign uint16
	if math.Signbit(float64(f)) {
		sign = 0x8000
		f = -f
	}
	x := float64(f)
	// Past 65504 the next step of the f16 grid would be 65536; from the
	// midpoint 65520 up the result is inf.
	if x >= 65520 {
		return sign | 0x7c00
	}
	// Largest lo in [0, 0x7bff] with f16Value(lo) <= x.
	lo, hi := 0, 0x7bff
	for lo < hi {
		m := (lo + hi + 1) / 2
		if f16Value(uint16(m)) <= x {
			lo = m
		} else {
			hi = m - 1
		}
	}
	return sign | f16Fast(f, uint16(lo))
}

func TestFloat32ToFP16Rounding(t *testing.T) {
	f := func(bits uint32) float32 { return math.Float32frombits(bits) }
	tests := []struct {
		name string
		in   float32
		want uint16
	}{
		{"65504 exact", 65504, 0x7bff},
		{"65519 rounds down", 65519, 0x7bff},
		{"65519.996 rounds down", f(0x477fefff), 0x7bff},
		{"65520 tie goes to inf", 65520, 0x7c00},
		{"-65520 tie goes to -inf", -65520, 0xfc00},
		{"1e6 overflows", 1e6, 0x7c00},
		{"max float32 overflows", math.MaxFloat32, 0x7c00},
		{"+inf", float32(math.Inf(1)), 0x7c00},
		{"-inf", float32(math.Inf(-1)), 0xfc00},
		{"NaN", float32(math.NaN()), 0x7e00},
		{"-NaN", f(0xffc00001), 0xfe00},
		{"signalling NaN", f(0x7f800001), 0x7e00},
		// 1 + 2^-11 is halfway between 1 and 1+2^-10: ties to even (1).
		{"tie to even down", 1 + 1.0/(1<<11), 0x3c00},
		// 1 + 3*2^-11 is halfway between 1+2^-10 (odd) and 1+2^-9: up.
		{"tie to even up", 1 + 3.0/(1<<11), 0x3c02},
		{"just above tie", f(0x3f801001), 0x3c01},
		{"just below tie", f(0x3f800fff), 0x3c00},
		// Subnormal results.
		{"2^-24 exact", 1.0 / (1 << 24), 0x0001},
		{"2^-25 tie to zero", 1.0 / (1 << 25), 0x0000},
		{"-2^-25 tie to -0", -1.0 / (1 << 25), 0x8000},
		{"just above 2^-25", f(0x33000001), 0x0001},
		{"1.5*2^-24 tie to even 2", 1.5 / (1 << 24), 0x0002},
		{"2.5*2^-24 tie to even 2", 2.5 / (1 << 24), 0x0002},
		{"3*2^-24", 3.0 / (1 << 24), 0x0003},
		{"largest subnormal rounds up to min normal", 1023.5 / (1 << 24), 0x0400},
		{"1e-8 is subnormal", 1e-8, 0x0000},
		{"6e-8", 6e-8, 0x0001},
		{"1e-5", 1e-5, 0x00a8},
		{"float32 subnormal becomes 0", f(0x00000001), 0x0000},
		{"negative float32 subnormal becomes -0", f(0x80400000), 0x8000},
		{"tiny normal becomes 0", 1e-30, 0x0000},
		// Carry out of the mantissa into the exponent.
		{"1.99951171875 rounds to 2", 1.99951171875 + 1.0/(1<<13), 0x4000},
		{"0.1", 0.1, 0x2e66},
		{"1/3", 1.0 / 3, 0x3555},
	}
	for _, tc := range tests {
		if got := Float32ToFP16(tc.in); got != tc.want {
			t.Errorf("%s: Float32ToFP16(%g [%#08x]) = %#04x, want %#04x", tc.name, tc.in, math.Float32bits(tc.in), got, tc.want)
		}
		if ref := f16Reference(tc.in); ref != tc.want {
			t.Errorf("%s: reference gives %#04x, table says %#04x", tc.name, ref, tc.want)
		}
	}
}

// TestFloat32ToFP16Midpoints checks every rounding decision: for each pair of
// neighbouring f16 values, the exact midpoint and the float32 values one ulp
// either side of it.
func TestFloat32ToFP16Midpoints(t *testing.T) {
	for h := uint16(0); h < 0x7c00; h++ {
		lo := f16Value(h)
		hi := 65536.0
		if h+1 < 0x7c00 {
			hi = f16Value(h + 1)
		}
		mid := float32((lo + hi) / 2) // exact: f16 midpoints fit in float32
		if float64(mid) != (lo+hi)/2 {
			t.Fatalf("midpoint of %#04x not exact", h)
		}
		bits := math.Float32bits(mid)
		for _, b := range []uint32{bits - 1, bits, bits + 1} {
			for _, neg := range []uint32{0, 1 << 31} {
				in := math.Float32frombits(b | neg)
				got := Float32ToFP16(in)
				want := f16Fast(in, h)
				if got != want {
					t.Fatalf("Float32ToFP16(%g [%#08x]) = %#04x, want %#04x", in, b|neg, got, want)
				}
			}
		}
	}
}

// f16Fast is f16Reference specialised to inputs within one f16 step of h,
// so that the midpoint sweep stays fast.
func f16Fast(f float32, h uint16) uint16 {
	var sign uint16
	if f < 0 {
		sign = 0x8000
		f = -f
	}
	x := float64(f)
	lo, loV := h, f16Value(h)
	if x < loV {
		lo = h - 1
		loV = f16Value(lo)
	}
	hiV := 65536.0
	if lo+1 < 0x7c00 {
		hiV = f16Value(lo + 1)
	}
	// All values here are exact in float64.
	switch dl, dh := x-loV, hiV-x; {
	case dl < dh:
		return sign | lo
	case dl > dh:
		return sign | (lo + 1)
	case lo&1 == 0:
		return sign | lo
	}
	return sign | (lo + 1)
}

func TestFloat32ToFP16Random(t *testing.T) {
	r := newRNG(1)
	n := 20000
	if testing.Short() {
		n = 2000
	}
	for range n {
		// Exponents around the f16 range, random mantissas.
		exp := uint32(100 + r.intn(50))
		bits := uint32(r.next())&0x807fffff | exp<<23
		f := math.Float32frombits(bits)
		if got, want := Float32ToFP16(f), f16Reference(f); got != want {
			t.Fatalf("Float32ToFP16(%g [%#08x]) = %#04x, want %#04x", f, bits, got, want)
		}
	}
}

func TestBF16(t *testing.T) {
	f := func(bits uint32) float32 { return math.Float32frombits(bits) }
	tests := []struct {
		name string
		in   float32
		want uint16
	}{
		{"1", 1, 0x3f80},
		{"-2", -2, 0xc000},
		{"0", 0, 0x0000},
		{"-0", float32(math.Copysign(0, -1)), 0x8000},
		{"+inf", float32(math.Inf(1)), 0x7f80},
		{"-inf", float32(math.Inf(-1)), 0xff80},
		{"quiet NaN", f(0x7fc00000), 0x7fc0},
		{"signalling NaN is quietened", f(0x7f800001), 0x7fc0},
		{"NaN payload kept", f(0x7fa12345), 0x7fe1},
		{"negative NaN", f(0xff812345), 0xffc1},
		{"tie to even down", f(0x3f808000), 0x3f80},
		{"tie to even up", f(0x3f818000), 0x3f82},
		{"above tie", f(0x3f808001), 0x3f81},
		{"below tie", f(0x3f807fff), 0x3f80},
		{"max float rounds to inf", math.MaxFloat32, 0x7f80},
		{"subnormal kept", f(0x00010000), 0x0001},
		{"subnormal rounds", f(0x00018000), 0x0002},
		{"tiny subnormal to 0", f(0x00000001), 0x0000},
		{"pi", math.Pi, 0x4049},
	}
	for _, tc := range tests {
		if got := Float32ToBF16(tc.in); got != tc.want {
			t.Errorf("%s: Float32ToBF16(%#08x) = %#04x, want %#04x", tc.name, math.Float32bits(tc.in), got, tc.want)
		}
	}
	// bf16 -> f32 is exact and round-trips every non-NaN value.
	for i := range 1 << 16 {
		h := uint16(i)
		v := BF16ToFloat32(h)
		if math.Float32bits(v) != uint32(h)<<16 {
			t.Fatalf("BF16ToFloat32(%#04x) = %#08x", h, math.Float32bits(v))
		}
		back := Float32ToBF16(v)
		if isNaN32(v) {
			if back != h|0x40 {
				t.Fatalf("NaN %#04x -> %#04x, want %#04x", h, back, h|0x40)
			}
			continue
		}
		if back != h {
			t.Fatalf("bf16 round trip %#04x -> %#04x", h, back)
		}
	}
}

// sweepChunk hashes Float32ToFP16 and Float32ToBF16 over the 2^24 float32
// inputs whose top byte is c, exactly as testdata/ggmlref does with ggml's
// own conversions.
func sweepChunk(c uint32) uint64 {
	const basis, prime = 14695981039346656037, 1099511628211
	h := uint64(basis)
	for j := range uint32(1 << 24) {
		v := math.Float32frombits(c<<24 | j)
		h = (h ^ (uint64(Float32ToFP16(v)) | uint64(Float32ToBF16(v))<<16)) * prime
	}
	return h
}

// sweepChunks hashes the given chunks in parallel.
func sweepChunks(chunks []uint32) map[uint32]uint64 {
	var mu sync.Mutex
	var wg sync.WaitGroup
	out := make(map[uint32]uint64, len(chunks))
	next := make(chan uint32, len(chunks))
	for _, c := range chunks {
		next <- c
	}
	close(next)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for c := range next {
				h := sweepChunk(c)
				mu.Lock()
				out[c] = h
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return out
}
