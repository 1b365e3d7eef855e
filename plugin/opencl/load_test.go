//go:build (darwin || (linux && !android) || ((android || freebsd) && cgo)) && (amd64 || arm64)

package opencl

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
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
	if slices.Contains(c, "/opt/custom/libOpenCL.so") {
		t.Fatalf("$OCELOT_OPENCL_LIB is among the fallbacks: %v", c)
	}
	if runtime.GOOS == "linux" {
		want := []string{"libOpenCL.so.1", "libOpenCL.so", "/vendor/lib64/libOpenCL.so", "/system/vendor/lib64/libOpenCL.so", "/system/lib64/libOpenCL.so"}
		for i, w := range want {
			if c[i] != w {
				t.Fatalf("candidate %d is %q, want %q (all: %v)", i, c[i], w, c)
			}
		}
		if !strings.Contains(strings.Join(c, " "), "libGLES_mali.so") {
			t.Fatalf("Mali's library is not tried: %v", c)
		}
	}
}

// TestLoadNamedLibrary: with $OCELOT_OPENCL_LIB set, that library is
// loaded or loading fails with an error naming the variable, the path and
// why; the system's library is never taken instead.
func TestLoadNamedLibrary(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "libOpenCL.so")
	if err := os.WriteFile(text, []byte("this is not a shared library\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.so")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	type tc struct{ name, path, why string }
	cases := []tc{
		{"missing file", "/nonexistent/libOpenCL.so", "no such file"},
		{"text file", text, "dlopen failed"},
		{"empty file", empty, "dlopen failed"},
		{"directory", dir, "it is a directory, not a library"},
		{"unknown name", "libocelot-no-such-library.so", "dlopen failed"},
	}
	if runtime.GOOS == "linux" {
		if h, err := purego.Dlopen("libc.so.6", purego.RTLD_NOW); err == nil {
			purego.Dlclose(h)
			cases = append(cases, tc{"library without OpenCL", "libc.so.6", "not an OpenCL library: symbol clGetPlatformIDs is missing"})
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("OCELOT_OPENCL_LIB", c.path)
			a, err := loadAPI()
			if err == nil {
				t.Fatalf("loaded %s (OCELOT_OPENCL_LIB=%s)", a.path, c.path)
			}
			s := err.Error()
			for _, w := range []string{"opencl: OCELOT_OPENCL_LIB=" + c.path + " cannot be used: ", c.why, "the system's OpenCL library is not tried"} {
				if !strings.Contains(s, w) {
					t.Fatalf("error %q does not say %q", s, w)
				}
			}
			if strings.Contains(s, "\n") {
				t.Fatalf("error %q is more than one line", s)
			}
		})
	}
	// A library that loads is the one used.
	for _, sys := range libraryCandidates() {
		if h, err := purego.Dlopen(sys, purego.RTLD_NOW); err == nil {
			purego.Dlclose(h)
			t.Setenv("OCELOT_OPENCL_LIB", sys)
			a, err := loadAPI()
			if err != nil || a.path != sys {
				t.Fatalf("OCELOT_OPENCL_LIB=%s: %v", sys, err)
			}
			break
		}
	}
}
