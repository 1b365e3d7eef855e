package main

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ocelot-llm/ocelot"
	"github.com/ocelot-llm/ocelot/quant"
	"github.com/ocelot-llm/ocelot/sample"
)

func init() {
	register(&command{name: "serve", summary: "an OpenAI-compatible HTTP server (completions, chat, embeddings)", run: runServe})
}

// The server's limits.
const (
	serveMaxBody   = 1 << 20 // bytes of a request body
	serveMaxStops  = 8       // stop strings of a request
	serveMaxInputs = 64      // inputs of an embeddings request
	serveMaxTopLP  = 20      // top_logprobs (OpenAI's bound)
	serveMaxBias   = 1024    // logit_bias entries
)

func runServe(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr)
	var e engineFlags
	e.register(fs)
	host := fs.String("host", "127.0.0.1", "address to listen on (127.0.0.1: this machine only)")
	port := fs.Int("port", 8080, "port to listen on")
	apiKey := fs.String("api-key", "", "require this Bearer token on every endpoint but /health (default: $OCELOT_API_KEY)")
	alias := fs.String("alias", "", "the model's name in the API (default: the file's name)")
	parallel := fs.Int("parallel", 4, "requests generating at once, batched together (the KV pool holds this many sequences of -c tokens at first)")
	fs.IntVar(parallel, "np", 4, "the same as --parallel")
	queue := fs.Int("queue", 16, "requests waiting for a slot, at most; more get 503 with Retry-After")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ocelot serve -m M.gguf [--host 127.0.0.1] [--port 8080] [--parallel 4] [--queue 16] [--api-key KEY] [--alias NAME] [-c N] [-ngl auto] [-ctk f16] [-ctv f16] [--backend auto]")
		fmt.Fprintln(stderr, "\nServes POST /v1/completions, /v1/chat/completions (OpenAI's request and response shapes, stream")
		fmt.Fprintln(stderr, "as server-sent events) and /v1/embeddings, GET /v1/models, /metrics and /health. Requests run one session")
		fmt.Fprintln(stderr, "each, continuing the idle session that shares the longest prefix with the prompt (the prompt cache); up to")
		fmt.Fprintln(stderr, "--parallel requests generate at once, their tokens batched into shared forward passes.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := e.check(fs); err != nil {
		return err
	}
	if *port < 0 || *port > 65535 {
		return usagef("--port must lie in 0..65535, got %d", *port)
	}
	if *parallel < 1 || *parallel > 256 || *queue < 0 || *queue > 1<<16 {
		return usagef("--parallel must lie in 1..256 and --queue in 0..65536, got %d and %d", *parallel, *queue)
	}
	key := *apiKey
	if key == "" {
		key = os.Getenv("OCELOT_API_KEY")
	}
	e.parallel = *parallel
	m, err := e.load(stderr)
	if err != nil {
		return err
	}
	defer m.Close()
	name := *alias
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(e.model), ".gguf")
	}
	srv := newServer(m, name, key, *parallel, *queue)
	ln, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
	ctx, stop := signal.NotifyContext(serveContext, os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(stderr, "ocelot serve: %s on http://%s (model %q, %d parallel, queue %d, API key %v)\n", e.model, ln.Addr(), name, *parallel, *queue, key != "")
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	// SIGINT/SIGTERM: stop accepting, give running requests 10 s to
	// finish, then cancel them.
	fmt.Fprintln(stderr, "ocelot serve: shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = hs.Shutdown(sctx)
	srv.cancel()
	if errors.Is(err, context.DeadlineExceeded) {
		hs.Close()
	}
	return nil
}

// serveContext is the parent of serve's lifetime: cancelling it shuts
// the server down as SIGINT does (tests do).
var serveContext = context.Background()

// server answers the API for one model.
type server struct {
	m      *ocelot.Model
	name   string
	key    string
	slots  chan struct{} // one per request that may generate at once
	queue  chan struct{} // one per request that may wait for a slot
	ctx    context.Context
	cancel context.CancelFunc
	nextID atomic.Uint64
	mux    *http.ServeMux

	// idle sessions, kept for the prompt cache: a request takes the one
	// whose sequence shares the longest prefix with its prompt. At most
	// one per slot, so their KV caches are bounded.
	mu   sync.Mutex
	idle []*ocelot.Session

	// metrics, for /metrics.
	requests, promptTokens, cachedTokens, genTokens, rejected atomic.Int64
	promptMicros, genMicros                                   atomic.Int64 // time evaluating prompts and generating
}

func newServer(m *ocelot.Model, name, key string, parallel, queue int) *server {
	s := &server{m: m, name: name, key: key, slots: make(chan struct{}, parallel), queue: make(chan struct{}, parallel+queue)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("GET /v1/models", s.auth(s.models))
	s.mux.HandleFunc("POST /v1/completions", s.auth(s.completions(false)))
	s.mux.HandleFunc("POST /v1/chat/completions", s.auth(s.completions(true)))
	s.mux.HandleFunc("POST /v1/embeddings", s.auth(s.embeddings))
	s.mux.HandleFunc("GET /metrics", s.auth(s.metrics))
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		apiError(w, http.StatusNotFound, "invalid_request_error", fmt.Sprintf("no endpoint %s %s", r.Method, r.URL.Path))
	})
	return s
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// auth requires the API key, when there is one, as a Bearer token,
// compared in constant time.
func (s *server) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.key != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.key)) != 1 {
				apiError(w, http.StatusUnauthorized, "authentication_error", "a valid API key is required: Authorization: Bearer KEY")
				return
			}
		}
		h(w, r)
	}
}

