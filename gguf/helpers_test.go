package gguf

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"

	"github.com/ocelot-llm/ocelot/quant"
)

// sampleKVs returns metadata with every value type: scalars, arrays of
// each element type (including empty ones), and nested arrays.
func sampleKVs() []KV {
	return []KV{
		{"general.architecture", String("llama")},
		{"general.name", String("sample ✓ model")},
		{"llama.block_count", Uint32(2)},
		{"llama.rope.freq_base", Float32(500000)},
		{"test.u8", Uint8(200)},
		{"test.i8", Int8(-100)},
		{"test.u16", Uint16(65000)},
		{"test.i16", Int16(-32000)},
		{"test.u32", Uint32(math.MaxUint32)},
		{"test.i32", Int32(math.MinInt32)},
		{"test.f32", Float32(-1.5)},
		{"test.true", Bool(true)},
		{"test.false", Bool(false)},
		{"test.string", String("héllo\x00world")},
		{"test.empty_string", String("")},
		{"test.u64", Uint64(math.MaxUint64)},
		{"test.i64", Int64(math.MinInt64)},
		{"test.f64", Float64(math.Pi)},
		{"test.arr.u8", ArrayOf(Array{TypeUint8, []uint8{0, 1, 255}})},
		{"test.arr.i8", ArrayOf(Array{TypeInt8, []int8{-128, 0, 127}})},
		{"test.arr.u16", ArrayOf(Array{TypeUint16, []uint16{0, 65535}})},
		{"test.arr.i16", ArrayOf(Array{TypeInt16, []int16{-32768, 32767}})},
		{"test.arr.u32", Uint32s([]uint32{1, 2, math.MaxUint32})},
		{"test.arr.i32", Int32s([]int32{-1, 0, 1})},
		{"test.arr.f32", Float32s([]float32{0.5, -0.25, float32(math.Inf(1))})},
		{"test.arr.bool", ArrayOf(Array{TypeBool, []bool{true, false, true}})},
		{"test.arr.string", Strings([]string{"a", "", "Ġhello", "<0x0A>"})},
		{"test.arr.u64", ArrayOf(Array{TypeUint64, []uint64{math.MaxUint64, 0}})},
		{"test.arr.i64", ArrayOf(Array{TypeInt64, []int64{math.MinInt64, math.MaxInt64}})},
		{"test.arr.f64", ArrayOf(Array{TypeFloat64, []float64{1e300, -1e-300}})},
		{"test.arr.empty", Int32s([]int32{})},
		{"test.arr.empty_strings", Strings([]string{})},
		{"test.arr.nested", ArrayOf(Array{TypeArray, []Array{
			{TypeInt32, []int32{1, 2}},
			{TypeString, []string{"x", "yz"}},
			{TypeArray, []Array{{TypeFloat32, []float32{3}}}},
			{TypeUint8, []uint8{}},
		}})},
	}
}

// sampleTensor is a tensor of the sample file and its data.
type sampleTensor struct {
	name  string
	typ   quant.Type
	shape []int64
	data  []byte
}

// sampleTensors returns tensors of several types and sizes, one of them
// empty, with deterministic data.
func sampleTensors(t testing.TB) []sampleTensor {
	t.Helper()
	ts := []sampleTensor{
		{name: "token_embd.weight", typ: quant.Q4_0, shape: []int64{64, 3}},
		{name: "output_norm.weight", typ: quant.F32, shape: []int64{5}},
		{name: "blk.0.attn_q.weight", typ: quant.Q8_0, shape: []int64{32, 2, 1}},
		{name: "blk.0.ffn_down.weight", typ: quant.Q6_K, shape: []int64{256, 1, 1, 1}},
		{name: "f16", typ: quant.F16, shape: []int64{3, 3}},
		{name: "empty", typ: quant.F32, shape: []int64{4, 0}},
	}
	seed := uint32(1)
	for i := range ts {
		n := int64(1)
		for _, d := range ts[i].shape {
			n *= d
		}
		size, err := quant.RowSize(ts[i].typ, n)
		if err != nil {
			t.Fatal(err)
		}
		ts[i].data = make([]byte, size)
		for j := range ts[i].data {
			seed = seed*1664525 + 1013904223
			ts[i].data[j] = byte(seed >> 24)
		}
	}
	return ts
}

