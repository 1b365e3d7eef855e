package quant

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

func quantizeT(t *testing.T, typ Type, x []float32) []byte {
	t.Helper()
	n, err := RowSize(typ, int64(len(x)))
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, n)
	if err := Quantize(typ, b, x); err != nil {
		t.Fatalf("Quantize(%s): %v", typ, err)
	}
	return b
}

func dequantizeT(t *testing.T, typ Type, b []byte, n int) []float32 {
	t.Helper()
	y := make([]float32, n)
	if err := Dequantize(typ, y, b); err != nil {
		t.Fatalf("Dequantize(%s): %v", typ, err)
	}
	return y
}

// TestQuantizeKnownBlocks checks blocks whose bytes were worked out by hand.
func TestQuantizeKnownBlocks(t *testing.T) {
	var (
		q4a, q4b, q4c, q8a [32]float32
	)
	// Q4_0 block A: x[j] = j-8 and x[16+j] = (j-8)/2 for j < 16.
	// The largest magnitude is 8, first reached at x[0] = -8, so max = -8,
	// d = max/-8 = 1 (f16 0x3c00, stored 00 3c) and id = 1.
	// Low nibbles: x[j] + 8.5 = j + 0.5, truncated: j.
	// High nibbles: (j-8)/2 + 8.5 = j/2 + 4.5, truncated: 4 5 5 6 6 7 7 8 8 9 9 10 10 11 11 12.
	// qs[j] = low | high<<4.
	for j := range 16 {
		q4a[j] = float32(j - 8)
		q4a[16+j] = float32(j-8) / 2
	}
	// Q4_0 block B, sign of max: zeros except x[3] = 2 and x[20] = -1.
	// max = +2, so d = 2/-8 = -0.25 (f16 0xb400) and id = -4.
	// x[3]: 2*-4 + 8.5 = 0.5 -> 0; x[20]: -1*-4 + 8.5 = 12.5 -> 12;
	// zeros: 8.5 -> 8. qs[3] = 0 | 8<<4 = 0x80, qs[4] = 8 | 12<<4 = 0xc8,
	// every other qs = 0x88.
	q4b[3], q4b[20] = 2, -1
	// Q4_0 block C, ties of magnitude: x[0] = -3, x[1] = +3, rest 0.
	// The first wins (ggml keeps it unless a later |v| is strictly larger):
	// max = -3, d = 0.375 (f16 0x3600), id = 2.6666667 (float32), and
	// 3*id rounds to exactly 8 in float32. x[0]: -8 + 8.5 -> 0;
	// x[1]: 8 + 8.5 = 16.5 -> 16, clamped to 15. qs[0] = 0x80, qs[1] = 0x8f.
	q4c[0], q4c[1] = -3, 3
	// Q8_0 block: amax = 127 (x[0] = -127), d = 1 (f16 0x3c00), id = 1, and
	// q = roundf(x), which rounds halves away from zero:
	// -127 -> 0x81, 2.5 -> 3, -2.5 -> -3 (0xfd), 0.49999997 -> 0,
	// 0.5 -> 1, -0.5 -> -1 (0xff), 126.5 -> 127 (0x7f), 1.4 -> 1, 0 -> 0.
	copy(q8a[:], []float32{-127, 2.5, -2.5, 0.49999997, 0.5, -0.5, 126.5, 1.4})

	tests := []struct {
		name  string
		typ   Type
		x     []float32
		bytes []byte
		deq   []float32 // nil: not checked
	}{
		{
			name: "q4_0 ramp", typ: Q4_0, x: q4a[:],
			bytes: []byte{0x00, 0x3c,
				0x40, 0x51, 0x52, 0x63, 0x64, 0x75, 0x76, 0x87,
				0x88, 0x99, 0x9a, 0xab, 0xac, 0xbd, 0xbe, 0xcf},
			// Element j: (j-8)*1; element 16+j: (high-8)*1.
			deq: []float32{
				-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7,
				-4, -3, -3, -2, -2, -1, -1, 0, 0, 1, 1, 2, 2, 3, 3, 4},
		},
		{
			name: "q4_0 positive max", typ: Q4_0, x: q4b[:],
			bytes: []byte{0x00, 0xb4,
				0x88, 0x88, 0x88, 0x80, 0xc8, 0x88, 0x88, 0x88,
				0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88},
		},
		{
			name: "q4_0 first of equal magnitudes wins", typ: Q4_0, x: q4c[:],
			bytes: []byte{0x00, 0x36,
				0x80, 0x8f, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88,
				0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88},
		},
		{
			// All zero: max stays +0, so d = +0/-8 = -0 (f16 0x8000),
			// id = 0 and every quant is trunc(8.5) = 8.
			name: "q4_0 zeros", typ: Q4_0, x: make([]float32, 32),
			bytes: append([]byte{0x00, 0x80}, bytes.Repeat([]byte{0x88}, 16)...),
			deq:   make([]float32, 32),
		},
		{
			name: "q8_0 roundf", typ: Q8_0, x: q8a[:],
			bytes: append([]byte{0x00, 0x3c,
				0x81, 0x03, 0xfd, 0x00, 0x01, 0xff, 0x7f, 0x01},
				make([]byte, 24)...),
			deq: append([]float32{-127, 3, -3, 0, 1, -1, 127, 1}, make([]float32, 24)...),
		},
		{
			name: "q8_0 zeros", typ: Q8_0, x: make([]float32, 32),
			bytes: make([]byte, 34),
			deq:   make([]float32, 32),
		},
		{
			// A zero super-block is stored as 210 zero bytes.
			name: "q6_K zeros", typ: Q6_K, x: make([]float32, 256),
			bytes: make([]byte, 210),
			deq:   make([]float32, 256),
		},
		{
			name: "f16", typ: F16, x: []float32{1, -2, 65504, 1e-8},
			bytes: []byte{0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b, 0x00, 0x00},
			deq:   []float32{1, -2, 65504, 0},
		},
		{
			name: "bf16", typ: BF16, x: []float32{1, -2, math.Pi},
			bytes: []byte{0x80, 0x3f, 0x00, 0xc0, 0x49, 0x40},
			deq:   []float32{1, -2, 3.140625},
		},
		{
			name: "f32", typ: F32, x: []float32{1, -2},
			bytes: []byte{0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0},
			deq:   []float32{1, -2},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := quantizeT(t, tc.typ, tc.x)
			if !bytes.Equal(got, tc.bytes) {
				t.Fatalf("bytes\n got % x\nwant % x", got, tc.bytes)
			}
			y := dequantizeT(t, tc.typ, got, len(tc.x))
			if tc.deq != nil {
				for i := range y {
					if y[i] != tc.deq[i] {
						t.Fatalf("dequantized[%d] = %g, want %g (all: %v)", i, y[i], tc.deq[i], y)
					}
				}
			}
		})
	}
}

