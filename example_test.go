package ocelot_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

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
