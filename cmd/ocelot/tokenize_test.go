package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocelot-llm/ocelot/gguf"
	"github.com/ocelot-llm/ocelot/internal/testutil"
)

// runTokenizeCLI runs "ocelot tokenize args..." with stdin and returns the
// exit code, stdout and stderr.
func runTokenizeCLI(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	old := tokenizeStdin
	tokenizeStdin = strings.NewReader(stdin)
	defer func() { tokenizeStdin = old }()
	var out, errb bytes.Buffer
	code := runMain(append([]string{"tokenize"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestTokenizeCLI(t *testing.T) {
	dir := testutil.VocabDir(t)
	bpe := filepath.Join(dir, "ggml-vocab-llama-bpe.gguf")
	spm := filepath.Join(dir, "ggml-vocab-llama-spm.gguf")
	file := filepath.Join(t.TempDir(), "text.txt")
	if err := os.WriteFile(file, []byte("Hello world"), 0o644); err != nil {
		t.Fatal(err)
	}
	lines := filepath.Join(t.TempDir(), "lines.jsonl")
	if err := os.WriteFile(lines, []byte("\"Hello world\"\n\n\" Hello\\nworld\"\n\"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		// BOS is the default, as in llama-tokenize, where the model asks for it.
		{"text", "", []string{"-m", bpe, "-p", "Hello world"}, "[128000, 9906, 1917]\n"},
		{"no-bos", "", []string{"-m", bpe, "-p", "Hello world", "--no-bos"}, "[9906, 1917]\n"},
		{"bos is a no-op", "", []string{"-m", bpe, "-p", "Hello world", "--bos"}, "[128000, 9906, 1917]\n"},
		{"no-bos wins over bos", "", []string{"-m", bpe, "-p", "Hello world", "--bos", "--no-bos"}, "[9906, 1917]\n"},
		{"special off", "", []string{"-m", bpe, "-p", "<|eot_id|>", "--no-bos", "--no-parse-special"}, "[27, 91, 68, 354, 851, 91, 29]\n"},
		{"special by default", "", []string{"-m", bpe, "-p", "<|eot_id|>", "--no-bos"}, "[128009]\n"},
		{"special on", "", []string{"-m", bpe, "-p", "<|eot_id|>", "--special", "--no-bos"}, "[128009]\n"},
		{"special on with bos", "", []string{"-m", bpe, "-p", "<|begin_of_text|>Hi", "--special"}, "[128000, 128000, 13347]\n"},
		{"empty", "", []string{"-m", bpe, "-p", ""}, "[128000]\n"},
		{"empty no-bos", "", []string{"-m", bpe, "-p", "", "--no-bos"}, "[]\n"},
		{"spm", "", []string{"-m", spm, "-p", "Hello world"}, "[1, 15043, 3186]\n"},
		{"spm no-bos", "", []string{"-m", spm, "--no-bos", "-p", "Hello world"}, "[15043, 3186]\n"},
		{"file", "", []string{"-m", bpe, "-f", file}, "[128000, 9906, 1917]\n"},
		{"stdin", "Hello world", []string{"-m", bpe}, "[128000, 9906, 1917]\n"},
		{"stdin dash", "Hello world", []string{"-m", bpe, "-f", "-", "--no-bos"}, "[9906, 1917]\n"},
		{"pieces", "", []string{"-m", bpe, "-p", "Hi 🦙", "--show-pieces", "--no-bos"}, "13347\t\"Hi\"\n11410\t\" \\xf0\\x9f\"\n99\t\"\\xa6\"\n247\t\"\\x99\"\n"},
		{"pieces bos", "", []string{"-m", bpe, "-p", "Hi", "--show-pieces"}, "128000\t\"<|begin_of_text|>\"\n13347\t\"Hi\"\n"},
		{"jsonl file", "", []string{"-m", bpe, "--jsonl", "-f", lines}, "[128000, 9906, 1917]\n[128000, 22691, 198, 14957]\n[128000]\n"},
		{"jsonl file no-bos", "", []string{"-m", bpe, "--jsonl", "--no-bos", "-f", lines}, "[9906, 1917]\n[22691, 198, 14957]\n[]\n"},
		{"jsonl stdin", "\"Hello\"\n\"안녕\"", []string{"-m", spm, "--jsonl"}, "[1, 15043]\n[1, 29871, 31734, 238, 136, 152]\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errb := runTokenizeCLI(t, c.stdin, c.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errb)
			}
			if out != c.want {
				t.Errorf("output\n%q\nwant\n%q", out, c.want)
			}
		})
	}
}

func TestTokenizeCLIErrors(t *testing.T) {
	dir := testutil.VocabDir(t)
	bpe := filepath.Join(dir, "ggml-vocab-llama-bpe.gguf")
	cases := []struct {
		name  string
		stdin string
		args  []string
		code  int
		msg   string
	}{
		{"no model", "", []string{"-p", "x"}, 2, "-m is required"},
		{"p and f", "", []string{"-m", bpe, "-p", "x", "-f", "y"}, 2, "not both"},
		{"stray argument", "", []string{"-m", bpe, "extra"}, 2, "unexpected argument"},
		{"bad flag", "", []string{"-m", bpe, "--nope"}, 2, "nope"},
		{"jsonl with p", "", []string{"-m", bpe, "--jsonl", "-p", "x"}, 2, "--jsonl"},
		{"missing model", "", []string{"-m", filepath.Join(dir, "absent.gguf"), "-p", "x"}, 1, "absent.gguf"},
		{"not gguf", "", []string{"-m", filepath.Join(dir, "ggml-vocab-llama-bpe.gguf.inp"), "-p", "x"}, 1, "ggml-vocab-llama-bpe.gguf.inp"},
		{"missing file", "", []string{"-m", bpe, "-f", filepath.Join(dir, "absent.txt")}, 1, "absent.txt"},
		{"bad jsonl", "\"ok\"\n{\"a\": 1}\n", []string{"-m", bpe, "--jsonl"}, 1, "line 2"},
		{"bad json", "\"ok\"\nnot json\n", []string{"-m", bpe, "--jsonl"}, 1, "line 2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, errb := runTokenizeCLI(t, c.stdin, c.args...)
			if code != c.code || !strings.Contains(errb, c.msg) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, errb, c.code, c.msg)
			}
		})
	}
}

func TestTokenizeCLIHelp(t *testing.T) {
	code, out, errb := runTokenizeCLI(t, "", "-h")
	if code != 0 || out != "" || strings.Count(errb, "usage: ocelot tokenize") != 1 || !strings.Contains(errb, "-show-pieces") || !strings.Contains(errb, "-no-bos") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errb)
	}
}

// A model that does not ask for BOS (tokenizer.ggml.add_bos_token false)
// gets none by default either, as in llama-tokenize.
func TestTokenizeCLINoBOSModel(t *testing.T) {
	src, err := gguf.Open(filepath.Join(testutil.VocabDir(t), "ggml-vocab-llama-bpe.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	w := gguf.NewWriter()
	for _, kv := range src.KVs() {
		w.Set(kv.Key, kv.Value)
	}
	src.Close()
	w.Set("tokenizer.ggml.add_bos_token", gguf.Bool(false))
	path := filepath.Join(t.TempDir(), "no-bos.gguf")
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"-m", path, "-p", "Hello world"}, {"-m", path, "-p", "Hello world", "--no-bos"}, {"-m", path, "-p", "Hello world", "--bos"}} {
		code, out, errb := runTokenizeCLI(t, "", args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errb)
		}
		if out != "[9906, 1917]\n" {
			t.Errorf("%v: %q, want no BOS", args, out)
		}
	}
}
