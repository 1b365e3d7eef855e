package accel

import (
	"fmt"
	"testing"

	"github.com/ocelot-llm/ocelot/internal/testmodel"
	"github.com/ocelot-llm/ocelot/model"
	"github.com/ocelot-llm/ocelot/quant"
	"github.com/ocelot-llm/ocelot/ref"
	"github.com/ocelot-llm/ocelot/synth"
)

// benchModel loads a preset for benchmarks: tiny as the tests use it, 1b
// with Fast weights (random valid Q4_0 blocks, the shapes of Llama 3.2 1B).
func benchModel(b *testing.B, preset string) *ref.Model {
	b.Helper()
	if preset == "tiny" {
		return loadRef(b, testmodel.Preset(b, preset))
	}
	p, err := synth.PresetByName(preset)
	if err != nil {
		b.Fatal(err)
	}
	o := synth.DefaultOptions(p)
	o.Fast = true
	return loadRef(b, testmodel.Path(b, o))
}

var benchPrecisions = []Precision{PrecisionInt8, PrecisionInt8x2}

// BenchmarkCPUDecode measures one-token forward passes (llama.cpp's tg):
// the cache holds 64 positions when timing starts, and decoding goes on
// from there.
func BenchmarkCPUDecode(b *testing.B) {
	for _, preset := range []string{"tiny", "1b"} {
		for _, threads := range []int{1, 2} {
			for _, prec := range benchPrecisions {
				b.Run(fmt.Sprintf("%s/t%d/%s", preset, threads, prec), func(b *testing.B) {
					m := benchModel(b, preset)
					const nCtx, n0 = 512, 64
					cm := newCPUModel(b, m, threads, nCtx, quant.F16, quant.F16)
					cm.cpu.SetPrecision(prec)
					cm.forward(b, prompt(n0), 0, model.LogitsNone)
					pos := n0
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						if pos == nCtx {
							pos = n0
						}
						cm.forward(b, []int32{int32(i % 200)}, pos, model.LogitsLast)
						pos++
					}
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
				})
			}
		}
	}
}

// BenchmarkCPUPrefill measures a 512-token prompt in one micro-batch
// (llama.cpp's pp512).
func BenchmarkCPUPrefill(b *testing.B) {
	for _, preset := range []string{"tiny", "1b"} {
		for _, threads := range []int{1, 2} {
			for _, prec := range benchPrecisions {
				b.Run(fmt.Sprintf("%s/t%d/%s", preset, threads, prec), func(b *testing.B) {
					m := benchModel(b, preset)
					const n = 512
					cm := newCPUModel(b, m, threads, n, quant.F16, quant.F16)
					cm.cpu.SetPrecision(prec)
					toks := prompt(n)
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						cm.forward(b, toks, 0, model.LogitsLast)
					}
					b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "tokens/s")
				})
			}
		}
	}
}
