package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/ocelot-llm/ocelot/gguf"
	"github.com/ocelot-llm/ocelot/quant"
)

func init() {
	register(&command{name: "quantize", summary: "convert a GGUF model's weights to another type, as llama-quantize does", run: runQuantize})
}

// quantizeTypes are the target types by llama-quantize's names, with
// llama.cpp's llama_ftype number of each (general.file_type).
var quantizeTypes = []struct {
	name  string
	typ   quant.Type
	ftype uint32
}{
	{"Q4_0", quant.Q4_0, 2},
	{"Q8_0", quant.Q8_0, 7},
	{"Q6_K", quant.Q6_K, 18},
	{"F16", quant.F16, 1},
	{"BF16", quant.BF16, 32},
	{"F32", quant.F32, 0},
}

// parseQuantizeType looks TYPE up by name, case-insensitively, or by its
// llama_ftype number, as llama-quantize accepts both.
func parseQuantizeType(s string) (quant.Type, uint32, error) {
	for _, q := range quantizeTypes {
		if strings.EqualFold(s, q.name) || s == fmt.Sprint(q.ftype) {
			return q.typ, q.ftype, nil
		}
	}
	return 0, 0, usagef("unknown type %q: use q4_0, q8_0, q6_K, f16, bf16 or f32", s)
}

// parseTensorType parses the type of an override flag.
func parseTensorType(flag, s string) (quant.Type, error) {
	t, err := quant.ParseType(s)
	if err != nil || !t.Supported() {
		return 0, usagef("%s %s: use q4_0, q8_0, q6_K, f16, bf16 or f32", flag, s)
	}
	return t, nil
}

const quantizeHelp = `usage: ocelot quantize [--pure] [--output-tensor-type T] [--token-embedding-type T] [--leave-output-tensor] [-t N] IN.gguf OUT.gguf TYPE

Converts the weights of IN.gguf to TYPE (q4_0, q8_0, q6_K, f16, bf16, f32,
any case, or llama.cpp's file type number 2, 7, 18, 1, 32, 0) and writes
OUT.gguf atomically, with the defaults of llama.cpp's llama-quantize:

  - Only tensors whose name ends in "weight" and that have 2 or more
    dimensions are converted; the others (norms, rope_freqs, and as in
    llama.cpp *_norm.weight, ffn_gate_inp.weight, pos_embd.weight,
    token_types.weight, ssm_conv1d.weight, attn_rel_b.weight) are copied
    byte for byte, so 1-D f32 tensors stay f32. A tensor already of its
    target type is copied too; every other one is dequantized to f32 and
    quantized with ggml's reference quantizers, tensor by tensor.
  - When TYPE is quantized (q4_0, q8_0, q6_K), output.weight (or, in a tied
    model without output.weight, token_embd.weight) becomes q6_K, except
    that q8_0 keeps q8_0 and a row length that is not a multiple of TYPE's
    block size gives q8_0 (llama_tensor_get_type). token_embd.weight of an
    untied model keeps TYPE. For f16, bf16 and f32 every weight gets TYPE.
  - --pure turns those rules off: every converted tensor gets TYPE.
    --output-tensor-type and --token-embedding-type still apply, as in
    llama.cpp (they name output.weight and token_embd.weight, and win over
    everything; without --pure, --output-tensor-type also sets a tied
    model's token_embd.weight).
  - --leave-output-tensor copies output.weight unchanged.
  - A row length that is not a multiple of the chosen type's block size
    falls back: q6_K -> q8_0, then -> f16 when q8_0 does not fit either;
    q4_0 and q8_0 -> f16 (llama.cpp refuses these). Each fallback is
    reported on stderr.
  - All metadata is copied; general.file_type is set to TYPE's number
    (ALL_F32 0, MOSTLY_F16 1, MOSTLY_Q4_0 2, MOSTLY_Q8_0 7, MOSTLY_Q6_K 18,
    MOSTLY_BF16 32) and general.quantization_version to 2, as llama.cpp
    does.

Progress goes to stderr when it is a terminal; the summary to stdout.

flags:`

// quantPlan is what happens to one tensor.
type quantPlan struct {
	info     gguf.TensorInfo
	to       quant.Type
	convert  bool   // dequantize and requantize (else copy the bytes)
	fallback string // why the type fell back, when it did
}

