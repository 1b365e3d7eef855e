package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocelot-llm/ocelot/internal/testmodel"
	"github.com/ocelot-llm/ocelot/synth"
)

// A file equals itself; two files of other seeds differ in every random
// tensor and the report says which and by how many bytes.
func TestCompare(t *testing.T) {
	a := testmodel.Preset(t, "tiny")
	same, diff, err := compare(a, a)
	if err != nil || len(diff) != 0 || same == 0 {
		t.Fatalf("a file against itself: %d same, %v, %v", same, diff, err)
	}
	p, err := synth.PresetByName("tiny")
	if err != nil {
		t.Fatal(err)
	}
	opt := synth.DefaultOptions(p)
	opt.Seed = 2
	b := filepath.Join(t.TempDir(), "seed2.gguf")
	if err := synth.Generate(b, opt); err != nil {
		t.Fatal(err)
	}
	same, diff, err = compare(a, b)
	if err != nil || len(diff) == 0 || !strings.Contains(diff[0], "bytes differ") {
		t.Fatalf("seeds 1 and 2: %d same, %v, %v", same, diff, err)
	}
}
