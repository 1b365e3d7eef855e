// Command servebench drives an OpenAI-compatible server (ocelot serve,
// llama-server) with concurrent streaming clients and reports the
// aggregate generation speed and the time to first token:
//
//	go run ./scripts/servebench -url http://127.0.0.1:8080 -clients 8 -requests 32 -n 64
//
// Each client sends streamed /v1/completions requests one after another,
// each with its own prompt (so that no prompt cache serves it), greedy,
// max_tokens n and ignoring the end of generation where the server allows
// it, and counts the streamed text chunks as tokens (usage when the server
// reports it). Tokens/s is all generated tokens over the wall time of the
// whole run; TTFT is from sending a request to its first text chunk.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:8080", "the server")
	clients := flag.Int("clients", 8, "concurrent clients")
	requests := flag.Int("requests", 32, "requests in all")
	n := flag.Int("n", 64, "tokens to generate per request")
	words := flag.Int("prompt", 48, "words in each prompt")
	key := flag.String("key", "", "API key")
	flag.Parse()
	var mu sync.Mutex
	var ttfts []time.Duration
	var tokens, failed int
	next := 0
	start := time.Now()
	var wg sync.WaitGroup
	for range *clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= *requests {
					return
				}
				ttft, got, err := one(*url, *key, prompt(i, *words), *n)
				mu.Lock()
				if err != nil {
					failed++
					fmt.Fprintln(os.Stderr, "servebench:", err)
				} else {
					if ttft > 0 { // 0: no text came (a model of random weights may stream none)
						ttfts = append(ttfts, ttft)
					}
					tokens += got
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	slices.Sort(ttfts)
	pct := func(p float64) float64 {
		if len(ttfts) == 0 {
			return 0
		}
		return float64(ttfts[min(len(ttfts)-1, int(p*float64(len(ttfts))))].Microseconds()) / 1000
	}
	out, _ := json.Marshal(map[string]any{"clients": *clients, "requests": *requests, "failed": failed, "tokens": tokens,
		"wall_s": wall.Seconds(), "tokens_per_s": float64(tokens) / wall.Seconds(), "ttft_p50_ms": pct(0.5), "ttft_p99_ms": pct(0.99)})
	fmt.Println(string(out))
}

// client opens a connection per request: a server may close an idle
// kept-alive one just as the next request goes out on it.
var client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// prompt is request i's text: distinct from the first word on.
func prompt(i, words int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Request %d.", i)
	for w := range words {
		fmt.Fprintf(&b, " word%d", (i*31+w*7)%97)
	}
	return b.String()
}

// one sends a streamed completion and returns the time to its first text
// and the tokens generated.
func one(url, key, prompt string, n int) (time.Duration, int, error) {
	body, _ := json.Marshal(map[string]any{"prompt": prompt, "max_tokens": n, "temperature": 0, "stream": true,
		"stream_options": map[string]bool{"include_usage": true}, "ignore_eos": true})
	req, err := http.NewRequest("POST", url+"/v1/completions", bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return 0, 0, fmt.Errorf("status %d", resp.StatusCode)
	}
	var ttft time.Duration
	chunks, usage := 0, -1
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok || line == "[DONE]" {
			continue
		}
		var ev struct {
			Choices []struct {
				Text string `json:"text"`
			} `json:"choices"`
			Usage *struct {
				CompletionTokens int `json:"completion_tokens"`
			} `json:"usage"`
		}
		if json.Unmarshal([]byte(line), &ev) != nil {
			continue
		}
		if len(ev.Choices) > 0 && ev.Choices[0].Text != "" {
			if chunks == 0 {
				ttft = time.Since(t0)
			}
			chunks++
		}
		if ev.Usage != nil {
			usage = ev.Usage.CompletionTokens
		}
	}
	if usage >= 0 {
		return ttft, usage, sc.Err()
	}
	return ttft, chunks, sc.Err()
}
