package quant

import (
	"math"
	"testing"
)

func TestMulSize(t *testing.T) {
	tests := []struct {
		in   []int64
		want int64
		ok   bool
	}{
		{nil, 1, true},
		{[]int64{3, 4, 5}, 60, true},
		{[]int64{0, math.MaxInt64}, 0, true},
		{[]int64{1 << 31, 1 << 31}, 1 << 62, true},
		{[]int64{1 << 32, 1 << 31}, 0, false},
		{[]int64{1<<57 + 1, 32, 2}, 0, false}, // n_ctx 2^57+1 cells of a 64-byte row pair
		{[]int64{math.MaxInt64, 2}, 0, false},
		{[]int64{-1, 2}, 0, false},
	}
	for _, tc := range tests {
		got, err := MulSize(tc.in...)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("MulSize(%v) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
	if s, err := AddSize(1, 2, 3); s != 6 || err != nil {
		t.Errorf("AddSize = %d, %v", s, err)
	}
	if _, err := AddSize(math.MaxInt64, 1); err == nil {
		t.Error("AddSize overflow accepted")
	}
}

func TestFirstNonFinite(t *testing.T) {
	mk := func(typ Type, n int, set func([]byte)) []byte {
		b := make([]byte, n*typ.TypeSize())
		if set != nil {
			set(b)
		}
		return b
	}
	put16 := func(off int, v uint16) func([]byte) {
		return func(b []byte) { b[off], b[off+1] = byte(v), byte(v>>8) }
	}
	tests := []struct {
		typ  Type
		data []byte
		want int
	}{
		{F32, mk(F32, 4, nil), -1},
		{F32, mk(F32, 4, func(b []byte) { copy(b[8:], []byte{0, 0, 0xc0, 0x7f}) }), 2}, // NaN
		{F16, mk(F16, 4, put16(6, 0xfc00)), 3},                                         // -Inf
		{BF16, mk(BF16, 4, put16(2, 0x7f81)), 1},                                       // NaN
		{Q4_0, mk(Q4_0, 3, put16(36, 0x7c00)), 2},
		{Q4_0, mk(Q4_0, 3, put16(2, 0xffff)), -1}, // quants, not a scale
		{Q8_0, mk(Q8_0, 3, put16(34, 0x7e00)), 1},
		{Q6_K, mk(Q6_K, 2, put16(210+208, 0x7c00)), 1},
		{Q6_K, mk(Q6_K, 2, put16(0, 0x7c00)), -1},
	}
	for _, tc := range tests {
		got, err := FirstNonFinite(tc.typ, tc.data)
		if err != nil || got != tc.want {
			t.Errorf("%s: %d, %v; want %d", tc.typ, got, err, tc.want)
		}
	}
	if _, err := FirstNonFinite(Q4_0, make([]byte, 17)); err == nil {
		t.Error("a partial block was accepted")
	}
}

func TestFirstNonFiniteF32(t *testing.T) {
	v := make([]float32, 1000)
	for i := range v {
		v[i] = float32(i%7) - 3
	}
	if got := FirstNonFiniteF32(v); got != -1 {
		t.Fatalf("finite: %d", got)
	}
	big := append([]float32(nil), v...)
	big[10] = 3e38 // its square overflows, the value does not
	if got := FirstNonFiniteF32(big); got != -1 {
		t.Fatalf("large finite value: %d", got)
	}
	for _, x := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
		w := append([]float32(nil), v...)
		w[777] = x
		w[900] = x
		if got := FirstNonFiniteF32(w); got != 777 {
			t.Errorf("%v: %d, want 777", x, got)
		}
	}
	if FirstNonFiniteF32(nil) != -1 {
		t.Error("empty")
	}
}

// MulSize sits on per-token paths (tensor sizes in the arena plan): it
// must not allocate when it succeeds.
func TestMulSizeAllocates(t *testing.T) {
	a, b := int64(3), int64(5)
	if n := testing.AllocsPerRun(100, func() { MulSize(a, b, 7) }); n != 0 {
		t.Errorf("MulSize allocates %v times per call", n)
	}
	if n := testing.AllocsPerRun(100, func() { AddSize(a, b) }); n != 0 {
		t.Errorf("AddSize allocates %v times per call", n)
	}
}