func runQuantize(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("quantize", stderr)
	pure := fs.Bool("pure", false, "every converted tensor gets TYPE (no output/token_embd rules)")
	outTypeS := fs.String("output-tensor-type", "", "type of output.weight")
	embdTypeS := fs.String("token-embedding-type", "", "type of token_embd.weight")
	leaveOut := fs.Bool("leave-output-tensor", false, "copy output.weight unchanged")
	threads := fs.Int("t", 0, "threads (0: all cores)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, quantizeHelp)
		fs.PrintDefaults()
	}
	// Flags may come before or after the positional arguments, as in
	// llama-quantize's usage they come first; accept both.
	var pos []string
	rest := args
	for {
		if err := parseFlagsAllowArgs(fs, rest); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(pos) != 3 {
		return usagef("want IN.gguf OUT.gguf TYPE, got %d arguments", len(pos))
	}
	in, out := pos[0], pos[1]
	typ, ftype, err := parseQuantizeType(pos[2])
	if err != nil {
		return err
	}
	var outType, embdType quant.Type
	haveOut, haveEmbd := *outTypeS != "", *embdTypeS != ""
	if haveOut {
		if outType, err = parseTensorType("--output-tensor-type", *outTypeS); err != nil {
			return err
		}
	}
	if haveEmbd {
		if embdType, err = parseTensorType("--token-embedding-type", *embdTypeS); err != nil {
			return err
		}
	}
	if *threads < 0 {
		return usagef("-t %d: want 0 or more", *threads)
	}
	nThreads := *threads
	if nThreads == 0 {
		nThreads = runtime.GOMAXPROCS(0)
	}
	if err := sameFile(in, out); err != nil {
		return err
	}
	if err := gguf.CheckTarget(out); err != nil {
		return err
	}

	f, err := gguf.Open(in)
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", in, err)
	}
	defer f.Close()

	_, hasOutput := f.Tensor("output.weight")
	quantized := typ != quant.F32 && typ != quant.F16 && typ != quant.BF16
	plans := make([]quantPlan, len(f.Tensors))
	for i, t := range f.Tensors {
		p := quantPlan{info: t, to: t.Type}
		if quantizable(t, *leaveOut) {
			to := typ
			if !*pure && quantized && (t.Name == "output.weight" || (!hasOutput && t.Name == "token_embd.weight")) {
				switch {
				case haveOut:
					to = outType
				case t.Shape[0]%int64(typ.BlockSize()) != 0:
					to = quant.Q8_0
				case typ != quant.Q8_0:
					to = quant.Q6_K
				}
			}
			if haveEmbd && t.Name == "token_embd.weight" {
				to = embdType
			}
			if haveOut && t.Name == "output.weight" {
				to = outType
			}
			if n := t.Shape[0]; n%int64(to.BlockSize()) != 0 {
				from := to
				if to == quant.Q6_K {
					to = quant.Q8_0
				}
				if n%int64(to.BlockSize()) != 0 {
					to = quant.F16
				}
				p.fallback = fmt.Sprintf("row length %d is not a multiple of the %s block size %d: using %s", n, from, from.BlockSize(), to)
			}
			p.to = to
			p.convert = to != t.Type
			if p.convert && !t.Type.Supported() {
				return fmt.Errorf("%s: tensor %q has type %s, which ocelot cannot read (it reads %s)", in, t.Name, t.Type, supportedNames())
			}
		}
		plans[i] = p
	}

	w := gguf.NewWriter()
	w.SetVersion(f.Version)
	for _, kv := range f.KVs() {
		w.Set(kv.Key, kv.Value)
	}
	w.Set("general.file_type", gguf.Uint32(ftype))
	w.Set("general.quantization_version", gguf.Uint32(2))

	progress := isTerminal(stderr)
	var inSize, outSize int64
	nConv, nFallback := 0, 0
	for i := range plans {
		p := &plans[i]
		if p.fallback != "" {
			nFallback++
			fmt.Fprintf(stderr, "ocelot quantize: %s (%s %v): %s\n", p.info.Name, p.info.Type, p.info.Shape, p.fallback)
		}
		if p.convert {
			nConv++
		}
		idx := i
		fill := func(dst io.Writer) error {
			if progress {
				fmt.Fprintf(stderr, "[%4d/%4d] %-36s %-6s -> %-6s %v\n", idx+1, len(plans), p.info.Name, p.info.Type, p.to, p.info.Shape)
			}
			src, err := f.TensorData(p.info.Name)
			if err != nil {
				return err
			}
			if !p.convert {
				_, err := dst.Write(src)
				return err
			}
			return convertTensor(dst, src, p.info, p.to, nThreads)
		}
		if err := w.AddTensor(p.info.Name, p.to, p.info.Shape, fill); err != nil {
			return err
		}
		inSize += p.info.Size
		sz, err := tensorSize(p.to, p.info.Shape)
		if err != nil {
			return fmt.Errorf("tensor %q: %w", p.info.Name, err)
		}
		outSize += sz
	}

	start := time.Now()
	if err := w.WriteFile(out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: %s, %d tensors (%d converted, %d copied, %d fallbacks), model size %.2f MiB -> %.2f MiB in %.1f s\n",
		out, strings.ToUpper(typ.String()), len(plans), nConv, len(plans)-nConv, nFallback,
		float64(inSize)/(1<<20), float64(outSize)/(1<<20), time.Since(start).Seconds())
	return nil
}