// TestQ4_0MaxSign checks that the stored scale takes the sign that maps the
// largest magnitude to quant 0, and that it is recovered exactly.
func TestQ4_0MaxSign(t *testing.T) {
	for _, m := range []float32{-5, 5, -0.001, 1e4} {
		x := make([]float32, 32)
		for i := range x {
			x[i] = m * float32(i%7) / 10 // all smaller than |m|
		}
		x[11] = m
		b := quantizeT(t, Q4_0, x)
		var blk BlockQ4_0
		if err := blk.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		if want := Float32ToFP16(m / -8); blk.D != want {
			t.Errorf("max %g: d = %#04x, want %#04x", m, blk.D, want)
		}
		if q := blk.Qs[11] & 0xf; q != 0 {
			t.Errorf("max %g: its quant is %d, want 0", m, q)
		}
		y := dequantizeT(t, Q4_0, b, 32)
		if rel := math.Abs(float64(y[11]-m) / float64(m)); rel > 1e-3 {
			t.Errorf("max %g dequantizes to %g", m, y[11])
		}
	}
}

// TestRoundTripBounds quantizes random rows and bounds the error of every
// element by the block's own scale.
func TestRoundTripBounds(t *testing.T) {
	r := newRNG(7)
	scales := []float32{1e-4, 0.02, 1, 300}
	for _, s := range scales {
		x := make([]float32, 4096)
		for i := range x {
			x[i] = r.normal() * s
		}
		x[5] = 6 * s // an outlier

		t.Run("q8_0", func(t *testing.T) {
			b := quantizeT(t, Q8_0, x)
			y := dequantizeT(t, Q8_0, b, len(x))
			for blk := range len(x) / 32 {
				xb, yb := x[32*blk:32*blk+32], y[32*blk:32*blk+32]
				var amax float32
				for _, v := range xb {
					amax = max(amax, abs32(v))
				}
				d := float64(amax) / 127
				d16 := float64(FP16ToFloat32(Float32ToFP16(float32(d))))
				// Rounding to the nearest level of step d gives at most d/2;
				// storing d as f16 moves level q by |q|*|d-d16| <= 127*|d-d16|.
				bound := d/2*(1+1e-6) + 127*math.Abs(d-d16)
				for i := range xb {
					if e := math.Abs(float64(xb[i] - yb[i])); e > bound {
						t.Fatalf("scale %g block %d elem %d: |%g - %g| = %g > %g", s, blk, i, xb[i], yb[i], e, bound)
					}
				}
			}
		})
		t.Run("q4_0", func(t *testing.T) {
			b := quantizeT(t, Q4_0, x)
			y := dequantizeT(t, Q4_0, b, len(x))
			for blk := range len(x) / 32 {
				xb, yb := x[32*blk:32*blk+32], y[32*blk:32*blk+32]
				var amax float32
				for _, v := range xb {
					amax = max(amax, abs32(v))
				}
				d := float64(amax) / 8
				d16 := math.Abs(float64(FP16ToFloat32(Float32ToFP16(float32(d)))))
				// Levels are d apart and truncation of x/d+8.5 rounds to
				// the nearest, except that +8 is clamped to +7: error <= d.
				bound := d*(1+1e-6) + 8*math.Abs(d-d16)
				for i := range xb {
					if e := math.Abs(float64(xb[i] - yb[i])); e > bound {
						t.Fatalf("scale %g block %d elem %d: |%g - %g| = %g > %g", s, blk, i, xb[i], yb[i], e, bound)
					}
				}
			}
		})
		t.Run("q6_K", func(t *testing.T) {
			b := quantizeT(t, Q6_K, x)
			y := dequantizeT(t, Q6_K, b, len(x))
			var se, sx float64
			for sb := range len(x) / 256 {
				var blk BlockQ6_K
				if err := blk.UnmarshalBinary(b[210*sb : 210*sb+210]); err != nil {
					t.Fatal(err)
				}
				// The sub-block with the largest scale always gets -128.
				found := false
				for _, sc := range blk.Scales {
					found = found || sc == -128
				}
				if !found {
					t.Fatalf("super-block %d: no sub-block scale is -128: %v", sb, blk.Scales)
				}
				d := FP16ToFloat32(blk.D)
				// A d in f16's subnormal range (tiny weights) has few
				// significant bits, so only normal d count towards NMSE.
				normal := blk.D&0x7c00 != 0
				for j := range 16 {
					step := math.Abs(float64(d * float32(blk.Scales[j])))
					for i := 16 * j; i < 16*j+16; i++ {
						xi, yi := float64(x[256*sb+i]), float64(y[256*sb+i])
						e := math.Abs(xi - yi)
						if normal {
							se += e * e
							sx += xi * xi
						}
						// Within the 64 levels the error is at most half a
						// step; outside, the value sits on the end level.
						if e <= step/2*(1+1e-5) {
							continue
						}
						if step == 0 {
							t.Fatalf("scale %g elem %d: sub-block scale 0 but %g -> %g", s, 256*sb+i, xi, yi)
						}
						if l := math.Abs(yi / step); math.Abs(l-32) > 1e-3 && math.Abs(l-31) > 1e-3 {
							t.Fatalf("scale %g elem %d: %g -> %g, error %g > step/2 %g and not clamped", s, 256*sb+i, xi, yi, e, step/2)
						}
						if math.Abs(yi) > math.Abs(xi) {
							t.Fatalf("scale %g elem %d: clamped %g -> %g grew", s, 256*sb+i, xi, yi)
						}
					}
				}
			}
			// 6 bits on normal data: the relative error energy is about
			// 1e-4; an order of magnitude more would mean a bug.
			if nmse := se / sx; sx > 0 && !(nmse <= 1e-3) {
				t.Errorf("scale %g: NMSE %g", s, nmse)
			}
		})
	}
}

