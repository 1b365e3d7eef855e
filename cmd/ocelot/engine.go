package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/ocelot-llm/ocelot"
	"github.com/ocelot-llm/ocelot/gguf"
	"github.com/ocelot-llm/ocelot/sample"
)

// engineFlags are the flags every command that runs a model shares, in
// llama.cpp's spelling.
type engineFlags struct {
	model, prompt, file           string
	nCtx, nBatch, nUbatch, ngl, t int
	ctk, ctv, backend, chatTmpl   string
	device, cpuPrecision, fa      string
	tune                          string
	nkvo, profile, quiet, escape  bool
	parallel                      int // sequences the KV pool holds at first (serve's --parallel; 0: one)
}

// alias registers a second name for a flag already defined, as llama.cpp
// has short and long spellings of most flags.
func alias(fs *flag.FlagSet, name, of string) {
	f := fs.Lookup(of)
	fs.Var(f.Value, name, "same as -"+of)
}

func (e *engineFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&e.model, "m", "", "model file (GGUF)")
	fs.StringVar(&e.prompt, "p", "", "prompt text")
	fs.StringVar(&e.file, "f", "", "read the prompt from a file")
	fs.IntVar(&e.nCtx, "c", 4096, "context size (n_ctx); 0: the model's training context")
	fs.IntVar(&e.nBatch, "b", 2048, "logical batch size (n_batch)")
	e.nUbatch, e.ngl = -1, -1
	fs.Var(autoInt{&e.nUbatch}, "ub", "micro-batch size (n_ubatch), or auto: the whole prompt up to 512")
	fs.Var(autoInt{&e.ngl}, "ngl", "layers to offload to the GPU (n_gpu_layers), or auto: as many as fit the device's memory")
	fs.IntVar(&e.t, "t", runtime.NumCPU(), "threads")
	fs.BoolVar(&e.escape, "e", false, "process escapes (\\n, \\t, \\\\, \\\", \\') in the prompt")
	fs.BoolVar(&e.quiet, "q", false, "quiet: no log lines on stderr (the report stays)")
	fs.StringVar(&e.fa, "fa", "auto", "flash attention: on, off or auto; ocelot always runs fused attention, so this only checks the value (llama.cpp's meaning differs)")
	for name, of := range map[string]string{"model": "m", "prompt": "p", "file": "f", "ctx-size": "c", "batch-size": "b",
		"ubatch-size": "ub", "n-gpu-layers": "ngl", "gpu-layers": "ngl", "threads": "t", "escape": "e", "log-disable": "q",
		"flash-attn": "fa", "cache-type-k": "ctk", "cache-type-v": "ctv"} {
		defer alias(fs, name, of)
	}
	fs.StringVar(&e.ctk, "ctk", "f16", "K cache type: f32, f16, q8_0, q4_0")
	fs.StringVar(&e.ctv, "ctv", "f16", "V cache type: f32, f16, q8_0, q4_0")
	fs.StringVar(&e.backend, "backend", "auto", "engine: ref, cpu, opencl, auto")
	fs.StringVar(&e.chatTmpl, "chat-template", "", "chat template override: llama3, llama2, or a template text")
	fs.StringVar(&e.device, "device", "", "accelerator device index, as `ocelot devices` lists them (default: the first GPU)")
	fs.BoolVar(&e.nkvo, "nkvo", false, "keep the KV cache and attention in host memory (same as --no-kv-offload)")
	fs.BoolVar(&e.nkvo, "no-kv-offload", false, "keep the KV cache and attention in host memory")
	fs.BoolVar(&e.profile, "profile", false, "time every op on every backend and print a per-op table at the end")
	fs.StringVar(&e.cpuPrecision, "cpu-precision", "int8", "CPU matmul precision: int8 (as llama.cpp), int8x2 (within rounding of ref) or float")
	fs.StringVar(&e.tune, "tune", "auto", "kernel tuning on the accelerator: auto (the cached result, else a quick tune of a few seconds), off (untuned defaults), quick or full (measure now; see ocelot tune)")
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
	case e.nCtx < 0 || e.nCtx > ocelot.MaxContext:
		return usagef("-c must lie in 0..%d (0: the model's), got %d", ocelot.MaxContext, e.nCtx)
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
	case e.fa != "auto" && e.fa != "on" && e.fa != "off":
		return usagef("-fa takes on, off or auto, got %q", e.fa)
	case e.tune != "auto" && e.tune != "off" && e.tune != "quick" && e.tune != "full":
		return usagef("--tune takes auto, off, quick or full, got %q", e.tune)
	}
	if e.nCtx == 0 {
		n, err := trainContext(e.model)
		if err != nil {
			return err
		}
		e.nCtx = n
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
	text := e.prompt
	if e.file != "" {
		data, err := os.ReadFile(e.file)
		if err != nil {
			return "", fmt.Errorf("prompt file: %w", err)
		}
		text = string(data)
	}
	if e.escape {
		text = unescape(text)
	}
	return text, nil
}

// unescape turns llama.cpp's -e escapes into their characters: \n \r
// \t \\ \" \' and \xHH; anything else stays as written.
func unescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch c := s[i]; c {
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case '\\', '"', '\'':
			b.WriteByte(c)
		case 'x':
			if v, err := strconv.ParseUint(s[i+1:min(i+3, len(s))], 16, 8); err == nil && i+3 <= len(s) {
				b.WriteByte(byte(v))
				i += 2
			} else {
				b.WriteString("\\x")
			}
		default:
			b.WriteByte('\\')
			b.WriteByte(c)
		}
	}
	return b.String()
}

