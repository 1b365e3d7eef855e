package quant

import (
	"fmt"
	"sync/atomic"
)

// The assembly kernels are generated; see _gen/main.go.
//go:generate sh -c "cd _gen && go run ."

// Path names one implementation of the CPU kernels (dot products, matmul
// tiles, activation quantizers). Every path computes the same integer sums
// as PathGeneric; float results differ only in the order of float
// additions. The best path the CPU supports is chosen at init (see
// KernelPath); SetKernelPath forces another for tests and benchmarks.
type Path uint8

// The kernel paths. A path is available when the CPU has its instructions
// and the binary was built without the noasm tag (see AvailablePaths).
const (
	// PathGeneric is portable Go, the reference the others are tested
	// against; it is the only path under the noasm build tag and on
	// architectures other than amd64 and arm64.
	PathGeneric Path = iota
	// PathAVX2 uses 256-bit AVX2 (vpmaddubsw/vpmaddwd), FMA and F16C.
	PathAVX2
	// PathAVXVNNI is PathAVX2 with the VEX-encoded vpdpbusd of AVX-VNNI.
	PathAVXVNNI
	// PathAVX512 uses 512-bit AVX-512 F/BW/VL without VNNI.
	PathAVX512
	// PathAVX512VNNI is PathAVX512 with the vpdpbusd of AVX512-VNNI.
	PathAVX512VNNI
	// PathNEON uses arm64 Advanced SIMD without the dot-product extension.
	PathNEON
	// PathNEONDot uses arm64 Advanced SIMD with SDOT (FEAT_DotProd).
	PathNEONDot
	numPaths
)

var pathNames = [numPaths]string{"generic", "avx2", "avxvnni", "avx512", "avx512vnni", "neon", "neondot"}

// String returns the path's name ("generic", "avx2", "avx512vnni", ...).
func (p Path) String() string {
	if p < numPaths {
		return pathNames[p]
	}
	return fmt.Sprintf("path(%d)", uint8(p))
}

// ParsePath looks a path up by the name String gives it.
func ParsePath(name string) (Path, error) {
	for p, n := range pathNames {
		if n == name {
			return Path(p), nil
		}
	}
	return 0, fmt.Errorf("quant: unknown kernel path %q", name)
}

// kernels is one path's set of kernels. Fields left nil by a path fall back
// to the generic kernel when the set is registered (see register).
type kernels struct {
	path Path

	// Activation quantizers; len(dst) is exactly the size of the
	// converted src.
	quantQ8_0 func(dst []byte, src []float32)
	quantQ8_K func(dst []byte, src []float32)

	// Dot products of float weights with float32 activations; n > 0 and
	// the slices hold at least n elements.
	dotF32  func(n int, w, a []float32) float32
	dotF16  func(n int, w []byte, a []float32) float32
	dotBF16 func(n int, w []byte, a []float32) float32

	// GEMV kernels: out[r] = dot(row r of w, a) for r < rows, with the
	// weight rows rowBytes apart and one activation row a (Q8_0 for
	// Q4_0/Q8_0 weights, Q8_K for Q6_K) of k elements. The slices are
	// exactly long enough: w holds (rows-1)*rowBytes plus one row.
	gemv [numQTypes]func(k int, w []byte, rowBytes, rows int, a []byte, out []float32)

	// Small-batch GEMV kernels by weight type; nil where the path has
	// none. MatMul prefers them to the tile kernels for 2..max
	// activation rows (where the benchmarks found them faster).
	gemvN [numQTypes]*gemvNKernel

	// Tile (GEMM) kernels by weight type; nil where the path has none
	// and MatMul multiplies one activation row at a time with gemv.
	tile [numQTypes]*tileKernel

	// Float tile kernels for F32, F16 and BF16 weights (see ftypeOf);
	// nil where MatMul computes one dot product per output instead.
	ftile [3]*floatTile

	// Element-wise float kernels (see SwiGLU and ExpSub), bit-identical
	// with the generic loops.
	swiglu func(dst, x, y []float32)
	expSub func(x []float32, m float32)
}

