package ocelot_test

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/ocelot-llm/ocelot"
)

// procStatus reads the memory lines of /proc/self/status (Linux), in
// bytes: VmHWM (the peak resident set), VmRSS, RssAnon, RssFile. It is
// nil where the file does not exist.
func procStatus() map[string]int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil
	}
	m := map[string]int64{}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[2] == "kB" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err == nil {
				m[strings.TrimSuffix(f[0], ":")] = kb * 1024
			}
		}
	}
	return m
}

// resetPeakRSS makes VmHWM start again from the current resident set
// (Linux 4.0 and later), so the peak measured is the load's alone.
func resetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// BenchmarkLoadRSSOpenCL reports the resident memory of the 1b shape
// loaded with every layer on the OpenCL device (-ngl 99) and after a
// few tokens are evaluated, against the file's size: the peak (VmHWM),
// and the anonymous and file-backed parts of the resident set. On a
// device that shares memory with the host (PoCL, phones) the device
// buffers are host memory: uploading a weight and keeping its file pages
// as well would hold the weights twice.
//
//	go test -run '^$' -bench LoadRSSOpenCL -benchtime 1x .
func BenchmarkLoadRSSOpenCL(b *testing.B) {
	if procStatus() == nil {
		b.Skip("no /proc/self/status: resident memory cannot be read here")
	}
	path, st := fast1b(b)
	mib := func(n int64) float64 { return float64(n) / (1 << 20) }
	for i := 0; i < b.N; i++ {
		runtime.GC()
		debug.FreeOSMemory()
		if !resetPeakRSS() {
			b.Skip("cannot reset VmHWM (/proc/self/clear_refs): the peak would include earlier work")
		}
		before := procStatus()
		m, err := ocelot.Load(path, ocelot.Options{NCtx: 256, Backend: "opencl", NGPULayers: 99})
		if err != nil {
			if os.Getenv("OCELOT_REQUIRE_OPENCL") == "1" {
				b.Fatal(err)
			}
			b.Skipf("opencl: no device: %v", err)
		}
		loaded := procStatus()
		s, err := m.NewSession()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Eval(context.Background(), []int32{1, 2, 3, 4}); err != nil {
			b.Fatal(err)
		}
		evaluated := procStatus()
		s.Close()
		m.Close()
		b.ReportMetric(mib(st.Size()), "file-MiB")
		b.ReportMetric(mib(before["VmRSS"]), "rss-before-MiB")
		b.ReportMetric(mib(evaluated["VmHWM"]), "peak-MiB")
		b.ReportMetric(float64(evaluated["VmHWM"])/float64(st.Size()), "peak/file")
		b.ReportMetric(mib(loaded["RssAnon"]), "anon-after-load-MiB")
		b.ReportMetric(mib(loaded["RssFile"]), "file-rss-after-load-MiB")
		b.ReportMetric(mib(evaluated["RssAnon"]), "anon-after-eval-MiB")
		b.ReportMetric(mib(evaluated["RssFile"]), "file-rss-after-eval-MiB")
	}
}
