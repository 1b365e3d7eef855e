package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"

	"github.com/ocelot-llm/ocelot"
)

func init() {
	register(&command{name: "perplexity", summary: "perplexity of a text (and KL divergence against a base model), as llama-perplexity", run: runPerplexity})
}

// The method is llama-perplexity's (examples/perplexity, perplexity()):
//
//   - the whole text is tokenized with the model's add_bos (special text is
//     not parsed);
//   - n_chunks = len(tokens)/n_ctx non-overlapping chunks of n_ctx tokens
//     (at most --chunks); a text of fewer than 2*n_ctx tokens is an error;
//   - each chunk is evaluated on an emptied (Reset) session, its first token
//     replaced by BOS when the model adds BOS;
//   - only the second half is scored: the logits at positions
//     first = n_ctx/2 .. n_ctx-2 predict the tokens first+1 .. n_ctx-1, and
//     nll = -log softmax(logits)[next] is summed in float64 (log-sum-exp with
//     the maximum subtracted), with nll² beside it;
//   - after chunk i the running estimate exp(Σnll/count) prints as
//     "[i]%.4f,"; at the end, with N scored tokens, mean = Σnll/N and
//     var = Σnll²/N - mean², PPL = exp(mean) and its uncertainty is
//     PPL * sqrt(var/(N-1)): the standard error of the mean NLL carried
//     through exp to first order, exactly as llama.cpp prints it
//     ("Final estimate: PPL = %.4f +/- %.5f").
//
// --kl-divergence-base FILE (alone) also writes, chunk by chunk, the
// log-softmax rows of the scored positions to FILE (format below);
// --kl-divergence --kl-divergence-base FILE reads them back and compares
// this model against that base.
//
// The base file (version 1, all little-endian):
//
//	magic    [8]byte "OCKLBASE"
//	version  uint32  1
//	n_ctx    uint32
//	n_vocab  uint32
//	n_chunk  uint32
//	first    uint32  n_ctx/2: the first scored position of each chunk
//	dtype    uint32  0: float32 (the only one written)
//	tokens   [n_chunk*n_ctx]int32  the tokenized text, before BOS replacement
//	then for each chunk, for each position first .. n_ctx-2:
//	         [n_vocab]float32  log softmax of the base's logits
//
// float32 rows are stored uncompressed (llama.cpp quantizes them to 16
// bits): with a near-uniform distribution 16 bits cannot keep the top-1
// token, and a model compared with itself gives exactly 0 KL and 100% top-1.
// Memory stays at one chunk's logits whichever way the file goes.
const (
	klMagic   = "OCKLBASE"
	klVersion = 1
	klHeader  = 8 + 6*4
)

