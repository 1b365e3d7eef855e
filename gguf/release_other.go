//go:build !linux

package gguf

// releasePages does nothing here: only Linux releases map pages.
func releasePages([]byte) error { return nil }
