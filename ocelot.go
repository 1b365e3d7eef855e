// Package ocelot runs Llama-family GGUF models in pure Go.
//
// Load a model, open a Session per conversation, and evaluate or generate:
//
//	m, err := ocelot.Load("model.gguf", ocelot.Options{NCtx: 512})
//	...
//	s, err := m.NewSession()
//	ids, err := m.Tokenize("Hello", true, false)
//	res, err := s.Generate(ctx, ids, sample.Greedy(), 32, func(id int32, text string) error {
//		fmt.Print(text)
//		return nil
//	})
//
// Many sessions share one model's weights and may run concurrently.
package ocelot

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/ocelot-llm/ocelot/gguf"
	"github.com/ocelot-llm/ocelot/model"
	"github.com/ocelot-llm/ocelot/quant"
	"github.com/ocelot-llm/ocelot/ref"
	"github.com/ocelot-llm/ocelot/tokenizer"
)

// Options configure a loaded model. Zero fields take the defaults shown.
type Options struct {
	NCtx       int    // positions per session: the longest sequence (512)
	NBatch     int    // logical batch: tokens submitted at once (2048, capped at NCtx)
	NUbatch    int    // micro-batch: tokens through the model at once (512, capped at NBatch)
	NGPULayers int    // layers offloaded to an accelerator (the reference engine runs none)
	Threads    int    // worker goroutines (all cores)
	TypeK      string // K cache type: "f32", "f16" (default), "q8_0", "q4_0"
	TypeV      string // V cache type, likewise
	Backend    string // "ref", "cpu", "opencl" or "auto" (default: an accelerator if one works, else the CPU)
	Device     string // accelerator device index as `ocelot devices` numbers them ("": the first GPU, else any device)
	// Parallel sizes the KV pool that sessions share: NCtx × Parallel
	// cells at first (1). Sessions take pages of it as they grow, so
	// more sessions fit when they are shorter; when every page is held
	// the pool doubles, as long as memory allows (else ErrKVFull).
	// Sessions evaluating at the same time are batched together.
	Parallel int
	// NoPrefixReuse stops a new session from starting at another live
	// session's cache of the same prompt prefix (the prompt cache across
	// sessions). With it, each session evaluates its whole prompt, and a
	// prompt's logits never depend on what other sessions hold (reused
	// cells were computed in other micro-batches, which on some
	// backends rounds differently).
	NoPrefixReuse bool
	// NoKVOffload keeps the KV cache, and attention, in host memory even
	// for offloaded layers (llama.cpp's -nkvo).
	NoKVOffload bool
	Profile     bool // time every op on every backend (see Model.Profile)
	// CPUPrecision is how the CPU backend multiplies quantized weights:
	// "int8" (default: activations quantized to Q8_0, as llama.cpp does),
	// "int8x2" (two int8 terms: within float rounding of ref, twice the
	// integer work) or "float" (dequantized rows, as ref).
	CPUPrecision string
	Logf         func(format string, a ...any) // where backend selection and loading log (nil: nowhere)
	// OnLoad, if not nil, learns while Load uploads weights to an
	// accelerator how many of their bytes are there so far, out of total
	// (a progress display; a CPU-only load maps the file and calls it
	// never).
	OnLoad func(done, total int64)
	// ChatTemplate overrides the model's chat template ("llama3", "llama2"
	// or a template text).
	ChatTemplate string
	// Tune says how an accelerator that tunes its kernels on its device
	// (OpenCL) chooses them for this model: "auto" or "" takes a result
	// cached for this device, driver and model shape, else runs a quick
	// tune of at most QuickTuneBudget and caches it; "off" keeps the
	// untuned defaults; "quick" and "full" measure now (full: every
	// candidate, more repetitions) and replace the cached result, as
	// `ocelot tune` does. Every candidate is checked against the generic
	// kernel first, so tuning changes no result beyond the conformance
	// thresholds.
	Tune string
	// OnTune, if not nil, learns while Load tunes how many of the tuner's
	// measurements are done, out of total.
	OnTune func(done, total int)

	typeK, typeV quant.Type
	name         string // the model file's base name, for the tuner's cache listing
}

// QuickTuneBudget bounds the quick tune that Options.Tune "auto" runs when
// nothing is cached: decisions not measured by then keep their defaults.
const QuickTuneBudget = 5 * time.Second

