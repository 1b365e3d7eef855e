package quant

import (
	"fmt"
	"runtime"
	"testing"
)

// The matmul benchmarks run single-threaded on every available path:
//
//	go test -run '^$' -bench 'Gemv|Gemm' ./quant
//
// GEMV multiplies a weight matrix by one activation row (decode) and
// reports the weight bytes streamed per second; GEMM multiplies it by many
// rows (prefill) and reports GFLOP/s, counting 2*rows*k*acts operations.

// benchPaths runs f once per available kernel path.
func benchPaths(b *testing.B, f func(b *testing.B)) {
	for _, p := range AvailablePaths() {
		b.Run(p.String(), func(b *testing.B) {
			restore, err := SetKernelPath(p)
			if err != nil {
				b.Fatal(err)
			}
			defer restore()
			f(b)
		})
	}
}

type benchShape struct {
	wt         Type
	rows, k, n int
}

func benchMatMul(b *testing.B, s benchShape) {
	r := newRNG(uint64(s.rows*7 + s.k + s.n))
	w, rowBytes := randWeights(b, r, s.wt, s.k, s.rows, 0, false)
	a, aRowBytes := randActs(b, r, s.wt, s.k, s.n, 0, false)
	out := make([]float32, s.rows*s.n)
	benchPaths(b, func(b *testing.B) {
		if KernelPath() == PathGeneric && 2*float64(s.rows)*float64(s.k)*float64(s.n) > 2e9 {
			b.Skip("the generic path takes seconds per call at this size")
		}
		if s.n == 1 {
			b.SetBytes(int64(len(w)))
		}
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		cpu0, cpuOK := threadCPUTime()
		for b.Loop() {
			if err := MatMul(s.wt, s.k, w, rowBytes, s.rows, a, aRowBytes, s.n, out, s.rows); err != nil {
				b.Fatal(err)
			}
		}
		cpu1, _ := threadCPUTime()
		flops := 2 * float64(s.rows) * float64(s.k) * float64(s.n) * float64(b.N)
		b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		// Per second of this thread's CPU time: the same figure on an idle
		// machine, more stable on a busy one.
		if cpu := (cpu1 - cpu0).Seconds(); cpuOK && cpu > 0 {
			b.ReportMetric(flops/cpu/1e9, "cpuGFLOP/s")
			if s.n == 1 {
				b.ReportMetric(float64(len(w))*float64(b.N)/cpu/1e9, "cpuGB/s")
			}
		}
	})
}

func BenchmarkGemv(b *testing.B) {
	for _, s := range []benchShape{
		{Q4_0, 2048, 2048, 1},
		{Q4_0, 8192, 2048, 1},
		{Q4_0, 2048, 8192, 1},
		{Q4_0, 32768, 2048, 1}, // 36 MiB: beyond the caches
		{Q8_0, 2048, 2048, 1},
		{Q6_K, 8192, 2048, 1},
		{Q6_K, 32768, 2048, 1},
		{F16, 2048, 2048, 1},
	} {
		b.Run(fmt.Sprintf("%s/%dx%d", s.wt, s.rows, s.k), func(b *testing.B) { benchMatMul(b, s) })
	}
}

func BenchmarkGemm(b *testing.B) {
	for _, s := range []benchShape{
		{Q4_0, 2048, 2048, 64},
		{Q4_0, 2048, 2048, 512},
		{Q4_0, 8192, 2048, 512},
		{Q4_0, 2048, 8192, 512},
		{Q4_0, 2048, 2048, 8},
		{Q4_0, 32768, 2048, 8}, // n_ubatch 8 on weights beyond the caches
		{Q8_0, 2048, 2048, 64},
		{Q6_K, 2048, 2048, 64},
		// Attention-shaped float products: K rows (cells × head dim 64)
		// by a GQA group of 4 queries, and V^T by 4 score rows.
		{F32, 512, 64, 4},
		{F16, 512, 64, 4},
		{F32, 64, 512, 4},
		{F32, 1024, 1024, 64},
	} {
		b.Run(fmt.Sprintf("%s/%dx%dx%d", s.wt, s.rows, s.k, s.n), func(b *testing.B) { benchMatMul(b, s) })
	}
}

func BenchmarkQuantizeAct(b *testing.B) {
	r := newRNG(3)
	x := make([]float32, 8192)
	for i := range x {
		x[i] = r.normal()
	}
	for _, wt := range []Type{Q4_0, Q6_K} {
		n, _ := ActRowSize(wt, len(x))
		dst := make([]byte, n)
		b.Run(wt.String(), func(b *testing.B) {
			benchPaths(b, func(b *testing.B) {
				b.SetBytes(int64(4 * len(x)))
				for b.Loop() {
					if err := QuantizeAct(wt, dst, x); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkTileKernel times each path's GEMM micro-kernel alone, on a
// panel and a tile that stay in L1 (64 blocks), and reports the time per
// activation row and block and the int8 multiply-adds per second.
func BenchmarkTileKernel(b *testing.B) {
	for _, p := range AvailablePaths() {
		ks := registry[p]
		for q, tk := range ks.tile {
			if tk == nil {
				continue
			}
			b.Run(fmt.Sprintf("%s/%s/T%d", p, qTypes[q], tk.tmax), func(b *testing.B) {
				const nb = 64
				w := make([]byte, tk.panelBytes(nb))
				a := make([]byte, tk.tileBytes(nb, tk.tmax))
				out := make([]float32, tk.tmax*tk.rows)
				for b.Loop() {
					tk.run[tk.tmax](&w[0], &a[0], nb, &out[0], tk.rows)
				}
				ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N*nb*tk.tmax)
				b.ReportMetric(ns, "ns/row-block")
				b.ReportMetric(float64(tk.rows*tk.elems())/ns, "GMAC/s")
			})
		}
	}
}
