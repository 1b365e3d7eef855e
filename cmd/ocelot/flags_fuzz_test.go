package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// parseRun parses run's engine and sampler flags as runRun does, up to
// the Options Load would get and the sampler; it opens no model.
func parseRun(args []string) error {
	fs := newFlagSet("run", io.Discard)
	var e engineFlags
	var s samplerFlags
	e.register(fs)
	s.register(fs)
	fs.Int("n", 64, "")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := e.check(fs); err != nil {
		return err
	}
	if err := e.options(io.Discard).Validate(); err != nil {
		return err
	}
	_, err := s.params()
	return err
}

// FuzzRunFlags feeds arbitrary values to every numeric flag of `ocelot
// run`: each is accepted or refused with an error, never a panic.
func FuzzRunFlags(f *testing.F) {
	model := filepath.Join(f.TempDir(), "m.gguf")
	if err := os.WriteFile(model, []byte("GGUF"), 0o644); err != nil {
		f.Fatal(err)
	}
	f.Add("4096", "2048", "auto", "2", "auto", "0.8", "40", "0.95", "0.05", "1.1", "64", "1", "f16")
	f.Add("144115188075855873", "64", "8", "8", "31", "0", "0", "1", "0", "1", "2305843009213693952", "0", "q4_0")
	f.Add("1099511627776", "1099511627776", "1099511627776", "1000000", "99", "NaN", "-1", "2", "-0.5", "0", "-1", "18446744073709551615", "q6_K")
	f.Add("0", "-5", "0", "-1", "-2", "Inf", "9223372036854775807", "-Inf", "NaN", "-1", "9223372036854775807", "-1", "")
	f.Fuzz(func(t *testing.T, c, b, ub, threads, ngl, temp, topK, topP, minP, rp, rln, seed, ctk string) {
		args := []string{"-m", model, "-c", c, "-b", b, "-ub", ub, "-t", threads, "-ngl", ngl, "--temp", temp, "--top-k", topK,
			"--top-p", topP, "--min-p", minP, "--repeat-penalty", rp, "--repeat-last-n", rln, "--seed", seed, "-ctk", ctk}
		if err := parseRun(args); err != nil && strings.TrimSpace(err.Error()) == "" {
			t.Fatalf("empty error for %q", args)
		}
	})
}

// The examples are refused with the flag's name.
func TestRunFlagBounds(t *testing.T) {
	model := filepath.Join(t.TempDir(), "m.gguf")
	os.WriteFile(model, []byte("GGUF"), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-c", "144115188075855873"}, "-c must lie in"},
		{[]string{"-c", "1099511627776", "-b", "1099511627776", "-ub", "1099511627776"}, "-c must lie in"},
		{[]string{"-t", "1000000"}, "-t must lie in"},
		{[]string{"--repeat-last-n", "2305843009213693952"}, "repeat"},
	} {
		err := parseRun(append([]string{"-m", model}, tc.args...))
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tc.want)) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
	if err := parseRun([]string{"-m", model}); err != nil {
		t.Errorf("defaults: %v", err)
	}
}
