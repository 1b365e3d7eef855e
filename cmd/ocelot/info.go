package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/ocelot-llm/ocelot"
	"github.com/ocelot-llm/ocelot/gguf"
	"github.com/ocelot-llm/ocelot/model"
	"github.com/ocelot-llm/ocelot/quant"
	"github.com/ocelot-llm/ocelot/tokenizer"
)

func init() {
	register(&command{name: "info", summary: "describe a GGUF model: hyperparameters, tokenizer, memory, tensors", run: runInfo})
}

// modelInfo is what `ocelot info --json` prints.
type modelInfo struct {
	Architecture      string  `json:"architecture"`
	BlockCount        uint32  `json:"block_count"`
	EmbeddingLength   uint32  `json:"embedding_length"`
	HeadCount         uint32  `json:"head_count"`
	HeadCountKV       uint32  `json:"head_count_kv"`
	FeedForwardLength uint32  `json:"feed_forward_length"`
	VocabSize         uint32  `json:"vocab_size"`
	ContextLength     uint32  `json:"context_length"`
	RopeFreqBase      float32 `json:"rope_freq_base,omitempty"`
	RMSNormEps        float32 `json:"rms_norm_eps,omitempty"`
	Tokenizer         string  `json:"tokenizer,omitempty"`
	Pre               string  `json:"tokenizer_pre,omitempty"`
	GGUFVersion       uint32  `json:"gguf_version"`
	FileBytes         int64   `json:"file_bytes"`

	// FileType is general.file_type by llama.cpp's name (llama_ftype
	// without its LLAMA_FTYPE_ prefix: "MOSTLY_Q4_0"), or, where the key
	// is absent, guessed from the tensor types as llama.cpp guesses it
	// (FileTypeGuessed). "" when neither is possible.
	FileType        string `json:"file_type"`
	FileTypeID      *int64 `json:"file_type_id"` // the number; null when unknown
	FileTypeGuessed bool   `json:"file_type_guessed"`
	FileTypeNote    string `json:"file_type_note,omitempty"` // why it was guessed, or could not be
	NParams         int64  `json:"n_params"`                 // elements of all tensors
	WeightBytes     int64  `json:"weight_bytes"`             // bytes of all tensors

	// Special tokens: the ids the tokenizer uses (after llama.cpp's
	// defaults and its detection of end-of-turn tokens by their text);
	// null where the model has none.
	BOS           *int32  `json:"bos_token_id"`
	EOS           *int32  `json:"eos_token_id"`
	EOT           *int32  `json:"eot_token_id"`
	EOG           []int32 `json:"eog_token_ids"` // every token that ends generation
	PAD           *int32  `json:"pad_token_id"`
	AddBOS        bool    `json:"add_bos_token"`
	AddEOS        bool    `json:"add_eos_token"`
	ChatTemplate  string  `json:"chat_template"`             // tokenizer.chat_template, "" if absent
	ChatFormat    string  `json:"chat_format,omitempty"`     // the format ocelot renders it as ("llama3"), if it knows it
	TokenizerNote string  `json:"tokenizer_error,omitempty"` // why the tokenizer could not be built, if it could not

	Memory  *memoryInfo  `json:"memory,omitempty"` // absent for files without weights
	Tensors []tensorInfo `json:"tensors"`

	tok *tokenizer.Tokenizer
}

// memoryInfo is what a run needs at a context size: the weights and the
// KV cache of every layer, wherever they are placed (scratch for
// intermediates comes on top and grows with n_ubatch).
type memoryInfo struct {
	NCtx        int    `json:"n_ctx"`
	TypeK       string `json:"type_k"`
	TypeV       string `json:"type_v"`
	WeightBytes int64  `json:"weights_bytes"`
	KVBytes     int64  `json:"kv_cache_bytes"`
	TotalBytes  int64  `json:"total_bytes"`
}

type tensorInfo struct {
	Name  string  `json:"name"`
	Type  string  `json:"type"`
	Shape []int64 `json:"shape"`
	Bytes int64   `json:"bytes"`
}

