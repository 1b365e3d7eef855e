package synth

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ocelot-llm/ocelot/gguf"
	"github.com/ocelot-llm/ocelot/model"
)

// Every option and preset dimension has a range; one outside it is an
// error from Validate and from Generate, before any work (no vocabulary
// trained, no file written), naming the field, the value and the range.
func TestOptionsBounds(t *testing.T) {
	maxL, maxW, maxH, maxV := strconv.Itoa(model.MaxLayers), strconv.Itoa(model.MaxWidth), strconv.Itoa(model.MaxHeads), strconv.Itoa(model.MaxVocab)
	for _, c := range []struct {
		name string
		edit func(*Options)
		want []string // "" when the options are valid
	}{
		{"defaults", func(*Options) {}, nil},
		{"layers at the loader's bound", func(o *Options) { o.Layers = model.MaxLayers }, nil},
		{"threads at the bound", func(o *Options) { o.Threads = MaxThreads }, nil},
		{"seed at the top of its range", func(o *Options) { o.Seed = math.MaxUint64 }, nil},
		{"layers 2000000000", func(o *Options) { o.Layers = 2_000_000_000 }, []string{"layers 2000000000", "1.." + maxL}},
		{"layers one too many", func(o *Options) { o.Layers = model.MaxLayers + 1 }, []string{"layers " + strconv.Itoa(model.MaxLayers+1), "1.." + maxL}},
		{"negative layers", func(o *Options) { o.Layers = -1 }, []string{"layers -1", "1.." + maxL}},
		{"negative threads", func(o *Options) { o.Threads = -1 }, []string{"threads -1", "1.." + strconv.Itoa(MaxThreads)}},
		{"too many threads", func(o *Options) { o.Threads = MaxThreads + 1 }, []string{"threads " + strconv.Itoa(MaxThreads+1), "1.." + strconv.Itoa(MaxThreads)}},
		{"preset layers", func(o *Options) { o.Preset.NLayer = model.MaxLayers + 1 }, []string{"NLayer", strconv.Itoa(model.MaxLayers + 1), "1.." + maxL}},
		{"preset layers 0", func(o *Options) { o.Preset.NLayer = 0 }, []string{"NLayer", " 0 ", "1.." + maxL}},
		{"preset layers overridden", func(o *Options) { o.Preset.NLayer, o.Layers = 1<<30, 2 }, nil},
		{"width", func(o *Options) { o.Preset.NEmbd = model.MaxWidth * 2 }, []string{"NEmbd", strconv.Itoa(model.MaxWidth * 2), "1.." + maxW}},
		{"width 0", func(o *Options) { o.Preset.NEmbd = 0 }, []string{"NEmbd", "1.." + maxW}},
		{"feed-forward", func(o *Options) { o.Preset.NFF = math.MaxInt32 }, []string{"NFF", strconv.Itoa(math.MaxInt32), "1.." + maxW}},
		{"negative feed-forward", func(o *Options) { o.Preset.NFF = -5 }, []string{"NFF", "-5 out of range", "1.." + maxW}},
		{"heads", func(o *Options) { o.Preset.NHead = model.MaxHeads + 1 }, []string{"NHead", "1.." + maxH}},
		{"kv heads above heads", func(o *Options) { o.Preset.NHeadKV = 16 }, []string{"NHeadKV", "16", "1..8"}},
		{"kv heads 0", func(o *Options) { o.Preset.NHeadKV = 0 }, []string{"NHeadKV", "1..8"}},
		{"context length 0", func(o *Options) { o.Preset.NCtxTrain = 0 }, []string{"NCtxTrain", "1.." + strconv.Itoa(math.MaxUint32)}},
		{"context length beyond uint32", func(o *Options) { o.Preset.NCtxTrain = math.MaxUint32 + 1 }, []string{"NCtxTrain", "1.." + strconv.Itoa(math.MaxUint32)}},
		{"vocab", func(o *Options) { o.Preset.NVocab = model.MaxVocab + 1 }, []string{"NVocab", strconv.Itoa(model.MaxVocab + 1), "1.." + maxV}},
		{"vocab 0", func(o *Options) { o.Preset.NVocab = 0 }, []string{"NVocab 0 out of range", "1.." + maxV}},
		{"odd head size", func(o *Options) { o.Preset.NEmbd, o.Preset.NHead, o.Preset.NHeadKV = 264, 8, 2 }, []string{"divide"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := tiny(t)
			c.edit(&o)
			err := o.Validate()
			if c.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate accepted the options")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate: %q does not mention %q", err, w)
				}
			}
			path := filepath.Join(t.TempDir(), "m.gguf")
			start := time.Now()
			gerr := Generate(path, o)
			if gerr == nil || gerr.Error() != err.Error() {
				t.Fatalf("Generate: %v, want Validate's error %v", gerr, err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Generate took %v to refuse the options", d)
			}
			if _, err := os.Lstat(path); err == nil {
				t.Fatal("a refused generation wrote a file")
			}
		})
	}
}

// A vocabulary file's size is checked once read: one without tokens is
// refused with the range.
func TestVocabFileSize(t *testing.T) {
	dir := t.TempDir()
	vocab := filepath.Join(dir, "empty-vocab.gguf")
	w := gguf.NewWriter()
	w.Set("tokenizer.ggml.model", gguf.String("gpt2"))
	w.Set("tokenizer.ggml.tokens", gguf.Strings([]string{}))
	if err := w.WriteFile(vocab); err != nil {
		t.Fatal(err)
	}
	o := tiny(t)
	o.VocabPath = vocab
	o.Preset.NVocab = 0 // ignored with a vocabulary file
	if err := o.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	path := filepath.Join(dir, "m.gguf")
	err := Generate(path, o)
	if err == nil || !strings.Contains(err.Error(), "empty-vocab.gguf: number of tokens 0") || !strings.Contains(err.Error(), "1.."+strconv.Itoa(model.MaxVocab)) {
		t.Fatalf("Generate with an empty vocabulary: %v", err)
	}
	if _, err := os.Lstat(path); err == nil {
		t.Fatal("a refused generation wrote a file")
	}
}

// Generate refuses a target that is not a regular file before any work.
func TestGenerateTarget(t *testing.T) {
	dir := t.TempDir()
	o := tiny(t)
	err := Generate(dir, o)
	if err == nil || !strings.Contains(err.Error(), "refusing to replace "+dir+": it is a directory") {
		t.Fatalf("Generate over a directory: %v", err)
	}
}

// fillRandom's bound on the values it makes at once changes no byte:
// one thread, a few and MaxThreads (more than there are chunks) write
// the same.
func TestFillRandomThreads(t *testing.T) {
	tp := tensorPlan{name: "w", typ: tiny(t).Type, shape: []int64{256, 1000}, std: 0.1}
	var want []byte
	for _, threads := range []int{1, 3, MaxThreads} {
		var b strings.Builder
		if err := fillRandom(&b, tp, 7, threads); err != nil {
			t.Fatal(err)
		}
		if want == nil {
			want = []byte(b.String())
		} else if b.String() != string(want) {
			t.Fatalf("%d threads wrote different bytes", threads)
		}
	}
}
