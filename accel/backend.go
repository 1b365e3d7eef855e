// Package accel holds ocelot's backends: the interface every backend
// implements, a registry with backend selection, and the runner that
// executes a scheduled graph across the CPU and an accelerator.
package accel

import (
	"github.com/ocelot-llm/ocelot/graph"
)

// Backend runs graph ops on one device. A backend occupies one slot of a
// tensor's Bufs: the CPU backend graph.CPU, an accelerator graph.Accel
// (graph's Backend slots say why there are two).
//
// Compute may return before the work is done (an accelerator queues it);
// Sync waits for everything queued. Download, Read and Sync are the only
// calls that wait.
type Backend interface {
	// Name is the backend's short name: "cpu", "opencl".
	Name() string
	// Device describes what it runs on, for logs and reports.
	Device() string
	// Caps says what the backend holds and runs.
	Caps() Caps
	// Start says how opening the backend went (what it built, how long
	// it took); zero for a backend with nothing to build.
	Start() StartInfo
	// Memory reports the device's memory now: Free falls as tensors are
	// loaded.
	Memory() Memory
	// Supports says whether the backend can run node n: its op (an
	// OpFused node: the whole fusion as one kernel), with its types and
	// shapes.
	Supports(n *graph.Tensor) bool

	// Load makes a persistent leaf resident: a weight is allocated and
	// uploaded from its Data; a cache is allocated and zeroed. It sets the
	// tensor's Bufs slot for this backend.
	Load(t *graph.Tensor) error
	// Free releases a resident tensor.
	Free(t *graph.Tensor)
	// Upload replaces a resident tensor's bytes (raw, in its type).
	Upload(t *graph.Tensor, src []byte) error
	// Download reads a resident tensor's bytes back, for any type.
	Download(t *graph.Tensor, dst []byte) error
	// CopyRows copies rows [src, src+n) of a resident cache tensor over
	// rows [dst, dst+n), which must not overlap them, byte for byte (a
	// page of KV cells copied before a shared page is written). It is
	// ordered with the work queued before and after it.
	CopyRows(t *graph.Tensor, dst, src, n int) error

	// NewArena returns scratch memory of at least size bytes for the
	// intermediates of one sequence's graphs.
	NewArena(size int64) (Arena, error)
	// Compute runs (or queues) nodes, all placed on this backend, in order.
	// Intermediates live in the arena at their planned offsets.
	Compute(a Arena, nodes []*graph.Tensor) error
	// Read copies an intermediate's f32 values out of the arena, waiting
	// for the work that produces it.
	Read(a Arena, t *graph.Tensor, dst []float32) error
	// Write copies f32 values into an intermediate's place in the arena
	// (the receiving end of a CPY). src may be reused once Write returns.
	Write(a Arena, t *graph.Tensor, src []float32) error
	// Sync waits for all queued work and reports its first error.
	Sync() error
	// Profile returns the time each op took on the device since the
	// backend was opened or the profile reset, longest first: empty
	// unless it was opened with Config.Profile (and Caps.Timing).
	Profile() []OpTime
	// ResetProfile clears the times.
	ResetProfile()
	// Close releases the backend.
	Close() error
}

// Arena is a backend's scratch memory for intermediates.
type Arena interface {
	// Size is the arena's capacity in bytes.
	Size() int64
	// Free releases the arena.
	Free()
}
