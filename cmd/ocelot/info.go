package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/ocelot-llm/ocelot/gguf"
)

func init() {
	register(&command{name: "info", summary: "describe a GGUF model: hyperparameters, tokenizer, tensors", run: runInfo})
}

// modelInfo is what `ocelot info --json` prints.
type modelInfo struct {
	Architecture      string       `json:"architecture"`
	BlockCount        uint32       `json:"block_count"`
	EmbeddingLength   uint32       `json:"embedding_length"`
	HeadCount         uint32       `json:"head_count"`
	HeadCountKV       uint32       `json:"head_count_kv"`
	FeedForwardLength uint32       `json:"feed_forward_length"`
	VocabSize         uint32       `json:"vocab_size"`
	ContextLength     uint32       `json:"context_length"`
	RopeFreqBase      float32      `json:"rope_freq_base,omitempty"`
	RMSNormEps        float32      `json:"rms_norm_eps,omitempty"`
	Tokenizer         string       `json:"tokenizer,omitempty"`
	Pre               string       `json:"tokenizer_pre,omitempty"`
	GGUFVersion       uint32       `json:"gguf_version"`
	FileBytes         int64        `json:"file_bytes"`
	Tensors           []tensorInfo `json:"tensors"`
}

type tensorInfo struct {
	Name  string  `json:"name"`
	Type  string  `json:"type"`
	Shape []int64 `json:"shape"`
	Bytes int64   `json:"bytes"`
}

func describe(f *gguf.File) modelInfo {
	u := func(suffix string) uint32 { v, _ := f.ArchUint32(suffix); return v }
	mi := modelInfo{
		Architecture:      f.Architecture(),
		BlockCount:        u("block_count"),
		EmbeddingLength:   u("embedding_length"),
		HeadCount:         u("attention.head_count"),
		HeadCountKV:       u("attention.head_count_kv"),
		FeedForwardLength: u("feed_forward_length"),
		VocabSize:         u("vocab_size"),
		ContextLength:     u("context_length"),
		GGUFVersion:       f.Version,
		FileBytes:         f.Size,
		Tensors:           []tensorInfo{},
	}
	if mi.HeadCountKV == 0 {
		mi.HeadCountKV = mi.HeadCount // llama.cpp's default when the key is absent
	}
	mi.RopeFreqBase, _ = f.ArchFloat32("rope.freq_base")
	mi.RMSNormEps, _ = f.ArchFloat32("attention.layer_norm_rms_epsilon")
	mi.Tokenizer, _ = f.String("tokenizer.ggml.model")
	mi.Pre, _ = f.String("tokenizer.ggml.pre")
	if toks, err := f.Strings("tokenizer.ggml.tokens"); err == nil && mi.VocabSize == 0 {
		mi.VocabSize = uint32(len(toks))
	}
	for _, t := range f.Tensors {
		mi.Tensors = append(mi.Tensors, tensorInfo{Name: t.Name, Type: t.Type.String(), Shape: t.Shape, Bytes: t.Size})
	}
	return mi
}

func runInfo(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("info", stderr)
	model := fs.String("m", "", "model file (GGUF)")
	asJSON := fs.Bool("json", false, "print JSON")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ocelot info -m M.gguf [--json]")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *model == "" {
		return usagef("-m is required")
	}
	f, err := gguf.Open(*model)
	if err != nil {
		return err
	}
	defer f.Close()
	mi := describe(f)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(mi)
	}
	fmt.Fprintf(stdout, "file:          %s (GGUF v%d, %.1f MiB)\n", *model, mi.GGUFVersion, float64(mi.FileBytes)/(1<<20))
	fmt.Fprintf(stdout, "architecture:  %s\n", mi.Architecture)
	fmt.Fprintf(stdout, "layers:        %d\n", mi.BlockCount)
	fmt.Fprintf(stdout, "n_embd:        %d\n", mi.EmbeddingLength)
	fmt.Fprintf(stdout, "heads:         %d (kv %d)\n", mi.HeadCount, mi.HeadCountKV)
	fmt.Fprintf(stdout, "n_ff:          %d\n", mi.FeedForwardLength)
	fmt.Fprintf(stdout, "context:       %d\n", mi.ContextLength)
	fmt.Fprintf(stdout, "rope base:     %g\n", mi.RopeFreqBase)
	fmt.Fprintf(stdout, "rms eps:       %g\n", mi.RMSNormEps)
	fmt.Fprintf(stdout, "tokenizer:     %s (pre %s), %d tokens\n", mi.Tokenizer, orDash(mi.Pre), mi.VocabSize)
	if len(mi.Tensors) == 0 {
		fmt.Fprintln(stdout, "tensors:       none (vocabulary-only file)")
		return nil
	}
	var total int64
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nTENSOR\tTYPE\tSHAPE\tBYTES")
	for _, t := range mi.Tensors {
		dims := make([]string, len(t.Shape))
		for i, d := range t.Shape {
			dims[i] = fmt.Sprint(d)
		}
		fmt.Fprintf(tw, "%s\t%s\t[%s]\t%d\n", t.Name, t.Type, strings.Join(dims, ", "), t.Bytes)
		total += t.Bytes
	}
	tw.Flush()
	fmt.Fprintf(stdout, "%d tensors, %.1f MiB of weights\n", len(mi.Tensors), float64(total)/(1<<20))
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
