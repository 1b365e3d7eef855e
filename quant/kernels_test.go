package quant

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
)

// The kernel tests run every kernel on every path this CPU can run (see
// AvailablePaths; under the noasm tag that is the generic path alone) and
// compare it with an exact float64 reference computed from the block
// contents, that is the dot product of the dequantized weights and the
// dequantized activations:
//
//   - "exact" inputs have block scales of ±1 or 1/2 and small quants, so
//     that every partial sum is a multiple of 1/2 below 2^23 and float32
//     arithmetic is exact in any order: every path must then return the
//     reference exactly, which checks that the int32 block sums of every
//     kernel are identical;
//   - realistic inputs (random quants, scales like a model's) must agree
//     with the reference within the rounding of float32 sums in any order:
//     |got-ref| <= (blocks+8) * 2^-24 * Σ|w[i]*a[i]| (see tolerance).
//
// Slices are sized exactly and end at an inaccessible page (guardedBytes),
// so a kernel that reads past its input faults.

// dotSizes are the element counts tested; Q6_K uses the multiples of 256.
var dotSizes = []int{32, 64, 256, 4096, 14336}

var matmulTypes = []Type{Q4_0, Q8_0, Q6_K, F16, F32, BF16}

// forEachPath runs f once per available kernel path, with that path active.
func forEachPath(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	for _, p := range AvailablePaths() {
		t.Run(p.String(), func(t *testing.T) {
			restore, err := SetKernelPath(p)
			if err != nil {
				t.Fatal(err)
			}
			defer restore()
			if KernelPath() != p {
				t.Fatalf("KernelPath() = %s after SetKernelPath(%s)", KernelPath(), p)
			}
			f(t)
		})
	}
}

func sizesFor(wt Type) []int {
	var s []int
	for _, n := range dotSizes {
		if n%wt.BlockSize() == 0 {
			s = append(s, n)
		}
	}
	return s
}

// putF16 stores f as f16 bits at b.
func putF16(b []byte, f float32) { binary.LittleEndian.PutUint16(b, Float32ToFP16(f)) }

// randScale returns a block scale like a model's, of either sign, or 1 or
// 1/2 for exact inputs.
func randScale(r *rng, exact bool) float32 {
	if exact {
		return []float32{1, 0.5, -1}[r.intn(3)]
	}
	return r.uniform() * 0.05
}

// randWeights returns rows weight rows of k elements of type wt, rowBytes
// apart (pad bytes of garbage after each row but the last), in a guarded
// buffer.
func randWeights(tb testing.TB, r *rng, wt Type, k, rows, pad int, exact bool) ([]byte, int) {
	rs := rowSize(wt, k)
	rowBytes := rs + pad
	w := guardedBytes(tb, (rows-1)*rowBytes+rs)
	for i := range w {
		w[i] = byte(r.next())
	}
	for ri := range rows {
		row := w[ri*rowBytes : ri*rowBytes+rs]
		switch wt {
		case Q4_0:
			for b := 0; b < len(row); b += 18 {
				putF16(row[b:], randScale(r, exact))
			}
		case Q8_0:
			for b := 0; b < len(row); b += 34 {
				putF16(row[b:], randScale(r, exact))
				if exact {
					for j := range 32 {
						row[b+2+j] = byte(r.intn(127) - 63)
					}
				}
			}
		case Q6_K:
			for b := 0; b < len(row); b += 210 {
				for j := range 16 {
					if exact {
						row[b+192+j] = byte(r.intn(5) - 2)
					} else {
						row[b+192+j] = byte(r.intn(256) - 128)
					}
				}
				s := randScale(r, exact)
				if !exact {
					s /= 64
				}
				putF16(row[b+208:], s)
			}
		case F32:
			for i := range k {
				v := r.normal()
				if exact {
					v = float32(r.intn(15) - 7)
				}
				binary.LittleEndian.PutUint32(row[4*i:], math.Float32bits(v))
			}
		case F16:
			for i := range k {
				v := r.normal()
				if exact {
					v = float32(r.intn(15)-7) / 2
				}
				putF16(row[2*i:], v)
			}
		case BF16:
			for i := range k {
				v := r.normal()
				if exact {
					v = float32(r.intn(15)-7) / 2
				}
				binary.LittleEndian.PutUint16(row[2*i:], Float32ToBF16(v))
			}
		}
	}
	return w, rowBytes
}

