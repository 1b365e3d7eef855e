//go:build noasm || !(amd64 || arm64)

package quant

// registerArch registers no SIMD paths: this build runs the generic
// kernels only.
func registerArch() {}