// fileTypeNames are llama.cpp's llama_ftype values by name.
var fileTypeNames = map[int64]string{
	0: "ALL_F32", 1: "MOSTLY_F16", 2: "MOSTLY_Q4_0", 3: "MOSTLY_Q4_1", 4: "MOSTLY_Q4_1_SOME_F16",
	5: "MOSTLY_Q4_2", 6: "MOSTLY_Q4_3", 7: "MOSTLY_Q8_0", 8: "MOSTLY_Q5_0", 9: "MOSTLY_Q5_1",
	10: "MOSTLY_Q2_K", 11: "MOSTLY_Q3_K_S", 12: "MOSTLY_Q3_K_M", 13: "MOSTLY_Q3_K_L", 14: "MOSTLY_Q4_K_S",
	15: "MOSTLY_Q4_K_M", 16: "MOSTLY_Q5_K_S", 17: "MOSTLY_Q5_K_M", 18: "MOSTLY_Q6_K", 19: "MOSTLY_IQ2_XXS",
	20: "MOSTLY_IQ2_XS", 21: "MOSTLY_Q2_K_S", 22: "MOSTLY_IQ3_XS", 23: "MOSTLY_IQ3_XXS", 24: "MOSTLY_IQ1_S",
	25: "MOSTLY_IQ4_NL", 26: "MOSTLY_IQ3_S", 27: "MOSTLY_IQ3_M", 28: "MOSTLY_IQ2_S", 29: "MOSTLY_IQ2_M",
	30: "MOSTLY_IQ4_XS", 31: "MOSTLY_IQ1_M", 32: "MOSTLY_BF16", 33: "MOSTLY_Q4_0_4_4", 34: "MOSTLY_Q4_0_4_8",
	35: "MOSTLY_Q4_0_8_8", 36: "MOSTLY_TQ1_0", 37: "MOSTLY_TQ2_0", 38: "MOSTLY_MXFP4_MOE",
}

// fileTypeOfTensorType is llama.cpp's guess of a file type from the
// most common tensor type, where general.file_type is absent.
var fileTypeOfTensorType = map[quant.Type]int64{
	quant.F32: 0, quant.F16: 1, quant.BF16: 32, quant.Q4_0: 2, quant.Q4_1: 3, quant.Q5_0: 8, quant.Q5_1: 9,
	quant.Q8_0: 7, quant.Q2_K: 10, quant.Q3_K: 12, quant.Q4_K: 15, quant.Q5_K: 17, quant.Q6_K: 18,
	quant.TQ1_0: 36, quant.TQ2_0: 37, quant.IQ2_XXS: 19, quant.IQ2_XS: 20, quant.IQ2_S: 28, quant.IQ3_XXS: 23,
	quant.IQ1_S: 24, quant.IQ1_M: 31, quant.IQ4_NL: 25, quant.IQ4_XS: 30, quant.IQ3_S: 26, quant.MXFP4: 38,
}

func fileTypeName(id int64) string {
	if n, ok := fileTypeNames[id]; ok {
		return n
	}
	return fmt.Sprintf("UNKNOWN_%d", id)
}

// guessFileType finds the most common tensor type as llama.cpp's loader
// does (tensors in name order; the first type to reach the highest count
// wins) and maps it to a file type.
func guessFileType(ts []gguf.TensorInfo) (int64, quant.Type, bool) {
	if len(ts) == 0 {
		return 0, 0, false
	}
	sorted := make([]gguf.TensorInfo, len(ts))
	copy(sorted, ts)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	count := map[quant.Type]int{}
	top, topN := quant.F32, 0
	for _, t := range sorted {
		count[t.Type]++
		if count[t.Type] > topN {
			top, topN = t.Type, count[t.Type]
		}
	}
	id, ok := fileTypeOfTensorType[top]
	return id, top, ok
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
		EOG:               []int32{},
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
		mi.NParams += t.Elements()
		mi.WeightBytes += t.Size
	}
	describeFileType(f, &mi)
	describeTokens(f, &mi)
	return mi
}

func describeFileType(f *gguf.File, mi *modelInfo) {
	id, err := f.Uint32("general.file_type")
	if err == nil {
		v := int64(id)
		mi.FileType, mi.FileTypeID = fileTypeName(v), &v
		return
	}
	why := "general.file_type is absent"
	if !errors.Is(err, gguf.ErrKeyNotFound) {
		why = fmt.Sprintf("general.file_type is unreadable (%v)", err)
	}
	guess, top, ok := guessFileType(f.Tensors)
	switch {
	case len(f.Tensors) == 0:
		mi.FileTypeNote = why + " and the file holds no tensors"
	case !ok:
		mi.FileTypeNote = fmt.Sprintf("%s and the most common tensor type, %s, names no file type", why, top)
	default:
		mi.FileType, mi.FileTypeID, mi.FileTypeGuessed = fileTypeName(guess), &guess, true
		mi.FileTypeNote = fmt.Sprintf("guessed from the tensor types (%s is the most common): %s", top, why)
	}
}

