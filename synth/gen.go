package synth

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"sync"

	"github.com/ocelot-llm/ocelot/gguf"
	"github.com/ocelot-llm/ocelot/quant"
)

// Options say what model Generate writes.
type Options struct {
	Preset     Preset
	Layers     int        // overrides Preset.NLayer when > 0: 0 or 1..model.MaxLayers
	Type       quant.Type // type of the 2-D weights (default Q4_0)
	OutputType quant.Type // type of output.weight (default Q6_K)
	// Tied drops output.weight so the output reuses token_embd, as
	// Llama 3.2 does; the 1b and 3b presets are tied already.
	Tied bool
	Seed uint64
	// Fast fills quantized tensors with random valid blocks instead of
	// quantizing random weights: the same shapes and sizes in a fraction of
	// the time, for benchmarks of big presets.
	Fast bool
	// VocabPath, if set, is a GGUF file whose tokenizer.* metadata is copied
	// (a llama.cpp vocab file, say). Otherwise ocelot's built-in byte-level
	// BPE vocabulary is used.
	VocabPath string
	Threads   int // goroutines that make weights: 0 (GOMAXPROCS) or 1..MaxThreads
	// Progress, if not nil, learns after each tensor is written how many
	// of the file's tensors are done (a progress display).
	Progress func(done, total int)
}

// DefaultOptions returns the options of a model like llama.cpp's Q4_0
// files: Q4_0 weights, a Q6_K output.weight, seed 1.
func DefaultOptions(p Preset) Options {
	return Options{Preset: p, Type: quant.Q4_0, OutputType: quant.Q6_K, Seed: 1}
}

func (o *Options) setDefaults() {
	if o.Layers > 0 {
		o.Preset.NLayer = o.Layers
		o.Layers = 0
	}
	if o.Tied {
		o.Preset.Tied = true
	}
	if o.Threads <= 0 {
		o.Threads = runtime.GOMAXPROCS(0)
	}
}

// weightTypes are the types a synthetic model's tensors may take.
var weightTypes = []quant.Type{quant.F32, quant.F16, quant.BF16, quant.Q4_0, quant.Q8_0, quant.Q6_K}

func checkWeightType(what string, t quant.Type) error {
	for _, w := range weightTypes {
		if w == t {
			return nil
		}
	}
	return fmt.Errorf("synth: %s type %s is not one ocelot can write (have f32, f16, bf16, q4_0, q8_0, q6_K)", what, t)
}

// fileType maps the main weight type to llama.cpp's general.file_type.
func fileType(t quant.Type) uint32 {
	switch t {
	case quant.F32:
		return 0
	case quant.F16:
		return 1
	case quant.Q4_0:
		return 2
	case quant.Q8_0:
		return 7
	case quant.Q6_K:
		return 18
	case quant.BF16:
		return 32
	}
	return 0
}

// tensorPlan is one tensor to write: its name, type, shape (ggml order,
// row length first) and the standard deviation of its random values.
// Norm weights (norm) are 1 plus small noise.
type tensorPlan struct {
	name  string
	typ   quant.Type
	shape []int64
	std   float32
	norm  bool
	data  []float32 // fixed values (rope_freqs)
	// row, when set, makes row r's values (instead of the chunk streams).
	row func(r int64, dst []float32)
}