// randActs returns n activation rows of k elements in the format
// ActType(wt), aRowBytes apart, in a guarded buffer. Realistic rows are
// quantized from random floats with the reference quantizers; exact rows
// have scale 1 and quants in [-7, 7].
func randActs(tb testing.TB, r *rng, wt Type, k, n, pad int, exact bool) ([]byte, int) {
	at := actTypeOf(wt)
	rs := rowSize(at, k)
	aRowBytes := rs + pad
	a := guardedBytes(tb, (n-1)*aRowBytes+rs)
	for i := range a {
		a[i] = byte(r.next())
	}
	x := make([]float32, k)
	for t := range n {
		row := a[t*aRowBytes : t*aRowBytes+rs]
		if exact && at != F32 {
			switch at {
			case Q8_0:
				for b := 0; b < len(row); b += 34 {
					putF16(row[b:], 1)
					for j := range 32 {
						row[b+2+j] = byte(r.intn(15) - 7)
					}
				}
			case Q8_K:
				for b := 0; b < len(row); b += q8KBytes {
					binary.LittleEndian.PutUint32(row[b:], math.Float32bits(1))
					for j := range 16 {
						var s int16
						for i := range 16 {
							q := int8(r.intn(15) - 7)
							row[b+4+16*j+i] = byte(q)
							s += int16(q)
						}
						binary.LittleEndian.PutUint16(row[b+4+QK_K+2*j:], uint16(s))
					}
				}
			}
			continue
		}
		for i := range x {
			x[i] = r.normal()
			if exact {
				x[i] = float32(r.intn(15) - 7)
			}
		}
		var err error
		switch at {
		case Q8_0:
			err = QuantizeQ8_0(row, x)
		case Q8_K:
			err = QuantizeQ8_K(row, x)
		default:
			err = QuantizeF32(row, x)
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
	return a, aRowBytes
}

// q6KQuants returns the 256 signed quants (q-32) of a Q6_K block, decoded
// as the BlockQ6_K documentation describes.
func q6KQuants(x []byte) [QK_K]int32 {
	var q [QK_K]int32
	for i := range QK_K {
		h, j := i/128, i%128
		l, quarter := j%32, j/32
		lo := x[64*h+l+32*(quarter%2)]
		if quarter >= 2 {
			lo >>= 4
		}
		hi := x[128+32*h+l] >> (2 * quarter) & 3
		q[i] = int32(lo&0xf|hi<<4) - 32
	}
	return q
}

// refDot returns the exact dot product of one weight row and one
// activation row of k elements (in float64, from the block contents: the
// dot product of the dequantized rows), and the sum of the magnitudes of
// its element products, which bounds every partial sum a kernel forms and
// so scales the rounding error of a float32 kernel.
func refDot(wt Type, k int, w, a []byte) (ref, mag float64) {
	add := func(scale float64, isum, iabs int64) {
		ref += scale * float64(isum)
		mag += math.Abs(scale) * float64(iabs)
	}
	abs := func(x int64) int64 {
		if x < 0 {
			return -x
		}
		return x
	}
	switch wt {
	case Q4_0:
		for b := range k / 32 {
			x, y := w[18*b:], a[34*b:]
			var s, sa int64
			for j := range 16 {
				p0 := int64(int32(x[2+j]&0xf)-8) * int64(int8(y[2+j]))
				p1 := int64(int32(x[2+j]>>4)-8) * int64(int8(y[18+j]))
				s += p0 + p1
				sa += abs(p0) + abs(p1)
			}
			add(float64(f16At(x))*float64(f16At(y)), s, sa)
		}
	case Q8_0:
		for b := range k / 32 {
			x, y := w[34*b:], a[34*b:]
			var s, sa int64
			for j := range 32 {
				p := int64(int8(x[2+j])) * int64(int8(y[2+j]))
				s += p
				sa += abs(p)
			}
			add(float64(f16At(x))*float64(f16At(y)), s, sa)
		}
	case Q6_K:
		for b := range k / QK_K {
			x, y := w[210*b:], a[q8KBytes*b:]
			q := q6KQuants(x)
			d := float64(f16At(x[208:])) * float64(math.Float32frombits(binary.LittleEndian.Uint32(y)))
			for j := range 16 {
				var s, sa int64
				for i := 16 * j; i < 16*j+16; i++ {
					p := int64(q[i]) * int64(int8(y[4+i]))
					s += p
					sa += abs(p)
				}
				add(d*float64(int8(x[192+j])), s, sa)
			}
		}
	default:
		for i := range k {
			var wv float64
			switch wt {
			case F32:
				wv = float64(math.Float32frombits(binary.LittleEndian.Uint32(w[4*i:])))
			case F16:
				wv = float64(f16At(w[2*i:]))
			case BF16:
				wv = float64(BF16ToFloat32(binary.LittleEndian.Uint16(w[2*i:])))
			}
			p := wv * float64(math.Float32frombits(binary.LittleEndian.Uint32(a[4*i:])))
			ref += p
			mag += math.Abs(p)
		}
	}
	return ref, mag
}

// tolerance is the largest difference from the exact result that a
// kernel may make: each path rounds one product per block (or sub-block)
// and lane and adds blocks into a float32 accumulator per lane, then sums
// at most 64 lanes; every rounding is at most 2^-24 of a partial sum, and
// every partial sum is at most mag. Float weights round every element.
func tolerance(wt Type, k int, mag float64) float64 {
	terms := k / wt.BlockSize()
	if wt == Q6_K {
		terms = k / 16
	}
	return float64(terms+8)*math.Ldexp(mag, -24) + 1e-30
}

// vecDot calls the exported dot product for wt.
func vecDot(wt Type, k int, w, a []byte) float32 {
	switch wt {
	case Q4_0:
		return VecDotQ4_0Q8_0(k, w, a)
	case Q8_0:
		return VecDotQ8_0Q8_0(k, w, a)
	case Q6_K:
		return VecDotQ6_KQ8_K(k, w, a)
	}
	af := unsafeFloat32s(a)
	switch wt {
	case F16:
		return VecDotF16F32(k, w, af)
	case BF16:
		return VecDotBF16F32(k, w, af)
	}
	return VecDotF32(k, unsafeFloat32s(w), af)
}

// unsafeFloat32s views float32 bytes that are 4-byte aligned (as the
// guarded buffers of whole float32 rows are) in place.
func unsafeFloat32s(b []byte) []float32 {
	f, ok := bytesAsFloat32s(b)
	if !ok {
		panic("misaligned float32 bytes")
	}
	return f
}

func TestVecDot(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		for _, wt := range matmulTypes {
			for _, k := range sizesFor(wt) {
				for _, exact := range []bool{true, false} {
					r := newRNG(uint64(k)*31 + uint64(wt))
					w, _ := randWeights(t, r, wt, k, 1, 0, exact)
					a, _ := randActs(t, r, wt, k, 1, 0, exact)
					got := vecDot(wt, k, w, a)
					ref, mag := refDot(wt, k, w, a)
					if exact {
						if float64(got) != ref {
							t.Errorf("%s k=%d exact: got %v, want %v", wt, k, got, ref)
						}
					} else if d := math.Abs(float64(got) - ref); d > tolerance(wt, k, mag) {
						t.Errorf("%s k=%d: got %v, want %v (diff %g > tol %g)", wt, k, got, ref, d, tolerance(wt, k, mag))
					}
				}
			}
		}
	})
}

