package opencl

import (
	"fmt"
	"math"

	"github.com/ocelot-llm/ocelot/accel"
	"github.com/ocelot-llm/ocelot/graph"
	"github.com/ocelot-llm/ocelot/internal/metric"
	"github.com/ocelot-llm/ocelot/quant"
)

// selfTest runs a few small ops on the device and compares them with the
// CPU backend: a Q4_0 matrix product on both the GEMV and (where the
// device has it) the GEMM path, a Q8_0 cache write that must match the
// CPU's quantization byte for byte, and attention over that cache. It catches a miscompiled
// kernel or a broken driver before any model runs.
func (b *Backend) selfTest() error {
	rng := uint32(12345)
	rnd := func() float32 {
		rng = rng*1664525 + 1013904223
		return float32(int32(rng>>8)-(1<<23)) / (1 << 23)
	}
	randv := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = rnd()
		}
		return v
	}

	const k, m, hd, nHead, nHeadKV, cells = 64, 40, 32, 4, 2, graph.PageCells
	width := hd * nHeadKV
	// Tensors. Activations live in the arena at offsets set below.
	wdata := make([]byte, k/32*18*m)
	wv := randv(k * m)
	if err := quant.QuantizeQ4_0(wdata, wv); err != nil {
		return err
	}
	w := &graph.Tensor{Name: "selftest.w", Type: quant.Q4_0, Shape: [4]int{k, m, 1, 1}, Kind: graph.Weight, Data: wdata}
	cache := &graph.Tensor{Name: "selftest.k", Type: quant.Q8_0, Shape: [4]int{width, cells, 1, 1}, Kind: graph.Cache}
	defer b.Free(w)
	defer b.Free(cache)
	if err := b.Load(w); err != nil {
		return err
	}
	if err := b.Load(cache); err != nil {
		return err
	}
	// Fill the cache with known rows.
	rowBytes := width / 32 * 34
	cacheData := make([]byte, rowBytes*cells)
	if err := quant.QuantizeQ8_0(cacheData, randv(width*cells)); err != nil {
		return err
	}
	if err := b.Upload(cache, cacheData); err != nil {
		return err
	}

	const nMV, nMM, nSet, nQ = 3, 20, 3, 2
	act := func(name string, w, n int) *graph.Tensor {
		return &graph.Tensor{Name: name, Type: quant.F32, Shape: [4]int{w, n, 1, 1}, Kind: graph.Intermediate, Backend: graph.Accel}
	}
	xMV, yMV := act("x_mv", k, nMV), act("y_mv", m, nMV)
	xMM, yMM := act("x_mm", k, nMM), act("y_mm", m, nMM)
	rowsIn := act("rows", width, nSet)
	q, att := act("q", hd*nHead, nQ), act("att", hd*nHead, nQ)
	var off int64
	for _, t := range []*graph.Tensor{xMV, yMV, xMM, yMM, rowsIn, q, att} {
		t.Offset = off
		off += (t.Bytes() + 255) / 256 * 256
	}
	// The inputs are the receiving ends of copies, as the runner's are.
	for _, t := range []*graph.Tensor{xMV, xMM, rowsIn, q} {
		t.Op = graph.OpCpy
	}
	yMV.Op, yMV.Src = graph.OpMulMat, [4]*graph.Tensor{w, xMV}
	yMM.Op, yMM.Src = graph.OpMulMat, [4]*graph.Tensor{w, xMM}
	cellIDs := []int32{5, 0, 2}
	cellsIn := &graph.Tensor{Name: "cells", Type: graph.I32, Shape: [4]int{nSet, 1, 1, 1}, Kind: graph.Input, I32s: cellIDs}
	set := &graph.Tensor{Name: "set", Op: graph.OpSetRows, Type: quant.Q8_0, Shape: cache.Shape, Src: [4]*graph.Tensor{rowsIn, cache, cellsIn}}
	// The queries sit at the last positions of one sequence in page 0.
	index := &graph.Tensor{Name: "kv_index", Type: graph.I32, Shape: [4]int{2*nQ + 1, 1, 1, 1}, Kind: graph.Input, I32s: []int32{cells - 2, cells - 1, 2 * nQ, 2 * nQ, 0}}
	att.Op, att.Src = graph.OpAttention, [4]*graph.Tensor{q, set, set, index}
	att.Param = graph.Params{HeadDim: hd, NHead: nHead, NHeadKV: nHeadKV, Page: graph.PageCells, NKV: cells, Scale: float32(1 / math.Sqrt(hd))}

	ar, err := b.NewArena(off)
	if err != nil {
		return err
	}
	defer ar.Free()
	xmv, xmm, rv, qv := randv(k*nMV), randv(k*nMM), randv(width*nSet), randv(hd*nHead*nQ)
	for _, in := range []struct {
		t *graph.Tensor
		v []float32
	}{{xMV, xmv}, {xMM, xmm}, {rowsIn, rv}, {q, qv}} {
		if err := b.Write(ar, in.t, in.v); err != nil {
			return err
		}
	}
	// One step at a time, each ending in a blocking read, so that a
	// kernel that faults is named.
	gotMV, gotMM, gotAtt := make([]float32, m*nMV), make([]float32, m*nMM), make([]float32, hd*nHead*nQ)
	for _, step := range []struct {
		name string
		node *graph.Tensor
		out  []float32
	}{
		{"q4_0 matrix-vector product (" + b.mulMatKernel(quant.Q4_0, nMV, true) + ")", yMV, gotMV},
		{"q4_0 matrix-matrix product (" + b.mulMatKernel(quant.Q4_0, nMM, true) + ")", yMM, gotMM},
		{"q8_0 cache write (set_rows_q8_0)", set, nil},
		{"attention over a q8_0 cache", att, gotAtt},
	} {
		err := b.Compute(ar, []*graph.Tensor{step.node})
		if err == nil && step.out != nil {
			err = b.Read(ar, step.node, step.out)
		}
		if err == nil && step.out != nil {
			err = checkFinite(step.node.Name, step.out)
		}
		if err == nil {
			err = b.Sync()
		}
		if err != nil {
			return fmt.Errorf("%s: %w", step.name, err)
		}
	}

	// The CPU backend's answers for the same nodes, as test-backend-ops
	// compares a backend with the CPU: float products (dequantized rows),
	// and a cache written by quant's own quantization.
	want, err := cpuAnswers(w, cache, cacheData, off, []*graph.Tensor{xMV, xMM, rowsIn, q}, [][]float32{xmv, xmm, rv, qv}, yMV, yMM, set, att)
	if err != nil {
		return fmt.Errorf("self-test on the CPU: %w", err)
	}
	if e := metric.NMSE(want.mv, gotMV); !(e <= metric.MatMulNMSE) {
		return fmt.Errorf("q4_0 matrix-vector product is wrong (NMSE %.3g)", e)
	}
	if e := metric.NMSE(want.mm, gotMM); !(e <= metric.MatMulNMSE) {
		return fmt.Errorf("q4_0 matrix-matrix product is wrong (NMSE %.3g)", e)
	}
	gotCache := make([]byte, len(cacheData))
	if err := b.Download(cache, gotCache); err != nil {
		return err
	}
	for i := range gotCache {
		if gotCache[i] != want.cache[i] {
			return fmt.Errorf("q8_0 cache write differs from the CPU's quantization at byte %d", i)
		}
	}
	if e := metric.NMSE(want.att, gotAtt); !(e <= metric.MatMulNMSE) {
		return fmt.Errorf("attention over a q8_0 cache is wrong (NMSE %.3g)", e)
	}
	return nil
}

