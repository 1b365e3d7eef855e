package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"

	"github.com/ocelot-llm/ocelot"
	"github.com/ocelot-llm/ocelot/sample"
)

// engineFlags are the flags every command that runs a model shares, in
// llama.cpp's spelling.
type engineFlags struct {
	model, prompt, file           string
	nCtx, nBatch, nUbatch, ngl, t int
	ctk, ctv, backend, chatTmpl   string
	device, cpuPrecision          string
	nkvo, profile, quiet          bool
}

func (e *engineFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&e.model, "m", "", "model file (GGUF)")
	fs.StringVar(&e.prompt, "p", "", "prompt text")
	fs.StringVar(&e.file, "f", "", "read the prompt from a file")
	fs.IntVar(&e.nCtx, "c", 4096, "context size (n_ctx)")
	fs.IntVar(&e.nBatch, "b", 2048, "logical batch size (n_batch)")
	e.nUbatch, e.ngl = -1, -1
	fs.Var(autoInt{&e.nUbatch}, "ub", "micro-batch size (n_ubatch), or auto: the whole prompt up to 512")
	fs.Var(autoInt{&e.ngl}, "ngl", "layers to offload to the GPU (n_gpu_layers), or auto: as many as fit the device's memory")
	fs.IntVar(&e.t, "t", runtime.NumCPU(), "threads")
	fs.StringVar(&e.ctk, "ctk", "f16", "K cache type: f32, f16, q8_0, q4_0")
	fs.StringVar(&e.ctv, "ctv", "f16", "V cache type: f32, f16, q8_0, q4_0")
	fs.StringVar(&e.backend, "backend", "auto", "engine: ref, cpu, opencl, auto")
	fs.StringVar(&e.chatTmpl, "chat-template", "", "chat template override: llama3, llama2, or a template text")
	fs.StringVar(&e.device, "device", "", "accelerator device index, as `ocelot devices` lists them (default: the first GPU)")
	fs.BoolVar(&e.nkvo, "nkvo", false, "keep the KV cache and attention in host memory (same as --no-kv-offload)")
	fs.BoolVar(&e.nkvo, "no-kv-offload", false, "keep the KV cache and attention in host memory")
	fs.BoolVar(&e.profile, "profile", false, "time every op on every backend and print a per-op table at the end")
	fs.StringVar(&e.cpuPrecision, "cpu-precision", "int8", "CPU matmul precision: int8 (as llama.cpp), int8x2 (within rounding of ref) or float")
}

// check rejects nonsensical values with a usage error. Batch sizes the
// user did not set shrink to fit, as in llama.cpp: n_batch to n_ctx,
// n_ubatch to n_batch.
func (e *engineFlags) check(fs *flag.FlagSet) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case e.model == "":
		return usagef("-m is required")
	case e.nCtx <= 0 || e.nCtx > ocelot.MaxContext:
		return usagef("-c must lie in 1..%d, got %d", ocelot.MaxContext, e.nCtx)
	case e.nBatch <= 0 || e.nBatch > ocelot.MaxContext:
		return usagef("-b must lie in 1..%d, got %d", ocelot.MaxContext, e.nBatch)
	case e.nUbatch == 0 || e.nUbatch < -1 || e.nUbatch > ocelot.MaxContext:
		return usagef("-ub must lie in 1..%d or be auto, got %d", ocelot.MaxContext, e.nUbatch)
	case e.t <= 0 || e.t > ocelot.MaxThreads:
		return usagef("-t must lie in 1..%d, got %d", ocelot.MaxThreads, e.t)
	case e.ngl < -1:
		return usagef("-ngl must not be negative, got %d", e.ngl)
	case e.prompt != "" && e.file != "":
		return usagef("give -p or -f, not both")
	}
	if e.nBatch > e.nCtx {
		e.nBatch = e.nCtx // a batch never exceeds the context
	}
	if e.nUbatch == -1 {
		e.nUbatch = ocelot.AutoUbatch(e.nBatch)
	}
	if e.nUbatch > e.nBatch && !set["ub"] {
		e.nUbatch = e.nBatch
	}
	if e.nUbatch > e.nBatch {
		return usagef("-ub %d is larger than -b %d", e.nUbatch, e.nBatch)
	}
	if _, err := os.Stat(e.model); err != nil {
		return fmt.Errorf("model: %w", err)
	}
	return nil
}

func (e *engineFlags) promptText() (string, error) {
	if e.file == "" {
		return e.prompt, nil
	}
	data, err := os.ReadFile(e.file)
	if err != nil {
		return "", fmt.Errorf("prompt file: %w", err)
	}
	return string(data), nil
}

// options are the flags as ocelot.Options.
func (e *engineFlags) options(stderr io.Writer) ocelot.Options {
	return ocelot.Options{
		NCtx: e.nCtx, NBatch: e.nBatch, NUbatch: e.nUbatch, NGPULayers: e.ngl, Threads: e.t,
		TypeK: e.ctk, TypeV: e.ctv, Backend: e.backend, ChatTemplate: e.chatTmpl,
		Device: e.device, NoKVOffload: e.nkvo, Profile: e.profile, CPUPrecision: e.cpuPrecision,
		Logf: func(format string, a ...any) {
			if !e.quiet {
				fmt.Fprintf(stderr, "ocelot: "+format+"\n", a...)
			}
		},
	}
}

func (e *engineFlags) load(stderr io.Writer) (*ocelot.Model, error) {
	return ocelot.Load(e.model, e.options(stderr))
}

// samplerFlags are llama.cpp's sampling flags.
type samplerFlags struct {
	temp, topP, minP, repeatPenalty float64
	topK, repeatLastN               int
	seed                            uint64
}

func (s *samplerFlags) register(fs *flag.FlagSet) {
	d := sample.Defaults()
	fs.Float64Var(&s.temp, "temp", float64(d.Temp), "temperature (0: greedy)")
	fs.IntVar(&s.topK, "top-k", d.TopK, "top-k sampling (0: off)")
	fs.Float64Var(&s.topP, "top-p", float64(d.TopP), "top-p sampling (1: off)")
	fs.Float64Var(&s.minP, "min-p", float64(d.MinP), "min-p sampling (0: off)")
	fs.Float64Var(&s.repeatPenalty, "repeat-penalty", float64(d.RepeatPenalty), "repetition penalty (1: off)")
	fs.IntVar(&s.repeatLastN, "repeat-last-n", d.RepeatLastN, "tokens the repetition penalty looks back over")
	fs.Uint64Var(&s.seed, "seed", d.Seed, "random seed")
}

func (s *samplerFlags) sampler() (*sample.Sampler, error) {
	smp, err := sample.New(sample.Params{
		Temp: float32(s.temp), TopK: s.topK, TopP: float32(s.topP), MinP: float32(s.minP),
		RepeatPenalty: float32(s.repeatPenalty), RepeatLastN: s.repeatLastN, Seed: s.seed,
	})
	if err != nil {
		return nil, usagef("%v", err)
	}
	return smp, nil
}

// autoInt is an int flag that also takes "auto", stored as -1.
type autoInt struct{ p *int }

func (a autoInt) String() string {
	if a.p == nil || *a.p == -1 {
		return "auto"
	}
	return strconv.Itoa(*a.p)
}

func (a autoInt) Set(s string) error {
	if s == "auto" {
		*a.p = -1
		return nil
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("%q is neither a number nor auto", s)
	}
	if v < 0 {
		return fmt.Errorf("%d is negative", v)
	}
	*a.p = v
	return nil
}