// TestQ6_KDeterministic quantizes the same data twice, and once from a copy
// at another offset, and expects identical bytes.
func TestQ6_KDeterministic(t *testing.T) {
	x := goldenInput(1024)
	a := quantizeT(t, Q6_K, x)
	b := quantizeT(t, Q6_K, x)
	shifted := make([]float32, len(x)+256)
	copy(shifted[256:], x)
	c := quantizeT(t, Q6_K, shifted)[210:]
	if !bytes.Equal(a, b) || !bytes.Equal(a, c) {
		t.Fatal("Q6_K quantization is not deterministic")
	}
	// Requantizing dequantized weights must not drift far: the result
	// dequantizes to nearly the same numbers.
	r := newRNG(3)
	for i := range x {
		x[i] = r.normal() * 0.05
	}
	y := dequantizeT(t, Q6_K, quantizeT(t, Q6_K, x), len(x))
	y2 := dequantizeT(t, Q6_K, quantizeT(t, Q6_K, y), len(x))
	var se, sy float64
	for i := range y {
		d := float64(y[i] - y2[i])
		se += d * d
		sy += float64(y[i]) * float64(y[i])
	}
	if !(se <= 1e-4*sy) {
		t.Fatalf("requantization drift: NMSE %g", se/sy)
	}
}