func runPerplexity(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("perplexity", stderr)
	var e engineFlags
	e.register(fs)
	// llama-perplexity's default context.
	e.nCtx = 512
	fs.Lookup("c").DefValue = "512"
	chunks := fs.Int("chunks", -1, "chunks to evaluate at most (-1: all)")
	fs.IntVar(chunks, "n-chunks", -1, "same as -chunks")
	klBase := fs.String("kl-divergence-base", "", "file of the base model's log-probabilities: written, or read with --kl-divergence")
	klDiv := fs.Bool("kl-divergence", false, "compare this model with the base that --kl-divergence-base names")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ocelot perplexity -m M.gguf -f TEXT [-c 512] [-b 2048] [--chunks N] [--kl-divergence-base FILE [--kl-divergence]]")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *klDiv && *klBase == "" {
		return usagef("--kl-divergence needs --kl-divergence-base FILE")
	}
	if *chunks == 0 || *chunks < -1 {
		return usagef("--chunks must be positive or -1, got %d", *chunks)
	}
	if e.file == "" && e.prompt == "" && !*klDiv {
		return usagef("give the text with -f FILE (or -p TEXT)")
	}
	if err := e.check(fs); err != nil {
		return err
	}
	if e.nCtx < 4 {
		return usagef("-c must be at least 4 for perplexity, got %d", e.nCtx)
	}

	var base *klReader
	if *klDiv {
		f, err := os.Open(*klBase)
		if err != nil {
			return fmt.Errorf("kl-divergence base: %w", err)
		}
		defer f.Close()
		if base, err = readKLHeader(f); err != nil {
			return fmt.Errorf("kl-divergence base %s: %w", *klBase, err)
		}
		if base.nCtx != e.nCtx {
			return fmt.Errorf("kl-divergence base %s was made with -c %d, not %d", *klBase, base.nCtx, e.nCtx)
		}
	}

	m, err := e.load(stderr)
	if err != nil {
		return err
	}
	defer m.Close()
	tok := m.Tokenizer()
	addBOS := tok.AddBOS()
	var tokens []int32
	if e.file != "" || e.prompt != "" {
		text, err := e.promptText()
		if err != nil {
			return err
		}
		if tokens, err = m.Tokenize(text, addBOS, false); err != nil {
			return err
		}
	}
	nCtx := e.nCtx
	if tokens != nil && len(tokens) < 2*nCtx {
		return fmt.Errorf("need at least %d tokens to evaluate perplexity with a context of %d, the text has %d", 2*nCtx, nCtx, len(tokens))
	}
	if base != nil {
		if base.nVocab != tok.VocabSize() {
			return fmt.Errorf("kl-divergence base %s has a vocabulary of %d tokens, this model %d", *klBase, base.nVocab, tok.VocabSize())
		}
		if tokens == nil {
			tokens = base.tokens
		} else if n := min(len(tokens), len(base.tokens)); len(tokens)/nCtx < base.nChunk || !slices.Equal(tokens[:n], base.tokens[:n]) {
			return fmt.Errorf("kl-divergence base %s was made from another text: its %d tokens differ from this one's %d", *klBase, len(base.tokens), len(tokens))
		}
	}
	nChunk := len(tokens) / nCtx
	if base != nil {
		nChunk = base.nChunk
	}
	if *chunks > 0 {
		nChunk = min(nChunk, *chunks)
	}
	first := nCtx / 2
	scored := nCtx - 1 - first
	if !e.quiet {
		fmt.Fprintf(stderr, "ocelot: perplexity: %d tokens, %d chunks of n_ctx=%d, scoring %d tokens per chunk\n", len(tokens), nChunk, nCtx, scored)
	}

	var out *klWriter
	var outFile *os.File
	if *klBase != "" && !*klDiv {
		if outFile, err = os.Create(*klBase); err != nil {
			return fmt.Errorf("kl-divergence base: %w", err)
		}
		defer outFile.Close()
		out = newKLWriter(outFile)
		if err := out.header(nCtx, tok.VocabSize(), nChunk, first, tokens[:nChunk*nCtx]); err != nil {
			return fmt.Errorf("kl-divergence base: %w", err)
		}
	}

	sess, err := m.NewSession()
	if err != nil {
		return err
	}
	defer sess.Close()
	var nll, nll2 stat
	var kl klStats
	lp := make([]float64, 0)
	row32 := make([]float32, 0)
	var baseRow []float32
	ctx := context.Background()
	chunk := make([]int32, nCtx)
	for i := 0; i < nChunk; i++ {
		copy(chunk, tokens[i*nCtx:(i+1)*nCtx])
		if addBOS {
			chunk[0] = tok.BOS()
		}
		sess.Reset()
		logits, err := sess.EvalAll(ctx, chunk)
		if err != nil {
			return fmt.Errorf("chunk %d: %w", i+1, err)
		}
		for pos := first; pos < nCtx-1; pos++ {
			next := chunk[pos+1]
			row := logits[pos]
			if int(next) >= len(row) {
				return fmt.Errorf("token %d lies outside the model's %d logits", next, len(row))
			}
			lp = logSoftmax(lp, row)
			v := -lp[next]
			nll.add(v)
			nll2.add(v * v)
			if out != nil {
				row32 = row32[:0]
				for _, x := range lp {
					row32 = append(row32, float32(x))
				}
				if err := out.row(row32); err != nil {
					return fmt.Errorf("kl-divergence base: %w", err)
				}
			}
			if base != nil {
				if len(lp) != base.nVocab {
					return fmt.Errorf("kl-divergence base has %d logits a row, this model %d", base.nVocab, len(lp))
				}
				if baseRow, err = base.row(baseRow); err != nil {
					return fmt.Errorf("kl-divergence base %s: %w", *klBase, err)
				}
				kl.add(baseRow, lp, next)
			}
		}
		fmt.Fprintf(stdout, "[%d]%.4f,", i+1, math.Exp(nll.sum/float64(nll.n)))
	}
	fmt.Fprintln(stdout)
	if out != nil {
		if err := out.flush(); err != nil {
			return fmt.Errorf("kl-divergence base: %w", err)
		}
		if err := outFile.Close(); err != nil {
			return fmt.Errorf("kl-divergence base: %w", err)
		}
	}
	ppl, sigma, err := pplEstimate(nll.sum, nll2.sum, nll.n)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Final estimate: PPL = %.4f +/- %.5f\n", ppl, sigma)
	if base != nil {
		kl.report(stdout, ppl, sigma)
	}
	return nil
}

