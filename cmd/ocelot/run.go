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
	n := fs.Int("n", 64, "tokens to generate (-1: until the end of generation or a full context)")
	chat := fs.Bool("chat", false, "interactive chat through the model's chat template (reads stdin; -p is the first message)")
	system := fs.String("sys", "", "system prompt of the chat (--chat)")
	var reverse multiFlag
	fs.Var(&reverse, "r", "reverse prompt: stop when the text contains it (repeatable)")
	asJSON := fs.Bool("json", false, "print {tokens, generated, text, stopped, timings} as JSON instead of text")
	dump := fs.Bool("dump-graph", false, "print the op graph of a prompt micro-batch, with each op's placement, and exit")
	for name, of := range map[string]string{"n-predict": "n", "cnv": "chat", "conversation": "chat", "i": "chat",
		"interactive": "chat", "system-prompt": "sys", "reverse-prompt": "r"} {
		alias(fs, name, of)
	}
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ocelot run -m M.gguf -p PROMPT [-n 64] [-c 4096] [-b 2048] [-ub auto] [-t N] [-ngl auto] [-ctk f16] [-ctv f16]")
		fmt.Fprintln(stderr, "                  [--temp 0.8] [--top-k 40] [--top-p 0.95] [--min-p 0.05] [--seed -1] [--presence-penalty 0] [--frequency-penalty 0]")
		fmt.Fprintln(stderr, "                  [-r STOP] [--grammar G | --grammar-file F | -j SCHEMA] [-e] [-q] [--chat [-sys SYSTEM]] [--json] [--profile]")
		fmt.Fprintln(stderr, "\nllama.cpp's long forms work too (--model, --prompt, --ctx-size, --n-predict, --threads, --n-gpu-layers,")
		fmt.Fprintln(stderr, "--batch-size, --ubatch-size, -cnv/-i for --chat, --reverse-prompt, --system-prompt). Where ocelot differs:")
		fmt.Fprintln(stderr, "-fa is accepted but attention is always fused; -ngl and -ub default to auto; Ctrl-C prints the report and exits 130.")
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
	if _, err := s.params(); err != nil {
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
		first, err := e.promptText()
		if err != nil {
			return err
		}
		return runChat(ctx, m, &s, chatSettings{n: *n, system: *system, first: first, stop: reverse, quiet: e.quiet}, os.Stdin, stdout, stderr)
	}
	smp, err := s.sampler(m)
	if err != nil {
		return err
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
	// The prompt's text is echoed once its evaluation is done, after the
	// progress line (on a terminal, for long prompts) is erased.
	echoed := *asJSON
	echo := func() {
		if !echoed {
			echoed = true
			fmt.Fprint(stdout, text)
		}
	}
	pp := newProgress(stderr, e.quiet, "prompt")
	pp.unit = "tokens"
	res, err := sess.GenerateWith(ctx, prompt, ocelot.GenerateOptions{Sampler: smp, MaxTokens: max(*n, 0), Stop: reverse,
		OnPrompt: func(done, total int) {
			pp.update(int64(done), int64(total))
			if done == total {
				pp.done()
				echo()
			}
		},
		OnToken: func(_ int32, piece string) error {
			echo()
			if !*asJSON {
				_, err := io.WriteString(stdout, piece)
				return err
			}
			return nil
		}})
	pp.done()
	echo()
	if res.Stopped == ocelot.StopCancelled {
		// Ctrl-C: what was made, the report, and the exit status of an
		// interrupted program.
		fmt.Fprintln(stdout)
		printReport(stderr, m, res.Timings, s.usedSeed)
		return errInterrupted
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(map[string]any{
			"tokens":    prompt,
			"generated": nonNil(res.Tokens),
			"text":      res.Text,
			"stopped":   res.Stopped,
			"seed":      s.usedSeed,
			"timings":   timingsJSON(m, res.Timings),
		})
	}
	fmt.Fprintln(stdout)
	printReport(stderr, m, res.Timings, s.usedSeed)
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
func printReport(w io.Writer, m *ocelot.Model, t ocelot.Timings, seed uint64) {
	o, c := m.Options(), m.Config()
	fmt.Fprintln(w, "--- prompt evaluation report ---")
	fmt.Fprintf(w, "prompt eval:  %d tokens in %.2f ms: %.2f ms/token, %.2f tokens/s\n",
		t.PromptTokens, float64(t.Prompt.Microseconds())/1000, t.PromptMsPerToken(), t.PromptTokensPerSec())
	fmt.Fprintf(w, "generation:   %d tokens in %.2f ms: %.2f tokens/s\n",
		t.GenTokens, float64(t.Gen.Microseconds())/1000, t.GenTokensPerSec())
	fmt.Fprintf(w, "settings:     n_ctx %d, n_batch %d, n_ubatch %d, threads %d, gpu layers %d/%d, KV %s/%s in %s, backend %s, seed %d\n",
		o.NCtx, o.NBatch, o.NUbatch, o.Threads, o.NGPULayers, c.NLayer, o.TypeK, o.TypeV, kvPlace(m), backendName(m), seed)
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

// chatSettings are run's flags that shape a chat.
type chatSettings struct {
	n             int
	system, first string
	stop          []string
	quiet         bool // -q: no progress lines
}

// runChat is an interactive chat: each line read is a user turn (the
// first may come from -p), answered through the model's chat template. The
// session keeps the conversation's cache, and Reuse keeps the prefix the
// next turn's prompt shares with it, so each turn evaluates only its new
// tokens. Ctrl-C stops the reply being written; at the prompt, or a second
// time, it ends the chat. The timings of the whole chat are printed at the
// end.
func runChat(ctx context.Context, m *ocelot.Model, s *samplerFlags, cs chatSettings, in io.Reader, stdout, stderr io.Writer) error {
	sess, err := m.NewSession()
	if err != nil {
		return err
	}
	defer sess.Close()
	var msgs []ocelot.Message
	if cs.system != "" {
		msgs = append(msgs, ocelot.Message{Role: "system", Content: cs.system})
	}
	var total ocelot.Timings
	defer func() { printReport(stderr, m, total, s.usedSeed) }()
	lines := make(chan string)
	go func() {
		defer close(lines)
		if cs.first != "" {
			lines <- cs.first
		}
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	for {
		fmt.Fprint(stderr, "> ")
		var line string
		select {
		case <-ctx.Done():
			fmt.Fprintln(stderr)
			return nil
		case l, ok := <-lines:
			if !ok {
				return nil
			}
			line = strings.TrimSpace(l)
		}
		if line == "" {
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
		smp, err := s.sampler(m)
		if err != nil {
			return err
		}
		// A reply of its own context: Ctrl-C (which cancels ctx) stops it,
		// and the chat goes on with a fresh signal context.
		pp := newProgress(stderr, cs.quiet, "prompt")
		pp.unit = "tokens"
		res, err := sess.GenerateWith(ctx, rest, ocelot.GenerateOptions{Sampler: smp, MaxTokens: max(cs.n, 0), Stop: cs.stop,
			OnPrompt: func(done, total int) {
				if pp.update(int64(done), int64(total)); done == total {
					pp.done()
				}
			},
			OnToken: func(_ int32, piece string) error {
				_, err := io.WriteString(stdout, piece)
				return err
			}})
		total.PromptTokens += res.Timings.PromptTokens
		total.Prompt += res.Timings.Prompt
		total.GenTokens += res.Timings.GenTokens
		total.Gen += res.Timings.Gen
		fmt.Fprintln(stdout)
		msgs = append(msgs, ocelot.Message{Role: "assistant", Content: res.Text})
		if res.Stopped == ocelot.StopCancelled {
			var stop context.CancelFunc
			ctx, stop = signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			continue
		}
		if err != nil {
			return err
		}
	}
}
