package main

import (
	"encoding/json"
	"strings"
	"testing"

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