func (o *Options) plan(voc vocabKVs) ([]tensorPlan, error) {
	nVocab := voc.nVocab
	p := o.Preset
	if err := p.validate(false); err != nil {
		return nil, err
	}
	if err := checkVocabSize("vocabulary size", nVocab); err != nil {
		return nil, err
	}
	nEmbd, nFF, nKV := int64(p.NEmbd), int64(p.NFF), int64(p.NHeadKV*p.HeadDim())
	wstd := float32(1 / math.Sqrt(float64(nEmbd)))
	// The output projection is scaled so logits spread by a few units.
	// (An untied model's embedding has unit values and its output rows
	// carry a bigram signal: see bigram.)
	ostd := float32(4 / math.Sqrt(float64(nEmbd)))
	wt := o.Type
	var plans []tensorPlan
	// As llama.cpp's quantizer does, a tied model stores its embedding in
	// the output's type, since it serves as the output too.
	embdType := wt
	if p.Tied {
		embdType = o.OutputType
	}
	embd := tensorPlan{name: "token_embd.weight", typ: embdType, shape: []int64{nEmbd, int64(nVocab)}, std: ostd}
	var out *tensorPlan
	if !p.Tied {
		out = &tensorPlan{name: "output.weight", typ: o.OutputType, shape: []int64{nEmbd, int64(nVocab)}, std: ostd}
		o.bigram(&embd, out, voc)
	}
	plans = append(plans, embd)
	plans = append(plans, tensorPlan{name: "rope_freqs.weight", typ: quant.F32, shape: []int64{int64(p.HeadDim() / 2)}, data: ropeFreqFactors(p.HeadDim())})
	for l := 0; l < p.NLayer; l++ {
		b := fmt.Sprintf("blk.%d.", l)
		plans = append(plans,
			tensorPlan{name: b + "attn_norm.weight", typ: quant.F32, shape: []int64{nEmbd}, norm: true},
			tensorPlan{name: b + "attn_q.weight", typ: wt, shape: []int64{nEmbd, nEmbd}, std: wstd},
			tensorPlan{name: b + "attn_k.weight", typ: wt, shape: []int64{nEmbd, nKV}, std: wstd},
			tensorPlan{name: b + "attn_v.weight", typ: wt, shape: []int64{nEmbd, nKV}, std: wstd},
			tensorPlan{name: b + "attn_output.weight", typ: wt, shape: []int64{nEmbd, nEmbd}, std: wstd},
			tensorPlan{name: b + "ffn_norm.weight", typ: quant.F32, shape: []int64{nEmbd}, norm: true},
			tensorPlan{name: b + "ffn_gate.weight", typ: wt, shape: []int64{nEmbd, nFF}, std: wstd},
			tensorPlan{name: b + "ffn_up.weight", typ: wt, shape: []int64{nEmbd, nFF}, std: wstd},
			tensorPlan{name: b + "ffn_down.weight", typ: wt, shape: []int64{nFF, nEmbd}, std: float32(1 / math.Sqrt(float64(nFF)))},
		)
	}
	plans = append(plans, tensorPlan{name: "output_norm.weight", typ: quant.F32, shape: []int64{nEmbd}, norm: true})
	if out != nil {
		plans = append(plans, *out)
	}
	for _, t := range plans {
		if bs := int64(t.typ.BlockSize()); t.shape[0]%bs != 0 {
			return nil, fmt.Errorf("synth: %s: row length %d is not a multiple of %s's block size %d", t.name, t.shape[0], t.typ, bs)
		}
	}
	return plans, nil
}

