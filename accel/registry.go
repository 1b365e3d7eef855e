package accel

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Config is what opening an accelerator takes.
type Config struct {
	Device  int                           // device index (-1: the backend's default choice)
	Profile bool                          // time every op (Backend.Profile)
	Logf    func(format string, a ...any) // where the backend logs (nil: nowhere)
	// Auto is set when the backend is being chosen automatically
	// (--backend auto): it should then take only devices that are worth
	// it (a GPU, not a CPU OpenCL device) unless Device names one.
	Auto bool
}

// Factory opens an accelerator backend. Plugins register one in init.
type Factory struct {
	Name  string // what --backend takes: "opencl"
	Title string // how people write it: "OpenCL"
	// Open opens the backend and runs its self-test; an error means the
	// backend cannot be used here, and says why.
	Open func(Config) (Backend, error)
	// Devices lists the devices Open can take, as Config.Device numbers
	// them; an error says why there are none.
	Devices func() ([]Device, error)
}

// Listing is one registered backend's devices, or why it has none.
type Listing struct {
	Backend, Title string
	Devices        []Device
	Err            error
}

// Devices lists the devices of every registered accelerator, in the
// order of Registered.
func Devices() []Listing {
	var out []Listing
	for _, n := range Registered() {
		f, _ := lookup(n)
		l := Listing{Backend: n, Title: f.Title}
		if f.Devices != nil {
			l.Devices, l.Err = f.Devices()
		}
		out = append(out, l)
	}
	return out
}

// Open opens the named accelerator with its self-test (the way
// --backend NAME does, without the automatic choice).
func Open(name string, cfg Config) (Backend, error) {
	f, ok := lookup(name)
	if !ok {
		return nil, fmt.Errorf("accel: backend %q is not available (have %s)", name, strings.Join(append([]string{"cpu"}, Registered()...), ", "))
	}
	b, err := f.Open(cfg)
	if err != nil {
		return nil, fmt.Errorf("accel: %w", named(name, err))
	}
	return b, nil
}

var registry struct {
	sync.Mutex
	m map[string]Factory
}

// Register makes an accelerator available under its name.
func Register(f Factory) {
	registry.Lock()
	defer registry.Unlock()
	if registry.m == nil {
		registry.m = map[string]Factory{}
	}
	registry.m[f.Name] = f
}

// Registered lists the accelerators compiled in.
func Registered() []string {
	registry.Lock()
	defer registry.Unlock()
	var names []string
	for n := range registry.m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func lookup(name string) (Factory, bool) {
	registry.Lock()
	defer registry.Unlock()
	f, ok := registry.m[name]
	return f, ok
}

// Select opens the accelerator a --backend value asks for: none for
// "cpu"; the named one for "opencl" (an error if it cannot be used); for
// "auto" the first registered accelerator that opens and passes its
// self-test, or none. The reason says, in one line, which was chosen and
// why.
func Select(name string, cfg Config) (Backend, string, error) {
	switch name {
	case "cpu":
		return nil, "backend cpu: chosen by --backend cpu", nil
	case "auto":
		var why []string
		cfg.Auto = true
		for _, n := range Registered() {
			f, _ := lookup(n)
			b, err := f.Open(cfg)
			if err == nil {
				return b, fmt.Sprintf("backend %s: %s passed its self-test", n, b.Device()), nil
			}
			why = append(why, named(n, err).Error())
		}
		if len(why) == 0 {
			return nil, "backend cpu: no accelerator is compiled in", nil
		}
		return nil, fmt.Sprintf("backend cpu: no accelerator available (%s)", strings.Join(why, "; ")), nil
	default:
		b, err := Open(name, cfg)
		if err != nil {
			return nil, "", err
		}
		return b, fmt.Sprintf("backend %s: %s, chosen by --backend %s", name, b.Device(), name), nil
	}
}

// named prefixes a backend's error with its name unless the error already
// starts with it ("opencl: ..."), so messages do not say it twice.
func named(name string, err error) error {
	if strings.HasPrefix(err.Error(), name+":") {
		return err
	}
	return fmt.Errorf("%s: %w", name, err)
}
