package conformance

// cpuPaths lists the CPU kernel paths to force in turn; forcePath forces
// one and returns the function that restores the default. Until quant
// exposes its kernel paths, the CPU backend runs its default path only.
func cpuPaths() []string { return []string{"default"} }

func forcePath(string) func() { return func() {} }
