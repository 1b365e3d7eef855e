// Command prepare builds the training data of ocelot's small trained model
// (scripts/train/README.md) from the Go distribution's own source tree,
// $(go env GOROOT)/src, which every machine with Go carries under Go's
// BSD-style licence ($(go env GOROOT)/LICENSE).
//
//	go run ./scripts/train/prepare -o .devrun/train
//
// It collects the tree's hand-written .go files (no testdata or vendor
// directories, no files marked "Code generated ... DO NOT EDIT.", none over
// -max-file bytes), holds out the package trees named by -heldout for
// evaluation, trains a byte-level BPE vocabulary with ocelot's own trainer
// (tokenizer.TrainBPE) on the training files (tests excepted, at most
// -tok-bytes), and encodes the files.
// It writes into the -o directory:
//
//	train.bin      training token ids, little-endian uint16, each file preceded by BOS
//	val.txt        the held-out files' text, concatenated in path order (for ocelot perplexity)
//	val.bin        val.txt's token ids as ocelot perplexity makes them: BOS, then the text
//	tokenizer.gguf the vocabulary: a GGUF file of tokenizer.* metadata only
//	files.txt      every file used: split ("train" or "val"), bytes and path
//	meta.json      sizes, ids, token counts, held-out trees and the check prompts
//
// Everything but meta.json's timings is the same on every run over the same
// Go tree: the files are ordered by a hash of their path (see rank), and
// the training files are taken in that order (non-test files first, then
// _test.go files with -tests) while they fit in -max-tokens.
package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/ocelot-llm/ocelot/gguf"
	"github.com/ocelot-llm/ocelot/synth"
	"github.com/ocelot-llm/ocelot/tokenizer"
)

// config is what one run does.
type config struct {
	GoRoot    string    `json:"goroot"`
	Out       string    `json:"-"`
	Vocab     int       `json:"vocab_size"`
	TokBytes  int       `json:"tokenizer_text_limit"`
	MaxTokens int       `json:"max_train_tokens"`
	MaxFile   int       `json:"max_file_bytes"`
	HeldOut   []string  `json:"heldout"`
	Tests     bool      `json:"tests"`
	Threads   int       `json:"-"`
	Log       io.Writer `json:"-"` // progress lines (nil: none)
}

// Defaults: a 4096-token vocabulary (3840 trained tokens and Llama 3's 256
// special ones), trained on up to 64 MiB of text (all of the training
// files but the tests: about 27 MB, 4 s on 2 cores); train.bin at most
// 12M tokens (24 MB).
const (
	defaultVocab     = 4096
	defaultTokBytes  = 64 << 20
	defaultMaxTokens = 12_000_000
	defaultMaxFile   = 256 << 10
	defaultHeldOut   = "encoding/json,net/url,text/template"
)

// checkPrompts are the prompts whose next-token logits train.py records
// in check.json, so that a test can compare ocelot's logits for the
// exported model with PyTorch's. Each is encoded as ocelot run would:
// BOS, then the text.
var checkPrompts = []struct{ Name, Text string }{
	{"main", "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfmt.Println(\""},
	{"error", "func (d *decoder) readHeader() error {\n\tif _, err := io.ReadFull(d.r, d.buf[:4]); err != nil {\n\t\treturn "},
	{"doc", "// Copyright 2011 The Go Authors. All rights reserved.\n// Use of this source code is governed by a BSD-style\n// license that can be found in the LICENSE file.\n\n// Package sort provides"},
}

