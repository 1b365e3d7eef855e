// Package testmodel gives tests the synthetic models they need, generated
// once and cached under the git-ignored .cache/ folder.
package testmodel

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/ocelot-llm/ocelot/gguf"
	"github.com/ocelot-llm/ocelot/internal/testutil"
	"github.com/ocelot-llm/ocelot/synth"
)

// Path returns the file of the model that o describes, generating it on
// first use. Generation writes atomically, so test binaries running in
// parallel may race to make the same file without harm.
func Path(tb testing.TB, o synth.Options) string {
	tb.Helper()
	vocab := "builtin"
	if o.VocabPath != "" {
		vocab = filepath.Base(o.VocabPath)
	}
	layers := o.Preset.NLayer
	if o.Layers > 0 {
		layers = o.Layers
	}
	name := fmt.Sprintf("%s-l%d-%s-%s-tied%v-s%d-fast%v-%s-v%d.gguf", o.Preset.Name, layers, o.Type, o.OutputType,
		o.Tied || o.Preset.Tied, o.Seed, o.Fast, vocab, synth.FormatVersion)
	path := filepath.Join(testutil.CacheDir(tb), name)
	if _, err := os.Stat(path); err == nil {
		return path
	}
	if err := synth.Generate(path, o); err != nil {
		tb.Fatalf("testmodel: generate %s: %v", name, err)
	}
	return path
}

// Preset returns the path of a preset with default options (Q4_0 weights,
// Q6_K output, seed 1, the built-in vocabulary).
func Preset(tb testing.TB, name string) string {
	tb.Helper()
	p, err := synth.PresetByName(name)
	if err != nil {
		tb.Fatal(err)
	}
	return Path(tb, synth.DefaultOptions(p))
}

// Rewrite copies the model file src with its metadata into a new file in
// a temporary folder, letting edit add the tensors (and change metadata)
// to make a broken model, and returns the new file's path.
func Rewrite(tb testing.TB, src string, edit func(w *gguf.Writer, f *gguf.File)) string {
	tb.Helper()
	f, err := gguf.Open(src)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	w := gguf.NewWriter()
	for _, kv := range f.KVs() {
		w.Set(kv.Key, kv.Value)
	}
	edit(w, f)
	out := filepath.Join(tb.TempDir(), "rewritten.gguf")
	if err := w.WriteFile(out); err != nil {
		tb.Fatal(err)
	}
	return out
}
