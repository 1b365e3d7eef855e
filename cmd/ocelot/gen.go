package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ocelot-llm/ocelot"
	"github.com/ocelot-llm/ocelot/model"
	"github.com/ocelot-llm/ocelot/quant"
	"github.com/ocelot-llm/ocelot/synth"
)

func init() {
	register(&command{name: "gen", summary: "write a synthetic Llama GGUF model with seeded random weights", run: runGen})
}

func runGen(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gen", stderr)
	preset := fs.String("preset", "tiny", "model shape: "+strings.Join(synth.PresetNames(), ", "))
	layers := fs.Int("layers", 0, fmt.Sprintf("override the preset's number of layers: 1..%d (0: the preset's)", model.MaxLayers))
	typ := fs.String("type", "q4_0", "type of the weights: q4_0, q8_0, q6_K, f16, bf16, f32")
	outType := fs.String("output-type", "q6_K", "type of output.weight")
	tied := fs.Bool("tied", false, "no output.weight: reuse token_embd for the output")
	seed := fs.Uint64("seed", 1, "random seed")
	fast := fs.Bool("fast", false, "tile tensors with random valid blocks (fast, for benchmarks)")
	vocab := fs.String("vocab", "", "copy the tokenizer from this GGUF file (default: ocelot's built-in BPE vocabulary)")
	out := fs.String("o", "", "output file (required)")
	threads := fs.Int("t", 0, fmt.Sprintf("threads: 1..%d (0: all cores)", ocelot.MaxThreads))
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ocelot gen --preset tiny|small|1b|3b|8b [--layers N] [--type T] [--output-type T] [--tied] [--seed S] [--fast] [--vocab V.gguf] [-t N] -o M.gguf")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return usagef("-o is required")
	}
	p, err := synth.PresetByName(*preset)
	if err != nil {
		return usagef("%v", err)
	}
	// model.MaxLayers: more layers than the loader accepts would make a
	// file ocelot refuses (and a plan that grows without bound).
	if *layers < 0 || *layers > model.MaxLayers {
		return usagef("--layers %d out of range: want 1..%d, or 0 for the %s preset's %d", *layers, model.MaxLayers, p.Name, p.NLayer)
	}
	if *threads < 0 || *threads > ocelot.MaxThreads {
		return usagef("-t %d out of range: want 1..%d, or 0 for all cores", *threads, ocelot.MaxThreads)
	}
	o := synth.DefaultOptions(p)
	if o.Type, err = quant.ParseType(*typ); err != nil || !o.Type.Supported() {
		return usagef("--type %s: use q4_0, q8_0, q6_K, f16, bf16 or f32", *typ)
	}
	if o.OutputType, err = quant.ParseType(*outType); err != nil || !o.OutputType.Supported() {
		return usagef("--output-type %s: use q6_K, q4_0, q8_0, f16, bf16 or f32", *outType)
	}
	o.Layers, o.Tied, o.Seed, o.Fast, o.VocabPath, o.Threads = *layers, *tied, *seed, *fast, *vocab, *threads
	// Everything synth checks comes from these flags: a bad value is a
	// usage error (the vocabulary file's size is checked once read).
	if err := o.Validate(); err != nil {
		return usagef("%v", err)
	}
	start := time.Now()
	pg := newProgress(stderr, false, "generating "+*out)
	pg.unit = "tensors"
	o.Progress = func(done, total int) { pg.update(int64(done), int64(total)) }
	err = synth.Generate(*out, o)
	pg.done()
	if err != nil {
		return err
	}
	st, err := os.Stat(*out)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: preset %s, %s weights, %.1f MiB in %.1f s\n", *out, p.Name, o.Type, float64(st.Size())/(1<<20), time.Since(start).Seconds())
	return nil
}
