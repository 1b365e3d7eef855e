package opencl

import (
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/ocelot-llm/ocelot/gguf"
	"github.com/ocelot-llm/ocelot/graph"
	"github.com/ocelot-llm/ocelot/internal/testmodel"
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
	rm, err := ref.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	const nCtx, prompt, ubatch, gen = 1024, 512, 512, 64
	for _, kv := range []quant.Type{quant.F16, quant.Q4_0} {
		s := newSession(t, b, graph.NewModel(rm), nCtx, kv, 99)
		rng := rand.New(rand.NewPCG(1, 2))
		toks := make([]int32, prompt)
		for i := range toks {
			toks[i] = int32(rng.IntN(rm.NVocab))
		}
		// Warm up (first launches compile nothing on GPUs, but page in).
		s.forward(toks[:ubatch], ref.LogitsLast)
		s.pos = 0
		b.ResetProfile()
		start := time.Now()
		for u := 0; u < prompt; u += ubatch {
			s.forward(toks[u:u+ubatch], ref.LogitsLast)
		}
		pp := time.Since(start)
		prof := b.Profile()
		b.ResetProfile()
		start = time.Now()
		tok := int32(1)
		for range gen {
			tok = argmax(s.forward([]int32{tok}, ref.LogitsLast))
		}
		tg := time.Since(start)
		t.Logf("SPEED %s kv=%s on %s: prompt %d tokens in %v (%.1f tok/s), decode %d tokens in %v (%.2f ms/token, %.1f tok/s), device memory %.0f MiB",
			preset, kv, b.info.Name, prompt, pp.Round(time.Millisecond), float64(prompt)/pp.Seconds(), gen, tg.Round(time.Millisecond),
			tg.Seconds()*1000/gen, gen/tg.Seconds(), float64(b.MemoryUsed())/(1<<20))
		for i, k := range prof {
			if i < 8 {
				t.Logf("  prompt kernel %-20s %5d calls %9.3f ms", k.Name, k.Calls, k.Total.Seconds()*1000)
			}
		}
		for i, k := range b.Profile() {
			if i < 8 {
				t.Logf("  decode kernel %-20s %5d calls %9.3f ms", k.Name, k.Calls, k.Total.Seconds()*1000)
			}
		}
		s.close()
	}
}