func main() {
	cfg := config{Log: os.Stderr}
	var heldout string
	flag.StringVar(&cfg.Out, "o", "", "output directory (created if missing)")
	flag.StringVar(&cfg.GoRoot, "goroot", "", "Go tree whose src/ is the corpus (default: go env GOROOT)")
	flag.IntVar(&cfg.Vocab, "vocab", defaultVocab, "vocabulary size, including the 256 special tokens")
	flag.IntVar(&cfg.TokBytes, "tok-bytes", defaultTokBytes, "bytes of training text the tokenizer is trained on")
	flag.IntVar(&cfg.MaxTokens, "max-tokens", defaultMaxTokens, "most tokens in train.bin (2 bytes each)")
	flag.IntVar(&cfg.MaxFile, "max-file", defaultMaxFile, "largest source file taken, in bytes")
	flag.StringVar(&heldout, "heldout", defaultHeldOut, "comma-separated package trees under src/ held out for evaluation")
	flag.BoolVar(&cfg.Tests, "tests", true, "fill train.bin's remaining budget with _test.go files after the other files")
	flag.IntVar(&cfg.Threads, "t", runtime.GOMAXPROCS(0), "goroutines that encode")
	flag.Parse()
	if flag.NArg() != 0 {
		fail(fmt.Errorf("unexpected arguments %q", flag.Args()))
	}
	if cfg.Out == "" {
		fail(errors.New("-o DIR is required"))
	}
	for _, t := range strings.Split(heldout, ",") {
		if t = strings.Trim(strings.TrimSpace(t), "/"); t != "" {
			cfg.HeldOut = append(cfg.HeldOut, t)
		}
	}
	if cfg.GoRoot == "" {
		root, err := goRoot()
		if err != nil {
			fail(err)
		}
		cfg.GoRoot = root
	}
	if _, err := run(cfg); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "prepare:", err)
	os.Exit(1)
}

// goRoot asks the go command for GOROOT.
func goRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	root := strings.TrimSpace(string(out))
	if err != nil || root == "" {
		return "", fmt.Errorf("cannot find GOROOT (go env GOROOT: %q, %v); give -goroot", root, err)
	}
	return root, nil
}

// split is meta.json's account of one of train.bin and val.bin.
type split struct {
	Files       int     `json:"files"`
	Bytes       int     `json:"bytes"`
	Tokens      int     `json:"tokens"`
	BytesPerTok float64 `json:"bytes_per_token"`
	Candidates  int     `json:"candidate_files"`
	CandTests   int     `json:"candidate_test_files"`
	OverBudget  int     `json:"files_over_budget,omitempty"` // encoded, but did not fit

	TestFiles    int `json:"test_files"`
	NonTestFiles int `json:"non_test_files"`
}

// checkPrompt is a prompt of checkPrompts with its token ids.
type checkPrompt struct {
	Name string  `json:"name"`
	Text string  `json:"text"`
	IDs  []int32 `json:"ids"`
}

// meta is meta.json.
type meta struct {
	Format       int           `json:"format"`
	GoVersion    string        `json:"go_version"`
	Licence      string        `json:"licence"`
	Config       config        `json:"config"`
	VocabSize    int           `json:"vocab_size"`
	BOS          int32         `json:"bos_id"`
	EOS          int32         `json:"eos_id"`
	DType        string        `json:"dtype"`
	Separator    string        `json:"separator"`
	HeldOut      []string      `json:"heldout"`
	Skipped      skipped       `json:"skipped"`
	TokText      int           `json:"tokenizer_text_bytes"`
	Train        split         `json:"train"`
	Val          split         `json:"val"`
	CheckPrompts []checkPrompt `json:"check_prompts"`
	Timing       struct {
		Collect   float64 `json:"collect"`
		Tokenizer float64 `json:"tokenizer"`
		Encode    float64 `json:"encode"`
		Total     float64 `json:"total"`
	} `json:"timing_seconds"`
}

