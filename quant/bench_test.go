package quant

import (
	"fmt"
	"testing"
)

// The benchmarks convert one 4096-element row (a Llama 3 8B hidden-size
// row); throughput is reported per float32 byte (16 KiB per row).
const benchRow = 4096

var benchTypes = []Type{Q4_0, Q8_0, Q6_K, F16, BF16}

func BenchmarkQuantize(b *testing.B) {
	r := newRNG(11)
	x := make([]float32, benchRow)
	for i := range x {
		x[i] = r.normal() * 0.02
	}
	for _, t := range benchTypes {
		n, _ := RowSize(t, benchRow)
		dst := make([]byte, n)
		b.Run(t.String(), func(b *testing.B) {
			b.SetBytes(4 * benchRow)
			for b.Loop() {
				if err := Quantize(t, dst, x); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDequantize(b *testing.B) {
	r := newRNG(12)
	x := make([]float32, benchRow)
	for i := range x {
		x[i] = r.normal() * 0.02
	}
	for _, t := range benchTypes {
		n, _ := RowSize(t, benchRow)
		src := make([]byte, n)
		if err := Quantize(t, src, x); err != nil {
			b.Fatal(err)
		}
		y := make([]float32, benchRow)
		b.Run(t.String(), func(b *testing.B) {
			b.SetBytes(4 * benchRow)
			for b.Loop() {
				if err := Dequantize(t, y, src); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkFP16(b *testing.B) {
	var sink uint16
	var fsink float32
	b.Run("Float32ToFP16", func(b *testing.B) {
		f := float32(0.1)
		for b.Loop() {
			sink += Float32ToFP16(f)
			f += 1e-3
		}
	})
	b.Run("FP16ToFloat32", func(b *testing.B) {
		h := uint16(0)
		for b.Loop() {
			fsink += FP16ToFloat32(h)
			h += 7
		}
	})
	_ = fmt.Sprint(sink, fsink)
}
