package opencl

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ocelot-llm/ocelot/graph"
	"github.com/ocelot-llm/ocelot/quant"
)

func TestErrorText(t *testing.T) {
	e := &Error{Call: "clEnqueueNDRangeKernel", Object: "mul_mat_q4_0", Code: -5}
	if got, want := e.Error(), "opencl: clEnqueueNDRangeKernel(mul_mat_q4_0): CL_OUT_OF_RESOURCES (-5)"; got != want {
		t.Fatalf("%q, want %q", got, want)
	}
	if got := (&Error{Call: "clFinish", Code: -9998}).Error(); got != "opencl: clFinish: CL_UNKNOWN_ERROR (-9998)" {
		t.Fatalf("%q", got)
	}
	if !IsOutOfMemory(fmt.Errorf("wrapped: %w", &Error{Call: "clCreateBuffer", Code: -4})) || IsOutOfMemory(e) == false {
		t.Fatal("out-of-memory statuses are not recognised")
	}
	if IsOutOfMemory(&Error{Call: "clBuildProgram", Code: -11}) {
		t.Fatal("a build failure is not out of memory")
	}
	for code := int32(-72); code <= 0; code++ {
		if (code >= -19 || code <= -30) && codeName(code) == "CL_UNKNOWN_ERROR" {
			t.Errorf("status %d has no name", code)
		}
	}
}

// withHook makes the named OpenCL call fail with status until the test
// ends.
func withHook(t *testing.T, name string, status int32) {
	t.Helper()
	callHook = func(n string) int32 {
		if n == name {
			return status
		}
		return 0
	}
	t.Cleanup(func() { callHook = nil })
}

// TestCallFailures makes each OpenCL call that a forward pass uses fail in
// turn: the error names the call and the status, nothing panics, and once
// the call works again the backend computes correct results.
func TestCallFailures(t *testing.T) {
	b := testBackend(t)
	rng := rand.New(rand.NewPCG(9, 1))
	const k, m, n = 64, 40, 3
	w := leaf(t, "w", quant.Q4_0, k, m, randn(rng, k*m, 0.1))
	defer b.Free(w)
	xv := randn(rng, k*n, 1)
	run := func() ([]float32, error) {
		if err := b.Load(w); err != nil {
			return nil, err
		}
		x := act("x", k, n)
		y := &graph.Tensor{Name: "y", Op: graph.OpMulMat, Type: quant.F32, Shape: [4]int{m, n, 1, 1}, Src: [4]*graph.Tensor{w, x}, Kind: graph.Intermediate}
		y.Offset = 1024
		ar, err := b.NewArena(4096)
		if err != nil {
			return nil, err
		}
		defer ar.Free()
		if err := b.Write(ar, x, xv); err != nil {
			return nil, err
		}
		if err := b.Compute(ar, []*graph.Tensor{y}); err != nil {
			b.Sync()
			return nil, err
		}
		out := make([]float32, m*n)
		if err := b.Read(ar, y, out); err != nil {
			b.Sync()
			return nil, err
		}
		return out, b.Sync()
	}
	want, err := run()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"clCreateBuffer", "clEnqueueWriteBuffer", "clSetKernelArg", "clEnqueueNDRangeKernel", "clFlush", "clEnqueueReadBuffer", "clFinish"} {
		t.Run(name, func(t *testing.T) {
			b.Free(w)
			withHook(t, name, clOutOfResources)
			_, err := run()
			var ce *Error
			if err == nil || !errors.As(err, &ce) || ce.Call != name || !strings.Contains(err.Error(), "CL_OUT_OF_RESOURCES (-5)") {
				t.Fatalf("error %v, want one naming %s and CL_OUT_OF_RESOURCES", err, name)
			}
			callHook = nil
			got, err := run()
			if err != nil {
				t.Fatalf("after the failure: %v", err)
			}
			checkNMSE(t, "after the failure", want, got, 0)
		})
	}
}

func TestOutOfMemory(t *testing.T) {
	b := testBackend(t)
	rng := rand.New(rand.NewPCG(10, 1))
	w := leaf(t, "blk.3.ffn_down.weight", quant.Q8_0, 256, 64, randn(rng, 256*64, 1))
	withHook(t, "clCreateBuffer", clMemObjectAllocationFailure)
	err := b.Load(w)
	if err == nil || !strings.Contains(err.Error(), "out of device memory") || !strings.Contains(err.Error(), "-ngl") ||
		!strings.Contains(err.Error(), "CL_MEM_OBJECT_ALLOCATION_FAILURE") || !strings.Contains(err.Error(), "blk.3.ffn_down.weight") {
		t.Fatalf("error %v", err)
	}
	callHook = nil
	if _, err := b.NewArena(b.info.GlobalMem + 1); err == nil || !strings.Contains(err.Error(), "-ngl") {
		t.Fatalf("an arena larger than the device: %v", err)
	}
	b.mu.Lock()
	saved := b.info.MaxAlloc
	b.info.MaxAlloc = 1024
	b.mu.Unlock()
	err = b.Load(w)
	b.mu.Lock()
	b.info.MaxAlloc = saved
	b.mu.Unlock()
	if err == nil || !strings.Contains(err.Error(), "CL_DEVICE_MAX_MEM_ALLOC_SIZE") || !strings.Contains(err.Error(), "-ngl") {
		t.Fatalf("a tensor larger than the largest allocation: %v", err)
	}
	if err := b.Load(w); err != nil {
		t.Fatal(err)
	}
	b.Free(w)
}

