package accel

import (
	"time"

	"github.com/ocelot-llm/ocelot/graph"
)

// Tuner is a Backend that chooses among its own kernels by timing them on
// its device with the model's products (the OpenCL backend: no fixed
// choice of kernel shape is fast on every GPU and CPU driver). Every
// candidate is checked against the backend's generic kernel before it is
// timed, so tuning never changes a result beyond the conformance
// thresholds.
type Tuner interface {
	// Tune chooses the kernels for products with these weights, which are
	// resident on the backend, and keeps the choice until the backend is
	// closed. A result cached for this device, driver, kernel source and
	// these shapes is taken instead of measuring, unless o.Force.
	Tune(weights []*graph.Tensor, o TuneOptions) (TuneReport, error)
}

// TuneOptions configure Tuner.Tune.
type TuneOptions struct {
	// Quick measures fewer repetitions and stops after Budget (0: no
	// bound), keeping the best candidates found so far.
	Quick  bool
	Budget time.Duration
	// Force measures even when the cache holds a result, and replaces it.
	Force bool
	// Model names the model in the cache's listing (`ocelot devices`).
	Model string
	// Progress, if not nil, learns how many of the candidate
	// measurements are done.
	Progress func(done, total int)
}

// TuneReport says what Tune chose and how.
type TuneReport struct {
	Device    string
	FromCache bool   // the choices came from the cache, nothing was timed
	File      string // the cache file ("" when nothing was cached)
	Quick     bool   // the choices come from a quick tune
	Partial   bool   // the budget ran out: some decisions kept their default
	Took      time.Duration
	Rows      []TuneRow
}

// TuneRow is one decision: the kernel for the products of one weight type
// and token class ("one": decode, "few": a few tokens, "many": prompts).
type TuneRow struct {
	Type, Class string
	Tokens      int // tokens per product timed
	Products    int // the model's products of this type, per token
	Chosen      string
	Default     string // the untuned choice
	// ChosenTime and DefaultTime are the times of all the model's
	// products of this type and class, per forward pass of Tokens tokens.
	ChosenTime, DefaultTime time.Duration
	Candidates              []TuneCandidate
}

// TuneCandidate is one candidate's measurement: its time as TuneRow's,
// or why it was rejected.
type TuneCandidate struct {
	Name     string
	Time     time.Duration
	Rejected string // "" when it was correct and timed
	// Stopped says it was timed on some of the shapes only: already
	// slower than the best there, so Time is a lower bound.
	Stopped bool `json:",omitempty"`
}

// PathForcer is a Backend with alternative kernels for some ops (the
// OpenCL backend's product kernels that its tuner chooses among), which
// tests and the conformance suite force one at a time, as the CPU
// backend's SIMD paths are forced.
type PathForcer interface {
	// Paths names the alternatives.
	Paths() []string
	// ForcePath makes every op that has alternative p run it, for every
	// type and batch it takes; "" restores the backend's own choices.
	ForcePath(p string) error
}
