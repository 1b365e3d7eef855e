package quant_test

import (
	"fmt"

	"github.com/ocelot-llm/ocelot/quant"
)

// Multiply a 3×64 Q4_0 weight matrix by two activation rows, as a CPU
// backend's matmul does: quantize the activations to ActType (Q8_0 here),
// then let MatMul pick the kernel.
func ExampleMatMul() {
	const k, rows, nAct = 64, 3, 2
	// Values that Q4_0 and Q8_0 represent exactly, so that the result is
	// exact: weights (j-8)/8 (scale 1/8), activations 127 and -63.5
	// (scales 1 and 1/2).
	w := make([]float32, rows*k)
	for i := range w {
		w[i] = float32(i%16-8) / 8 // each row sums to -4
	}
	a := make([]float32, nAct*k)
	for i := range a {
		a[i] = 127
		if i >= k {
			a[i] = -63.5
		}
	}

	rowBytes, _ := quant.RowSize(quant.Q4_0, k)
	wq := make([]byte, rows*int(rowBytes))
	if err := quant.Quantize(quant.Q4_0, wq, w); err != nil {
		panic(err)
	}
	aRowBytes, _ := quant.ActRowSize(quant.Q4_0, k)
	aq := make([]byte, nAct*aRowBytes)
	if err := quant.QuantizeAct(quant.Q4_0, aq, a); err != nil {
		panic(err)
	}

	out := make([]float32, nAct*rows) // out[t*rows + r]
	if err := quant.MatMul(quant.Q4_0, k, wq, int(rowBytes), rows, aq, aRowBytes, nAct, out, rows); err != nil {
		panic(err)
	}
	fmt.Println(out[:rows])
	fmt.Println(out[rows:])
	// Output:
	// [-508 -508 -508]
	// [254 254 254]
}
