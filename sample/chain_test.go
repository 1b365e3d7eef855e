package sample

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestChainMatchesLegacy checks that New, now a Chain, gives exactly the
// tokens the old Sampler gave for the same parameters, seed, history and
// logits, over many random settings, ties and non-finite logits included.
func TestChainMatchesLegacy(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	pick := func(vs ...float32) float32 { return vs[rng.IntN(len(vs))] }
	for trial := range 3000 {
		p := Params{
			Temp:          pick(0, -1, 0.1, 0.5, 0.8, 1, 1.5, 7, math.SmallestNonzeroFloat32, math.MaxFloat32),
			TopK:          []int{0, 1, 2, 5, 40, 1000}[rng.IntN(6)],
			TopP:          pick(0, 1, 0.1, 0.5, 0.9, 0.95, 0.999),
			MinP:          pick(0, 0.01, 0.05, 0.3, 1),
			RepeatPenalty: pick(0, 1, 1.1, 1.5, 0.7, math.SmallestNonzeroFloat32, math.MaxFloat32),
			RepeatLastN:   []int{0, 1, 3, 64}[rng.IntN(4)],
			Seed:          rng.Uint64N(5),
		}
		n := 1 + rng.IntN(300)
		newS, err := New(p)
		if err != nil {
			t.Fatal(err)
		}
		old, err := newLegacy(p)
		if err != nil {
			t.Fatal(err)
		}
		levels := []int{3, 20, 1 << 20}[rng.IntN(3)]
		logits := make([]float32, n)
		for step := range 20 {
			for i := range logits {
				logits[i] = float32(rng.IntN(levels)) / float32(levels) * 10
				switch rng.IntN(50) {
				case 0:
					logits[i] = float32(math.NaN())
				case 1:
					logits[i] = float32(math.Inf(-1))
				case 2:
					if trial%7 == 0 {
						logits[i] = float32(math.Inf(1))
					}
				}
			}
			a, b := newS.Sample(logits), old.Sample(logits)
			if a != b {
				t.Fatalf("trial %d step %d, %+v, %d logits: chain %d, old %d", trial, step, p, n, a, b)
			}
			id := a
			if rng.IntN(4) == 0 {
				id = int32(rng.IntN(n + 3))
			}
			newS.Accept(id)
			old.Accept(id)
		}
	}
}

// run applies processors to logits and returns the candidates left, as a
// map from id to logit.
func run(logits []float32, accepted []int32, procs ...Processor) map[int32]float32 {
	for _, id := range accepted {
		for _, p := range procs {
			p.Accept(id, false)
		}
	}
	var c Candidates
	c.reset(logits)
	for _, p := range procs {
		p.Apply(&c)
	}
	out := map[int32]float32{}
	for i := range c.Len() {
		out[c.ID(i)] = c.Logit(i)
	}
	return out
}