func (s *server) models(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": []map[string]any{
		{"id": s.name, "object": "model", "created": 0, "owned_by": "ocelot"},
	}})
}

// completionRequest holds the fields of OpenAI's completion and chat
// completion requests that ocelot uses; the others are ignored.
type completionRequest struct {
	Model               string             `json:"model"`
	Prompt              *string            `json:"prompt"`
	Messages            []ocelot.Message   `json:"messages"`
	MaxTokens           *int               `json:"max_tokens"`
	MaxCompletionTokens *int               `json:"max_completion_tokens"`
	Temperature         *float32           `json:"temperature"`
	TopP                *float32           `json:"top_p"`
	Seed                *uint64            `json:"seed"`
	Stop                json.RawMessage    `json:"stop"`
	PresencePenalty     float32            `json:"presence_penalty"`
	FrequencyPenalty    float32            `json:"frequency_penalty"`
	LogitBias           map[string]float32 `json:"logit_bias"`
	// Logprobs is a number in completions (the alternatives per token)
	// and a boolean in chat completions, with TopLogprobs the number.
	Logprobs      json.RawMessage `json:"logprobs"`
	TopLogprobs   *int            `json:"top_logprobs"`
	Stream        bool            `json:"stream"`
	StreamOptions struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	ResponseFormat struct {
		Type       string `json:"type"`
		JSONSchema struct {
			Schema json.RawMessage `json:"schema"`
		} `json:"json_schema"`
	} `json:"response_format"`
}

// stops reads the stop field: a string or an array of strings.
func (q *completionRequest) stops() ([]string, error) {
	if len(q.Stop) == 0 || string(q.Stop) == "null" {
		return nil, nil
	}
	many, err := stringOrList(q.Stop)
	if err != nil {
		return nil, errors.New("stop must be a string or an array of strings")
	}
	if len(many) > serveMaxStops {
		return nil, fmt.Errorf("stop has %d strings, at most %d", len(many), serveMaxStops)
	}
	return many, nil
}

// logprobs reads logprobs and top_logprobs: whether to report the
// chosen tokens' log-probabilities, and how many alternatives each. A
// completion's logprobs is the number of alternatives; a chat
// completion's is a boolean, with top_logprobs the number.
func (q *completionRequest) logprobs(chat bool) (bool, int, error) {
	raw := string(q.Logprobs)
	if raw == "" || raw == "null" {
		if q.TopLogprobs != nil && *q.TopLogprobs > 0 {
			return false, 0, errors.New("top_logprobs needs logprobs: true")
		}
		return false, 0, nil
	}
	var on bool
	n := 0
	if chat {
		if err := json.Unmarshal(q.Logprobs, &on); err != nil {
			return false, 0, errors.New("logprobs must be true or false in a chat completion")
		}
		if q.TopLogprobs != nil {
			n = *q.TopLogprobs
		}
	} else {
		if err := json.Unmarshal(q.Logprobs, &n); err != nil {
			return false, 0, errors.New("logprobs must be a number of alternatives in a completion")
		}
		on = true
	}
	if n < 0 || n > serveMaxTopLP {
		return false, 0, fmt.Errorf("top_logprobs must lie in 0..%d, got %d", serveMaxTopLP, n)
	}
	return on, n, nil
}

