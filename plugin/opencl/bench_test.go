package opencl

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/ocelot-llm/ocelot/accel"
	"github.com/ocelot-llm/ocelot/gguf"
	"github.com/ocelot-llm/ocelot/graph"
	"github.com/ocelot-llm/ocelot/internal/testmodel"
	"github.com/ocelot-llm/ocelot/model"
	"github.com/ocelot-llm/ocelot/quant"
	"github.com/ocelot-llm/ocelot/ref"
	"github.com/ocelot-llm/ocelot/synth"
)

// TestSpeed measures prompt evaluation and decoding of a synthetic preset
// with every layer offloaded, and prints the kernel profile. It runs only
// when OCELOT_OPENCL_BENCH names a preset (say "1b"): it is a measurement,
// not a check.
func TestSpeed(t *testing.T) {
	preset := os.Getenv("OCELOT_OPENCL_BENCH")
	if preset == "" {
		t.Skip("set OCELOT_OPENCL_BENCH=<preset> to measure speed")
	}
	testBackend(t)
	b, err := Open(Options{Device: -1, Profile: true, Generic: os.Getenv("OCELOT_OPENCL_GENERIC") == "1"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	p, err := synth.PresetByName(preset)
	if err != nil {
		t.Fatal(err)
	}
	o := synth.DefaultOptions(p)
	o.Fast = true
	f, err := gguf.Open(testmodel.Path(t, o))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rm0, err := model.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	rm := ref.New(rm0)
	const nCtx, prompt, ubatch, gen = 1024, 512, 512, 64
	for _, kv := range []quant.Type{quant.F16, quant.Q4_0} {
		s := newSession(t, b, graph.NewModel(rm.Model), nCtx, kv, 99)
		rng := rand.New(rand.NewPCG(1, 2))
		toks := make([]int32, prompt)
		for i := range toks {
			toks[i] = int32(rng.IntN(rm.NVocab))
		}
		// Warm up (first launches compile nothing on GPUs, but page in).
		s.forward(toks[:ubatch], model.LogitsLast)
		s.pos = 0
		b.ResetProfile()
		start := time.Now()
		for u := 0; u < prompt; u += ubatch {
			s.forward(toks[u:u+ubatch], model.LogitsLast)
		}
		pp := time.Since(start)
		prof := b.Profile()
		b.ResetProfile()
		start = time.Now()
		tok := int32(1)
		for range gen {
			tok = argmax(s.forward([]int32{tok}, model.LogitsLast))
		}
		tg := time.Since(start)
		t.Logf("SPEED %s kv=%s on %s: prompt %d tokens in %v (%.1f tok/s), decode %d tokens in %v (%.2f ms/token, %.1f tok/s), device memory %.0f MiB",
			preset, kv, b.info.Name, prompt, pp.Round(time.Millisecond), float64(prompt)/pp.Seconds(), gen, tg.Round(time.Millisecond),
			tg.Seconds()*1000/gen, gen/tg.Seconds(), float64(b.MemoryUsed())/(1<<20))
		for i, k := range prof {
			if i < 12 {
				t.Logf("  prompt kernel %-20s %5d calls %9.3f ms", k.Kernel, k.Launches, k.Device.Seconds()*1000)
			}
		}
		var launches int
		var busy time.Duration
		for i, k := range b.Profile() {
			launches += k.Launches
			busy += k.Device
			if i < 12 {
				t.Logf("  decode kernel %-20s %5d calls %9.3f ms", k.Kernel, k.Launches, k.Device.Seconds()*1000)
			}
		}
		t.Logf("  decode: %.1f kernel launches per token, device busy %.3f ms per token of %.3f ms wall (the rest is host enqueue overhead, the logits read and gaps)",
			float64(launches)/gen, busy.Seconds()*1000/gen, tg.Seconds()*1000/gen)
		s.close()
	}
}

// TestGEMVSpeed times the decode GEMV alone on the shapes of an 8b model
// (Q4_0 4096x4096 and 14336x4096, the Q6_K output matrix 128256x4096, and
// a Q8_0 4096x4096) with event profiling, and prints the achieved memory
// bandwidth (weight bytes plus activations and outputs, per call). It runs
// only when OCELOT_OPENCL_BENCH is set (to anything);
// OCELOT_OPENCL_GEMV_ITERS sets the calls per shape (default 200) and
// OCELOT_OPENCL_GEMV_TOKENS the token counts (default "1,2,4,8,15").
func TestGEMVSpeed(t *testing.T) {
	if os.Getenv("OCELOT_OPENCL_BENCH") == "" {
		t.Skip("set OCELOT_OPENCL_BENCH=1 to time the GEMV")
	}
	testBackend(t)
	b, err := Open(Options{Device: -1, Profile: true, Generic: os.Getenv("OCELOT_OPENCL_GENERIC") == "1"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	iters := 200
	if v, err := strconv.Atoi(os.Getenv("OCELOT_OPENCL_GEMV_ITERS")); err == nil && v > 0 {
		iters = v
	}
	tokens := []int{1, 2, 4, 8, 15}
	if v := os.Getenv("OCELOT_OPENCL_GEMV_TOKENS"); v != "" {
		tokens = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				t.Fatalf("OCELOT_OPENCL_GEMV_TOKENS=%q", v)
			}
			tokens = append(tokens, n)
		}
	}
	t.Logf("GEMV on %s (%s, %d compute units), %s kernels", b.info.Name, b.info.Driver, b.info.Units, b.variant)
	shapes := []struct {
		typ  quant.Type
		k, m int
	}{
		{quant.Q4_0, 4096, 4096},
		{quant.Q4_0, 4096, 14336},
		{quant.Q4_0, 14336, 4096},
		{quant.Q6_K, 4096, 128256},
		{quant.Q8_0, 4096, 4096},
		{quant.F16, 4096, 4096},
	}
	rng := rand.New(rand.NewPCG(7, 9))
	for _, sh := range shapes {
		w := randomWeight(t, rng, sh.typ, sh.k, sh.m)
		if err := b.Load(w); err != nil {
			t.Fatal(err)
		}
		for _, n := range tokens {
			if n >= b.tune.mmMin && (b.tune.gemm || b.tune.tc) {
				continue // the GEMM's batches
			}
			x := act("x", sh.k, n)
			x.Offset = 0
			node := &graph.Tensor{Name: "y", Op: graph.OpMulMat, Type: quant.F32, Shape: [4]int{sh.m, n, 1, 1},
				Src: [4]*graph.Tensor{w, x}, Kind: graph.Intermediate, Backend: graph.Accel}
			node.Offset = (x.Bytes() + 255) / 256 * 256
			ar, err := b.NewArena(node.Offset + node.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			xv := randn(rng, sh.k*n, 1)
			if err := b.Write(ar, x, xv); err != nil {
				t.Fatal(err)
			}
			// Warm up, then time iters calls.
			for range 3 {
				if err := b.Compute(ar, []*graph.Tensor{node}); err != nil {
					t.Fatal(err)
				}
			}
			if err := b.Sync(); err != nil {
				t.Fatal(err)
			}
			b.ResetProfile()
			start := time.Now()
			for range iters {
				if err := b.Compute(ar, []*graph.Tensor{node}); err != nil {
					t.Fatal(err)
				}
			}
			if err := b.Sync(); err != nil {
				t.Fatal(err)
			}
			wall := time.Since(start)
			// One kernel ran: the GEMV (row-group form or not).
			prof := b.Profile()
			if len(prof) != 1 {
				t.Fatalf("profile has %d kernels, want 1: %v", len(prof), prof)
			}
			kt := prof[0]
			name := kt.Kernel
			if kt.Launches != iters {
				t.Fatalf("profile has %d calls of %s, want %d", kt.Launches, name, iters)
			}
			per := kt.Device / time.Duration(kt.Launches)
			bytes := float64(len(w.Data)) + float64(4*sh.k*n) + float64(4*sh.m*n)
			lanes, units := b.mvShape(name, sh.k, sh.m, n)
			t.Logf("GEMV %-5s %6d x %5d n=%-2d %-12s lanes=%-3d units=%-2d %8.2f us/call (device), %7.1f GB/s; wall %.2f us/call",
				sh.typ, sh.m, sh.k, n, name, lanes, units, float64(per.Nanoseconds())/1000, bytes/per.Seconds()/1e9,
				float64(wall.Nanoseconds())/1000/float64(iters))
			checkGEMVRows(t, b, ar, node, w, xv)
			ar.Free()
		}
		b.Free(w)
	}
}

// randomWeight is a weight of random bytes whose scales are valid halves
// (1/1024 for Q4_0 and Q8_0, 1/8192 for Q6_K), so no product overflows.
func randomWeight(tb testing.TB, rng *rand.Rand, typ quant.Type, k, m int) *graph.Tensor {
	tb.Helper()
	rs, err := quant.RowSize(typ, int64(k))
	if err != nil {
		tb.Fatal(err)
	}
	data := make([]byte, rs*int64(m))
	for i := 0; i+8 <= len(data); i += 8 {
		binary.LittleEndian.PutUint64(data[i:], rng.Uint64())
	}
	ts := typ.TypeSize()
	switch typ {
	case quant.Q4_0, quant.Q8_0:
		for i := 0; i < len(data); i += ts {
			binary.LittleEndian.PutUint16(data[i:], 0x1400)
		}
	case quant.Q6_K:
		for i := 0; i < len(data); i += ts {
			binary.LittleEndian.PutUint16(data[i+208:], 0x0c00)
		}
	case quant.F16:
		for i := 0; i < len(data); i += 2 {
			binary.LittleEndian.PutUint16(data[i:], 0x2000|uint16(data[i])&0x3ff)
		}
	}
	return &graph.Tensor{Name: fmt.Sprintf("w_%s_%dx%d", typ, m, k), Type: typ, Shape: [4]int{k, m, 1, 1}, Kind: graph.Weight, Data: data}
}

// checkGEMVRows compares a few rows of a product (the first four and the
// last, for the first and last token) with float64 sums on the CPU.
func checkGEMVRows(t *testing.T, b *Backend, ar accel.Arena, y, w *graph.Tensor, xv []float32) {
	t.Helper()
	k, m, n := w.Shape[0], w.Shape[1], y.Shape[1]
	got := make([]float32, m*n)
	if err := b.Read(ar, y, got); err != nil {
		t.Fatal(err)
	}
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	rs, _ := quant.RowSize(w.Type, int64(k))
	wr := make([]float32, k)
	for _, r := range []int{0, 1, 2, 3, m - 1} {
		if err := quant.Dequantize(w.Type, wr, w.Data[int64(r)*rs:int64(r+1)*rs]); err != nil {
			t.Fatal(err)
		}
		for _, tok := range []int{0, n - 1} {
			var s, mag float64
			for i, v := range wr {
				p := float64(v) * float64(xv[tok*k+i])
				s += p
				mag += math.Abs(p)
			}
			if d := math.Abs(float64(got[tok*m+r]) - s); d > 1e-4*mag+1e-6 {
				t.Errorf("%s row %d token %d: got %g, want %g", w.Name, r, tok, got[tok*m+r], s)
			}
		}
	}
}

// TestLaunchCost measures what one kernel launch costs the host, the
// floor under decode's host time: the same small kernel (add_f32 over
// 2,048 floats) enqueued n times back to back, (a) on one kernel object
// with unchanged arguments, (b) with one argument changed per launch, (c)
// on n/8 kernel objects in turn (as the per-node slots do), then the wait
// for the device. It runs only when OCELOT_OPENCL_BENCH is set.
func TestLaunchCost(t *testing.T) {
	if os.Getenv("OCELOT_OPENCL_BENCH") == "" {
		t.Skip("set OCELOT_OPENCL_BENCH=1 to time kernel launches")
	}
	testBackend(t)
	b, err := Open(Options{Device: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const width, n = 2048, 2000
	m, err := b.a.newBuffer(b.ctx, 3*4*width, "launch test")
	if err != nil {
		t.Fatal(err)
	}
	defer b.freeBuffer(m)
	run := func(what string, objects int, change bool) {
		ks := make([]clKernel, objects)
		for i := range ks {
			if ks[i], err = b.a.newKernel(b.prog, "add_f32"); err != nil {
				t.Fatal(err)
			}
		}
		defer func() {
			for _, k := range ks {
				b.a.freeKernel(k)
			}
		}()
		set := func(k clKernel, i int, v uint64, size uintptr) {
			b.launcher.argBuf[i] = v
			if err := b.a.setArg(k, "add_f32", uint32(i), size, unsafe.Pointer(&b.launcher.argBuf[i])); err != nil {
				t.Fatal(err)
			}
		}
		for _, k := range ks {
			set(k, 0, uint64(m), unsafe.Sizeof(m))
			set(k, 1, 0, 8)
			set(k, 2, uint64(m), unsafe.Sizeof(m))
			set(k, 3, 4*width, 8)
			set(k, 4, uint64(m), unsafe.Sizeof(m))
			set(k, 5, 8*width, 8)
			set(k, 6, width, 4)
			set(k, 7, width, 4)
		}
		gws := [3]uintptr{width, 1, 1}
		lws := [3]uintptr{256, 1, 1}
		for round := range 2 { // the first round warms up
			start := time.Now()
			for i := range n {
				k := ks[i%objects]
				if change {
					set(k, 7, uint64(width-i%2), 4)
				}
				if err := b.a.launch(b.q, k, "add_f32", 1, &gws, &lws, nil); err != nil {
					t.Fatal(err)
				}
			}
			enq := time.Since(start)
			if err := b.a.finishQueue(b.q); err != nil {
				t.Fatal(err)
			}
			wall := time.Since(start)
			if round == 1 {
				t.Logf("launch cost, %-34s enqueue %6.2f us/launch, until done %6.2f us/launch",
					what, float64(enq.Nanoseconds())/1000/n, float64(wall.Nanoseconds())/1000/n)
			}
		}
	}
	run("one kernel object, same arguments:", 1, false)
	run("one kernel object, one arg changed:", 1, true)
	run(fmt.Sprintf("%d kernel objects in turn:", n/8), n/8, false)
}
