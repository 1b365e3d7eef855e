package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ocelot-llm/ocelot"
	"github.com/ocelot-llm/ocelot/internal/testmodel"
)

// serveTest starts the API over the model at path.
func serveTest(t *testing.T, path, key string, parallel, queue int) (*server, *httptest.Server, *ocelot.Model) {
	t.Helper()
	m, err := ocelot.Load(path, ocelot.Options{Backend: "cpu", NCtx: 128, Parallel: parallel})
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(m, "test-model", key, parallel, queue)
	hs := httptest.NewServer(s)
	t.Cleanup(func() { hs.Close(); m.Close() })
	return s, hs, m
}

// post sends body to path with the key (if any) and decodes the JSON
// answer.
func post(t *testing.T, hs *httptest.Server, path, key, body string) (int, map[string]any, http.Header) {
	t.Helper()
	req, err := http.NewRequest("POST", hs.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatalf("%s: the answer is not JSON: %v", path, err)
	}
	return resp.StatusCode, v, resp.Header
}

// A greedy completion over HTTP is what the Go API generates, with
// OpenAI's fields: the text, finish_reason "length" at max_tokens, usage.
func TestServeCompletion(t *testing.T) {
	_, hs, m := serveTest(t, trainedModel, "", 1, 4)
	prompt := "package strings\n\n// Reverse returns s with its runes in reverse order.\nfunc Reverse(s string) string {\n"
	body, _ := json.Marshal(map[string]any{"model": "test-model", "prompt": prompt, "max_tokens": 12, "temperature": 0})
	code, v, _ := post(t, hs, "/v1/completions", "", string(body))
	if code != 200 {
		t.Fatalf("code %d: %v", code, v)
	}
	ids, err := m.Tokenize(prompt, true, false)
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want, err := s.Generate(context.Background(), ids, nil, 12, nil)
	if err != nil {
		t.Fatal(err)
	}
	choice := v["choices"].([]any)[0].(map[string]any)
	usage := v["usage"].(map[string]any)
	if choice["text"] != want.Text || choice["finish_reason"] != "length" || v["object"] != "text_completion" ||
		usage["prompt_tokens"] != float64(len(ids)) || usage["completion_tokens"] != 12.0 {
		t.Errorf("answer %v; want text %q", v, want.Text)
	}
}

