package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/ocelot-llm/ocelot"
)

func init() {
	register(&command{name: "run", summary: "evaluate a prompt and generate text, with the prompt-evaluation report", run: runRun})
}

func runRun(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", stderr)
	var e engineFlags
	var s samplerFlags
	e.register(fs)
	s.register(fs)
	n := fs.Int("n", 64, "tokens to generate (-1: until the context is full)")
	chat := fs.Bool("chat", false, "interactive chat through the model's chat template (reads stdin)")
	asJSON := fs.Bool("json", false, "print {tokens, generated, timings} as JSON instead of text")
	dump := fs.Bool("dump-graph", false, "print the op graph of a prompt micro-batch, with each op's placement, and exit")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ocelot run -m M.gguf -p PROMPT [-n 64] [-c 4096] [-b 2048] [-ub auto] [-t N] [-ngl auto] [-ctk f16] [-ctv f16] [--temp 0.8] [--top-k 40] [--top-p 0.95] [--seed 1] [--chat] [--json]")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := e.check(fs); err != nil {
		return err
	}
	if *n < -1 {
		return usagef("-n must be -1 (no limit) or more, got %d", *n)
	}
	smp, err := s.sampler()
	if err != nil {
		return err
	}
	m, err := e.load(stderr)
	if err != nil {
		return err
	}
	defer m.Close()
	if *dump {
		return m.DumpGraph(stdout, e.nUbatch)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *chat {
		return runChat(ctx, m, &s, *n, os.Stdin, stdout, stderr)
	}
	text, err := e.promptText()
	if err != nil {
		return err
	}
	prompt, err := m.Tokenize(text, true, true)
	if err != nil {
		return err
	}
	if len(prompt) == 0 {
		return usagef("the prompt is empty")
	}
	sess, err := m.NewSession()
	if err != nil {
		return err
	}
	defer sess.Close()
	if !*asJSON {
		fmt.Fprint(stdout, text)
	}
	res, err := sess.Generate(ctx, prompt, smp, *n, func(_ int32, piece string) error {
		if !*asJSON {
			_, err := io.WriteString(stdout, piece)
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(map[string]any{
			"tokens":    prompt,
			"generated": nonNil(res.Tokens),
			"stopped":   res.Stopped,
			"timings":   timingsJSON(m, res.Timings),
		})
	}
	fmt.Fprintln(stdout)
	printReport(stderr, m, res.Timings)
	if e.profile {
		ocelot.WriteProfile(stderr, m.Profile(), res.Timings.Prompt+res.Timings.Gen, res.Timings.PromptTokens+res.Timings.GenTokens)
	}
	return nil
}

func nonNil(ids []int32) []int32 {
	if ids == nil {
		return []int32{}
	}
	return ids
}

func kvPlace(m *ocelot.Model) string { return m.KVPlace() }

// printReport prints the prompt-evaluation report: the numbers the
// analysis behind ocelot was made of.
func printReport(w io.Writer, m *ocelot.Model, t ocelot.Timings) {
	o, c := m.Options(), m.Config()
	fmt.Fprintln(w, "--- prompt evaluation report ---")
	fmt.Fprintf(w, "prompt eval:  %d tokens in %.2f ms: %.2f ms/token, %.2f tokens/s\n",
		t.PromptTokens, float64(t.Prompt.Microseconds())/1000, t.PromptMsPerToken(), t.PromptTokensPerSec())
	fmt.Fprintf(w, "generation:   %d tokens in %.2f ms: %.2f tokens/s\n",
		t.GenTokens, float64(t.Gen.Microseconds())/1000, t.GenTokensPerSec())
	fmt.Fprintf(w, "settings:     n_ctx %d, n_batch %d, n_ubatch %d, threads %d, gpu layers %d/%d, KV %s/%s in %s, backend %s\n",
		o.NCtx, o.NBatch, o.NUbatch, o.Threads, o.NGPULayers, c.NLayer, o.TypeK, o.TypeV, kvPlace(m), backendName(m))
}

func backendName(m *ocelot.Model) string { return m.Backend() }

func timingsJSON(m *ocelot.Model, t ocelot.Timings) map[string]any {
	o := m.Options()
	return map[string]any{
		"prompt_tokens": t.PromptTokens, "prompt_ms": float64(t.Prompt.Microseconds()) / 1000,
		"prompt_ms_per_token": t.PromptMsPerToken(), "prompt_tokens_per_s": t.PromptTokensPerSec(),
		"gen_tokens": t.GenTokens, "gen_ms": float64(t.Gen.Microseconds()) / 1000, "gen_tokens_per_s": t.GenTokensPerSec(),
		"n_ctx": o.NCtx, "n_batch": o.NBatch, "n_ubatch": o.NUbatch, "n_threads": o.Threads,
		"n_gpu_layers": o.NGPULayers, "type_k": o.TypeK, "type_v": o.TypeV, "kv_location": kvPlace(m), "backend": backendName(m),
	}
}

// runChat is an interactive chat: each line read is a user turn, answered
// through the model's chat template. The session keeps the conversation's
// cache, and Reuse keeps the prefix the next turn's prompt shares with it,
// so each turn evaluates only its new tokens.
func runChat(ctx context.Context, m *ocelot.Model, s *samplerFlags, n int, in io.Reader, stdout, stderr io.Writer) error {
	sess, err := m.NewSession()
	if err != nil {
		return err
	}
	defer sess.Close()
	var msgs []ocelot.Message
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	fmt.Fprint(stderr, "> ")
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			fmt.Fprint(stderr, "> ")
			continue
		}
		msgs = append(msgs, ocelot.Message{Role: "user", Content: line})
		text, err := m.ChatPrompt(msgs)
		if err != nil {
			return err
		}
		ids, err := m.Tokenize(text, true, true)
		if err != nil {
			return err
		}
		// Evaluate only what the session does not hold yet.
		rest, err := sess.Reuse(ids)
		if err != nil {
			return err
		}
		smp, err := s.sampler()
		if err != nil {
			return err
		}
		var reply strings.Builder
		_, err = sess.Generate(ctx, rest, smp, n, func(_ int32, piece string) error {
			reply.WriteString(piece)
			_, err := io.WriteString(stdout, piece)
			return err
		})
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout)
		msgs = append(msgs, ocelot.Message{Role: "assistant", Content: reply.String()})
		fmt.Fprint(stderr, "> ")
	}
	return sc.Err()
}