// TestQuantizeDstLarger checks that bytes past the row are left alone and a
// src longer than the row is read only as far as needed.
func TestQuantizeDstLarger(t *testing.T) {
	x := goldenInput(256)
	for _, typ := range []Type{F32, F16, BF16, Q4_0, Q8_0, Q6_K} {
		n, _ := RowSize(typ, 256)
		dst := bytes.Repeat([]byte{0xee}, int(n)+7)
		if err := Quantize(typ, dst, x); err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if !bytes.Equal(dst[n:], bytes.Repeat([]byte{0xee}, 7)) {
			t.Errorf("%s: wrote past the row", typ)
		}
		y := make([]float32, 256)
		if err := Dequantize(typ, y, dst); err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		z := dequantizeT(t, typ, dst[:n], 256)
		for i := range y {
			if math.Float32bits(y[i]) != math.Float32bits(z[i]) {
				t.Fatalf("%s: trailing bytes changed the result", typ)
			}
		}
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"quantize unsupported", Quantize(Q4_K, make([]byte, 144), make([]float32, 256)), "quant: quantize: q4_K is not supported"},
		{"quantize unknown", Quantize(Type(99), nil, nil), "quant: quantize: type(99) is not supported"},
		{"dequantize unsupported", Dequantize(Q4_K, make([]float32, 256), make([]byte, 144)), "quant: dequantize: q4_K is not supported"},
		{"dequantize unknown", Dequantize(Type(5), nil, nil), "quant: dequantize: type(5) is not supported"},
		{"dequantize iq2", Dequantize(IQ2_XXS, nil, nil), "iq2_xxs is not supported"},
		{"q4_0 partial block", Quantize(Q4_0, make([]byte, 100), make([]float32, 33)), "33 elements is not a whole number of 32-element blocks"},
		{"q4_0 short dst", Quantize(Q4_0, make([]byte, 35), make([]float32, 64)), "quantize q4_0: dst has 35 bytes, 64 elements need 36"},
		{"q8_0 short dst", QuantizeQ8_0(nil, make([]float32, 32)), "dst has 0 bytes, 32 elements need 34"},
		{"q6_K partial block", QuantizeQ6_K(make([]byte, 210), make([]float32, 255)), "255 elements is not a whole number of 256-element blocks"},
		{"f16 short dst", QuantizeF16(make([]byte, 3), make([]float32, 2)), "dst has 3 bytes, 2 elements need 4"},
		{"q4_0 short src", DequantizeQ4_0(make([]float32, 64), make([]byte, 35)), "dequantize q4_0: src has 35 bytes, 64 elements need 36"},
		{"q6_K bad dst", DequantizeQ6_K(make([]float32, 100), make([]byte, 210)), "100 elements is not a whole number of 256-element blocks"},
		{"bf16 short src", DequantizeBF16(make([]float32, 2), make([]byte, 3)), "src has 3 bytes"},
		{"f32 short src", DequantizeF32(make([]float32, 2), make([]byte, 7)), "src has 7 bytes"},
		{"bytes", func() error { _, err := BytesToFloat32s(make([]byte, 5)); return err }(), "5 bytes is not a whole number"},
		{"block q4_0", new(BlockQ4_0).UnmarshalBinary(make([]byte, 17)), "q4_0 block is 18 bytes, got 17"},
		{"block q8_0", new(BlockQ8_0).UnmarshalBinary(nil), "q8_0 block is 34 bytes, got 0"},
		{"block q6_K", new(BlockQ6_K).UnmarshalBinary(make([]byte, 211)), "q6_K block is 210 bytes, got 211"},
	}
	for _, tc := range tests {
		if tc.err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		if !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: error %q, want it to contain %q", tc.name, tc.err, tc.want)
		}
	}
}

