package sample

import (
	"encoding/binary"
	"math"
	"strings"
	"testing"
)

var (
	nan    = float32(math.NaN())
	posInf = float32(math.Inf(1))
	negInf = float32(math.Inf(-1))
)

// TestValidateRanges checks every field's range: each bad value is refused
// by New with one error naming the field, the value and the range, and the
// edge values that work are kept.
func TestValidateRanges(t *testing.T) {
	d := Defaults()
	with := func(f func(*Params)) Params { p := d; f(&p); return p }
	bad := []struct {
		name string
		p    Params
		want []string // in the error: field, value, range
	}{
		{"temp NaN", with(func(p *Params) { p.Temp = nan }), []string{"Temp", "NaN", "finite"}},
		{"temp +Inf", with(func(p *Params) { p.Temp = posInf }), []string{"Temp", "+Inf", "finite"}},
		{"temp -Inf", with(func(p *Params) { p.Temp = negInf }), []string{"Temp", "-Inf", "finite"}},
		{"top-k -1", with(func(p *Params) { p.TopK = -1 }), []string{"TopK", "-1", "0 or more"}},
		{"top-k min int", with(func(p *Params) { p.TopK = math.MinInt }), []string{"TopK", "-9223372036854775808"}},
		{"top-p NaN", with(func(p *Params) { p.TopP = nan }), []string{"TopP", "NaN", "[0, 1]"}},
		{"top-p 1.5", with(func(p *Params) { p.TopP = 1.5 }), []string{"TopP", "1.5", "[0, 1]"}},
		{"top-p -0.1", with(func(p *Params) { p.TopP = -0.1 }), []string{"TopP", "-0.1", "[0, 1]"}},
		{"top-p +Inf", with(func(p *Params) { p.TopP = posInf }), []string{"TopP", "+Inf"}},
		{"top-p -Inf", with(func(p *Params) { p.TopP = negInf }), []string{"TopP", "-Inf"}},
		{"min-p NaN", with(func(p *Params) { p.MinP = nan }), []string{"MinP", "NaN", "[0, 1]"}},
		{"min-p -0.1", with(func(p *Params) { p.MinP = -0.1 }), []string{"MinP", "-0.1", "[0, 1]"}},
		{"min-p 1.01", with(func(p *Params) { p.MinP = 1.01 }), []string{"MinP", "1.01"}},
		{"min-p +Inf", with(func(p *Params) { p.MinP = posInf }), []string{"MinP", "+Inf"}},
		{"penalty NaN", with(func(p *Params) { p.RepeatPenalty = nan }), []string{"RepeatPenalty", "NaN", "finite"}},
		{"penalty +Inf", with(func(p *Params) { p.RepeatPenalty = posInf }), []string{"RepeatPenalty", "+Inf"}},
		{"penalty -Inf", with(func(p *Params) { p.RepeatPenalty = negInf }), []string{"RepeatPenalty", "-Inf"}},
		{"penalty -1", with(func(p *Params) { p.RepeatPenalty = -1 }), []string{"RepeatPenalty", "-1", "0 or more"}},
		{"last-n -1", with(func(p *Params) { p.RepeatLastN = -1 }), []string{"RepeatLastN", "-1", "[0, 1048576]", "-1, the whole context, is not supported"}},
		{"last-n min int", with(func(p *Params) { p.RepeatLastN = math.MinInt }), []string{"RepeatLastN", "-9223372036854775808"}},
		{"last-n 2^61 (overflowed 4*n)", with(func(p *Params) { p.RepeatLastN = 2305843009213693952 }), []string{"RepeatLastN", "2305843009213693952", "[0, 1048576]"}},
		{"last-n max+1", with(func(p *Params) { p.RepeatLastN = MaxRepeatLastN + 1 }), []string{"RepeatLastN", "1048577"}},
		{"last-n max int", with(func(p *Params) { p.RepeatLastN = math.MaxInt }), []string{"RepeatLastN", "9223372036854775807"}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.p)
			if err == nil || s != nil {
				t.Fatalf("New(%+v) = %v, %v; want an error", tc.p, s, err)
			}
			if err2 := tc.p.Validate(); err2 == nil || err2.Error() != err.Error() {
				t.Errorf("Validate = %v, New = %v", err2, err)
			}
			msg := err.Error()
			if strings.Count(msg, "\n") != 0 || !strings.HasPrefix(msg, "sample: ") {
				t.Errorf("error %q is not one line from package sample", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}

	good := []struct {
		name string
		p    Params
	}{
		{"zero (greedy)", Params{}},
		{"defaults", d},
		{"temp negative (greedy)", with(func(p *Params) { p.Temp = -1 })},
		{"temp max float", with(func(p *Params) { p.Temp = math.MaxFloat32 })},
		{"temp smallest subnormal", with(func(p *Params) { p.Temp = math.SmallestNonzeroFloat32 })},
		{"temp -max float", with(func(p *Params) { p.Temp = -math.MaxFloat32 })},
		{"top-k 0", with(func(p *Params) { p.TopK = 0 })},
		{"top-k 1", with(func(p *Params) { p.TopK = 1 })},
		{"top-k max int", with(func(p *Params) { p.TopK = math.MaxInt })},
		{"top-p 0", with(func(p *Params) { p.TopP = 0 })},
		{"top-p 1", with(func(p *Params) { p.TopP = 1 })},
		{"top-p -0", with(func(p *Params) { p.TopP = float32(math.Copysign(0, -1)) })},
		{"min-p 0", with(func(p *Params) { p.MinP = 0 })},
		{"min-p 1", with(func(p *Params) { p.MinP = 1 })},
		{"penalty 0 (off)", with(func(p *Params) { p.RepeatPenalty = 0 })},
		{"penalty 1 (off)", with(func(p *Params) { p.RepeatPenalty = 1 })},
		{"penalty smallest subnormal", with(func(p *Params) { p.RepeatPenalty = math.SmallestNonzeroFloat32 })},
		{"penalty max float", with(func(p *Params) { p.RepeatPenalty = math.MaxFloat32 })},
		{"last-n 0 (64)", with(func(p *Params) { p.RepeatLastN = 0 })},
		{"last-n 1", with(func(p *Params) { p.RepeatLastN = 1 })},
		{"last-n max", with(func(p *Params) { p.RepeatLastN = MaxRepeatLastN })},
		{"seed max", with(func(p *Params) { p.Seed = math.MaxUint64 })},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.p)
			if err != nil {
				t.Fatalf("New(%+v): %v", tc.p, err)
			}
			for id := range int32(200) {
				s.Accept(id % 7)
			}
			if id := s.Sample([]float32{1, 3, 2, -1, 0, 3, -2}); id < 0 || id >= 7 {
				t.Fatalf("sampled %d from 7 logits", id)
			}
		})
	}
	if Greedy() == nil {
		t.Fatal("Greedy returned nil")
	}
}

