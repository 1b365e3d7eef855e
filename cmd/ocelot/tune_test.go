package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocelot-llm/ocelot/internal/testmodel"
)

// TestTuneCommand: `ocelot tune` on the CPU says there is nothing to tune;
// on an OpenCL device (PoCL in CI) a quick tune prints a decision for each
// weight type and class, caches it in the user cache folder, `ocelot
// devices` lists it, and --json carries the same rows.
func TestTuneCommand(t *testing.T) {
	tiny := testmodel.Preset(t, "tiny")
	code, _, errs := cli(t, "tune", "-m", tiny, "--backend", "cpu")
	if code != 1 || !strings.Contains(errs, "nothing to tune") {
		t.Fatalf("tune on the cpu: code %d: %s", code, errs)
	}
	code, _, errs = cli(t, "run", "-m", tiny, "-p", "hi", "--tune", "sometimes")
	if code != 2 || !strings.Contains(errs, "--tune takes auto, off, quick or full") {
		t.Fatalf("--tune sometimes: code %d: %s", code, errs)
	}

	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	code, out, errs := cli(t, "tune", "-m", tiny, "--backend", "opencl", "-ngl", "99", "--device", "0", "--quick", "-q")
	if code != 0 {
		if os.Getenv("OCELOT_REQUIRE_OPENCL") != "1" && strings.Contains(errs, "opencl") {
			t.Skipf("no OpenCL device: %s", errs)
		}
		t.Fatalf("tune --quick: code %d: %s", code, errs)
	}
	for _, want := range []string{"tuned ", "(quick)", "cached in " + filepath.Join(cache, "ocelot", "opencl"), "q4_0", "one", "many", "few", "candidates", "default"} {
		if !strings.Contains(out, want) {
			t.Errorf("tune output lacks %q:\n%s", want, out)
		}
	}
	code, out, errs = cli(t, "devices")
	if code != 0 || !strings.Contains(out, "tuned:") || !strings.Contains(out, filepath.Base(tiny)+" (quick,") {
		t.Errorf("devices does not list the tuning: code %d\n%s%s", code, out, errs)
	}
	code, js, errs := cli(t, "tune", "-m", tiny, "--backend", "opencl", "-ngl", "99", "--device", "0", "--quick", "-q", "--json")
	if code != 0 {
		t.Fatalf("tune --json: code %d: %s", code, errs)
	}
	var rep struct {
		Device string
		Quick  bool
		Rows   []struct {
			Type, Class, Chosen string
			Candidates          []struct{ Name string }
		}
	}
	if err := json.Unmarshal([]byte(js), &rep); err != nil {
		t.Fatalf("--json does not parse: %v\n%s", err, js)
	}
	if !rep.Quick || rep.Device == "" || len(rep.Rows) < 3 {
		t.Fatalf("--json report: %+v", rep)
	}
	for _, r := range rep.Rows {
		if r.Chosen == "" || len(r.Candidates) < 2 {
			t.Errorf("%s %s: chose %q of %d candidates", r.Type, r.Class, r.Chosen, len(r.Candidates))
		}
	}
}
