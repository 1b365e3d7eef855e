package synth

import (
	"fmt"
	"math"

	"github.com/ocelot-llm/ocelot/model"
)

// MaxThreads bounds Options.Threads. It is ocelot.MaxThreads, the bound
// the engine puts on its own threads; synth cannot import the root
// package (which imports the backends whose tests generate models with
// synth), and cmd/ocelot's tests check that the two agree.
const MaxThreads = 4096

// The other bounds are the loader's (model.MaxLayers, model.MaxWidth,
// model.MaxHeads, model.MaxVocab), so that every model Generate writes is
// one ocelot loads, and a Go caller asking for more gets an error before
// anything is allocated rather than a panic or an exhausted memory.

// Validate checks the options as Generate does before doing any work:
// the layer override (0 keeps the preset's), the threads (0 means
// GOMAXPROCS), the weight types and each dimension of the preset. Each
// error names the field, its value and the range it must lie in. The
// size of a vocabulary read from Options.VocabPath is checked once read.
func (o Options) Validate() error {
	if o.Layers < 0 || o.Layers > model.MaxLayers {
		return fmt.Errorf("synth: layers %d out of range: want 1..%d, or 0 for the preset's %d", o.Layers, model.MaxLayers, o.Preset.NLayer)
	}
	if o.Threads < 0 || o.Threads > MaxThreads {
		return fmt.Errorf("synth: threads %d out of range: want 1..%d, or 0 for all cores", o.Threads, MaxThreads)
	}
	if err := checkWeightType("weight", o.Type); err != nil {
		return err
	}
	if err := checkWeightType("output", o.OutputType); err != nil {
		return err
	}
	p := o.Preset
	if o.Layers > 0 {
		p.NLayer = o.Layers
	}
	return p.validate(o.VocabPath == "")
}

// validate checks a preset's dimensions, its vocabulary size only when
// the built-in vocabulary is used (builtinVocab).
func (p Preset) validate(builtinVocab bool) error {
	for _, d := range []struct {
		field  string
		v, max int
	}{
		{"NEmbd (embedding_length)", p.NEmbd, model.MaxWidth},
		{"NLayer (block_count)", p.NLayer, model.MaxLayers},
		{"NHead (attention.head_count)", p.NHead, model.MaxHeads},
		{"NHeadKV (attention.head_count_kv)", p.NHeadKV, max(1, min(p.NHead, model.MaxHeads))},
		{"NFF (feed_forward_length)", p.NFF, model.MaxWidth},
		{"NCtxTrain (context_length)", p.NCtxTrain, math.MaxUint32},
	} {
		if d.v < 1 || d.v > d.max {
			return fmt.Errorf("synth: preset %q: %s %d out of range: want 1..%d", p.Name, d.field, d.v, d.max)
		}
	}
	if builtinVocab {
		if err := checkVocabSize(fmt.Sprintf("preset %q: NVocab", p.Name), p.NVocab); err != nil {
			return err
		}
	}
	if p.NEmbd%p.NHead != 0 || p.NHead%p.NHeadKV != 0 || p.HeadDim()%2 != 0 {
		return fmt.Errorf("synth: preset %q: n_embd %d, heads %d, kv heads %d do not divide evenly (n_embd/heads must be even)", p.Name, p.NEmbd, p.NHead, p.NHeadKV)
	}
	return nil
}

// checkVocabSize checks a vocabulary size against the loader's bound.
// (The built-in vocabulary has a lower bound of its own, which
// BuiltinVocab reports: 256 bytes and the special tokens.)
func checkVocabSize(what string, n int) error {
	if n < 1 || n > model.MaxVocab {
		return fmt.Errorf("synth: %s %d out of range: want 1..%d tokens", what, n, model.MaxVocab)
	}
	return nil
}