// TestNoPanics calls every entry point with every type and awkward lengths.
func TestNoPanics(t *testing.T) {
	types := []Type{F32, F16, BF16, Q4_0, Q8_0, Q6_K, Q4_K, I32, Type(1000)}
	lengths := []int{0, 1, 2, 3, 16, 31, 32, 33, 255, 256, 257, 512}
	for _, typ := range types {
		for _, nx := range lengths {
			for _, nb := range []int{0, 1, 17, 18, 34, 209, 210, 1024, 2048} {
				x := make([]float32, nx)
				b := make([]byte, nb)
				_ = Quantize(typ, b, x)
				_ = Dequantize(typ, x, b)
				want, rerr := RowSize(typ, int64(nx))
				err := Quantize(typ, b, x)
				if typ.Supported() && rerr == nil && int64(nb) >= want {
					if err != nil {
						t.Errorf("Quantize(%s, %d bytes, %d elems): %v", typ, nb, nx, err)
					}
				} else if err == nil && nx > 0 {
					t.Errorf("Quantize(%s, %d bytes, %d elems): no error", typ, nb, nx)
				}
			}
		}
	}
	// Zero elements is a valid, empty row.
	for _, typ := range []Type{F32, F16, BF16, Q4_0, Q8_0, Q6_K} {
		if err := Quantize(typ, nil, nil); err != nil {
			t.Errorf("Quantize(%s, empty): %v", typ, err)
		}
		if err := Dequantize(typ, nil, nil); err != nil {
			t.Errorf("Dequantize(%s, empty): %v", typ, err)
		}
	}
}

