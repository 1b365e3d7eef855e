package quant

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"unsafe"
)

// The roofline benchmarks measure the two ceilings of the machine at hand
// that docs/PERFORMANCE.md compares the CPU backend with:
//
//	go test -run '^$' -bench Roofline -count 5 ./quant
//
// RooflineMemRead is the memory-read bandwidth (the ceiling of decode, which
// streams every weight once per token), RooflineInt8 the int8 multiply-add
// rate of the fastest GEMM tile kernel on data that stays in cache (what
// prompt evaluation could reach at best), and RooflineClock the core clock,
// from which the theoretical int8 peak is clock × multiply-adds per cycle of
// the instruction set.

// roofSink keeps the results of the benchmark loops alive, so the compiler
// cannot drop the work that produced them.
var roofSink uint64

// sumWords returns the sum of x, read front to back with eight independent
// accumulators so that the adds keep pace with the loads.
func sumWords(x []uint64) uint64 {
	var s0, s1, s2, s3, s4, s5, s6, s7 uint64
	for len(x) >= 8 {
		s0 += x[0]
		s1 += x[1]
		s2 += x[2]
		s3 += x[3]
		s4 += x[4]
		s5 += x[5]
		s6 += x[6]
		s7 += x[7]
		x = x[8:]
	}
	for _, v := range x {
		s0 += v
	}
	return s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7
}

// parallel runs f(0), ..., f(g-1) on g goroutines and waits for them.
func parallel(g int, f func(i int)) {
	var wg sync.WaitGroup
	for i := range g {
		wg.Go(func() { f(i) })
	}
	wg.Wait()
}

// BenchmarkRooflineMemRead reads a 1 GiB buffer, split evenly between 1 or 2
// goroutines, and reports the bytes read per second, two ways: sum/ adds up
// its words in Go (sumWords), indexbyte/ searches it for a zero byte that is
// not there with bytes.IndexByte (the standard library's AVX2 loop). The
// buffer is written first: fresh anonymous memory reads as the kernel's
// shared zero page, which would measure a cache instead of DRAM. The cached/
// variant sums a 256 KiB slice per goroutine (inside a 1 MiB L2) over and
// over: it shows how fast the summing loop is when memory is not the limit.
func BenchmarkRooflineMemRead(b *testing.B) {
	const size = 1 << 30
	buf := make([]uint64, size/8)
	parallel(2, func(i int) {
		half := buf[i*len(buf)/2 : (i+1)*len(buf)/2]
		for j := range half {
			half[j] = uint64(j)*0x9e3779b97f4a7c15 | 0x8080808080808080 // no zero byte
		}
	})
	raw := unsafe.Slice((*byte)(unsafe.Pointer(&buf[0])), size)
	readers := []struct {
		name string
		read func(i, g int) uint64
	}{
		{"sum", func(i, g int) uint64 { return sumWords(buf[i*len(buf)/g : (i+1)*len(buf)/g]) }},
		{"indexbyte", func(i, g int) uint64 { return uint64(bytes.IndexByte(raw[i*size/g:(i+1)*size/g], 0) + 1) }},
	}
	for _, r := range readers {
		for _, g := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/g%d", r.name, g), func(b *testing.B) {
				b.SetBytes(size)
				sums := make([]uint64, g)
				for b.Loop() {
					parallel(g, func(i int) { sums[i] += r.read(i, g) })
				}
				b.ReportMetric(float64(size)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
				roofSink += sums[0] + sums[g-1]
			})
		}
	}
	for _, g := range []int{1, 2} {
		b.Run(fmt.Sprintf("cached/g%d", g), func(b *testing.B) {
			const words, reps = 256 << 10 / 8, 1024
			b.SetBytes(int64(g) * words * 8 * reps)
			sums := make([]uint64, g)
			for b.Loop() {
				parallel(g, func(i int) {
					x := buf[i*words : (i+1)*words]
					for range reps {
						sums[i] += sumWords(x)
					}
				})
			}
			b.ReportMetric(float64(g)*words*8*reps*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
			roofSink += sums[0] + sums[g-1]
		})
	}
}

