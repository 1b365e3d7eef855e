package metric

import (
	"math"
	"testing"
)

func TestNMSE(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	tests := []struct {
		name      string
		want, got []float32
		nmse      float64
	}{
		{"equal", []float32{1, 2}, []float32{1, 2}, 0},
		{"half off", []float32{2, 0}, []float32{1, 0}, 0.25},
		{"zeros", []float32{0, 0}, []float32{0, 0}, 0},
		{"zero want", []float32{0}, []float32{1}, math.Inf(1)},
		{"length", []float32{1}, []float32{1, 1}, math.Inf(1)},
		{"nan in got", []float32{1, 1}, []float32{1, nan}, math.Inf(1)},
		{"inf in got", []float32{1, 1}, []float32{inf, 1}, math.Inf(1)},
		{"nan in both", []float32{nan, 1}, []float32{nan, 1}, 0},
	}
	for _, tc := range tests {
		if got := NMSE(tc.want, tc.got); got != tc.nmse {
			t.Errorf("%s: NMSE = %v, want %v", tc.name, got, tc.nmse)
		}
	}
	if got := NMSERows([][]float32{{2}, {0}}, [][]float32{{1}, {0}}); got != 0.25 {
		t.Errorf("NMSERows = %v, want 0.25", got)
	}
	if got := NMSERows([][]float32{{2}}, [][]float32{{1, 0}}); !math.IsInf(got, 1) {
		t.Errorf("NMSERows of ragged rows = %v, want +Inf", got)
	}
}
