package opencl_test

// Fault injection through the public API (issue 9, part 1): every OpenCL
// entry point the backend calls while loading a model and while running a
// forward pass is made to fail in turn, with each of the statuses below,
// and a kernel is made to write NaN. The test checks that the process
// survives, that the error names the call and the status, that load
// faults under --backend auto fall back to the CPU with one log line, and
// that after a fault during evaluation the model, a new session, the
// faulted session (after Reset) and a session made before the fault all
// still compute the same logits as before.
//
// Sampling (to stay well under a minute on PoCL): each function is made
// to fail at its 1st, middle and last call of the phase (and, while
// loading, at its first call after the backend is open, i.e. while the
// weights are uploaded), with each of the five statuses; every load fault
// that fails --backend opencl is repeated under --backend auto. Calls in
// between (e.g. the 2nd..404th clSetKernelArg of a pass) are not tried:
// they go through the same code paths as the sampled ones.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/ocelot-llm/ocelot"
	"github.com/ocelot-llm/ocelot/internal/metric"
	"github.com/ocelot-llm/ocelot/internal/testmodel"
	"github.com/ocelot-llm/ocelot/plugin/opencl"
)

var faultCodes = []struct {
	name string
	code int32
}{
	{"CL_OUT_OF_RESOURCES", -5},
	{"CL_MEM_OBJECT_ALLOCATION_FAILURE", -4},
	{"CL_BUILD_PROGRAM_FAILURE", -11},
	{"CL_DEVICE_NOT_AVAILABLE", -2},
	{"CL_INVALID_COMMAND_QUEUE", -36},
}

// injector fails the n-th call (1-based) of one OpenCL function.
type injector struct {
	call  string
	n     int
	code  int32
	seen  int
	fired bool
}

func (in *injector) hook(name string) int32 {
	if name != in.call {
		return 0
	}
	in.seen++
	if in.seen == in.n {
		in.fired = true
		return in.code
	}
	return 0
}

// counter records how often each OpenCL function is called.
type counter map[string]int

func (c counter) hook(name string) int32 { c[name]++; return 0 }

func (c counter) names() []string {
	var out []string
	for n := range c {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// samples are the call positions tried for a function called total times.
func samples(total int) []int {
	ns := []int{1}
	if mid := (total + 1) / 2; mid > 1 && mid < total {
		ns = append(ns, mid)
	}
	if total > 1 {
		ns = append(ns, total)
	}
	return ns
}

// namesFault says whether err names the call and the status.
func namesFault(err error, call, code string, n int32) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	var ce *opencl.Error
	return strings.Contains(s, call) && strings.Contains(s, fmt.Sprintf("%s (%d)", code, n)) &&
		errors.As(err, &ce) && ce.Call == call && ce.Code == n
}

// outcome tallies what ocelot did for one (phase, call).
type outcome struct {
	cases              int
	errs, tolerated    int
	fallback, loadErrs int
	example, autoErr   string
	tolAt              []int // call positions whose fault was tolerated
}

type tally map[string]*outcome

func (t tally) get(phase, call string) *outcome {
	k := phase + "\t" + call
	if t[k] == nil {
		t[k] = &outcome{}
	}
	return t[k]
}

func (t tally) log(tb testing.TB) {
	var keys []string
	for k := range t {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("\nphase\tcall\tcases\terror\ttolerated\tauto->cpu\tauto error\texample\n")
	for _, k := range keys {
		o := t[k]
		fmt.Fprintf(&b, "%s\t%d\t%d\t%d %v\t%d\t%d\t%s\t%s\n", k, o.cases, o.errs, o.tolerated, slices.Compact(o.tolAt), o.fallback, o.loadErrs, o.example, o.autoErr)
	}
	tb.Log(b.String())
	if p := os.Getenv("OCELOT_FAULT_TABLE"); p != "" {
		os.WriteFile(p, []byte(b.String()), 0o644)
	}
}

func sameLogits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func closeLogits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	var num, den float64
	for i := range a {
		d := float64(a[i] - b[i])
		num += d * d
		den += float64(b[i]) * float64(b[i])
	}
	return num <= 1e-6*den
}

// noPanic runs f, turning a panic into a test error (the process must
// not crash on a fault).
func noPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			opencl.SetCallHook(nil)
			opencl.SetFaultNaN(nil)
			t.Errorf("%s: panic: %v", what, r)
		}
	}()
	f()
}

