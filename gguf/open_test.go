package gguf

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ocelot-llm/ocelot/internal/testutil"
)

// sameFile reports how a and b differ in everything but their storage.
func sameFile(t *testing.T, a, b *File) {
	t.Helper()
	if a.Version != b.Version || a.Alignment != b.Alignment || a.DataOffset != b.DataOffset || a.Size != b.Size {
		t.Errorf("header differs: %d %d %d %d vs %d %d %d %d", a.Version, a.Alignment, a.DataOffset, a.Size,
			b.Version, b.Alignment, b.DataOffset, b.Size)
	}
	if !reflect.DeepEqual(a.KVs(), b.KVs()) {
		t.Error("metadata differs")
	}
	if !reflect.DeepEqual(a.Tensors, b.Tensors) {
		t.Errorf("tensors differ:\n%+v\n%+v", a.Tensors, b.Tensors)
	}
	for _, ti := range a.Tensors {
		da, err := a.TensorData(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		db, err := b.TensorData(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(da, db) {
			t.Errorf("tensor %q data differs", ti.Name)
		}
	}
}

// TestOpen checks Open (mapped and ReadAt) against Parse on a written
// file, TensorData and Close.
func TestOpen(t *testing.T) {
	w, ts := sampleWriter(t, 3, 0)
	path := filepath.Join(t.TempDir(), "sample.gguf")
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		useMap bool
	}{{"mmap", true}, {"readat", false}} {
		t.Run(tt.name, func(t *testing.T) {
			f, err := open(path, tt.useMap)
			if err != nil {
				t.Fatal(err)
			}
			if tt.useMap && mapSupported && !f.mapped {
				t.Error("file was not memory-mapped")
			}
			if !tt.useMap && f.data != nil {
				t.Error("ReadAt mode holds the file in memory")
			}
			sameFile(t, f, parsed)
			for _, st := range ts {
				got, err := f.TensorData(st.name)
				if err != nil || !bytes.Equal(got, st.data) {
					t.Errorf("TensorData(%q) wrong (%v)", st.name, err)
				}
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			if _, err := f.TensorData(ts[0].name); err == nil || !strings.Contains(err.Error(), "closed") {
				t.Errorf("TensorData after Close: %v", err)
			}
			// Metadata and infos outlive Close.
			if f.Architecture() != "llama" || len(f.Tensors) != len(ts) {
				t.Error("metadata lost on Close")
			}
		})
	}
}

// TestReadAtWindow parses through a window smaller than most fields, so
// that the ReadAt path refills for nearly every read.
func TestReadAtWindow(t *testing.T) {
	defer func(n int64) { windowSize = n }(windowSize)
	for _, n := range []int64{1, 7, 64} {
		windowSize = n
		w, _ := sampleWriter(t, 3, 0)
		data := encode(t, w)
		parsed, err := Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parse(&fileSource{r: bytes.NewReader(data), size: int64(len(data))}, int64(len(data)))
		if err != nil {
			t.Fatalf("window %d: %v", n, err)
		}
		f.r = bytes.NewReader(data)
		sameFile(t, f, parsed)
	}
}

// TestVocabFiles opens llama.cpp's real vocab files.
func TestVocabFiles(t *testing.T) {
	dir := testutil.VocabDir(t)
	tests := []struct {
		file      string
		model     string
		pre       string
		nTokens   int
		bos, eos  uint32
		hasMerges bool
		hasScores bool
		token0    string
	}{
		{"ggml-vocab-llama-bpe.gguf", "gpt2", "llama-bpe", 128256, 128000, 128001, true, false, "!"},
		{"ggml-vocab-llama-spm.gguf", "llama", "default", 32000, 1, 2, false, true, "<unk>"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join(dir, tt.file)
			f, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()

			if f.Version != 3 || f.Alignment != 32 || len(f.Tensors) != 0 {
				t.Errorf("version %d alignment %d tensors %d", f.Version, f.Alignment, len(f.Tensors))
			}
			if got := f.Architecture(); got != "llama" {
				t.Errorf("architecture %q", got)
			}
			str := func(key string) string {
				s, err := f.String(key)
				if err != nil {
					t.Error(err)
				}
				return s
			}
			if got := str("tokenizer.ggml.model"); got != tt.model {
				t.Errorf("tokenizer model %q, want %q", got, tt.model)
			}
			if got := str("tokenizer.ggml.pre"); got != tt.pre {
				t.Errorf("tokenizer pre %q, want %q", got, tt.pre)
			}
			tokens, err := f.Strings("tokenizer.ggml.tokens")
			if err != nil {
				t.Fatal(err)
			}
			if len(tokens) != tt.nTokens || tokens[0] != tt.token0 {
				t.Errorf("%d tokens starting %q, want %d starting %q", len(tokens), tokens[0], tt.nTokens, tt.token0)
			}
			if n, err := f.ArchUint32("vocab_size"); err != nil || n != uint32(tt.nTokens) {
				t.Errorf("vocab_size %d, %v", n, err)
			}
			if n, err := f.ArchUint32("block_count"); err != nil || n != 32 {
				t.Errorf("block_count %d, %v", n, err)
			}
			if eps, err := f.ArchFloat32("attention.layer_norm_rms_epsilon"); err != nil || eps != 1e-5 {
				t.Errorf("rms epsilon %g, %v", eps, err)
			}
			types, err := f.Int32s("tokenizer.ggml.token_type")
			if err != nil || len(types) != tt.nTokens {
				t.Errorf("%d token types, %v", len(types), err)
			}
			if id, err := f.Uint32("tokenizer.ggml.bos_token_id"); err != nil || id != tt.bos {
				t.Errorf("bos %d, %v", id, err)
			}
			if id, err := f.Uint32("tokenizer.ggml.eos_token_id"); err != nil || id != tt.eos {
				t.Errorf("eos %d, %v", id, err)
			}
			if merges, err := f.Strings("tokenizer.ggml.merges"); tt.hasMerges && (err != nil || len(merges) == 0 || !strings.Contains(merges[0], " ")) {
				t.Errorf("merges: %d, %v", len(merges), err)
			}
			if scores, err := f.Float32s("tokenizer.ggml.scores"); tt.hasScores && (err != nil || len(scores) != tt.nTokens) {
				t.Errorf("scores: %d, %v", len(scores), err)
			}

			// Parse, Open and the ReadAt fallback agree, and writing the
			// file again reproduces its metadata bytes.
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			sameFile(t, f, parsed)
			slow, err := open(path, false)
			if err != nil {
				t.Fatal(err)
			}
			defer slow.Close()
			sameFile(t, slow, parsed)
			again := reencode(t, parsed)
			if !bytes.Equal(again[:len(data)], data) || len(again) != int(parsed.DataOffset) {
				t.Errorf("re-encoding differs from the original (%d vs %d bytes)", len(again), len(data))
			}
		})
	}
}

func BenchmarkOpen(b *testing.B) {
	path := filepath.Join(testutil.VocabDir(b), "ggml-vocab-llama-bpe.gguf")
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Size())
	b.ReportAllocs()
	for b.Loop() {
		f, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}
