package graph_test

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
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
		if n.Op == graph.OpAttention {
			if n.Param.NKV != 12 || n.Param.Page != graph.PageCells {
				t.Errorf("attention params %+v", n.Param)
			}
			x := graph.KVIndex{Idx: n.Src[3].I32s, N: 5}
			if x.Pos(0) != 7 || x.Pos(4) != 11 || x.Cell(4, 11) != 11 {
				t.Errorf("KV index %v", x.Idx)
			}
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

// TestBuildBatch checks a batch of two sequences: each token's cell comes
// from its own sequence's pages, each attention index names its own
// sequence's pages, and only the rows asked for come out.
func TestBuildBatch(t *testing.T) {
	m := tinyModel(t)
	kv := graph.NewKV(m.Config, 4*graph.PageCells, quant.F16, quant.F16)
	b := &graph.Batch{
		Tokens: []int32{1, 2, 3},
		Pos:    []int32{64, 65, 3},
		Seq:    []int32{0, 0, 1},
		Pages:  [][]int32{{2, 0}, {3}},
		Out:    []int32{1, 2},
	}
	g, err := graph.BuildBatch(m, kv, b)
	if err != nil {
		t.Fatal(err)
	}
	if g.Out.Shape[1] != 2 {
		t.Errorf("logits of %d rows, want 2", g.Out.Shape[1])
	}
	for _, n := range g.Nodes {
		switch n.Op {
		case graph.OpSetRows:
			if got := n.Src[2].I32s; !slices.Equal(got, []int32{0, 1, 3*graph.PageCells + 3}) {
				t.Fatalf("cells %v", got)
			}
		case graph.OpAttention:
			x := graph.KVIndex{Idx: n.Src[3].I32s, N: 3}
			if most, err := x.Check(graph.PageCells, kv.Cells); err != nil || most != 66 {
				t.Fatalf("index %v: most %d, %v", x.Idx, most, err)
			}
			if x.Cell(0, 3) != 2*graph.PageCells+3 || x.Cell(1, 64) != 0 || x.Cell(2, 3) != 3*graph.PageCells+3 || x.Base(0) != x.Base(1) {
				t.Fatalf("index %v", x.Idx)
			}
		}
	}
	for _, bad := range []graph.Batch{
		{Tokens: []int32{1}, Pos: []int32{64}, Seq: []int32{0}, Pages: [][]int32{{0}}}, // past its pages
		{Tokens: []int32{1}, Pos: []int32{0}, Seq: []int32{1}, Pages: [][]int32{{0}}},  // no such sequence
		{Tokens: []int32{1}, Pos: []int32{0}, Seq: []int32{0}, Pages: [][]int32{{4}}},  // no such page
		{Tokens: []int32{1}, Pos: []int32{0}, Seq: []int32{0}, Pages: [][]int32{{0}}, Out: []int32{1}},
	} {
		if _, err := graph.BuildBatch(m, kv, &bad); err == nil {
			t.Errorf("batch %+v accepted", bad)
		}
	}
	// A corrupt index is refused where a backend checks it.
	for _, idx := range [][]int32{{0, 1}, {0, 2, 5}, {70, 2, 0}, {0, 1, 0}} {
		if _, err := (graph.KVIndex{Idx: idx, N: 1}).Check(graph.PageCells, kv.Cells); err == nil {
			t.Errorf("index %v accepted", idx)
		}
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
// TestPlanNoOverlap checks the arena plan: no two intermediates that are
// alive at one node share memory — a node's outputs and the inputs it
// reads included, and all parts of a fused node — on graphs of one token
// and of many, with and without fusion.
func TestPlanNoOverlap(t *testing.T) {
	m := tinyModel(t)
	kv := graph.NewKV(m.Config, 128, quant.Q4_0, quant.Q4_0)
	for _, ngl := range []int{0, 2, 5} {
		for _, n := range []int{1, 17} {
			for _, fuse := range []bool{false, true} {
				g, _ := graph.Build(m, kv, make([]int32, n), 3, model.LogitsAll)
				graph.Schedule(g, graph.Policy{NLayer: m.Config.NLayer, NGPULayers: ngl, Accel: "gpu"})
				if fuse {
					graph.Fuse(g, func(f *graph.Tensor) bool { return f.Backend == graph.Accel || f.Fusion == graph.FuseNormMul })
					if count(g, graph.OpFused) == 0 && ngl > 0 {
						t.Fatalf("ngl %d n %d: nothing fused", ngl, n)
					}
				}
				checkPlan(t, fmt.Sprintf("ngl %d n %d fuse %v", ngl, n, fuse), g)
			}
		}
	}
}

func checkPlan(t *testing.T, what string, g *graph.Graph) {
	t.Helper()
	sizes := graph.Plan(g)
	type life struct {
		t         *graph.Tensor
		def, last int
	}
	lives := map[*graph.Tensor]*life{}
	var order []*life
	for i, n := range g.Nodes {
		for _, o := range n.Outputs() {
			if o.Op != graph.OpSetRows {
				l := &life{o, i, i}
				lives[o] = l
				order = append(order, l)
			}
		}
		for _, s := range n.Inputs() {
			if l := lives[s]; l != nil {
				l.last = i
			}
		}
	}
	if l := lives[g.Out]; l != nil {
		l.last = len(g.Nodes)
	}
	var total int64
	for i, a := range order {
		if a.t.Offset%256 != 0 || a.t.Offset+a.t.Bytes() > sizes[a.t.Backend] {
			t.Fatalf("%s: %s at %d+%d outside arena %d", what, a.t.Name, a.t.Offset, a.t.Bytes(), sizes[a.t.Backend])
		}
		total += a.t.Bytes()
		for _, b := range order[i+1:] {
			if b.t.Backend != a.t.Backend || b.def > a.last || a.def > b.last {
				continue
			}
			if a.t.Offset < b.t.Offset+b.t.Bytes() && b.t.Offset < a.t.Offset+a.t.Bytes() {
				t.Fatalf("%s: %s [%d,+%d) overlaps %s [%d,+%d) while both are alive", what, a.t.Name, a.t.Offset, a.t.Bytes(), b.t.Name, b.t.Offset, b.t.Bytes())
			}
		}
	}
	if sizes[graph.CPU]+sizes[graph.Accel] >= total {
		t.Errorf("%s: planner reused nothing (%d bytes for %d of tensors)", what, sizes[0]+sizes[1], total)
	}
}

// TestFuse checks which patterns the pass finds in a one-token layer,
// that a backend declining a fusion gets the shorter ones or the ops
// themselves, and that a fused node reads what its parts read from
// outside.
func TestFuse(t *testing.T) {
	m := tinyModel(t)
	L := m.Config.NLayer
	all := func(*graph.Tensor) bool { return true }
	except := func(fs ...graph.Fusion) func(*graph.Tensor) bool {
		return func(n *graph.Tensor) bool { return !slices.Contains(fs, n.Fusion) }
	}
	for _, tc := range []struct {
		name     string
		supports func(*graph.Tensor) bool
		want     map[graph.Fusion]int
		mulMats  int // MUL_MAT nodes left unfused
	}{
		// Each residual ADD goes with the product before it, and each
		// norm with the products after it; the output norm has one
		// product, which it does not fuse with.
		{"all", all, map[graph.Fusion]int{graph.FuseNormMul: 1, graph.FuseNormQKV: L, graph.FuseNormMulSwiGLU: L,
			graph.FuseMulMatAdd: 2 * L}, 1},
		{"no norm_qkv", except(graph.FuseNormQKV), map[graph.Fusion]int{graph.FuseNormMul: 1, graph.FuseNormMulMat3: L, graph.FuseNormMulSwiGLU: L,
			graph.FuseRopeQKV: L, graph.FuseMulMatAdd: 2 * L}, 1},
		{"no norm products", except(graph.FuseNormQKV, graph.FuseNormMulMat3, graph.FuseNormMulSwiGLU), map[graph.Fusion]int{graph.FuseNormMul: 2*L + 1,
			graph.FuseMulMat3: L, graph.FuseMulMatSwiGLU: L, graph.FuseRopeQKV: L, graph.FuseMulMatAdd: 2 * L}, 1},
		{"no mul_mat3", except(graph.FuseNormQKV, graph.FuseNormMulMat3, graph.FuseNormMulSwiGLU, graph.FuseMulMat3), map[graph.Fusion]int{graph.FuseNormMul: 2*L + 1,
			graph.FuseMulMatSwiGLU: L, graph.FuseRopeQKV: L, graph.FuseMulMatAdd: 2 * L}, 3*L + 1},
	} {
		kv := graph.NewKV(m.Config, 16, quant.F16, quant.F16)
		g, _ := graph.Build(m, kv, []int32{1}, 0, model.LogitsLast)
		graph.Schedule(g, graph.Policy{NLayer: L, NGPULayers: 99, Accel: "gpu"})
		nodes := len(g.Nodes)
		graph.Fuse(g, tc.supports)
		got := map[graph.Fusion]int{}
		parts := 0
		for _, n := range g.Nodes {
			if n.Op == graph.OpFused {
				got[n.Fusion]++
				parts += len(n.Parts)
				if n.Backend != n.Parts[0].Backend {
					t.Errorf("%s: %s runs on %d, its parts on %d", tc.name, n.Name, n.Backend, n.Parts[0].Backend)
				}
			}
		}
		if !maps.Equal(got, tc.want) {
			t.Errorf("%s: fused %v, want %v", tc.name, got, tc.want)
		}
		if c := count(g, graph.OpMulMat); c != tc.mulMats {
			t.Errorf("%s: %d MUL_MATs left, want %d", tc.name, c, tc.mulMats)
		}
		if fusedNodes := count(g, graph.OpFused); len(g.Nodes) != nodes-parts+fusedNodes {
			t.Errorf("%s: %d nodes before, %d after with %d parts in %d fused nodes", tc.name, nodes, len(g.Nodes), parts, fusedNodes)
		}
		for _, n := range g.Nodes {
			if n.Op != graph.OpFused {
				continue
			}
			in := n.Inputs()
			switch n.Fusion {
			case graph.FuseMulMatSwiGLU:
				if len(in) != 3 || in[0] != n.Parts[0].Src[0] || in[1] != n.Parts[0].Src[1] || in[2] != n.Parts[1].Src[0] {
					t.Errorf("%s: %s reads %d tensors, want gate, x, up", tc.name, n.Name, len(in))
				}
			case graph.FuseNormMulSwiGLU:
				p := n.Parts
				if len(in) != 4 || in[0] != p[0].Src[0] || in[1] != p[1].Src[1] || in[2] != p[2].Src[0] || in[3] != p[3].Src[0] {
					t.Errorf("%s: %s reads %d tensors, want x, norm weight, gate, up", tc.name, n.Name, len(in))
				}
			}
		}
	}
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
