package sample

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

func TestGreedyPicksArgmax(t *testing.T) {
	logits := []float32{0.1, 2.5, -1, 2.4, 0}
	if got := Greedy().Sample(logits); got != 1 {
		t.Fatalf("greedy = %d, want 1", got)
	}
	if got := Argmax(logits); got != 1 {
		t.Fatalf("Argmax = %d, want 1", got)
	}
}

func TestSeedRepeatable(t *testing.T) {
	logits := make([]float32, 100)
	for i := range logits {
		logits[i] = float32(math.Sin(float64(i)))
	}
	draw := func(seed uint64) []int32 {
		s, err := New(Params{Temp: 1, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		var out []int32
		for range 50 {
			out = append(out, s.Sample(logits))
		}
		return out
	}
	a, b, c := draw(7), draw(7), draw(8)
	same := func(x, y []int32) bool {
		for i := range x {
			if x[i] != y[i] {
				return false
			}
		}
		return true
	}
	if !same(a, b) {
		t.Fatal("the same seed gave different tokens")
	}
	if same(a, c) {
		t.Fatal("different seeds gave the same 50 tokens")
	}
}

func TestTruncation(t *testing.T) {
	// Token 0 dominates; 1 and 2 are middling; the rest are tiny.
	logits := []float32{5, 3, 3, -5, -5, -5}
	tests := []struct {
		name    string
		p       Params
		allowed map[int32]bool
	}{
		{"top-k 1", Params{Temp: 1, TopK: 1}, map[int32]bool{0: true}},
		{"top-k 3", Params{Temp: 1, TopK: 3}, map[int32]bool{0: true, 1: true, 2: true}},
		{"top-p 0.5", Params{Temp: 1, TopP: 0.5}, map[int32]bool{0: true}},
		{"min-p 0.1", Params{Temp: 1, MinP: 0.1}, map[int32]bool{0: true, 1: true, 2: true}},
		{"min-p 0.5", Params{Temp: 1, MinP: 0.5}, map[int32]bool{0: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.p)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[int32]int{}
			for range 2000 {
				seen[s.Sample(logits)]++
			}
			for id := range seen {
				if !tc.allowed[id] {
					t.Errorf("drew token %d, outside %v (counts %v)", id, tc.allowed, seen)
				}
			}
			if len(tc.allowed) > 1 && len(seen) < 2 {
				t.Errorf("drew only %v from %d allowed tokens", seen, len(tc.allowed))
			}
		})
	}
}

func TestRepeatPenalty(t *testing.T) {
	logits := []float32{2, 1.9, 0}
	s, err := New(Params{RepeatPenalty: 1.5})
	if err != nil {
		t.Fatal(err)
	}
	s.Accept(0)
	// 2/1.5 = 1.33 < 1.9: greedy now prefers token 1.
	if got := s.Sample(logits); got != 1 {
		t.Fatalf("with token 0 penalised, greedy = %d, want 1", got)
	}
	if logits[0] != 2 {
		t.Fatal("Sample modified its input")
	}
}

// TestBestMatchesStableSort checks the top-k heap against sorting the
// whole vocabulary stably by falling logit and taking k, with many ties.
func TestBestMatchesStableSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 2, 7, 100, 5000} {
		for _, k := range []int{0, 1, 2, 5, 40, n - 1, n, n + 3} {
			for _, levels := range []int{3, 1000} {
				c := make([]candidate, n)
				for i := range c {
					c[i] = candidate{id: int32(i), logit: float32(rng.IntN(levels))}
				}
				want := slices.Clone(c)
				sort.SliceStable(want, func(i, j int) bool { return want[i].logit > want[j].logit })
				if k > 0 && k < n {
					want = want[:k]
				}
				got := best(slices.Clone(c), k)
				if !slices.Equal(got, want) {
					t.Fatalf("n=%d k=%d levels=%d: best differs from the stable sort", n, k, levels)
				}
			}
		}
	}
}

// BenchmarkSample128k times one draw over a Llama 3 sized vocabulary with
// llama.cpp's default settings (top-k 40).
func BenchmarkSample128k(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	logits := make([]float32, 128256)
	for i := range logits {
		logits[i] = float32(rng.NormFloat64() * 3)
	}
	s, err := New(Defaults())
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		s.Sample(logits)
	}
}
