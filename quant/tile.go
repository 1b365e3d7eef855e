package quant

import (
	"encoding/binary"
	"math"
)

// The GEMM tile kernels work on two rearranged copies of their operands,
// both made by MatMul in scratch memory:
//
// A weight panel holds P weight rows (P = tileKernel.rows: 16 for 512-bit
// kernels, 8 for 256-bit ones, 4 for NEON) block by block, with their quants unpacked
// to one byte each and interleaved four at a time, so that one vector
// register holds the same four consecutive elements of all P rows and each
// 32-bit lane of a dot-product instruction (vpdpbusd, vpmaddubsw+vpmaddwd,
// sdot) accumulates one row. A block of E = 4*G elements (E = 32 for Q4_0
// and Q8_0, E = 16 for Q6_K, whose sub-blocks have their own scales) takes
//
//	G groups of 4*P bytes: group g holds elements 4g..4g+3 of row 0, then of row 1, ...
//	P float32 block scales: d for Q4_0 and Q8_0, d*scale[j] for Q6_K
//
// The quants are stored as q+off, where q is the signed quant (q-8 for
// Q4_0, q-32 for Q6_K) and off is the kernel's offset: x86 kernels multiply
// unsigned weight bytes by signed activation bytes, so they use off = 8, 128
// and 32 and subtract off*Σa afterwards; arm64 sdot is signed×signed and
// uses off = 0. Rows past the end of the matrix are zero with a zero scale.
//
// A tile of activations holds T activation rows (T <= tileKernel.tmax)
// block by block:
//
//	T groups of E int8 quants: the block's quants of row 0, then of row 1, ...
//	T float32 scales: the activation block's d
//	T int32 corrections: -off * (sum of the block's quants)
//
// The kernel adds, for every block, (dot(panel row, activation row) +
// correction) * (weight scale * activation scale) to the output.
//
// MatMul rearranges all the activation rows once, then packs one panel at
// a time (in assembly where the path has a packer: a few cycles per block
// of P rows) and runs it against every tile while it is in cache. Packing
// per call keeps the weights in their GGUF layout, shared with every other
// backend; its cost is amortized over the tiles, and at 8 activation rows
// (one tile) the packed GEMM is still about three times the GEMV's speed.

// tileKernel is one path's GEMM micro-kernel for one weight type.
type tileKernel struct {
	rows   int // P: weight rows per panel, one per 32-bit lane
	tmax   int // most activation rows per call
	groups int // G: 4-element groups per block (8 or 4)
	off    int // offset of the panel quants; 0 means they are signed
	minAct int // fewest activation rows for which MatMul tiles instead of running GEMV

	// run[T] computes, for T in 1..tmax, the P×T outputs
	// out[t*outStride + p] of one panel w (nb blocks) and one tile a.
	run []func(w, a *byte, nb int, out *float32, outStride int)

	// pack, if not nil, packs a full panel (P rows) of nb blocks (of
	// super-blocks for Q6_K); partial panels, and every panel of a kernel
	// without one, are packed in Go.
	pack func(dst, w *byte, rowBytes, nb int)
}

func (tk *tileKernel) elems() int { return 4 * tk.groups }

// panelBytes and tileBytes are the sizes of nb blocks of a panel and of a
// tile of T rows.
func (tk *tileKernel) panelBytes(nb int) int   { return nb * tk.rows * (tk.elems() + 4) }
func (tk *tileKernel) tileBytes(nb, T int) int { return nb * T * (tk.elems() + 8) }

func matMulTiled(tk *tileKernel, q qtype, k int, w []byte, rowBytes, rows int, a []byte, aRowBytes, nAct int, out []float32, outStride int, s *scratch) {
	nb := k / tk.elems()
	P := tk.rows
	ar := rowSize(actTypeOf(qTypes[q]), k)

	size := 0
	for t0 := 0; t0 < nAct; t0 += tk.tmax {
		size += tk.tileBytes(nb, min(tk.tmax, nAct-t0))
	}
	s.prep = growBytes(s.prep, size)
	off := 0
	for t0 := 0; t0 < nAct; t0 += tk.tmax {
		T := min(tk.tmax, nAct-t0)
		n := tk.tileBytes(nb, T)
		prepTile(q, s.prep[off:off+n], a[t0*aRowBytes:(t0+T-1)*aRowBytes+ar], aRowBytes, T, nb, tk.off)
		off += n
	}

	s.panel = growBytes(s.panel, tk.panelBytes(nb))
	s.tmp = growF32(s.tmp, tk.tmax*P)
	wr := rowSize(qTypes[q], k)
	for r0 := 0; r0 < rows; r0 += P {
		pr := min(P, rows-r0)
		if pr == P && tk.pack != nil {
			if q == qQ6_K {
				tk.pack(&s.panel[0], &w[r0*rowBytes], rowBytes, nb/16)
			} else {
				tk.pack(&s.panel[0], &w[r0*rowBytes], rowBytes, nb)
			}
		} else {
			packPanel(q, s.panel, w[r0*rowBytes:(r0+pr-1)*rowBytes+wr], rowBytes, pr, P, nb, tk.off)
		}
		off := 0
		for t0 := 0; t0 < nAct; t0 += tk.tmax {
			T := min(tk.tmax, nAct-t0)
			ap := &s.prep[off]
			if pr == P {
				tk.run[T](&s.panel[0], ap, nb, &out[t0*outStride+r0], outStride)
			} else {
				tk.run[T](&s.panel[0], ap, nb, &s.tmp[0], P)
				for t := range T {
					copy(out[(t0+t)*outStride+r0:(t0+t)*outStride+r0+pr], s.tmp[t*P:t*P+pr])
				}
			}
			off += tk.tileBytes(nb, T)
		}
	}
}