func TestFaultInjection(t *testing.T) {
	if b, err := opencl.Open(opencl.Options{Device: -1, CacheDir: "-"}); err != nil {
		t.Skipf("no usable OpenCL device: %v", err)
	} else {
		b.Close()
	}
	defer opencl.SetCallHook(nil)
	defer opencl.SetFaultNaN(nil)
	path := testmodel.Preset(t, "tiny")
	prompt := []int32{1, 2, 3}
	const dev = "0" // the device under test, named so that --backend auto takes a CPU OpenCL device too
	opts := func(backend string, logf func(string, ...any)) ocelot.Options {
		// Every session evaluates its whole prompt, so that its logits
		// can be compared exactly; no tuning, so that every load makes
		// the same calls whatever the tuner's cache holds
		// (TestTuneFaults covers faults while tuning).
		return ocelot.Options{Backend: backend, Device: dev, NGPULayers: 99, NCtx: 32, Logf: logf, NoPrefixReuse: true, Tune: "off"}
	}
	evalOnce := func(m *ocelot.Model, toks []int32) ([]float32, error) {
		s, err := m.NewSession()
		if err != nil {
			return nil, err
		}
		defer s.Close()
		return s.Eval(context.Background(), toks)
	}

	// Baselines: the CPU's logits (what a fallback must give) and the
	// device's, recording the calls of each phase on the way.
	cpu, err := ocelot.Load(path, opts("cpu", nil))
	if err != nil {
		t.Fatal(err)
	}
	cpuBase, err := evalOnce(cpu, prompt)
	cpu.Close()
	if err != nil {
		t.Fatal(err)
	}
	loadCalls, openCalls := counter{}, counter{}
	opencl.SetCallHook(loadCalls.hook)
	m, err := ocelot.Load(path, opts("opencl", func(f string, a ...any) {
		if strings.HasPrefix(f, "%s") || strings.HasPrefix(fmt.Sprintf(f, a...), "backend ") {
			for k, v := range loadCalls { // the backend is open; the weights come next
				openCalls[k] = v
			}
		}
	}))
	opencl.SetCallHook(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Backend() != "opencl+cpu" {
		t.Fatalf("backend %s", m.Backend())
	}
	sessCalls, evalCalls := counter{}, counter{}
	opencl.SetCallHook(sessCalls.hook)
	s, err := m.NewSession()
	opencl.SetCallHook(evalCalls.hook)
	var base []float32
	if err == nil {
		base, err = s.Eval(context.Background(), prompt)
	}
	opencl.SetCallHook(nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	// The model's first pass also makes the backend's RoPE table and a
	// kernel object per graph node (its slots): those calls are injected
	// by the "first pass" cases, on fresh models. The "eval" cases count
	// a later session's first pass.
	firstCalls := counter{}
	for k, v := range evalCalls {
		firstCalls[k] = v
	}
	clear(evalCalls)
	s, err = m.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	opencl.SetCallHook(evalCalls.hook)
	got, err := s.Eval(context.Background(), prompt)
	opencl.SetCallHook(nil)
	s.Close()
	if err != nil || !sameLogits(got, base) {
		t.Fatalf("a second session: %v (same logits: %v)", err, sameLogits(got, base))
	}
	t.Logf("load calls %v (open: %v), NewSession calls %v, the model's first Eval calls %v, a later session's first Eval calls %v",
		loadCalls, openCalls, sessCalls, firstCalls, evalCalls)

	res := tally{}

	// (a) Faults while loading.
	t.Run("load", func(t *testing.T) {
		for _, call := range loadCalls.names() {
			total := loadCalls[call]
			ns := samples(total)
			upload := openCalls[call] + 1 // first call after the backend is open
			if upload <= total && !slices.Contains(ns, upload) {
				ns = append(ns, upload)
			}
			type tc struct{ n, ci int }
			var cases []tc
			for _, n := range ns {
				for ci := range faultCodes {
					cases = append(cases, tc{n, ci})
				}
			}
			for _, c := range cases {
				fc := faultCodes[c.ci]
				o := res.get("load", call)
				o.cases++
				noPanic(t, fmt.Sprintf("%s #%d %s", call, c.n, fc.name), func() {
					in := &injector{call: call, n: c.n, code: fc.code}
					opencl.SetCallHook(in.hook)
					m2, err := ocelot.Load(path, opts("opencl", nil))
					opencl.SetCallHook(nil)
					if !in.fired {
						t.Errorf("%s #%d: not reached", call, c.n)
					}
					if err != nil {
						o.errs++
						if o.example == "" {
							o.example = err.Error()
						}
						if !namesFault(err, call, fc.name, fc.code) {
							t.Errorf("%s #%d %s: error %q does not name the call and the status", call, c.n, fc.name, err)
						}
					} else {
						// The fault was tolerated: the backend must still be right.
						o.tolerated++
						o.tolAt = append(o.tolAt, c.n)
						got, err := evalOnce(m2, prompt)
						m2.Close()
						if err != nil || !sameLogits(got, base) {
							t.Errorf("%s #%d %s: tolerated at load, then Eval: %v (same logits: %v)", call, c.n, fc.name, err, sameLogits(got, base))
						}
						return
					}
					// --backend auto: fall back to the CPU with one log line.
					in = &injector{call: call, n: c.n, code: fc.code}
					var logs []string
					opencl.SetCallHook(in.hook)
					m3, err := ocelot.Load(path, opts("auto", func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }))
					opencl.SetCallHook(nil)
					if err != nil {
						// Open and the weight upload both fall back under auto.
						o.loadErrs++
						if o.autoErr == "" {
							o.autoErr = err.Error()
						}
						t.Errorf("auto, %s #%d %s: no fallback to the CPU: %v", call, c.n, fc.name, err)
						return
					}
					defer m3.Close()
					o.fallback++
					if o.autoErr == "" && len(logs) > 0 {
						o.autoErr = "log: " + logs[0]
					}
					want := fmt.Sprintf("%s (%d)", fc.name, fc.code)
					// The backend choice is one line (the plugin may log what
					// it built before the fault).
					var choice []string
					for _, l := range logs {
						if strings.HasPrefix(l, "backend ") {
							choice = append(choice, l)
						}
					}
					if len(choice) == 1 {
						logs = choice
					}
					if m3.Backend() != "cpu" || len(choice) != 1 || !strings.HasPrefix(logs[0], "backend cpu") || strings.Contains(logs[0], "\n") ||
						!strings.Contains(logs[0], call) || !strings.Contains(logs[0], want) {
						t.Errorf("auto, %s #%d %s: backend %s, logs %q", call, c.n, fc.name, m3.Backend(), logs)
					}
					if got, err := evalOnce(m3, prompt); err != nil || !closeLogits(got, cpuBase) {
						t.Errorf("auto, %s #%d: the CPU fallback: %v", call, c.n, err)
					}
				})
			}
		}
	})

	// (a2) Faults in a model's first pass, which creates what later passes
	// reuse (the kernel slots, the RoPE table): on a fresh model each, the
	// calls the first pass makes beyond a later one's, with every status
	// for clCreateKernel and one for the others. Eval fails naming the
	// call; then the model works, the faulted session after Reset included.
	t.Run("first pass", func(t *testing.T) {
		for _, call := range firstCalls.names() {
			extra := firstCalls[call] - evalCalls[call]
			if extra <= 0 {
				continue
			}
			codes := faultCodes[:1]
			if call == "clCreateKernel" {
				codes = faultCodes
			}
			for _, n := range samples(firstCalls[call]) {
				for _, fc := range codes {
					o := res.get("first pass", call)
					o.cases++
					what := fmt.Sprintf("%s #%d %s", call, n, fc.name)
					noPanic(t, what, func() {
						m0, err := ocelot.Load(path, opts("opencl", nil))
						if err != nil {
							t.Fatal(err)
						}
						defer m0.Close()
						s, err := m0.NewSession()
						if err != nil {
							t.Fatal(err)
						}
						defer s.Close()
						evalFault(t, what, s, prompt, &injector{call: call, n: n, code: fc.code}, fc.name, o)
						if got, err := evalOnce(m0, prompt); err != nil || !sameLogits(got, base) {
							t.Errorf("%s: then a new session: %v", what, err)
						}
						s.Reset()
						if got, err := s.Eval(context.Background(), prompt); err != nil || !sameLogits(got, base) {
							t.Errorf("%s: then the faulted session after Reset: %v", what, err)
						}
					})
				}
			}
		}
	})

	// (b) Faults while evaluating, and in NewSession, on one model.
	other, err := m.NewSession() // made before any fault
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Eval(context.Background(), prompt); err != nil {
		t.Fatal(err)
	}
	next, err := other.Eval(context.Background(), []int32{5})
	if err != nil {
		t.Fatal(err)
	}
	// healthy checks the model after a fault: a new session, the faulted
	// one after Reset (nil: none) and the one made before the fault.
	healthy := func(t *testing.T, what string, faulted *ocelot.Session) {
		t.Helper()
		if got, err := evalOnce(m, prompt); err != nil || !sameLogits(got, base) {
			t.Errorf("%s: then a new session: %v (same logits: %v)", what, err, err == nil && sameLogits(got, base))
		}
		if faulted != nil {
			faulted.Reset()
			if got, err := faulted.Eval(context.Background(), prompt); err != nil || !sameLogits(got, base) {
				t.Errorf("%s: then the faulted session after Reset: %v", what, err)
			}
		}
		other.Reset()
		if _, err := other.Eval(context.Background(), prompt); err != nil {
			t.Errorf("%s: then the earlier session: %v", what, err)
		} else if got, err := other.Eval(context.Background(), []int32{5}); err != nil || !sameLogits(got, next) {
			t.Errorf("%s: then the earlier session: %v (same logits: %v)", what, err, err == nil && sameLogits(got, next))
		}
	}
	t.Run("eval", func(t *testing.T) {
		for _, call := range evalCalls.names() {
			for _, n := range samples(evalCalls[call]) {
				for _, fc := range faultCodes {
					o := res.get("eval", call)
					o.cases++
					what := fmt.Sprintf("%s #%d %s", call, n, fc.name)
					noPanic(t, what, func() {
						s, err := m.NewSession()
						if err != nil {
							t.Fatal(err)
						}
						defer s.Close()
						evalFault(t, what, s, prompt, &injector{call: call, n: n, code: fc.code}, fc.name, o)
						healthy(t, what, s)
					})
				}
			}
		}
		// Through Generate: a kernel launch fails while decoding the
		// second generated token (after the prompt's pass).
		for _, fc := range faultCodes {
			o := res.get("Generate", "clEnqueueNDRangeKernel")
			o.cases++
			what := "Generate: clEnqueueNDRangeKernel while decoding, " + fc.name
			noPanic(t, what, func() {
				s, err := m.NewSession()
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				in := &injector{call: "clEnqueueNDRangeKernel", n: evalCalls["clEnqueueNDRangeKernel"] + 2, code: fc.code}
				opencl.SetCallHook(in.hook)
				_, err = s.Generate(t.Context(), prompt, nil, 3, nil)
				opencl.SetCallHook(nil)
				if !in.fired || !namesFault(err, in.call, fc.name, fc.code) {
					t.Errorf("%s: fired %v, error %v", what, in.fired, err)
				} else {
					o.errs++
					o.example = err.Error()
				}
				healthy(t, what, s)
			})
		}
		for _, call := range sessCalls.names() {
			for _, n := range samples(sessCalls[call]) {
				for _, fc := range faultCodes {
					o := res.get("NewSession", call)
					o.cases++
					what := fmt.Sprintf("NewSession: %s #%d %s", call, n, fc.name)
					noPanic(t, what, func() {
						// A model's first session allocates the KV pool
						// that later ones share: a fresh model each time.
						m1, err := ocelot.Load(path, opts("opencl", nil))
						if err != nil {
							t.Fatal(err)
						}
						defer m1.Close()
						in := &injector{call: call, n: n, code: fc.code}
						opencl.SetCallHook(in.hook)
						s, err := m1.NewSession()
						opencl.SetCallHook(nil)
						switch {
						case !in.fired:
							t.Errorf("%s: not reached", what)
						case err == nil:
							o.tolerated++
							s.Close()
							t.Errorf("%s: NewSession succeeded", what)
						default:
							o.errs++
							if o.example == "" {
								o.example = err.Error()
							}
							if !namesFault(err, call, fc.name, fc.code) {
								t.Errorf("%s: error %q does not name the call and the status", what, err)
							}
						}
						if got, err := evalOnce(m1, prompt); err != nil || !sameLogits(got, base) {
							t.Errorf("%s: then a new session: %v", what, err)
						}
						healthy(t, what, nil)
					})
				}
			}
		}
	})

	// (d) Release calls failing at Close (every call of one function),
	// and the program-binary cache's calls failing at Open: no panic,
	// and the next Load works with the same logits.
	t.Run("release and cache", func(t *testing.T) {
		for _, call := range []string{"clReleaseMemObject", "clReleaseKernel", "clReleaseProgram", "clReleaseCommandQueue", "clReleaseContext"} {
			o := res.get("close", call)
			o.cases++
			noPanic(t, call, func() {
				m0, err := ocelot.Load(path, opts("opencl", nil))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := evalOnce(m0, prompt); err != nil {
					t.Fatal(err)
				}
				fired := false
				opencl.SetCallHook(func(name string) int32 {
					if name == call {
						fired = true
						return -5
					}
					return 0
				})
				err = m0.Close()
				opencl.SetCallHook(nil)
				if !fired {
					t.Errorf("%s: not reached by Close", call)
				}
				if err != nil {
					o.errs++
					o.example = err.Error()
				} else {
					o.tolerated++ // the object leaks; nothing else happens
				}
				if got, err := evalOnce(mustLoad(t, path, opts("opencl", nil)), prompt); err != nil || !sameLogits(got, base) {
					t.Errorf("%s: then a new model: %v", call, err)
				}
			})
		}
		// The cache: saving fails (clGetProgramInfo), then loading a saved
		// binary fails (clCreateProgramWithBinary): Open goes on from source.
		dir := t.TempDir()
		for _, call := range []string{"clGetProgramInfo", "clCreateProgramWithBinary"} {
			for _, fc := range faultCodes[:2] {
				o := res.get("cache", call)
				o.cases++
				what := call + " " + fc.name
				noPanic(t, what, func() {
					if call == "clCreateProgramWithBinary" {
						// A binary to load: an Open without faults saves it.
						b, err := opencl.Open(opencl.Options{Device: 0, CacheDir: dir})
						if err != nil {
							t.Fatal(err)
						}
						b.Close()
					}
					fired := false
					opencl.SetCallHook(func(name string) int32 {
						if name == call {
							fired = true
							return fc.code
						}
						return 0
					})
					var logs []string
					b, err := opencl.Open(opencl.Options{Device: 0, CacheDir: dir, Logf: func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }})
					opencl.SetCallHook(nil)
					if !fired {
						t.Errorf("%s: not reached", what)
					}
					if err != nil {
						o.errs++
						t.Errorf("%s: Open failed: %v", what, err)
						return
					}
					defer b.Close()
					o.tolerated++
					if st := b.Start(); st.FromCache {
						t.Errorf("%s: the program came from the cache", what)
					}
					if call == "clGetProgramInfo" && !slices.ContainsFunc(logs, func(l string) bool { return strings.Contains(l, "could not cache") }) {
						t.Errorf("%s: no log line about the cache: %q", what, logs)
					}
					if o.example == "" && len(logs) > 0 {
						o.example = logs[0]
					}
				})
			}
		}
	})

	// (c) A kernel that writes NaN.
	t.Run("nan", func(t *testing.T) {
		// From the start: the self-test at Open catches it.
		opencl.SetFaultNaN(func(op, name string) bool { return op == "MUL_MAT" })
		_, errExplicit := ocelot.Load(path, opts("opencl", nil))
		var logs []string
		m3, errAuto := ocelot.Load(path, opts("auto", func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }))
		opencl.SetFaultNaN(nil)
		o := res.get("nan", "MUL_MAT from Open")
		o.cases++
		if errExplicit == nil || !strings.Contains(errExplicit.Error(), "self-test") || !strings.Contains(errExplicit.Error(), "NaN") {
			t.Errorf("NaN from MUL_MAT at load, --backend opencl: %v", errExplicit)
		} else {
			o.errs++
			o.example = errExplicit.Error()
		}
		if errAuto != nil {
			t.Errorf("NaN at load, --backend auto: %v", errAuto)
		} else {
			if m3.Backend() != "cpu" || len(logs) != 1 || !strings.Contains(logs[0], "NaN") {
				t.Errorf("NaN at load, --backend auto: backend %s, logs %q", m3.Backend(), logs)
			} else {
				o.fallback++
			}
			m3.Close()
		}
		// During generation, in a kernel the self-test does not run.
		for _, op := range []string{"SWIGLU", "ATTENTION"} {
			o := res.get("nan", op+" during Eval")
			o.cases++
			s, err := m.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			opencl.SetFaultNaN(func(o, name string) bool { return o == op })
			if op == "SWIGLU" {
				_, err = s.Eval(context.Background(), prompt)
			} else {
				_, err = s.Generate(t.Context(), prompt, nil, 2, nil)
			}
			opencl.SetFaultNaN(nil)
			if err == nil || !strings.Contains(err.Error(), "NaN") {
				t.Errorf("NaN from %s: %v", op, err)
			} else {
				o.errs++
				o.example = err.Error()
			}
			healthy(t, "NaN from "+op, s)
			s.Close()
		}
	})
	res.log(t)
}