// floatTile is a kernel that computes a block of rows×acts outputs of a
// float matmul with k in the vector lanes (see matMulFloat).
type floatTile struct {
	rows, acts int // R weight rows and T activation rows per call
	step       int // k must be a multiple of step; MatMul adds the rest
	run        func(w *byte, rowBytes int, a *byte, aStride int, n int, out *float32, outStride int)
}

// ftypeOf indexes kernels.ftile: F32, F16, BF16.
func ftypeOf(t Type) int {
	switch t {
	case F16:
		return 1
	case BF16:
		return 2
	}
	return 0
}

// gemvNKernel multiplies weight rows by 2..max activation rows at once,
// unpacking each weight block once for all of them: out[t*outStride+r]
// for t < nAct, activation rows aRowBytes apart, bit-identical with nAct
// calls of the path's gemv.
type gemvNKernel struct {
	max int
	run func(k int, w []byte, rowBytes, rows int, a []byte, aRowBytes, nAct int, out []float32, outStride int)
}

// qtype indexes the per-type kernel arrays.
type qtype uint8

const (
	qQ4_0 qtype = iota
	qQ8_0
	qQ6_K
	numQTypes
)

func qtypeOf(t Type) (qtype, bool) {
	switch t {
	case Q4_0:
		return qQ4_0, true
	case Q8_0:
		return qQ8_0, true
	case Q6_K:
		return qQ6_K, true
	}
	return 0, false
}

// registry holds the kernel set of every path this build and CPU can run,
// indexed by Path; cur is the active set.
var (
	registry [numPaths]*kernels
	cur      atomic.Pointer[kernels]
)

// register completes ks with generic kernels where it has none and makes
// its path available.
func register(ks *kernels) {
	g := genericKernels()
	if ks.quantQ8_0 == nil {
		ks.quantQ8_0 = g.quantQ8_0
	}
	if ks.quantQ8_K == nil {
		ks.quantQ8_K = g.quantQ8_K
	}
	if ks.dotF32 == nil {
		ks.dotF32 = g.dotF32
	}
	if ks.dotF16 == nil {
		ks.dotF16 = g.dotF16
	}
	if ks.dotBF16 == nil {
		ks.dotBF16 = g.dotBF16
	}
	if ks.swiglu == nil {
		ks.swiglu = g.swiglu
	}
	if ks.expSub == nil {
		ks.expSub = g.expSub
	}
	for i := range ks.gemv {
		if ks.gemv[i] == nil {
			ks.gemv[i] = g.gemv[i]
		}
	}
	registry[ks.path] = ks
}

func init() {
	register(genericKernels())
	registerArch() // the paths of this architecture that the CPU runs
	best := registry[PathGeneric]
	for _, ks := range registry {
		if ks != nil {
			best = ks // paths are numbered from least to most capable
		}
	}
	cur.Store(best)
}

// active returns the kernel set in use.
func active() *kernels { return cur.Load() }

// KernelPath reports the kernel path in use: the best one the CPU supports,
// unless SetKernelPath chose another.
func KernelPath() Path { return active().path }

// AvailablePaths lists the kernel paths this CPU and build can run, from
// PathGeneric (always first) to the most capable, which is the default.
func AvailablePaths() []Path {
	var ps []Path
	for p, ks := range registry {
		if ks != nil {
			ps = append(ps, Path(p))
		}
	}
	return ps
}

// SetKernelPath makes p the kernel path of every later call, for tests,
// benchmarks and conformance runs that must exercise each path. It fails if
// p is not in AvailablePaths. The returned function restores the path that
// was active before. It must not be called while kernels run on other
// goroutines: calls that are under way may use either path.
func SetKernelPath(p Path) (restore func(), err error) {
	if p >= numPaths || registry[p] == nil {
		return nil, fmt.Errorf("quant: kernel path %s is not available on this CPU (available: %v)", p, AvailablePaths())
	}
	prev := cur.Swap(registry[p])
	return func() { cur.Store(prev) }, nil
}
