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