// A streamed chat completion is a series of server-sent events: the
// assistant's role, the content in pieces, a finish_reason, the usage when
// asked for, then [DONE].
func TestServeChatStream(t *testing.T) {
	_, hs, _ := serveTest(t, testmodel.Preset(t, "tiny"), "k3y", 1, 4)
	body := `{"messages":[{"role":"user","content":"Hello"}],"max_tokens":6,"temperature":0,"stream":true,"stream_options":{"include_usage":true}}`
	req, _ := http.NewRequest("POST", hs.URL+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer k3y")
	resp, err := hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("code %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var events []map[string]any
	done := false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if line == "[DONE]" {
			done = true
			break
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("event %q: %v", line, err)
		}
		events = append(events, v)
	}
	if !done || len(events) < 3 {
		t.Fatalf("%d events, [DONE] %v", len(events), done)
	}
	delta := func(i int) map[string]any {
		return events[i]["choices"].([]any)[0].(map[string]any)["delta"].(map[string]any)
	}
	if delta(0)["role"] != "assistant" {
		t.Errorf("first event %v", events[0])
	}
	last, usage := events[len(events)-2], events[len(events)-1]
	if last["choices"].([]any)[0].(map[string]any)["finish_reason"] == nil || usage["usage"].(map[string]any)["completion_tokens"] == nil {
		t.Errorf("finish %v, usage %v", last, usage)
	}
	for _, e := range events[:len(events)-1] {
		if e["object"] != "chat.completion.chunk" || e["model"] != "test-model" {
			t.Errorf("event %v", e)
		}
	}
}

// Errors are OpenAI-style JSON with a status that says what is wrong.
func TestServeErrors(t *testing.T) {
	s, hs, _ := serveTest(t, testmodel.Preset(t, "tiny"), "secret", 1, 0)
	long := strings.Repeat("hunt at night ", 200)
	longBody, _ := json.Marshal(map[string]any{"prompt": long})
	for _, c := range []struct {
		path, key, body string
		code            int
		msg             string
	}{
		{"/v1/completions", "", `{"prompt":"x"}`, 401, "API key"},
		{"/v1/completions", "wrong", `{"prompt":"x"}`, 401, "API key"},
		{"/v1/completions", "secret", `{"prompt":`, 400, "not a valid request"},
		{"/v1/completions", "secret", `{"prompt":7}`, 400, "not a valid request"},
		{"/v1/completions", "secret", `{"model":"gpt-4","prompt":"x"}`, 404, `"gpt-4" does not exist`},
		{"/v1/completions", "secret", `{}`, 400, "prompt is required"},
		{"/v1/completions", "secret", string(longBody), 400, "context"},
		{"/v1/completions", "secret", `{"prompt":"x","max_tokens":0}`, 400, "max_tokens"},
		{"/v1/completions", "secret", `{"prompt":"x","stop":[1]}`, 400, "stop"},
		{"/v1/completions", "secret", `{"prompt":"x","response_format":{"type":"yaml"}}`, 400, "response_format"},
		{"/v1/completions", "secret", `{"prompt":"x","logit_bias":{"a":1}}`, 400, "logit_bias"},
		{"/v1/chat/completions", "secret", `{"messages":[]}`, 400, "messages"},
		{"/v1/nothing", "secret", `{}`, 404, "no endpoint"},
	} {
		code, v, _ := post(t, hs, c.path, c.key, c.body)
		e, _ := v["error"].(map[string]any)
		if code != c.code || e == nil || !strings.Contains(e["message"].(string), c.msg) {
			t.Errorf("%s %s: %d %v, want %d and %q", c.path, c.body, code, v, c.code, c.msg)
		}
	}
	// /health needs no key; /v1/models does.
	resp, err := hs.Client().Get(hs.URL + "/health")
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("/health: %v %v", resp, err)
	}
	resp.Body.Close()
	req, _ := http.NewRequest("GET", hs.URL+"/v1/models", nil)
	req.Header.Set("Authorization", "Bearer secret")
	resp, err = hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var models map[string]any
	json.NewDecoder(resp.Body).Decode(&models)
	resp.Body.Close()
	if resp.StatusCode != 200 || models["data"].([]any)[0].(map[string]any)["id"] != "test-model" {
		t.Errorf("/v1/models: %d %v", resp.StatusCode, models)
	}
	// A full queue answers 503 with Retry-After at once.
	s.queue <- struct{}{}
	code, v, h := post(t, hs, "/v1/completions", "secret", `{"prompt":"x","max_tokens":1}`)
	<-s.queue
	if code != 503 || h.Get("Retry-After") == "" {
		t.Errorf("a full queue: %d %v, Retry-After %q", code, v, h.Get("Retry-After"))
	}
	// JSON mode answers (the grammar keeps the text a JSON prefix).
	code, v, _ = post(t, hs, "/v1/completions", "secret", `{"prompt":"{","max_tokens":4,"response_format":{"type":"json_object"}}`)
	if code != 200 {
		t.Errorf("json_object: %d %v", code, v)
	}
}

// A request whose prompt restates an earlier one's prompt and answer (a
// chat resending its history) evaluates only the new part, from an idle
// session's cache, and answers what a fresh server answers.
func TestServePromptCache(t *testing.T) {
	_, hs, _ := serveTest(t, trainedModel, "", 1, 4)
	complete := func(hs *httptest.Server, prompt string) (string, map[string]any) {
		body, _ := json.Marshal(map[string]any{"prompt": prompt, "max_tokens": 8, "temperature": 0})
		code, v, _ := post(t, hs, "/v1/completions", "", string(body))
		if code != 200 {
			t.Fatalf("code %d: %v", code, v)
		}
		return v["choices"].([]any)[0].(map[string]any)["text"].(string), v["usage"].(map[string]any)
	}
	first := "package main\n\nimport \"fmt\"\n\nfunc main() {\n"
	out, usage := complete(hs, first)
	if c := usage["prompt_tokens_details"].(map[string]any)["cached_tokens"]; c != 0.0 {
		t.Errorf("the first request found %v tokens cached", c)
	}
	second := first + out + "\n}\n\nfunc helper() {\n"
	got, usage := complete(hs, second)
	cached := usage["prompt_tokens_details"].(map[string]any)["cached_tokens"].(float64)
	if cached < 10 || cached >= usage["prompt_tokens"].(float64) {
		t.Errorf("the second request found %v of %v prompt tokens cached", cached, usage["prompt_tokens"])
	}
	_, fresh, _ := serveTest(t, trainedModel, "", 1, 4)
	if want, _ := complete(fresh, second); got != want {
		t.Errorf("from the cache %q, afresh %q", got, want)
	}
}