// AutoGPULayers, as Options.NGPULayers, offloads as many layers (and the
// output layer) as fit the accelerator's memory with their KV cache.
const AutoGPULayers = -1

// Bounds on Options, checked by Load before anything is allocated.
// Memory is checked as well: a KV cache that does not fit is refused with
// what it needs.
const (
	MaxContext = 1 << 30 // n_ctx, n_batch and n_ubatch, in cells or tokens
	MaxThreads = 4096
	// MaxParallel bounds Options.Parallel.
	MaxParallel = 1024
)

// AutoUbatch picks a micro-batch for a prompt of n tokens: the whole
// prompt at once up to 512 tokens (matrix products are most efficient on
// large batches, on the CPU and on GPUs alike, and one micro-batch means
// one pass over the weights), and 512 beyond that, which bounds the
// scratch memory. The rule is the same for every backend.
func AutoUbatch(n int) int {
	return max(1, min(n, 512))
}

// ErrClosed is returned by calls on a closed Model or Session.
var ErrClosed = errors.New("ocelot: closed")

// ErrBusy is returned by a call on a Session while a Generate runs on it:
// a session is one sequence, used by one goroutine at a time.
var ErrBusy = errors.New("ocelot: the session is busy generating (use one session per concurrent sequence)")

// Validate reports the first field that Load would refuse, with its value
// and the range it must lie in, without opening anything.
func (o Options) Validate() error { return o.normalize() }

func (o *Options) normalize() error {
	if o.NCtx == 0 {
		o.NCtx = 512
	}
	if o.NBatch == 0 {
		o.NBatch = min(2048, o.NCtx)
	}
	if o.NUbatch == 0 {
		o.NUbatch = min(512, o.NBatch)
	}
	if o.Threads == 0 {
		o.Threads = runtime.GOMAXPROCS(0)
	}
	if o.Parallel == 0 {
		o.Parallel = 1
	}
	if o.Backend == "" {
		o.Backend = "auto"
	}
	if o.TypeK == "" {
		o.TypeK = "f16"
	}
	if o.TypeV == "" {
		o.TypeV = "f16"
	}
	var err error
	if o.typeK, err = kvType("K", o.TypeK); err != nil {
		return err
	}
	if o.typeV, err = kvType("V", o.TypeV); err != nil {
		return err
	}
	switch {
	case o.NCtx < 0 || o.NCtx > MaxContext:
		return fmt.Errorf("ocelot: n_ctx must lie in 1..%d, got %d", MaxContext, o.NCtx)
	case o.NBatch < 0 || o.NBatch > MaxContext:
		return fmt.Errorf("ocelot: n_batch must lie in 1..%d, got %d", MaxContext, o.NBatch)
	case o.NUbatch < 0 || o.NUbatch > MaxContext:
		return fmt.Errorf("ocelot: n_ubatch must lie in 1..%d, got %d", MaxContext, o.NUbatch)
	case o.NUbatch > o.NBatch:
		return fmt.Errorf("ocelot: n_ubatch %d is larger than n_batch %d", o.NUbatch, o.NBatch)
	case o.Parallel < 0 || o.Parallel > MaxParallel:
		return fmt.Errorf("ocelot: parallel sequences must lie in 1..%d, got %d", MaxParallel, o.Parallel)
	case int64(o.NCtx)*int64(o.Parallel) > MaxContext:
		return fmt.Errorf("ocelot: n_ctx %d × %d parallel sequences exceeds %d cells", o.NCtx, o.Parallel, MaxContext)
	case o.Threads < 0 || o.Threads > MaxThreads:
		return fmt.Errorf("ocelot: threads must lie in 1..%d, got %d", MaxThreads, o.Threads)
	case o.NGPULayers < 0 && o.NGPULayers != AutoGPULayers:
		return fmt.Errorf("ocelot: n_gpu_layers must be non-negative (or AutoGPULayers), got %d", o.NGPULayers)
	}
	o.NBatch = min(o.NBatch, o.NCtx) // a batch never exceeds the context
	o.NUbatch = min(o.NUbatch, o.NBatch)
	switch o.Backend {
	case "ref", "cpu", "opencl", "auto":
	default:
		return fmt.Errorf("ocelot: unknown backend %q (use ref, cpu, opencl or auto)", o.Backend)
	}
	switch o.Tune {
	case "", "auto", "off", "quick", "full":
	default:
		return fmt.Errorf("ocelot: unknown tune mode %q (use auto, off, quick or full)", o.Tune)
	}
	return nil
}

