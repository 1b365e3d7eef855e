package conformance

import "github.com/ocelot-llm/ocelot/quant"

// cpuPaths lists the CPU kernel paths this machine can run (generic,
// AVX2, AVX-512, NEON...); the CPU backend's op cases run on each in turn.
func cpuPaths() []string {
	var out []string
	for _, p := range quant.AvailablePaths() {
		out = append(out, p.String())
	}
	return out
}

// forcePath makes the quant kernels take one path and returns the
// function that restores the default.
func forcePath(name string) func() {
	p, err := quant.ParsePath(name)
	if err != nil {
		return func() {}
	}
	restore, err := quant.SetKernelPath(p)
	if err != nil {
		return func() {}
	}
	return restore
}