// lpSampler records, after every Sample, the chosen token's
// log-probability and the top alternatives, for the tokens the
// generation keeps (Accept counts them; the end-of-generation token it
// never accepts is not reported).
type lpSampler struct {
	ocelot.Sampler
	lp interface {
		LastLogprobs(n int) (sample.TokenLogprob, []sample.TokenLogprob)
	}
	top      int
	pending  []ocelot.TokenLogprobs // sampled, not yet sent
	accepted int                    // tokens kept (Accept after Sample)
	sampled  bool
}

func (l *lpSampler) Sample(logits []float32) int32 {
	id := l.Sampler.Sample(logits)
	chosen, top := l.lp.LastLogprobs(max(l.top, 1))
	l.pending = append(l.pending, ocelot.TokenLogprobs{Chosen: chosen, Top: top[:min(len(top), l.top)]})
	l.sampled = true
	return id
}

func (l *lpSampler) Accept(id int32) {
	l.Sampler.Accept(id)
	if l.sampled { // the prompt's tokens are accepted before any Sample
		l.accepted++
	}
}

// take returns the records of the kept tokens not yet taken.
func (l *lpSampler) take() []ocelot.TokenLogprobs {
	n := min(len(l.pending), l.accepted)
	out := l.pending[:n:n]
	l.pending, l.accepted = l.pending[n:], l.accepted-n
	return out
}

// logprobsJSON renders records as OpenAI's logprobs object: chat's
// content list, or a completion's parallel arrays.
func (s *server) logprobsJSON(chat bool, recs []ocelot.TokenLogprobs) any {
	text := func(id int32) string {
		t, _ := s.m.Detokenize([]int32{id})
		return t
	}
	if chat {
		content := make([]any, 0, len(recs))
		for _, r := range recs {
			top := make([]any, 0, len(r.Top))
			for _, a := range r.Top {
				t := text(a.ID)
				top = append(top, map[string]any{"token": t, "logprob": a.Logprob, "bytes": []byte(t)})
			}
			t := text(r.Chosen.ID)
			content = append(content, map[string]any{"token": t, "logprob": r.Chosen.Logprob, "bytes": []byte(t), "top_logprobs": top})
		}
		return map[string]any{"content": content}
	}
	tokens, lps, tops := []string{}, []float32{}, []any{}
	for _, r := range recs {
		tokens = append(tokens, text(r.Chosen.ID))
		lps = append(lps, r.Chosen.Logprob)
		top := map[string]float32{}
		for _, a := range r.Top {
			top[text(a.ID)] = a.Logprob
		}
		tops = append(tops, top)
	}
	return map[string]any{"tokens": tokens, "token_logprobs": lps, "top_logprobs": tops}
}

// stringOrList reads a JSON string or array of strings as a list.
func stringOrList(raw json.RawMessage) ([]string, error) {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, err
	}
	return many, nil
}

// readRequest decodes a request body of at most serveMaxBody bytes into v
// and checks the model it names (model points into v), or answers the
// error and reports false.
func (s *server) readRequest(w http.ResponseWriter, r *http.Request, v any, model *string) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, serveMaxBody)).Decode(v); err != nil {
		apiError(w, http.StatusBadRequest, "invalid_request_error", "the request body is not a valid request: "+err.Error())
		return false
	}
	if *model != "" && *model != s.name {
		apiError(w, http.StatusNotFound, "invalid_request_error", fmt.Sprintf("model %q does not exist: this server has %q", *model, s.name))
		return false
	}
	return true
}

