package accel

import (
	"bufio"
	"errors"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ocelot-llm/ocelot/graph"
	"github.com/ocelot-llm/ocelot/quant"
)

// ErrNonFinite marks an error about NaN or infinite values in what a
// backend computed; the engine then looks for their cause in the model.
var ErrNonFinite = errors.New("NaN or Inf values")

// Caps is what a backend holds and runs, as data: the engine reads it to
// decide where weights and caches go, without probing with fake graphs.
// Supports still has the last word on each node's shapes.
type Caps struct {
	// WeightTypes are the weight types its products and lookups take.
	WeightTypes []quant.Type
	// KVTypes are the cache types it stores (SET_ROWS) and attends over.
	KVTypes []quant.Type
	// MaxHeadDim is the largest attention head it runs (0: any).
	MaxHeadDim int
	// Fusions are the fused ops (graph.Fuse) it may run as one kernel.
	Fusions []graph.Fusion
	// Timing says the backend times its ops when opened with
	// Config.Profile (Profile returns the times).
	Timing bool
}

// HoldsKV reports whether the backend stores and attends over a cache
// of these types and head size.
func (c Caps) HoldsKV(typeK, typeV quant.Type, headDim int) bool {
	has := func(t quant.Type) bool {
		for _, k := range c.KVTypes {
			if k == t {
				return true
			}
		}
		return false
	}
	return has(typeK) && has(typeV) && (c.MaxHeadDim == 0 || headDim <= c.MaxHeadDim)
}

// Memory is a device's memory, in bytes (0: unknown).
type Memory struct {
	Free     int64 // what a new allocation can still take
	Total    int64
	MaxAlloc int64 // the largest single allocation
}

// OpTime is one row of a backend's profile: an op (or fused op) as one
// kernel ran it, how often, and for how long in total on the device.
type OpTime struct {
	Op       string // "MUL_MAT", "rope_qkv", ...
	Kernel   string // the kernel, where the backend names them
	Launches int
	Device   time.Duration
}

// StartInfo says how opening a backend went: what it built, whether from
// a cache, and how long each step took (zero where it has no such step).
type StartInfo struct {
	Variant   string // the kernel variant built
	FromCache bool   // the program came from the binary cache
	CacheFile string
	Build     time.Duration
	SelfTest  time.Duration
	Total     time.Duration
}

// Device describes one device a backend can open, as the registry lists
// it for `ocelot devices`.
type Device struct {
	Backend   string // the backend that opens it: "opencl"
	Index     int    // what Config.Device (--device) takes
	Name      string
	Type      string // "GPU", "CPU", "accelerator" or "other"
	Vendor    string
	Group     string // the heading it is listed under (an OpenCL platform)
	Default   bool   // the device the backend takes without --device
	Available bool
	Memory    Memory
	// Details are the backend's facts about it, in order, for the text
	// listing; JSON is the backend's full description, for --json.
	Details [][2]string
	JSON    any
}

// HostMemory is the host's memory: MemAvailable and MemTotal on Linux;
// zero where it cannot be told.
func HostMemory() Memory {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return Memory{}
	}
	defer f.Close()
	var m Memory
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		kb, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			continue
		}
		switch fields[0] {
		case "MemAvailable:":
			m.Free = kb * 1024
		case "MemTotal:":
			m.Total = kb * 1024
		}
	}
	m.MaxAlloc = m.Free
	return m
}

// SortProfile orders a profile longest first, then by op and kernel.
func SortProfile(p []OpTime) {
	sort.Slice(p, func(i, j int) bool {
		if p[i].Device != p[j].Device {
			return p[i].Device > p[j].Device
		}
		if p[i].Op != p[j].Op {
			return p[i].Op < p[j].Op
		}
		return p[i].Kernel < p[j].Kernel
	})
}
