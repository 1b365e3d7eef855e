package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ocelot-llm/ocelot"
)

// TestServeSoak runs mixed clients against the server for
// $OCELOT_SOAK (a duration, e.g. 10m; the test skips without it):
// greedy completions checked against the Go API's answer, streams read
// to the end, streams dropped midway, malformed requests, embeddings.
// It fails on a wrong answer, on goroutines left over, or on heap growth
// beyond a margin once the KV pool has reached its size
// (docs/RELIABILITY.md has a run).
func TestServeSoak(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("OCELOT_SOAK"))
	if err != nil {
		t.Skip("set OCELOT_SOAK to a duration (10m) to soak the server")
	}
	m, err := ocelot.Load(trainedModel, ocelot.Options{Backend: "cpu", NCtx: 256, Parallel: 8, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s := newServer(m, "test-model", "", 8, 16)
	hs := httptest.NewServer(s)
	defer hs.Close()

	// Prompts whose greedy continuation has no near tie (a margin of
	// 0.05 between the two most likely tokens at every step): batching
	// changes the order of float operations, so a near tie may go either
	// way; these must not.
	var prompts, want []string
	for i := 0; len(prompts) < 12 && i < 60; i++ {
		p := fmt.Sprintf("package p%d\n\nfunc F%d(x int) int {\n", i%3, i)
		ids, _ := m.Tokenize(p, true, false)
		sess, err := m.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		logits, err := sess.Eval(context.Background(), ids)
		clear := true
		var gen []int32
		for step := 0; step < 16 && err == nil && clear; step++ {
			best, second := 0, -1
			for j := range logits {
				if logits[j] > logits[best] {
					best, second = j, best
				} else if j != best && (second < 0 || logits[j] > logits[second]) {
					second = j
				}
			}
			clear = logits[best]-logits[second] >= 0.05
			gen = append(gen, int32(best))
			logits, err = sess.Eval(context.Background(), []int32{int32(best)})
		}
		sess.Close()
		if err != nil {
			t.Fatal(err)
		}
		if clear {
			sess, err := m.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			res, err := sess.Generate(context.Background(), ids, nil, 16, nil)
			sess.Close()
			if err != nil || !slices.Equal(res.Tokens, gen) {
				t.Fatalf("Generate: %v, %v; the greedy tokens were %v", err, res.Tokens, gen)
			}
			prompts, want = append(prompts, p), append(want, res.Text)
		}
	}
	if len(prompts) < 6 {
		t.Fatalf("only %d prompts without near ties", len(prompts))
	}
	client := hs.Client()
	post := func(ctx context.Context, path, body string) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(ctx, "POST", hs.URL+path, strings.NewReader(body))
		return client.Do(req)
	}
	var counts [5]atomic.Int64 // completions, full streams, dropped streams, malformed, embeddings
	var busy atomic.Int64      // 503s (queue full): allowed
	var wrong atomic.Int64
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	var baseHeap uint64
	var baseG int
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	for c := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 9))
			for ctx.Err() == nil {
				i := rng.IntN(len(prompts))
				switch k := rng.IntN(10); {
				case k < 4: // greedy completion, checked
					resp, err := post(ctx, "/v1/completions", fmt.Sprintf(`{"prompt":%q,"max_tokens":16,"temperature":0}`, prompts[i]))
					if err != nil {
						continue
					}
					var v struct {
						Choices []struct{ Text string } `json:"choices"`
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode == 503 {
						busy.Add(1)
						continue
					}
					if json.Unmarshal(body, &v) != nil || len(v.Choices) != 1 || v.Choices[0].Text != want[i] {
						if ctx.Err() == nil {
							wrong.Add(1)
							t.Errorf("prompt %d: %d %s, want text %q", i, resp.StatusCode, body[:min(len(body), 120)], want[i])
						}
						continue
					}
					counts[0].Add(1)
				case k < 6: // a stream read to the end
					resp, err := post(ctx, "/v1/completions", fmt.Sprintf(`{"prompt":%q,"max_tokens":24,"stream":true}`, prompts[i]))
					if err != nil {
						continue
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode == 503 {
						busy.Add(1)
					} else if bytes.HasSuffix(body, []byte("data: [DONE]\n\n")) {
						counts[1].Add(1)
					} else if ctx.Err() == nil {
						wrong.Add(1)
						t.Errorf("stream: %d, ends %q", resp.StatusCode, body[max(0, len(body)-60):])
					}
				case k < 8: // a stream dropped after its first bytes
					rctx, rcancel := context.WithCancel(ctx)
					resp, err := post(rctx, "/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}],"max_tokens":200,"stream":true}`)
					if err == nil {
						buf := make([]byte, 64)
						resp.Body.Read(buf)
						resp.Body.Close()
						counts[2].Add(1)
					}
					rcancel()
				case k < 9: // malformed
					bad := []string{`{"prompt":`, `{"prompt":"x","max_tokens":-1}`, `{"prompt":"x","temperature":"hot"}`, `{"messages":[]}`}[rng.IntN(4)]
					path := "/v1/completions"
					if strings.Contains(bad, "messages") {
						path = "/v1/chat/completions"
					}
					resp, err := post(ctx, path, bad)
					if err != nil {
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 400 && ctx.Err() == nil {
						wrong.Add(1)
						t.Errorf("%s: %d, want 400", bad, resp.StatusCode)
					}
					counts[3].Add(1)
				default: // embeddings
					resp, err := post(ctx, "/v1/embeddings", fmt.Sprintf(`{"input":[%q,"y"]}`, prompts[i]))
					if err != nil {
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == 200 {
						counts[4].Add(1)
					}
				}
			}
		}()
	}
	// The baseline after a minute (or a tenth of the run): the pool and
	// the idle sessions have reached their sizes.
	warm := min(time.Minute, d/10)
	time.Sleep(warm)
	baseHeap, baseG = heap(), runtime.NumGoroutine()
	wg.Wait()
	hs.CloseClientConnections()
	time.Sleep(200 * time.Millisecond)
	endHeap, endG := heap(), runtime.NumGoroutine()
	st := m.Stats()
	t.Logf("soak %v: %d checked completions, %d streams, %d dropped streams, %d malformed, %d embeddings, %d busy (503), %d wrong",
		time.Since(start).Round(time.Second), counts[0].Load(), counts[1].Load(), counts[2].Load(), counts[3].Load(), counts[4].Load(), busy.Load(), wrong.Load())
	t.Logf("heap in use %.1f MiB after %v, %.1f MiB at the end; goroutines %d then %d (after the clients); KV pool %d cells, %d held; %d micro-batches, %.1f sequences each",
		float64(baseHeap)/(1<<20), warm, float64(endHeap)/(1<<20), baseG, endG, st.KVCells, st.KVCellsUsed, st.Steps, float64(st.StepSeqs)/float64(max(st.Steps, 1)))
	if endHeap > baseHeap+baseHeap/4+8<<20 {
		t.Errorf("the heap grew from %d to %d bytes", baseHeap, endHeap)
	}
	if endG > 8 { // the test's own and the runtime's
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines remain:\n%s", endG, buf[:runtime.Stack(buf, true)])
	}
}