var qTypes = [numQTypes]Type{qQ4_0: Q4_0, qQ8_0: Q8_0, qQ6_K: Q6_K}

// addBytes adds c to each byte of x, modulo 256, without carries between
// bytes.
func addBytes(x, c uint32) uint32 {
	return ((x & 0x7f7f7f7f) + (c & 0x7f7f7f7f)) ^ ((x ^ c) & 0x80808080)
}

// splat4 repeats byte b in the four bytes of a uint32.
func splat4(b byte) uint32 { return uint32(b) * 0x01010101 }

// packPanel writes the panel of pr (<= P) weight rows of w into dst.
func packPanel(q qtype, dst, w []byte, rowBytes, pr, P, nb, off int) {
	switch q {
	case qQ4_0:
		packQ4_0(dst, w, rowBytes, pr, P, nb, off)
	case qQ8_0:
		packQ8_0(dst, w, rowBytes, pr, P, nb, off)
	case qQ6_K:
		packQ6_K(dst, w, rowBytes, pr, P, nb, off)
	}
}

func packQ4_0(dst, w []byte, rowBytes, pr, P, nb, off int) {
	bs := P * (32 + 4)
	c := splat4(byte(off - 8))
	for b := range nb {
		blk := dst[b*bs : b*bs+bs : b*bs+bs]
		for r := range P {
			if r >= pr {
				for g := range 8 {
					binary.LittleEndian.PutUint32(blk[g*4*P+4*r:], 0)
				}
				binary.LittleEndian.PutUint32(blk[32*P+4*r:], 0)
				continue
			}
			x := w[r*rowBytes+b*18 : r*rowBytes+b*18+18 : r*rowBytes+b*18+18]
			for g := range 4 {
				v := binary.LittleEndian.Uint32(x[2+4*g:])
				binary.LittleEndian.PutUint32(blk[g*4*P+4*r:], addBytes(v&0x0f0f0f0f, c))
				binary.LittleEndian.PutUint32(blk[(g+4)*4*P+4*r:], addBytes(v>>4&0x0f0f0f0f, c))
			}
			binary.LittleEndian.PutUint32(blk[32*P+4*r:], math.Float32bits(f16At(x)))
		}
	}
}

func packQ8_0(dst, w []byte, rowBytes, pr, P, nb, off int) {
	bs := P * (32 + 4)
	c := splat4(byte(off))
	for b := range nb {
		blk := dst[b*bs : b*bs+bs : b*bs+bs]
		for r := range P {
			if r >= pr {
				for g := range 8 {
					binary.LittleEndian.PutUint32(blk[g*4*P+4*r:], 0)
				}
				binary.LittleEndian.PutUint32(blk[32*P+4*r:], 0)
				continue
			}
			x := w[r*rowBytes+b*34 : r*rowBytes+b*34+34 : r*rowBytes+b*34+34]
			for g := range 8 {
				v := binary.LittleEndian.Uint32(x[2+4*g:])
				binary.LittleEndian.PutUint32(blk[g*4*P+4*r:], addBytes(v, c))
			}
			binary.LittleEndian.PutUint32(blk[32*P+4*r:], math.Float32bits(f16At(x)))
		}
	}
}