// run does the whole job and returns what it wrote to meta.json.
func run(cfg config) (*meta, error) {
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	switch {
	case cfg.Vocab > 1<<16:
		return nil, fmt.Errorf("vocabulary size %d does not fit uint16 token ids (at most 65536)", cfg.Vocab)
	case cfg.Vocab <= 512:
		// 256 byte tokens and 256 special ones leave no merges, and a
		// BPE vocabulary without merges does not load.
		return nil, fmt.Errorf("vocabulary size %d leaves no room for merges: it must exceed 512 (256 bytes and 256 special tokens)", cfg.Vocab)
	case cfg.MaxTokens < 1:
		return nil, fmt.Errorf("-max-tokens %d must be positive", cfg.MaxTokens)
	case cfg.TokBytes < 1:
		return nil, fmt.Errorf("-tok-bytes %d must be positive", cfg.TokBytes)
	case len(cfg.HeldOut) == 0:
		return nil, errors.New("no held-out package trees (-heldout)")
	}
	if cfg.Threads < 1 {
		cfg.Threads = 1
	}
	start := time.Now()
	m := &meta{Format: 1, Config: cfg, HeldOut: cfg.HeldOut, DType: "uint16 little-endian",
		Separator: "BOS (<|begin_of_text|>) before every file; no EOS"}
	m.GoVersion = goVersion(cfg.GoRoot)
	m.Licence = filepath.Join(cfg.GoRoot, "LICENSE") + " (BSD-3-Clause, The Go Authors)"

	src := filepath.Join(cfg.GoRoot, "src")
	trainDocs, valDocs, skip, err := collect(src, cfg.HeldOut, cfg.MaxFile, cfg.Tests)
	if err != nil {
		return nil, err
	}
	m.Skipped = skip
	if len(trainDocs) == 0 || len(valDocs) == 0 {
		return nil, fmt.Errorf("%s: %d training and %d held-out files; need some of each", src, len(trainDocs), len(valDocs))
	}
	shuffle(trainDocs)
	m.Timing.Collect = time.Since(start).Seconds()
	fmt.Fprintf(cfg.Log, "prepare: %s (%s): %d training and %d held-out files (skipped: %+v)\n", src, m.GoVersion, len(trainDocs), len(valDocs), skip)

	t0 := time.Now()
	text := tokenizerText(trainDocs, cfg.TokBytes)
	m.TokText = len(text)
	fmt.Fprintf(cfg.Log, "prepare: training a %d-token vocabulary on %d bytes...\n", cfg.Vocab, len(text))
	voc, err := tokenizer.TrainBPE(text, cfg.Vocab)
	if err != nil {
		return nil, err
	}
	tok, err := tokenizer.New(voc)
	if err != nil {
		return nil, fmt.Errorf("trained vocabulary: %w", err)
	}
	m.Timing.Tokenizer = time.Since(t0).Seconds()
	m.VocabSize, m.BOS, m.EOS = tok.VocabSize(), tok.BOS(), tok.EOS()
	fmt.Fprintf(cfg.Log, "prepare: vocabulary trained in %.1f s\n", m.Timing.Tokenizer)

	t0 = time.Now()
	trainIDs, trainUsed, over, err := encodeBudget(tok, trainDocs, cfg.MaxTokens, cfg.Threads)
	if err != nil {
		return nil, err
	}
	m.Train = account(trainUsed, len(trainDocs), len(trainIDs))
	m.Train.OverBudget = over
	for _, d := range trainDocs {
		if d.Test {
			m.Train.CandTests++
		}
	}
	// val.bin is val.txt tokenized as `ocelot perplexity -f val.txt` does
	// it (BOS, then the whole text), so that train.py's perplexity and
	// ocelot's are computed on the same tokens.
	var valText strings.Builder
	for _, d := range valDocs {
		valText.WriteString(d.Text)
	}
	valTok, err := tok.Encode(valText.String(), true, false)
	if err != nil {
		return nil, fmt.Errorf("encode the held-out text: %w", err)
	}
	valIDs := make([]uint16, len(valTok))
	for i, id := range valTok {
		valIDs[i] = uint16(id)
	}
	valUsed := make([]used, len(valDocs))
	for i, d := range valDocs {
		valUsed[i] = used{doc: d}
	}
	m.Val = account(valUsed, len(valDocs), len(valIDs))
	m.Timing.Encode = time.Since(t0).Seconds()

	for _, p := range checkPrompts {
		ids, err := tok.Encode(p.Text, true, false)
		if err != nil {
			return nil, fmt.Errorf("check prompt %s: %w", p.Name, err)
		}
		m.CheckPrompts = append(m.CheckPrompts, checkPrompt{p.Name, p.Text, ids})
	}

	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return nil, err
	}
	var list bytes.Buffer
	for _, part := range []struct {
		name string
		docs []used
	}{{"train", trainUsed}, {"val", valUsed}} {
		for _, d := range part.docs {
			fmt.Fprintf(&list, "%s\t%d\t%s\n", part.name, len(d.doc.Text), d.doc.Rel)
		}
	}
	files := []struct {
		name string
		data []byte
	}{
		{"train.bin", uint16LE(trainIDs)},
		{"val.bin", uint16LE(valIDs)},
		{"val.txt", []byte(valText.String())},
		{"files.txt", list.Bytes()},
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(cfg.Out, f.name), f.data, 0o644); err != nil {
			return nil, err
		}
	}
	if err := writeVocab(filepath.Join(cfg.Out, "tokenizer.gguf"), voc, m); err != nil {
		return nil, err
	}
	m.Timing.Total = time.Since(start).Seconds()
	var js bytes.Buffer
	enc := json.NewEncoder(&js)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(cfg.Out, "meta.json"), js.Bytes(), 0o644); err != nil {
		return nil, err
	}
	fmt.Fprintf(cfg.Log, "prepare: train.bin %d tokens from %d files (%.2f bytes/token), val.bin %d tokens from %d files; %.1f s in all\n",
		m.Train.Tokens, m.Train.Files, m.Train.BytesPerTok, m.Val.Tokens, m.Val.Files, m.Timing.Total)
	return m, nil
}