// matmulCase is one MatMul test.
type matmulCase struct {
	wt          Type
	k, rows, na int
	exact       bool
}

func matmulCases() []matmulCase {
	var cs []matmulCase
	shapes := []struct{ rows, na int }{
		{1, 1}, {3, 1}, {17, 2}, {16, 3}, {33, 5}, {47, 9}, {8, 16}, {31, 17}, {64, 33},
		{5, 4}, {18, 6}, {7, 7}, {20, 12}, {3, 15},
	}
	for _, wt := range matmulTypes {
		sizes := sizesFor(wt)
		if wt.BlockSize() == 1 {
			// Float weights take any k: test the elements past the
			// kernels' vector multiples too.
			sizes = append(sizes, 1, 7, 40, 100, 1000)
		}
		for _, k := range sizes {
			for i, s := range shapes {
				if k >= 4096 && s.rows*s.na > 300 {
					continue
				}
				cs = append(cs, matmulCase{wt, k, s.rows, s.na, i%2 == 0})
			}
		}
	}
	return cs
}

func TestMatMul(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		for _, c := range matmulCases() {
			name := fmt.Sprintf("%s/k%d/%dx%d", c.wt, c.k, c.rows, c.na)
			r := newRNG(uint64(c.k*1000 + c.rows*10 + c.na))
			w, rowBytes := randWeights(t, r, c.wt, c.k, c.rows, 7*(c.rows%2), c.exact)
			a, aRowBytes := randActs(t, r, c.wt, c.k, c.na, 4*(c.na%2), c.exact)
			outStride := c.rows + 3
			out := make([]float32, (c.na-1)*outStride+c.rows+1)
			sentinel := float32(-12345)
			for i := range out {
				out[i] = sentinel
			}
			if err := MatMul(c.wt, c.k, w, rowBytes, c.rows, a, aRowBytes, c.na, out[:len(out)-1], outStride); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			bad := 0
			for ti := range c.na {
				for ri := range c.rows {
					got := out[ti*outStride+ri]
					ref, mag := refDot(c.wt, c.k, w[ri*rowBytes:], a[ti*aRowBytes:])
					ok := float64(got) == ref
					if !c.exact {
						ok = math.Abs(float64(got)-ref) <= tolerance(c.wt, c.k, mag)
					}
					if !ok && bad < 5 {
						bad++
						t.Errorf("%s exact=%v: out[%d][%d] = %v, want %v (tol %g)", name, c.exact, ti, ri, got, ref, tolerance(c.wt, c.k, mag))
					}
				}
				for ri := c.rows; ri < outStride && ti*outStride+ri < len(out); ri++ {
					if out[ti*outStride+ri] != sentinel {
						t.Fatalf("%s: wrote out[%d][%d] past the %d rows", name, ti, ri, c.rows)
					}
				}
			}
		}
	})
}