// trainContext reads the model's training context (-c 0).
func trainContext(path string) (int, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return 0, fmt.Errorf("model: %w", err)
	}
	defer f.Close()
	n, err := f.ArchUint32("context_length")
	if err != nil {
		return 0, fmt.Errorf("-c 0 takes the model's context, but %w", err)
	}
	return min(int(n), ocelot.MaxContext), nil
}

// options are the flags as ocelot.Options.
func (e *engineFlags) options(stderr io.Writer) ocelot.Options {
	up := newProgress(stderr, e.quiet, "uploading weights")
	up.bytesUnits = true
	tp := newProgress(stderr, e.quiet, "tuning kernels")
	tp.unit = "measurements"
	return ocelot.Options{
		OnLoad: func(done, total int64) {
			if up.update(done, total); done == total {
				up.done()
			}
		},
		Tune: e.tune,
		OnTune: func(done, total int) {
			if tp.update(int64(done), int64(total)); done == total {
				tp.done()
			}
		},
		NCtx: e.nCtx, Parallel: e.parallel, NBatch: e.nBatch, NUbatch: e.nUbatch, NGPULayers: e.ngl, Threads: e.t,
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
	temp, topP, minP, repeatPenalty   float64
	presencePenalty, frequencyPenalty float64
	topK, repeatLastN                 int
	seed                              int64
	grammar, grammarFile, jsonSchema  string
	usedSeed                          uint64 // the seed the last sampler took (random when -seed is -1)
}

func (s *samplerFlags) register(fs *flag.FlagSet) {
	d := sample.Defaults()
	fs.Float64Var(&s.temp, "temp", f64(d.Temp), "temperature (0: greedy)")
	fs.IntVar(&s.topK, "top-k", d.TopK, "top-k sampling (0: off)")
	fs.Float64Var(&s.topP, "top-p", f64(d.TopP), "top-p sampling (1: off)")
	fs.Float64Var(&s.minP, "min-p", f64(d.MinP), "min-p sampling (0: off)")
	fs.Float64Var(&s.repeatPenalty, "repeat-penalty", f64(d.RepeatPenalty), "repetition penalty (1: off)")
	fs.IntVar(&s.repeatLastN, "repeat-last-n", d.RepeatLastN, "tokens the repetition penalty looks back over")
	fs.Float64Var(&s.presencePenalty, "presence-penalty", 0, "presence penalty (OpenAI's; 0: off)")
	fs.Float64Var(&s.frequencyPenalty, "frequency-penalty", 0, "frequency penalty (OpenAI's; 0: off)")
	fs.Int64Var(&s.seed, "seed", -1, "random seed (-1: a new one each run, printed in the report)")
	fs.StringVar(&s.grammar, "grammar", "", "constrain the output to a GBNF grammar")
	fs.StringVar(&s.grammarFile, "grammar-file", "", "read the GBNF grammar from a file")
	fs.StringVar(&s.jsonSchema, "json-schema", "", "constrain the output to a JSON Schema (or {} for any JSON)")
	alias(fs, "j", "json-schema")
}

// f64 is the float64 a float32 default is written as (0.05, not
// 0.05000000074505806).
func f64(x float32) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(float64(x), 'g', -1, 32), 64)
	return v
}

func (s *samplerFlags) params() (sample.Params, error) {
	switch {
	case s.seed < -1:
		return sample.Params{}, usagef("--seed must be -1 (random) or more, got %d", s.seed)
	case (s.grammar != "") && (s.grammarFile != "" || s.jsonSchema != "") || s.grammarFile != "" && s.jsonSchema != "":
		return sample.Params{}, usagef("give one of --grammar, --grammar-file and --json-schema")
	}
	s.usedSeed = uint64(s.seed)
	if s.seed == -1 {
		s.usedSeed = sample.RandomSeed()
	}
	p := sample.Params{
		Temp: float32(s.temp), TopK: s.topK, TopP: float32(s.topP), MinP: float32(s.minP),
		RepeatPenalty: float32(s.repeatPenalty), RepeatLastN: s.repeatLastN, Seed: s.usedSeed,
		PresencePenalty: float32(s.presencePenalty), FrequencyPenalty: float32(s.frequencyPenalty),
	}
	if err := p.Validate(); err != nil {
		return p, usagef("%v", err)
	}
	return p, nil
}

// sampler makes the sampler the flags describe for a model (a grammar
// needs its vocabulary).
func (s *samplerFlags) sampler(m *ocelot.Model) (ocelot.Sampler, error) {
	p, err := s.params()
	if err != nil {
		return nil, err
	}
	g := s.grammar
	if s.grammarFile != "" {
		data, err := os.ReadFile(s.grammarFile)
		if err != nil {
			return nil, fmt.Errorf("--grammar-file: %w", err)
		}
		g = string(data)
	}
	switch {
	case g != "":
		return m.GrammarSampler(p, g)
	case s.jsonSchema != "":
		schema := []byte(s.jsonSchema)
		if strings.TrimSpace(s.jsonSchema) == "{}" {
			schema = nil
		}
		return m.JSONSampler(p, schema)
	}
	smp, err := sample.New(p)
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
