package graph_test

import (
	"testing"

	"github.com/ocelot-llm/ocelot/gguf"
	"github.com/ocelot-llm/ocelot/graph"
	"github.com/ocelot-llm/ocelot/internal/testmodel"
	"github.com/ocelot-llm/ocelot/model"
	"github.com/ocelot-llm/ocelot/quant"
)

// BenchmarkDecodeGraph is the host work of one decode token before any
// backend runs: Build, Schedule, Fuse and Plan of a one-token graph of the
// 1b shape (16 layers), everything offloaded and every fusion accepted.
func BenchmarkDecodeGraph(b *testing.B) {
	f, err := gguf.Open(testmodel.Preset(b, "1b"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	mm, err := model.Load(f)
	if err != nil {
		b.Fatal(err)
	}
	m := graph.NewModel(mm)
	kv := graph.NewKV(mm.Config, 512, quant.F16, quant.F16)
	pol := graph.Policy{NLayer: mm.Config.NLayer, NGPULayers: 99, Accel: "gpu"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		g, err := graph.Build(m, kv, []int32{1}, i%500, model.LogitsLast)
		if err != nil {
			b.Fatal(err)
		}
		if err := graph.Schedule(g, pol); err != nil {
			b.Fatal(err)
		}
		graph.Fuse(g, func(*graph.Tensor) bool { return true })
		graph.Plan(g)
	}
}
