// Command export writes the model that scripts/train/train.py trained as
// a Llama GGUF file, through ocelot's GGUF writer:
//
//	go run ./scripts/train/export -weights model.safetensors \
//	    -tokenizer .devrun/train/tokenizer.gguf -o model-f16.gguf [-type f16]
//
// The safetensors file holds float32 (or float16) tensors under their GGUF
// names (token_embd.weight, blk.N.attn_q.weight, ..., output_norm.weight,
// rope_freqs.weight), each matrix in PyTorch's [out, in] layout, and the
// hyperparameters in its __metadata__ (n_embd, n_layer, n_head, n_head_kv,
// n_ff, n_vocab, n_ctx, rope_freq_base, rms_eps); scripts/train/README.md
// describes it. The GGUF file gets the metadata llama.cpp's converter
// writes for a Llama model (general.*, llama.*, and the tokenizer.* keys
// of -tokenizer, less the chat template with -no-chat-template), the
// matrices in -type (f16, f32, bf16 or q8_0) and the norm weights and
// RoPE factors in f32. Make Q4_0 from it with
// `ocelot quantize IN.gguf OUT.gguf q4_0`.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/ocelot-llm/ocelot/quant"
)

func main() {
	var o options
	flag.StringVar(&o.Weights, "weights", "", "model.safetensors written by train.py")
	flag.StringVar(&o.Tokenizer, "tokenizer", "", "GGUF file with the tokenizer (prepare's tokenizer.gguf)")
	flag.StringVar(&o.Out, "o", "", "GGUF file to write")
	typ := flag.String("type", "f16", "type of the weight matrices: f16, f32, bf16 or q8_0")
	flag.StringVar(&o.Name, "name", "", "general.name (default ocelot-go-<parameters>)")
	flag.BoolVar(&o.NoChatTemplate, "no-chat-template", false, "leave the tokenizer's chat template out (a base model)")
	flag.Parse()
	if err := cli(&o, *typ); err != nil {
		fmt.Fprintln(os.Stderr, "export:", err)
		os.Exit(1)
	}
}

func cli(o *options, typ string) error {
	if flag.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	if o.Weights == "" || o.Tokenizer == "" || o.Out == "" {
		return errors.New("-weights, -tokenizer and -o are required")
	}
	t, err := quant.ParseType(typ)
	if err != nil {
		return err
	}
	o.Type = t
	s, err := export(*o)
	if err != nil {
		return err
	}
	st, err := os.Stat(o.Out)
	if err != nil {
		return err
	}
	c := s.Config
	fmt.Printf("wrote %s: %s, %d tensors, %d parameters (n_embd %d, %d layers, %d/%d heads, n_ff %d, vocab %d, tied %v), %.2f MB\n",
		o.Out, o.Type, s.Tensors, s.Params, c.NEmbd, c.NLayer, c.NHead, c.NHeadKV, c.NFF, c.NVocab, c.Tied, float64(st.Size())/1e6)
	return nil
}
