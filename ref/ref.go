// Package ref is ocelot's reference Llama transformer: the forward pass in
// plain float32 over dequantized weight rows, written to be read top to
// bottom like the model definition. It defines what correct output is:
// every accelerated backend is measured against it.
//
// It is the specification, not a foundation: only the reference engine
// (the root package's --backend ref) and package conformance import it.
package ref

import "github.com/ocelot-llm/ocelot/model"

// Model is a loaded model seen by the reference engine: its weights, with
// the reference forward pass as methods.
type Model struct {
	*model.Model
}

// New wraps a loaded model for the reference engine.
func New(m *model.Model) *Model { return &Model{m} }
