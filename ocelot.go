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
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ocelot-llm/ocelot/accel"
	"github.com/ocelot-llm/ocelot/gguf"
	"github.com/ocelot-llm/ocelot/model"
	"github.com/ocelot-llm/ocelot/quant"
	"github.com/ocelot-llm/ocelot/ref"
	"github.com/ocelot-llm/ocelot/sample"
	"github.com/ocelot-llm/ocelot/tokenizer"
)

// Options configure a loaded model. Zero fields take the defaults shown.
type Options struct {
	NCtx       int    // context cells per session (512)
	NBatch     int    // logical batch: tokens submitted at once (2048, capped at NCtx)
	NUbatch    int    // micro-batch: tokens through the model at once (512, capped at NBatch)
	NGPULayers int    // layers offloaded to an accelerator (the reference engine runs none)
	Threads    int    // worker goroutines (all cores)
	TypeK      string // K cache type: "f32", "f16" (default), "q8_0", "q4_0"
	TypeV      string // V cache type, likewise
	Backend    string // "ref", "cpu", "opencl" or "auto" (default: an accelerator if one works, else the CPU)
	Device     string // accelerator device index as `ocelot devices` numbers them ("": the first GPU, else any device)
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
	// ChatTemplate overrides the model's chat template ("llama3", "llama2"
	// or a template text).
	ChatTemplate string

	typeK, typeV quant.Type
}

// AutoGPULayers, as Options.NGPULayers, offloads as many layers (and the
// output layer) as fit the accelerator's memory with their KV cache.
const AutoGPULayers = -1

// Bounds on Options, checked by Load before anything is allocated.
// Memory is checked as well: a KV cache that does not fit is refused with
// what it needs.
const (
	MaxContext = 1 << 30 // n_ctx, n_batch and n_ubatch, in cells or tokens
	MaxThreads = 4096
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
	return nil
}

// Model is a loaded model: weights, tokenizer and settings. It is safe for
// concurrent use.
type Model struct {
	opt  Options
	path string
	file *gguf.File
	net  *model.Model
	eng  engine
	tok  *tokenizer.Tokenizer

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
	m := &Model{opt: opt, path: path, file: f, net: net, tok: tok}
	if opt.Backend == "ref" {
		if m.opt.NGPULayers == AutoGPULayers {
			m.opt.NGPULayers = 0 // the reference engine offloads nothing
		}
		m.eng = &refEngine{net: ref.New(net), opt: &m.opt}
	} else if m.eng, err = newGraphEngine(net, &m.opt); err != nil {
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

// Session is one sequence: its own KV cache over the model's shared
// weights. A session is used by one goroutine at a time; use one session
// per concurrent conversation.
type Session struct {
	m      *Model
	mu     sync.Mutex
	sq     seq
	closed bool
	// generating is set while Generate runs: other calls that would add
	// to the cache meanwhile get ErrBusy instead of mixing tokens in.
	generating atomic.Bool
}

// NewSession returns a session with an empty KV cache of NCtx cells.
func (m *Model) NewSession() (*Session, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, ErrClosed
	}
	sq, err := m.eng.newSeq() // its errors say "ocelot:" already
	if err != nil {
		return nil, err
	}
	return &Session{m: m, sq: sq}, nil
}

// Pos is the number of positions in the session's cache.
func (s *Session) Pos() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0
	}
	return s.sq.pos()
}

// Reset empties the session's cache.
func (s *Session) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.sq.reset()
	}
}

// Close releases the session's cache.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.m.mu.RLock()
	defer s.m.mu.RUnlock()
	if !s.m.closed {
		s.sq.close()
	}
	return nil
}

// Eval appends tokens to the sequence and returns the logits of the last
// one (a slice of the vocabulary size).
func (s *Session) Eval(tokens []int32) ([]float32, error) {
	if s.generating.Load() {
		return nil, ErrBusy
	}
	out, err := s.eval(context.Background(), tokens, false)
	if err != nil || len(out) == 0 {
		return nil, err
	}
	return out[0], nil
}

// EvalAll appends tokens to the sequence and returns the logits of every
// one of them.
func (s *Session) EvalAll(ctx context.Context, tokens []int32) ([][]float32, error) {
	if s.generating.Load() {
		return nil, ErrBusy
	}
	return s.eval(ctx, tokens, true)
}

