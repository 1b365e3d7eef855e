// Package synth writes synthetic Llama-architecture GGUF models: the real
// shapes of Llama 3.x models (or small ones for tests) with seeded random
// weights and a real tokenizer, so that every part of ocelot can be run,
// tested and benchmarked without downloading a model.
package synth

import (
	"fmt"
	"sort"
)

// Preset is the shape of a model.
type Preset struct {
	Name      string
	NEmbd     int  // embedding_length
	NLayer    int  // block_count
	NHead     int  // attention.head_count
	NHeadKV   int  // attention.head_count_kv
	NFF       int  // feed_forward_length
	NVocab    int  // vocabulary size of the built-in tokenizer (ignored with a vocab file)
	Tied      bool // no output.weight: the output reuses token_embd
	NCtxTrain int  // context_length
}

// HeadDim is the size of one attention head.
func (p Preset) HeadDim() int { return p.NEmbd / p.NHead }

// presets are the shapes ocelot ships. tiny and small are for tests; 1b,
// 3b and 8b are the shapes of Llama 3.2 1B, Llama 3.2 3B and Llama 3.1 8B.
var presets = map[string]Preset{
	"tiny":  {Name: "tiny", NEmbd: 256, NLayer: 4, NHead: 8, NHeadKV: 2, NFF: 768, NVocab: 4096, NCtxTrain: 4096},
	"small": {Name: "small", NEmbd: 512, NLayer: 8, NHead: 8, NHeadKV: 4, NFF: 1536, NVocab: 4096, NCtxTrain: 4096},
	"1b":    {Name: "1b", NEmbd: 2048, NLayer: 16, NHead: 32, NHeadKV: 8, NFF: 8192, NVocab: 128256, Tied: true, NCtxTrain: 131072},
	"3b":    {Name: "3b", NEmbd: 3072, NLayer: 28, NHead: 24, NHeadKV: 8, NFF: 8192, NVocab: 128256, Tied: true, NCtxTrain: 131072},
	"8b":    {Name: "8b", NEmbd: 4096, NLayer: 32, NHead: 32, NHeadKV: 8, NFF: 14336, NVocab: 128256, NCtxTrain: 131072},
}

// PresetByName returns the named preset (tiny, small, 1b, 3b, 8b).
func PresetByName(name string) (Preset, error) {
	p, ok := presets[name]
	if !ok {
		return Preset{}, fmt.Errorf("synth: unknown preset %q (have %v)", name, PresetNames())
	}
	return p, nil
}

// PresetNames lists the preset names, smallest first.
func PresetNames() []string {
	names := make([]string, 0, len(presets))
	for n := range presets {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := presets[names[i]], presets[names[j]]
		return a.NEmbd*a.NLayer < b.NEmbd*b.NLayer
	})
	return names
}
