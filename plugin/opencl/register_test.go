package opencl

import (
	"strings"
	"testing"

	"github.com/ocelot-llm/ocelot/accel"
	"github.com/ocelot-llm/ocelot/graph"
	"github.com/ocelot-llm/ocelot/quant"
)

func TestRegistered(t *testing.T) {
	testBackend(t)
	b, reason, err := accel.Select("opencl", accel.Config{Device: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Name() != "opencl" || !strings.Contains(reason, "backend opencl") {
		t.Fatalf("selected %s: %s", b.Name(), reason)
	}
	if m := b.Memory(); m.Total <= 0 || m.MaxAlloc <= 0 || m.MaxAlloc > m.Total || m.Free <= 0 || m.Free > m.Total {
		t.Fatalf("memory %+v", m)
	}
}

// TestSupportsBeforeInputs asks about KV-cache nodes whose index inputs
// have a shape but no values yet, as the engine does before it decides
// where the cache lives.
func TestSupportsBeforeInputs(t *testing.T) {
	b := testBackend(t)
	for _, typ := range []quant.Type{quant.F32, quant.F16, quant.Q8_0, quant.Q4_0} {
		cache := &graph.Tensor{Type: typ, Shape: [4]int{256, 1, 1, 1}, Kind: graph.Cache}
		k := &graph.Tensor{Type: quant.F32, Shape: [4]int{256, 1, 1, 1}}
		q := &graph.Tensor{Type: quant.F32, Shape: [4]int{1024, 1, 1, 1}}
		pos := &graph.Tensor{Type: graph.I32, Shape: [4]int{1, 1, 1, 1}, Kind: graph.Input}
		set := &graph.Tensor{Op: graph.OpSetRows, Type: typ, Shape: cache.Shape, Src: [4]*graph.Tensor{k, cache, pos}}
		index := &graph.Tensor{Type: graph.I32, Shape: [4]int{3, 1, 1, 1}, Kind: graph.Input}
		att := &graph.Tensor{Op: graph.OpAttention, Type: quant.F32, Shape: q.Shape, Src: [4]*graph.Tensor{q, set, set, index},
			Param: graph.Params{HeadDim: 64, NHead: 16, NHeadKV: 4, Page: graph.PageCells, NKV: 1, Scale: 1}}
		if !b.Supports(set) || !b.Supports(att) {
			t.Errorf("%s cache: SET_ROWS %v, ATTENTION %v", typ, b.Supports(set), b.Supports(att))
		}
	}
	// Unsupported: a KV type the kernels do not store.
	cache := &graph.Tensor{Type: quant.Q6_K, Shape: [4]int{256, 1, 1, 1}, Kind: graph.Cache}
	set := &graph.Tensor{Op: graph.OpSetRows, Type: quant.Q6_K, Shape: cache.Shape, Src: [4]*graph.Tensor{
		{Type: quant.F32, Shape: [4]int{256, 1, 1, 1}}, cache, {Type: graph.I32, Shape: [4]int{1, 1, 1, 1}, Kind: graph.Input}}}
	if b.Supports(set) {
		t.Error("a q6_K cache is supported")
	}
}
