package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

func init() {
	register(&command{name: "eval", summary: "teacher-forced next-token probabilities at every position of a prompt", run: runEval})
}

func runEval(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("eval", stderr)
	var e engineFlags
	e.register(fs)
	topK := fs.Int("top-k", 5, "probabilities to print per position")
	ids := fs.String("ids", "", "comma-separated token ids to evaluate instead of a prompt")
	asJSON := fs.Bool("json", false, "print JSON")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ocelot eval -m M.gguf (-p PROMPT | -f FILE | --ids 1,2,3) [--top-k 5] [--json]")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := e.check(fs); err != nil {
		return err
	}
	e.quiet = *asJSON
	if *topK <= 0 {
		return usagef("--top-k must be positive, got %d", *topK)
	}
	m, err := e.load(stderr)
	if err != nil {
		return err
	}
	defer m.Close()
	var tokens []int32
	if *ids != "" {
		for _, f := range strings.Split(*ids, ",") {
			v, err := strconv.ParseInt(strings.TrimSpace(f), 10, 32)
			if err != nil {
				return usagef("--ids: %q is not a token id", f)
			}
			tokens = append(tokens, int32(v))
		}
	} else {
		text, err := e.promptText()
		if err != nil {
			return err
		}
		if tokens, err = m.Tokenize(text, true, true); err != nil {
			return err
		}
	}
	if len(tokens) == 0 {
		return usagef("nothing to evaluate: give -p, -f or --ids")
	}
	sess, err := m.NewSession()
	if err != nil {
		return err
	}
	defer sess.Close()
	logits, err := sess.EvalAll(context.Background(), tokens)
	if err != nil {
		return err
	}
	top := make([][][2]float64, len(logits))
	for i, l := range logits {
		top[i] = topProbs(l, *topK)
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(map[string]any{"tokens": tokens, "top": top})
	}
	for i, t := range top {
		fmt.Fprintf(stdout, "%4d %7d ", i, tokens[i])
		for _, p := range t {
			fmt.Fprintf(stdout, " %d:%.4f", int(p[0]), p[1])
		}
		fmt.Fprintln(stdout)
	}
	return nil
}

// topProbs returns the k most likely tokens and their softmax
// probabilities, as [id, prob] pairs, most likely first.
func topProbs(logits []float32, k int) [][2]float64 {
	maxv := math.Inf(-1)
	for _, v := range logits {
		maxv = math.Max(maxv, float64(v))
	}
	var sum float64
	for _, v := range logits {
		sum += math.Exp(float64(v) - maxv)
	}
	idx := make([]int, len(logits))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return logits[idx[a]] > logits[idx[b]] })
	k = min(k, len(idx))
	out := make([][2]float64, k)
	for i := 0; i < k; i++ {
		out[i] = [2]float64{float64(idx[i]), math.Exp(float64(logits[idx[i]])-maxv) / sum}
	}
	return out
}