// sampler builds the request's sampler: OpenAI's defaults (temperature 1,
// top_p 1), a random seed unless given, and a JSON grammar for
// response_format json_object or json_schema.
func (s *server) sampler(q *completionRequest) (ocelot.Sampler, error) {
	p := sample.Params{Temp: 1, TopP: 1, RepeatPenalty: 1, Seed: sample.RandomSeed(),
		PresencePenalty: q.PresencePenalty, FrequencyPenalty: q.FrequencyPenalty}
	if q.Temperature != nil {
		if t := *q.Temperature; !(t >= 0 && t <= 2) {
			return nil, fmt.Errorf("temperature must lie in 0..2, got %v", t)
		}
		p.Temp = *q.Temperature
	}
	if q.TopP != nil {
		if t := *q.TopP; !(t > 0 && t <= 1) {
			return nil, fmt.Errorf("top_p must lie in (0, 1], got %v", t)
		}
		p.TopP = *q.TopP
	}
	for name, v := range map[string]float32{"presence_penalty": q.PresencePenalty, "frequency_penalty": q.FrequencyPenalty} {
		if !(v >= -2 && v <= 2) {
			return nil, fmt.Errorf("%s must lie in -2..2, got %v", name, v)
		}
	}
	if len(q.LogitBias) > serveMaxBias {
		return nil, fmt.Errorf("logit_bias has %d entries, at most %d", len(q.LogitBias), serveMaxBias)
	}
	if q.Seed != nil {
		p.Seed = *q.Seed
	}
	if len(q.LogitBias) > 0 {
		p.LogitBias = map[int32]float32{}
		for k, v := range q.LogitBias {
			id, err := strconv.ParseInt(k, 10, 32)
			if err != nil || id < 0 || int(id) >= s.m.Config().NVocab {
				return nil, fmt.Errorf("logit_bias: %q is not a token id of this model (0..%d)", k, s.m.Config().NVocab-1)
			}
			if !(v >= -100 && v <= 100) {
				return nil, fmt.Errorf("logit_bias of token %s must lie in -100..100, got %v", k, v)
			}
			p.LogitBias[int32(id)] = v
		}
	}
	switch q.ResponseFormat.Type {
	case "", "text":
		smp, err := sample.New(p)
		if err != nil {
			return nil, err
		}
		return smp, nil
	case "json_object":
		return s.m.JSONSampler(p, nil)
	case "json_schema":
		if len(q.ResponseFormat.JSONSchema.Schema) == 0 {
			return nil, errors.New("response_format json_schema needs json_schema.schema")
		}
		return s.m.JSONSampler(p, q.ResponseFormat.JSONSchema.Schema)
	}
	return nil, fmt.Errorf("response_format type %q: use text, json_object or json_schema", q.ResponseFormat.Type)
}

// completions serves /v1/completions, or /v1/chat/completions when chat.
func (s *server) completions(chat bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var q completionRequest
		if !s.readRequest(w, r, &q, &q.Model) {
			return
		}
		var text string
		switch {
		case chat && len(q.Messages) == 0:
			apiError(w, http.StatusBadRequest, "invalid_request_error", "messages is required and may not be empty")
			return
		case chat:
			var err error
			if text, err = s.m.ChatPrompt(q.Messages); err != nil {
				apiError(w, http.StatusBadRequest, "invalid_request_error", "messages: "+err.Error())
				return
			}
		case q.Prompt == nil:
			apiError(w, http.StatusBadRequest, "invalid_request_error", "prompt is required (a string)")
			return
		default:
			text = *q.Prompt
		}
		stops, err := q.stops()
		if err != nil {
			apiError(w, http.StatusBadRequest, "invalid_request_error", err.Error())
			return
		}
		smp, err := s.sampler(&q)
		if err != nil {
			apiError(w, http.StatusBadRequest, "invalid_request_error", err.Error())
			return
		}
		wantLP, topLP, err := q.logprobs(chat)
		if err != nil {
			apiError(w, http.StatusBadRequest, "invalid_request_error", err.Error())
			return
		}
		var lps *lpSampler
		if wantLP {
			lp, ok := smp.(interface {
				LastLogprobs(n int) (sample.TokenLogprob, []sample.TokenLogprob)
			})
			if !ok {
				apiError(w, http.StatusBadRequest, "invalid_request_error", "logprobs are not available with this sampler")
				return
			}
			lps = &lpSampler{Sampler: smp, lp: lp, top: topLP}
			smp = lps
		}
		ids, err := s.m.Tokenize(text, true, chat)
		if err != nil {
			apiError(w, http.StatusBadRequest, "invalid_request_error", "prompt: "+err.Error())
			return
		}
		nCtx := s.m.Options().NCtx
		limit := nCtx - len(ids)
		if limit <= 0 {
			apiError(w, http.StatusBadRequest, "invalid_request_error", fmt.Sprintf("the prompt has %d tokens, more than the context of %d leaves room for", len(ids), nCtx))
			return
		}
		for _, n := range []*int{q.MaxTokens, q.MaxCompletionTokens} {
			if n != nil {
				if *n < 1 {
					apiError(w, http.StatusBadRequest, "invalid_request_error", fmt.Sprintf("max_tokens must be 1 or more, got %d", *n))
					return
				}
				limit = min(limit, *n)
			}
		}

		// A place in the queue, or 503 at once; then a slot, or the end
		// of the request.
		s.requests.Add(1)
		select {
		case s.queue <- struct{}{}:
			defer func() { <-s.queue }()
		default:
			s.rejected.Add(1)
			w.Header().Set("Retry-After", "1")
			apiError(w, http.StatusServiceUnavailable, "server_error", "the server is busy: too many requests wait; try again")
			return
		}
		ctx, cancel := context.WithCancel(r.Context()) // a client that goes away cancels
		defer cancel()
		stopOnShutdown := context.AfterFunc(s.ctx, cancel)
		defer stopOnShutdown()
		select {
		case s.slots <- struct{}{}:
			defer func() { <-s.slots }()
		case <-ctx.Done():
			return
		}
		s.generate(ctx, w, chat, q.Stream, q.StreamOptions.IncludeUsage, ids, smp, lps, limit, stops)
	}
}

