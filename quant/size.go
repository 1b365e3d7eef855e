package quant

import (
	"fmt"
	"math/bits"
)

// MulSize multiplies sizes (element counts, cells, bytes) and fails
// instead of wrapping: every factor must be non-negative and the product
// must fit an int64. It is the one place sizes that come from input (a
// file's shapes, n_ctx, batch sizes, layer counts) are multiplied.
//
// It allocates nothing unless it fails (the factors do not escape), so it
// may sit on per-token paths.
func MulSize(factors ...int64) (int64, error) {
	p := uint64(1)
	for _, f := range factors {
		if f < 0 {
			return 0, sizeError("negative size in", factors)
		}
		hi, lo := bits.Mul64(p, uint64(f))
		if hi != 0 || lo > 1<<63-1 {
			return 0, sizeError("a 64-bit byte count overflows in", factors)
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
			return 0, sizeError("negative size in the sum of", terms)
		}
		if s > 1<<63-1-t {
			return 0, sizeError("a 64-bit byte count overflows in the sum of", terms)
		}
		s += t
	}
	return s, nil
}

// sizeError formats a copy of the sizes, so that the callers' variadic
// slices stay on their stacks.
func sizeError(what string, sizes []int64) error {
	c := append([]int64(nil), sizes...)
	return fmt.Errorf("quant: %s %s", what, product(c))
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