// TestSpecialValues checks that NaN and ±inf inputs give the results of
// ggml's x86-64 builds (also covered bit-exactly by the golden test) and in
// particular never corrupt neighbouring blocks.
func TestSpecialValues(t *testing.T) {
	nan := float32(math.NaN())
	x := make([]float32, 64)
	for i := range x {
		x[i] = float32(i%9) - 4
	}
	x[3] = nan
	b := quantizeT(t, Q8_0, x)
	// ggml: NaN*id converts to int 0x80000000, whose low byte is 0.
	if b[2+3] != 0 {
		t.Errorf("q8_0: NaN quant = %#x, want 0", b[2+3])
	}
	if !bytes.Equal(b[34:], quantizeT(t, Q8_0, x[32:])) {
		t.Error("q8_0: NaN in block 0 changed block 1")
	}
	b = quantizeT(t, Q4_0, x)
	if q := b[2+3] & 0xf; q != 0 {
		t.Errorf("q4_0: NaN quant = %d, want 0", q)
	}
	if !bytes.Equal(b[18:], quantizeT(t, Q4_0, x[32:])) {
		t.Error("q4_0: NaN in block 0 changed block 1")
	}
}

// TestRoundToInt8 checks the integer-only roundf against math.Round (C's
// roundf rounds halves away from zero, like math.Round).
func TestRoundToInt8(t *testing.T) {
	in := []float32{0, -0.0, 0.49999997, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 126.5, -127.5,
		127.49999, 8388607.5, 8388608, -8388609, 1e9, -2147483648, 2147483520,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 3e9, -3e9}
	r := newRNG(5)
	for range 100000 {
		in = append(in, r.uniform()*200, float32(r.intn(400)-200)/2, math.Float32frombits(uint32(r.next())))
	}
	for _, f := range in {
		want := toInt8(float32(math.Round(float64(f))))
		if got := roundToInt8(f); got != want {
			t.Fatalf("roundToInt8(%g) = %d, want %d", f, got, want)
		}
	}
}

func TestBlockStructs(t *testing.T) {
	x := goldenInput(256)
	raw := quantizeT(t, Q4_0, x[:32])
	var b4 BlockQ4_0
	if err := b4.UnmarshalBinary(raw); err != nil {
		t.Fatal(err)
	}
	if out, _ := b4.AppendBinary(nil); !bytes.Equal(out, raw) {
		t.Errorf("q4_0 block round trip: % x != % x", out, raw)
	}
	// Element j is the low nibble of Qs[j], element j+16 the high nibble.
	y := dequantizeT(t, Q4_0, raw, 32)
	d := FP16ToFloat32(b4.D)
	for j := range 16 {
		if y[j] != float32(int(b4.Qs[j]&0xf)-8)*d || y[j+16] != float32(int(b4.Qs[j]>>4)-8)*d {
			t.Fatalf("q4_0 nibble order wrong at %d", j)
		}
	}

	raw = quantizeT(t, Q8_0, x[:32])
	var b8 BlockQ8_0
	if err := b8.UnmarshalBinary(raw); err != nil {
		t.Fatal(err)
	}
	if out, _ := b8.AppendBinary([]byte{1}); !bytes.Equal(out[1:], raw) || out[0] != 1 {
		t.Errorf("q8_0 block round trip failed")
	}
	y = dequantizeT(t, Q8_0, raw, 32)
	for j := range 32 {
		if y[j] != float32(b8.Qs[j])*FP16ToFloat32(b8.D) {
			t.Fatalf("q8_0 element %d", j)
		}
	}

	raw = quantizeT(t, Q6_K, x)
	var b6 BlockQ6_K
	if err := b6.UnmarshalBinary(raw); err != nil {
		t.Fatal(err)
	}
	if out, _ := b6.AppendBinary(nil); !bytes.Equal(out, raw) {
		t.Errorf("q6_K block round trip failed")
	}
	// Check the documented layout against Dequantize.
	y = dequantizeT(t, Q6_K, raw, 256)
	d = FP16ToFloat32(b6.D)
	for i := range 256 {
		h, r := i/128, i%128
		l, quarter := r%32, r/32
		var q int
		switch quarter {
		case 0:
			q = int(b6.Ql[64*h+l] & 0xf)
		case 1:
			q = int(b6.Ql[64*h+l+32] & 0xf)
		case 2:
			q = int(b6.Ql[64*h+l] >> 4)
		case 3:
			q = int(b6.Ql[64*h+l+32] >> 4)
		}
		q |= int(b6.Qh[32*h+l]>>(2*quarter)&3) << 4
		want := d * float32(b6.Scales[i/16]) * float32(q-32)
		if y[i] != want {
			t.Fatalf("q6_K element %d: %g, layout says %g", i, y[i], want)
		}
	}
}

