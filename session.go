package ocelot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ocelot-llm/ocelot/accel"
	"github.com/ocelot-llm/ocelot/quant"
	"github.com/ocelot-llm/ocelot/sample"
)

// Session is one sequence: its own KV cache over the model's shared
// weights. A session is used by one goroutine at a time; use one session
// per concurrent conversation.
//
// The sequence is the tokens the session was given and generated, in
// order (Tokens). All of them are in the KV cache except, after a
// Generate that stopped at its token limit or at a stop string, the last
// generated token: its logits were never needed, so it is kept aside and
// evaluated first by the next Eval, EvalAll or Generate. Pos counts it;
// Cached does not.
type Session struct {
	m      *Model
	mu     sync.Mutex
	sq     seq
	closed bool
	// generating is set while Generate runs: other calls that would add
	// to the cache meanwhile get ErrBusy instead of mixing tokens in.
	generating atomic.Bool

	tokens  []int32   // the sequence: the cache's tokens, then pending
	pending int       // how many of the last tokens are not in the cache (0 or 1)
	last    []float32 // the logits after the cache's last token (nil: unknown)
	// evaluated is how many tokens the last eval put through the model:
	// fewer than it was given when it started from another session's
	// cache of the same prefix.
	evaluated int
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

// Pos is the length of the sequence: the tokens in the cache and a
// pending one (see Session).
func (s *Session) Pos() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.tokens)
}

// Cached is the number of tokens in the KV cache.
func (s *Session) Cached() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.tokens) - s.pending
}

// Tokens returns a copy of the sequence.
func (s *Session) Tokens() []int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int32(nil), s.tokens...)
}

// Reset empties the session's cache.
func (s *Session) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.sq.reset()
		s.tokens, s.pending, s.last = s.tokens[:0], 0, nil
	}
}

// Truncate keeps the first n tokens of the sequence and forgets the rest
// (their cache cells are reused by what comes next), so that a
// conversation can be rewound or a prompt re-used up to where it differs.
func (s *Session) Truncate(n int) error {
	if err := s.lockIdle(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	return s.truncate(n)
}

// lockIdle locks the session for a call that changes its sequence: it
// fails, unlocked, on a closed session or one that is generating.
func (s *Session) lockIdle() error {
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return ErrClosed
	case s.generating.Load():
		s.mu.Unlock()
		return ErrBusy
	}
	return nil
}

// truncate is Truncate with s.mu held.
func (s *Session) truncate(n int) error {
	if n < 0 || n > len(s.tokens) {
		return fmt.Errorf("ocelot: truncate to %d tokens: the sequence has %d", n, len(s.tokens))
	}
	if n == len(s.tokens) {
		return nil
	}
	cached := len(s.tokens) - s.pending
	if n < cached {
		s.sq.truncate(n)
		cached = n
	}
	s.tokens, s.pending, s.last = s.tokens[:n], n-cached, nil
	return nil
}