// Embeddings: one unit vector of n_embd values per input; /metrics counts
// the work in Prometheus's text format.
func TestServeEmbeddingsAndMetrics(t *testing.T) {
	_, hs, m := serveTest(t, trainedModel, "", 1, 4)
	code, v, _ := post(t, hs, "/v1/embeddings", "", `{"input":["func main() {}","package strings"]}`)
	if code != 200 {
		t.Fatalf("code %d: %v", code, v)
	}
	data := v["data"].([]any)
	if len(data) != 2 {
		t.Fatalf("%d embeddings for 2 inputs", len(data))
	}
	for i, d := range data {
		e := d.(map[string]any)["embedding"].([]any)
		var n float64
		for _, x := range e {
			n += x.(float64) * x.(float64)
		}
		if len(e) != m.Config().NEmbd || n < 0.999 || n > 1.001 {
			t.Errorf("embedding %d: %d values, squared norm %f", i, len(e), n)
		}
	}
	if code, v, _ := post(t, hs, "/v1/embeddings", "", `{"input":[]}`); code != 400 {
		t.Errorf("no input: %d %v", code, v)
	}
	post(t, hs, "/v1/completions", "", `{"prompt":"package main","max_tokens":3}`)
	resp, err := hs.Client().Get(hs.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, want := range []string{"# TYPE ocelot_requests_total counter\nocelot_requests_total 2\n", "ocelot_generated_tokens_total 3\n", "ocelot_requests_running 0\n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %q:\n%s", want, b)
		}
	}
}

// A client that goes away mid-stream frees its place at once: its
// generation is cancelled and the next request is served.
func TestServeDisconnect(t *testing.T) {
	s, hs, _ := serveTest(t, trainedModel, "", 1, 0)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", hs.URL+"/v1/completions",
		strings.NewReader(`{"prompt":"package main\n","max_tokens":100,"temperature":0,"stream":true}`))
	resp, err := hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "data: ") {
		t.Fatalf("first line %q, %v", line, err)
	}
	cancel()
	resp.Body.Close()
	// The handler notices the cancellation between tokens; wait for it
	// (bounded), then the one place is free again.
	for i := 0; i < 200 && len(s.queue) > 0; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if code, v, _ := post(t, hs, "/v1/completions", "", `{"prompt":"x","max_tokens":1}`); code != 200 {
		t.Errorf("after a disconnect: %d %v", code, v)
	}
	s.mu.Lock()
	idle := len(s.idle)
	s.mu.Unlock()
	if idle != 1 {
		t.Errorf("%d idle sessions after a cancelled and a finished request, want 1 (the cancelled one is closed)", idle)
	}
}