func TestBytesHelpers(t *testing.T) {
	x := []float32{0, -1, 3.5, float32(math.Inf(1)), math.SmallestNonzeroFloat32}
	b := Float32sToBytes(x)
	if len(b) != 20 || b[4+3] != 0xbf {
		t.Fatalf("Float32sToBytes: % x", b)
	}
	y, err := BytesToFloat32s(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range x {
		if math.Float32bits(x[i]) != math.Float32bits(y[i]) {
			t.Fatalf("BytesToFloat32s[%d] = %g, want %g", i, y[i], x[i])
		}
	}
	if y, err := BytesToFloat32s(nil); err != nil || len(y) != 0 {
		t.Fatalf("BytesToFloat32s(nil) = %v, %v", y, err)
	}
}

func TestTypeTable(t *testing.T) {
	tests := []struct {
		typ        Type
		name       string
		block, siz int
		supported  bool
	}{
		{F32, "f32", 1, 4, true},
		{F16, "f16", 1, 2, true},
		{BF16, "bf16", 1, 2, true},
		{Q4_0, "q4_0", 32, 18, true},
		{Q8_0, "q8_0", 32, 34, true},
		{Q6_K, "q6_K", 256, 210, true},
		{Q4_K, "q4_K", 256, 144, false},
		{MXFP4, "mxfp4", 32, 17, false},
	}
	for _, tc := range tests {
		if tc.typ.String() != tc.name || tc.typ.BlockSize() != tc.block || tc.typ.TypeSize() != tc.siz ||
			tc.typ.Supported() != tc.supported || !tc.typ.Known() {
			t.Errorf("%d: got %s %d %d %v", tc.typ, tc.typ, tc.typ.BlockSize(), tc.typ.TypeSize(), tc.typ.Supported())
		}
		p, err := ParseType(strings.ToUpper(tc.name))
		if err != nil || p != tc.typ {
			t.Errorf("ParseType(%q) = %v, %v", strings.ToUpper(tc.name), p, err)
		}
	}
	if Type(4).Known() || Type(4).String() != "type(4)" || Type(4).BlockSize() != 0 {
		t.Error("type 4 (removed from ggml) should be unknown")
	}
	if _, err := ParseType("q4_2"); err == nil {
		t.Error("ParseType(q4_2) succeeded")
	}
	for _, tc := range []struct {
		typ  Type
		n    int64
		want int64
		err  string
	}{
		{Q4_0, 4096, 4096 / 32 * 18, ""},
		{Q6_K, 4096, 16 * 210, ""},
		{F16, 3, 6, ""},
		{Q8_0, 0, 0, ""},
		{Q4_0, 33, 0, "not a whole number"},
		{Q4_0, -32, 0, "negative"},
		{Type(77), 32, 0, "unknown tensor type 77"},
		{F32, 1 << 62, 0, "overflow"},
	} {
		got, err := RowSize(tc.typ, tc.n)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("RowSize(%s, %d) error %v, want %q", tc.typ, tc.n, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("RowSize(%s, %d) = %d, %v; want %d", tc.typ, tc.n, got, err, tc.want)
		}
	}
}
