package quant_test

import (
	"fmt"

	"github.com/ocelot-llm/ocelot/quant"
)

// Quantize a row of 32 weights to Q4_0 and read it back.
func Example() {
	x := make([]float32, 32)
	for i := range x {
		x[i] = float32(i-16) / 4 // -4, -3.75, ..., 3.75
	}

	n, err := quant.RowSize(quant.Q4_0, int64(len(x)))
	if err != nil {
		panic(err)
	}
	q := make([]byte, n)
	if err := quant.Quantize(quant.Q4_0, q, x); err != nil {
		panic(err)
	}

	y := make([]float32, len(x))
	if err := quant.Dequantize(quant.Q4_0, y, q); err != nil {
		panic(err)
	}
	fmt.Printf("%d floats -> %d bytes, d = %g\n", len(x), len(q), quant.FP16ToFloat32(uint16(q[0])|uint16(q[1])<<8))
	fmt.Println(y[:8])
	fmt.Println(y[24:])

	// Types outside F32, F16, BF16, Q4_0, Q8_0 and Q6_K are refused by name.
	fmt.Println(quant.Dequantize(quant.Q4_K, y, q))
	// Output:
	// 32 floats -> 18 bytes, d = 0.5
	// [-4 -3.5 -3.5 -3 -3 -2.5 -2.5 -2]
	// [2 2.5 2.5 3 3 3.5 3.5 3.5]
	// quant: dequantize: q4_K is not supported
}

func ExampleSwiGLU() {
	x := []float32{0, 1, -1, 4}
	y := []float32{1, 1, 1, 0.5}
	out := make([]float32, len(x))
	quant.SwiGLU(out, x, y) // SiLU(x)·y, on the CPU's fastest path
	fmt.Println(out)
	// Output: [0 0.7310586 -0.26894143 1.9640275]
}