// stat is a float64 sum with its count.
type stat struct {
	sum float64
	n   int
}

func (s *stat) add(v float64) { s.sum += v; s.n++ }

// pplEstimate is llama.cpp's final estimate from Σnll, Σnll² over n
// tokens: exp(mean) and exp(mean) * sqrt(var/(n-1)).
func pplEstimate(sum, sum2 float64, n int) (ppl, sigma float64, err error) {
	if n < 2 {
		return 0, 0, errors.New("fewer than 2 tokens scored")
	}
	mean := sum / float64(n)
	v := sum2/float64(n) - mean*mean
	ppl = math.Exp(mean)
	if v < 0 {
		v = 0 // all NLLs equal: no spread, only rounding below zero
	}
	return ppl, ppl * math.Sqrt(v/float64(n-1)), nil
}

// logSoftmax writes log softmax(logits) into dst in float64: the maximum is
// subtracted before the exponentials.
func logSoftmax(dst []float64, logits []float32) []float64 {
	maxv := math.Inf(-1)
	for _, v := range logits {
		maxv = math.Max(maxv, float64(v))
	}
	var sum float64
	for _, v := range logits {
		sum += math.Exp(float64(v) - maxv)
	}
	lse := maxv + math.Log(sum)
	dst = dst[:0]
	for _, v := range logits {
		dst = append(dst, float64(v)-lse)
	}
	return dst
}

// klStats accumulates the comparison of this model (q) with the base (p)
// at every scored position: KL(p||q) = Σ_v p_v (log p_v - log q_v), whether
// both argmaxes agree, and both NLLs of the next token.
type klStats struct {
	kl, kl2, baseNLL, baseNLL2 float64
	same, n                    int
}

func (k *klStats) add(p []float32, q []float64, next int32) {
	var d float64
	pa, qa := 0, 0
	for v := range p {
		lpv := float64(p[v])
		if lpv > float64(p[pa]) {
			pa = v
		}
		if float32(q[v]) > float32(q[qa]) { // as the base's rows are stored
			qa = v
		}
		if !math.IsInf(lpv, -1) {
			d += math.Exp(lpv) * (lpv - q[v])
		}
	}
	if d < 0 {
		d = 0 // rounding of two equal distributions
	}
	k.kl += d
	k.kl2 += d * d
	nl := -float64(p[next])
	k.baseNLL += nl
	k.baseNLL2 += nl * nl
	if pa == qa {
		k.same++
	}
	k.n++
}

