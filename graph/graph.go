// Package graph is the op graph of one forward pass: a small typed IR of
// the ops a Llama model needs, a builder that emits one micro-batch of the
// Llama forward pass, a memory planner that reuses buffers by liveness, and
// a scheduler that places every op on a backend and inserts the copies
// where data crosses from one backend to another.
package graph

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/ocelot-llm/ocelot/quant"
)

// Op is what a node computes.
type Op uint8

// The ops. Shapes follow ggml: Shape[0] is the row length, Shape[1] the
// number of rows (tokens, for activations).
const (
	// OpLeaf is not computed: an input, a weight or a KV cache tensor.
	OpLeaf Op = iota
	// OpGetRows looks rows up: Src[0] a table of any type [width, rows],
	// Src[1] ids (I32, [n]); the result is f32 [width, n].
	OpGetRows
	// OpRMSNorm normalises each row of Src[0] by its root mean square,
	// with Param.Eps. (The learned scale follows as a MUL; backends may
	// fuse the two.)
	OpRMSNorm
	// OpMul multiplies Src[0] by Src[1] element-wise; Src[1] is broadcast
	// over rows when it has one row.
	OpMul
	// OpAdd adds Src[1] to Src[0] element-wise (same shape).
	OpAdd
	// OpMulMat multiplies a weight Src[0] of any supported type
	// [k, m] by f32 activations Src[1] [k, n]: the result is f32 [m, n],
	// row t holding W·x[t].
	OpMulMat
	// OpRope rotates adjacent pairs of every head of Src[0] (f32
	// [headDim*nHead, n]) by position Src[1] (I32 [n]), with the frequency
	// divisors Src[2] (f32 [headDim/2]) when present. Params: RopeBase,
	// HeadDim.
	OpRope
	// OpSetRows writes the f32 rows of Src[0] [width, n] into the KV tensor
	// Src[1] [width, cells] at the cells Src[2] (I32 [n]), converting to
	// the KV tensor's type (f32, f16, q8_0, q4_0) on the way. The node's
	// value is Src[1], updated in place.
	OpSetRows
	// OpAttention is fused attention: queries Src[0] (f32
	// [headDim*nHead, n]) against the K cache Src[1] and V cache Src[2]
	// (any KV type, [headDim*nHeadKV, cells]), with grouped-query heads
	// and online softmax scaled by Param.Scale. The KV index Src[3] (I32,
	// see KVIndex) says, for each token, its position p in its sequence
	// and where the sequence's pages of Param.Page cells lie: the token
	// sees positions 0..p of its own sequence (the causal mask, per
	// sequence), position j at cell page[j/Page]*Page + j%Page. Param.NKV
	// is the most positions any token sees. The result is f32
	// [headDim*nHead, n].
	OpAttention
	// OpSwiGLU is silu(Src[0]) * Src[1].
	OpSwiGLU
	// OpCpy copies Src[0] to another backend (inserted by the scheduler).
	OpCpy
	// OpFused computes its Parts, a pattern named by Fusion, in one go
	// (made by the Fuse pass). It has no Src and no value of its own:
	// its parts' outputs are where later nodes find them.
	OpFused
	numOps
)

var opNames = [...]string{"LEAF", "GET_ROWS", "RMS_NORM", "MUL", "ADD", "MUL_MAT", "ROPE", "SET_ROWS", "ATTENTION", "SWIGLU", "CPY", "FUSED"}

