//go:build (darwin || (linux && !android) || ((android || freebsd) && cgo)) && (amd64 || arm64)

package opencl

import (
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/ebitengine/purego"
)

// libraryCandidates lists, in order, the files tried for the OpenCL
// library: $OCELOT_OPENCL_LIB, the ICD loader by its usual names, the
// vendor libraries of Android phones (Adreno, Mali) and the macOS
// framework.
func libraryCandidates() []string {
	var c []string
	if p := os.Getenv("OCELOT_OPENCL_LIB"); p != "" {
		c = append(c, p)
	}
	switch runtime.GOOS {
	case "darwin":
		c = append(c, "/System/Library/Frameworks/OpenCL.framework/OpenCL")
	default:
		c = append(c, "libOpenCL.so.1", "libOpenCL.so",
			"/vendor/lib64/libOpenCL.so", "/system/vendor/lib64/libOpenCL.so", "/system/lib64/libOpenCL.so",
			"/vendor/lib64/egl/libGLES_mali.so", "/system/vendor/lib64/egl/libGLES_mali.so", "libGLES_mali.so")
	}
	return c
}

// loadAPI opens the first OpenCL library that loads and binds the
// functions ocelot calls. A missing library or a missing required symbol
// is an error, never a panic.
func loadAPI() (*api, error) { return loadFrom(libraryCandidates()) }

// loadFrom tries the candidate files in order.
func loadFrom(candidates []string) (*api, error) {
	var tried []string
	for _, path := range candidates {
		h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s (%v)", path, err))
			continue
		}
		a, err := bind(h, path)
		if err != nil {
			purego.Dlclose(h)
			tried = append(tried, fmt.Sprintf("%s (%v)", path, err))
			continue
		}
		return a, nil
	}
	return nil, errorf("no usable OpenCL library: tried %s", strings.Join(tried, "; "))
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
