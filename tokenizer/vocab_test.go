package tokenizer

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestVocabCases runs every case of llama.cpp's test-tokenizer-0 for the
// Llama 3 BPE and Llama 2 SPM vocabularies, tokenized as it does:
// add_special = false, parse_special = false.
func TestVocabCases(t *testing.T) {
	for _, name := range []string{"ggml-vocab-llama-bpe.gguf", "ggml-vocab-llama-spm.gguf"} {
		t.Run(name, func(t *testing.T) {
			tok := vocabTokenizer(t, name)
			cases := readVocabCases(t, name)
			pass := 0
			for i, c := range cases {
				got, err := tok.Encode(c.input, false, false)
				if err != nil {
					t.Errorf("case %d %q: %v", i, c.input, err)
					continue
				}
				if diff := cmp.Diff(c.want, got); diff != "" {
					t.Errorf("case %d %q: ids differ (-llama.cpp +ocelot):\n%s", i, c.input, diff)
					continue
				}
				pass++
			}
			t.Logf("%d/%d cases pass", pass, len(cases))
		})
	}
}