// TestMatMulAgreesAcrossPaths checks that every path returns what the
// generic path returns, within float32 reordering, on realistic data.
func TestMatMulAgreesAcrossPaths(t *testing.T) {
	for _, wt := range matmulTypes {
		k := 4096
		rows, na := 37, 11
		r := newRNG(77 + uint64(wt))
		w, rowBytes := randWeights(t, r, wt, k, rows, 0, false)
		a, aRowBytes := randActs(t, r, wt, k, na, 0, false)
		want := make([]float32, rows*na)
		restore, _ := SetKernelPath(PathGeneric)
		if err := MatMul(wt, k, w, rowBytes, rows, a, aRowBytes, na, want, rows); err != nil {
			t.Fatal(err)
		}
		restore()
		forEachPath(t, func(t *testing.T) {
			got := make([]float32, rows*na)
			if err := MatMul(wt, k, w, rowBytes, rows, a, aRowBytes, na, got, rows); err != nil {
				t.Fatal(err)
			}
			for i := range got {
				_, mag := refDot(wt, k, w[(i%rows)*rowBytes:], a[(i/rows)*aRowBytes:])
				if d := math.Abs(float64(got[i] - want[i])); d > 2*tolerance(wt, k, mag) {
					t.Fatalf("%s: out[%d] = %v, generic %v", wt, i, got[i], want[i])
				}
			}
		})
	}
}

func TestMatMulErrors(t *testing.T) {
	w := make([]byte, 18*4)
	a := make([]byte, 34*4)
	out := make([]float32, 4)
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"type", MatMul(Q4_K, 256, w, 144, 1, a, 0, 1, out, 1), "no matmul kernels for q4_K"},
		{"k", MatMul(Q4_0, 48, w, 18, 1, a, 0, 1, out, 1), "k = 48"},
		{"rowBytes", MatMul(Q4_0, 64, w, 20, 2, a, 0, 1, out, 2), "weight rows are 20 bytes apart"},
		{"w short", MatMul(Q4_0, 64, w, 36, 3, a, 0, 1, out, 3), "3 weight rows need 108 bytes"},
		{"a short", MatMul(Q4_0, 64, w, 36, 1, a, 68, 3, out, 1), "3 q8_0 activation rows need 204 bytes"},
		{"aRowBytes", MatMul(Q4_0, 64, w, 36, 1, a, 60, 2, out, 1), "activation rows are 60 bytes apart"},
		{"stride", MatMul(Q4_0, 32, w, 18, 2, a, 34, 2, out, 1), "output stride 1"},
		{"out short", MatMul(Q4_0, 32, w, 18, 2, a, 34, 2, out, 3), "need 5 floats"},
		{"negative", MatMul(Q4_0, 32, w, 18, -1, a, 34, 2, out, 3), "negative count"},
	}
	for _, tc := range tests {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, tc.err, tc.want)
		}
	}
	// Nothing to do is not an error, whatever the slices hold.
	if err := MatMul(Q4_0, 32, nil, 0, 0, nil, 0, 5, nil, 0); err != nil {
		t.Errorf("0 rows: %v", err)
	}
	// k = 0 gives zeros.
	out = []float32{1, 2}
	if err := MatMul(Q4_0, 0, nil, 0, 2, nil, 0, 1, out, 2); err != nil || out[0] != 0 || out[1] != 0 {
		t.Errorf("k=0: %v %v", out, err)
	}
}