// mustLoad loads a model that the test then closes.
func mustLoad(t *testing.T, path string, o ocelot.Options) *ocelot.Model {
	t.Helper()
	m, err := ocelot.Load(path, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// evalFault evaluates prompt on s with the injector's fault and checks
// that Eval failed with an error naming the call and the status,
// counting the outcome in o.
func evalFault(t *testing.T, what string, s *ocelot.Session, prompt []int32, in *injector, codeName string, o *outcome) {
	t.Helper()
	opencl.SetCallHook(in.hook)
	_, err := s.Eval(context.Background(), prompt)
	opencl.SetCallHook(nil)
	switch {
	case !in.fired:
		t.Errorf("%s: not reached", what)
	case err == nil:
		o.tolerated++
		t.Errorf("%s: Eval succeeded", what)
	default:
		o.errs++
		if o.example == "" {
			o.example = err.Error()
		}
		if !namesFault(err, in.call, codeName, in.code) {
			t.Errorf("%s: error %q does not name the call and the status", what, err)
		}
	}
}

// TestTuneFaults: an OpenCL call that fails while Load tunes (a launch, a
// read, a wait; in the generic GEMV's run, the default path's or a
// candidate's) either ends Load with an error naming the call and the
// status, which --backend auto answers with the CPU, or costs only the
// candidate: the model then computes what the untuned one does, within
// the products' threshold.
func TestTuneFaults(t *testing.T) {
	if b, err := opencl.Open(opencl.Options{Device: -1, CacheDir: "-"}); err != nil {
		t.Skipf("no usable OpenCL device: %v", err)
	} else {
		b.Close()
	}
	t.Setenv("XDG_CACHE_HOME", t.TempDir()) // the tuner's cache, away from the user's
	defer opencl.SetCallHook(nil)
	path := testmodel.Preset(t, "tiny")
	prompt := []int32{1, 2, 3}
	opts := func(backend, tune string) ocelot.Options {
		return ocelot.Options{Backend: backend, Device: "0", NGPULayers: 99, NCtx: 32, NoPrefixReuse: true, Tune: tune}
	}
	eval := func(m *ocelot.Model) ([]float32, error) {
		s, err := m.NewSession()
		if err != nil {
			return nil, err
		}
		defer s.Close()
		return s.Eval(context.Background(), prompt)
	}
	count := func(tune string) counter {
		c := counter{}
		opencl.SetCallHook(c.hook)
		m, err := ocelot.Load(path, opts("opencl", tune))
		opencl.SetCallHook(nil)
		if err != nil {
			t.Fatal(err)
		}
		m.Close()
		return c
	}
	off, tuned := count("off"), count("quick")
	m, err := ocelot.Load(path, opts("opencl", "off"))
	if err != nil {
		t.Fatal(err)
	}
	base, err := eval(m)
	m.Close()
	if err != nil {
		t.Fatal(err)
	}
	res := tally{}
	for _, call := range []string{"clEnqueueNDRangeKernel", "clEnqueueReadBuffer", "clEnqueueWriteBuffer", "clFinish"} {
		lo, hi := off[call], tuned[call]
		if hi <= lo {
			t.Errorf("%s: %d calls untuned, %d tuning: the tuner makes none", call, lo, hi)
			continue
		}
		// The first call of the tuner (the generic GEMV's) and one a
		// third of the way in (a candidate's; how many calls the tuner
		// makes depends on its timings, so not one near the end).
		for _, n := range []int{lo + 1, lo + (hi-lo)/3} {
			for _, fc := range faultCodes {
				o := res.get("tune", call)
				o.cases++
				noPanic(t, fmt.Sprintf("%s #%d %s", call, n, fc.name), func() {
					in := &injector{call: call, n: n, code: fc.code}
					opencl.SetCallHook(in.hook)
					m, err := ocelot.Load(path, opts("opencl", "quick"))
					opencl.SetCallHook(nil)
					if !in.fired {
						t.Logf("%s #%d: not reached (the tuner's calls vary with its timings)", call, n)
						if err == nil {
							m.Close()
						}
						return
					}
					if err != nil {
						o.errs++
						if o.example == "" {
							o.example = err.Error()
						}
						if !namesFault(err, call, fc.name, fc.code) {
							t.Errorf("%s #%d %s: error %q does not name the call and the status", call, n, fc.name, err)
						}
						in = &injector{call: call, n: n, code: fc.code}
						opencl.SetCallHook(in.hook)
						m3, err := ocelot.Load(path, opts("auto", "quick"))
						opencl.SetCallHook(nil)
						if err != nil {
							o.loadErrs++
							t.Errorf("%s #%d %s: --backend auto: %v", call, n, fc.name, err)
							return
						}
						defer m3.Close()
						if m3.Backend() == "cpu" {
							o.fallback++
							return
						}
						// The tuner's calls vary with its timings: under auto
						// the same call number may have hit a candidate, a
						// fault it tolerates. Then the model must be right.
						got, err := eval(m3)
						if e := metric.NMSE(base, got); err != nil || !(e <= metric.MatMulNMSE) {
							t.Errorf("%s #%d %s: --backend auto runs %s after the fault, and Eval: %v (NMSE %.3g)", call, n, fc.name, m3.Backend(), err, e)
						}
						return
					}
					o.tolerated++
					o.tolAt = append(o.tolAt, n)
					got, err := eval(m)
					m.Close()
					if e := metric.NMSE(base, got); err != nil || !(e <= metric.MatMulNMSE) {
						t.Errorf("%s #%d %s: tolerated while tuning, then Eval: %v (NMSE %.3g against the untuned logits)", call, n, fc.name, err, e)
					}
				})
			}
		}
	}
	res.log(t)
}
