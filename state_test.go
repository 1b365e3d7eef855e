package ocelot_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/ocelot-llm/ocelot"
	"github.com/ocelot-llm/ocelot/internal/testmodel"
)

// A forked session and a session restored from a saved state continue
// exactly as the original does, on the reference engine and the CPU
// backend.
func TestForkAndState(t *testing.T) {
	for _, backend := range []string{"ref", "cpu"} {
		t.Run(backend, func(t *testing.T) {
			m := loadTiny(t, ocelot.Options{NCtx: 64, Backend: backend, TypeK: "q8_0", TypeV: "f16"})
			prompt, _ := m.Tokenize("A system prompt, evaluated once", true, false)
			orig := newSession(t, m)
			if _, err := orig.Generate(context.Background(), prompt, nil, 3, nil); err != nil {
				t.Fatal(err)
			}
			var state bytes.Buffer
			if err := orig.SaveState(&state); err != nil {
				t.Fatal(err)
			}
			fork, err := orig.Fork()
			if err != nil {
				t.Fatal(err)
			}
			defer fork.Close()
			restored := newSession(t, m)
			if err := restored.LoadState(bytes.NewReader(state.Bytes())); err != nil {
				t.Fatal(err)
			}
			want, err := orig.Generate(context.Background(), nil, nil, 6, nil)
			if err != nil {
				t.Fatal(err)
			}
			for name, s := range map[string]*ocelot.Session{"fork": fork, "restored": restored} {
				if !slices.Equal(s.Tokens(), orig.Tokens()[:len(prompt)+3]) {
					t.Errorf("%s: sequence %v", name, s.Tokens())
				}
				got, err := s.Generate(context.Background(), nil, nil, 6, nil)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got.Tokens, want.Tokens) {
					t.Errorf("%s continues with %v, the original with %v", name, got.Tokens, want.Tokens)
				}
			}
		})
	}
}

// A state that does not fit is refused with a reason, and the session
// keeps what it had.
func TestLoadStateErrors(t *testing.T) {
	m := loadTiny(t, ocelot.Options{NCtx: 64, Backend: "cpu"})
	s := newSession(t, m)
	if _, err := s.Generate(context.Background(), []int32{1, 2, 3, 4}, nil, 2, nil); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := s.SaveState(&buf); err != nil {
		t.Fatal(err)
	}
	state := buf.Bytes()
	damaged := slices.Clone(state)
	damaged[len(damaged)-40] ^= 0x55

	small, err := ocelot.Load(testmodel.Preset(t, "small"), ocelot.Options{NCtx: 64, Backend: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	q8 := loadTiny(t, ocelot.Options{NCtx: 64, Backend: "cpu", TypeK: "q8_0"})
	short := loadTiny(t, ocelot.Options{NCtx: 4, Backend: "cpu"})
	for _, tc := range []struct {
		name  string
		m     *ocelot.Model
		state []byte
		want  string
	}{
		{"truncated", m, state[:len(state)/2], "truncated"},
		{"no checksum", m, state[:len(state)-2], "truncated"},
		{"damaged", m, damaged, "checksum"},
		{"not a state", m, []byte("GGUF and more bytes than a header"), "bad magic"},
		{"empty", m, nil, "truncated"},
		{"another model", small, state, "another model"},
		{"other KV types", q8, state, "KV cache is f16/f16"},
		{"longer than n_ctx", short, state, "do not fit n_ctx 4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst, err := tc.m.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			defer dst.Close()
			if _, err := dst.Eval(context.Background(), []int32{9}); err != nil {
				t.Fatal(err)
			}
			err = dst.LoadState(bytes.NewReader(tc.state))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
			if !slices.Equal(dst.Tokens(), []int32{9}) {
				t.Errorf("the session changed to %v", dst.Tokens())
			}
		})
	}
}