func TestKernelPaths(t *testing.T) {
	ps := AvailablePaths()
	if len(ps) == 0 || ps[0] != PathGeneric {
		t.Fatalf("AvailablePaths() = %v, want generic first", ps)
	}
	if def := KernelPath(); def != ps[len(ps)-1] {
		t.Errorf("KernelPath() = %s, want the most capable %s", def, ps[len(ps)-1])
	}
	for p := range numPaths {
		name := p.String()
		q, err := ParsePath(name)
		if err != nil || q != p {
			t.Errorf("ParsePath(%q) = %v, %v", name, q, err)
		}
		restore, err := SetKernelPath(p)
		if slices.Contains(ps, p) {
			if err != nil {
				t.Errorf("SetKernelPath(%s): %v", p, err)
				continue
			}
			if KernelPath() != p {
				t.Errorf("KernelPath() = %s after SetKernelPath(%s)", KernelPath(), p)
			}
			restore()
		} else if err == nil {
			restore()
			t.Errorf("SetKernelPath(%s) succeeded on a CPU without it", p)
		}
	}
	if _, err := ParsePath("sse9"); err == nil {
		t.Error("ParsePath accepted an unknown name")
	}
	t.Logf("paths: %v, default %s", ps, KernelPath())
}

// TestTileLayouts checks the panel and tile layouts with the Go model of a
// tile kernel, for every panel width and offset a path may use, so that a
// layout bug shows up apart from any assembly.
func TestTileLayouts(t *testing.T) {
	for _, wt := range []Type{Q4_0, Q8_0, Q6_K} {
		q, _ := qtypeOf(wt)
		offs := map[Type][]int{Q4_0: {0, 8}, Q8_0: {0, 128}, Q6_K: {0, 32}}[wt]
		for _, P := range []int{4, 8, 16} {
			for _, off := range offs {
				for _, exact := range []bool{true, false} {
					k := 512
					rows, T := P-1, 3
					r := newRNG(uint64(P*off) + 5)
					w, rowBytes := randWeights(t, r, wt, k, rows, 3, exact)
					a, aRowBytes := randActs(t, r, wt, k, T, 5, exact)
					G := 8
					if wt == Q6_K {
						G = 4
					}
					tk := &tileKernel{rows: P, tmax: T, groups: G, off: off}
					nb := k / tk.elems()
					panel := make([]byte, tk.panelBytes(nb))
					tile := make([]byte, tk.tileBytes(nb, T))
					packPanel(q, panel, w, rowBytes, rows, P, nb, off)
					prepTile(q, tile, a, aRowBytes, T, nb, off)
					out := make([]float32, T*P)
					tileRef(P, G, off == 0, panel, tile, nb, T, out, P)
					for ti := range T {
						for ri := range P {
							got := out[ti*P+ri]
							if ri >= rows {
								if got != 0 {
									t.Errorf("%s P=%d off=%d: padding row %d gave %v", wt, P, off, ri, got)
								}
								continue
							}
							ref, mag := refDot(wt, k, w[ri*rowBytes:], a[ti*aRowBytes:])
							if exact && float64(got) != ref || math.Abs(float64(got)-ref) > tolerance(wt, k, mag) {
								t.Errorf("%s P=%d off=%d exact=%v: [%d][%d] = %v, want %v", wt, P, off, exact, ti, ri, got, ref)
							}
						}
					}
				}
			}
		}
	}
}

