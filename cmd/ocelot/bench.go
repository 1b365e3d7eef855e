package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ocelot-llm/ocelot"
	"github.com/ocelot-llm/ocelot/gguf"
)

func init() {
	register(&command{name: "bench", summary: "measure prompt processing and generation speed (like llama-bench)", run: runBench})
}

// benchRow is one result row. It carries ocelot's fields (tps_mean,
// tps_std, ms_per_token, backend, device, kv_offload) and, with the same
// meaning, llama-bench's (avg_ts, stddev_ts, samples_ts, model_size,
// model_n_params, no_kv_offload, ...), so that scripts written for
// llama-bench's JSON read ocelot's.
type benchRow struct {
	Model      string  `json:"model"`
	Backend    string  `json:"backend"`
	Device     string  `json:"device"`
	Threads    int     `json:"n_threads"`
	NBatch     int     `json:"n_batch"`
	NUbatch    int     `json:"n_ubatch"`
	NGPULayers int     `json:"n_gpu_layers"`
	TypeK      string  `json:"type_k"`
	TypeV      string  `json:"type_v"`
	KVOffload  bool    `json:"kv_offload"`
	Test       string  `json:"test"`
	NPrompt    int     `json:"n_prompt"`
	NGen       int     `json:"n_gen"`
	TPSMean    float64 `json:"tps_mean"`
	TPSStd     float64 `json:"tps_std"`
	MsPerToken float64 `json:"ms_per_token"`
	// NParallel sequences ran the test together (--parallel), each with
	// its own prompt: t/s counts the tokens of all of them, as
	// llama-batched-bench's aggregate speed. TTFTMs is the mean time
	// from the start of a run to a sequence's first logits (its prompt
	// evaluated) under that load; 0 without a prompt.
	NParallel int     `json:"n_parallel"`
	TTFTMs    float64 `json:"ttft_ms"`

	// llama-bench's names.
	ModelFilename string    `json:"model_filename"` // the path as given
	ModelSize     int64     `json:"model_size"`     // bytes of the model's tensors, as llama_model_size counts them
	ModelNParams  int64     `json:"model_n_params"` // elements of all tensors
	NoKVOffload   bool      `json:"no_kv_offload"`
	TestTime      string    `json:"test_time"` // when the test began, RFC 3339 in UTC
	AvgNs         int64     `json:"avg_ns"`    // mean wall time of a repetition
	StddevNs      int64     `json:"stddev_ns"`
	AvgTs         float64   `json:"avg_ts"` // mean of samples_ts (= tps_mean)
	StddevTs      float64   `json:"stddev_ts"`
	SamplesNs     []int64   `json:"samples_ns"` // each repetition's wall time
	SamplesTs     []float64 `json:"samples_ts"` // each repetition's tokens/s: (n_prompt+n_gen)/time

	kvPlace string
}

// modelStats are the facts about a model file that every row repeats.
type modelStats struct {
	size, params int64
}

// statModel reads a model's tensor bytes and parameter count from its
// GGUF header.
func statModel(path string) (modelStats, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return modelStats{}, err
	}
	defer f.Close()
	var st modelStats
	for i := range f.Tensors {
		st.size += f.Tensors[i].Size
		st.params += f.Tensors[i].Elements()
	}
	return st, nil
}

// intList parses "8,64,512" (and "auto" where allowed, as -1).
func intList(flagName, s string, allowAuto bool) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "auto" && allowAuto {
			out = append(out, -1)
			continue
		}
		v, err := strconv.Atoi(f)
		if err != nil {
			return nil, usagef("%s: %q is not a number", flagName, f)
		}
		out = append(out, v)
	}
	return out, nil
}

func strList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// maxReps bounds -r: a benchmark of more repetitions than this is a typo,
// not a measurement.
const maxReps = 1000

type benchTest struct {
	name       string
	nPrompt    int
	nGen       int
	reportOnly bool
	parallel   int // sequences run together (1: one)
}

