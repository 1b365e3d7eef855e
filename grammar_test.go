package ocelot_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/ocelot-llm/ocelot"
	"github.com/ocelot-llm/ocelot/sample"
)

// A random model constrained by a JSON schema writes JSON that parses and
// has the schema's fields, greedy and sampled, with logprobs for every
// token.
func TestGenerateJSONSchema(t *testing.T) {
	m := loadTiny(t, ocelot.Options{NCtx: 256, Backend: "cpu"})
	schema := []byte(`{"type":"object","properties":{"ok":{"type":"boolean"},"color":{"enum":["red","green","blue"]},"n":{"type":"integer"}},"required":["ok","color"]}`)
	for _, p := range []sample.Params{{}, {Temp: 0.9, TopK: 40, Seed: 7}} {
		smp, err := m.JSONSampler(p, schema)
		if err != nil {
			t.Fatal(err)
		}
		prompt, _ := m.Tokenize("Answer in JSON:", true, false)
		s := newSession(t, m)
		res, err := s.GenerateWith(context.Background(), prompt, ocelot.GenerateOptions{Sampler: smp, MaxTokens: 200, Logprobs: 3})
		if err != nil {
			t.Fatal(err)
		}
		if res.Stopped != ocelot.StopEOG {
			t.Fatalf("temp %v: stopped %s after %q", p.Temp, res.Stopped, res.Text)
		}
		var v struct {
			OK    *bool   `json:"ok"`
			Color *string `json:"color"`
		}
		if err := json.Unmarshal([]byte(res.Text), &v); err != nil || v.OK == nil || v.Color == nil {
			t.Fatalf("temp %v: %q does not parse as the schema: %v", p.Temp, res.Text, err)
		}
		if len(res.Logprobs) != len(res.Tokens)+1 { // the end-of-generation draw too
			t.Errorf("%d logprobs for %d tokens", len(res.Logprobs), len(res.Tokens))
		}
		for i, lp := range res.Logprobs {
			if lp.Chosen.Logprob > 0 || len(lp.Top) == 0 || lp.Top[0].Logprob < lp.Chosen.Logprob {
				t.Errorf("token %d: logprobs %+v", i, lp)
			}
		}
		t.Logf("temp %v: %s", p.Temp, res.Text)
	}
	if _, err := m.JSONSampler(sample.Params{}, []byte(`{"type":"string","pattern":"a+"}`)); err == nil {
		t.Error("an unsupported keyword was accepted")
	}
	if _, err := m.GrammarSampler(sample.Params{}, `root ::= "a" missing`); err == nil {
		t.Error("a broken grammar was accepted")
	}
}
