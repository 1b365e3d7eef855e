package quant

import (
	"math"
	"testing"
)

func TestExp(t *testing.T) {
	worst := 0.0
	for x := float32(-87); x < 88.7; x += 0.0137 {
		want := math.Exp(float64(x))
		got := float64(Exp(x))
		worst = max(worst, math.Abs(got-want)/want)
	}
	t.Logf("Exp: worst relative error %.3g", worst)
	if worst > 3e-7 {
		t.Errorf("Exp: relative error %g", worst)
	}
	for _, x := range []float32{-1000, -88, 89, 1000, float32(math.Inf(1)), float32(math.Inf(-1))} {
		want := float32(math.Exp(float64(x)))
		if got := Exp(x); !(got == want || (want < 1.2e-38 && got == 0)) {
			t.Errorf("Exp(%g) = %g, want %g", x, got, want)
		}
	}
	if v := Exp(float32(math.NaN())); v == v {
		t.Error("Exp(NaN) is not NaN")
	}
}

// expInputs are the values every path's element-wise kernels are checked
// on: the ends of Exp's range and their neighbours, where n reaches 128
// and -126, signed zeros, infinities, NaNs, subnormals and random values
// of every magnitude.
func expInputs() []float32 {
	next := func(x float32, d int) float32 {
		return math.Float32frombits(uint32(int32(math.Float32bits(x)) + int32(d)))
	}
	xs := []float32{0, float32(math.Copysign(0, -1)), 1, -1, 0.5, -0.5,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), -float32(math.NaN()),
		math.Float32frombits(1), math.Float32frombits(0x807fffff), math.MaxFloat32, -math.MaxFloat32}
	for _, e := range []float32{expHi, expLo, 88.376, 88.7, -87, -86.9, 88.02969, -87.3} {
		for d := -3; d <= 3; d++ {
			xs = append(xs, next(e, d), -next(e, d))
		}
	}
	r := newRNG(7)
	for range 3000 {
		// Uniform over [-100, 100] and over bit patterns.
		xs = append(xs, float32(r.next()>>40)/float32(1<<24)*200-100, math.Float32frombits(uint32(r.next())))
	}
	return xs
}

func sameBits(a, b float32) bool {
	return math.Float32bits(a) == math.Float32bits(b) || (a != a && b != b)
}

// TestElementwisePaths checks SwiGLU and ExpSub of every path against the
// generic loops, bit for bit, at lengths that leave every tail, in place
// and not.
func TestElementwisePaths(t *testing.T) {
	xs := expInputs()
	ys := make([]float32, len(xs))
	r := newRNG(9)
	for i := range ys {
		ys[i] = float32(r.next()>>40)/float32(1<<24)*8 - 4
	}
	ys[3] = float32(math.Inf(1))
	want := make([]float32, len(xs))
	swigluGeneric(want, xs, ys)
	wantExp := append([]float32(nil), xs...)
	const m = 1.25
	expSubGeneric(wantExp, m)
	forEachPath(t, func(t *testing.T) {
		for _, n := range []int{0, 1, 7, 8, 9, 31, 33, len(xs)} {
			got := make([]float32, n)
			SwiGLU(got, xs, ys)
			inPlace := append([]float32(nil), xs[:n]...)
			SwiGLU(inPlace, inPlace, ys)
			e := append([]float32(nil), xs[:n]...)
			ExpSub(e, m)
			for i := range n {
				if !sameBits(got[i], want[i]) || !sameBits(inPlace[i], want[i]) {
					t.Fatalf("n=%d: SwiGLU(%g, %g) = %g (in place %g), want %g", n, xs[i], ys[i], got[i], inPlace[i], want[i])
				}
				if !sameBits(e[i], wantExp[i]) {
					t.Fatalf("n=%d: Exp(%g - %g) = %g, want %g", n, xs[i], float32(m), e[i], wantExp[i])
				}
			}
		}
	})
}

func BenchmarkSwiGLU(b *testing.B) {
	x, y := make([]float32, 8192), make([]float32, 8192)
	r := newRNG(3)
	for i := range x {
		x[i] = float32(r.next()>>40)/float32(1<<24)*16 - 8
		y[i] = 1
	}
	benchPaths(b, func(b *testing.B) {
		b.SetBytes(int64(4 * len(x)))
		for b.Loop() {
			SwiGLU(x, x, y)
		}
	})
}