// BenchmarkRooflineInt8 runs the active (fastest) path's Q4_0 GEMM tile
// kernel, the inner loop of prompt evaluation, on 1 or 2 goroutines, each
// with its own panel and full tile of 64 blocks (56 KiB with the 512-bit
// kernels: L1 and L2 resident). It reports int8 operations per second, two
// per multiply-add (the convention of "2 × params × tokens"), counting only
// the dot products, not the per-block scaling the kernel also does.
func BenchmarkRooflineInt8(b *testing.B) {
	tk := active().tile[qQ4_0]
	if tk == nil {
		b.Skipf("path %s has no Q4_0 tile kernel", KernelPath())
	}
	const nb = 64
	const calls = 1000 // per goroutine and iteration, to amortize starting goroutines
	for _, g := range []int{1, 2} {
		b.Run(fmt.Sprintf("%s/q4_0/T%d/g%d", KernelPath(), tk.tmax, g), func(b *testing.B) {
			type work struct {
				w, a []byte
				out  []float32
			}
			ws := make([]work, g)
			for i := range ws {
				ws[i] = work{make([]byte, tk.panelBytes(nb)), make([]byte, tk.tileBytes(nb, tk.tmax)), make([]float32, tk.tmax*tk.rows)}
			}
			for b.Loop() {
				parallel(g, func(i int) {
					w := &ws[i]
					for range calls {
						tk.run[tk.tmax](&w.w[0], &w.a[0], nb, &w.out[0], tk.rows)
					}
				})
			}
			macs := float64(g) * calls * nb * float64(tk.tmax*tk.rows*tk.elems()) * float64(b.N)
			b.ReportMetric(2*macs/b.Elapsed().Seconds()/1e9, "GOP/s")
		})
	}
}

// roofMul and roofXor are the operands of RooflineClock's chains, variables
// so that the compiler emits the instructions instead of folding them.
var roofMul, roofXor uint64 = 0x9e3779b97f4a7c15, 0x5555

// mulChain multiplies x by m 8*n times, each multiplication waiting for the
// one before. It is a function of its own so that x stays in a register.
//
//go:noinline
func mulChain(x, m uint64, n int) uint64 {
	for range n {
		x *= m
		x *= m
		x *= m
		x *= m
		x *= m
		x *= m
		x *= m
		x *= m
	}
	return x
}

// aluChain applies 8*n dependent one-cycle operations to x: adds and
// exclusive ors, alternating so that the compiler cannot merge them (it
// turns some adds into LEAs, which also take one cycle).
//
//go:noinline
func aluChain(x, m, k uint64, n int) uint64 {
	for range n {
		x += m
		x ^= k
		x += m
		x ^= k
		x += m
		x ^= k
		x += m
		x ^= k
	}
	return x
}

// BenchmarkRooflineClock estimates the core clock of one thread from chains
// of dependent instructions, which run at one instruction per latency:
// imul/ assumes 3 cycles for a 64-bit IMUL, alu/ 1 cycle for ADD and XOR
// (x86-64: AMD Zen 1 to 5, Intel since Sandy Bridge; other CPUs differ). The
// two agreeing is the check on the assumptions. Virtual machines rarely
// expose the clock or cycle counters, and the "cpu MHz" of /proc/cpuinfo is
// the TSC rate, not the core clock.
func BenchmarkRooflineClock(b *testing.B) {
	const n = 1 << 17
	b.Run("imul", func(b *testing.B) {
		x := uint64(1)
		for b.Loop() {
			x = mulChain(x, roofMul, n)
		}
		roofSink += x
		b.ReportMetric(3*8*n*float64(b.N)/b.Elapsed().Seconds()/1e9, "GHz")
	})
	b.Run("alu", func(b *testing.B) {
		x := uint64(1)
		for b.Loop() {
			x = aluChain(x, roofMul, roofXor, n)
		}
		roofSink += x
		b.ReportMetric(8*n*float64(b.N)/b.Elapsed().Seconds()/1e9, "GHz")
	})
}
