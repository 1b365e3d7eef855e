package gguf

import (
	"errors"
	"fmt"
	"os"
	"unsafe"
)

// Release gives the pages under data back to the operating system, where
// data is a slice of f's memory map (what TensorData returned, or part of
// it): a caller that has copied a tensor elsewhere (into a device buffer)
// and will not read it soon keeps its resident memory from holding the
// bytes twice. Only whole pages inside data are released, never a page
// that a neighbouring tensor shares. The bytes stay valid: a released
// page of the read-only map is read again from the file when it is next
// touched, so releasing never changes what data holds.
//
// Release does the work on Linux (madvise MADV_DONTNEED) and nothing
// elsewhere; it also does nothing for a File that is not mapped (Parse,
// or Open where mapping failed: TensorData's slices are then the
// caller's). A slice that is not part of the map, or a closed File, is
// an error and nothing is released.
func (f *File) Release(data []byte) error {
	// f.mu orders Release against Close: a map is never released while
	// it is being unmapped, nor after.
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return errors.New("gguf: release: the file is closed")
	}
	if !f.mapped || len(data) == 0 {
		return nil
	}
	lo, hi, ok := f.within(data)
	if !ok {
		return fmt.Errorf("gguf: release: %d bytes at %p are not part of the file's memory map", len(data), unsafe.SliceData(data))
	}
	page := int64(os.Getpagesize())
	lo = (lo + page - 1) / page * page // the map starts on a page
	hi = hi / page * page
	if hi <= lo {
		return nil
	}
	if err := releasePages(f.data[lo:hi]); err != nil {
		return fmt.Errorf("gguf: release bytes %d to %d of the map: %w", lo, hi, err)
	}
	return nil
}

// within reports where data lies in f's map: the byte range [lo, hi),
// and whether it lies inside at all.
func (f *File) within(data []byte) (lo, hi int64, ok bool) {
	base := uintptr(unsafe.Pointer(unsafe.SliceData(f.data)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(data)))
	if p < base || p-base > uintptr(len(f.data)) || uintptr(len(data)) > uintptr(len(f.data))-(p-base) {
		return 0, 0, false
	}
	lo = int64(p - base)
	return lo, lo + int64(len(data)), true
}