// selfTestAnswers are the CPU's results of the self-test's nodes.
type selfTestAnswers struct {
	mv, mm, att []float32
	cache       []byte
}

// cpuAnswers runs the self-test's nodes on a one-thread CPU backend with
// float products: weights w and cache (filled with cacheData) resident
// there, inputs written into an arena of size bytes.
func cpuAnswers(w, cache *graph.Tensor, cacheData []byte, size int64, in []*graph.Tensor, vals [][]float32, mv, mm, set, att *graph.Tensor) (*selfTestAnswers, error) {
	cpu := accel.NewCPU(1)
	defer cpu.Close()
	cpu.SetPrecision(accel.PrecisionFloat)
	for _, t := range []*graph.Tensor{w, cache} {
		if err := cpu.Load(t); err != nil {
			return nil, err
		}
		defer cpu.Free(t)
	}
	if err := cpu.Upload(cache, cacheData); err != nil {
		return nil, err
	}
	ar, err := cpu.NewArena(size)
	if err != nil {
		return nil, err
	}
	defer ar.Free()
	for i, t := range in {
		if err := cpu.Write(ar, t, vals[i]); err != nil {
			return nil, err
		}
	}
	if err := cpu.Compute(ar, []*graph.Tensor{mv, mm, set, att}); err != nil {
		return nil, err
	}
	res := &selfTestAnswers{mv: make([]float32, mv.Elements()), mm: make([]float32, mm.Elements()), att: make([]float32, att.Elements()), cache: make([]byte, len(cacheData))}
	for _, r := range []struct {
		t   *graph.Tensor
		dst []float32
	}{{mv, res.mv}, {mm, res.mm}, {att, res.att}} {
		if err := cpu.Read(ar, r.t, r.dst); err != nil {
			return nil, err
		}
	}
	return res, cpu.Download(cache, res.cache)
}
