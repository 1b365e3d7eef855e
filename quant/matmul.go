package quant

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"unsafe"
)

// MatMul multiplies weight rows by activation rows on the active kernel
// path:
//
//	out[t*outStride + r] = Σ_{i<k} W[r][i] * A[t][i]    for r < rows, t < nAct
//
// W is rows rows of k elements of type wt (F32, F16, BF16, Q4_0, Q8_0 or
// Q6_K), row r starting at w[r*rowBytes]; A is nAct rows of k elements in
// the activation format ActType(wt) (Q8_0, Q8_K or F32, as QuantizeAct
// writes them), row t starting at a[t*aRowBytes]. Each output row t holds
// rows values; outStride (>= rows when nAct > 1) is the distance between
// output rows, so that out can be a [nAct][n] matrix of which this call
// fills columns [0, rows).
//
// To compute out[t][r] for weight rows [r0, r1) and activation rows
// [t0, t1) of bigger matrices, as a worker of a parallel matmul does, pass
// the sub-slices:
//
//	MatMul(wt, k, w[r0*rowBytes:], rowBytes, r1-r0,
//		a[t0*aRowBytes:], aRowBytes, t1-t0, out[t0*outStride+r0:], outStride)
//
// Splitting the weight rows between workers in multiples of MatMulRowBlock
// keeps every panel full.
//
// MatMul is single-threaded and safe for concurrent use; it allocates
// nothing once its internal scratch pool is warm.
//
// For quantized weights and two or more activation rows it runs the path's
// GEMM tile kernel: MatMulRowBlock (or 8, or 4) weight rows at a time are
// unpacked into an interleaved panel that stays in cache, and each panel is
// multiplied by tiles of up to 8 activation rows, so that every weight load
// serves several activations and every activation load several weight
// rows. For one activation row it runs the GEMV kernel, which streams the
// weights once. Float weights are multiplied in register tiles of 4 rows by
// 4 (or 2) activations with k in the vector lanes.
//
// For quantized weights, every path computes the exact integer dot product
// of each block pair and scales it by the product of the two block scales;
// paths differ only in the order of the float additions (relative
// differences of a few float32 ulps of the sum of the absolute terms). The
// activation quants must lie in [-127, 127], as QuantizeAct writes them.
// MatMul returns an error, and writes nothing, when a size is
// inconsistent.
func MatMul(wt Type, k int, w []byte, rowBytes, rows int, a []byte, aRowBytes, nAct int, out []float32, outStride int) error {
	if err := checkMatMul(wt, k, w, rowBytes, rows, a, aRowBytes, nAct, out, outStride); err != nil {
		return err
	}
	if rows == 0 || nAct == 0 {
		return nil
	}
	if k == 0 {
		for t := range nAct {
			clear(out[t*outStride : t*outStride+rows])
		}
		return nil
	}
	ks := active()
	q, ok := qtypeOf(wt)
	if !ok {
		matMulFloat(ks, wt, k, w, rowBytes, rows, a, aRowBytes, nAct, out, outStride)
		return nil
	}
	if g := ks.gemvN[q]; g != nil && nAct >= 2 && nAct <= g.max {
		g.run(k, w, rowBytes, rows, a, aRowBytes, nAct, out, outStride)
		return nil
	}
	if tk := ks.tile[q]; tk != nil && nAct >= tk.minAct {
		s := getScratch()
		matMulTiled(tk, q, k, w, rowBytes, rows, a, aRowBytes, nAct, out, outStride, s)
		putScratch(s)
		return nil
	}
	wr := w[:(rows-1)*rowBytes+rowSize(wt, k)]
	ar := rowSize(actTypeOf(wt), k)
	for t := range nAct {
		ks.gemv[q](k, wr, rowBytes, rows, a[t*aRowBytes:t*aRowBytes+ar], out[t*outStride:t*outStride+rows])
	}
	return nil
}

// MatMulRowBlock is the largest number of weight rows any path packs into
// one panel: callers that split a matmul between workers by weight rows
// should give each worker a multiple of it.
const MatMulRowBlock = 16

// actTypeOf is ActType for a type known to have matmul kernels.
func actTypeOf(wt Type) Type {
	t, _ := ActType(wt)
	return t
}

func rowSize(t Type, k int) int { return k / t.BlockSize() * t.TypeSize() }

