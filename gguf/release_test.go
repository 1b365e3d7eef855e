package gguf

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/ocelot-llm/ocelot/quant"
)

// releaseFile writes a file with a small tensor, a 2 MiB one and another
// small one after it, and opens it mapped.
func releaseFile(t *testing.T) (f *File, small, big, after []byte) {
	t.Helper()
	mk := func(n int, seed byte) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = seed + byte(i*31+i>>9)
		}
		return b
	}
	small, big, after = mk(4*100, 1), mk(4*(512<<10), 2), mk(4*100, 3)
	w := NewWriter()
	w.Set("general.architecture", String("llama"))
	for i, d := range [][]byte{small, big, after} {
		if err := w.AddTensorBytes(fmt.Sprint("t", i), quant.F32, []int64{int64(len(d) / 4)}, d); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "release.gguf")
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, small, big, after
}

// mapRSS is the resident size of the mapping that starts at p, from
// /proc/self/smaps, or -1 where that cannot be read.
func mapRSS(p unsafe.Pointer) int64 {
	fh, err := os.Open("/proc/self/smaps")
	if err != nil {
		return -1
	}
	defer fh.Close()
	start := strconv.FormatUint(uint64(uintptr(p)), 16) + "-"
	in := false
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		line := sc.Text()
		if fields := strings.Fields(line); len(fields) > 0 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			in = strings.HasPrefix(fields[0], start)
			continue
		}
		if in && strings.HasPrefix(line, "Rss:") {
			kb, err := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			if err != nil {
				return -1
			}
			return kb << 10
		}
	}
	return -1
}

// TestRelease releases a tensor of a mapped file: its interior pages
// leave the resident set (Linux), its bytes and its neighbours' stay
// what the file holds, and slices that are not the map's are refused.
func TestRelease(t *testing.T) {
	f, small, big, after := releaseFile(t)
	if !f.mapped {
		t.Skip("the file is not memory-mapped on this platform")
	}
	data := func(name string) []byte {
		d, err := f.TensorData(name)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	d0, d1, d2 := data("t0"), data("t1"), data("t2")
	check := func(when string) {
		t.Helper()
		if !bytes.Equal(d0, small) || !bytes.Equal(d1, big) || !bytes.Equal(d2, after) {
			t.Fatalf("%s: tensor bytes differ from the file's", when)
		}
	}
	check("before Release") // touches every page
	base := unsafe.Pointer(unsafe.SliceData(f.data))
	page := int64(os.Getpagesize())
	before := mapRSS(base)
	if err := f.Release(d1); err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS == "linux" && before >= 0 {
		// Every whole page inside t1 is gone; its two edges may share a
		// page with t0 and t2.
		if got, want := before-mapRSS(base), int64(len(d1))-2*page; got < want {
			t.Errorf("Release of %d bytes: the map's resident set fell by %d bytes, want at least %d", len(d1), got, want)
		}
	}
	check("after Release")
	// Releasing again, a part, and an empty slice are harmless.
	for _, d := range [][]byte{d1, d1[100 : 3*page], d0, d2, nil} {
		if err := f.Release(d); err != nil {
			t.Errorf("Release of %d bytes: %v", len(d), err)
		}
	}
	check("after more Releases")
	heap := bytes.Clone(big)
	if err := f.Release(heap); err == nil {
		t.Error("Release of a heap slice: no error")
	}
	if !bytes.Equal(heap, big) {
		t.Error("a refused Release changed the heap slice")
	}
	if err := f.Release(f.data[len(f.data)-10:][:10:10]); err != nil {
		t.Errorf("Release of the map's last bytes: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Release(d1); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Release after Close: %v, want an error saying the file is closed", err)
	}
}

// TestReleaseUnmapped: a parsed file's data and a ReadAt file's copies
// belong to the caller; Release leaves them alone.
func TestReleaseUnmapped(t *testing.T) {
	f, _, big, _ := releaseFile(t)
	buf := bytes.Clone(f.data)
	p, err := Parse(buf)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := p.TensorData("t1")
	if err := p.Release(d); err != nil {
		t.Errorf("Release on a parsed file: %v", err)
	}
	if !bytes.Equal(d, big) {
		t.Error("Release changed a parsed file's data")
	}
	path := filepath.Join(t.TempDir(), "copy.gguf")
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := open(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	d, _ = r.TensorData("t1")
	if err := r.Release(d); err != nil || !bytes.Equal(d, big) {
		t.Errorf("Release on a ReadAt file: %v (data intact: %v)", err, bytes.Equal(d, big))
	}
}