func runBench(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", stderr)
	var models multiFlag
	fs.Var(&models, "m", "model file (repeatable)")
	pFlag := fs.String("p", "512", "prompt lengths to test (pp), comma-separated; 0 for none")
	nFlag := fs.String("n", "128", "generation lengths to test (tg), comma-separated; 0 for none")
	var pgFlags multiFlag
	fs.Var(&pgFlags, "pg", "a prompt+generation test as a pp,tg pair (repeatable, as in llama-bench; several pairs may also be separated by ';': 512,128;1024,256)")
	bFlag := fs.String("b", "2048", "logical batch sizes")
	ubFlag := fs.String("ub", "auto", "micro-batch sizes (or auto: the prompt up to 512)")
	nglFlag := fs.String("ngl", "auto", "GPU layers (or auto: as many as fit the device)")
	tFlag := fs.String("t", strconv.Itoa(runtime.NumCPU()), "threads")
	ctkFlag := fs.String("ctk", "f16", "K cache types")
	ctvFlag := fs.String("ctv", "f16", "V cache types")
	nkvoFlag := fs.String("nkvo", "0", "keep the KV cache in host memory: 0, 1 or 0,1")
	backends := fs.String("backend", "auto", "backends: ref, cpu, opencl, auto (comma-separated)")
	device := fs.String("device", "", "accelerator device index")
	reps := fs.Int("r", 3, "repetitions (after one warm-up run)")
	out := fs.String("o", "md", "output: md, csv, json or jsonl (one JSON object per line)")
	report := fs.Bool("report", false, "print the prompt-evaluation report of the original analysis for each prompt test")
	cpuProfile := fs.String("cpuprofile", "", "write a Go CPU profile of the whole run to this file (host-side cost of a backend)")
	parFlag := fs.String("parallel", "1", "sequences evaluated together, comma-separated (like llama-batched-bench's -npl): t/s is their aggregate speed")
	fs.StringVar(parFlag, "npl", "1", "the same as --parallel")
	tuneFlag := fs.String("tune", "auto", "the accelerator's kernel tuning, comma-separated to compare in one run: auto (cached, else a quick tune), off, quick, full")
	profile := fs.Bool("profile", false, "time every op of the measured runs (not the warm-up) and print a per-op table for each test on stderr")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ocelot bench -m M.gguf [-m M2.gguf] [-p 512] [-n 128] [-pg 512,128] [-b 2048] [-ub 512|auto] [-ngl 0|auto] [-t 2] [-ctk f16] [-ctv f16] [-nkvo 0|1] [--parallel 1,2,4,8] [--backend auto] [--tune auto,off] [-r 3] [-o md|csv|json|jsonl] [--report] [--profile] [--cpuprofile F]")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if len(models) == 0 {
		return usagef("-m is required")
	}
	if *reps <= 0 || *reps > maxReps {
		return usagef("-r must lie in 1..%d, got %d", maxReps, *reps)
	}
	switch *out {
	case "md", "csv", "json", "jsonl":
	default:
		return usagef("-o must be md, csv, json or jsonl, got %q", *out)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("bench: -cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("bench: -cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	ps, err := intList("-p", *pFlag, false)
	if err != nil {
		return err
	}
	ns, err := intList("-n", *nFlag, false)
	if err != nil {
		return err
	}
	bs, err := intList("-b", *bFlag, false)
	if err != nil {
		return err
	}
	ubs, err := intList("-ub", *ubFlag, true)
	if err != nil {
		return err
	}
	ngls, err := intList("-ngl", *nglFlag, true)
	if err != nil {
		return err
	}
	ts, err := intList("-t", *tFlag, false)
	if err != nil {
		return err
	}
	nkvos, err := intList("-nkvo", *nkvoFlag, false)
	if err != nil {
		return err
	}
	pars, err := intList("--parallel", *parFlag, false)
	if err != nil {
		return err
	}
	for _, v := range pars {
		if v < 1 || v > ocelot.MaxParallel {
			return usagef("--parallel must lie in 1..%d, got %d", ocelot.MaxParallel, v)
		}
	}
	var tests []benchTest
	for _, p := range ps {
		if p < 0 {
			return usagef("-p must not be negative, got %d", p)
		}
		if p > 0 {
			tests = append(tests, benchTest{name: fmt.Sprintf("pp%d", p), nPrompt: p})
		}
	}
	for _, n := range ns {
		if n < 0 {
			return usagef("-n must not be negative, got %d", n)
		}
		if n > 0 {
			tests = append(tests, benchTest{name: fmt.Sprintf("tg%d", n), nGen: n})
		}
	}
	pgs, err := pgPairs(pgFlags)
	if err != nil {
		return err
	}
	for _, v := range pgs {
		tests = append(tests, benchTest{name: fmt.Sprintf("pp%d+tg%d", v[0], v[1]), nPrompt: v[0], nGen: v[1]})
	}
	if len(tests) == 0 {
		return usagef("nothing to measure: give -p, -n or -pg")
	}
	for _, v := range append(append(append([]int{}, bs...), ts...), ubs...) {
		if v == 0 || v < -1 {
			return usagef("batch sizes and thread counts must be positive")
		}
	}
	for _, v := range ngls {
		if v < -1 {
			return usagef("-ngl must not be negative")
		}
	}
	for _, v := range nkvos {
		if v != 0 && v != 1 {
			return usagef("-nkvo takes 0 or 1")
		}
	}

	stats := map[string]modelStats{}
	for _, model := range models {
		if _, ok := stats[model]; !ok {
			st, err := statModel(model)
			if err != nil {
				return err
			}
			stats[model] = st
		}
	}
	type backendTune struct{ backend, tune string }
	var bts []backendTune
	for _, be := range strList(*backends) {
		for _, tn := range strList(*tuneFlag) {
			switch tn {
			case "auto", "off", "quick", "full":
			default:
				return usagef("--tune takes auto, off, quick or full, got %q", tn)
			}
			bts = append(bts, backendTune{be, tn})
		}
	}
	var rows []benchRow
	total := len(models) * len(bts) * len(ngls) * len(ts) * len(strList(*ctkFlag)) * len(strList(*ctvFlag)) * len(nkvos) * len(bs) * len(ubs) * len(tests) * len(pars)
	done := 0
	for _, model := range models {
		for _, bt := range bts {
			for _, ngl := range ngls {
				for _, t := range ts {
					for _, ctk := range strList(*ctkFlag) {
						for _, ctv := range strList(*ctvFlag) {
							for _, nkvo := range nkvos {
								for _, b := range bs {
									for _, ub := range ubs {
										for _, test := range tests {
											for _, np := range pars {
												done++
												fmt.Fprintf(stderr, "bench [%d/%d] %s %s ngl=%s t=%d kv=%s/%s nkvo=%d b=%d ub=%s parallel=%d\n", done, total, filepath.Base(model), test.name, autoStr(ngl), t, ctk, ctv, nkvo, b, autoStr(ub), np)
												test.parallel = np
												row, err := benchOne(model, bt.backend, bt.tune, *device, ngl, t, ctk, ctv, nkvo == 1, b, ub, test, *reps, *report, *profile, stderr)
												if err != nil {
													return err
												}
												row.ModelSize, row.ModelNParams = stats[model].size, stats[model].params
												rows = append(rows, row)
											}
										}
									}
								}
							}
						}
					}
				}
			}
		}
	}
	return writeBench(stdout, *out, rows)
}

// pgPairs parses -pg values: each a pp,tg pair, or several separated by
// ';'.
func pgPairs(values []string) ([][2]int, error) {
	var out [][2]int
	for _, value := range values {
		for _, pg := range strings.Split(value, ";") {
			pg = strings.TrimSpace(pg)
			if pg == "" {
				continue
			}
			pp, tg, ok := strings.Cut(pg, ",")
			p, perr := strconv.Atoi(strings.TrimSpace(pp))
			g, gerr := strconv.Atoi(strings.TrimSpace(tg))
			if !ok || perr != nil || gerr != nil || p < 0 || g < 0 || p+g == 0 {
				return nil, usagef("-pg wants a pp,tg pair of token counts (e.g. -pg 512,128; repeat -pg or separate pairs with ';' for more), got %q", pg)
			}
			out = append(out, [2]int{p, g})
		}
	}
	return out, nil
}

func autoStr(v int) string {
	if v < 0 {
		return "auto"
	}
	return strconv.Itoa(v)
}

// benchTokens are the ids a test evaluates: a fixed spread over the
// vocabulary, after BOS.
func benchTokens(m *ocelot.Model, n int) []int32 {
	nv := m.Config().NVocab
	ids := make([]int32, n)
	for i := range ids {
		ids[i] = int32((i*7919 + 101) % nv)
	}
	if n > 0 {
		ids[0] = m.Tokenizer().BOS()
		if ids[0] < 0 {
			ids[0] = 1
		}
	}
	return ids
}

// benchOne measures one test as llama-bench does: one context (here a
// session) for all repetitions, a warm-up run on it first, and before each
// repetition an empty KV cache (Reset). A repetition times the prompt's
// evaluation and then n_gen single-token evaluations, nothing else:
// loading, the session's KV cache and scratch memory, and the tokens are
// set up before the clock starts, and the Go garbage of earlier runs is
// collected before it too, so that no collection lands in a run of a few
// milliseconds.
func benchOne(model, backend, tune, device string, ngl, threads int, ctk, ctv string, nkvo bool, nBatch, nUbatch int, test benchTest, reps int, report, profile bool, stderr io.Writer) (benchRow, error) {
	nCtx := test.nPrompt + test.nGen
	if nUbatch < 0 {
		nUbatch = 512 // decoding takes one token at a time whatever the micro-batch
		if test.nPrompt > 0 {
			nUbatch = ocelot.AutoUbatch(test.nPrompt)
		}
	}
	nUbatch = min(nUbatch, nBatch)
	np := max(test.parallel, 1)
	opts := ocelot.Options{NCtx: nCtx, Parallel: np, NBatch: nBatch, NUbatch: nUbatch, NGPULayers: max(ngl, 0), Threads: threads,
		TypeK: ctk, TypeV: ctv, Backend: backend, Device: device, NoKVOffload: nkvo, Profile: profile, Tune: tune}
	if ngl < 0 {
		opts.NGPULayers = ocelot.AutoGPULayers
	}
	m, err := ocelot.Load(model, opts)
	if err != nil {
		return benchRow{}, err
	}
	defer m.Close()
	o := m.Options()
	be := m.Backend()
	if _, tuned := m.Tuning(); tuned && tune != "auto" || tune == "off" && strings.HasPrefix(be, "opencl") {
		be += " tune=" + tune // the default (cached or quick) is unmarked
	}
	row := benchRow{Model: filepath.Base(model), Backend: be, Device: m.Device(), Threads: threads, NBatch: o.NBatch, NUbatch: o.NUbatch,
		NGPULayers: o.NGPULayers, TypeK: ctk, TypeV: ctv, KVOffload: !nkvo, Test: test.name, NPrompt: test.nPrompt, NGen: test.nGen, NParallel: np,
		ModelFilename: model, NoKVOffload: nkvo, TestTime: time.Now().UTC().Format(time.RFC3339)}
	row.kvPlace = strings.TrimSuffix(m.KVPlace(), " memory")
	sessions := make([]*ocelot.Session, np)
	prompts := make([][]int32, np)
	for i := range sessions {
		s, err := m.NewSession()
		if err != nil {
			return row, err
		}
		defer s.Close()
		sessions[i] = s
		// Each sequence its own prompt, so that none reuses another's
		// cache.
		prompts[i] = benchTokens(m, test.nPrompt)
		for j := 1; j < len(prompts[i]); j++ {
			prompts[i][j] = (prompts[i][j] + int32(i)) % int32(m.Config().NVocab)
		}
	}
	gen := benchTokens(m, test.nGen) // BOS first, as llama-bench's test_gen
	var last ocelot.Timings
	var measured time.Duration
	var ttft time.Duration
	for r := 0; r <= reps; r++ { // run 0 is the warm-up
		if r == 1 {
			m.ResetProfile()
		}
		for _, s := range sessions {
			s.Reset()
		}
		runtime.GC()
		times := make([]ocelot.Timings, np)
		errs := make([]error, np)
		start := time.Now()
		var wg sync.WaitGroup
		for i, s := range sessions {
			wg.Add(1)
			go func() {
				defer wg.Done()
				times[i], errs[i] = benchRun(s, prompts[i], gen)
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		for _, err := range errs {
			if err != nil {
				return row, err
			}
		}
		if r > 0 {
			row.SamplesNs = append(row.SamplesNs, elapsed.Nanoseconds())
			row.SamplesTs = append(row.SamplesTs, float64(np*(test.nPrompt+test.nGen))/elapsed.Seconds())
			last = times[0]
			measured += elapsed
			for _, t := range times {
				ttft += t.Prompt
			}
		}
	}
	if test.nPrompt > 0 {
		row.TTFTMs = float64(ttft.Microseconds()) / 1000 / float64(reps*np)
	}
	if profile {
		fmt.Fprintf(stderr, "--- profile: %s, %s, %d runs ---\n", test.name, m.Backend(), reps)
		ocelot.WriteProfile(stderr, m.Profile(), measured, reps*np*(test.nPrompt+test.nGen))
	}
	row.TPSMean, row.TPSStd = meanStd(row.SamplesTs)
	row.AvgTs, row.StddevTs = row.TPSMean, row.TPSStd
	ns := make([]float64, len(row.SamplesNs))
	for i, v := range row.SamplesNs {
		ns[i] = float64(v)
	}
	avgNs, stdNs := meanStd(ns)
	row.AvgNs, row.StddevNs = int64(math.Round(avgNs)), int64(math.Round(stdNs))
	if row.TPSMean > 0 {
		row.MsPerToken = 1000 / row.TPSMean
	}
	if report && test.nPrompt > 0 {
		printAnalysisReport(stderr, row, m.KVPlace(), last)
	}
	return row, nil
}

// benchRun is one timed run on an empty session: the prompt in one Eval
// (split into batches and micro-batches by the engine), then the
// generation tokens one Eval each, as a decoding loop feeds them.
func benchRun(s *ocelot.Session, prompt, gen []int32) (ocelot.Timings, error) {
	var t ocelot.Timings
	start := time.Now()
	if len(prompt) > 0 {
		if _, err := s.Eval(context.Background(), prompt); err != nil {
			return t, err
		}
		t.PromptTokens, t.Prompt = len(prompt), time.Since(start)
	}
	genStart := time.Now()
	for i := range gen {
		if _, err := s.Eval(context.Background(), gen[i:i+1]); err != nil {
			return t, err
		}
	}
	t.GenTokens, t.Gen = len(gen), time.Since(genStart)
	return t, nil
}

func meanStd(v []float64) (float64, float64) {
	var s float64
	for _, x := range v {
		s += x
	}
	mean := s / float64(len(v))
	if len(v) < 2 {
		return mean, 0
	}
	var d float64
	for _, x := range v {
		d += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(d / float64(len(v)-1))
}

// printAnalysisReport prints the table of the analysis that started
// ocelot: prompt tokens, total time, ms/token, tokens/s, and the distance
// to its target of 20–50 ms/token.
func printAnalysisReport(w io.Writer, row benchRow, kvPlace string, t ocelot.Timings) {
	ms := t.PromptMsPerToken()
	gap := "within the 20–50 ms/token target"
	switch {
	case ms > 50:
		gap = fmt.Sprintf("%.1f× slower than the 50 ms/token end of the target (%.1f× from 20 ms/token)", ms/50, ms/20)
	case ms < 20:
		gap = fmt.Sprintf("%.1f× faster than the 20 ms/token end of the target", 20/ms)
	}
	fmt.Fprintln(w, "--- prompt evaluation (the original analysis's table) ---")
	fmt.Fprintf(w, "model %s, backend %s, n_batch %d, n_ubatch %d, gpu layers %d, threads %d, KV %s/%s in %s\n",
		row.Model, row.Backend, row.NBatch, row.NUbatch, row.NGPULayers, row.Threads, row.TypeK, row.TypeV, kvPlace)
	fmt.Fprintf(w, "prompt tokens  %d\ntotal          %.1f ms\nper token      %.2f ms\nspeed          %.2f tokens/s\ntarget         %s\n",
		t.PromptTokens, float64(t.Prompt.Microseconds())/1000, ms, t.PromptTokensPerSec(), gap)
}

func writeBench(w io.Writer, format string, rows []benchRow) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	case "jsonl":
		enc := json.NewEncoder(w) // one object per line
		for _, r := range rows {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	case "csv":
		cw := csv.NewWriter(w)
		cw.Write([]string{"model", "backend", "device", "n_threads", "n_batch", "n_ubatch", "n_gpu_layers", "type_k", "type_v", "kv_offload", "test", "n_prompt", "n_gen", "tps_mean", "tps_std", "ms_per_token",
			"n_parallel", "ttft_ms", "model_filename", "model_size", "model_n_params", "no_kv_offload", "test_time", "avg_ns", "stddev_ns", "avg_ts", "stddev_ts", "samples_ns", "samples_ts"})
		for _, r := range rows {
			ns := make([]string, len(r.SamplesNs))
			for i, v := range r.SamplesNs {
				ns[i] = strconv.FormatInt(v, 10)
			}
			ts := make([]string, len(r.SamplesTs))
			for i, v := range r.SamplesTs {
				ts[i] = fmt.Sprintf("%.3f", v)
			}
			cw.Write([]string{r.Model, r.Backend, r.Device, fmt.Sprint(r.Threads), fmt.Sprint(r.NBatch), fmt.Sprint(r.NUbatch), fmt.Sprint(r.NGPULayers),
				r.TypeK, r.TypeV, fmt.Sprint(r.KVOffload), r.Test, fmt.Sprint(r.NPrompt), fmt.Sprint(r.NGen),
				fmt.Sprintf("%.3f", r.TPSMean), fmt.Sprintf("%.3f", r.TPSStd), fmt.Sprintf("%.3f", r.MsPerToken),
				fmt.Sprint(r.NParallel), fmt.Sprintf("%.3f", r.TTFTMs), r.ModelFilename, fmt.Sprint(r.ModelSize), fmt.Sprint(r.ModelNParams), fmt.Sprint(r.NoKVOffload), r.TestTime,
				fmt.Sprint(r.AvgNs), fmt.Sprint(r.StddevNs), fmt.Sprintf("%.3f", r.AvgTs), fmt.Sprintf("%.3f", r.StddevTs),
				strings.Join(ns, ","), strings.Join(ts, ",")})
		}
		cw.Flush()
		return cw.Error()
	}
	par := false // the parallel columns, where a row ran several sequences
	for _, r := range rows {
		par = par || r.NParallel > 1
	}
	head, rule := "| model | backend | threads | n_batch | n_ubatch | ngl | type_k | type_v | kv | test | t/s | ms/token |", "| --- | --- | ---: | ---: | ---: | ---: | --- | --- | --- | --- | ---: | ---: |"
	if par {
		head, rule = head+" parallel | ttft ms |", rule+" ---: | ---: |"
	}
	fmt.Fprintln(w, head)
	fmt.Fprintln(w, rule)
	for _, r := range rows {
		kv := r.kvPlace
		fmt.Fprintf(w, "| %s | %s | %d | %d | %d | %d | %s | %s | %s | %s | %.2f ± %.2f | %.2f |", r.Model, r.Backend, r.Threads, r.NBatch, r.NUbatch, r.NGPULayers, r.TypeK, r.TypeV, kv, r.Test, r.TPSMean, r.TPSStd, r.MsPerToken)
		if par {
			fmt.Fprintf(w, " %d | %.1f |", r.NParallel, r.TTFTMs)
		}
		fmt.Fprintln(w)
	}
	return nil
}