// quantizable reports whether llama-quantize would convert the tensor: a
// name ending in "weight", 2 or more dimensions, and none of the tensors
// it always leaves as they are.
func quantizable(t gguf.TensorInfo, leaveOutput bool) bool {
	if !strings.HasSuffix(t.Name, "weight") || len(t.Shape) < 2 {
		return false
	}
	if leaveOutput && t.Name == "output.weight" {
		return false
	}
	for _, s := range []string{"_norm.weight", "ffn_gate_inp.weight", "pos_embd.weight", "token_types.weight", "ssm_conv1d.weight", "attn_rel_b.weight"} {
		if strings.Contains(t.Name, s) {
			return false
		}
	}
	return true
}

func supportedNames() string {
	var s []string
	for _, t := range quant.SupportedTypes() {
		s = append(s, t.String())
	}
	return strings.Join(s, ", ")
}

func tensorSize(t quant.Type, shape []int64) (int64, error) {
	n, err := quant.MulSize(shape...)
	if err != nil {
		return 0, err
	}
	return quant.RowSize(t, n)
}

// convertTensor dequantizes src (of info's type) row by row to f32 and
// quantizes it to t, writing to dst. Rows go in chunks of about 16 MiB of
// f32, each chunk split between the threads, so memory stays bounded by
// the chunk whatever the tensor's size.
func convertTensor(dst io.Writer, src []byte, info gguf.TensorInfo, t quant.Type, threads int) error {
	ne0 := info.Shape[0]
	if ne0 == 0 {
		return nil
	}
	rows := info.Elements() / ne0
	inRow, err := quant.RowSize(info.Type, ne0)
	if err != nil {
		return err
	}
	outRow, err := quant.RowSize(t, ne0)
	if err != nil {
		return err
	}
	chunk := max(int64(1), (16<<20)/(4*ne0))
	chunk = min(chunk, rows)
	outBuf := make([]byte, chunk*outRow)
	workers := int(min(int64(threads), chunk))
	f32 := make([][]float32, workers)
	for i := range f32 {
		f32[i] = make([]float32, ne0)
	}
	for r0 := int64(0); r0 < rows; r0 += chunk {
		n := min(chunk, rows-r0)
		var wg sync.WaitGroup
		errs := make([]error, workers)
		per := (n + int64(workers) - 1) / int64(workers)
		for w := 0; w < workers; w++ {
			lo, hi := int64(w)*per, min(int64(w+1)*per, n)
			if lo >= hi {
				continue
			}
			wg.Add(1)
			go func(w int, lo, hi int64) {
				defer wg.Done()
				buf := f32[w]
				for r := lo; r < hi; r++ {
					row := r0 + r
					if err := quant.Dequantize(info.Type, buf, src[row*inRow:(row+1)*inRow]); err != nil {
						errs[w] = fmt.Errorf("row %d: %w", row, err)
						return
					}
					if err := quant.Quantize(t, outBuf[r*outRow:(r+1)*outRow], buf); err != nil {
						errs[w] = fmt.Errorf("row %d: %w", row, err)
						return
					}
				}
			}(w, lo, hi)
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		if _, err := dst.Write(outBuf[:n*outRow]); err != nil {
			return err
		}
	}
	return nil
}

// sameFile refuses an OUT that names IN: writing it would replace the
// file being read.
func sameFile(in, out string) error {
	ai, err1 := filepath.Abs(in)
	ao, err2 := filepath.Abs(out)
	if err1 == nil && err2 == nil && ai == ao {
		return usagef("OUT %s is the same file as IN", out)
	}
	si, err1 := os.Stat(in)
	so, err2 := os.Stat(out)
	if err1 == nil && err2 == nil && os.SameFile(si, so) {
		return usagef("OUT %s is the same file as IN %s", out, in)
	}
	return nil
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
