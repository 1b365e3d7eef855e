package gguf

import "syscall"

// releasePages drops the resident pages of b, whole pages of a read-only
// file map: touched again, they are read from the file.
func releasePages(b []byte) error { return syscall.Madvise(b, syscall.MADV_DONTNEED) }