// Reuse prepares the session for a prompt that restates the sequence so
// far (a chat resending its history, say): it keeps the longest common
// prefix of the sequence and tokens, forgets the rest, and returns the
// part of tokens still to be evaluated — at least one token, so that
// there are logits to sample from.
func (s *Session) Reuse(tokens []int32) ([]int32, error) {
	if len(tokens) == 0 {
		return nil, errors.New("ocelot: reuse: no tokens")
	}
	s.mu.Lock()
	common := 0
	for common < len(s.tokens) && common < len(tokens) && s.tokens[common] == tokens[common] {
		common++
	}
	s.mu.Unlock()
	common = min(common, len(tokens)-1)
	if err := s.Truncate(common); err != nil {
		return nil, err
	}
	return tokens[common:], nil
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
// one (a slice of the vocabulary size). It stops between micro-batches
// when ctx is cancelled.
func (s *Session) Eval(ctx context.Context, tokens []int32) ([]float32, error) {
	if s.generating.Load() {
		return nil, ErrBusy
	}
	out, err := s.eval(ctx, tokens, false, true, nil)
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
	return s.eval(ctx, tokens, true, true, nil)
}

// eval feeds the pending token (if any) and tokens to the cache and
// returns the logits asked for: of the last token, or of each of tokens.
// With keep it copies the last row, so that a Generate with an empty
// prompt can continue from it; Generate's own per-token evaluations skip
// that copy of a vocabulary's floats. progress, if not nil, learns after
// each micro-batch how many of the tokens to evaluate (the pending one
// included) are in the cache.
func (s *Session) eval(ctx context.Context, tokens []int32, all, keep bool, progress func(done, total int)) ([][]float32, error) {
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
	if len(tokens) == 0 && s.pending == 0 {
		return nil, errors.New("ocelot: no tokens to evaluate")
	}
	// Every id is checked before any is evaluated, so a bad one leaves
	// the session as it was.
	for i, id := range tokens {
		if id < 0 || int(id) >= m.net.NVocab {
			return nil, fmt.Errorf("ocelot: token id %d at index %d of the input is outside the vocabulary [0, %d)", id, i, m.net.NVocab)
		}
	}
	if need := len(s.tokens) + len(tokens); need > m.opt.NCtx {
		return nil, fmt.Errorf("ocelot: %d tokens (%d new after %d in the sequence) do not fit the context of %d (n_ctx); raise -c or shorten the prompt", need, len(tokens), len(s.tokens), m.opt.NCtx)
	}
	base, pending := len(s.tokens)-s.pending, s.pending
	s.tokens = append(s.tokens, tokens...)
	if base == 0 && pending == 0 {
		// An empty session may start from another's cache of the same
		// prefix (the prompt cache across sessions).
		base = s.sq.adopt(s.tokens)
	}
	in := s.tokens[base:]
	s.evaluated = 0
	var onBatch func(int)
	if progress != nil {
		onBatch = func(done int) { progress(done, len(in)) }
	}
	out, err := s.sq.eval(ctx, in, all, onBatch)
	// What reached the cache is the sequence now, also after an error in a
	// later micro-batch; a pending token that did not reach it stays
	// pending.
	pos := s.sq.pos()
	s.evaluated = max(0, pos-base)
	kept := max(pos, base+pending)
	s.tokens, s.pending, s.last = s.tokens[:kept], kept-pos, nil
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
	if all {
		out = out[len(in)-len(tokens):] // not the pending token's row
	}
	if n := len(out); n > 0 && keep {
		s.last = append(s.last[:0], out[n-1]...)
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
	PromptTokens int           // tokens evaluated before the first sample (a pending token included; not those another session's cache held)
	Prompt       time.Duration // evaluating them
	GenTokens    int           // tokens generated: len(Result.Tokens)
	Gen          time.Duration // from the first sample to the end
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

// StopReason says why a generation ended.
type StopReason string

// The reasons.
const (
	StopLimit     StopReason = "limit"     // the token limit was reached
	StopEOG       StopReason = "eog"       // the model produced an end-of-generation token
	StopString    StopReason = "stop"      // a stop string was produced
	StopContext   StopReason = "context"   // the context (n_ctx) is full
	StopCancelled StopReason = "cancelled" // the context.Context was cancelled
	StopError     StopReason = "error"     // an error ended it (Generate returns it)
)

// Result is what Generate produced.
type Result struct {
	// Tokens are the generated ids, in the sequence now: the
	// end-of-generation token is excluded (never added); the tokens of a
	// matched stop string are included.
	Tokens []int32
	// Text is the generated text as onToken received it: without a
	// matched stop string and what followed it.
	Text    string
	Stopped StopReason
	Timings Timings
	// Logprobs has one entry per generated token when
	// GenerateOptions.Logprobs asked for them.
	Logprobs []TokenLogprobs
}

// Sampler picks the next token: sample.TokenSampler, which
// *sample.Sampler and *sample.Chain implement (Model.GrammarSampler makes
// a chain constrained by a grammar). Accept is told every token added to
// the sequence, the prompt's included; Sample returns -1 when nothing
// may come next (a grammar that allows no token).
type Sampler = sample.TokenSampler

// TokenLogprobs are a generated token's log-probability and the most
// likely alternatives, from the distribution the sampler drew from.
type TokenLogprobs struct {
	Chosen sample.TokenLogprob
	Top    []sample.TokenLogprob
}

// logprobber is a sampler that reports the distribution of its last draw
// (*sample.Sampler and *sample.Chain do).
type logprobber interface {
	LastLogprobs(n int) (sample.TokenLogprob, []sample.TokenLogprob)
}

// GenerateOptions configure GenerateWith. Zero values are the defaults.
type GenerateOptions struct {
	// Sampler picks tokens (nil: greedy).
	Sampler Sampler
	// MaxTokens is the most tokens to generate; 0 or less generates until
	// the end of generation or a full context.
	MaxTokens int
	// Stop strings end the generation when the generated text contains
	// one, matched across token boundaries; the stop string and anything
	// after it are not passed to OnToken.
	Stop []string
	// OnToken receives each generated token and the text that became
	// final with it (text is held back while it could be the start of a
	// stop string or of a UTF-8 character, and flushed at the end with id
	// -1). An error stops the generation with that error.
	OnToken func(id int32, text string) error
	// Logprobs > 0 records, for every generated token, its log-probability
	// and that many most likely alternatives (Result.Logprobs); the
	// sampler must report them (sample's do).
	Logprobs int
	// OnPrompt, if not nil, is called after each micro-batch of the
	// prompt's evaluation with the tokens evaluated so far and their total
	// (a progress display for long prompts).
	OnPrompt func(done, total int)
}

// Generate evaluates prompt, then samples up to n tokens (n < 0: until the
// context is full), calling onToken with each token id and its text as
// soon as the text is whole UTF-8. It is GenerateWith with those options.
func (s *Session) Generate(ctx context.Context, prompt []int32, smp Sampler, n int, onToken func(id int32, text string) error) (Result, error) {
	if n == 0 { // evaluate the prompt, generate nothing
		start := time.Now()
		res := Result{Stopped: StopLimit, Timings: Timings{PromptTokens: len(prompt)}}
		if len(prompt) > 0 {
			if _, err := s.Eval(ctx, prompt); err != nil {
				res.Stopped = StopError
				return res, err
			}
		}
		res.Timings.Prompt = time.Since(start)
		return res, nil
	}
	return s.GenerateWith(ctx, prompt, GenerateOptions{Sampler: smp, MaxTokens: max(n, 0), OnToken: onToken})
}

// GenerateWith evaluates prompt (which may be empty to continue the
// sequence), then samples tokens until the end of generation, the token
// limit, a stop string or a full context, and says which in
// Result.Stopped. When ctx is cancelled it stops between micro-batches
// and returns what it made, Stopped StopCancelled, and ctx's error. A
// second call on the same session while one runs returns ErrBusy.
func (s *Session) GenerateWith(ctx context.Context, prompt []int32, o GenerateOptions) (res Result, err error) {
	if !s.generating.CompareAndSwap(false, true) {
		return res, ErrBusy
	}
	defer s.generating.Store(false)
	smp := o.Sampler
	if smp == nil || isNilSampler(smp) {
		smp = sample.Greedy()
	}
	defer func() {
		if err != nil {
			res.Stopped = StopError
			if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				res.Stopped = StopCancelled
			}
		}
	}()
	lp, _ := smp.(logprobber)
	if o.Logprobs > 0 && lp == nil {
		return res, fmt.Errorf("ocelot: logprobs: the sampler %T does not report them", smp)
	}
	for _, id := range prompt {
		smp.Accept(id)
	}
	start := time.Now()
	logits, evaluated, err := s.start(ctx, prompt, o.OnPrompt)
	if err != nil {
		return res, err
	}
	res.Timings.PromptTokens, res.Timings.Prompt = evaluated, time.Since(start)
	// While it decodes, the engine batches this session's next token with
	// those of the other sessions decoding.
	s.sq.busy(true)
	defer s.sq.busy(false)
	out := &textOut{stop: o.Stop, on: o.OnToken}
	defer func() { res.Text = out.text.String() }()
	dec := s.m.tok.NewStreamDecoder()
	start = time.Now()
	defer func() { res.Timings.Gen, res.Timings.GenTokens = time.Since(start), len(res.Tokens) }()
	for {
		id := smp.Sample(logits)
		if id < 0 || int(id) >= len(logits) {
			return res, fmt.Errorf("ocelot: the sampler picked no token (%d): a grammar that allows nothing here?", id)
		}
		if o.Logprobs > 0 {
			chosen, top := lp.LastLogprobs(o.Logprobs)
			res.Logprobs = append(res.Logprobs, TokenLogprobs{chosen, top})
		}
		if s.m.tok.IsEOG(id) {
			res.Stopped = StopEOG
			return res, out.flush(dec.Flush())
		}
		res.Tokens = append(res.Tokens, id)
		smp.Accept(id)
		text, err := dec.Add(id)
		if err != nil {
			s.keep(id)
			return res, err
		}
		stopped, err := out.add(id, text)
		switch {
		case err != nil:
			s.keep(id)
			return res, err
		case stopped:
			s.keep(id)
			res.Stopped = StopString
			return res, nil
		case o.MaxTokens > 0 && len(res.Tokens) == o.MaxTokens:
			s.keep(id)
			res.Stopped = StopLimit
			return res, out.flush(dec.Flush())
		case s.Pos() >= s.m.opt.NCtx:
			s.keep(id)
			res.Stopped = StopContext
			return res, out.flush(dec.Flush())
		}
		next, err := s.eval(ctx, []int32{id}, false, false, nil)
		if err != nil {
			return res, err
		}
		logits = next[0]
	}
}

// isNilSampler reports a typed nil (a nil *sample.Sampler in the
// interface), which means greedy as nil does.
func isNilSampler(smp Sampler) bool {
	p, ok := smp.(*sample.Sampler)
	return ok && p == nil
}

// start evaluates the prompt (after a pending token) and returns the
// logits to sample from and how many tokens it evaluated. An empty prompt
// continues the sequence: from the pending token, from the logits the
// last evaluation left, or by evaluating the last token again. progress
// is GenerateOptions.OnPrompt.
func (s *Session) start(ctx context.Context, prompt []int32, progress func(done, total int)) ([]float32, int, error) {
	s.mu.Lock()
	pending, last, n := s.pending, s.last, len(s.tokens)
	s.mu.Unlock()
	switch {
	case len(prompt) > 0 || pending > 0:
		out, err := s.eval(ctx, prompt, false, false, progress)
		if err != nil {
			return nil, 0, err
		}
		s.mu.Lock()
		evaluated := s.evaluated
		s.mu.Unlock()
		return out[0], evaluated, nil
	case last != nil:
		return last, 0, nil
	case n == 0:
		return nil, 0, errors.New("ocelot: no tokens to evaluate: the prompt and the sequence are empty")
	}
	// The cache was truncated or restored: evaluate its last token again.
	s.mu.Lock()
	tok := s.tokens[n-1]
	err := s.truncate(n - 1)
	s.mu.Unlock()
	if err != nil {
		return nil, 0, err
	}
	out, err := s.eval(ctx, []int32{tok}, false, false, nil)
	if err != nil {
		return nil, 0, err
	}
	return out[0], 1, nil
}

// keep adds a generated token to the sequence without evaluating it: it
// is pending (see Session).
func (s *Session) keep(id int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = append(s.tokens, id)
	s.pending++
	s.last = nil
}

// textOut passes generated text on, holding back what could still turn
// into a stop string.
type textOut struct {
	stop []string
	on   func(int32, string) error
	text strings.Builder // what was passed on: Result.Text
	held string
}

// add takes a token's text and reports whether a stop string is now
// complete.
func (t *textOut) add(id int32, text string) (bool, error) {
	t.held += text
	for _, st := range t.stop {
		if st == "" {
			continue
		}
		if i := strings.Index(t.held, st); i >= 0 {
			return true, t.emit(id, t.held[:i])
		}
	}
	// Emit all but the longest tail that is a prefix of a stop string.
	keep := 0
	for _, st := range t.stop {
		for k := min(len(st)-1, len(t.held)); k > keep; k-- {
			if strings.HasSuffix(t.held, st[:k]) {
				keep = k
				break
			}
		}
	}
	out := t.held[:len(t.held)-keep]
	t.held = t.held[len(t.held)-keep:]
	return false, t.emit(id, out)
}

// flush passes on the held text and the decoder's tail at the end.
func (t *textOut) flush(tail string) error {
	text := t.held + tail
	t.held = ""
	if text == "" {
		return nil
	}
	return t.emit(-1, text)
}

func (t *textOut) emit(id int32, text string) error {
	t.text.WriteString(text)
	if t.on == nil || (text == "" && id < 0) {
		return nil
	}
	return t.on(id, text)
}
