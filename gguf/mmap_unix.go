//go:build linux || android || darwin || freebsd

package gguf

import (
	"errors"
	"math"
	"os"
	"syscall"
)

// mapSupported reports whether Open can memory-map files here.
const mapSupported = true

// mmap maps the whole file read-only.
func mmap(f *os.File, size int64) ([]byte, error) {
	if size <= 0 || size > math.MaxInt {
		return nil, errors.New("gguf: file size cannot be mapped")
	}
	return syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
}

func munmap(b []byte) error { return syscall.Munmap(b) }