// Model is a loaded model: weights, tokenizer and settings. It is safe for
// concurrent use.
type Model struct {
	opt  Options
	path string
	fp   [32]byte // fingerprint of the model, for saved states
	file *gguf.File
	net  *model.Model
	eng  engine
	tok  *tokenizer.Tokenizer

	vocab vocab // for grammar samplers

	// mu is held for reading by every evaluation and for writing by Close,
	// so the memory map is never unmapped under a running session.
	mu     sync.RWMutex
	closed bool
}

func kvType(which, name string) (quant.Type, error) {
	t, err := quant.ParseType(name)
	if err == nil {
		err = model.CheckKVType(t)
	}
	if err != nil {
		return 0, fmt.Errorf("ocelot: %s cache type %q: %w", which, name, err)
	}
	return t, nil
}

// Load opens a GGUF model and prepares it to run with the given options.
func Load(path string, opt Options) (*Model, error) {
	if err := opt.normalize(); err != nil {
		return nil, err
	}
	opt.name = filepath.Base(path)
	f, err := gguf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ocelot: %w", err)
	}
	net, err := model.Load(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("ocelot: %s: %w", path, err)
	}
	tok, err := tokenizer.FromGGUF(&f.Metadata)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("ocelot: %s: %w", path, err)
	}
	if tok.VocabSize() != net.NVocab {
		f.Close()
		return nil, fmt.Errorf("ocelot: %s: the tokenizer has %d tokens but token_embd.weight has %d rows", path, tok.VocabSize(), net.NVocab)
	}
	m := &Model{opt: opt, path: path, fp: fingerprint(f, net.Config), file: f, net: net, tok: tok}
	if opt.Backend == "ref" {
		if m.opt.NGPULayers == AutoGPULayers {
			m.opt.NGPULayers = 0 // the reference engine offloads nothing
		}
		m.eng = &refEngine{net: ref.New(net), opt: &m.opt}
	} else if m.eng, err = newGraphEngine(net, &m.opt, f.Release); err != nil {
		f.Close()
		return nil, err
	}
	return m, nil
}

// Backend says what runs the model: "ref", "cpu", or an accelerator with
// the CPU ("opencl+cpu").
func (m *Model) Backend() string { return m.eng.backend() }

// Device describes the accelerator in use, or the CPU.
func (m *Model) Device() string { return m.eng.device() }

// KVPlace says where the KV cache lives: "host memory" or "device memory".
func (m *Model) KVPlace() string { return m.eng.kvPlace() }

// Stats reports the KV pool and the scheduler's counts: how many cells
// sessions hold, and how many sequences micro-batches held. The
// reference engine keeps one cache per session and reports zeros.
func (m *Model) Stats() Stats { return m.eng.stats() }

// Options returns the settings the model runs with, defaults filled in.
func (m *Model) Options() Options { return m.opt }

// Config returns the model's hyperparameters.
func (m *Model) Config() model.Config { return m.net.Config }

// Tokenizer returns the model's tokenizer.
func (m *Model) Tokenizer() *tokenizer.Tokenizer { return m.tok }

// Tokenize turns text into token ids. addSpecial adds BOS (and EOS) as
// the model's metadata asks; parseSpecial turns special-token text such as
// "<|eot_id|>" into its token.
func (m *Model) Tokenize(text string, addSpecial, parseSpecial bool) ([]int32, error) {
	return m.tok.Encode(text, addSpecial, parseSpecial)
}

// Detokenize turns token ids back into text.
func (m *Model) Detokenize(ids []int32) (string, error) { return m.tok.Decode(ids) }

// Message is one turn of a chat.
type Message = tokenizer.Message

// ChatPrompt renders messages with the model's chat template (or the
// ChatTemplate option), ending with the assistant's generation prompt.
func (m *Model) ChatPrompt(msgs []Message) (string, error) {
	tmpl := m.opt.ChatTemplate
	if tmpl == "" {
		tmpl = m.tok.ChatTemplate()
	}
	return tokenizer.RenderChat(tmpl, msgs, true)
}

// Close releases the model once every running evaluation has finished.
// Sessions fail with ErrClosed afterwards.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	err := m.eng.close()
	if ferr := m.file.Close(); err == nil {
		err = ferr
	}
	return err
}