func checkMatMul(wt Type, k int, w []byte, rowBytes, rows int, a []byte, aRowBytes, nAct int, out []float32, outStride int) error {
	at, err := ActType(wt)
	if err != nil {
		return fmt.Errorf("quant: matmul: %w", err)
	}
	if k < 0 || k%wt.BlockSize() != 0 || k%at.BlockSize() != 0 {
		return fmt.Errorf("quant: matmul %s: k = %d is not a whole number of %d-element blocks", wt, k, max(wt.BlockSize(), at.BlockSize()))
	}
	if rows < 0 || nAct < 0 {
		return fmt.Errorf("quant: matmul %s: negative count (rows %d, activations %d)", wt, rows, nAct)
	}
	if rows == 0 || nAct == 0 {
		return nil
	}
	if k > 1<<30 {
		return fmt.Errorf("quant: matmul %s: k = %d is too large", wt, k)
	}
	wb, ab := rowSize(wt, k), rowSize(at, k)
	if rowBytes < wb {
		return fmt.Errorf("quant: matmul %s: weight rows are %d bytes apart, but a row of %d elements takes %d", wt, rowBytes, k, wb)
	}
	if need := int64(rows-1)*int64(rowBytes) + int64(wb); int64(len(w)) < need {
		return fmt.Errorf("quant: matmul %s: %d weight rows need %d bytes, have %d", wt, rows, need, len(w))
	}
	if nAct > 1 && aRowBytes < ab {
		return fmt.Errorf("quant: matmul %s: activation rows are %d bytes apart, but a %s row of %d elements takes %d", wt, aRowBytes, at, k, ab)
	}
	if need := int64(nAct-1)*int64(aRowBytes) + int64(ab); int64(len(a)) < need {
		return fmt.Errorf("quant: matmul %s: %d %s activation rows need %d bytes, have %d", wt, nAct, at, need, len(a))
	}
	if nAct > 1 && outStride < rows {
		return fmt.Errorf("quant: matmul %s: output stride %d is less than the %d rows", wt, outStride, rows)
	}
	if need := int64(nAct-1)*int64(outStride) + int64(rows); int64(len(out)) < need {
		return fmt.Errorf("quant: matmul %s: %d×%d outputs with stride %d need %d floats, have %d", wt, nAct, rows, outStride, need, len(out))
	}
	return nil
}

// matMulFloat multiplies F32, F16 or BF16 weights by F32 activations: in
// blocks of the path's float tile (4 rows by 4 or 2 activations, k in the
// vector lanes) where it has one, and one dot product per output for the
// rows, activations and trailing elements the tiles leave.
func matMulFloat(ks *kernels, wt Type, k int, w []byte, rowBytes, rows int, a []byte, aRowBytes, nAct int, out []float32, outStride int) {
	s := getScratch()
	defer putScratch(s)
	ws := wt.TypeSize()
	ft := ks.ftile[ftypeOf(wt)]
	R, T, kk := 1, 1, 0
	if ft != nil {
		R, T, kk = ft.rows, ft.acts, k/ft.step*ft.step
	}
	// dot returns the dot product of elements [i0, k) of weight row r and
	// activation act.
	dot := func(r, i0 int, act []float32) float32 {
		row := w[r*rowBytes+i0*ws : r*rowBytes+k*ws]
		n := k - i0
		switch wt {
		case F16:
			return ks.dotF16(n, row, act[i0:k])
		case BF16:
			return ks.dotBF16(n, row, act[i0:k])
		}
		wf, ok := bytesAsFloat32s(row)
		if !ok {
			s.w32 = growF32(s.w32, n)
			wf = s.w32[:n]
			for i := range wf {
				wf[i] = math.Float32frombits(binary.LittleEndian.Uint32(row[4*i:]))
			}
		}
		return ks.dotF32(n, wf, act[i0:k])
	}
	var acts [4][]float32 // T <= 4
	for t0 := 0; t0 < nAct; t0 += T {
		nt := min(T, nAct-t0)
		// The activation rows as float32: in place when aligned, else
		// decoded into scratch.
		s.f32 = growF32(s.f32, T*k)
		for t := range nt {
			row := a[(t0+t)*aRowBytes : (t0+t)*aRowBytes+4*k]
			f, ok := bytesAsFloat32s(row)
			if !ok {
				f = s.f32[t*k : t*k+k]
				for i := range f {
					f[i] = math.Float32frombits(binary.LittleEndian.Uint32(row[4*i:]))
				}
			}
			acts[t] = f
		}
		for r0 := 0; r0 < rows; r0 += R {
			nr := min(R, rows-r0)
			if ft != nil && nt == T && nr == R && kk > 0 {
				o := out[t0*outStride+r0:]
				ft.run(&w[r0*rowBytes], rowBytes, &a[t0*aRowBytes], aRowBytes, kk, &o[0], outStride)
				if kk < k {
					for t := range T {
						for r := range R {
							o[t*outStride+r] += dot(r0+r, kk, acts[t])
						}
					}
				}
				continue
			}
			for t := range nt {
				for r := range nr {
					out[(t0+t)*outStride+r0+r] = dot(r0+r, 0, acts[t])
				}
			}
		}
	}
}

// littleEndian reports whether float32 values can be read from
// little-endian bytes in place.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// bytesAsFloat32s views little-endian float32 bytes as []float32 without a
// copy, when the platform and the alignment allow it.
func bytesAsFloat32s(b []byte) ([]float32, bool) {
	if len(b) == 0 {
		return nil, true
	}
	if !littleEndian || uintptr(unsafe.Pointer(&b[0]))%4 != 0 {
		return nil, false
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4), true
}

// scratch is the per-call working memory of MatMul, pooled.
type scratch struct {
	prep  []byte    // activations rearranged into tiles
	panel []byte    // one packed weight panel
	tmp   []float32 // outputs of a partial panel
	f32   []float32 // a misaligned activation row
	w32   []float32 // a misaligned f32 weight row
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func getScratch() *scratch  { return scratchPool.Get().(*scratch) }
func putScratch(s *scratch) { scratchPool.Put(s) }

func growBytes(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n, n+n/4)
	}
	return b[:n]
}

func growF32(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}
