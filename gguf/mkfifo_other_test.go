//go:build !(linux || darwin)

package gguf

import "errors"

// mkfifo is not available here: the FIFO case is skipped.
func mkfifo(string) error { return errors.ErrUnsupported }
