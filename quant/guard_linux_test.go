//go:build linux

package quant

import (
	"syscall"
	"testing"
	"time"
)

// guardedBytes returns a slice of exactly n bytes whose end touches an
// inaccessible page, so that a kernel reading even one byte past it
// faults instead of reading garbage silently.
func guardedBytes(tb testing.TB, n int) []byte {
	tb.Helper()
	page := syscall.Getpagesize()
	size := (n+page-1)/page*page + page
	mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		tb.Fatalf("mmap: %v", err)
	}
	if err := syscall.Mprotect(mem[size-page:], syscall.PROT_NONE); err != nil {
		tb.Fatalf("mprotect: %v", err)
	}
	tb.Cleanup(func() { _ = syscall.Munmap(mem) })
	return mem[size-page-n : size-page : size-page]
}

// threadCPUTime returns the CPU time the calling OS thread has used, so
// that benchmarks can report speed per CPU second on a machine whose other
// work takes CPU time away from them. The caller must hold
// runtime.LockOSThread.
func threadCPUTime() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
