package graph_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ocelot-llm/ocelot/gguf"
	"github.com/ocelot-llm/ocelot/graph"
	"github.com/ocelot-llm/ocelot/internal/testmodel"
	"github.com/ocelot-llm/ocelot/model"
	"github.com/ocelot-llm/ocelot/quant"
)

func tinyModel(t *testing.T) *graph.Model {
	t.Helper()
	f, err := gguf.Open(testmodel.Preset(t, "tiny"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	m, err := model.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	return graph.NewModel(m)
}

func count(g *graph.Graph, op graph.Op) int {
	n := 0
	for _, t := range g.Nodes {
		if t.Op == op {
			n++
		}
	}
	return n
}

func TestBuildShapes(t *testing.T) {
	m := tinyModel(t)
	kv := graph.NewKV(m.Config, 64, quant.F16, quant.Q8_0)
	g, err := graph.Build(m, kv, []int32{1, 2, 3, 4, 5}, 7, model.LogitsLast)
	if err != nil {
		t.Fatal(err)
	}
	L := m.Config.NLayer
	for op, want := range map[graph.Op]int{
		graph.OpGetRows: 2, graph.OpRMSNorm: 2*L + 1, graph.OpMul: 2*L + 1, graph.OpMulMat: 7*L + 1,
		graph.OpRope: 2 * L, graph.OpSetRows: 2 * L, graph.OpAttention: L, graph.OpSwiGLU: L, graph.OpAdd: 2 * L,
	} {
		if got := count(g, op); got != want {
			t.Errorf("%s: %d nodes, want %d", op, got, want)
		}
	}
	if g.Out.Shape != [4]int{m.Config.NVocab, 1, 1, 1} {
		t.Errorf("logits shape %v", g.Out.Shape)
	}
	for _, n := range g.Nodes {
		if n.Op == graph.OpAttention && (n.Param.Pos0 != 7 || n.Param.NKV != 12) {
			t.Errorf("attention params %+v", n.Param)
		}
		if n.Op == graph.OpSetRows && n.Src[1].Kind != graph.Cache {
			t.Errorf("%s writes into %s", n.Name, n.Src[1].Kind)
		}
	}
	all, _ := graph.Build(m, kv, []int32{1, 2, 3}, 0, model.LogitsAll)
	if all.Out.Shape[1] != 3 {
		t.Errorf("all logits: %v rows", all.Out.Shape[1])
	}
	none, _ := graph.Build(m, kv, []int32{1, 2, 3}, 0, model.LogitsNone)
	if none.Out != nil || count(none, graph.OpMulMat) != 7*L {
		t.Errorf("no-logits graph has an output")
	}
	if _, err := graph.Build(m, kv, make([]int32, 10), 60, model.LogitsLast); err == nil {
		t.Error("batch past the cache accepted")
	}
}

func TestSchedule(t *testing.T) {
	m := tinyModel(t)
	L := m.Config.NLayer
	kv := graph.NewKV(m.Config, 64, quant.F16, quant.F16)
	onAccel := func(g *graph.Graph) (accel int, layers map[int]bool) {
		layers = map[int]bool{}
		for _, n := range g.Nodes {
			if n.Backend == graph.Accel {
				accel++
				layers[n.Layer] = true
			}
		}
		return
	}
	for _, c := range []struct {
		name     string
		p        graph.Policy
		layers   []int // layers expected on the accelerator
		copies   int
		kvOnHost bool
	}{
		{"ngl 0", graph.Policy{NLayer: L, NGPULayers: 0, Accel: "gpu"}, nil, 0, false},
		{"ngl half", graph.Policy{NLayer: L, NGPULayers: L / 2, Accel: "gpu"}, []int{2, 3}, 2, false},
		{"ngl all", graph.Policy{NLayer: L, NGPULayers: L, Accel: "gpu"}, []int{0, 1, 2, 3}, 2, false},
		{"ngl all+1", graph.Policy{NLayer: L, NGPULayers: L + 1, Accel: "gpu"}, []int{0, 1, 2, 3, L}, 1, false},
		{"no accel", graph.Policy{NLayer: L, NGPULayers: 99}, nil, 0, false},
		// -nkvo: attention runs on the CPU, so q, k and v go down and the
		// attention output comes back, in every offloaded layer.
		{"nkvo", graph.Policy{NLayer: L, NGPULayers: L + 1, Accel: "gpu", KVOnHost: true}, []int{0, 1, 2, 3, L}, 1 + 4*L, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			g, err := graph.Build(m, kv, []int32{1, 2, 3, 4}, 0, model.LogitsLast)
			if err != nil {
				t.Fatal(err)
			}
			if err := graph.Schedule(g, c.p); err != nil {
				t.Fatal(err)
			}
			_, layers := onAccel(g)
			if len(layers) != len(c.layers) {
				t.Errorf("layers on the accelerator: %v, want %v", layers, c.layers)
			}
			for _, l := range c.layers {
				if !layers[l] {
					t.Errorf("layer %d not offloaded (%v)", l, layers)
				}
			}
			if g.Copies != c.copies {
				var buf bytes.Buffer
				g.Dump(&buf)
				t.Errorf("%d copies, want %d\n%s", g.Copies, c.copies, buf.String())
			}
			for _, n := range g.Nodes {
				if (n.Op == graph.OpAttention || n.Op == graph.OpSetRows) && c.kvOnHost && n.Backend != graph.CPU {
					t.Errorf("%s on the accelerator with -nkvo", n.Name)
				}
				for _, s := range n.Inputs() {
					if n.Op != graph.OpCpy && s.Op != graph.OpLeaf && s.Op != graph.OpSetRows && s.Backend != n.Backend {
						t.Errorf("%s on %d reads %s on %d without a copy", n.Name, n.Backend, s.Name, s.Backend)
					}
				}
			}
		})
	}
	// Nodes the accelerator cannot run fall back to the CPU.
	g, _ := graph.Build(m, kv, []int32{1, 2}, 0, model.LogitsLast)
	noSwiglu := func(n *graph.Tensor) bool { return n.Op != graph.OpSwiGLU }
	graph.Schedule(g, graph.Policy{NLayer: L, NGPULayers: L + 1, Accel: "gpu", Supports: noSwiglu})
	for _, n := range g.Nodes {
		if n.Op == graph.OpSwiGLU && n.Backend != graph.CPU {
			t.Errorf("unsupported %s placed on the accelerator", n.Name)
		}
	}
	// Per layer gate and up go down and the product comes back; plus the
	// embedding going up.
	if g.Copies != 3*L+1 {
		t.Errorf("%d copies around the CPU-only SWIGLU, want %d", g.Copies, 3*L+1)
	}
}

// No two intermediates that are alive at the same time share memory.
func TestPlanNoOverlap(t *testing.T) {
	m := tinyModel(t)
	kv := graph.NewKV(m.Config, 128, quant.Q4_0, quant.Q4_0)
	for _, ngl := range []int{0, 2, 5} {
		g, _ := graph.Build(m, kv, make([]int32, 17), 3, model.LogitsAll)
		graph.Schedule(g, graph.Policy{NLayer: m.Config.NLayer, NGPULayers: ngl, Accel: "gpu"})
		sizes := graph.Plan(g)
		last := map[*graph.Tensor]int{}
		for i, n := range g.Nodes {
			for _, s := range n.Inputs() {
				last[s] = i
			}
		}
		last[g.Out] = len(g.Nodes)
		var total int64
		for i, a := range g.Nodes {
			if a.Op == graph.OpSetRows {
				continue
			}
			if a.Offset%256 != 0 || a.Offset+a.Bytes() > sizes[a.Backend] {
				t.Fatalf("%s at %d+%d outside arena %d", a.Name, a.Offset, a.Bytes(), sizes[a.Backend])
			}
			total += a.Bytes()
			for _, b := range g.Nodes[i+1:] {
				if b.Op == graph.OpSetRows || b.Backend != a.Backend || last[a] < indexOf(g, b) {
					continue
				}
				if a.Offset < b.Offset+b.Bytes() && b.Offset < a.Offset+a.Bytes() {
					t.Fatalf("ngl %d: %s [%d,+%d) overlaps %s [%d,+%d) while alive", ngl, a.Name, a.Offset, a.Bytes(), b.Name, b.Offset, b.Bytes())
				}
			}
		}
		if sizes[graph.CPU]+sizes[graph.Accel] >= total {
			t.Errorf("ngl %d: planner reused nothing (%d bytes for %d of tensors)", ngl, sizes[0]+sizes[1], total)
		}
	}
}

func indexOf(g *graph.Graph, t *graph.Tensor) int {
	for i, n := range g.Nodes {
		if n == t {
			return i
		}
	}
	return -1
}

func TestDumpShowsPlacement(t *testing.T) {
	m := tinyModel(t)
	kv := graph.NewKV(m.Config, 16, quant.F16, quant.F16)
	g, _ := graph.Build(m, kv, []int32{1}, 0, model.LogitsLast)
	graph.Schedule(g, graph.Policy{NLayer: m.Config.NLayer, NGPULayers: 2, Accel: "opencl"})
	var buf bytes.Buffer
	g.Dump(&buf)
	out := buf.String()
	for _, want := range []string{"MUL_MAT", "ATTENTION", "on opencl", "on cpu", "CPY", "cache_k.3(cache@opencl)", "blk.0.attn_q.weight(weight@cpu)"} {
		if !strings.Contains(out, want) {
			t.Errorf("dump lacks %q:\n%s", want, out)
		}
	}
}
