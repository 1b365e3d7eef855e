package opencl

import "testing"

// TestHostUnified: a CPU OpenCL device (PoCL in CI) computes in the
// host's own memory and must say so.
func TestHostUnified(t *testing.T) {
	b := testBackend(t)
	info := b.Info()
	if info.Type == "CPU" && !info.HostUnified {
		t.Errorf("%s is a CPU device but reports CL_DEVICE_HOST_UNIFIED_MEMORY false", info.Name)
	}
	t.Logf("%s: host unified memory %v, base address alignment %d bits", info.Name, info.HostUnified, info.BaseAlign)
}
