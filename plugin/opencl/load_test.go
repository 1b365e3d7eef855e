//go:build (darwin || (linux && !android) || ((android || freebsd) && cgo)) && (amd64 || arm64)

package opencl

import (
	"runtime"
	"strings"
	"testing"

	"github.com/ebitengine/purego"
)

func TestLoadMissingLibrary(t *testing.T) {
	_, err := loadFrom([]string{"/nonexistent/libOpenCL.so", "libocelot-no-such-library.so"})
	if err == nil || !strings.Contains(err.Error(), "no usable OpenCL library") || !strings.Contains(err.Error(), "/nonexistent/libOpenCL.so") {
		t.Fatalf("error %v", err)
	}
}

func TestLoadMissingSymbol(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("uses glibc's libc.so.6")
	}
	h, err := purego.Dlopen("libc.so.6", purego.RTLD_NOW)
	if err != nil {
		t.Skipf("no libc.so.6: %v", err)
	}
	// libc is a library without OpenCL: binding it must fail by name, and
	// loading it as OpenCL must fall through to a clear error.
	if _, err := bind(h, "libc.so.6"); err == nil || !strings.Contains(err.Error(), "symbol clGetPlatformIDs is missing") {
		t.Fatalf("bind libc: %v", err)
	}
	if _, err := loadFrom([]string{"libc.so.6"}); err == nil || !strings.Contains(err.Error(), "clGetPlatformIDs is missing") {
		t.Fatalf("load libc: %v", err)
	}
}

func TestLibraryCandidates(t *testing.T) {
	t.Setenv("OCELOT_OPENCL_LIB", "/opt/custom/libOpenCL.so")
	c := libraryCandidates()
	if c[0] != "/opt/custom/libOpenCL.so" {
		t.Fatalf("$OCELOT_OPENCL_LIB is not tried first: %v", c)
	}
	if runtime.GOOS == "linux" {
		want := []string{"libOpenCL.so.1", "libOpenCL.so", "/vendor/lib64/libOpenCL.so", "/system/vendor/lib64/libOpenCL.so", "/system/lib64/libOpenCL.so"}
		for i, w := range want {
			if c[1+i] != w {
				t.Fatalf("candidate %d is %q, want %q (all: %v)", 1+i, c[1+i], w, c)
			}
		}
		if !strings.Contains(strings.Join(c, " "), "libGLES_mali.so") {
			t.Fatalf("Mali's library is not tried: %v", c)
		}
	}
}
