package ocelot

import "github.com/ocelot-llm/ocelot/accel"

// TuneReport says how an accelerator chose its kernels for a model (see
// Options.Tune): from its cache or by measuring, and for each weight type
// and token class the kernel chosen, the untuned default and every
// candidate's time or why it was rejected.
type TuneReport = accel.TuneReport

// Tuning returns what the accelerator's tuner chose while Load ran, and
// false where nothing was tuned (no accelerator that tunes, Options.Tune
// "off", or no layer offloaded).
func (m *Model) Tuning() (TuneReport, bool) {
	e, ok := m.eng.(*graphEngine)
	if !ok || e.tuned == nil {
		return TuneReport{}, false
	}
	return *e.tuned, true
}
