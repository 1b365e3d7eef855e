package accel

import (
	"math"
	"sync"

	"github.com/ocelot-llm/ocelot/quant"
)

// The CPU backend's own inner loops: attention's weighted sums of V rows
// and the exponential. The matrix and dot-product kernels are quant's.

// Block sizes of the KV formats attention reads.
const (
	q4Bytes = 18 // Q4_0: f16 d, 16 bytes of nibbles
	q8Bytes = 34 // Q8_0: f16 d, 32 int8
)

// f16Table maps every f16 bit pattern to its float32 value (ggml keeps the
// same table): a load instead of a conversion in the attention and f16
// weight loops.
var (
	f16Table     [1 << 16]float32
	f16TableOnce sync.Once
)

func initF16Table() {
	f16TableOnce.Do(func() {
		for i := range f16Table {
			f16Table[i] = quant.FP16ToFloat32(uint16(i))
		}
	})
}

// convertF16 expands len(dst) f16 values.
func convertF16(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	for i := range dst {
		dst[i] = f16Table[uint16(src[2*i])|uint16(src[2*i+1])<<8]
	}
}

// expf is e^x in float32 to within about one ulp (Cephes' expf): x is
// split as n·ln2 + r with |r| <= ln2/2 and e^r comes from a degree-6
// polynomial. Results below float32's normal range flush to 0.
func expf(x float32) float32 {
	switch {
	case x != x:
		return x
	case x > 88.72283:
		return float32(math.Inf(1))
	case x < -87.33654:
		return 0
	}
	const (
		log2e = 1.44269504088896341
		c1    = 0.693359375
		c2    = -2.12194440e-4
	)
	fx := x*log2e + 0.5
	n := float32(int32(fx))
	if n > fx { // floor for negative fx
		n--
	}
	r := x - n*c1 - n*c2
	z := r * r
	y := ((((1.9875691500e-4*r+1.3981999507e-3)*r+8.3334519073e-3)*r+4.1665795894e-2)*r+1.6666665459e-1)*r + 5.0000001201e-1
	y = y*z + r + 1
	if n > 127 { // 2^128 overflows: scale in two steps
		return y * 2 * math.Float32frombits(uint32(int32(n)+126)<<23)
	}
	return y * math.Float32frombits(uint32(int32(n)+127)<<23)
}