func describeTokens(f *gguf.File, mi *modelInfo) {
	if mi.Tokenizer == "" {
		return // no tokenizer in the file
	}
	v, err := tokenizer.VocabFromGGUF(&f.Metadata)
	var tok *tokenizer.Tokenizer
	if err == nil {
		tok, err = tokenizer.New(v)
	}
	if err != nil {
		mi.TokenizerNote = err.Error()
		mi.ChatTemplate, _ = f.String("tokenizer.chat_template")
		return
	}
	id := func(x int32) *int32 {
		if x < 0 {
			return nil
		}
		return &x
	}
	mi.tok = tok
	mi.BOS, mi.EOS, mi.EOT, mi.PAD = id(tok.BOS()), id(tok.EOS()), id(tok.EOT()), id(v.PAD)
	mi.EOG = tok.EOGTokens()
	mi.AddBOS, mi.AddEOS = tok.AddBOS(), tok.AddEOS()
	mi.ChatTemplate = tok.ChatTemplate()
	if mi.ChatTemplate != "" {
		mi.ChatFormat, _ = tokenizer.DetectChatFormat(mi.ChatTemplate)
	}
}

// memory is what a run at nCtx needs for the weights and KV cache, or nil
// where the file has no weights or hyperparameters to size a cache by.
func (mi *modelInfo) memory(nCtx int, tk, tv quant.Type) (*memoryInfo, error) {
	if len(mi.Tensors) == 0 || mi.BlockCount == 0 || mi.HeadCount == 0 || mi.EmbeddingLength%mi.HeadCount != 0 {
		return nil, nil
	}
	c := model.Config{NEmbd: int(mi.EmbeddingLength), NLayer: int(mi.BlockCount), NHead: int(mi.HeadCount),
		NHeadKV: int(mi.HeadCountKV), HeadDim: int(mi.EmbeddingLength / mi.HeadCount)}
	kv, err := model.KVBytes(c, nCtx, c.NLayer, tk, tv)
	if err != nil {
		return nil, fmt.Errorf("KV cache at -c %d: %w", nCtx, err)
	}
	total, err := quant.AddSize(mi.WeightBytes, kv)
	if err != nil {
		return nil, fmt.Errorf("memory at -c %d: %w", nCtx, err)
	}
	return &memoryInfo{NCtx: nCtx, TypeK: tk.String(), TypeV: tv.String(), WeightBytes: mi.WeightBytes, KVBytes: kv, TotalBytes: total}, nil
}

// kvFlag parses a -ctk/-ctv value.
func kvFlag(name, value string) (quant.Type, error) {
	t, err := quant.ParseType(value)
	if err == nil {
		err = model.CheckKVType(t)
	}
	if err != nil {
		return 0, usagef("%s %q: %v", name, value, err)
	}
	return t, nil
}

func runInfo(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("info", stderr)
	modelPath := fs.String("m", "", "model file (GGUF)")
	asJSON := fs.Bool("json", false, "print JSON")
	nCtx := fs.Int("c", 4096, "context size (n_ctx) to size the KV cache for; 0: the model's trained context")
	ctk := fs.String("ctk", "f16", "K cache type to size the KV cache for: f32, f16, q8_0, q4_0")
	ctv := fs.String("ctv", "f16", "V cache type to size the KV cache for: f32, f16, q8_0, q4_0")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ocelot info -m M.gguf [-c 4096] [-ctk f16] [-ctv f16] [--json]")
		fmt.Fprintln(stderr, "\nPrints the hyperparameters, file type, parameter count, tokenizer, special tokens and chat")
		fmt.Fprintln(stderr, "template, the memory the weights and KV cache take at -c, and the tensors.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *modelPath == "" {
		return usagef("-m is required")
	}
	if *nCtx < 0 || *nCtx > ocelot.MaxContext {
		return usagef("-c must lie in 0..%d, got %d", ocelot.MaxContext, *nCtx)
	}
	tk, err := kvFlag("-ctk", *ctk)
	if err != nil {
		return err
	}
	tv, err := kvFlag("-ctv", *ctv)
	if err != nil {
		return err
	}
	f, err := gguf.Open(*modelPath)
	if err != nil {
		return err
	}
	defer f.Close()
	mi := describe(f)
	n := *nCtx
	if n == 0 {
		n = int(mi.ContextLength)
	}
	if n > 0 {
		if mi.Memory, err = mi.memory(n, tk, tv); err != nil {
			return err
		}
	} else if len(mi.Tensors) > 0 {
		return usagef("-c 0 asks for the model's context, but %s is absent", f.ArchKey("context_length"))
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(mi)
	}
	writeInfo(stdout, *modelPath, &mi)
	return nil
}