// sampleWriter returns a Writer holding sampleKVs and sampleTensors.
func sampleWriter(t testing.TB, version uint32, alignment uint32) (*Writer, []sampleTensor) {
	t.Helper()
	w := NewWriter()
	w.SetVersion(version)
	for _, kv := range sampleKVs() {
		w.Set(kv.Key, kv.Value)
	}
	if alignment != 0 {
		w.Set(KeyAlignment, Uint32(alignment))
	}
	ts := sampleTensors(t)
	for _, st := range ts {
		if err := w.AddTensorBytes(st.name, st.typ, st.shape, st.data); err != nil {
			t.Fatal(err)
		}
	}
	return w, ts
}

// encode returns the bytes w writes.
func encode(t testing.TB, w *Writer) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := w.WriteTo(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("WriteTo returned %d, wrote %d bytes", n, buf.Len())
	}
	return buf.Bytes()
}

// smallFile is a small valid file: a few KVs (with arrays) and a few
// tensors.
func smallFile(t testing.TB) []byte {
	t.Helper()
	w := NewWriter()
	w.Set(KeyArchitecture, String("llama"))
	w.Set("llama.block_count", Uint32(1))
	w.Set("tokenizer.ggml.tokens", Strings([]string{"<s>", "a", "bc"}))
	w.Set("tokenizer.ggml.scores", Float32s([]float32{0, -1, -2}))
	w.Set("test.nested", ArrayOf(Array{TypeArray, []Array{{TypeInt16, []int16{7}}}}))
	for _, st := range sampleTensors(t)[:3] {
		if err := w.AddTensorBytes(st.name, st.typ, st.shape, st.data); err != nil {
			t.Fatal(err)
		}
	}
	return encode(t, w)
}

// reencode writes f's metadata and tensors again with a new Writer (same
// version), so that a parsed file can be compared with what it turns into.
func reencode(t testing.TB, f *File) []byte {
	t.Helper()
	w := NewWriter()
	w.SetVersion(f.Version)
	for _, kv := range f.KVs() {
		w.Set(kv.Key, kv.Value)
	}
	for _, ti := range f.Tensors {
		data, err := f.TensorData(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.AddTensorBytes(ti.Name, ti.Type, ti.Shape, data); err != nil {
			t.Fatalf("re-adding tensor accepted by Parse: %v", err)
		}
	}
	return encode(t, w)
}

// raw builds arbitrary, unchecked GGUF bytes for corruption tests.
type raw struct{ b []byte }

func (r *raw) pos() int64 { return int64(len(r.b)) }

func (r *raw) bytes(s string) *raw { r.b = append(r.b, s...); return r }
func (r *raw) u8(v uint8) *raw     { r.b = append(r.b, v); return r }
func (r *raw) u32(v uint32) *raw   { r.b = binary.LittleEndian.AppendUint32(r.b, v); return r }
func (r *raw) u64(v uint64) *raw   { r.b = binary.LittleEndian.AppendUint64(r.b, v); return r }
func (r *raw) str(s string) *raw   { return r.u64(uint64(len(s))).bytes(s) }
func (r *raw) zeros(n int) *raw    { r.b = append(r.b, make([]byte, n)...); return r }

func (r *raw) pad(align int) *raw {
	for len(r.b)%align != 0 {
		r.b = append(r.b, 0)
	}
	return r
}

// header appends a GGUF header.
func (r *raw) header(version uint32, nTensors, nKV uint64) *raw {
	return r.bytes("GGUF").u32(version).u64(nTensors).u64(nKV)
}

// kvU32 appends a uint32 key/value pair.
func (r *raw) kvU32(key string, v uint32) *raw {
	return r.str(key).u32(uint32(TypeUint32)).u32(v)
}

// tensor appends a tensor info and returns the position of its offset
// field.
func (r *raw) tensor(name string, shape []uint64, typ quant.Type, offset uint64) int64 {
	r.str(name).u32(uint32(len(shape)))
	for _, d := range shape {
		r.u64(d)
	}
	r.u32(uint32(typ))
	at := r.pos()
	r.u64(offset)
	return at
}
