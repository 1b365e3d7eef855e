//go:build !linux

package quant

import (
	"testing"
	"time"
)

// guardedBytes returns a slice of exactly n bytes (without a guard page on
// this system; see guard_linux_test.go).
func guardedBytes(tb testing.TB, n int) []byte { return make([]byte, n) }

// threadCPUTime is not available on this system.
func threadCPUTime() (time.Duration, bool) { return 0, false }
