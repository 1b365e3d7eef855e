package accel

import (
	"sync"

	"github.com/ocelot-llm/ocelot/quant"
)

// The CPU backend's own inner loops: f16 conversion for attention. The
// matrix, dot-product and exponential kernels are quant's.

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