// TestQuantizeRowQ8_0 checks that every path's activation quantizer writes
// exactly the bytes of the reference QuantizeQ8_0, on the golden inputs
// (every scale, ties, zeros, huge and tiny values) and on NaN and
// infinities.
func TestQuantizeRowQ8_0(t *testing.T) {
	inputs := map[string][]float32{"golden": goldenInput(1 << 16), "special": specialInput()}
	// Blocks whose scale is a float32 subnormal, where 1/d is far from
	// 127/amax, and a NaN in the last element only.
	tiny := make([]float32, 32*8)
	for i := range tiny {
		tiny[i] = float32(math.Ldexp(float64(i%7-3), -146+i/32))
	}
	tiny[len(tiny)-1] = float32(math.NaN())
	inputs["tiny"] = tiny
	forEachPath(t, func(t *testing.T) {
		for name, x := range inputs {
			want := make([]byte, len(x)/32*34)
			if err := QuantizeQ8_0(want, x); err != nil {
				t.Fatal(err)
			}
			got := guardedBytes(t, len(want))
			if err := QuantizeRowQ8_0(got, x); err != nil {
				t.Fatal(err)
			}
			for b := 0; b < len(want); b += 34 {
				if string(got[b:b+34]) != string(want[b:b+34]) {
					t.Fatalf("%s block %d: got % x, want % x (input %v)", name, b/34, got[b:b+34], want[b:b+34], x[b/34*32:b/34*32+32])
				}
			}
		}
	})
	if err := QuantizeRowQ8_0(make([]byte, 33), make([]float32, 32)); err == nil {
		t.Error("QuantizeRowQ8_0 accepted a short dst")
	}
}

// TestQuantizeRowQ8_K checks every path's Q8_K quantizer against
// QuantizeQ8_K.
func TestQuantizeRowQ8_K(t *testing.T) {
	x := goldenInput(1 << 16)
	want := make([]byte, len(x)/256*q8KBytes)
	if err := QuantizeQ8_K(want, x); err != nil {
		t.Fatal(err)
	}
	forEachPath(t, func(t *testing.T) {
		got := guardedBytes(t, len(want))
		if err := QuantizeRowQ8_K(got, x); err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Fatal("QuantizeRowQ8_K differs from QuantizeQ8_K")
		}
	})
}

// TestQuantizeQ8_K checks a block worked out by hand and the properties
// of ggml's quantize_row_q8_K_ref (whose output it matches byte for byte:
// see the report of the one-off comparison in the package history).
func TestQuantizeQ8_K(t *testing.T) {
	x := make([]float32, 256)
	// max = -2 (largest magnitude, first of ties with +2): iscale =
	// -127/-2 = 63.5, d = 1/63.5. x = -2 -> -127, x = 2 -> 127,
	// x = 1 -> nearest_int(63.5) = 64 (ties to even), x = 0.5 -> 32.
	x[0], x[1], x[2], x[17] = -2, 2, 1, 0.5
	b := make([]byte, q8KBytes)
	if err := QuantizeQ8_K(b, x); err != nil {
		t.Fatal(err)
	}
	d := math.Float32frombits(binary.LittleEndian.Uint32(b))
	if want := float32(1 / float32(-127/float32(-2))); d != want {
		t.Errorf("d = %v, want %v", d, want)
	}
	qs := b[4 : 4+256]
	for i, want := range map[int]int8{0: -127, 1: 127, 2: 64, 17: 32, 3: 0} {
		if int8(qs[i]) != want {
			t.Errorf("q[%d] = %d, want %d", i, int8(qs[i]), want)
		}
	}
	bs := func(j int) int16 { return int16(binary.LittleEndian.Uint16(b[260+2*j:])) }
	if bs(0) != -127+127+64 || bs(1) != 32 || bs(2) != 0 {
		t.Errorf("bsums = %d %d %d", bs(0), bs(1), bs(2))
	}
	y := make([]float32, 256)
	if err := DequantizeQ8_K(y, b); err != nil {
		t.Fatal(err)
	}
	if y[1] != d*127 {
		t.Errorf("dequantized %v", y[1])
	}
	// All zero: d = 0 and zero sums.
	clear(x)
	for i := range b {
		b[i] = 0xff
	}
	if err := QuantizeQ8_K(b, x); err != nil {
		t.Fatal(err)
	}
	for i, v := range b {
		if v != 0 {
			t.Fatalf("zero block: byte %d = %#x", i, v)
		}
	}
	if err := QuantizeQ8_K(b, make([]float32, 100)); err == nil {
		t.Error("QuantizeQ8_K accepted 100 elements")
	}
	if err := DequantizeQ8_K(y, b[:100]); err == nil {
		t.Error("DequantizeQ8_K accepted a short src")
	}
}

