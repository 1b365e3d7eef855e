package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/ocelot-llm/ocelot/gguf"
	"github.com/ocelot-llm/ocelot/internal/testmodel"
)

// benchJSON runs bench with -o json and returns its rows.
func benchJSON(t *testing.T, args ...string) []map[string]any {
	t.Helper()
	code, out, errs := cli(t, append([]string{"bench", "--backend", "cpu", "-t", "1", "-r", "1", "-o", "json"}, args...)...)
	if code != 0 {
		t.Fatalf("bench %v: code %d: %s", args, code, errs)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("bench %v: %v: %s", args, err, out)
	}
	return rows
}

func testsOf(rows []map[string]any) []string {
	var names []string
	for _, r := range rows {
		names = append(names, r["test"].(string))
	}
	return names
}

// -pg takes llama-bench's pp,tg pair, repeated for more pairs, and
// ocelot's ';' between pairs.
func TestBenchPG(t *testing.T) {
	tiny := testmodel.Preset(t, "tiny")
	rows := benchJSON(t, "-m", tiny, "-p", "0", "-n", "0", "-pg", "16,4")
	if len(rows) != 1 || rows[0]["test"] != "pp16+tg4" || rows[0]["n_prompt"] != 16.0 || rows[0]["n_gen"] != 4.0 {
		t.Fatalf("-pg 16,4: %v", rows)
	}
	for _, args := range [][]string{
		{"-pg", "8,2", "-pg", "4,1"},
		{"-pg", "8,2;4,1"},
		{"-pg", " 8, 2 ; 4,1 "},
	} {
		rows := benchJSON(t, append([]string{"-m", tiny, "-p", "0", "-n", "0"}, args...)...)
		if got := strings.Join(testsOf(rows), " "); got != "pp8+tg2 pp4+tg1" {
			t.Errorf("%q: tests %q, want pp8+tg2 pp4+tg1", args, got)
		}
	}
	// -pg adds to the -p and -n tests.
	rows = benchJSON(t, "-m", tiny, "-p", "4", "-n", "2", "-pg", "4,2")
	if got := strings.Join(testsOf(rows), " "); got != "pp4 tg2 pp4+tg2" {
		t.Errorf("tests %q", got)
	}
	for _, bad := range []string{"16", "16,4,2", "x,4", "4,", "-1,4", "0,0", "8,2;16"} {
		code, _, errs := cli(t, "bench", "-m", tiny, "-pg", bad)
		if code != 2 || !strings.Contains(errs, "-pg wants a pp,tg pair") || !strings.Contains(errs, "usage") {
			t.Errorf("-pg %q: code %d, stderr %q", bad, code, errs)
		}
	}
}

// llamaBenchKeys are the fields of llama-bench's JSON that ocelot's rows
// carry, besides ocelot's own.
var llamaBenchKeys = []string{"avg_ts", "stddev_ts", "model_size", "model_n_params", "n_prompt", "n_gen", "n_batch", "n_ubatch",
	"n_threads", "n_gpu_layers", "type_k", "type_v", "samples_ts", "samples_ns", "avg_ns", "stddev_ns", "model_filename",
	"no_kv_offload", "test_time"}

var ocelotBenchKeys = []string{"model", "backend", "device", "n_threads", "n_batch", "n_ubatch", "n_gpu_layers", "type_k", "type_v",
	"kv_offload", "test", "n_prompt", "n_gen", "tps_mean", "tps_std", "ms_per_token"}