// generate runs one request's generation and writes its response, whole
// or as server-sent events.
func (s *server) generate(ctx context.Context, w http.ResponseWriter, chat, stream, includeUsage bool, ids []int32, smp ocelot.Sampler, lps *lpSampler, limit int, stops []string) {
	id := fmt.Sprintf("cmpl-%d", s.nextID.Add(1))
	object := "text_completion"
	if chat {
		id, object = "chat"+id, "chat.completion"
	}
	chunkObject := object // a streamed completion's events: text_completion, or chat.completion.chunk
	if chat {
		chunkObject = "chat.completion.chunk"
	}
	created := time.Now().Unix()
	sess, rest, err := s.session(ids)
	if err != nil {
		apiError(w, http.StatusInternalServerError, "server_error", err.Error())
		return
	}
	cached := len(ids) - len(rest)
	keep := false
	defer func() { s.release(sess, keep) }()
	// The sampler sees the whole prompt (its penalties count it), also
	// the part the cache already holds.
	for _, id := range ids[:cached] {
		smp.Accept(id)
	}
	s.promptTokens.Add(int64(len(ids)))
	s.cachedTokens.Add(int64(cached))
	flusher, _ := w.(http.Flusher)
	chunk := func(delta string, finish *string) map[string]any {
		c := map[string]any{"index": 0, "finish_reason": finish}
		if lps != nil && finish == nil {
			c["logprobs"] = s.logprobsJSON(chat, lps.take())
		}
		if chat {
			c["delta"] = map[string]string{"content": delta}
		} else {
			c["text"] = delta
		}
		return map[string]any{"id": id, "object": chunkObject, "created": created, "model": s.name, "choices": []any{c}}
	}
	event := func(v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return err
		}
		if flusher != nil {
			flusher.Flush()
		}
		return nil
	}
	if stream {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		if chat {
			first := chunk("", nil)
			first["choices"].([]any)[0].(map[string]any)["delta"] = map[string]string{"role": "assistant", "content": ""}
			if event(first) != nil {
				return
			}
		}
	}
	opt := ocelot.GenerateOptions{Sampler: smp, MaxTokens: limit, Stop: stops}
	if stream {
		opt.OnToken = func(_ int32, text string) error {
			if text == "" {
				return nil
			}
			return event(chunk(text, nil))
		}
	}
	res, err := sess.GenerateWith(ctx, rest, opt)
	s.genTokens.Add(int64(len(res.Tokens)))
	s.promptMicros.Add(res.Timings.Prompt.Microseconds())
	s.genMicros.Add(res.Timings.Gen.Microseconds())
	keep = err == nil
	if err != nil && ctx.Err() == nil {
		code := http.StatusInternalServerError
		if errors.Is(err, ocelot.ErrKVFull) {
			// Memory, not the request: the pool is full of sequences.
			s.dropIdle()
			code = http.StatusServiceUnavailable
			w.Header().Set("Retry-After", "1")
		}
		if !stream {
			apiError(w, code, "server_error", err.Error())
		} else {
			event(map[string]any{"error": map[string]string{"message": err.Error(), "type": "server_error"}})
		}
		return
	}
	if ctx.Err() != nil {
		return // the client left, or the server is shutting down
	}
	finish := "stop"
	if res.Stopped == ocelot.StopLimit || res.Stopped == ocelot.StopContext {
		finish = "length"
	}
	usage := map[string]any{"prompt_tokens": len(ids), "completion_tokens": len(res.Tokens), "total_tokens": len(ids) + len(res.Tokens),
		"prompt_tokens_details": map[string]int{"cached_tokens": cached}}
	if stream {
		if event(chunk("", &finish)) != nil {
			return
		}
		if includeUsage {
			if event(map[string]any{"id": id, "object": chunkObject, "created": created, "model": s.name, "choices": []any{}, "usage": usage}) != nil {
				return
			}
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
		if flusher != nil {
			flusher.Flush()
		}
		return
	}
	choice := map[string]any{"index": 0, "finish_reason": finish}
	if lps != nil {
		choice["logprobs"] = s.logprobsJSON(chat, lps.take())
	}
	if chat {
		choice["message"] = map[string]string{"role": "assistant", "content": res.Text}
	} else {
		choice["text"] = res.Text
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "object": object, "created": created, "model": s.name,
		"choices": []any{choice}, "usage": usage})
}

