package tokenizer_test

import (
	"fmt"
	"log"
	"strings"

	"github.com/ocelot-llm/ocelot/tokenizer"
)

// A tokenizer is built from a vocabulary: here one trained on a few
// sentences; usually tokenizer.Load reads it from a GGUF model file.
func Example() {
	v, err := tokenizer.TrainBPE(strings.Repeat("the cat sat on the mat. the dog sat on the log. ", 20), 1024)
	if err != nil {
		log.Fatal(err)
	}
	tok, err := tokenizer.New(v)
	if err != nil {
		log.Fatal(err)
	}
	ids, err := tok.Encode("the cat sat on the log.", false, false)
	if err != nil {
		log.Fatal(err)
	}
	text, err := tok.Decode(ids)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(ids), "tokens:", text)
	// Output: 7 tokens: the cat sat on the log.
}

// Chat messages are rendered in the model's format, then encoded with BOS
// added and the special tokens parsed.
func ExampleRenderChat() {
	prompt, err := tokenizer.RenderChat("llama3", []tokenizer.Message{
		{Role: "system", Content: "Answer briefly."},
		{Role: "user", Content: "What is a tokenizer?"},
	}, true)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q\n", prompt)
	// Output: "<|start_header_id|>system<|end_header_id|>\n\nAnswer briefly.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is a tokenizer?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
}

// A StreamDecoder releases text as tokens arrive, never half a character:
// here each token is a single byte of "é", "€" or "🦙".
func ExampleStreamDecoder() {
	v, err := tokenizer.TrainBPE("", 512) // just the 256 bytes and the special tokens
	if err != nil {
		log.Fatal(err)
	}
	tok, err := tokenizer.New(v)
	if err != nil {
		log.Fatal(err)
	}
	ids, err := tok.Encode("é€🦙", false, false)
	if err != nil {
		log.Fatal(err)
	}
	d := tok.NewStreamDecoder()
	for _, id := range ids {
		text, err := d.Add(id)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%q ", text)
	}
	fmt.Printf("%q\n", d.Flush())
	// Output: "" "é" "" "" "€" "" "" "" "🦙" ""
}
