package ocelot_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/ocelot-llm/ocelot"
	"github.com/ocelot-llm/ocelot/sample"
	"github.com/ocelot-llm/ocelot/synth"
)

// Load a model, open a session and generate greedily.
func Example() {
	dir, _ := os.MkdirTemp("", "ocelot-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "tiny.gguf")
	p, _ := synth.PresetByName("tiny")
	if err := synth.Generate(path, synth.DefaultOptions(p)); err != nil {
		fmt.Println(err)
		return
	}

	m, err := ocelot.Load(path, ocelot.Options{NCtx: 128})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	s, err := m.NewSession()
	if err != nil {
		fmt.Println(err)
		return
	}
	prompt, _ := m.Tokenize("Hello", true, false)
	res, err := s.Generate(context.Background(), prompt, sample.Greedy(), 8, func(id int32, text string) error {
		return nil // stream text here
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(res.Tokens), "tokens, stopped at", res.Stopped)
	// Output: 8 tokens, stopped at limit
}

// exampleModel generates the tiny synthetic model and loads it.
func exampleModel() (*ocelot.Model, func()) {
	dir, _ := os.MkdirTemp("", "ocelot-example")
	path := filepath.Join(dir, "tiny.gguf")
	p, _ := synth.PresetByName("tiny")
	if err := synth.Generate(path, synth.DefaultOptions(p)); err != nil {
		panic(err)
	}
	m, err := ocelot.Load(path, ocelot.Options{NCtx: 256, Backend: "cpu"})
	if err != nil {
		panic(err)
	}
	return m, func() { m.Close(); os.RemoveAll(dir) }
}

// Evaluate a system prompt once and continue it two ways.
func ExampleSession_Fork() {
	m, done := exampleModel()
	defer done()
	s, _ := m.NewSession()
	defer s.Close()
	system, _ := m.Tokenize("You are a helpful assistant.", true, false)
	if _, err := s.Eval(context.Background(), system); err != nil {
		fmt.Println(err)
		return
	}
	branch, _ := s.Fork()
	defer branch.Close()
	a, _ := m.Tokenize(" Hello", false, false)
	b, _ := m.Tokenize(" Goodbye", false, false)
	ra, _ := s.Generate(context.Background(), a, nil, 4, nil)
	rb, _ := branch.Generate(context.Background(), b, nil, 4, nil)
	fmt.Println(len(ra.Tokens), len(rb.Tokens), s.Pos() == len(system)+len(a)+4)
	// Output: 4 4 true
}

// Constrain the output to a JSON Schema: it always parses.
func ExampleModel_JSONSampler() {
	m, done := exampleModel()
	defer done()
	schema := []byte(`{"type":"object","properties":{"ok":{"type":"boolean"}},"required":["ok"]}`)
	smp, err := m.JSONSampler(sample.Params{}, schema)
	if err != nil {
		fmt.Println(err)
		return
	}
	s, _ := m.NewSession()
	defer s.Close()
	prompt, _ := m.Tokenize("Reply in JSON:", true, false)
	res, err := s.GenerateWith(context.Background(), prompt, ocelot.GenerateOptions{Sampler: smp, MaxTokens: 100})
	if err != nil {
		fmt.Println(err)
		return
	}
	var v struct{ OK *bool }
	fmt.Println(res.Stopped, json.Unmarshal([]byte(res.Text), &v) == nil && v.OK != nil)
	// Output: eog true
}

// Embed texts as unit vectors.
func ExampleModel_Embed() {
	m, done := exampleModel()
	defer done()
	a, _ := m.Tokenize("a wild cat", true, false)
	b, _ := m.Tokenize("of the Americas", true, false)
	es, err := m.Embed(context.Background(), [][]int32{a, b}, ocelot.PoolMean)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(es), len(es[0]) == m.Config().NEmbd)
	// Output: 2 true
}

// Sessions generating at the same time are batched together: their tokens
// share forward passes over one KV pool (Options.Parallel sizes it at
// first), and each gets what it would get alone.
func ExampleOptions_parallel() {
	m, done := exampleModel()
	defer done()
	prompts := []string{"one", "two", "three", "four"}
	out := make([]int, len(prompts))
	var wg sync.WaitGroup
	for i, p := range prompts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := m.NewSession()
			if err != nil {
				return
			}
			defer s.Close()
			ids, _ := m.Tokenize(p, true, false)
			res, _ := s.Generate(context.Background(), ids, nil, 6, nil)
			out[i] = len(res.Tokens)
		}()
	}
	wg.Wait()
	st := m.Stats()
	fmt.Println(out, st.StepSeqs >= st.Steps, st.KVCellsUsed)
	// Output: [6 6 6 6] true 0
}

// A second session whose prompt begins as a live session's does starts
// from that session's cache of the common prefix: it evaluates only the
// rest (Timings.PromptTokens).
func ExampleSession_prefixReuse() {
	m, done := exampleModel()
	defer done()
	system, _ := m.Tokenize("You are a helpful assistant. Answer briefly.", true, false)
	first, _ := m.NewSession()
	defer first.Close()
	if _, err := first.Eval(context.Background(), system); err != nil {
		fmt.Println(err)
		return
	}
	second, _ := m.NewSession()
	defer second.Close()
	q, _ := m.Tokenize(" Why?", false, false)
	res, _ := second.Generate(context.Background(), append(system, q...), nil, 2, nil)
	fmt.Println(res.Timings.PromptTokens == len(q))
	// Output: true
}
