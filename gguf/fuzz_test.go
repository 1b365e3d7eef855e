package gguf

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ocelot-llm/ocelot/quant"
)

// fuzzSeeds returns valid files made with the Writer and broken ones.
func fuzzSeeds(t testing.TB) [][]byte {
	small := smallFile(t)
	w3, _ := sampleWriter(t, 3, 0)
	w2, _ := sampleWriter(t, 2, 64)
	empty := NewWriter()
	vocab := NewWriter()
	vocab.Set(KeyArchitecture, String("llama"))
	vocab.Set("tokenizer.ggml.model", String("llama"))
	vocab.Set("tokenizer.ggml.tokens", Strings([]string{"<unk>", "<s>", "</s>", "▁a"}))
	vocab.Set("tokenizer.ggml.scores", Float32s([]float32{0, 0, 0, -1}))
	vocab.Set("tokenizer.ggml.token_type", Int32s([]int32{2, 3, 3, 1}))
	vocab.Set("tokenizer.ggml.add_bos_token", Bool(true))
	one := NewWriter()
	one.Set(KeyAlignment, Uint32(8))
	if err := one.AddTensorBytes("w", quant.Q8_0, []int64{32}, make([]byte, 34)); err != nil {
		t.Fatal(err)
	}

	seeds := [][]byte{
		small,
		encode(t, w3),
		encode(t, w2),
		encode(t, empty),
		encode(t, vocab),
		encode(t, one),
		nil,
		[]byte("GGUF"),
		small[:len(small)/2],
		(&raw{}).header(1, 0, 0).b,
		(&raw{}).header(3, 1<<40, 1<<40).b,
	}
	// A few single-byte corruptions of the small file.
	for _, at := range []int{4, 8, 16, 30, 40, 100, len(small) - 200} {
		b := bytes.Clone(small)
		b[at] ^= 0x80
		seeds = append(seeds, b)
	}
	return seeds
}

// FuzzParse checks that Parse never panics, that every failure is a
// *FormatError, and that a file it accepts survives a write/read round
// trip unchanged.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("%T %v is not a *FormatError", err, err)
			}
			if fe.Offset < 0 || fe.Offset > int64(len(data)) {
				t.Fatalf("error offset %d outside the %d-byte input: %v", fe.Offset, len(data), err)
			}
			return
		}
		for _, ti := range file.Tensors {
			d, err := file.TensorData(ti.Name)
			if err != nil || int64(len(d)) != ti.Size {
				t.Fatalf("tensor %q: %d bytes, want %d (%v)", ti.Name, len(d), ti.Size, err)
			}
		}
		// Whatever Parse accepts, the Writer writes, and what it writes
		// reads back to the same file. (A huge alignment is valid but
		// would make the copy gigabytes long.)
		if file.Alignment > 1<<16 {
			return
		}
		b1 := reencode(t, file)
		f1, err := Parse(b1)
		if err != nil {
			t.Fatalf("re-encoded file does not parse: %v", err)
		}
		if b2 := reencode(t, f1); !bytes.Equal(b1, b2) {
			t.Fatal("write/read round trip is not stable")
		}
	})
}