// session returns the idle session whose sequence shares the longest
// prefix with ids (or a new one) and the part of ids it still has to
// evaluate.
func (s *server) session(ids []int32) (*ocelot.Session, []int32, error) {
	s.mu.Lock()
	best, bestLen := -1, -1
	for i, sess := range s.idle {
		toks := sess.Tokens()
		n := 0
		for n < len(toks) && n < len(ids) && toks[n] == ids[n] {
			n++
		}
		if n > bestLen {
			best, bestLen = i, n
		}
	}
	var sess *ocelot.Session
	if best >= 0 {
		sess = s.idle[best]
		s.idle = append(s.idle[:best], s.idle[best+1:]...)
	}
	s.mu.Unlock()
	if sess == nil {
		var err error
		if sess, err = s.m.NewSession(); err != nil {
			return nil, nil, err
		}
	}
	rest, err := sess.Reuse(ids)
	if err != nil {
		sess.Close()
		return nil, nil, err
	}
	return sess, rest, nil
}

// release returns a session to the idle ones (keep), or closes it (after
// an error or a cancelled request, or when enough are idle).
func (s *server) release(sess *ocelot.Session, keep bool) {
	s.mu.Lock()
	if keep && len(s.idle) < cap(s.slots) {
		s.idle = append(s.idle, sess)
		sess = nil
	}
	s.mu.Unlock()
	if sess != nil {
		sess.Close()
	}
}

// dropIdle closes the idle sessions, giving their KV cells back.
func (s *server) dropIdle() {
	s.mu.Lock()
	idle := s.idle
	s.idle = nil
	s.mu.Unlock()
	for _, sess := range idle {
		sess.Close()
	}
}

