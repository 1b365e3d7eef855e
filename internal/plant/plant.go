// Package plant holds test-only switches that plant known bugs in the
// CPU backend's kernels, so tests can prove that the conformance suite
// catches them and points at the right op. Nothing sets them outside
// tests.
package plant

import "sync/atomic"

// The bugs that can be planted.
const (
	// TileEdge: MUL_MAT skips the last row of the weight (an off-by-one
	// at the edge of the last tile).
	TileEdge = "tile-edge"
	// Q4Nibbles: GET_ROWS of a Q4_0 table reads the nibbles in the wrong
	// order (high nibble first).
	Q4Nibbles = "q4_0-nibbles"
)

var active atomic.Value // string

// Set plants a bug and returns the function that removes it.
func Set(name string) (restore func()) {
	active.Store(name)
	return func() { active.Store("") }
}

// Is reports whether the named bug is planted.
func Is(name string) bool {
	s, _ := active.Load().(string)
	return s == name
}