// TestNonFiniteLogits pins what Sample does with logits the engine would
// refuse: NaN and -Inf never win while something else can, +Inf wins, and
// nothing drawable gives -1.
func TestNonFiniteLogits(t *testing.T) {
	samplers := map[string]Params{
		"greedy":   {},
		"defaults": Defaults(),
		"temp 1":   {Temp: 1, Seed: 3},
		"penalty":  {Temp: 1, RepeatPenalty: 1.3, Seed: 4},
	}
	tests := []struct {
		name    string
		logits  []float32
		allowed map[int32]bool // nil: want -1
	}{
		{"empty", nil, nil},
		{"all NaN", []float32{nan, nan, nan}, nil},
		{"all -Inf", []float32{negInf, negInf}, nil},
		{"NaN and -Inf", []float32{nan, negInf, nan}, nil},
		{"NaN first", []float32{nan, -5, nan, -7}, map[int32]bool{1: true, 3: true}},
		{"one finite", []float32{negInf, nan, 0.5, negInf, nan}, map[int32]bool{2: true}},
		{"+Inf wins", []float32{1e30, posInf, nan, -1, posInf}, map[int32]bool{1: true, 4: true}},
		{"only +Inf", []float32{posInf}, map[int32]bool{0: true}},
		{"extremes", []float32{-math.MaxFloat32, math.MaxFloat32, nan}, map[int32]bool{0: true, 1: true}},
	}
	for sname, p := range samplers {
		for _, tc := range tests {
			t.Run(sname+"/"+tc.name, func(t *testing.T) {
				s, err := New(p)
				if err != nil {
					t.Fatal(err)
				}
				for i := range len(tc.logits) {
					s.Accept(int32(i))
				}
				for range 100 {
					id := s.Sample(tc.logits)
					if tc.allowed == nil {
						if id != -1 {
							t.Fatalf("Sample = %d, want -1", id)
						}
						continue
					}
					if !tc.allowed[id] {
						t.Fatalf("Sample = %d, want one of %v", id, tc.allowed)
					}
				}
			})
		}
	}
	if got := Argmax([]float32{nan, 1, nan, 2, nan}); got != 3 {
		t.Errorf("Argmax with NaN = %d, want 3", got)
	}
	if got := Argmax(nil); got != -1 {
		t.Errorf("Argmax(nil) = %d, want -1", got)
	}
	if got := Argmax([]float32{nan}); got != -1 {
		t.Errorf("Argmax(NaN) = %d, want -1", got)
	}
}

// TestPenaltyKeepsFinite checks that an extreme penalty cannot turn a
// finite logit into ±Inf (which would make a token certain or impossible).
func TestPenaltyKeepsFinite(t *testing.T) {
	for _, pen := range []float32{math.SmallestNonzeroFloat32, math.MaxFloat32} {
		s, err := New(Params{RepeatPenalty: pen})
		if err != nil {
			t.Fatal(err)
		}
		s.Accept(0)
		s.Accept(1)
		// Both tokens penalised to ±MaxFloat32 at most: still drawable.
		if id := s.Sample([]float32{-3, -2}); id != 0 && id != 1 {
			t.Fatalf("penalty %v: Sample = %d", pen, id)
		}
		s2, _ := New(Params{Temp: 1, RepeatPenalty: pen})
		s2.Accept(0)
		s2.Accept(1)
		if id := s2.Sample([]float32{3, 2}); id != 0 && id != 1 {
			t.Fatalf("penalty %v: Sample = %d", pen, id)
		}
	}
}

