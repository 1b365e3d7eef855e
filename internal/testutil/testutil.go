// Package testutil holds helpers shared by ocelot's tests: where the real
// tokenizer files live, and where generated models are cached.
package testutil

import (
	"os"
	"path/filepath"
	"testing"
)

// RepoRoot returns the repository root: the nearest folder above the
// working directory that holds go.mod. Tests run in their package's
// folder, so this finds the checkout they belong to.
func RepoRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatalf("testutil: working directory: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatalf("testutil: no go.mod above the working directory")
		}
		dir = parent
	}
}

// VocabDir returns the folder with llama.cpp's vocab GGUF files
// (ggml-vocab-llama-bpe.gguf and ggml-vocab-llama-spm.gguf with their
// .inp/.out cases). It is $OCELOT_VOCAB_DIR if set, else
// ../shared/testdata/vocab beside the checkout. Where the folder is absent
// the test is skipped with a one-line reason.
func VocabDir(tb testing.TB) string {
	tb.Helper()
	dir := os.Getenv("OCELOT_VOCAB_DIR")
	if dir == "" {
		dir = filepath.Join(filepath.Dir(RepoRoot(tb)), "shared", "testdata", "vocab")
	}
	if _, err := os.Stat(filepath.Join(dir, "ggml-vocab-llama-bpe.gguf")); err != nil {
		tb.Skipf("no vocab files at %s (set OCELOT_VOCAB_DIR or provide ../shared/testdata/vocab)", dir)
	}
	return dir
}

// CacheDir returns the git-ignored folder (.cache/ at the repository root)
// where tests keep models they generate, creating it if needed.
func CacheDir(tb testing.TB) string {
	tb.Helper()
	dir := filepath.Join(RepoRoot(tb), ".cache", "models")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatalf("testutil: cache dir: %v", err)
	}
	return dir
}