// checkBenchRow checks one row's keys and that the llama-bench fields
// agree with the model file and with ocelot's fields.
func checkBenchRow(t *testing.T, row map[string]any, path string, reps int) {
	t.Helper()
	for _, k := range append(append([]string{}, ocelotBenchKeys...), llamaBenchKeys...) {
		if _, ok := row[k]; !ok {
			t.Errorf("row lacks %q: %v", k, row)
		}
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var size, params int64
	for _, ti := range f.Tensors {
		size += ti.Size
		params += ti.Elements()
	}
	if row["model_size"] != float64(size) || row["model_n_params"] != float64(params) || params <= 0 {
		t.Errorf("model_size %v, model_n_params %v; want %d and %d", row["model_size"], row["model_n_params"], size, params)
	}
	if row["model_filename"] != path {
		t.Errorf("model_filename %v, want %s", row["model_filename"], path)
	}
	ts, _ := row["samples_ts"].([]any)
	ns, _ := row["samples_ns"].([]any)
	if len(ts) != reps || len(ns) != reps {
		t.Fatalf("samples_ts %v, samples_ns %v: want %d of each", row["samples_ts"], row["samples_ns"], reps)
	}
	var sum float64
	tokens := row["n_prompt"].(float64) + row["n_gen"].(float64)
	for i := range ts {
		v, n := ts[i].(float64), ns[i].(float64)
		if !(v > 0) || !(n > 0) {
			t.Fatalf("sample %d: %v t/s, %v ns", i, v, n)
		}
		if want := tokens / (n / 1e9); math.Abs(v-want) > 1e-6*want {
			t.Errorf("sample %d: %v t/s, but %v tokens in %v ns is %v", i, v, tokens, n, want)
		}
		sum += v
	}
	if avg := row["avg_ts"].(float64); math.Abs(avg-sum/float64(reps)) > 1e-9*avg || avg != row["tps_mean"] || row["stddev_ts"] != row["tps_std"] {
		t.Errorf("avg_ts %v, stddev_ts %v, tps_mean %v, tps_std %v, mean of samples %v", avg, row["stddev_ts"], row["tps_mean"], row["tps_std"], sum/float64(reps))
	}
	if row["no_kv_offload"] == row["kv_offload"] {
		t.Errorf("no_kv_offload %v, kv_offload %v", row["no_kv_offload"], row["kv_offload"])
	}
}

func TestBenchJSONAndJSONL(t *testing.T) {
	tiny := testmodel.Preset(t, "tiny")
	args := []string{"bench", "-m", tiny, "-p", "8", "-n", "3", "-pg", "4,2", "--backend", "cpu", "-t", "1", "-r", "3"}
	code, out, errs := cli(t, append(args, "-o", "jsonl")...)
	if code != 0 {
		t.Fatalf("code %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want one per test:\n%s", len(lines), out)
	}
	for i, line := range lines {
		var row map[string]any
		if err := json.Unmarshal([]byte(line), &row); err != nil {
			t.Fatalf("line %d is not one JSON object: %v: %s", i+1, err, line)
		}
		checkBenchRow(t, row, tiny, 3)
	}
	rows := benchJSON(t, "-m", tiny, "-p", "0", "-n", "2", "-nkvo", "1")
	if len(rows) != 1 {
		t.Fatalf("%d rows", len(rows))
	}
	checkBenchRow(t, rows[0], tiny, 1)
	if rows[0]["no_kv_offload"] != true || rows[0]["stddev_ts"] != 0.0 {
		t.Errorf("row %v", rows[0])
	}

	code, out, errs = cli(t, append(args, "-o", "csv", "-r", "2")...)
	if code != 0 {
		t.Fatalf("csv: code %d: %s", code, errs)
	}
	recs, err := csv.NewReader(bytes.NewReader([]byte(out))).ReadAll()
	if err != nil || len(recs) != 4 {
		t.Fatalf("csv: %v, %d records:\n%s", err, len(recs), out)
	}
	col := map[string]int{}
	for i, k := range recs[0] {
		col[k] = i
	}
	for _, k := range append(append([]string{}, ocelotBenchKeys...), llamaBenchKeys...) {
		if _, ok := col[k]; !ok {
			t.Errorf("csv lacks column %q", k)
		}
	}
	if got := strings.Count(recs[1][col["samples_ts"]], ",") + 1; got != 2 {
		t.Errorf("csv samples_ts %q: want 2 values", recs[1][col["samples_ts"]])
	}
}
