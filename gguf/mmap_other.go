//go:build !(linux || android || darwin || freebsd)

package gguf

import (
	"errors"
	"os"
)

// mapSupported reports whether Open can memory-map files here.
const mapSupported = false

// mmap is not available here: Open reads the file with ReadAt instead.
func mmap(*os.File, int64) ([]byte, error) {
	return nil, errors.New("gguf: memory maps are not supported on this platform")
}

func munmap([]byte) error { return nil }
