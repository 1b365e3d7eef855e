package graph

import "fmt"

// Fusion names a pattern of ops that one kernel may compute together.
// The Fuse pass finds them in a graph and turns each into one OpFused
// node for the backends that say (through Supports) that they run it; a
// backend that does not gets the ops one by one.
type Fusion uint8

// The fusions, each listing its parts in order.
const (
	FuseNone Fusion = iota
	// FuseNormMul: RMS_NORM(x), MUL of it by a one-row weight.
	FuseNormMul
	// FuseAddNormMul: ADD(a, b), RMS_NORM of the sum, MUL by a one-row
	// weight (the residual ADD with the next block's norm).
	FuseAddNormMul
	// FuseRopeSetRows: ROPE(k), SET_ROWS of the rotated rows.
	FuseRopeSetRows
	// FuseRopeQKV: ROPE(q), ROPE(k) at the same positions, SET_ROWS of
	// the rotated k, SET_ROWS of v (an earlier result).
	FuseRopeQKV
	// FuseMulMatAdd: MUL_MAT(w, x), ADD of it and a residual.
	FuseMulMatAdd
	// FuseMulMat3: three MUL_MATs of one input (Q, K and V).
	FuseMulMat3
	// FuseMulMatSwiGLU: MUL_MAT(gate, x), MUL_MAT(up, x), SWIGLU of the
	// two.
	FuseMulMatSwiGLU
	numFusions
)

var fusionNames = [...]string{"none", "norm_mul", "add_norm_mul", "rope_set_rows", "rope_qkv", "mul_mat_add", "mul_mat3", "mul_mat_swiglu"}

func (f Fusion) String() string {
	if int(f) < len(fusionNames) {
		return fusionNames[f]
	}
	return fmt.Sprintf("fusion(%d)", uint8(f))
}

// Fusions lists every fusion the pass knows.
func Fusions() []Fusion {
	var out []Fusion
	for f := FuseNone + 1; f < numFusions; f++ {
		out = append(out, f)
	}
	return out
}

// fused makes the OpFused node of parts. It takes its first part's name
// (Dump lists the others): fusion runs for every micro-batch, so it
// builds no strings.
func fused(f Fusion, parts ...*Tensor) *Tensor {
	last := parts[len(parts)-1]
	return &Tensor{Name: parts[0].Name, Op: OpFused, Fusion: f, Parts: parts, Type: last.Type, Shape: last.Shape,
		Kind: Intermediate, Layer: parts[0].Layer, Backend: parts[0].Backend}
}

// match returns the fusion that starts at nodes[0], or nil. It looks at
// data flow only: the parts must follow each other in nodes (so every
// input of a part is computed before the fused node) and run on one
// backend.
func match(nodes []*Tensor) *Tensor {
	at := func(i int) *Tensor {
		if i < len(nodes) && nodes[i].Op != OpCpy && nodes[i].Op != OpFused && nodes[i].Backend == nodes[0].Backend {
			return nodes[i]
		}
		return nil
	}
	is := func(t *Tensor, op Op) bool { return t != nil && t.Op == op }
	n0, n1, n2, n3 := at(0), at(1), at(2), at(3)
	if n0 == nil {
		return nil
	}
	switch n0.Op {
	case OpMulMat:
		sameInput := func(m *Tensor) bool { return is(m, OpMulMat) && m.Src[1] == n0.Src[1] }
		if sameInput(n1) && is(n2, OpSwiGLU) && n2.Src[0] == n0 && n2.Src[1] == n1 {
			return fused(FuseMulMatSwiGLU, n0, n1, n2)
		}
		if sameInput(n1) && sameInput(n2) {
			return fused(FuseMulMat3, n0, n1, n2)
		}
		if is(n1, OpAdd) && (n1.Src[0] == n0) != (n1.Src[1] == n0) {
			return fused(FuseMulMatAdd, n0, n1)
		}
	case OpAdd:
		if is(n1, OpRMSNorm) && n1.Src[0] == n0 && is(n2, OpMul) && n2.Src[0] == n1 && n2.Src[1] != nil && n2.Src[1].Rows() == 1 {
			return fused(FuseAddNormMul, n0, n1, n2)
		}
	case OpRope:
		if is(n1, OpRope) && n1.Src[1] == n0.Src[1] && n1.Src[2] == n0.Src[2] && n1.Param == n0.Param &&
			is(n2, OpSetRows) && n2.Src[0] == n1 && is(n3, OpSetRows) && n3.Src[0] != n0 && n3.Src[0] != n1 {
			return fused(FuseRopeQKV, n0, n1, n2, n3)
		}
		if is(n1, OpSetRows) && n1.Src[0] == n0 {
			return fused(FuseRopeSetRows, n0, n1)
		}
	case OpRMSNorm:
		if is(n1, OpMul) && n1.Src[0] == n0 && n1.Src[1] != nil && n1.Src[1].Rows() == 1 {
			return fused(FuseNormMul, n0, n1)
		}
	}
	return nil
}

// FuseNodes replaces each run of nodes that forms a fusion, and that
// supports accepts as an OpFused node, by that node. The parts keep
// their names, shapes and places: later nodes read them as before.
func FuseNodes(nodes []*Tensor, supports func(*Tensor) bool) []*Tensor {
	out := make([]*Tensor, 0, len(nodes))
	for i := 0; i < len(nodes); {
		if f := match(nodes[i:]); f != nil && supports(f) {
			out = append(out, f)
			i += len(f.Parts)
			continue
		}
		out = append(out, nodes[i])
		i++
	}
	return out
}

// Fuse runs FuseNodes over a scheduled graph: supports is asked about
// fused nodes whose parts all run on one backend (the node's Backend).
// It must run after Schedule and before Plan.
func Fuse(g *Graph, supports func(*Tensor) bool) {
	g.Nodes = FuseNodes(g.Nodes, supports)
}
