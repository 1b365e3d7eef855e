package opencl

// A driver that reports absurd numbers (issue: "a driver that returns
// absurd sizes or device counts panics or OOMs even under --backend
// auto"). valueHook rewrites what a query returns, before ocelot checks
// and uses it; every class of absurd value must give one *ValueError that
// names the call, the enumerant and the value, make Open fail and make
// --backend auto run on the CPU, never panic or allocate that much.

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ocelot-llm/ocelot/accel"
)

// withValue makes the query (call, param) report f(v) instead of v until
// the test ends; param 0 is the count of clGetPlatformIDs or
// clGetDeviceIDs.
func withValue(t *testing.T, call string, param uint32, f func(v uint64) uint64) {
	t.Helper()
	valueHook = func(c string, p uint32, v uint64) uint64 {
		if c == call && p == param {
			return f(v)
		}
		return v
	}
	t.Cleanup(func() { valueHook = nil })
}

func constant(n uint64) func(uint64) uint64 { return func(uint64) uint64 { return n } }

// noPanicDo runs f and fails the test if it panics.
func noPanicDo(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("%s panicked: %v", what, r)
		}
	}()
	f()
}

// wantValueError checks that err is a *ValueError for call and param with
// value v, and that its text says all of it and the words in want.
func wantValueError(t *testing.T, err error, call string, param uint32, v uint64, want ...string) {
	t.Helper()
	var ve *ValueError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T), want a *ValueError", err, err)
	}
	if ve.Call != call || ve.Param != paramName(param) || ve.Value != v {
		t.Fatalf("ValueError{%q, %q, %d}, want {%q, %q, %d}: %v", ve.Call, ve.Param, ve.Value, call, paramName(param), v, err)
	}
	s := err.Error()
	for _, w := range append([]string{call, paramName(param), fmt.Sprint(v)}, want...) {
		if !strings.Contains(s, w) {
			t.Fatalf("error %q does not say %q", s, w)
		}
	}
	if strings.Contains(s, "\n") {
		t.Fatalf("error %q is more than one line", s)
	}
}

// globalRange is the smallest and largest global memory of the devices
// listed: the hooks rewrite a query for every device at once.
func globalRange(t *testing.T, b *Backend) (lo, hi uint64) {
	t.Helper()
	ds, err := listDevices(b.a)
	if err != nil {
		t.Fatal(err)
	}
	lo = ^uint64(0)
	for _, d := range ds {
		lo, hi = min(lo, uint64(d.GlobalMem)), max(hi, uint64(d.GlobalMem))
	}
	return lo, hi
}

