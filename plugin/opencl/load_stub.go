//go:build !((darwin || (linux && !android) || ((android || freebsd) && cgo)) && (amd64 || arm64))

package opencl

import (
	"os"
	"runtime"
)

// loadAPI fails on builds where purego cannot load libraries without cgo
// (Android and FreeBSD), on 32-bit targets and on other systems. ocelot
// runs on the CPU there.
func loadAPI() (*api, error) {
	also := ""
	if p := os.Getenv("OCELOT_OPENCL_LIB"); p != "" {
		also = "; OCELOT_OPENCL_LIB=" + p + " is not loaded"
	}
	return nil, errorf("this build of ocelot cannot load OpenCL on %s/%s (Android and FreeBSD need a cgo build)%s", runtime.GOOS, runtime.GOARCH, also)
}
