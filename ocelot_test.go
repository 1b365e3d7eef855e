package ocelot_test

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/ocelot-llm/ocelot"
	"github.com/ocelot-llm/ocelot/gguf"
	"github.com/ocelot-llm/ocelot/internal/testmodel"
	"github.com/ocelot-llm/ocelot/sample"
)

func loadTiny(t *testing.T, opt ocelot.Options) *ocelot.Model {
	t.Helper()
	m, err := ocelot.Load(testmodel.Preset(t, "tiny"), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func generate(t *testing.T, m *ocelot.Model, text string, p sample.Params, n int) []int32 {
	t.Helper()
	s, err := m.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ids, err := m.Tokenize(text, true, false)
	if err != nil {
		t.Fatal(err)
	}
	smp, err := sample.New(p)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Generate(context.Background(), ids, smp, n, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res.Tokens
}

func equal(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestGenerateRepeatable(t *testing.T) {
	m := loadTiny(t, ocelot.Options{NCtx: 256, Threads: 2})
	p := sample.Params{Temp: 0.9, TopK: 40, TopP: 0.95, Seed: 42}
	a := generate(t, m, "The quick brown fox", p, 24)
	b := generate(t, m, "The quick brown fox", p, 24)
	if len(a) == 0 || !equal(a, b) {
		t.Fatalf("same seed, different tokens:\n%v\n%v", a, b)
	}
	g1 := generate(t, m, "The quick brown fox", sample.Params{}, 24)
	g2 := generate(t, m, "The quick brown fox", sample.Params{}, 24)
	if !equal(g1, g2) {
		t.Fatal("greedy decoding is not deterministic")
	}
}

// Batch settings and the KV cache on f32 do not change greedy text.
func TestGreedySameAcrossBatching(t *testing.T) {
	text := "Batching must not change what the model says."
	var want []int32
	for i, o := range []ocelot.Options{
		{NCtx: 256, TypeK: "f32", TypeV: "f32"},
		{NCtx: 256, NBatch: 64, NUbatch: 8, TypeK: "f32", TypeV: "f32", Threads: 1},
		{NCtx: 256, NBatch: 5, NUbatch: 2, TypeK: "f32", TypeV: "f32", Threads: 3},
	} {
		got := generate(t, loadTiny(t, o), text, sample.Params{}, 32)
		if i == 0 {
			want = got
		} else if !equal(got, want) {
			t.Errorf("options %+v: greedy text differs:\n got %v\nwant %v", o, got, want)
		}
	}
}

func TestConcurrentSessions(t *testing.T) {
	concurrentSessions(t, loadTiny(t, ocelot.Options{NCtx: 128, Threads: 1}))
}

// The same on the OpenCL backend, all layers offloaded (PoCL in CI).
func TestConcurrentSessionsOpenCL(t *testing.T) {
	m, err := ocelot.Load(testmodel.Preset(t, "tiny"), ocelot.Options{NCtx: 128, Threads: 1, Backend: "opencl", NGPULayers: 99})
	if err != nil {
		if os.Getenv("OCELOT_REQUIRE_OPENCL") == "1" {
			t.Fatal(err)
		}
		t.Skipf("opencl: no device: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	concurrentSessions(t, m)
}

func concurrentSessions(t *testing.T, m *ocelot.Model) {
	prompts := []string{"one", "two two", "three three three", "four", "five", "six six", "seven", "eight eight eight"}
	serial := make([][]int32, len(prompts))
	for i, p := range prompts {
		serial[i] = generate(t, m, p, sample.Params{Temp: 0.7, Seed: uint64(i)}, 12)
	}
	var wg sync.WaitGroup
	par := make([][]int32, len(prompts))
	for i, p := range prompts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			par[i] = generate(t, m, p, sample.Params{Temp: 0.7, Seed: uint64(i)}, 12)
		}()
	}
	wg.Wait()
	for i := range prompts {
		if !equal(serial[i], par[i]) {
			t.Errorf("prompt %d: concurrent %v, serial %v", i, par[i], serial[i])
		}
	}
	// The sessions generated together: their tokens shared micro-batches.
	if st := m.Stats(); st.MaxStepSeqs < 2 {
		t.Errorf("no micro-batch held more than one sequence: %+v", st)
	} else {
		t.Logf("%+v", st)
	}
}

func TestPromptLongerThanContext(t *testing.T) {
	m := loadTiny(t, ocelot.Options{NCtx: 16})
	s, err := m.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int32, 20)
	_, err = s.Eval(context.Background(), ids)
	if err == nil || !strings.Contains(err.Error(), "20 tokens") || !strings.Contains(err.Error(), "context of 16") {
		t.Fatalf("err = %v, want both numbers", err)
	}
}

func TestCancel(t *testing.T) {
	m := loadTiny(t, ocelot.Options{NCtx: 256, NBatch: 64, NUbatch: 4})
	s, _ := m.NewSession()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Generate(ctx, make([]int32, 40), nil, 8, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	// A callback error stops generation with that error.
	stop := errors.New("enough")
	n := 0
	_, err = s.Generate(context.Background(), []int32{1, 2, 3}, nil, 8, func(int32, string) error {
		n++
		if n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 3 {
		t.Fatalf("err = %v after %d tokens", err, n)
	}
}

func TestClose(t *testing.T) {
	m := loadTiny(t, ocelot.Options{NCtx: 64})
	s, _ := m.NewSession()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Generation races with Close: it either finishes or fails with
		// ErrClosed, and never touches unmapped weights.
		_, err := s.Generate(context.Background(), []int32{1, 2, 3}, nil, 40, nil)
		if err != nil && !errors.Is(err, ocelot.ErrClosed) {
			t.Errorf("generate during close: %v", err)
		}
	}()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if _, err := m.NewSession(); !errors.Is(err, ocelot.ErrClosed) {
		t.Fatalf("NewSession after Close: %v", err)
	}
	if _, err := s.Eval(context.Background(), []int32{1}); !errors.Is(err, ocelot.ErrClosed) {
		t.Fatalf("Eval after Close: %v", err)
	}
}

func TestBadOptions(t *testing.T) {
	path := testmodel.Preset(t, "tiny")
	for _, o := range []ocelot.Options{
		{NCtx: -1},
		{NBatch: 8, NUbatch: 16},
		{Threads: -2},
		{TypeK: "q6_K"},
		{TypeV: "nope"},
		{Backend: "cuda"},
		{NCtx: 1<<57 + 1},
		{NCtx: math.MaxInt},
		{NBatch: math.MaxInt},
		{NUbatch: math.MaxInt},
		{Threads: 1000000},
		{NGPULayers: -5},
	} {
		if m, err := ocelot.Load(path, o); err == nil {
			m.Close()
			t.Errorf("Load accepted %+v", o)
		}
	}
	if _, err := ocelot.Load("/nonexistent.gguf", ocelot.Options{}); err == nil {
		t.Error("Load of a missing file succeeded")
	}
}

// A KV cache that cannot fit is refused before anything is allocated,
// with the bytes it needs and what to lower.
func TestKVCacheTooBig(t *testing.T) {
	for _, backend := range []string{"ref", "cpu"} {
		m := loadTiny(t, ocelot.Options{NCtx: 1 << 30, NBatch: 512, Backend: backend})
		_, err := m.NewSession()
		if err == nil {
			t.Fatalf("%s: a %d-cell cache was accepted", backend, 1<<30)
		}
		for _, want := range []string{"needs 1099511627776 bytes", "lower -c", "q4_0"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %v lacks %q", backend, err, want)
			}
		}
	}
}

// cancelAfter is a context that reports cancellation from its (after+1)th
// Err call on: it cancels "in the middle of a prompt" deterministically.
type cancelAfter struct {
	context.Context
	calls, after int
}

func (c *cancelAfter) Err() error {
	c.calls++
	if c.calls > c.after {
		return context.Canceled
	}
	return nil
}

// Cancelling in the middle of a prompt stops at the next micro-batch:
// no micro-batch after the cancellation is evaluated.
func TestCancelMidPrompt(t *testing.T) {
	for _, backend := range []string{"ref", "cpu"} {
		m := loadTiny(t, ocelot.Options{NCtx: 64, NBatch: 64, NUbatch: 4, Backend: backend})
		s, _ := m.NewSession()
		ctx := &cancelAfter{Context: context.Background(), after: 3}
		_, err := s.EvalAll(ctx, make([]int32, 40))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("%s: err = %v", backend, err)
		}
		if got := s.Pos(); got != 3*4 {
			t.Fatalf("%s: %d positions evaluated, want the 3 micro-batches before the cancellation (12)", backend, got)
		}
	}
}

// An invalid token id anywhere in the input, a later micro-batch
// included, is refused before anything is evaluated: the error counts
// from the input and the session is unchanged.
func TestBadTokenLeavesSession(t *testing.T) {
	for _, backend := range []string{"ref", "cpu"} {
		m := loadTiny(t, ocelot.Options{NCtx: 64, NBatch: 4, NUbatch: 4, Backend: backend})
		s, err := m.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		toks := []int32{1, 2, 3, 4, 5, 6, 7, -3, 9, 10}
		if _, err := s.Eval(context.Background(), toks); err == nil || !strings.Contains(err.Error(), "token id -3 at index 7") {
			t.Errorf("%s: %v", backend, err)
		}
		toks[7] = int32(m.Config().NVocab)
		if _, err := s.EvalAll(context.Background(), toks); err == nil || !strings.Contains(err.Error(), "at index 7") {
			t.Errorf("%s: %v", backend, err)
		}
		if s.Pos() != 0 {
			t.Errorf("%s: the session advanced to %d", backend, s.Pos())
		}
		s.Close()
	}
}

// A second Generate, or an Eval, on a session while a Generate runs on
// it returns ErrBusy instead of mixing tokens into its cache.
func TestGenerateBusy(t *testing.T) {
	m := loadTiny(t, ocelot.Options{NCtx: 64, Backend: "cpu"})
	s, err := m.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	inside, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		first := true
		_, err := s.Generate(context.Background(), []int32{1, 2, 3}, nil, 4, func(int32, string) error {
			if first {
				first = false
				close(inside)
				<-release
			}
			return nil
		})
		done <- err
	}()
	<-inside
	if _, err := s.Generate(context.Background(), []int32{4}, nil, 2, nil); !errors.Is(err, ocelot.ErrBusy) {
		t.Errorf("second Generate: %v, want ErrBusy", err)
	}
	if _, err := s.Eval(context.Background(), []int32{4}); !errors.Is(err, ocelot.ErrBusy) {
		t.Errorf("Eval during Generate: %v, want ErrBusy", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := s.Eval(context.Background(), []int32{4}); err != nil {
		t.Errorf("Eval after Generate: %v", err)
	}
}

// A non-finite weight in the file (an infinite Q4_0 block scale) is
// refused at Load, on every backend, naming the tensor.
func TestNonFiniteWeightNamed(t *testing.T) {
	path := testmodel.Rewrite(t, testmodel.Preset(t, "tiny"), func(w *gguf.Writer, f *gguf.File) {
		for _, ti := range f.Tensors {
			data, _ := f.TensorData(ti.Name)
			if ti.Name == "blk.1.attn_output.weight" {
				data = append([]byte(nil), data...)
				binary.LittleEndian.PutUint16(data[5*18:], 0x7c00) // block 5's scale +Inf
			}
			if err := w.AddTensorBytes(ti.Name, ti.Type, ti.Shape, data); err != nil {
				t.Fatal(err)
			}
		}
	})
	for _, backend := range []string{"ref", "cpu", "auto"} {
		m, err := ocelot.Load(path, ocelot.Options{NCtx: 32, Backend: backend})
		if err == nil {
			m.Close()
		}
		if err == nil || !strings.Contains(err.Error(), "blk.1.attn_output.weight holds a NaN or Inf at row 0, the scale of block 5") || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: %v", backend, err)
		}
	}
}
