package ref

import (
	"math"
	"sync"

	"github.com/ocelot-llm/ocelot/model"
)

// RMSNorm writes x / sqrt(mean(x²) + eps) * w into out.
func RMSNorm(out, x, w []float32, eps float32) {
	var ss float64
	for _, v := range x {
		ss += float64(v) * float64(v)
	}
	scale := float32(1 / math.Sqrt(ss/float64(len(x))+float64(eps)))
	for i, v := range x {
		out[i] = v * scale * w[i]
	}
}

// Rope rotates each adjacent pair (x[2i], x[2i+1]) of every head in x by
// the angle pos·base^(-2i/headDim) / freqs[i] (llama.cpp's "normal" mode,
// the layout GGUF Llama weights use).
func Rope(x []float32, headDim, pos int, base float32, freqs []float32) {
	for h := 0; h < len(x); h += headDim {
		for i := 0; i < headDim/2; i++ {
			theta := float64(pos) * math.Pow(float64(base), -2*float64(i)/float64(headDim))
			if freqs != nil {
				theta /= float64(freqs[i])
			}
			sin, cos := math.Sincos(theta)
			a, b := x[h+2*i], x[h+2*i+1]
			x[h+2*i] = a*float32(cos) - b*float32(sin)
			x[h+2*i+1] = a*float32(sin) + b*float32(cos)
		}
	}
}

// Softmax turns x into probabilities in place.
func Softmax(x []float32) {
	maxv := x[0]
	for _, v := range x[1:] {
		maxv = max(maxv, v)
	}
	var sum float64
	for i, v := range x {
		e := float32(math.Exp(float64(v - maxv)))
		x[i] = e
		sum += float64(e)
	}
	inv := float32(1 / sum)
	for i := range x {
		x[i] *= inv
	}
}

// SiLU is x·sigmoid(x).
func SiLU(x float32) float32 { return x / (1 + float32(math.Exp(float64(-x)))) }

// Dot is the float32 inner product, summed in four lanes.
func Dot(a, b []float32) float32 {
	var s0, s1, s2, s3 float32
	n := len(a)
	b = b[:n]
	i := 0
	for ; i+4 <= n; i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < n; i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// parallel runs fn over [0, n) split into up to `threads` contiguous
// ranges, one goroutine each, and waits for them.
func parallel(n, threads int, fn func(lo, hi int)) {
	if threads <= 1 || n <= 1 {
		fn(0, n)
		return
	}
	threads = min(threads, n)
	var wg sync.WaitGroup
	for t := 0; t < threads; t++ {
		lo, hi := n*t/threads, n*(t+1)/threads
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	wg.Wait()
}

// MatMul computes out[t] = W · x[t] for every row x[t] of the batch:
// W's rows are dequantized one at a time (per goroutine) and reused for
// every token, so quantized weights are never expanded whole.
func MatMul(out, x [][]float32, w *model.Weight, threads int) error {
	var mu sync.Mutex
	var firstErr error
	parallel(w.Rows, threads, func(lo, hi int) {
		row := make([]float32, w.Cols)
		for i := lo; i < hi; i++ {
			if err := w.Row(i, row); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				return
			}
			for t := range x {
				out[t][i] = Dot(row, x[t])
			}
		}
	})
	return firstErr
}