func TestAbsurdValues(t *testing.T) {
	b := testBackend(t)
	// Over the largest device's memory is over every device's.
	_, global := globalRange(t, b)
	cases := []struct {
		name  string
		call  string
		param uint32
		f     func(uint64) uint64
		value uint64 // what the error must name
		want  []string
	}{
		{"huge platform count", "clGetPlatformIDs", 0, constant(1<<32 - 1), 1<<32 - 1,
			[]string{"opencl: clGetPlatformIDs reports 4294967295 platforms; at most 64 are accepted"}},
		{"65 platforms", "clGetPlatformIDs", 0, constant(65), 65, []string{"at most 64"}},
		{"huge device count", "clGetDeviceIDs", 0, constant(1<<32 - 1), 1<<32 - 1,
			[]string{"opencl: clGetDeviceIDs reports 4294967295 devices on platform 0; at most 256 are accepted"}},
		{"257 devices", "clGetDeviceIDs", 0, constant(257), 257, []string{"at most 256"}},
		{"huge platform name", "clGetPlatformInfo", clPlatformName, constant(1 << 40), 1 << 40,
			[]string{"clGetPlatformInfo(CL_PLATFORM_NAME) reports a length of 1099511627776 bytes; at most 1048576 are accepted"}},
		{"huge platform version", "clGetPlatformInfo", clPlatformVersion, constant(1<<64 - 1), 1<<64 - 1, nil},
		{"huge device name", "clGetDeviceInfo", clDeviceName, constant(1 << 40), 1 << 40,
			[]string{"clGetDeviceInfo(CL_DEVICE_NAME) reports a length of 1099511627776 bytes", "device 0 of platform 0"}},
		{"extensions just over 1 MiB", "clGetDeviceInfo", clDeviceExtensions, constant(1<<20 + 1), 1<<20 + 1, nil},
		{"huge driver version", "clGetDeviceInfo", clDriverVersion, constant(1<<64 - 1), 1<<64 - 1, nil},
		{"zero work-group size", "clGetDeviceInfo", clDeviceMaxWorkGroupSize, constant(0), 0,
			[]string{"CL_DEVICE_MAX_WORK_GROUP_SIZE) reports 0; 1 to 65536 are accepted"}},
		{"huge work-group size", "clGetDeviceInfo", clDeviceMaxWorkGroupSize, constant(1 << 17), 1 << 17, nil},
		{"negative work-group size", "clGetDeviceInfo", clDeviceMaxWorkGroupSize, constant(1 << 63), 1 << 63, nil},
		{"zero compute units", "clGetDeviceInfo", clDeviceMaxComputeUnits, constant(0), 0, nil},
		{"huge compute units", "clGetDeviceInfo", clDeviceMaxComputeUnits, constant(1<<32 - 1), 1<<32 - 1, nil},
		{"zero global memory", "clGetDeviceInfo", clDeviceGlobalMemSize, constant(0), 0, nil},
		{"negative global memory", "clGetDeviceInfo", clDeviceGlobalMemSize, constant(1 << 63), 1 << 63, []string{"bytes"}},
		{"huge local memory", "clGetDeviceInfo", clDeviceLocalMemSize, constant(1 << 62), 1 << 62, nil},
		{"local memory over global", "clGetDeviceInfo", clDeviceLocalMemSize, constant(global + 1), global + 1,
			[]string{"more than CL_DEVICE_GLOBAL_MEM_SIZE"}},
		{"zero max alloc", "clGetDeviceInfo", clDeviceMaxMemAllocSize, constant(0), 0, nil},
		{"max alloc over global", "clGetDeviceInfo", clDeviceMaxMemAllocSize, constant(global + 1), global + 1,
			[]string{"more than CL_DEVICE_GLOBAL_MEM_SIZE ("}},
		{"negative max alloc", "clGetDeviceInfo", clDeviceMaxMemAllocSize, constant(1<<64 - 1), 1<<64 - 1, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			withValue(t, c.call, c.param, c.f)
			noPanicDo(t, "listDevices", func() {
				_, err := listDevices(b.a)
				wantValueError(t, err, c.call, c.param, c.value, c.want...)
			})
			var openErr error
			noPanicDo(t, "Open", func() {
				b2, err := Open(Options{Device: -1, CacheDir: "-", Generic: true})
				if err == nil {
					b2.Close()
					t.Fatal("Open succeeded")
				}
				wantValueError(t, err, c.call, c.param, c.value)
				openErr = err
			})
			// --backend opencl fails with the error; --backend auto runs
			// on the CPU and says why.
			noPanicDo(t, "Select", func() {
				msg := openErr.Error()
				var ve *ValueError
				acc, _, err := accel.Select("opencl", accel.Config{Device: -1})
				if acc != nil {
					acc.Close()
				}
				if err == nil || !errors.As(err, &ve) || !strings.Contains(err.Error(), msg) {
					t.Fatalf("--backend opencl: %v, want %q", err, msg)
				}
				acc, reason, err := accel.Select("auto", accel.Config{Device: -1})
				if acc != nil {
					acc.Close()
				}
				if err != nil || acc != nil || !strings.HasPrefix(reason, "backend cpu: ") || !strings.Contains(reason, msg) {
					t.Fatalf("--backend auto: %v, %q, want the CPU and the reason %q", err, reason, msg)
				}
				t.Logf("auto: %s", reason)
			})
		})
	}
}