// A streamed text completion's events, the usage event included, are
// text_completion objects.
func TestServeCompletionStreamUsage(t *testing.T) {
	_, hs, _ := serveTest(t, trainedModel, "", 1, 4)
	resp, err := hs.Client().Post(hs.URL+"/v1/completions", "application/json",
		strings.NewReader(`{"prompt":"package main\n","max_tokens":3,"temperature":0,"stream":true,"stream_options":{"include_usage":true}}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	n, usage := 0, false
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok || line == "[DONE]" {
			continue
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatal(err)
		}
		n++
		if v["object"] != "text_completion" {
			t.Errorf("event %v", v)
		}
		if v["usage"] != nil {
			usage = true
		}
	}
	if n < 2 || !usage {
		t.Errorf("%d events, usage %v", n, usage)
	}
}

// stream posts a streamed (chat) completion to path and returns its
// text, whether it ended with [DONE], and its events.
func stream(t *testing.T, hs *httptest.Server, path, body string) (string, bool, []map[string]any) {
	t.Helper()
	resp, err := hs.Client().Post(hs.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Error(err)
		return "", false, nil
	}
	defer resp.Body.Close()
	var text strings.Builder
	var events []map[string]any
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if line == "[DONE]" {
			return text.String(), true, events
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Errorf("event %q: %v", line, err)
			return "", false, nil
		}
		events = append(events, v)
		if ch, ok := v["choices"].([]any); ok && len(ch) > 0 {
			c := ch[0].(map[string]any)
			if d, ok := c["delta"].(map[string]any); ok {
				s, _ := d["content"].(string)
				text.WriteString(s)
			} else if s, ok := c["text"].(string); ok {
				text.WriteString(s)
			}
		}
	}
	return text.String(), false, events
}

// Sixteen clients streaming at once, eight generating together: every
// stream completes with what its request gives alone, and their tokens
// shared forward passes.
func TestServeConcurrentStreams(t *testing.T) {
	_, hs, m := serveTest(t, trainedModel, "", 8, 16)
	const clients = 16
	bodies := make([]string, clients)
	want := make([]string, clients)
	for i := range clients {
		prompt := fmt.Sprintf("package p\n\nfunc f%d(", i)
		bodies[i] = fmt.Sprintf(`{"prompt":%q,"max_tokens":10,"temperature":0,"stream":true}`, prompt)
		ids, err := m.Tokenize(prompt, true, false)
		if err != nil {
			t.Fatal(err)
		}
		s, err := m.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Generate(context.Background(), ids, nil, 10, nil)
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		want[i] = res.Text
	}
	before := m.Stats()
	var wg sync.WaitGroup
	got := make([]string, clients)
	done := make([]bool, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], done[i], _ = stream(t, hs, "/v1/completions", bodies[i])
		}()
	}
	wg.Wait()
	for i := range clients {
		if !done[i] || got[i] != want[i] {
			t.Errorf("client %d: [DONE] %v, text %q, want %q", i, done[i], got[i], want[i])
		}
	}
	st := m.Stats()
	steps, seqs := st.Steps-before.Steps, st.StepSeqs-before.StepSeqs
	if steps == 0 || seqs < 2*steps {
		t.Errorf("%d micro-batches held %d sequences: fewer than two each on average", steps, seqs)
	}
	t.Logf("%d micro-batches, %.1f sequences each", steps, float64(seqs)/float64(steps))
}

// logprobs: chat's content list and a completion's arrays, one record per
// generated token, the chosen token the most likely one under greedy
// decoding, the alternatives as many as asked for.
func TestServeLogprobs(t *testing.T) {
	_, hs, _ := serveTest(t, testmodel.Preset(t, "tiny"), "", 1, 4)
	code, v, _ := post(t, hs, "/v1/chat/completions", "", `{"messages":[{"role":"user","content":"func main() {"}],"max_tokens":5,"temperature":0,"logprobs":true,"top_logprobs":3}`)
	if code != 200 {
		t.Fatalf("code %d: %v", code, v)
	}
	choice := v["choices"].([]any)[0].(map[string]any)
	content := choice["logprobs"].(map[string]any)["content"].([]any)
	var text strings.Builder
	for _, c := range content {
		e := c.(map[string]any)
		top := e["top_logprobs"].([]any)
		if len(top) != 3 || top[0].(map[string]any)["token"] != e["token"] || e["logprob"].(float64) > 0 {
			t.Errorf("record %v", e)
		}
		text.WriteString(e["token"].(string))
	}
	if n := int(v["usage"].(map[string]any)["completion_tokens"].(float64)); len(content) != n {
		t.Errorf("%d records for %d tokens", len(content), n)
	}
	if msg := choice["message"].(map[string]any)["content"].(string); text.String() != msg {
		t.Errorf("the records' tokens spell %q, the message is %q", text.String(), msg)
	}
	code, v, _ = post(t, hs, "/v1/completions", "", `{"prompt":"package main","max_tokens":4,"temperature":0,"logprobs":2}`)
	if code != 200 {
		t.Fatalf("code %d: %v", code, v)
	}
	lp := v["choices"].([]any)[0].(map[string]any)["logprobs"].(map[string]any)
	if len(lp["tokens"].([]any)) != 4 || len(lp["token_logprobs"].([]any)) != 4 || len(lp["top_logprobs"].([]any)[0].(map[string]any)) != 2 {
		t.Errorf("completion logprobs %v", lp)
	}
	for _, bad := range []string{
		`{"prompt":"x","logprobs":true}`,
		`{"messages":[{"role":"user","content":"x"}],"logprobs":true,"top_logprobs":21}`,
		`{"messages":[{"role":"user","content":"x"}],"top_logprobs":2}`,
		`{"prompt":"x","temperature":3}`,
		`{"prompt":"x","top_p":0}`,
		`{"prompt":"x","presence_penalty":5}`,
		`{"prompt":"x","logit_bias":{"99999999":1}}`,
		`{"prompt":"x","logit_bias":{"1":500}}`,
	} {
		path := "/v1/completions"
		if strings.Contains(bad, "messages") {
			path = "/v1/chat/completions"
		}
		if code, v, _ := post(t, hs, path, "", bad); code != 400 || v["error"] == nil {
			t.Errorf("%s: code %d, %v", bad, code, v)
		}
	}
}