// embeddings serves /v1/embeddings: the mean of the final hidden states of
// each input, scaled to unit length.
func (s *server) embeddings(w http.ResponseWriter, r *http.Request) {
	var q struct {
		Model          string          `json:"model"`
		Input          json.RawMessage `json:"input"`
		EncodingFormat string          `json:"encoding_format"` // float (default) or base64
	}
	if !s.readRequest(w, r, &q, &q.Model) {
		return
	}
	if q.EncodingFormat != "" && q.EncodingFormat != "float" && q.EncodingFormat != "base64" {
		apiError(w, http.StatusBadRequest, "invalid_request_error", fmt.Sprintf("encoding_format %q: use float or base64", q.EncodingFormat))
		return
	}
	inputs, err := stringOrList(q.Input)
	if err != nil || len(inputs) == 0 {
		apiError(w, http.StatusBadRequest, "invalid_request_error", "input must be a string or a non-empty array of strings")
		return
	}
	if len(inputs) > serveMaxInputs {
		apiError(w, http.StatusBadRequest, "invalid_request_error", fmt.Sprintf("input has %d strings, at most %d", len(inputs), serveMaxInputs))
		return
	}
	var ids [][]int32
	total := 0
	for i, in := range inputs {
		t, err := s.m.Tokenize(in, true, false)
		if err != nil || len(t) > s.m.Options().NCtx {
			apiError(w, http.StatusBadRequest, "invalid_request_error", fmt.Sprintf("input %d: %d tokens, more than the context of %d (or %v)", i, len(t), s.m.Options().NCtx, err))
			return
		}
		ids = append(ids, t)
		total += len(t)
	}
	s.requests.Add(1)
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	case <-r.Context().Done():
		return
	}
	vecs, err := s.m.Embed(r.Context(), ids, ocelot.PoolMean)
	if err != nil {
		apiError(w, http.StatusInternalServerError, "server_error", err.Error())
		return
	}
	s.promptTokens.Add(int64(total))
	data := make([]any, len(vecs))
	for i, v := range vecs {
		var e any = v
		if q.EncodingFormat == "base64" {
			// The float32s' little-endian bytes, as OpenAI sends them.
			e = base64.StdEncoding.EncodeToString(quant.Float32sToBytes(v))
		}
		data[i] = map[string]any{"object": "embedding", "index": i, "embedding": e}
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data, "model": s.name,
		"usage": map[string]int{"prompt_tokens": total, "total_tokens": total}})
}

// metrics serves /metrics in Prometheus's text format.
func (s *server) metrics(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	idle := len(s.idle)
	s.mu.Unlock()
	st := s.m.Stats()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	for _, m := range []struct {
		name, kind, help string
		v                float64
	}{
		{"ocelot_requests_total", "counter", "completion, chat and embedding requests accepted for work", float64(s.requests.Load())},
		{"ocelot_requests_rejected_total", "counter", "requests answered 503 because the queue was full", float64(s.rejected.Load())},
		{"ocelot_prompt_tokens_total", "counter", "prompt tokens of the requests", float64(s.promptTokens.Load())},
		{"ocelot_prompt_tokens_cached_total", "counter", "prompt tokens the prompt cache already held", float64(s.cachedTokens.Load())},
		{"ocelot_generated_tokens_total", "counter", "tokens generated", float64(s.genTokens.Load())},
		{"ocelot_requests_waiting", "gauge", "requests queued or generating", float64(len(s.queue))},
		{"ocelot_requests_running", "gauge", "requests generating", float64(len(s.slots))},
		{"ocelot_sessions_idle", "gauge", "idle sessions kept for the prompt cache", float64(idle)},
		{"ocelot_kv_cells", "gauge", "KV cells in the pool", float64(st.KVCells)},
		{"ocelot_kv_cells_used", "gauge", "KV cells held by sequences", float64(st.KVCellsUsed)},
		{"ocelot_batch_steps_total", "counter", "micro-batches evaluated", float64(st.Steps)},
		{"ocelot_batch_sequences_total", "counter", "sequences over all micro-batches (divided by steps: sequences batched together)", float64(st.StepSeqs)},
		{"ocelot_batch_tokens_total", "counter", "tokens over all micro-batches", float64(st.StepTokens)},
		{"ocelot_prompt_seconds_total", "counter", "seconds requests spent evaluating their prompts (prompt tokens / this: prompt tokens/s per request)", float64(s.promptMicros.Load()) / 1e6},
		{"ocelot_generation_seconds_total", "counter", "seconds requests spent generating (generated tokens / this: tokens/s per request)", float64(s.genMicros.Load()) / 1e6},
	} {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %s\n", m.name, m.help, m.name, m.kind, m.name, strconv.FormatFloat(m.v, 'g', -1, 64))
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// apiError writes an OpenAI-style error.
func apiError(w http.ResponseWriter, code int, typ, msg string) {
	writeJSON(w, code, map[string]any{"error": map[string]any{"message": msg, "type": typ, "code": code}})
}
