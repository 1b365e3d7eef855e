package tokenizer

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ocelot-llm/ocelot/internal/testutil"
)

// The real vocabularies are loaded once per test binary.
var loaded struct {
	sync.Mutex
	toks map[string]*Tokenizer
}

// vocabTokenizer returns the tokenizer of llama.cpp's vocab file name
// ("ggml-vocab-llama-bpe.gguf"), skipping the test if the files are absent.
func vocabTokenizer(tb testing.TB, name string) *Tokenizer {
	tb.Helper()
	dir := testutil.VocabDir(tb)
	loaded.Lock()
	defer loaded.Unlock()
	if t, ok := loaded.toks[name]; ok {
		return t
	}
	t, err := Load(filepath.Join(dir, name))
	if err != nil {
		tb.Fatalf("load %s: %v", name, err)
	}
	if loaded.toks == nil {
		loaded.toks = map[string]*Tokenizer{}
	}
	loaded.toks[name] = t
	return t
}

func llama3(tb testing.TB) *Tokenizer {
	return vocabTokenizer(tb, "ggml-vocab-llama-bpe.gguf")
}

func llama2(tb testing.TB) *Tokenizer {
	return vocabTokenizer(tb, "ggml-vocab-llama-spm.gguf")
}

// vocabCase is one case of llama.cpp's test-tokenizer-0.
type vocabCase struct {
	input string
	want  []int32
}

// readVocabCases reads name.inp and name.out the way llama.cpp's
// test-tokenizer-0 does: inputs separated by "\n__ggml_vocab_test__\n",
// expected ids one line per case, space-separated.
func readVocabCases(tb testing.TB, name string) []vocabCase {
	tb.Helper()
	dir := testutil.VocabDir(tb)
	inp, err := os.ReadFile(filepath.Join(dir, name+".inp"))
	if err != nil {
		tb.Fatal(err)
	}
	out, err := os.ReadFile(filepath.Join(dir, name+".out"))
	if err != nil {
		tb.Fatal(err)
	}
	const sep = "\n__ggml_vocab_test__\n"
	var inputs []string
	raw := string(inp)
	for pos := 0; pos < len(raw); {
		next := strings.Index(raw[pos:], sep)
		if next < 0 {
			inputs = append(inputs, raw[pos:])
			break
		}
		inputs = append(inputs, raw[pos:pos+next])
		pos += next + len(sep)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(inputs) {
		tb.Fatalf("%s: %d inputs but %d outputs", name, len(inputs), len(lines))
	}
	cases := make([]vocabCase, len(inputs))
	for i, in := range inputs {
		cases[i].input = in
		cases[i].want = []int32{}
		for _, f := range strings.Fields(lines[i]) {
			id, err := strconv.ParseInt(f, 10, 32)
			if err != nil {
				tb.Fatalf("%s.out line %d: %v", name, i+1, err)
			}
			cases[i].want = append(cases[i].want, int32(id))
		}
	}
	return cases
}

func llama3Dir(tb testing.TB) string {
	return filepath.Join(testutil.VocabDir(tb), "ggml-vocab-llama-bpe.gguf")
}