// packQ6_K packs Q6_K rows as 16-element blocks (one per sub-block); nb
// counts those blocks. Four consecutive elements 32m+l..32m+l+3 of a half
// (quarter m, l a multiple of 4) take their low bits from one dword of ql
// and their high bits from one dword of qh, so each group of the panel is
// computed from two loads with word-wide bit operations.
func packQ6_K(dst, w []byte, rowBytes, pr, P, nb, off int) {
	bs := P * (16 + 4)
	c := splat4(byte(off - 32))
	for sb := range nb / 16 {
		blks := dst[sb*16*bs : (sb+1)*16*bs : (sb+1)*16*bs]
		for r := range P {
			if r >= pr {
				for j := range 16 {
					blk := blks[j*bs:]
					for g := range 4 {
						binary.LittleEndian.PutUint32(blk[g*4*P+4*r:], 0)
					}
					binary.LittleEndian.PutUint32(blk[16*P+4*r:], 0)
				}
				continue
			}
			x := w[r*rowBytes+sb*210 : r*rowBytes+sb*210+210 : r*rowBytes+sb*210+210]
			for e := 0; e < QK_K; e += 4 {
				h, m, l := e/128, e%128/32, e%32
				lo := binary.LittleEndian.Uint32(x[64*h+32*(m%2)+l:])
				hi := binary.LittleEndian.Uint32(x[128+32*h+l:])
				v := lo>>(4*(m/2))&0x0f0f0f0f | (hi>>(2*m)&0x03030303)<<4
				if c != 0 {
					v = addBytes(v, c)
				}
				j, g := e/16, e%16/4
				binary.LittleEndian.PutUint32(blks[j*bs+g*4*P+4*r:], v)
			}
			d := f16At(x[208:])
			for j := range 16 {
				binary.LittleEndian.PutUint32(blks[j*bs+16*P+4*r:], math.Float32bits(d*float32(int8(x[192+j]))))
			}
		}
	}
}

// sumInt8x16 returns the sum of 16 signed bytes.
func sumInt8x16(b []byte) int32 {
	b = b[:16:16]
	const m = 0x00ff00ff00ff00ff
	x := binary.LittleEndian.Uint64(b) ^ 0x8080808080808080
	y := binary.LittleEndian.Uint64(b[8:]) ^ 0x8080808080808080
	s := x&m + x>>8&m + y&m + y>>8&m // four 16-bit sums of the biased bytes
	return int32((s*0x0001000100010001)>>48) - 16*128
}

// prepTile writes the tile of T activation rows (aRowBytes apart in a) for
// nb blocks into dst.
func prepTile(q qtype, dst, a []byte, aRowBytes, T, nb, off int) {
	if q == qQ6_K {
		prepTileQ8_K(dst, a, aRowBytes, T, nb, off)
		return
	}
	rec := T * (32 + 8)
	for b := range nb {
		blk := dst[b*rec : b*rec+rec : b*rec+rec]
		for t := range T {
			y := a[t*aRowBytes+b*34 : t*aRowBytes+b*34+34 : t*aRowBytes+b*34+34]
			copy(blk[32*t:32*t+32], y[2:])
			s := sumInt8x16(y[2:18]) + sumInt8x16(y[18:34])
			binary.LittleEndian.PutUint32(blk[32*T+4*t:], math.Float32bits(f16At(y)))
			binary.LittleEndian.PutUint32(blk[36*T+4*t:], uint32(int32(-off)*s))
		}
	}
}

// prepTileQ8_K rearranges Q8_K rows into 16-element blocks; nb counts
// those blocks.
func prepTileQ8_K(dst, a []byte, aRowBytes, T, nb, off int) {
	rec := T * (16 + 8)
	for b := range nb {
		sb, j := b/16, b%16
		blk := dst[b*rec : b*rec+rec : b*rec+rec]
		for t := range T {
			y := a[t*aRowBytes+sb*q8KBytes : t*aRowBytes+sb*q8KBytes+q8KBytes : t*aRowBytes+sb*q8KBytes+q8KBytes]
			qs := y[4+16*j : 4+16*j+16]
			copy(blk[16*t:16*t+16], qs)
			binary.LittleEndian.PutUint32(blk[16*T+4*t:], binary.LittleEndian.Uint32(y))
			binary.LittleEndian.PutUint32(blk[20*T+4*t:], uint32(int32(-off)*sumInt8x16(qs)))
		}
	}
}

// tileRef is the tile kernel in Go, for tests of the panel and tile
// layouts: it computes what every tile kernel must compute.
func tileRef(P, G int, signed bool, w, a []byte, nb, T int, out []float32, outStride int) {
	E := 4 * G
	wbs, abs := P*(E+4), T*(E+8)
	for t := range T {
		for r := range P {
			var acc float32
			for b := range nb {
				wb := w[b*wbs : b*wbs+wbs]
				ab := a[b*abs : b*abs+abs]
				isum := int32(binary.LittleEndian.Uint32(ab[(E+4)*T+4*t:]))
				for g := range G {
					for i := range 4 {
						x := int32(wb[g*4*P+4*r+i])
						if signed {
							x = int32(int8(x))
						}
						isum += x * int32(int8(ab[t*E+4*g+i]))
					}
				}
				dw := math.Float32frombits(binary.LittleEndian.Uint32(wb[E*P+4*r:]))
				da := math.Float32frombits(binary.LittleEndian.Uint32(ab[E*T+4*t:]))
				acc += float32(isum) * (dw * da)
			}
			out[t*outStride+r] = acc
		}
	}
}
