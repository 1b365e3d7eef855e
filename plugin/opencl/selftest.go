package opencl

import (
	"fmt"
	"math"

	"github.com/ocelot-llm/ocelot/graph"
	"github.com/ocelot-llm/ocelot/quant"
	"github.com/ocelot-llm/ocelot/ref"
)

// selfTest runs a few small ops on the device and compares them with the
// CPU: a Q4_0 matrix product on both the GEMV and (where the device has
// it) the GEMM path, a Q8_0 cache write that must match quant.Quantize
// byte for byte, and attention over that cache. It catches a miscompiled
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

	const k, m, hd, nHead, nHeadKV, cells = 64, 40, 32, 4, 2, 8
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
	yMV.Op, yMV.Src = graph.OpMulMat, [3]*graph.Tensor{w, xMV}
	yMM.Op, yMM.Src = graph.OpMulMat, [3]*graph.Tensor{w, xMM}
	cellIDs := []int32{5, 0, 2}
	cellsIn := &graph.Tensor{Name: "cells", Type: graph.I32, Shape: [4]int{nSet, 1, 1, 1}, Kind: graph.Input, I32s: cellIDs}
	set := &graph.Tensor{Name: "set", Op: graph.OpSetRows, Type: quant.Q8_0, Shape: cache.Shape, Src: [3]*graph.Tensor{rowsIn, cache, cellsIn}}
	att.Op, att.Src = graph.OpAttention, [3]*graph.Tensor{q, set, set}
	att.Param = graph.Params{HeadDim: hd, NHead: nHead, NHeadKV: nHeadKV, Pos0: cells - nQ, NKV: cells, Scale: float32(1 / math.Sqrt(hd))}

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
		if err == nil {
			err = b.Sync()
		}
		if err != nil {
			return fmt.Errorf("%s: %w", step.name, err)
		}
	}

	// The reference answers.
	deq := make([]float32, k*m)
	if err := quant.DequantizeQ4_0(deq, wdata); err != nil {
		return err
	}
	matmul := func(x []float32, n int) []float32 {
		y := make([]float32, m*n)
		for t := 0; t < n; t++ {
			for i := 0; i < m; i++ {
				var s float64
				for j := 0; j < k; j++ {
					s += float64(deq[i*k+j]) * float64(x[t*k+j])
				}
				y[t*m+i] = float32(s)
			}
		}
		return y
	}
	if e := nmse(matmul(xmv, nMV), gotMV); !(e <= 5e-4) {
		return fmt.Errorf("q4_0 matrix-vector product is wrong (NMSE %.3g)", e)
	}
	if e := nmse(matmul(xmm, nMM), gotMM); !(e <= 5e-4) {
		return fmt.Errorf("q4_0 matrix-matrix product is wrong (NMSE %.3g)", e)
	}
	for i, c := range cellIDs {
		if err := quant.QuantizeQ8_0(cacheData[int(c)*rowBytes:], rv[i*width:(i+1)*width]); err != nil {
			return err
		}
	}
	gotCache := make([]byte, len(cacheData))
	if err := b.Download(cache, gotCache); err != nil {
		return err
	}
	for i := range gotCache {
		if gotCache[i] != cacheData[i] {
			return fmt.Errorf("q8_0 cache write differs from the CPU's quantization at byte %d", i)
		}
	}
	kv := make([]float32, width*cells)
	if err := quant.DequantizeQ8_0(kv, cacheData); err != nil {
		return err
	}
	qrows, want := make([][]float32, nQ), make([][]float32, nQ)
	for t := range qrows {
		qrows[t] = qv[t*hd*nHead : (t+1)*hd*nHead]
		want[t] = make([]float32, hd*nHead)
	}
	ref.Attention(want, qrows, kv, kv, cells-nQ, nHead, nHeadKV, hd, 1)
	var flat []float32
	for _, r := range want {
		flat = append(flat, r...)
	}
	if e := nmse(flat, gotAtt); !(e <= 5e-4) {
		return fmt.Errorf("attention over a q8_0 cache is wrong (NMSE %.3g)", e)
	}
	return nil
}

// nmse is mse(want, got) / mse(want, 0); +Inf for NaN or Inf in got.
func nmse(want, got []float32) float64 {
	if len(want) != len(got) {
		return math.Inf(1)
	}
	var num, den float64
	for i := range want {
		g := float64(got[i])
		if math.IsNaN(g) || math.IsInf(g, 0) {
			return math.Inf(1)
		}
		d := float64(want[i]) - g
		num += d * d
		den += float64(want[i]) * float64(want[i])
	}
	if den == 0 {
		if num == 0 {
			return 0
		}
		return math.Inf(1)
	}
	return num / den
}