// TestSaneValuesAtTheBounds reports values at the bounds (which the
// driver then corrects, or which it really reports): they are accepted.
func TestSaneValuesAtTheBounds(t *testing.T) {
	b := testBackend(t)
	smallest, _ := globalRange(t, b)
	want, err := listDevices(b.a)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		call  string
		param uint32
		n     uint64
	}{
		// Counts: the driver fills what it has and says how many.
		{"64 platforms", "clGetPlatformIDs", 0, maxPlatforms},
		{"256 devices", "clGetDeviceIDs", 0, maxDevices},
		// Lengths: a larger buffer than needed takes the whole string.
		{"1 MiB device name", "clGetDeviceInfo", clDeviceName, maxInfoBytes},
		{"1 MiB platform name", "clGetPlatformInfo", clPlatformName, maxInfoBytes},
		{"work-group size 65536", "clGetDeviceInfo", clDeviceMaxWorkGroupSize, maxWorkGroup},
		{"work-group size 1", "clGetDeviceInfo", clDeviceMaxWorkGroupSize, 1},
		{"1 compute unit", "clGetDeviceInfo", clDeviceMaxComputeUnits, 1},
		{"max alloc = smallest global", "clGetDeviceInfo", clDeviceMaxMemAllocSize, smallest},
	} {
		t.Run(c.name, func(t *testing.T) {
			withValue(t, c.call, c.param, constant(c.n))
			got, err := listDevices(b.a)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) || got[0].Name != want[0].Name || got[0].Platform != want[0].Platform {
				t.Fatalf("listed %d devices (%q on %q), want %d (%q on %q)", len(got), got[0].Name, got[0].Platform, len(want), want[0].Name, want[0].Platform)
			}
		})
	}
}

// TestAbsurdKernelValues: clGetKernelWorkGroupInfo reporting a work-group
// size or multiple of 0 or over 65536, or an absurd local memory size, is
// an error naming the kernel; a zero or huge CL_KERNEL_WORK_GROUP_SIZE
// makes Open fail.
func TestAbsurdKernelValues(t *testing.T) {
	b := testBackend(t)
	var name string
	var kr *kernel
	for name, kr = range b.kernels {
		break
	}
	if kr == nil {
		t.Fatal("the backend has no kernels")
	}
	for _, c := range []struct {
		param uint32
		v     uint64
	}{
		{clKernelWorkGroupSize, 0}, {clKernelWorkGroupSize, 1<<16 + 1}, {clKernelWorkGroupSize, 1<<64 - 1},
		{clKernelPreferredWGSMultiple, 0}, {clKernelPreferredWGSMultiple, 1 << 40},
		{clKernelLocalMemSize, 1 << 63},
	} {
		t.Run(fmt.Sprintf("%s=%d", paramName(c.param), c.v), func(t *testing.T) {
			withValue(t, "clGetKernelWorkGroupInfo", c.param, constant(c.v))
			v, err := b.a.kernelWGInfo(kr.k, b.info.id, name, c.param)
			wantValueError(t, err, "clGetKernelWorkGroupInfo", c.param, c.v, "for kernel "+name)
			if v != 0 {
				t.Fatalf("the value %d is returned with the error", v)
			}
		})
	}
	// The real values pass.
	for _, p := range []uint32{clKernelWorkGroupSize, clKernelPreferredWGSMultiple, clKernelLocalMemSize} {
		if _, err := b.a.kernelWGInfo(kr.k, b.info.id, name, p); err != nil {
			t.Fatalf("%s: %v", paramName(p), err)
		}
	}
	for _, v := range []uint64{0, 1 << 17} {
		t.Run(fmt.Sprintf("Open/CL_KERNEL_WORK_GROUP_SIZE=%d", v), func(t *testing.T) {
			withValue(t, "clGetKernelWorkGroupInfo", clKernelWorkGroupSize, constant(v))
			b2, err := Open(Options{Device: -1, CacheDir: "-", Generic: true})
			if err == nil {
				b2.Close()
				t.Fatal("Open succeeded")
			}
			wantValueError(t, err, "clGetKernelWorkGroupInfo", clKernelWorkGroupSize, v, "1 to 65536 are accepted")
		})
	}
}

