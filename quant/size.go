package quant

import (
	"fmt"
	"math/bits"
)

// MulSize multiplies sizes (element counts, cells, bytes) and fails
// instead of wrapping: every factor must be non-negative and the product
// must fit an int64. It is the one place sizes that come from input (a
// file's shapes, n_ctx, batch sizes, layer counts) are multiplied.
func MulSize(factors ...int64) (int64, error) {
	p := uint64(1)
	for _, f := range factors {
		if f < 0 {
			return 0, fmt.Errorf("quant: negative size %d in %v", f, factors)
		}
		hi, lo := bits.Mul64(p, uint64(f))
		if hi != 0 || lo > 1<<63-1 {
			return 0, fmt.Errorf("quant: the size %s overflows a 64-bit byte count", product(factors))
		}
		p = lo
	}
	return int64(p), nil
}

// AddSize adds sizes, failing instead of wrapping.
func AddSize(terms ...int64) (int64, error) {
	var s int64
	for _, t := range terms {
		if t < 0 {
			return 0, fmt.Errorf("quant: negative size %d in %v", t, terms)
		}
		if s > 1<<63-1-t {
			return 0, fmt.Errorf("quant: the sum of sizes %v overflows a 64-bit byte count", terms)
		}
		s += t
	}
	return s, nil
}

func product(fs []int64) string {
	s := ""
	for i, f := range fs {
		if i > 0 {
			s += " × "
		}
		s += fmt.Sprint(f)
	}
	return s
}