// TestPackKernels checks each path's assembly panel packer against the Go
// packer, byte for byte, on rows that end at a guard page.
func TestPackKernels(t *testing.T) {
	var checked []string
	defer func() { t.Logf("checked: %v", checked) }()
	for _, p := range AvailablePaths() {
		ks := registry[p]
		for q, tk := range ks.tile {
			if tk == nil || tk.pack == nil {
				continue
			}
			wt := qTypes[q]
			for _, k := range []int{32, 64, 256, 4096} {
				if k%wt.BlockSize() != 0 {
					continue
				}
				r := newRNG(uint64(k) + uint64(q))
				w, rowBytes := randWeights(t, r, wt, k, tk.rows, 5, false)
				nb := k / tk.elems()
				want := make([]byte, tk.panelBytes(nb))
				got := make([]byte, tk.panelBytes(nb))
				packPanel(qtype(q), want, w, rowBytes, tk.rows, tk.rows, nb, tk.off)
				if wt == Q6_K {
					tk.pack(&got[0], &w[0], rowBytes, nb/16)
				} else {
					tk.pack(&got[0], &w[0], rowBytes, nb)
				}
				checked = append(checked, fmt.Sprintf("%s/%s/k%d", p, wt, k))
				if string(got) != string(want) {
					for i := range got {
						if got[i] != want[i] {
							t.Fatalf("%s %s k=%d: packed byte %d = %#x, want %#x", p, wt, k, i, got[i], want[i])
						}
					}
				}
			}
		}
	}
}

// TestMatMulMisaligned passes float weights and activations at odd byte
// offsets, which MatMul must read without assuming alignment.
func TestMatMulMisaligned(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		for _, wt := range []Type{F32, F16, BF16} {
			const k, rows, na = 100, 9, 6
			r := newRNG(99)
			w0, rowBytes := randWeights(t, r, wt, k, rows, 0, false)
			a0, aRowBytes := randActs(t, r, wt, k, na, 0, false)
			w := append(make([]byte, 1, len(w0)+1), w0...)[1:]
			a := append(make([]byte, 3, len(a0)+3), a0...)[3:]
			out := make([]float32, rows*na)
			if err := MatMul(wt, k, w, rowBytes, rows, a, aRowBytes, na, out, rows); err != nil {
				t.Fatal(err)
			}
			for i, got := range out {
				ref, mag := refDot(wt, k, w0[(i%rows)*rowBytes:], a0[(i/rows)*aRowBytes:])
				if math.Abs(float64(got)-ref) > tolerance(wt, k, mag) {
					t.Fatalf("%s: out[%d] = %v, want %v", wt, i, got, ref)
				}
			}
		}
	})
}

// TestMatMulConcurrent runs MatMul from several goroutines at once, as the
// workers of a CPU backend do (each with its own rows), and checks that
// they agree with one call over all the rows.
func TestMatMulConcurrent(t *testing.T) {
	for _, wt := range []Type{Q4_0, Q6_K, F16} {
		const k, rows, na, workers = 512, 64, 9, 4
		r := newRNG(5)
		w, rowBytes := randWeights(t, r, wt, k, rows, 0, false)
		a, aRowBytes := randActs(t, r, wt, k, na, 0, false)
		want := make([]float32, rows*na)
		if err := MatMul(wt, k, w, rowBytes, rows, a, aRowBytes, na, want, rows); err != nil {
			t.Fatal(err)
		}
		got := make([]float32, rows*na)
		errs := make(chan error, workers)
		for i := range workers {
			go func() {
				r0, r1 := i*rows/workers, (i+1)*rows/workers
				var err error
				for range 20 {
					err = MatMul(wt, k, w[r0*rowBytes:], rowBytes, r1-r0, a, aRowBytes, na, got[r0:], rows)
				}
				errs <- err
			}()
		}
		for range workers {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: out[%d] = %v from the workers, %v from one call", wt, i, got[i], want[i])
			}
		}
	}
}