// TestAbsurdProgramSizes: a program binary or build log of absurd length
// is not allocated.
func TestAbsurdProgramSizes(t *testing.T) {
	b := testBackend(t)
	p, err := b.a.programFromSource(b.ctx, "kernel void twice(global float* x) { x[get_global_id(0)] *= 2.0f; }\n")
	if err != nil {
		t.Fatal(err)
	}
	defer b.a.freeProgram(p)
	if err := b.a.build(p, b.info.id, "-cl-std=CL1.2"); err != nil {
		t.Fatal(err)
	}
	t.Run("binary", func(t *testing.T) {
		withValue(t, "clGetProgramInfo", clProgramBinarySizes, constant(1<<62))
		bin, err := b.a.binary(p)
		wantValueError(t, err, "clGetProgramInfo", clProgramBinarySizes, 1<<62, "at most 1073741824 are accepted")
		if bin != nil {
			t.Fatal("a binary is returned with the error")
		}
		// saveBinary (the program-binary cache) passes it on and writes
		// nothing.
		dir := t.TempDir()
		if err := saveBinary(b.a, p, dir+"/x.bin"); !errors.As(err, new(*ValueError)) {
			t.Fatalf("saveBinary: %v", err)
		}
	})

	bad, err := b.a.programFromSource(b.ctx, "kernel void broken(global float* x) { x[0] = undefined_name; }\n")
	if err != nil {
		t.Fatal(err)
	}
	defer b.a.freeProgram(bad)
	if err := b.a.build(bad, b.info.id, "-cl-std=CL1.2"); err == nil {
		t.Fatal("a broken program built")
	}
	if log := b.a.buildLog(bad, b.info.id); !strings.Contains(log, "undefined_name") {
		t.Logf("the build log does not name the error: %q", log)
	}
	t.Run("build log", func(t *testing.T) {
		withValue(t, "clGetProgramBuildInfo", clProgramBuildLog, constant(1<<62))
		log := b.a.buildLog(bad, b.info.id)
		if !strings.Contains(log, "the build log is not read") || !strings.Contains(log, "clGetProgramBuildInfo(CL_PROGRAM_BUILD_LOG) reports a length of 4611686018427387904 bytes") {
			t.Fatalf("build log %q", log)
		}
	})
}

// TestValueHookSeesQueries: the hook is consulted for each kind of query
// the device listing makes.
func TestValueHookSeesQueries(t *testing.T) {
	b := testBackend(t)
	seen := map[string]bool{}
	valueHook = func(c string, p uint32, v uint64) uint64 {
		seen[c+" "+paramName(p)] = true
		return v
	}
	defer func() { valueHook = nil }()
	if _, err := listDevices(b.a); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"clGetPlatformIDs ", "clGetDeviceIDs ", "clGetPlatformInfo CL_PLATFORM_NAME",
		"clGetDeviceInfo CL_DEVICE_EXTENSIONS", "clGetDeviceInfo CL_DEVICE_GLOBAL_MEM_SIZE", "clGetDeviceInfo CL_DEVICE_MAX_MEM_ALLOC_SIZE",
		"clGetDeviceInfo CL_DEVICE_LOCAL_MEM_SIZE", "clGetDeviceInfo CL_DEVICE_MAX_WORK_GROUP_SIZE", "clGetDeviceInfo CL_DEVICE_MAX_COMPUTE_UNITS"} {
		if !seen[k] {
			t.Errorf("the hook never saw %q (saw %v)", k, seen)
		}
	}
}
