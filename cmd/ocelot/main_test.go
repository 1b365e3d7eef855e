package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocelot-llm/ocelot"
	"github.com/ocelot-llm/ocelot/internal/testmodel"
	"github.com/ocelot-llm/ocelot/internal/testutil"
)

// cli runs the CLI in-process and returns its exit code and output.
func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := runMain(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestHelpAndUnknownCommand(t *testing.T) {
	if code, out, _ := cli(t, "help"); code != 0 || !strings.Contains(out, "gen") || !strings.Contains(out, "info") {
		t.Fatalf("help: code %d, %q", code, out)
	}
	if code, _, errs := cli(t, "frobnicate"); code != 2 || !strings.Contains(errs, `unknown command "frobnicate"`) {
		t.Fatalf("unknown command: code %d, %q", code, errs)
	}
}

func TestInfoJSON(t *testing.T) {
	path := testmodel.Preset(t, "tiny")
	code, out, errs := cli(t, "info", "-m", path, "--json")
	if code != 0 {
		t.Fatalf("code %d: %s", code, errs)
	}
	var mi map[string]any
	if err := json.Unmarshal([]byte(out), &mi); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{
		"architecture": "llama", "block_count": 4.0, "embedding_length": 256.0, "head_count": 8.0,
		"head_count_kv": 2.0, "feed_forward_length": 768.0, "vocab_size": 4096.0, "context_length": 4096.0,
	} {
		if mi[k] != want {
			t.Errorf("%s = %v, want %v", k, mi[k], want)
		}
	}
	tensors := mi["tensors"].([]any)
	if len(tensors) != 4*9+4 {
		t.Fatalf("%d tensors", len(tensors))
	}
	types := map[string]string{}
	for _, x := range tensors {
		m := x.(map[string]any)
		types[m["name"].(string)] = m["type"].(string)
		if _, ok := m["shape"].([]any); !ok {
			t.Fatalf("tensor without shape: %v", m)
		}
	}
	if types["output.weight"] != "q6_K" || types["blk.0.ffn_down.weight"] != "q4_0" || types["output_norm.weight"] != "f32" {
		t.Fatalf("types: %v", types)
	}
}

func TestInfoVocabFiles(t *testing.T) {
	dir := testutil.VocabDir(t)
	for file, want := range map[string]string{"ggml-vocab-llama-bpe.gguf": "gpt2", "ggml-vocab-llama-spm.gguf": "llama"} {
		code, out, errs := cli(t, "info", "-m", filepath.Join(dir, file))
		if code != 0 {
			t.Fatalf("%s: code %d: %s", file, code, errs)
		}
		if !strings.Contains(out, "architecture:  llama") || !strings.Contains(out, "tokenizer:     "+want) {
			t.Errorf("%s:\n%s", file, out)
		}
	}
}

func TestBadFiles(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.gguf")
	os.WriteFile(junk, []byte("GGUF\x03\x00\x00\x00garbage"), 0o644)
	for _, args := range [][]string{
		{"info", "-m", junk},
		{"info", "-m", filepath.Join(dir, "missing.gguf")},
	} {
		code, out, errs := cli(t, args...)
		if code != 1 || out != "" || strings.Count(strings.TrimSpace(errs), "\n") != 0 || !strings.HasPrefix(errs, "ocelot info: ") {
			t.Errorf("%v: code %d, stdout %q, stderr %q (want one line)", args, code, out, errs)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	tiny := testmodel.Preset(t, "tiny")
	for _, args := range [][]string{
		{"info"},
		{"info", "-m"},
		{"gen", "--preset", "70b", "-o", "x.gguf"},
		{"gen", "--preset", "tiny"},
		{"gen", "--type", "q5_k", "-o", "x.gguf"},
		{"gen", "--layers", "-1", "-o", "x.gguf"},
		{"run", "-m", tiny, "-p", "hi", "-c", "-1"},
		{"run", "-m", tiny, "-p", "hi", "-fa", "maybe"},
		{"run", "-m", tiny, "-p", "hi", "--seed", "-2"},
		{"run", "-m", tiny, "-p", "hi", "--grammar", "root ::= x", "--json-schema", "{}"},
		{"run", "-m", tiny, "-p", "hi", "-b", "8", "-ub", "16"},
		{"run", "-m", tiny, "-p", "hi", "-t", "0"},
		{"run", "-m", tiny, "-p", "hi", "-n", "-5"},
		{"run", "-p", "hi"},
		{"run", "-m", tiny, "-p", "hi", "--top-p", "2"},
		{"eval", "-m", tiny, "--ids", "1,x"},
	} {
		code, _, errs := cli(t, args...)
		if code != 2 || !strings.Contains(errs, "usage") {
			t.Errorf("%v: code %d, stderr %q", args, code, errs)
		}
	}
	// A missing model file is an error of the work, named in one line.
	code, _, errs := cli(t, "run", "-m", "/no/such/model.gguf", "-p", "hi")
	if code != 1 || !strings.Contains(errs, "/no/such/model.gguf") {
		t.Errorf("missing model: code %d, %q", code, errs)
	}
}

func TestGenCommand(t *testing.T) {
	out := filepath.Join(t.TempDir(), "m.gguf")
	code, stdout, errs := cli(t, "gen", "--preset", "tiny", "--layers", "1", "--type", "q8_0", "--seed", "3", "-o", out)
	if code != 0 {
		t.Fatalf("code %d: %s", code, errs)
	}
	if !strings.Contains(stdout, "wrote "+out) {
		t.Fatalf("stdout %q", stdout)
	}
	code, info, _ := cli(t, "info", "-m", out, "--json")
	if code != 0 || !strings.Contains(info, `"block_count": 1`) || !strings.Contains(info, `"q8_0"`) {
		t.Fatalf("info of generated model: %s", info)
	}
}

func TestRunAndEval(t *testing.T) {
	tiny := testmodel.Preset(t, "tiny")
	code, out, errs := cli(t, "run", "-m", tiny, "-p", "Hello there", "-n", "8", "--temp", "0", "-c", "64", "--json")
	if code != 0 {
		t.Fatalf("run: code %d: %s", code, errs)
	}
	var r struct {
		Tokens, Generated []int32
		Timings           map[string]any
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(r.Tokens) < 2 || len(r.Generated) == 0 || r.Timings["n_ctx"] != 64.0 {
		t.Fatalf("run --json: %+v", r)
	}
	code, _, errs = cli(t, "run", "-m", tiny, "-p", "Hello there", "-n", "4", "--temp", "0", "-c", "64")
	if code != 0 || !strings.Contains(errs, "prompt eval:") || !strings.Contains(errs, "ms/token") || !strings.Contains(errs, "n_ubatch") {
		t.Fatalf("run report: code %d, stderr %q", code, errs)
	}
	code, out, errs = cli(t, "eval", "-m", tiny, "-p", "Hello there", "--top-k", "3", "--json", "-c", "64")
	if code != 0 {
		t.Fatalf("eval: code %d: %s", code, errs)
	}
	var e struct {
		Tokens []int32
		Top    [][][2]float64
	}
	if err := json.Unmarshal([]byte(out), &e); err != nil {
		t.Fatal(err)
	}
	if len(e.Top) != len(e.Tokens) || len(e.Top[0]) != 3 || e.Top[0][0][1] < e.Top[0][1][1] {
		t.Fatalf("eval --json: %+v", e)
	}
	// The prompt must fit the context: both numbers are named.
	code, _, errs = cli(t, "run", "-m", tiny, "-p", strings.Repeat("word ", 40), "-c", "16")
	if code != 1 || !strings.Contains(errs, "context of 16") {
		t.Fatalf("long prompt: code %d, %q", code, errs)
	}
}

func TestBench(t *testing.T) {
	tiny := testmodel.Preset(t, "tiny")
	code, out, errs := cli(t, "bench", "-m", tiny, "-p", "16", "-n", "2", "-ub", "4,auto", "-r", "1", "-o", "json", "--backend", "cpu")
	if code != 0 {
		t.Fatalf("code %d: %s", code, errs)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(rows) != 4 {
		t.Fatalf("%d rows, want 2 tests × 2 micro-batch sizes", len(rows))
	}
	for _, k := range []string{"model", "backend", "device", "n_threads", "n_batch", "n_ubatch", "n_gpu_layers", "type_k", "type_v", "kv_offload", "test", "n_prompt", "n_gen", "tps_mean", "tps_std", "ms_per_token"} {
		if _, ok := rows[0][k]; !ok {
			t.Errorf("row lacks %q: %v", k, rows[0])
		}
	}
	if rows[0]["test"] != "pp16" || rows[0]["n_ubatch"] != 4.0 || rows[2]["n_ubatch"] != 16.0 || rows[0]["tps_mean"].(float64) <= 0 {
		t.Errorf("rows: %v", rows)
	}
	if !strings.Contains(errs, "bench [1/4]") {
		t.Errorf("no progress on stderr: %q", errs)
	}
	for _, args := range [][]string{{"bench"}, {"bench", "-m", tiny, "-ub", "x"}, {"bench", "-m", tiny, "-r", "0"}, {"bench", "-m", tiny, "-p", "0", "-n", "0"}, {"bench", "-m", tiny, "-o", "xml"}} {
		if code, _, errs := cli(t, args...); code != 2 {
			t.Errorf("%v: code %d, %q", args, code, errs)
		}
	}
}

func TestDumpGraph(t *testing.T) {
	tiny := testmodel.Preset(t, "tiny")
	code, out, errs := cli(t, "run", "-m", tiny, "--backend", "cpu", "-ub", "4", "--dump-graph")
	if code != 0 {
		t.Fatalf("code %d: %s", code, errs)
	}
	for _, want := range []string{"MUL_MAT", "ATTENTION", "SET_ROWS", "on cpu", "0 copies"} {
		if !strings.Contains(out, want) {
			t.Errorf("dump lacks %q", want)
		}
	}
	if code, _, errs := cli(t, "run", "-m", tiny, "--backend", "ref", "--dump-graph"); code != 1 || !strings.Contains(errs, "no op graph") {
		t.Errorf("ref dump: code %d, %q", code, errs)
	}
}

// chatModel loads the tiny model as run's flags would for a chat.
func chatModel(t *testing.T) *ocelot.Model {
	t.Helper()
	var e engineFlags
	e.model, e.nCtx, e.nBatch, e.nUbatch, e.t, e.ctk, e.ctv, e.backend, e.quiet = testmodel.Preset(t, "tiny"), 512, 512, 512, 2, "f16", "f16", "cpu", true
	m, err := e.load(io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestChat(t *testing.T) {
	m := chatModel(t)
	var out, errb bytes.Buffer
	s := samplerFlags{temp: 0}
	in := strings.NewReader("Hello there\n\nWhat is an ocelot?\n")
	if err := runChat(context.Background(), m, &s, chatSettings{n: 8}, in, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if strings.Count(out.String(), "\n") != 2 || strings.Count(errb.String(), "> ") != 4 {
		t.Fatalf("two turns expected: stdout %q, prompts %q", out.String(), errb.String())
	}
}