func writeInfo(w io.Writer, path string, mi *modelInfo) {
	fmt.Fprintf(w, "file:          %s (GGUF v%d, %.1f MiB)\n", path, mi.GGUFVersion, float64(mi.FileBytes)/(1<<20))
	fmt.Fprintf(w, "architecture:  %s\n", mi.Architecture)
	switch {
	case mi.FileType != "" && mi.FileTypeGuessed:
		fmt.Fprintf(w, "file type:     %s (%s)\n", mi.FileType, mi.FileTypeNote)
	case mi.FileType != "":
		fmt.Fprintf(w, "file type:     %s\n", mi.FileType)
	default:
		fmt.Fprintf(w, "file type:     unknown (%s)\n", mi.FileTypeNote)
	}
	if len(mi.Tensors) > 0 {
		fmt.Fprintf(w, "params:        %s (%d)\n", humanCount(mi.NParams), mi.NParams)
	}
	fmt.Fprintf(w, "layers:        %d\n", mi.BlockCount)
	fmt.Fprintf(w, "n_embd:        %d\n", mi.EmbeddingLength)
	fmt.Fprintf(w, "heads:         %d (kv %d)\n", mi.HeadCount, mi.HeadCountKV)
	fmt.Fprintf(w, "n_ff:          %d\n", mi.FeedForwardLength)
	fmt.Fprintf(w, "context:       %d\n", mi.ContextLength)
	fmt.Fprintf(w, "rope base:     %g\n", mi.RopeFreqBase)
	fmt.Fprintf(w, "rms eps:       %g\n", mi.RMSNormEps)
	fmt.Fprintf(w, "tokenizer:     %s (pre %s), %d tokens\n", mi.Tokenizer, orDash(mi.Pre), mi.VocabSize)
	if mi.TokenizerNote != "" {
		fmt.Fprintf(w, "special tokens: unknown: %s\n", mi.TokenizerNote)
	} else if mi.tok != nil {
		fmt.Fprintf(w, "BOS:           %s (added: %s)\n", mi.tokenText(mi.BOS), yesNo(mi.AddBOS))
		fmt.Fprintf(w, "EOS:           %s (added: %s)\n", mi.tokenText(mi.EOS), yesNo(mi.AddEOS))
		fmt.Fprintf(w, "EOT:           %s\n", mi.tokenText(mi.EOT))
		eog := make([]string, len(mi.EOG))
		for i := range mi.EOG {
			eog[i] = mi.tokenText(&mi.EOG[i])
		}
		if len(eog) == 0 {
			eog = []string{"none"}
		}
		fmt.Fprintf(w, "EOG:           %s\n", strings.Join(eog, ", "))
		fmt.Fprintf(w, "PAD:           %s\n", mi.tokenText(mi.PAD))
	}
	switch {
	case mi.ChatTemplate == "" && mi.Tokenizer != "":
		fmt.Fprintln(w, "chat template: none (tokenizer.chat_template is absent)")
	case mi.ChatTemplate != "":
		format := "a format ocelot does not render (give run --chat-template)"
		if mi.ChatFormat != "" {
			format = mi.ChatFormat + " format"
		}
		fmt.Fprintf(w, "chat template: %s, %d bytes:\n", format, len(mi.ChatTemplate))
		for _, line := range strings.Split(strings.TrimRight(mi.ChatTemplate, "\n"), "\n") {
			fmt.Fprintf(w, "    %s\n", line)
		}
	}
	if m := mi.Memory; m != nil {
		beyond := ""
		if mi.ContextLength > 0 && m.NCtx > int(mi.ContextLength) {
			beyond = fmt.Sprintf(", beyond the trained context of %d", mi.ContextLength)
		}
		fmt.Fprintf(w, "memory:        %s at -c %d%s: %s weights + %s KV cache (%s/%s); intermediates come on top and grow with -ub\n",
			mib(m.TotalBytes), m.NCtx, beyond, mib(m.WeightBytes), mib(m.KVBytes), m.TypeK, m.TypeV)
	}
	if len(mi.Tensors) == 0 {
		fmt.Fprintln(w, "tensors:       none (vocabulary-only file)")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nTENSOR\tTYPE\tSHAPE\tBYTES")
	for _, t := range mi.Tensors {
		dims := make([]string, len(t.Shape))
		for i, d := range t.Shape {
			dims[i] = fmt.Sprint(d)
		}
		fmt.Fprintf(tw, "%s\t%s\t[%s]\t%d\n", t.Name, t.Type, strings.Join(dims, ", "), t.Bytes)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d tensors, %.1f MiB of weights\n", len(mi.Tensors), float64(mi.WeightBytes)/(1<<20))
}

// tokenText is an id with its text: 128000 "<|begin_of_text|>", or none.
func (mi *modelInfo) tokenText(id *int32) string {
	if id == nil {
		return "none"
	}
	if mi.tok != nil {
		if s, err := mi.tok.TokenText(*id); err == nil {
			return fmt.Sprintf("%d %s", *id, strconv.Quote(s))
		}
	}
	return fmt.Sprint(*id)
}

// humanCount writes a parameter count as llama.cpp does: 1.24 B, 7.50 M.
func humanCount(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f B", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2f M", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.2f K", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

func mib(n int64) string {
	if n >= 1<<30 {
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