func TestOpenFailures(t *testing.T) {
	testBackend(t)
	for _, name := range []string{"clCreateContext", "clCreateCommandQueue", "clCreateProgramWithSource", "clBuildProgram", "clCreateKernel", "clGetKernelWorkGroupInfo", "clEnqueueNDRangeKernel"} {
		t.Run(name, func(t *testing.T) {
			withHook(t, name, clOutOfHostMemory)
			b, err := Open(Options{Device: -1, CacheDir: "-", Generic: true})
			if err == nil {
				b.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), name) {
				t.Fatalf("error %v does not name %s", err, name)
			}
		})
	}
}

// TestVariantFallback starts from a kernel variant the device cannot
// build (sub-groups on a device without them): Open logs the failure and
// uses the generic kernels.
func TestVariantFallback(t *testing.T) {
	b := testBackend(t)
	if b.info.SubgroupsKHR {
		t.Skip("the device has cl_khr_subgroups")
	}
	forceVariant = &variant{subgroups: "khr"}
	defer func() { forceVariant = nil }()
	var logs []string
	b2, err := Open(Options{Device: -1, CacheDir: "-", Logf: func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	if b2.start.Variant != "generic" || len(logs) == 0 || !strings.Contains(logs[0], "subgroups-khr kernels unusable") || !strings.Contains(logs[0], "trying generic") {
		t.Fatalf("variant %s, logs %q", b2.start.Variant, logs)
	}
}

// TestVariants opens the device with each kernel variant its
// capabilities allow and reports which pass the self-test (the device
// run's record of the fast paths). The validated ones must pass.
func TestVariants(t *testing.T) {
	b := testBackend(t)
	if k := os.Getenv("OCELOT_OPENCL_KERNELS"); k != "" {
		// A variant that faults can leave the driver unusable for the
		// rest of the process; with a pinned variant, try only that.
		t.Skipf("OCELOT_OPENCL_KERNELS=%s", k)
	}
	for _, v := range availableVariants(&b.info) {
		forceVariant = &v
		var logs []string
		b2, err := Open(Options{Device: -1, CacheDir: "-", Logf: func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }})
		forceVariant = nil
		switch {
		case err != nil && v.validated():
			t.Errorf("%s kernels: %v", v, err)
		case err != nil:
			t.Logf("variant %s: %v", v, err)
		case b2.variant != v && v.validated():
			t.Errorf("variant %s: fell back to %s: %s", v, b2.variant, strings.Join(logs, "; "))
		case b2.variant != v:
			t.Logf("variant %s: fell back to %s: %s", v, b2.variant, strings.Join(logs, "; "))
		default:
			t.Logf("variant %s: passes the self-test (built in %v, self-test %v)", v, b2.start.Build.Round(time.Millisecond), b2.start.SelfTest.Round(time.Millisecond))
		}
		if b2 != nil {
			b2.Close()
		}
	}
}

func TestProgramCache(t *testing.T) {
	b := testBackend(t)
	src := "kernel void twice(global float* x) { x[get_global_id(0)] *= 2.0f; }\n"
	dir := t.TempDir()
	cold, err := buildProgram(b.a, b.ctx, &b.info, src, "-cl-std=CL1.2", dir)
	if err != nil {
		t.Fatal(err)
	}
	if cold.fromCache {
		t.Fatal("cold build came from the cache")
	}
	if err := saveBinary(b.a, cold.prog, cold.cacheFile); err != nil {
		t.Fatal(err)
	}
	b.a.freeProgram(cold.prog)
	if _, err := os.Stat(cold.cacheFile); err != nil || filepath.Dir(cold.cacheFile) != dir {
		t.Fatalf("no binary in the cache: %v", err)
	}
	warm, err := buildProgram(b.a, b.ctx, &b.info, src, "-cl-std=CL1.2", dir)
	if err != nil {
		t.Fatal(err)
	}
	b.a.freeProgram(warm.prog)
	if !warm.fromCache {
		t.Fatal("the second build did not use the cache")
	}
	t.Logf("tiny program: cold %v, warm %v", cold.took, warm.took)
	// Other options or source are another entry; a corrupt binary is
	// rebuilt and replaced.
	if other := cacheKey(&b.info, "-cl-std=CL1.2 -DX", src); filepath.Join(dir, other+".bin") == cold.cacheFile {
		t.Fatal("the key ignores the build options")
	}
	if err := os.WriteFile(cold.cacheFile, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	again, err := buildProgram(b.a, b.ctx, &b.info, src, "-cl-std=CL1.2", dir)
	if err != nil {
		t.Fatalf("a corrupt cache entry: %v", err)
	}
	if again.fromCache {
		t.Fatal("a corrupt binary was used")
	}
	if err := saveBinary(b.a, again.prog, again.cacheFile); err != nil {
		t.Fatal(err)
	}
	b.a.freeProgram(again.prog)
	if fi, err := os.Stat(cold.cacheFile); err != nil || fi.Size() == int64(len("garbage")) {
		t.Fatal("the corrupt binary was not replaced")
	}
}

func TestProfile(t *testing.T) {
	testBackend(t)
	b, err := Open(Options{Device: -1, Profile: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.ResetProfile() // drop the self-test's kernels
	rng := rand.New(rand.NewPCG(11, 1))
	w := leaf(t, "w", quant.Q4_0, 256, 64, randn(rng, 256*64, 0.1))
	x := act("x", 256, 2)
	y := &graph.Tensor{Name: "y", Op: graph.OpMulMat, Type: quant.F32, Shape: [4]int{64, 2, 1, 1}, Src: [4]*graph.Tensor{w, x}}
	runNodes(t, b, []*graph.Tensor{y}, map[*graph.Tensor][]float32{x: randn(rng, 512, 1)})
	p := b.Profile()
	if len(p) != 1 || p[0].Kernel != "mul_mwt_q4_0" || p[0].Launches != 1 || p[0].Device <= 0 || p[0].Device > time.Minute {
		t.Fatalf("profile %+v", p)
	}
}
