package opencl

// Test-only exports for the external tests (package opencl_test), which
// drive the backend through the public ocelot API and so cannot live in
// package opencl (ocelot imports this package).

// SetCallHook installs h as the fault-injection hook consulted before
// every OpenCL call (nil removes it). See callHook in api.go.
func SetCallHook(h func(name string) int32) { callHook = h }

// SetFaultNaN installs f as the NaN-writing-kernel switch (nil removes
// it): nodes for which f(op, name) is true have their output overwritten
// with NaN on the device. See faultNaN in fault.go.
func SetFaultNaN(f func(op, name string) bool) { faultNaN = f }