// report prints the means with their standard errors, as llama.cpp: the
// KL's is sqrt(var/(n-1)), the top-1 rate's sqrt(p(1-p)/(n-1)).
func (k *klStats) report(w io.Writer, ppl, sigma float64) {
	n := float64(k.n)
	mean := k.kl / n
	v := max(k.kl2/n-mean*mean, 0)
	bppl, bsigma, _ := pplEstimate(k.baseNLL, k.baseNLL2, k.n)
	p := float64(k.same) / n
	fmt.Fprintf(w, "PPL(base): %.4f +/- %.5f\n", bppl, bsigma)
	fmt.Fprintf(w, "PPL(this): %.4f +/- %.5f\n", ppl, sigma)
	fmt.Fprintf(w, "Mean KLD: %.6f +/- %.6f\n", mean, math.Sqrt(v/(n-1)))
	fmt.Fprintf(w, "Same top p: %.3f +/- %.3f %%\n", 100*p, 100*math.Sqrt(p*(1-p)/(n-1)))
}

type klWriter struct {
	w   *bufio.Writer
	buf []byte
}

func newKLWriter(w io.Writer) *klWriter { return &klWriter{w: bufio.NewWriterSize(w, 1<<20)} }

func (k *klWriter) header(nCtx, nVocab, nChunk, first int, tokens []int32) error {
	b := append([]byte(nil), klMagic...)
	for _, v := range []int{klVersion, nCtx, nVocab, nChunk, first, 0} {
		b = binary.LittleEndian.AppendUint32(b, uint32(v))
	}
	for _, t := range tokens {
		b = binary.LittleEndian.AppendUint32(b, uint32(t))
	}
	_, err := k.w.Write(b)
	return err
}

func (k *klWriter) row(r []float32) error {
	k.buf = k.buf[:0]
	for _, v := range r {
		k.buf = binary.LittleEndian.AppendUint32(k.buf, math.Float32bits(v))
	}
	_, err := k.w.Write(k.buf)
	return err
}

func (k *klWriter) flush() error { return k.w.Flush() }

type klReader struct {
	r                         *bufio.Reader
	nCtx, nVocab, nChunk, fst int
	tokens                    []int32
	buf                       []byte
}

func readKLHeader(f io.Reader) (*klReader, error) {
	r := bufio.NewReaderSize(f, 1<<20)
	h := make([]byte, klHeader)
	if _, err := io.ReadFull(r, h); err != nil {
		return nil, fmt.Errorf("not an ocelot KL-divergence base: %w", err)
	}
	if string(h[:8]) != klMagic {
		return nil, errors.New("not an ocelot KL-divergence base (bad magic)")
	}
	u := func(i int) int { return int(binary.LittleEndian.Uint32(h[8+4*i:])) }
	if u(0) != klVersion {
		return nil, fmt.Errorf("version %d, this ocelot reads %d", u(0), klVersion)
	}
	k := &klReader{r: r, nCtx: u(1), nVocab: u(2), nChunk: u(3), fst: u(4)}
	if u(5) != 0 {
		return nil, fmt.Errorf("unknown row type %d", u(5))
	}
	if k.nCtx < 4 || k.nCtx > ocelot.MaxContext || k.nVocab <= 0 || k.nVocab > 1<<24 || k.nChunk <= 0 || k.nChunk > 1<<26/k.nCtx || k.fst != k.nCtx/2 {
		return nil, fmt.Errorf("corrupt header (n_ctx %d, n_vocab %d, n_chunk %d, first %d)", k.nCtx, k.nVocab, k.nChunk, k.fst)
	}
	tb := make([]byte, 4*k.nChunk*k.nCtx)
	if _, err := io.ReadFull(r, tb); err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	k.tokens = make([]int32, k.nChunk*k.nCtx)
	for i := range k.tokens {
		k.tokens[i] = int32(binary.LittleEndian.Uint32(tb[4*i:]))
	}
	return k, nil
}

func (k *klReader) row(dst []float32) ([]float32, error) {
	if cap(k.buf) < 4*k.nVocab {
		k.buf = make([]byte, 4*k.nVocab)
	}
	b := k.buf[:4*k.nVocab]
	if _, err := io.ReadFull(k.r, b); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("rows: %w", err)
	}
	dst = dst[:0]
	for i := 0; i < k.nVocab; i++ {
		dst = append(dst, math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])))
	}
	return dst, nil
}