func (o Op) String() string {
	if int(o) < len(opNames) {
		return opNames[o]
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Backend slots. A graph runs on at most two backends: the CPU, which runs
// every op and holds every weight in place, and one accelerator, which
// runs what the scheduler gives it. That is what llama.cpp's -ngl model
// needs (layers split between the host and one device), so a tensor keeps
// its backends' handles in a two-element array (Tensor.Bufs) instead of a
// map, and placement is a layer range (Policy), not a search. More
// devices would widen these two places.
const (
	CPU         = 0
	Accel       = 1
	MaxBackends = 2
)

// I32 marks tensors of int32 values (token ids, positions, cells). It is
// ggml's I32 type.
const I32 = quant.I32

// Kind says where a tensor's memory comes from.
type Kind uint8

// Tensor kinds.
const (
	Intermediate Kind = iota // made and consumed within one graph; placed by the planner
	Input                    // filled by the caller before each run (ids, positions, cells)
	Weight                   // a model weight: persistent, uploaded once
	Cache                    // a KV cache tensor: persistent, written by SET_ROWS
)

var kindNames = [...]string{"intermediate", "input", "weight", "cache"}

func (k Kind) String() string { return kindNames[k] }

// Params are the scalar parameters of an op.
type Params struct {
	Eps      float32 // RMS_NORM
	RopeBase float32 // ROPE
	HeadDim  int     // ROPE, ATTENTION
	NHead    int     // ATTENTION: query heads
	NHeadKV  int     // ATTENTION: key/value heads
	Page     int     // ATTENTION: cells per page of the KV index
	NKV      int     // ATTENTION: the most positions a token sees (its position + 1)
	Scale    float32 // ATTENTION: score scale, 1/sqrt(HeadDim)
	// QuantCacheFeed marks a MUL_MAT whose result is stored, after at
	// most a ROPE, into a quantized KV cache (the K and V projections):
	// rounded again on the way in, it is worth computing more precisely.
	QuantCacheFeed bool
}

// Tensor is a node of the graph: a leaf (input, weight, cache) or the
// result of an op.
type Tensor struct {
	Name  string
	Op    Op
	Type  quant.Type
	Shape [4]int // ggml's ne: Shape[0] is the row length; unused dims are 1
	Src   [4]*Tensor
	Param Params
	Kind  Kind
	// Layer is the transformer block the node belongs to: -1 for the
	// input part (embedding), NLayer for the output part.
	Layer int

	// Backend is the index of the backend the node runs on (its data lives
	// there), set by the scheduler.
	Backend int
	// Offset is the byte offset of an intermediate in its backend's
	// arena, set by the planner.
	Offset int64
	// lastRead is the planner's note on an intermediate: 1 + the index
	// of the last node that reads it, 0 if none does.
	lastRead int

	// Data is the host copy of a leaf: a weight's bytes (often in the
	// model's memory map) or an input's values (I32 little-endian).
	Data []byte
	// Bufs holds the backends' handles for a persistent tensor (weight or
	// cache), indexed by backend: CPU (0) and Accel (1). Backends set and
	// read their own slot.
	Bufs [MaxBackends]any
	// I32s holds an input's values (ids, positions, cells); Data is not
	// used for I32 inputs.
	I32s []int32

	// Fusion and Parts describe an OpFused node: which pattern, and the
	// nodes it computes, in order.
	Fusion Fusion
	Parts  []*Tensor
}

// Rows is the number of rows: the product of Shape[1:].
func (t *Tensor) Rows() int { return t.Shape[1] * t.Shape[2] * t.Shape[3] }

// Elements is the number of elements.
func (t *Tensor) Elements() int { return t.Shape[0] * t.Rows() }

// Bytes is the tensor's size in its type; 0 when it cannot be told (an
// unknown type, or a size beyond int64), which backends refuse to place.
func (t *Tensor) Bytes() int64 {
	row := int64(4)
	if t.Type != I32 {
		var err error
		if row, err = quant.RowSize(t.Type, int64(t.Shape[0])); err != nil {
			return 0
		}
	} else {
		row *= int64(t.Shape[0])
	}
	n, err := quant.MulSize(row, int64(t.Shape[1]), int64(t.Shape[2]), int64(t.Shape[3]))
	if err != nil {
		return 0
	}
	return n
}

// Storage is the tensor whose memory holds t's value: the cache tensor
// for a SET_ROWS node (which updates it in place), t itself otherwise.
func (t *Tensor) Storage() *Tensor {
	for t.Op == OpSetRows {
		t = t.Src[1]
	}
	return t
}

// Inputs returns the node's sources; for an OpFused node, its parts'
// sources that are not parts themselves, each once.
func (t *Tensor) Inputs() []*Tensor { return t.appendInputs(nil) }

// appendInputs appends the node's inputs (see Inputs) to out.
func (t *Tensor) appendInputs(out []*Tensor) []*Tensor {
	if t.Op == OpFused {
		n := len(out)
		// A few parts of up to three sources each: a linear search is
		// cheaper than a map on this per-token path.
		for i, p := range t.Parts {
			for _, s := range p.Src {
				if s != nil && !slices.Contains(t.Parts[:i], s) && !slices.Contains(out[n:], s) {
					out = append(out, s)
				}
			}
		}
		return out
	}
	for _, s := range t.Src {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

// Outputs returns the tensors a node computes: its parts for an OpFused
// node, else the node itself.
func (t *Tensor) Outputs() []*Tensor {
	if t.Op == OpFused {
		return t.Parts
	}
	return []*Tensor{t}
}

func (t *Tensor) shapeString() string {
	n := 4
	for n > 1 && t.Shape[n-1] == 1 {
		n--
	}
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprint(t.Shape[i])
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// Graph is one forward pass: nodes in execution order.
type Graph struct {
	Nodes []*Tensor // computed nodes, in an order that respects dependencies
	Out   *Tensor   // the logits (nil when the pass only fills the cache)
	// Backends names the backends the scheduler placed nodes on; a node's
	// Backend indexes it.
	Backends []string
	// Copies counts the CPY nodes the scheduler inserted, and CopyBytes
	// the bytes they move per run.
	Copies    int
	CopyBytes int64
}

// Dump prints the graph, one node a line: index, op, name, type, shape,
// placement and sources.
func (g *Graph) Dump(w io.Writer) {
	index := map[*Tensor]int{}
	for i, n := range g.Nodes {
		index[n] = i
	}
	place := func(t *Tensor) string {
		if t.Backend >= 0 && t.Backend < len(g.Backends) {
			return g.Backends[t.Backend]
		}
		return "?"
	}
	fmt.Fprintf(w, "graph: %d nodes, %d copies (%d bytes per run), backends %v\n", len(g.Nodes), g.Copies, g.CopyBytes, g.Backends)
	for i, n := range g.Nodes {
		var srcs []string
		for _, s := range n.Inputs() {
			if j, ok := index[s]; ok {
				srcs = append(srcs, fmt.Sprintf("#%d", j))
			} else {
				// A leaf is read where its consumer runs: weights and
				// caches are resident there, inputs come from the host.
				where := place(n)
				if s.Kind == Input {
					where = "host"
				}
				srcs = append(srcs, fmt.Sprintf("%s(%s@%s)", s.Name, s.Kind, where))
			}
		}
		op, name := n.Op.String(), n.Name
		if n.Op == OpFused {
			op = n.Fusion.String()
			names := make([]string, len(n.Parts))
			for j, p := range n.Parts {
				names[j] = p.Name
			}
			name = strings.Join(names, "+")
		}
		fmt.Fprintf(w, "#%-4d %-9s %-24s %-5s %-16s on %-7s <- %s\n", i, op, name, n.Type, n.shapeString(), place(n), strings.Join(srcs, ", "))
	}
}
