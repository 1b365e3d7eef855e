package ocelot

import (
	"fmt"
	"sync"

	"github.com/ocelot-llm/ocelot/sample"
	"github.com/ocelot-llm/ocelot/sample/grammar"
)

// vocab is the model's vocabulary as the grammar sampler walks it, built
// on first use.
type vocab struct {
	once sync.Once
	v    *sample.Vocab
	err  error
}

// GrammarSampler returns a sampler for one sequence whose output the
// grammar (GBNF, see package sample/grammar) accepts: tokens the grammar
// cannot take next are never drawn, and end-of-generation only where the
// grammar is complete. p sets the rest of the chain as sample.New does.
func (m *Model) GrammarSampler(p sample.Params, gbnf string) (*sample.Chain, error) {
	g, err := grammar.Parse(gbnf)
	if err != nil {
		return nil, fmt.Errorf("ocelot: grammar: %w", err)
	}
	m.vocab.once.Do(func() {
		pieces, err := sample.VocabPieces(m.tok)
		if err != nil {
			m.vocab.err = fmt.Errorf("ocelot: grammar vocabulary: %w", err)
			return
		}
		m.vocab.v, m.vocab.err = sample.NewVocab(pieces, m.tok.EOGTokens())
	})
	if m.vocab.err != nil {
		return nil, m.vocab.err
	}
	ch, err := p.Chain(m.vocab.v.NewGrammar(g))
	if err != nil {
		return nil, fmt.Errorf("ocelot: %w", err)
	}
	return ch, nil
}

// JSONSampler is GrammarSampler for JSON: any JSON value when schema is
// empty, else a value of the JSON Schema (type, properties, required,
// items, enum, const; see grammar.FromJSONSchema).
func (m *Model) JSONSampler(p sample.Params, schema []byte) (*sample.Chain, error) {
	src := grammar.JSON
	if len(schema) > 0 {
		var err error
		if src, err = grammar.FromJSONSchema(schema); err != nil {
			return nil, fmt.Errorf("ocelot: %w", err)
		}
	}
	return m.GrammarSampler(p, src)
}