// TestMatMulAllocs checks that MatMul allocates nothing in the steady
// state (its scratch memory comes from a pool, which the race detector
// empties at random).
func TestMatMulAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	for _, wt := range []Type{Q4_0, Q6_K, F32, F16} {
		for _, na := range []int{1, 9} {
			r := newRNG(1)
			w, rb := randWeights(t, r, wt, 512, 37, 0, false)
			a, ab := randActs(t, r, wt, 512, na, 0, false)
			out := make([]float32, 37*na)
			n := testing.AllocsPerRun(20, func() {
				if err := MatMul(wt, 512, w, rb, 37, a, ab, na, out, 37); err != nil {
					t.Fatal(err)
				}
			})
			if n != 0 {
				t.Errorf("%s with %d activation rows: %v allocations per call", wt, na, n)
			}
		}
	}
}

// TestRefDotMatchesDequantize checks the tests' reference against the
// package's dequantizers (which match ggml bit for bit, see golden_test.go):
// the float64 dot product of the dequantized rows must equal refDot.
func TestRefDotMatchesDequantize(t *testing.T) {
	for _, wt := range []Type{Q4_0, Q8_0, Q6_K, F16, BF16, F32} {
		const k = 1024
		r := newRNG(17)
		w, _ := randWeights(t, r, wt, k, 1, 0, false)
		a, _ := randActs(t, r, wt, k, 1, 0, false)
		wf := make([]float32, k)
		if err := Dequantize(wt, wf, w); err != nil {
			t.Fatal(err)
		}
		af := make([]float32, k)
		var err error
		switch actTypeOf(wt) {
		case Q8_0:
			err = DequantizeQ8_0(af, a)
		case Q8_K:
			err = DequantizeQ8_K(af, a)
		default:
			err = DequantizeF32(af, a)
		}
		if err != nil {
			t.Fatal(err)
		}
		var want float64
		for i := range wf {
			want += float64(wf[i]) * float64(af[i])
		}
		ref, mag := refDot(wt, k, w, a)
		// Dequantized Q6_K and Q8_K values are rounded to float32 (d*scale,
		// d*q); every other value is exact.
		if math.Abs(ref-want) > 1e-6*mag {
			t.Errorf("%s: refDot %v, dequantized dot %v", wt, ref, want)
		}
	}
}

// TestGemvNMatchesGemv checks every path's small-batch GEMV kernels (what
// MatMul runs for 2..max activation rows) bit for bit against one GEMV per
// activation row on the same path, with padded rows and strides.
func TestGemvNMatchesGemv(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		p, ks := KernelPath(), active()
		for q, g := range ks.gemvN {
			if g == nil {
				continue
			}
			wt := qTypes[q]
			for _, sh := range []struct{ k, rows, wpad, apad int }{{256, 1, 0, 0}, {512, 5, 6, 4}, {2048, 17, 0, 12}} {
				r := newRNG(uint64(sh.k + sh.rows))
				w, rowBytes := randWeights(t, r, wt, sh.k, sh.rows, sh.wpad, false)
				a, aRowBytes := randActs(t, r, wt, sh.k, g.max, sh.apad, false)
				ar := rowSize(actTypeOf(wt), sh.k)
				stride := sh.rows + 3
				for n := 2; n <= g.max; n++ {
					got := make([]float32, (n-1)*stride+sh.rows)
					if err := MatMul(wt, sh.k, w, rowBytes, sh.rows, a, aRowBytes, n, got, stride); err != nil {
						t.Fatal(err)
					}
					want := make([]float32, sh.rows)
					for i := range n {
						ks.gemv[q](sh.k, w, rowBytes, sh.rows, a[i*aRowBytes:i*aRowBytes+ar], want)
						for j, v := range want {
							if math.Float32bits(got[i*stride+j]) != math.Float32bits(v) {
								t.Fatalf("%s %s k=%d rows=%d n=%d: out[%d][%d] = %g, the GEMV gives %g", p, wt, sh.k, sh.rows, n, i, j, got[i*stride+j], v)
							}
						}
					}
					for i := range n - 1 { // the gaps between output rows stay untouched
						for _, v := range got[i*stride+sh.rows : (i+1)*stride] {
							if v != 0 {
								t.Fatalf("%s %s n=%d: wrote past row %d", p, wt, n, i)
							}
						}
					}
				}
			}
		}
	})
}
