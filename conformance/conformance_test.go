package conformance

import (
	"strings"
	"testing"

	"github.com/ocelot-llm/ocelot/accel"
	"github.com/ocelot-llm/ocelot/graph"
	"github.com/ocelot-llm/ocelot/internal/testmodel"
)

func TestCPUOps(t *testing.T) {
	b := accel.NewCPU(2)
	defer b.Close()
	r := &Report{Device: "cpu", Cases: OpCases(b, graph.CPU, testing.Short())}
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
