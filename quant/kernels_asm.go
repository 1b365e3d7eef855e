//go:build !noasm && (amd64 || arm64)

package quant

import "unsafe"

// Adapters between the kernel signatures (slices) and the assembly
// kernels (pointers and counts), shared by amd64 and arm64.

// gemvAsm adapts assembly GEMV kernels (r4 for groups of four rows, may be
// nil, and r1 for single rows) of blk-element blocks.
func gemvAsm(r4, r1 func(w *byte, rowBytes int, a *byte, nb int, out *float32, rows int), blk int) func(k int, w []byte, rowBytes, rows int, a []byte, out []float32) {
	return func(k int, w []byte, rowBytes, rows int, a []byte, out []float32) {
		nb := k / blk
		r := 0
		if r4 != nil {
			r = rows &^ 3
			if r > 0 {
				r4(&w[0], rowBytes, &a[0], nb, &out[0], r)
			}
		}
		if r < rows {
			r1(&w[r*rowBytes], rowBytes, &a[0], nb, &out[r], rows-r)
		}
	}
}

// dotF32Asm adapts an assembly f32 dot product that takes a multiple of
// step elements; the rest are added in Go.
func dotF32Asm(dot func(w *byte, a *float32, n int) float32, step int) func(n int, w, a []float32) float32 {
	return func(n int, w, a []float32) float32 {
		m := n &^ (step - 1)
		var s float32
		if m > 0 {
			s = dot((*byte)(unsafe.Pointer(&w[0])), &a[0], m)
		}
		if m < n {
			s += dotF32Generic(n-m, w[m:], a[m:])
		}
		return s
	}
}

// dot16Asm is dotF32Asm for 2-byte weights.
func dot16Asm(dot func(w *byte, a *float32, n int) float32, step int, tail func(n int, w []byte, a []float32) float32) func(n int, w []byte, a []float32) float32 {
	return func(n int, w []byte, a []float32) float32 {
		m := n &^ (step - 1)
		var s float32
		if m > 0 {
			s = dot(&w[0], &a[0], m)
		}
		if m < n {
			s += tail(n-m, w[2*m:], a[m:])
		}
		return s
	}
}

// quantQ8_0Asm adapts an assembly Q8_0 quantizer that stops before a
// block holding a NaN (whose scale depends on the order of the scan, which
// the generic quantizer follows) and returns the blocks it did.
func quantQ8_0Asm(quant func(dst *byte, src *float32, nb int) int) func(dst []byte, src []float32) {
	return func(dst []byte, src []float32) {
		nb := len(src) / QK8_0
		for i := 0; i < nb; {
			i += quant(&dst[i*34], &src[i*QK8_0], nb-i)
			if i < nb {
				quantQ8_0Generic(dst[i*34:i*34+34], src[i*QK8_0:i*QK8_0+QK8_0])
				i++
			}
		}
	}
}

// swigluAsm adapts an assembly SwiGLU of a multiple of step elements; the
// rest are done in Go.
func swigluAsm(run func(dst, x, y *float32, n int), step int) func(dst, x, y []float32) {
	return func(dst, x, y []float32) {
		n := len(dst)
		m := n &^ (step - 1)
		if m > 0 {
			run(&dst[0], &x[0], &y[0], m)
		}
		swigluGeneric(dst[m:], x[m:n], y[m:n])
	}
}

// expSubAsm adapts an assembly ExpSub likewise.
func expSubAsm(run func(x *float32, n int, m *float32), step int) func(x []float32, m float32) {
	return func(x []float32, m float32) {
		k := len(x) &^ (step - 1)
		if k > 0 {
			run(&x[0], k, &m)
		}
		expSubGeneric(x[k:], m)
	}
}

// gemvNAsm adapts a table of assembly small-batch GEMV kernels (tab[T] for
// T = 2..len(tab)-1 activation rows) of blk-element blocks.
func gemvNAsm(tab []func(w *byte, rowBytes int, a *byte, aRowBytes int, nb int, out *float32, outStride int, rows int), blk int) *gemvNKernel {
	return &gemvNKernel{max: len(tab) - 1, run: func(k int, w []byte, rowBytes, rows int, a []byte, aRowBytes, nAct int, out []float32, outStride int) {
		tab[nAct](&w[0], rowBytes, &a[0], aRowBytes, k/blk, &out[0], outStride, rows)
	}}
}