// Generate writes a synthetic model to path (atomically: a partial file is
// never left under that name). It checks the options first (see
// Validate) and that path is new or a regular file (see
// gguf.CheckTarget), so that bad ones fail before any work.
func Generate(path string, opt Options) error {
	if err := opt.Validate(); err != nil {
		return err
	}
	if err := gguf.CheckTarget(path); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	opt.setDefaults()
	voc, err := loadVocab(opt)
	if err != nil {
		return err
	}
	if opt.VocabPath != "" {
		if err := checkVocabSize("vocab "+opt.VocabPath+": number of tokens", voc.nVocab); err != nil {
			return err
		}
	}
	plans, err := opt.plan(voc)
	if err != nil {
		return err
	}
	w := gguf.NewWriter()
	p := opt.Preset
	w.Set("general.architecture", gguf.String("llama"))
	w.Set("general.name", gguf.String("ocelot-synth-"+p.Name))
	w.Set("general.description", gguf.String(fmt.Sprintf("synthetic %s model by ocelot gen: seeded random weights (seed %d, fast %v)", p.Name, opt.Seed, opt.Fast)))
	w.Set("general.file_type", gguf.Uint32(fileType(opt.Type)))
	w.Set("general.quantization_version", gguf.Uint32(2))
	w.Set("llama.vocab_size", gguf.Uint32(uint32(voc.nVocab)))
	w.Set("llama.context_length", gguf.Uint32(uint32(p.NCtxTrain)))
	w.Set("llama.embedding_length", gguf.Uint32(uint32(p.NEmbd)))
	w.Set("llama.block_count", gguf.Uint32(uint32(p.NLayer)))
	w.Set("llama.feed_forward_length", gguf.Uint32(uint32(p.NFF)))
	w.Set("llama.attention.head_count", gguf.Uint32(uint32(p.NHead)))
	w.Set("llama.attention.head_count_kv", gguf.Uint32(uint32(p.NHeadKV)))
	w.Set("llama.rope.freq_base", gguf.Float32(ropeFreqBase))
	w.Set("llama.rope.dimension_count", gguf.Uint32(uint32(p.HeadDim())))
	w.Set("llama.attention.layer_norm_rms_epsilon", gguf.Float32(1e-5))
	for _, kv := range voc.kvs {
		w.Set(kv.Key, kv.Value)
	}
	pools := newPoolCache()
	for i := range plans {
		t := plans[i]
		seed := hashString(opt.Seed, t.name)
		var fill func(io.Writer) error
		switch {
		case t.data != nil:
			fill = func(out io.Writer) error { return writeFloats(out, t.typ, t.data) }
		case t.norm:
			fill = func(out io.Writer) error {
				r := newRNG(seed)
				v := make([]float32, t.shape[0])
				for j := range v {
					v[j] = 1 + 0.1*r.normal()
				}
				return writeFloats(out, t.typ, v)
			}
		case opt.Fast:
			fill = func(out io.Writer) error { return fillFast(out, t, seed, pools.get(t.typ, t.std, opt.Seed)) }
		default:
			fill = func(out io.Writer) error { return fillRandom(out, t, seed, opt.Threads) }
		}
		if opt.Progress != nil {
			mk, done := fill, i+1
			fill = func(out io.Writer) error {
				err := mk(out)
				if err == nil {
					opt.Progress(done, len(plans))
				}
				return err
			}
		}
		if err := w.AddTensor(t.name, t.typ, t.shape, fill); err != nil {
			return fmt.Errorf("synth: %w", err)
		}
	}
	if err := w.WriteFile(path); err != nil {
		return fmt.Errorf("synth: write %s: %w", path, err)
	}
	return nil
}

func writeFloats(out io.Writer, t quant.Type, v []float32) error {
	buf, err := quant.Encode(t, v)
	if err != nil {
		return err
	}
	_, err = out.Write(buf)
	return err
}

// rowsPerChunk fixes how rows are grouped for seeding, so that the weights
// do not depend on the number of threads that made them.
const rowsPerChunk = 16

// maxValuesInFlight bounds the values fillRandom holds at once (256 MiB of
// float32 and their quantized bytes), so that MaxThreads goroutines on rows
// of model.MaxWidth do not exhaust memory.
const maxValuesInFlight = 1 << 26