// goVersion is the first line of GOROOT/VERSION, or "unknown".
func goVersion(root string) string {
	data, err := os.ReadFile(filepath.Join(root, "VERSION"))
	if err != nil {
		return "unknown"
	}
	line, _, _ := strings.Cut(string(data), "\n")
	return strings.TrimSpace(line)
}

// used is a doc that went into a .bin file, with its token count (its
// BOS included).
type used struct {
	doc    doc
	tokens int
}

func account(u []used, candidates, tokens int) split {
	s := split{Files: len(u), Tokens: tokens, Candidates: candidates}
	for _, d := range u {
		s.Bytes += len(d.doc.Text)
		if d.doc.Test {
			s.TestFiles++
		} else {
			s.NonTestFiles++
		}
	}
	if tokens > 0 {
		s.BytesPerTok = float64(s.Bytes) / float64(tokens)
	}
	return s
}

// minRoom is the fewest tokens left in the budget for which encodeBudget
// looks for another doc that fits.
const minRoom = 64

// encodeBudget encodes docs in order, each as BOS and its tokens, and keeps
// those that fit in budget tokens: a doc that would overflow it is passed
// over (counted in over) and later, smaller ones may still fit. It stops
// encoding once fewer than minRoom tokens are left.
func encodeBudget(tok *tokenizer.Tokenizer, docs []doc, budget, threads int) ([]uint16, []used, int, error) {
	var ids []uint16
	var out []used
	over := 0
	step := 32 * threads
	for lo := 0; lo < len(docs) && budget-len(ids) >= minRoom; lo += step {
		hi := min(lo+step, len(docs))
		enc, err := encodeParallel(tok, docs[lo:hi], threads)
		if err != nil {
			return nil, nil, 0, err
		}
		for i, e := range enc {
			n := 1 + len(e)
			if len(ids)+n > budget {
				over++
				continue
			}
			ids = append(ids, uint16(tok.BOS()))
			for _, id := range e {
				ids = append(ids, uint16(id))
			}
			out = append(out, used{doc: docs[lo+i], tokens: n})
		}
	}
	return ids, out, over, nil
}

// encodeParallel encodes docs (no BOS, no special-token parsing) on up to
// threads goroutines.
func encodeParallel(tok *tokenizer.Tokenizer, docs []doc, threads int) ([][]int32, error) {
	out := make([][]int32, len(docs))
	errs := make([]error, len(docs))
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(threads, len(docs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out[i], errs[i] = tok.Encode(docs[i].Text, false, false)
			}
		}()
	}
	for i := range docs {
		next <- i
	}
	close(next)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", docs[i].Rel, err)
		}
	}
	return out, nil
}

func uint16LE(ids []uint16) []byte {
	b := make([]byte, 2*len(ids))
	for i, id := range ids {
		binary.LittleEndian.PutUint16(b[2*i:], id)
	}
	return b
}

// writeVocab writes the vocabulary as a GGUF file of metadata only, as
// llama.cpp's vocab files are: `ocelot tokenize -m` reads it, `ocelot gen
// --vocab` copies it, and the exporter takes its tokenizer.* keys.
func writeVocab(path string, v *tokenizer.Vocab, m *meta) error {
	w := gguf.NewWriter()
	w.Set("general.architecture", gguf.String("llama"))
	w.Set("general.name", gguf.String("ocelot-go-tokenizer"))
	w.Set("general.description", gguf.String(fmt.Sprintf(
		"byte-level BPE vocabulary of %d tokens trained by ocelot (tokenizer.TrainBPE) on %d bytes of the Go %s source tree (BSD-3-Clause)",
		len(v.Tokens), m.TokText, m.GoVersion)))
	for _, kv := range synth.VocabMetadata(v) {
		w.Set(kv.Key, kv.Value)
	}
	if err := w.WriteFile(path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
