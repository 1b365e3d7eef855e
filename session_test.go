package ocelot_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/ocelot-llm/ocelot"
)

func newSession(t *testing.T, m *ocelot.Model) *ocelot.Session {
	t.Helper()
	s, err := m.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// After Generate stops at its limit the sequence holds every token it
// reports (the last one pending, not yet in the cache), the timings count
// them all, and continuing with an empty prompt gives what one longer
// Generate gives.
func TestGenerateCacheSemantics(t *testing.T) {
	// Each session evaluates its own prompt (the timings count it).
	m := loadTiny(t, ocelot.Options{NCtx: 64, Backend: "cpu", NoPrefixReuse: true})
	prompt, err := m.Tokenize("The ocelot hunts at night", true, false)
	if err != nil {
		t.Fatal(err)
	}
	whole, err := newSession(t, m).Generate(context.Background(), prompt, nil, 8, nil)
	if err != nil || len(whole.Tokens) != 8 || whole.Stopped != ocelot.StopLimit {
		t.Fatalf("8 tokens: %v, %+v", err, whole)
	}
	s := newSession(t, m)
	first, err := s.Generate(context.Background(), prompt, nil, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	if first.Timings.GenTokens != len(first.Tokens) || first.Timings.PromptTokens != len(prompt) {
		t.Errorf("timings %+v for %d generated tokens", first.Timings, len(first.Tokens))
	}
	if s.Pos() != len(prompt)+4 || s.Cached() != len(prompt)+3 || !slices.Equal(s.Tokens(), append(slices.Clone(prompt), first.Tokens...)) {
		t.Errorf("after 4 tokens: pos %d, cached %d, tokens %v", s.Pos(), s.Cached(), s.Tokens())
	}
	second, err := s.Generate(context.Background(), nil, nil, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := append(first.Tokens, second.Tokens...); !slices.Equal(got, whole.Tokens) {
		t.Errorf("4 then 4 more = %v, one Generate of 8 = %v", got, whole.Tokens)
	}
	if second.Timings.PromptTokens != 1 {
		t.Errorf("the continuation evaluated %d tokens first, want the pending one", second.Timings.PromptTokens)
	}

	// Truncate rewinds: generating again from the same point repeats the
	// same tokens.
	if err := s.Truncate(len(prompt) + 3); err != nil {
		t.Fatal(err)
	}
	again, err := s.Generate(context.Background(), nil, nil, 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(again.Tokens, whole.Tokens[3:8]) {
		t.Errorf("after Truncate: %v, want %v", again.Tokens, whole.Tokens[3:8])
	}
	if err := s.Truncate(1000); err == nil {
		t.Error("Truncate past the end was accepted")
	}

	// Reuse keeps the common prefix of a restated prompt.
	rest, err := s.Reuse(append(slices.Clone(prompt), 7, 8))
	if err != nil || !slices.Equal(rest, []int32{7, 8}) || s.Pos() != len(prompt) {
		t.Errorf("Reuse: %v, %v, pos %d", rest, err, s.Pos())
	}
	rest, _ = s.Reuse(prompt[:3])
	if !slices.Equal(rest, prompt[2:3]) || s.Pos() != 2 {
		t.Errorf("Reuse of a shorter prompt: %v, pos %d (one token must stay to evaluate)", rest, s.Pos())
	}
}

// Stop strings end the generation where the text contains them, across
// token boundaries; the text before them is passed on, the rest is not.
func TestGenerateStopStrings(t *testing.T) {
	m := loadTiny(t, ocelot.Options{NCtx: 96, Backend: "cpu"})
	prompt, _ := m.Tokenize("The ocelot is a wild cat", true, false)
	full, err := newSession(t, m).GenerateWith(context.Background(), prompt, ocelot.GenerateOptions{MaxTokens: 24})
	if err != nil {
		t.Fatal(err)
	}
	text := full.Text
	if len(text) < 12 {
		t.Fatalf("generated text %q is too short to cut", text)
	}
	// A stop string from the middle of the text, three bytes long.
	stop := text[len(text)/2 : len(text)/2+3]
	cut := strings.Index(text, stop)
	var streamed strings.Builder
	res, err := newSession(t, m).GenerateWith(context.Background(), prompt, ocelot.GenerateOptions{
		MaxTokens: 24, Stop: []string{"\x00never", stop},
		OnToken: func(_ int32, s string) error { streamed.WriteString(s); return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != ocelot.StopString || res.Text != text[:cut] || streamed.String() != text[:cut] {
		t.Errorf("stop %q: stopped %s, text %q, streamed %q; want %q", stop, res.Stopped, res.Text, streamed.String(), text[:cut])
	}
	if !slices.Equal(res.Tokens, full.Tokens[:len(res.Tokens)]) {
		t.Errorf("tokens %v are not a prefix of %v", res.Tokens, full.Tokens)
	}
}

// A cancelled generation says so.
func TestGenerateCancelled(t *testing.T) {
	m := loadTiny(t, ocelot.Options{NCtx: 64, Backend: "cpu"})
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	res, err := newSession(t, m).Generate(ctx, []int32{1, 2, 3}, nil, 20, func(int32, string) error {
		if n++; n == 3 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || res.Stopped != ocelot.StopCancelled || len(res.Tokens) != 3 {
		t.Errorf("err %v, stopped %q, %d tokens", err, res.Stopped, len(res.Tokens))
	}
}

// GenerateOptions.OnPrompt hears after every micro-batch of the prompt
// how many of its tokens are in the cache, on the reference engine and the
// CPU backend alike.
func TestGenerateOnPrompt(t *testing.T) {
	for _, backend := range []string{"ref", "cpu"} {
		m := loadTiny(t, ocelot.Options{NCtx: 64, NBatch: 8, NUbatch: 3, Backend: backend})
		prompt := []int32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
		var calls [][2]int
		_, err := newSession(t, m).GenerateWith(context.Background(), prompt, ocelot.GenerateOptions{MaxTokens: 2,
			OnPrompt: func(done, total int) { calls = append(calls, [2]int{done, total}) }})
		if err != nil {
			t.Fatal(err)
		}
		// n_batch 8 then n_ubatch 3: micro-batches 3, 3, 2 | 3.
		want := [][2]int{{3, 11}, {6, 11}, {8, 11}, {11, 11}}
		if !slices.Equal(calls, want) {
			t.Errorf("%s: OnPrompt calls %v, want %v", backend, calls, want)
		}
	}
}