// fuzzLogits builds up to 300 logits from raw: when the first byte is
// even, each further byte is a small logit (many ties, realistic values);
// otherwise each 4 bytes are the bits of a float32 (NaN, ±Inf, huge).
func fuzzLogits(raw []byte) []float32 {
	if len(raw) == 0 {
		return nil
	}
	mode, raw := raw[0], raw[1:]
	var l []float32
	if mode%2 == 0 {
		for _, b := range raw[:min(len(raw), 300)] {
			l = append(l, float32(int8(b))/8)
		}
		return l
	}
	for len(raw) >= 4 && len(l) < 300 {
		l = append(l, math.Float32frombits(binary.LittleEndian.Uint32(raw)))
		raw = raw[4:]
	}
	return l
}

func FuzzSampler(f *testing.F) {
	d := Defaults()
	small := []byte{0, 8, 16, 24, 250, 8, 0, 1}
	f32 := func(vs ...float32) []byte {
		b := []byte{1}
		for _, v := range vs {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
		return b
	}
	ids := []byte{0, 0, 0, 0, 3, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0x80}
	f.Add(d.Temp, d.TopK, d.TopP, d.MinP, d.RepeatPenalty, d.RepeatLastN, d.Seed, small, ids)
	f.Add(float32(0), 0, float32(0), float32(0), float32(0), 0, uint64(0), small, []byte{})
	f.Add(float32(0.8), 40, float32(0.95), float32(0.05), float32(1.1), 2305843009213693952, uint64(1), small, ids)
	f.Add(float32(math.NaN()), 40, float32(0.95), float32(0.05), float32(1), 64, uint64(1), small, ids)
	f.Add(float32(1), math.MaxInt, float32(1), float32(0), float32(1.3), MaxRepeatLastN, uint64(7), small, ids)
	f.Add(float32(1), 2, float32(0.5), float32(0.1), float32(1.5), 3, uint64(9), f32(nan, 1, posInf, negInf, -1, posInf, 1e38, -1e38), ids)
	f.Add(float32(0), 0, float32(0), float32(0), float32(math.SmallestNonzeroFloat32), 8, uint64(2), f32(nan, nan, negInf), ids)
	f.Add(float32(math.SmallestNonzeroFloat32), 1, float32(1), float32(1), float32(math.MaxFloat32), 1, uint64(3), f32(-math.MaxFloat32, math.MaxFloat32, 0), ids)
	f.Add(float32(-1), -1, float32(2), float32(-1), float32(-1), -1, uint64(5), []byte{}, ids)
	f.Add(float32(0.8), 40, float32(0.95), float32(0.05), float32(1.1), 64, uint64(1), []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, temp float32, topK int, topP, minP, pen float32, lastN int, seed uint64, raw, rawIDs []byte) {
		p := Params{Temp: temp, TopK: topK, TopP: topP, MinP: minP, RepeatPenalty: pen, RepeatLastN: lastN, Seed: seed}
		s, err := New(p)
		if err != nil {
			if s != nil || p.Validate() == nil {
				t.Fatalf("New(%+v) = %v, %v", p, s, err)
			}
			return
		}
		logits := fuzzLogits(raw)
		orig := append([]float32(nil), logits...)
		drawable := false // some logit finite or +Inf
		for _, v := range logits {
			if v == v && !math.IsInf(float64(v), -1) {
				drawable = true
			}
		}
		for len(rawIDs) >= 4 {
			s.Accept(int32(binary.LittleEndian.Uint32(rawIDs)))
			rawIDs = rawIDs[4:]
		}
		for range 3 {
			id := s.Sample(logits)
			switch {
			case !drawable && id != -1:
				t.Fatalf("Sample = %d from %v, want -1 (nothing drawable)", id, logits)
			case drawable && (id < 0 || int(id) >= len(logits)):
				t.Fatalf("Sample = %d from %d logits %v", id, len(logits), logits)
			case drawable && (logits[id] != logits[id] || math.IsInf(float64(logits[id]), -1)):
				t.Fatalf("Sample picked %d, logit %v, from %v", id, logits[id], logits)
			}
			if drawable && temp <= 0 && (pen == 0 || pen == 1) && id != Argmax(logits) {
				t.Fatalf("greedy Sample = %d, Argmax = %d, from %v", id, Argmax(logits), logits)
			}
			s.Accept(id)
		}
		for i := range logits {
			if math.Float32bits(logits[i]) != math.Float32bits(orig[i]) {
				t.Fatal("Sample modified its input")
			}
		}
	})
}
