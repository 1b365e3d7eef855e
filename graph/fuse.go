package graph

import (
	"fmt"
	"slices"
)

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
	// FuseNormMulMat3: RMS_NORM(x), MUL by a one-row weight, and three
	// MUL_MATs of the result (the attention block's start: Q, K and V).
	FuseNormMulMat3
	// FuseNormMulSwiGLU: RMS_NORM(x), MUL by a one-row weight, MUL_MAT
	// (gate) and MUL_MAT (up) of the result, SWIGLU of the two (the FFN's
	// start).
	FuseNormMulSwiGLU
	// FuseNormQKV: a layer's attention input for its cache: RMS_NORM(x),
	// MUL by a one-row weight, the Q, K and V MUL_MATs of the result,
	// ROPE(Q), ROPE(K) at the same positions, SET_ROWS of the rotated K
	// and SET_ROWS of V.
	FuseNormQKV
	numFusions
)

var fusionNames = [...]string{"none", "norm_mul", "add_norm_mul", "rope_set_rows", "rope_qkv", "mul_mat_add", "mul_mat3", "mul_mat_swiglu", "norm_mul_mat3", "norm_mul_swiglu", "norm_qkv"}

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

// match returns the first fusion that starts at nodes[0] and that
// supports accepts, or nil; longer patterns are tried first. It looks at
// data flow only: the parts must follow each other in nodes (so every
// input of a part is computed before the fused node) and run on one
// backend.
func match(nodes []*Tensor, supports func(*Tensor) bool) *Tensor {
	at := func(i int) *Tensor {
		if i < len(nodes) && nodes[i].Op != OpCpy && nodes[i].Op != OpFused && nodes[i].Backend == nodes[0].Backend {
			return nodes[i]
		}
		return nil
	}
	is := func(t *Tensor, op Op) bool { return t != nil && t.Op == op }
	try := func(f Fusion, parts ...*Tensor) *Tensor {
		if n := fused(f, parts...); supports(n) {
			return n
		}
		return nil
	}
	// mulMats: products of x at nodes i.. (MUL_MAT, MUL_MAT, then a third
	// MUL_MAT or their SWIGLU).
	mulMat3 := func(i int, x *Tensor) bool {
		return is(at(i), OpMulMat) && at(i).Src[1] == x && is(at(i+1), OpMulMat) && at(i + 1).Src[1] == x &&
			is(at(i+2), OpMulMat) && at(i + 2).Src[1] == x
	}
	swiGLU := func(i int, x *Tensor) bool {
		a, b, c := at(i), at(i+1), at(i+2)
		return is(a, OpMulMat) && a.Src[1] == x && is(b, OpMulMat) && b.Src[1] == x && is(c, OpSwiGLU) && c.Src[0] == a && c.Src[1] == b
	}
	// ropeQKV: ROPE(q), ROPE(k), SET_ROWS(rotated k), SET_ROWS(v) at i..
	ropeQKV := func(i int) bool {
		rq, rk, sk, sv := at(i), at(i+1), at(i+2), at(i+3)
		return is(rq, OpRope) && is(rk, OpRope) && rk.Src[1] == rq.Src[1] && rk.Src[2] == rq.Src[2] && rk.Param == rq.Param &&
			is(sk, OpSetRows) && sk.Src[0] == rk && is(sv, OpSetRows) && sv.Src[0] != rq && sv.Src[0] != rk
	}
	normMul := func(i int) bool {
		n, m := at(i), at(i+1)
		return is(n, OpRMSNorm) && is(m, OpMul) && m.Src[0] == n && m.Src[1] != nil && m.Src[1].Rows() == 1
	}
	n0, n1, n2, n3 := at(0), at(1), at(2), at(3)
	if n0 == nil {
		return nil
	}
	var f *Tensor
	switch n0.Op {
	case OpMulMat:
		switch {
		case swiGLU(0, n0.Src[1]):
			f = try(FuseMulMatSwiGLU, n0, n1, n2)
		case mulMat3(0, n0.Src[1]):
			f = try(FuseMulMat3, n0, n1, n2)
		}
		if f == nil && is(n1, OpAdd) && (n1.Src[0] == n0) != (n1.Src[1] == n0) {
			f = try(FuseMulMatAdd, n0, n1)
		}
	case OpAdd:
		if is(n1, OpRMSNorm) && n1.Src[0] == n0 && normMul(1) {
			f = try(FuseAddNormMul, n0, n1, n2)
		}
	case OpRope:
		if ropeQKV(0) {
			f = try(FuseRopeQKV, n0, n1, n2, n3)
		}
		if f == nil && is(n1, OpSetRows) && n1.Src[0] == n0 {
			f = try(FuseRopeSetRows, n0, n1)
		}
	case OpRMSNorm:
		if !normMul(0) {
			break
		}
		switch {
		case mulMat3(2, n1):
			if ropeQKV(5) && at(5).Src[0] == n2 && at(6).Src[0] == n3 && at(8).Src[0] == at(4) {
				f = try(FuseNormQKV, slices.Clone(nodes[:9])...)
			}
			if f == nil {
				f = try(FuseNormMulMat3, n0, n1, n2, n3, at(4))
			}
		case swiGLU(2, n1):
			f = try(FuseNormMulSwiGLU, n0, n1, n2, n3, at(4))
		}
		if f == nil {
			f = try(FuseNormMul, n0, n1)
		}
	}
	return f
}

// FuseNodes replaces each run of nodes that forms a fusion, and that
// supports accepts as an OpFused node, by that node. The parts keep
// their names, shapes and places: later nodes read them as before.
func FuseNodes(nodes []*Tensor, supports func(*Tensor) bool) []*Tensor {
	out := make([]*Tensor, 0, len(nodes))
	for i := 0; i < len(nodes); {
		if f := match(nodes[i:], supports); f != nil {
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
