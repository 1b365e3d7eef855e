package gguf_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/ocelot-llm/ocelot/gguf"
	"github.com/ocelot-llm/ocelot/quant"
)

// Write a small model file, then open it and read its metadata and a
// tensor.
func Example() {
	dir, err := os.MkdirTemp("", "gguf-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "tiny.gguf")

	w := gguf.NewWriter()
	w.Set("general.architecture", gguf.String("llama"))
	w.Set("llama.block_count", gguf.Uint32(2))
	w.Set("llama.rope.freq_base", gguf.Float32(10000))
	w.Set("tokenizer.ggml.tokens", gguf.Strings([]string{"<unk>", "<s>", "</s>"}))
	norm := make([]byte, 4*8) // eight float32 zeros
	if err := w.AddTensorBytes("output_norm.weight", quant.F32, []int64{8}, norm); err != nil {
		log.Fatal(err)
	}
	if err := w.WriteFile(path); err != nil {
		log.Fatal(err)
	}

	f, err := gguf.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()

	layers, err := f.ArchUint32("block_count")
	if err != nil {
		log.Fatal(err)
	}
	tokens, err := f.Strings("tokenizer.ggml.tokens")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("GGUF v%d, %s, %d layers, %d tokens\n", f.Version, f.Architecture(), layers, len(tokens))
	for _, t := range f.Tensors {
		data, err := f.TensorData(t.Name)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s %s %v: %d bytes at %d\n", t.Name, t.Type, t.Shape, len(data), f.DataOffset+t.Offset)
	}
	if _, err := f.Uint32("llama.expert_count"); err != nil {
		fmt.Println(err)
	}
	// Output:
	// GGUF v3, llama, 2 layers, 3 tokens
	// output_norm.weight f32 [8]: 32 bytes at 288
	// gguf: key "llama.expert_count" not found
}
