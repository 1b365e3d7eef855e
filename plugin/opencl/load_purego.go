//go:build (darwin || (linux && !android) || ((android || freebsd) && cgo)) && (amd64 || arm64)

package opencl

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strings"

	"github.com/ebitengine/purego"
)

// libEnv names the environment variable that chooses the OpenCL library.
const libEnv = "OCELOT_OPENCL_LIB"

// libraryCandidates lists, in order, the files tried for the OpenCL
// library when $OCELOT_OPENCL_LIB is not set: the ICD loader by its usual
// names, the vendor libraries of Android phones (Adreno, Mali) and the
// macOS framework.
func libraryCandidates() []string {
	switch runtime.GOOS {
	case "darwin":
		return []string{"/System/Library/Frameworks/OpenCL.framework/OpenCL"}
	default:
		return []string{"libOpenCL.so.1", "libOpenCL.so",
			"/vendor/lib64/libOpenCL.so", "/system/vendor/lib64/libOpenCL.so", "/system/lib64/libOpenCL.so",
			"/vendor/lib64/egl/libGLES_mali.so", "/system/vendor/lib64/egl/libGLES_mali.so", "libGLES_mali.so"}
	}
}

// loadAPI opens the OpenCL library and binds the functions ocelot calls.
// With $OCELOT_OPENCL_LIB set, that library and no other: when it cannot
// be loaded the error says so, rather than ocelot quietly running on the
// system's library. Otherwise the first of libraryCandidates that loads.
// A missing library or a missing required symbol is an error, never a
// panic.
func loadAPI() (*api, error) {
	if p := os.Getenv(libEnv); p != "" {
		return loadNamed(p)
	}
	return loadFrom(libraryCandidates())
}

// loadNamed loads the library $OCELOT_OPENCL_LIB names.
func loadNamed(path string) (*api, error) {
	fail := func(why string) error {
		return errorf("%s=%s cannot be used: %s (the system's OpenCL library is not tried while %s is set)", libEnv, path, why, libEnv)
	}
	// A path (not a bare name for the dynamic linker's search) is checked
	// first, for a shorter reason than dlopen's.
	if strings.Contains(path, "/") {
		fi, err := os.Stat(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, fail("no such file")
		case err != nil:
			return nil, fail(err.Error())
		case fi.IsDir():
			return nil, fail("it is a directory, not a library")
		}
	}
	a, err := open(path)
	if err != nil {
		return nil, fail(err.Error())
	}
	return a, nil
}

// loadFrom tries the candidate files in order.
func loadFrom(candidates []string) (*api, error) {
	var tried []string
	for _, path := range candidates {
		a, err := open(path)
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s (%v)", path, err))
			continue
		}
		return a, nil
	}
	return nil, errorf("no usable OpenCL library: tried %s", strings.Join(tried, "; "))
}

// open loads one library and binds it; on failure the library is closed
// again and the error says why (dlopen's reason, or the missing symbol).
func open(path string) (*api, error) {
	h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		return nil, fmt.Errorf("dlopen failed: %v", err)
	}
	a, err := bind(h, path)
	if err != nil {
		purego.Dlclose(h)
		return nil, fmt.Errorf("not an OpenCL library: %v", err)
	}
	return a, nil
}

// bind looks every function up with Dlsym before registering it, so that
// a missing one is reported by name.
func bind(h uintptr, path string) (*api, error) {
	a := &api{path: path}
	required := []struct {
		name string
		fn   any
	}{
		{"clGetPlatformIDs", &a.getPlatformIDs},
		{"clGetPlatformInfo", &a.getPlatformInfo},
		{"clGetDeviceIDs", &a.getDeviceIDs},
		{"clGetDeviceInfo", &a.getDeviceInfo},
		{"clCreateContext", &a.createContext},
		{"clReleaseContext", &a.releaseContext},
		{"clCreateCommandQueue", &a.createCommandQueue},
		{"clReleaseCommandQueue", &a.releaseCommandQueue},
		{"clCreateBuffer", &a.createBuffer},
		{"clReleaseMemObject", &a.releaseMemObject},
		{"clCreateProgramWithSource", &a.createProgramWithSource},
		{"clCreateProgramWithBinary", &a.createProgramWithBinary},
		{"clBuildProgram", &a.buildProgram},
		{"clGetProgramBuildInfo", &a.getProgramBuildInfo},
		{"clGetProgramInfo", &a.getProgramInfo},
		{"clReleaseProgram", &a.releaseProgram},
		{"clCreateKernel", &a.createKernel},
		{"clReleaseKernel", &a.releaseKernel},
		{"clSetKernelArg", &a.setKernelArg},
		{"clGetKernelWorkGroupInfo", &a.getKernelWorkGroupInfo},
		{"clEnqueueNDRangeKernel", &a.enqueueNDRangeKernel},
		{"clEnqueueWriteBuffer", &a.enqueueWriteBuffer},
		{"clEnqueueReadBuffer", &a.enqueueReadBuffer},
		{"clEnqueueCopyBuffer", &a.enqueueCopyBuffer},
		{"clFinish", &a.finish},
		{"clFlush", &a.flush},
		{"clGetEventProfilingInfo", &a.getEventProfilingInfo},
		{"clReleaseEvent", &a.releaseEvent},
	}
	for _, r := range required {
		sym, err := purego.Dlsym(h, r.name)
		if err != nil || sym == 0 {
			return nil, fmt.Errorf("symbol %s is missing", r.name)
		}
		purego.RegisterFunc(r.fn, sym)
	}
	a.rawSetKernelArg, _ = purego.Dlsym(h, "clSetKernelArg")
	a.rawEnqueueNDRange, _ = purego.Dlsym(h, "clEnqueueNDRangeKernel")
	a.rawCall = func(fn uintptr, args ...uintptr) uintptr {
		r, _, _ := purego.SyscallN(fn, args...)
		return r
	}
	if sym, err := purego.Dlsym(h, "clEnqueueFillBuffer"); err == nil && sym != 0 {
		purego.RegisterFunc(&a.enqueueFillBuffer, sym)
	}
	return a, nil
}
