package conformance

import (
	"strings"
	"testing"

	"github.com/ocelot-llm/ocelot/accel"
	"github.com/ocelot-llm/ocelot/graph"
	"github.com/ocelot-llm/ocelot/internal/plant"
	"github.com/ocelot-llm/ocelot/internal/testmodel"
)

// Every op on the CPU backend, on every kernel path this machine has.
func TestCPUOps(t *testing.T) {
	r := &Report{Device: "cpu"}
	for i, path := range cpuPaths() {
		restore, err := forcePath(path)
		if err != nil {
			t.Fatal(err)
		}
		b := accel.NewCPU(2)
		// The full set on the default path, the quick one on the others.
		for _, c := range OpCases(b, graph.CPU, testing.Short() || i > 0) {
			c.Backend = "cpu/" + path.String()
			r.Cases = append(r.Cases, c)
		}
		b.Close()
		restore()
	}
	r.Tally()
	if r.Failed > 0 || testing.Verbose() {
		var sb strings.Builder
		r.WriteTable(&sb)
		t.Log("\n" + sb.String())
	}
	if r.Failed > 0 {
		t.Fatalf("%d op cases failed", r.Failed)
	}
	if r.Skipped > 0 {
		t.Fatalf("the CPU backend skipped %d cases; it must run every op", r.Skipped)
	}
}

func TestCPUEndToEnd(t *testing.T) {
	// The quick matrix here; `ocelot conformance` runs the whole one.
	models := []Model{{Name: "tiny", Path: testmodel.Preset(t, "tiny"), NLayer: 4}}
	if !testing.Short() {
		models = append(models, Model{Name: "small", Path: testmodel.Preset(t, "small"), NLayer: 8})
	}
	r := &Report{Device: "cpu", E2E: RunE2E(Configs(models, "cpu", "", true), 48)}
	r.Tally()
	var sb strings.Builder
	r.WriteTable(&sb)
	t.Log("\n" + sb.String())
	if r.Failed > 0 {
		t.Fatalf("%d end-to-end configurations failed", r.Failed)
	}
}

// A bug planted in a kernel makes the suite fail, and the failures point
// at the op that has it.
func TestPlantedBugsAreCaught(t *testing.T) {
	for _, c := range []struct {
		bug, op, typ string
	}{
		{plant.TileEdge, "MUL_MAT", ""},
		{plant.Q4Nibbles, "GET_ROWS", "q4_0"},
	} {
		t.Run(c.bug, func(t *testing.T) {
			restore := plant.Set(c.bug)
			b := accel.NewCPU(2)
			r := &Report{Device: "cpu", Cases: OpCases(b, graph.CPU, true)}
			b.Close()
			restore()
			r.Tally()
			if r.Failed == 0 {
				t.Fatalf("planted bug %s went unnoticed", c.bug)
			}
			for _, cs := range r.Cases {
				if cs.Pass {
					continue
				}
				if cs.Op != c.op || (c.typ != "" && cs.Type != c.typ) {
					t.Errorf("planted %s, but %s %s %s failed: %s", c.bug, cs.Op, cs.Type, cs.Shape, cs.Detail)
				}
				if cs.Detail == "" {
					t.Errorf("%s %s failed without saying where", cs.Op, cs.Shape)
				}
			}
			var sb strings.Builder
			r.WriteTable(&sb)
			if !strings.Contains(sb.String(), "FAIL") || !strings.Contains(sb.String(), "worst at element") {
				t.Errorf("the table does not show the failure:\n%s", sb.String())
			}
			t.Logf("%s: %d cases failed, all %s", c.bug, r.Failed, c.op)
		})
	}
	// With the bug removed, the same cases pass again.
	b := accel.NewCPU(2)
	defer b.Close()
	r := &Report{Cases: OpCases(b, graph.CPU, true)}
	if r.Tally(); r.Failed != 0 {
		t.Fatalf("%d cases fail after the planted bugs were removed", r.Failed)
	}
}