// fillRandom writes t's rows as quantized normal values, chunk by chunk,
// making chunks on several goroutines and writing them in order.
func fillRandom(out io.Writer, t tensorPlan, seed uint64, threads int) error {
	rowLen := t.shape[0]
	rows := int64(1)
	for _, d := range t.shape[1:] {
		rows *= d
	}
	rowBytes, err := quant.RowSize(t.typ, rowLen)
	if err != nil {
		return err
	}
	nChunks := (rows + rowsPerChunk - 1) / rowsPerChunk
	type result struct {
		buf []byte
		err error
	}
	// At most maxValuesInFlight values are made at once, however many
	// threads and however wide the rows: the output does not depend on it.
	perRound := max(1, min(int64(threads), maxValuesInFlight/(rowsPerChunk*max(1, rowLen))))
	for first := int64(0); first < nChunks; first += perRound {
		n := min(perRound, nChunks-first)
		res := make([]result, n)
		var wg sync.WaitGroup
		for k := int64(0); k < n; k++ {
			wg.Add(1)
			go func(k int64) {
				defer wg.Done()
				c := first + k
				r0 := c * rowsPerChunk
				r1 := min(r0+rowsPerChunk, rows)
				v := make([]float32, (r1-r0)*rowLen)
				if t.row != nil {
					for r := r0; r < r1; r++ {
						t.row(r, v[(r-r0)*rowLen:(r-r0+1)*rowLen])
					}
				} else {
					r := newRNG(seed ^ uint64(c)*0x9e3779b97f4a7c15)
					for j := range v {
						v[j] = t.std * r.normal()
					}
				}
				buf := make([]byte, (r1-r0)*rowBytes)
				res[k] = result{buf, quant.Quantize(t.typ, buf, v)}
			}(k)
		}
		wg.Wait()
		for _, r := range res {
			if r.err != nil {
				return r.err
			}
			if _, err := out.Write(r.buf); err != nil {
				return err
			}
		}
	}
	return nil
}

// FormatVersion changes whenever Generate would write different bytes for
// the same options, so that cached models are made again.
const FormatVersion = 5

// bigramStrength is the share of each output row that is the embedding of
// the token it follows (see bigram).
const bigramStrength = 0.7

// bigram gives an untied model the confidence of a trained one. Random
// weights alone make a model whose next-token distribution is flat, with
// near-ties everywhere: then any engine's rounding (llama.cpp quantizes
// activations to Q8_0) flips the greedy choice, and engines cannot be
// compared by their text. So each normal token t is given a successor
// π(t) (a seeded permutation of the normal tokens), and the output row of
// π(t) holds, besides random values, the embedding of t. The embedding
// reaches the output through the residual stream, so the model prefers
// π(t) after t by a clear margin, while every layer still moves the
// logits. Non-normal tokens (control, byte...) get small random rows only.
func (o *Options) bigram(embd, out *tensorPlan, voc vocabKVs) {
	n, width := voc.nVocab, int(embd.shape[0])
	embdSeed := hashString(o.Seed, embd.name)
	embdRow := func(r int64, dst []float32) {
		g := newRNG(embdSeed ^ uint64(r)*0x9e3779b97f4a7c15)
		for i := range dst {
			dst[i] = g.normal()
		}
	}
	embd.row = embdRow
	var normal []int32
	for id := 0; id < n; id++ {
		if voc.types == nil || id >= len(voc.types) || voc.types[id] == 1 {
			normal = append(normal, int32(id))
		}
	}
	prev := make([]int32, n) // prev[j]: the token whose successor is j, or -1
	for i := range prev {
		prev[i] = -1
	}
	perm := newRNG(hashString(o.Seed, "bigram"))
	succ := append([]int32(nil), normal...)
	for i := len(succ) - 1; i > 0; i-- {
		j := int(perm.next() % uint64(i+1))
		succ[i], succ[j] = succ[j], succ[i]
	}
	for i, t := range normal {
		prev[succ[i]] = t
	}
	outSeed := hashString(o.Seed, out.name)
	std := out.std
	mix := float32(math.Sqrt(1 - bigramStrength*bigramStrength))
	out.row = func(r int64, dst []float32) {
		g := newRNG(outSeed ^ uint64(r)*0x9e3779b97f4a7c15)
		for i := range dst {
			dst[i] = g.normal()
		}
		scale := std
		if p := prev[r]; p >= 0 {
			tmp := make([]float32, width)
			embdRow(int64(p), tmp)
			for i := range dst {
				dst[i] = mix*dst[i] + bigramStrength*tmp[i]
			}
		} else {
			// Control and byte tokens are rarely the likely next token,
			// as in trained models: a random model should not stop at
			// once on an end-of-generation token.
			scale *= 0.25
		}
		for i := range dst {
			dst[i] *= scale
		}
	}
}