func TestProcessors(t *testing.T) {
	inf := float32(math.Inf(1))
	max32 := float32(math.MaxFloat32)
	logits := []float32{2, -1, 0.5, 3, -4}
	tests := []struct {
		name     string
		procs    []Processor
		accepted []int32
		logits   []float32 // nil: logits above
		want     map[int32]float32
	}{
		{"repeat penalty", []Processor{&RepeatPenalty{Penalty: 2}}, []int32{0, 1, 0, 9, -3},
			nil, map[int32]float32{0: 1, 1: -2, 2: 0.5, 3: 3, 4: -4}},
		{"repeat penalty last 1", []Processor{&RepeatPenalty{Penalty: 2, LastN: 1}}, []int32{0, 1},
			nil, map[int32]float32{0: 2, 1: -2, 2: 0.5, 3: 3, 4: -4}},
		{"repeat penalty 1 is off", []Processor{&RepeatPenalty{Penalty: 1}}, []int32{0},
			nil, map[int32]float32{0: 2, 1: -1, 2: 0.5, 3: 3, 4: -4}},
		{"repeat penalty keeps finite", []Processor{&RepeatPenalty{Penalty: max32}}, []int32{1},
			nil, map[int32]float32{0: 2, 1: -max32, 2: 0.5, 3: 3, 4: -4}},
		{"presence", []Processor{&PresenceFrequency{Presence: 0.5}}, []int32{0, 0, 0, 2},
			nil, map[int32]float32{0: 1.5, 1: -1, 2: 0, 3: 3, 4: -4}},
		{"frequency", []Processor{&PresenceFrequency{Frequency: 0.5}}, []int32{0, 0, 0, 2},
			nil, map[int32]float32{0: 0.5, 1: -1, 2: 0, 3: 3, 4: -4}},
		{"presence and frequency", []Processor{&PresenceFrequency{Presence: 1, Frequency: 0.25}}, []int32{3, 3, 4},
			nil, map[int32]float32{0: 2, 1: -1, 2: 0.5, 3: 1.5, 4: -5.25}},
		{"negative presence", []Processor{&PresenceFrequency{Presence: -2}}, []int32{1},
			nil, map[int32]float32{0: 2, 1: 1, 2: 0.5, 3: 3, 4: -4}},
		{"frequency over last n", []Processor{&PresenceFrequency{Frequency: 1, LastN: 2}}, []int32{0, 0, 0, 1},
			nil, map[int32]float32{0: 1, 1: -2, 2: 0.5, 3: 3, 4: -4}},
		{"logit bias", []Processor{LogitBias{0: -1, 3: float32(math.Inf(-1)), 4: 10, 99: 5, -1: 5}}, nil,
			nil, map[int32]float32{0: 1, 1: -1, 2: 0.5, 3: float32(math.Inf(-1)), 4: 6}},
		{"logit bias bans +Inf", []Processor{LogitBias{1: float32(math.Inf(-1)), 2: inf, 0: float32(math.NaN())}}, nil,
			[]float32{0, inf, 1}, map[int32]float32{0: 0, 1: float32(math.Inf(-1)), 2: 1}},
		{"logit bias keeps finite", []Processor{LogitBias{0: max32}}, nil,
			[]float32{max32, 1}, map[int32]float32{0: max32, 1: 1}},
		{"temperature 2", []Processor{Temperature{2}}, nil,
			nil, map[int32]float32{0: -0.5, 1: -2, 2: -1.25, 3: 0, 4: -3.5}},
		{"temperature 1 is identity", []Processor{Temperature{1}}, nil,
			nil, map[int32]float32{0: 2, 1: -1, 2: 0.5, 3: 3, 4: -4}},
		{"temperature 0 keeps the best", []Processor{Temperature{0}}, nil,
			nil, map[int32]float32{3: 3}},
		{"temperature keeps -Inf", []Processor{Temperature{0.5}}, nil,
			[]float32{1, float32(math.Inf(-1))}, map[int32]float32{0: 0, 1: float32(math.Inf(-1))}},
		{"top-k 2", []Processor{TopK{2}}, nil, nil, map[int32]float32{0: 2, 3: 3}},
		{"top-k 0 is off", []Processor{TopK{0}}, nil, nil, map[int32]float32{0: 2, 1: -1, 2: 0.5, 3: 3, 4: -4}},
		{"top-k ties by id", []Processor{TopK{2}}, nil, []float32{1, 5, 5, 5}, map[int32]float32{1: 5, 2: 5}},
		// softmax of {2,-1,0.5,3,-4}: 3 → .6807, 2 → .2504, 0.5 → .0559, -1 → .0125
		{"top-p 0.6", []Processor{TopP{0.6}}, nil, nil, map[int32]float32{3: 3}},
		{"top-p 0.9", []Processor{TopP{0.9}}, nil, nil, map[int32]float32{3: 3, 0: 2}},
		{"top-p 0.95", []Processor{TopP{0.95}}, nil, nil, map[int32]float32{3: 3, 0: 2, 2: 0.5}},
		{"top-p 1 is off", []Processor{TopP{1}}, nil, nil, map[int32]float32{0: 2, 1: -1, 2: 0.5, 3: 3, 4: -4}},
		{"min-p 0.3", []Processor{MinP{0.3}}, nil, nil, map[int32]float32{3: 3, 0: 2}},
		{"min-p 0.05", []Processor{MinP{0.05}}, nil, nil, map[int32]float32{3: 3, 0: 2, 2: 0.5}},
		{"min-p 1", []Processor{MinP{1}}, nil, nil, map[int32]float32{3: 3}},
		// 3 penalised to 1; top 3: {2, 1, 0.5} → p .6285, .2312, .1402
		{"chain of them", []Processor{&RepeatPenalty{Penalty: 3}, TopK{3}, MinP{0.3}, Temperature{0.5}}, []int32{3},
			nil, map[int32]float32{0: 0, 3: -2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := tc.logits
			if l == nil {
				l = logits
			}
			got := run(l, tc.accepted, tc.procs...)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for id, w := range tc.want {
				g, ok := got[id]
				if !ok || !(g == w || math.Abs(float64(g-w)) < 1e-6) {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

// TestProcessorsUndense checks the penalties and the bias on candidates no
// longer in id order (after top-k), where they look ids up.
func TestProcessorsUndense(t *testing.T) {
	logits := []float32{2, -1, 0.5, 3, -4}
	got := run(logits, []int32{3, 0}, TopK{3}, &RepeatPenalty{Penalty: 2}, &PresenceFrequency{Frequency: 1}, LogitBias{2: 1, 1: 5})
	want := map[int32]float32{3: 0.5, 0: 0, 2: 1.5}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestPickers(t *testing.T) {
	inf := float32(math.Inf(1))
	negInf := float32(math.Inf(-1))
	tests := []struct {
		name   string
		logits []float32
		greedy int32
		random []int32 // what a random draw may give (nil: -1)
	}{
		{"plain", []float32{1, 3, 2}, 1, []int32{0, 1, 2}},
		{"ties", []float32{3, 1, 3}, 0, []int32{0, 1, 2}},
		{"-Inf never", []float32{negInf, 0, negInf}, 1, []int32{1}},
		{"+Inf wins", []float32{5, inf, 1, inf}, 1, []int32{1, 3}},
		{"nothing drawable", []float32{negInf, negInf}, -1, nil},
		{"one", []float32{0}, 0, []int32{0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c Candidates
			c.reset(tc.logits)
			if got := (GreedyPicker{}).Pick(&c); got != tc.greedy {
				t.Errorf("greedy = %d, want %d", got, tc.greedy)
			}
			r := NewRandomPicker(1)
			seen := map[int32]bool{}
			for range 500 {
				c.reset(tc.logits)
				id := r.Pick(&c)
				if tc.random == nil {
					if id != -1 {
						t.Fatalf("random = %d, want -1", id)
					}
					continue
				}
				if !slices.Contains(tc.random, id) {
					t.Fatalf("random = %d, want one of %v", id, tc.random)
				}
				seen[id] = true
			}
			if len(seen) != len(tc.random) {
				t.Errorf("random drew %v of %v", seen, tc.random)
			}
		})
	}
	var c Candidates
	if (GreedyPicker{}).Pick(&c) != -1 || NewRandomPicker(1).Pick(&c) != -1 {
		t.Error("no candidates gave a token")
	}
}

// TestRandomPickerFrequencies checks that draws follow the softmax.
func TestRandomPickerFrequencies(t *testing.T) {
	logits := []float32{0, float32(math.Log(2)), float32(math.Log(5))}
	want := []float64{1.0 / 8, 2.0 / 8, 5.0 / 8}
	r := NewRandomPicker(3)
	counts := make([]int, 3)
	const n = 80000
	var c Candidates
	for range n {
		c.reset(logits)
		counts[r.Pick(&c)]++
	}
	for i, w := range want {
		// 5 standard deviations.
		if got := float64(counts[i]) / n; math.Abs(got-w) > 5*math.Sqrt(w*(1-w)/n) {
			t.Errorf("token %d drawn %.4f of the time, want %.4f", i, got, w)
		}
	}
}

func TestLogprobs(t *testing.T) {
	logits := []float32{1, 3, 2, float32(math.Inf(-1))}
	lse := math.Log(math.Exp(1) + math.Exp(3) + math.Exp(2))
	lp := func(l float64) float32 { return float32(l - lse) }
	near := func(a, b float32) bool { return math.Abs(float64(a-b)) < 1e-5 }

	ch := NewChain(GreedyPicker{})
	if c, top := ch.LastLogprobs(3); c.ID != -1 || !math.IsInf(float64(c.Logprob), -1) || top != nil {
		t.Fatalf("before Sample: %v %v", c, top)
	}
	if id := ch.Sample(logits); id != 1 {
		t.Fatalf("greedy = %d", id)
	}
	c, top := ch.LastLogprobs(5)
	if c.ID != 1 || !near(c.Logprob, lp(3)) {
		t.Errorf("chosen %v, want {1 %v}", c, lp(3))
	}
	wantTop := []TokenLogprob{{1, lp(3)}, {2, lp(2)}, {0, lp(1)}} // -Inf left out
	if len(top) != len(wantTop) {
		t.Fatalf("top %v, want %v", top, wantTop)
	}
	for i := range top {
		if top[i].ID != wantTop[i].ID || !near(top[i].Logprob, wantTop[i].Logprob) {
			t.Fatalf("top %v, want %v", top, wantTop)
		}
	}
	if _, top := ch.LastLogprobs(1); len(top) != 1 || top[0].ID != 1 {
		t.Errorf("top 1 = %v", top)
	}
	if _, top := ch.LastLogprobs(0); top != nil {
		t.Errorf("top 0 = %v", top)
	}

	// After temperature and top-k: the distribution drawn from.
	ch = NewChain(NewRandomPicker(1), TopK{2}, Temperature{0.5})
	id := ch.Sample(logits)
	c, top = ch.LastLogprobs(5)
	l2 := math.Log(math.Exp(6) + math.Exp(4))
	want := map[int32]float32{1: float32(6 - l2), 2: float32(4 - l2)}
	if w, ok := want[id]; !ok || c.ID != id || !near(c.Logprob, w) {
		t.Errorf("chosen %v for id %d, want %v", c, id, want)
	}
	if len(top) != 2 || top[0].ID != 1 || !near(top[0].Logprob, want[1]) || top[1].ID != 2 {
		t.Errorf("top %v, want %v", top, want)
	}
	// Probabilities of the top sum to 1 when nothing else is left.
	var sum float64
	for _, x := range top {
		sum += math.Exp(float64(x.Logprob))
	}
	if math.Abs(sum-1) > 1e-5 {
		t.Errorf("top probabilities sum to %v", sum)
	}

	// +Inf logits share the probability; nothing drawable gives -1.
	ch = NewChain(GreedyPicker{})
	ch.Sample([]float32{float32(math.Inf(1)), 0, float32(math.Inf(1))})
	if c, top := ch.LastLogprobs(3); c.ID != 0 || !near(c.Logprob, float32(-math.Log(2))) || len(top) != 2 {
		t.Errorf("+Inf: %v %v", c, top)
	}
	ch.Sample([]float32{float32(math.Inf(-1))})
	if c, top := ch.LastLogprobs(3); c.ID != -1 || top != nil {
		t.Errorf("nothing drawable: %v %v", c, top)
	}

	// The Sampler of New reports the same through its chain.
	s, _ := New(Params{Temp: 1, Seed: 4})
	id = s.Sample(logits)
	if c, _ := s.LastLogprobs(0); c.ID != id || !near(c.Logprob, lp(float64(logits[id]))) {
		t.Errorf("Sampler: chosen %v for %d", c, id)
	}
}

// TestBestOf checks the top-n used for logprobs against a sort.
func TestBestOf(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, size := range []int{1, 10, 1000} {
		items := make([]candidate, size)
		for i := range items {
			items[i] = candidate{id: int32(i), logit: float32(rng.IntN(7))}
		}
		sorted := slices.Clone(items)
		slices.SortFunc(sorted, before)
		for _, n := range []int{1, 2, 20, 64, 65, 999, 1000, 2000} {
			orig := slices.Clone(items)
			got := bestOf(items, n)
			if !slices.Equal(got, sorted[:min(n, size)]) {
				t.Fatalf("size %d n %d: %v", size, n, got)
			}
			if !slices.Equal(items, orig) {
				t.Fatal("bestOf changed its input")
			}
		}
	}
}

// TestAcceptGenerated checks what the chain tells processors is generated.
func TestAcceptGenerated(t *testing.T) {
	rec := &recorder{}
	ch := NewChain(GreedyPicker{}, rec)
	ch.Accept(5) // prompt
	ch.Accept(6)
	id := ch.Sample([]float32{0, 1, 0})
	ch.Accept(id) // generated
	ch.Accept(id) // again: no longer the last sample
	ch.Sample([]float32{0, 1, 0})
	ch.Accept(2) // not what was sampled
	want := []string{"5 false", "6 false", "1 true", "1 false", "2 false"}
	if fmt.Sprint(rec.got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", rec.got, want)
	}
}

type recorder struct{ got []string }

func (r *recorder) Apply(*Candidates) {}
func (r *recorder) Accept(id int32, generated bool) {
	r.got = append(r.got, fmt.Sprint(id, " ", generated))
}

func TestValidateNewFields(t *testing.T) {
	bad := []struct {
		p    Params
		want string
	}{
		{Params{PresencePenalty: 2.5}, "PresencePenalty (--presence-penalty) 2.5 is outside the allowed range: [-2, 2]"},
		{Params{PresencePenalty: float32(math.NaN())}, "PresencePenalty"},
		{Params{FrequencyPenalty: -2.01}, "FrequencyPenalty (--frequency-penalty) -2.01"},
		{Params{FrequencyPenalty: float32(math.Inf(1))}, "FrequencyPenalty"},
		{Params{LogitBias: map[int32]float32{5: 1, -2: 1, -1: 1}}, "LogitBias (--logit-bias) token -2 is outside the allowed range: token ids 0 or more"},
		{Params{LogitBias: map[int32]float32{3: float32(math.NaN())}}, "NaN for token 3"},
		{Params{LogitBias: map[int32]float32{3: float32(math.Inf(1))}}, "+Inf for token 3"},
	}
	for _, tc := range bad {
		s, err := New(tc.p)
		if err == nil || s != nil {
			t.Errorf("New(%+v) accepted", tc.p)
			continue
		}
		if got := err.Error(); !strings.Contains(got, tc.want) {
			t.Errorf("error %q, want %q", got, tc.want)
		}
	}
	for _, p := range []Params{
		{PresencePenalty: 2, FrequencyPenalty: -2},
		{LogitBias: map[int32]float32{0: float32(math.Inf(-1)), 1: -100, 2: 1e30}},
	} {
		if _, err := New(p); err != nil {
			t.Errorf("New(%+v): %v", p, err)
		}
	}
	// The new fields act through New: a ban, and a presence penalty that
	// turns greedy away from a repeated token.
	s, _ := New(Params{LogitBias: map[int32]float32{1: float32(math.Inf(-1))}})
	if id := s.Sample([]float32{0, 5, 1}); id != 2 {
		t.Errorf("banned token: greedy = %d, want 2", id)
	}
	s, _ = New(Params{PresencePenalty: 1.5, FrequencyPenalty: 0.5})
	s.Accept(1)
	if id := s.Sample([]float32{0, 2, 0.1}); id != 2 {
		t.Errorf("penalised token: greedy = %d, want 2", id)
	}
	if RandomSeed() == RandomSeed() && RandomSeed() == RandomSeed() {
		t.Error("RandomSeed repeats")
	}
}
