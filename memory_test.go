package ocelot_test

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/ocelot-llm/ocelot"
	"github.com/ocelot-llm/ocelot/internal/testmodel"
	"github.com/ocelot-llm/ocelot/sample"
	"github.com/ocelot-llm/ocelot/synth"
)

// rss is the process's resident set in bytes (Linux), or 0.
func rss() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// BenchmarkLoadRSS reports the resident memory a load adds, against the
// file's size: the CPU backend uses the memory-mapped weights in place, so
// loading copies nothing (pages come in as a forward pass touches them).
//
//	go test -run '^$' -bench LoadRSS -benchtime 1x .
func BenchmarkLoadRSS(b *testing.B) {
	path, st := fast1b(b)
	for i := 0; i < b.N; i++ {
		runtime.GC()
		before := rss()
		m, err := ocelot.Load(path, ocelot.Options{NCtx: 256, Backend: "cpu"})
		if err != nil {
			b.Fatal(err)
		}
		loaded := rss()
		s, _ := m.NewSession()
		if _, err := s.Eval(context.Background(), []int32{1, 2, 3, 4}); err != nil {
			b.Fatal(err)
		}
		evaluated := rss()
		s.Close()
		m.Close()
		b.ReportMetric(float64(st.Size())/(1<<20), "file-MiB")
		b.ReportMetric(float64(loaded-before)/(1<<20), "rss-after-load-MiB")
		b.ReportMetric(float64(evaluated-before)/(1<<20), "rss-after-eval-MiB")
	}
}

// BenchmarkGenerateNoGrowth runs 1,000 generate calls and reports the live
// heap after the first 100 and after all of them: it must not grow.
//
//	go test -run '^$' -bench GenerateNoGrowth -benchtime 1x .
func BenchmarkGenerateNoGrowth(b *testing.B) {
	m, err := ocelot.Load(testmodel.Preset(b, "tiny"), ocelot.Options{NCtx: 64, Backend: "cpu"})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	for i := 0; i < b.N; i++ {
		var at100 uint64
		for call := 1; call <= 1000; call++ {
			s, err := m.NewSession()
			if err != nil {
				b.Fatal(err)
			}
			if _, err := s.Generate(context.Background(), []int32{1, 2, 3}, sample.Greedy(), 4, nil); err != nil {
				b.Fatal(err)
			}
			s.Close()
			if call == 100 {
				at100 = heap()
			}
		}
		end := heap()
		b.ReportMetric(float64(at100)/(1<<20), "heap-after-100-MiB")
		b.ReportMetric(float64(end)/(1<<20), "heap-after-1000-MiB")
		if end > at100+(4<<20) {
			b.Errorf("live heap grew from %d to %d bytes over 900 generate calls", at100, end)
		}
	}
}

// fast1b is the 1b preset with --fast weights, generated once, and its
// file's facts.
func fast1b(b *testing.B) (string, os.FileInfo) {
	p, _ := synth.PresetByName("1b")
	o := synth.DefaultOptions(p)
	o.Fast = true
	path := testmodel.Path(b, o)
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	return path, st
}
