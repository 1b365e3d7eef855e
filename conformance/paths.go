package conformance

import (
	"fmt"

	"github.com/ocelot-llm/ocelot/quant"
)

// cpuPaths lists the CPU kernel paths this machine can run (generic,
// AVX2, AVX-512, NEON...); the CPU backend's op cases run on each in turn.
func cpuPaths() []quant.Path { return quant.AvailablePaths() }

// forcePath makes the quant kernels take one path and returns the
// function that restores the default; a path this machine cannot run is
// an error.
func forcePath(p quant.Path) (func(), error) {
	restore, err := quant.SetKernelPath(p)
	if err != nil {
		return nil, fmt.Errorf("conformance: kernel path %s: %w", p, err)
	}
	return restore, nil
}
