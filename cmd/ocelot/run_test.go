package main

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/ocelot-llm/ocelot/internal/testmodel"
)

// runJSON runs `ocelot run ... --json` and decodes its output.
type runOut struct {
	Tokens    []int32 `json:"tokens"`
	Generated []int32 `json:"generated"`
	Text      string  `json:"text"`
	Stopped   string  `json:"stopped"`
	Seed      uint64  `json:"seed"`
	Timings   struct {
		NCtx int `json:"n_ctx"`
	} `json:"timings"`
}

func runJSON(t *testing.T, args ...string) runOut {
	t.Helper()
	code, out, errs := cli(t, append(append([]string{"run"}, args...), "--json", "-q", "--backend", "cpu")...)
	if code != 0 {
		t.Fatalf("%v: code %d: %s", args, code, errs)
	}
	var r runOut
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
	return r
}

// llama.cpp's spellings of run's flags, and its habits: long forms, -e,
// -c 0, a random seed by default, reverse prompts, JSON schemas, -fa.
func TestRunLlamaCppHabits(t *testing.T) {
	tiny := testmodel.Preset(t, "tiny")
	long := runJSON(t, "--model", tiny, "--prompt", "The ocelot", "--n-predict", "6", "--ctx-size", "64", "--threads", "1", "--temp", "0")
	short := runJSON(t, "-m", tiny, "-p", "The ocelot", "-n", "6", "-c", "64", "-t", "1", "--temp", "0")
	if len(long.Generated) != 6 || !slices.Equal(long.Generated, short.Generated) || long.Text == "" || long.Timings.NCtx != 64 {
		t.Errorf("long forms: %+v, short: %+v", long, short)
	}
	esc := runJSON(t, "-m", tiny, "-p", `a\nb\tc\\`, "-e", "-n", "1", "--temp", "0")
	raw := runJSON(t, "-m", tiny, "-p", "a\nb\tc\\", "-n", "1", "--temp", "0")
	if !slices.Equal(esc.Tokens, raw.Tokens) {
		t.Errorf("-e: %v, the real characters: %v", esc.Tokens, raw.Tokens)
	}
	if r := runJSON(t, "-m", tiny, "-p", "hi", "-n", "1", "-c", "0"); r.Timings.NCtx != 4096 {
		t.Errorf("-c 0: n_ctx %d, want the model's 4096", r.Timings.NCtx)
	}
	a := runJSON(t, "-m", tiny, "-p", "The ocelot", "-n", "12", "--temp", "1.5")
	b := runJSON(t, "-m", tiny, "-p", "The ocelot", "-n", "12", "--temp", "1.5")
	if a.Seed == b.Seed {
		t.Errorf("two runs without --seed drew the same seed %d", a.Seed)
	}
	c := runJSON(t, "-m", tiny, "-p", "The ocelot", "-n", "12", "--temp", "1.5", "--seed", "5")
	d := runJSON(t, "-m", tiny, "-p", "The ocelot", "-n", "12", "--temp", "1.5", "--seed", "5")
	if c.Seed != 5 || c.Text != d.Text {
		t.Errorf("--seed 5 twice: %q (seed %d) and %q", c.Text, c.Seed, d.Text)
	}
	// -r stops where the text contains it, and does not print it.
	stop := long.Text[len(long.Text)/2:][:2]
	r := runJSON(t, "-m", tiny, "-p", "The ocelot", "-n", "6", "-c", "64", "--temp", "0", "-r", "\x01never", "--reverse-prompt", stop)
	if r.Stopped != "stop" || r.Text != long.Text[:strings.Index(long.Text, stop)] {
		t.Errorf("-r %q: stopped %s, text %q of %q", stop, r.Stopped, r.Text, long.Text)
	}
	j := runJSON(t, "-m", tiny, "-p", "JSON:", "-n", "300", "--temp", "0", "-j", `{"type":"object","properties":{"a":{"type":"boolean"}},"required":["a"]}`)
	var v map[string]bool
	if j.Stopped != "eog" || json.Unmarshal([]byte(j.Text), &v) != nil {
		t.Errorf("--json-schema: stopped %s, text %q", j.Stopped, j.Text)
	}
	for _, fa := range []string{"on", "off", "auto"} {
		runJSON(t, "-m", tiny, "-p", "hi", "-n", "1", "-fa", fa)
	}
}

// --chat takes -p as its first message and -sys as the system prompt.
func TestChatFirstMessage(t *testing.T) {
	m := chatModel(t)
	var out, errb bytes.Buffer
	s := samplerFlags{temp: 0}
	err := runChat(context.Background(), m, &s, chatSettings{n: 4, system: "Be brief.", first: "Hello"}, strings.NewReader("And then?\n"), &out, &errb)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(out.String(), "\n") != 2 || !strings.Contains(errb.String(), "prompt evaluation report") {
		t.Fatalf("two replies and a report expected: stdout %q, stderr %q", out.String(), errb.String())
	}
}