func (s *Session) eval(ctx context.Context, tokens []int32, all bool) ([][]float32, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	m := s.m
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, ErrClosed
	}
	if len(tokens) == 0 {
		return nil, errors.New("ocelot: no tokens to evaluate")
	}
	if need := s.sq.pos() + len(tokens); need > m.opt.NCtx {
		return nil, fmt.Errorf("ocelot: %d tokens (%d new after %d in the cache) do not fit the context of %d (n_ctx); raise -c or shorten the prompt", need, len(tokens), s.sq.pos(), m.opt.NCtx)
	}
	// Every id is checked before any is evaluated, so a bad one leaves
	// the session as it was.
	for i, id := range tokens {
		if id < 0 || int(id) >= m.net.NVocab {
			return nil, fmt.Errorf("ocelot: token id %d at index %d of the input is outside the vocabulary [0, %d)", id, i, m.net.NVocab)
		}
	}
	out, err := s.sq.eval(ctx, tokens, all)
	if errors.Is(err, accel.ErrNonFinite) {
		return nil, m.nonFinite(err.Error())
	}
	if err != nil {
		return nil, err
	}
	for i, row := range out {
		if j := quant.FirstNonFiniteF32(row); j >= 0 {
			return nil, m.nonFinite(fmt.Sprintf("logit %d of row %d is %v", j, i, row[j]))
		}
	}
	return out, nil
}

// nonFinite is the error for non-finite logits. Load has checked that
// every weight of the file is finite, so the computation itself
// overflowed or a backend faulted.
func (m *Model) nonFinite(what string) error {
	return fmt.Errorf("ocelot: %s: the model computed non-finite logits (%s), though every weight in the file is finite (an overflow in the computation, or a backend fault)", m.path, what)
}

// Timings measure a generation.
type Timings struct {
	PromptTokens int
	Prompt       time.Duration // evaluating the prompt
	GenTokens    int           // tokens generated (evaluated after sampling)
	Gen          time.Duration
}

// PromptMsPerToken is the prompt's milliseconds per token.
func (t Timings) PromptMsPerToken() float64 {
	if t.PromptTokens == 0 {
		return 0
	}
	return float64(t.Prompt.Microseconds()) / 1000 / float64(t.PromptTokens)
}

// PromptTokensPerSec is the prompt evaluation speed.
func (t Timings) PromptTokensPerSec() float64 {
	if t.Prompt <= 0 {
		return 0
	}
	return float64(t.PromptTokens) / t.Prompt.Seconds()
}

// GenTokensPerSec is the generation speed.
func (t Timings) GenTokensPerSec() float64 {
	if t.Gen <= 0 {
		return 0
	}
	return float64(t.GenTokens) / t.Gen.Seconds()
}

// Result is what Generate produced.
type Result struct {
	Tokens  []int32 // generated ids, the end-of-generation token excluded
	Stopped string  // "eog", "limit" or "context"
	Timings Timings
}

// Generate evaluates prompt, then samples up to n tokens (n < 0: until the
// context is full), calling onToken with each token id and its text as
// soon as the text is whole UTF-8. A second call on the same session while
// one runs returns ErrBusy. It stops at an end-of-generation token,
// returns ctx's error when ctx is cancelled (between micro-batches), and
// an error from onToken stops it with that error.
func (s *Session) Generate(ctx context.Context, prompt []int32, smp *sample.Sampler, n int, onToken func(id int32, text string) error) (res Result, err error) {
	if !s.generating.CompareAndSwap(false, true) {
		return res, ErrBusy
	}
	defer s.generating.Store(false)
	if smp == nil {
		smp = sample.Greedy()
	}
	for _, id := range prompt {
		smp.Accept(id)
	}
	start := time.Now()
	logits, err := s.eval(ctx, prompt, false)
	if err != nil {
		return res, err
	}
	res.Timings.PromptTokens, res.Timings.Prompt = len(prompt), time.Since(start)
	dec := s.m.tok.NewStreamDecoder()
	start = time.Now()
	defer func() { res.Timings.Gen = time.Since(start) }()
	for n < 0 || len(res.Tokens) < n {
		id := smp.Sample(logits[0])
		if s.m.tok.IsEOG(id) {
			res.Stopped = "eog"
			return res, nil
		}
		res.Tokens = append(res.Tokens, id)
		smp.Accept(id)
		text, err := dec.Add(id)
		if err != nil {
			return res, err
		}
		if onToken != nil {
			if err := onToken(id, text); err != nil {
				return res, err
			}
		}
		if len(res.Tokens) == n {
			break
		}
		if s.Pos() >= s.m.opt.NCtx {
			res.Stopped = "context"
			return res, nil
		}
		if logits, err = s.eval(ctx, []int32{id}, false); err != nil {
			return res, err
		}
		res.Timings.GenTokens++
	}
	res.Stopped = "limit"
	if tail := dec.Flush(); tail != "" && onToken != nil {
		if err := onToken(-1, tail); err != nil {
			return res, err
		}
	}
	return res, nil
}
