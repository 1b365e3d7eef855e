package gguf

import (
	"bytes"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ocelot-llm/ocelot/quant"
)

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name      string
		version   uint32
		alignment uint32 // 0: default
	}{
		{"v3", 3, 0},
		{"v2", 2, 0},
		{"v3 align 64", 3, 64},
		{"v2 align 1", 2, 1},
		{"v3 align 4096", 3, 4096},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, ts := sampleWriter(t, tt.version, tt.alignment)
			data := encode(t, w)
			f, err := Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()

			align := int64(DefaultAlignment)
			if tt.alignment != 0 {
				align = int64(tt.alignment)
			}
			if f.Version != tt.version || f.Alignment != align || f.Size != int64(len(data)) {
				t.Errorf("version %d alignment %d size %d, want %d %d %d", f.Version, f.Alignment, f.Size, tt.version, align, len(data))
			}
			if f.DataOffset%align != 0 {
				t.Errorf("data offset %d not aligned to %d", f.DataOffset, align)
			}
			if got, want := f.KVs(), w.Metadata().KVs(); !reflect.DeepEqual(got, want) {
				t.Errorf("metadata differs:\n got %v\nwant %v", got, want)
			}

			if len(f.Tensors) != len(ts) {
				t.Fatalf("%d tensors, want %d", len(f.Tensors), len(ts))
			}
			for i, st := range ts {
				ti := f.Tensors[i]
				if ti.Name != st.name || ti.Type != st.typ || !reflect.DeepEqual(ti.Shape, st.shape) || ti.Size != int64(len(st.data)) {
					t.Errorf("tensor %d = %+v, want %s %s %v (%d bytes)", i, ti, st.name, st.typ, st.shape, len(st.data))
				}
				if ti.Offset%align != 0 {
					t.Errorf("tensor %q offset %d not aligned", ti.Name, ti.Offset)
				}
				got, err := f.TensorData(st.name)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, st.data) {
					t.Errorf("tensor %q data differs", st.name)
				}
				if p, ok := f.Tensor(st.name); !ok || p != &f.Tensors[i] {
					t.Errorf("Tensor(%q) = %v, %v", st.name, p, ok)
				}
			}

			// Writing what was read gives the same bytes.
			if again := reencode(t, f); !bytes.Equal(again, data) {
				t.Errorf("re-encoding the parsed file changes it (%d -> %d bytes)", len(data), len(again))
			}
		})
	}
}

func TestWriteFile(t *testing.T) {
	w, ts := sampleWriter(t, 3, 0)
	path := filepath.Join(t.TempDir(), "model.gguf")
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, encode(t, w)) {
		t.Fatal("WriteFile and WriteTo differ")
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("folder holds %d entries after WriteFile, want only the file", len(entries))
	}

	// A failing write leaves the old file and no temporary file.
	bad := NewWriter()
	if err := bad.AddTensor("x", quant.F32, []int64{4}, func(out io.Writer) error {
		_, err := out.Write(make([]byte, 8))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := bad.WriteFile(path); err == nil || !strings.Contains(err.Error(), `tensor "x": fill wrote 8 of its 16 bytes`) {
		t.Fatalf("WriteFile with a short fill: %v", err)
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(again, got) {
		t.Error("failed WriteFile changed the existing file")
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("failed WriteFile left %d entries", len(entries))
	}
	_ = ts
}

func TestWriterFill(t *testing.T) {
	w := NewWriter()
	data := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	// fill may write in pieces.
	if err := w.AddTensor("a", quant.F32, []int64{2}, func(out io.Writer) error {
		for _, b := range data {
			if _, err := out.Write([]byte{b}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	f, err := Parse(encode(t, w))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := f.TensorData("a"); !bytes.Equal(got, data) {
		t.Errorf("data %v, want %v", got, data)
	}
}

func TestWriterErrors(t *testing.T) {
	fill := func(n int) func(io.Writer) error {
		return func(out io.Writer) error { _, err := out.Write(make([]byte, n)); return err }
	}
	errFill := errors.New("disk on fire")
	tests := []struct {
		name  string
		build func(w *Writer) error // error from Add*, or nil to get WriteTo's
		want  string
	}{
		{"empty name", func(w *Writer) error { return w.AddTensor("", quant.F32, []int64{1}, fill(4)) }, "empty tensor name"},
		{"long name", func(w *Writer) error {
			return w.AddTensor(strings.Repeat("n", 64), quant.F32, []int64{1}, fill(4))
		}, "64 bytes long"},
		{"duplicate", func(w *Writer) error {
			_ = w.AddTensor("a", quant.F32, []int64{1}, fill(4))
			return w.AddTensor("a", quant.F32, []int64{1}, fill(4))
		}, `duplicate tensor name "a"`},
		{"no dims", func(w *Writer) error { return w.AddTensor("a", quant.F32, nil, fill(4)) }, "0 dimensions"},
		{"five dims", func(w *Writer) error { return w.AddTensor("a", quant.F32, []int64{1, 1, 1, 1, 1}, fill(4)) }, "5 dimensions"},
		{"negative dim", func(w *Writer) error { return w.AddTensor("a", quant.F32, []int64{1, -2}, fill(4)) }, "dimension 1 is negative"},
		{"unknown type", func(w *Writer) error { return w.AddTensor("a", quant.Type(99), []int64{1}, fill(4)) }, "unknown type 99"},
		{"block size", func(w *Writer) error { return w.AddTensor("a", quant.Q4_0, []int64{31}, fill(18)) }, "row length 31 is not a multiple of the q4_0 block size 32"},
		{"elements overflow", func(w *Writer) error {
			return w.AddTensor("a", quant.F32, []int64{1 << 32, 1 << 32}, fill(4))
		}, "more than 2^63-1 elements"},
		{"bytes overflow", func(w *Writer) error {
			return w.AddTensor("a", quant.F32, []int64{1 << 31, 1 << 31}, fill(4))
		}, "overflow"},
		{"nil fill", func(w *Writer) error { return w.AddTensor("a", quant.F32, []int64{1}, nil) }, "nil fill"},
		{"bytes size", func(w *Writer) error { return w.AddTensorBytes("a", quant.F32, []int64{2}, make([]byte, 7)) }, "takes 8 bytes, got 7"},
		{"short fill", func(w *Writer) error { return w.AddTensor("a", quant.F32, []int64{2}, fill(7)) }, "fill wrote 7 of its 8 bytes"},
		{"long fill", func(w *Writer) error { return w.AddTensor("a", quant.F32, []int64{2}, fill(9)) }, "fill wrote more than the tensor's size"},
		{"fill error", func(w *Writer) error {
			return w.AddTensor("a", quant.F32, []int64{2}, func(io.Writer) error { return errFill })
		}, `tensor "a": disk on fire`},
		{"version 1", func(w *Writer) error { w.SetVersion(1); return nil }, "cannot write GGUF version 1"},
		{"empty key", func(w *Writer) error { w.Set("", Uint8(1)); return nil }, "empty metadata key"},
		{"alignment type", func(w *Writer) error { w.Set(KeyAlignment, Uint64(64)); return nil }, "must be a uint32, not uint64"},
		{"alignment zero", func(w *Writer) error { w.Set(KeyAlignment, Uint32(0)); return nil }, "0 is not a power of two"},
		{"alignment 48", func(w *Writer) error { w.Set(KeyAlignment, Uint32(48)); return nil }, "48 is not a power of two"},
		{"value mismatch", func(w *Writer) error { w.Set("k", Value{TypeUint32, 5}); return nil }, `key "k": value of type uint32 holds a int`},
		{"unknown value type", func(w *Writer) error { w.Set("k", Value{ValueType(13), uint8(1)}); return nil }, "unknown value type 13"},
		{"array mismatch", func(w *Writer) error {
			w.Set("k", ArrayOf(Array{TypeInt32, []uint32{1}}))
			return nil
		}, "array of int32 holds a []uint32"},
		{"array elem unknown", func(w *Writer) error {
			w.Set("k", ArrayOf(Array{ValueType(20), []uint32{1}}))
			return nil
		}, "unknown array element type 20"},
		{"too deep", func(w *Writer) error {
			a := Array{TypeInt32, []int32{1}}
			for range MaxArrayDepth {
				a = Array{TypeArray, []Array{a}}
			}
			w.Set("k", ArrayOf(a))
			return nil
		}, "nested more than 8 deep"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := NewWriter()
			err := tt.build(w)
			if err == nil {
				_, err = w.WriteTo(io.Discard)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if tt.name == "fill error" && !errors.Is(err, errFill) {
				t.Errorf("error %v does not wrap the fill's error", err)
			}
		})
	}
}

// TestWriterDepthLimit checks that the deepest nesting the writer accepts
// is also accepted by Parse.
func TestWriterDepthLimit(t *testing.T) {
	a := Array{TypeInt32, []int32{1}}
	for range MaxArrayDepth - 1 {
		a = Array{TypeArray, []Array{a}}
	}
	w := NewWriter()
	w.Set("k", ArrayOf(a))
	f, err := Parse(encode(t, w))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := f.Get("k"); !reflect.DeepEqual(got, ArrayOf(a)) {
		t.Errorf("got %v, want %v", got, ArrayOf(a))
	}
}

func TestMetadataOps(t *testing.T) {
	var m Metadata
	m.Set("a", Uint8(1))
	m.Set("b", Uint8(2))
	m.Set("c", Uint8(3))
	m.Set("b", String("two")) // replaced in place
	m.Delete("a")
	m.Delete("missing")
	m.Set("d", Bool(true))
	want := []KV{{"b", String("two")}, {"c", Uint8(3)}, {"d", Bool(true)}}
	if got := m.KVs(); !reflect.DeepEqual(got, want) {
		t.Fatalf("KVs = %v, want %v", got, want)
	}
	for i, kv := range want {
		if v, ok := m.Get(kv.Key); !ok || !reflect.DeepEqual(v, kv.Value) {
			t.Errorf("Get(%q) = %v, %v; want %v (entry %d)", kv.Key, v, ok, kv.Value, i)
		}
	}
	if _, ok := m.Get("a"); ok {
		t.Error("deleted key still present")
	}
	if m.Len() != 3 {
		t.Errorf("Len = %d", m.Len())
	}
	// KVs returns a copy.
	m.KVs()[0].Key = "changed"
	if m.KVs()[0].Key != "b" {
		t.Error("KVs shares its slice")
	}
}

func TestAccessors(t *testing.T) {
	var m Metadata
	m.Set(KeyArchitecture, String("llama"))
	m.Set("llama.block_count", Uint32(32))
	m.Set("llama.context_length", Uint64(8192))
	m.Set("llama.rope.freq_base", Float32(500000))
	m.Set("llama.attention.layer_norm_rms_epsilon", Float64(1e-5))
	m.Set("s", String("x"))
	m.Set("b", Bool(true))
	m.Set("u8", Uint8(7))
	m.Set("i8neg", Int8(-1))
	m.Set("i16", Int16(300))
	m.Set("i32", Int32(-5))
	m.Set("u64big", Uint64(math.MaxUint64))
	m.Set("u64_4g", Uint64(1<<32))
	m.Set("i64", Int64(math.MinInt64))
	m.Set("f64big", Float64(1e300))
	m.Set("tokens", Strings([]string{"a", "b"}))
	m.Set("scores", Float32s([]float32{0.5}))
	m.Set("types", Int32s([]int32{1, 2}))
	m.Set("nested", ArrayOf(Array{TypeArray, []Array{{TypeInt32, []int32{1}}}}))

	type result struct {
		v   any
		err error
	}
	r := func(v any, err error) result { return result{v, err} }
	tests := []struct {
		name    string
		got     result
		want    any
		wantErr error  // ErrKeyNotFound or ErrWrongType
		msg     string // the error's text
	}{
		{"String", r(m.String("s")), "x", nil, ""},
		{"Bool", r(m.Bool("b")), true, nil, ""},
		{"Uint32 from uint32", r(m.Uint32("llama.block_count")), uint32(32), nil, ""},
		{"Uint32 from uint8", r(m.Uint32("u8")), uint32(7), nil, ""},
		{"Uint32 from uint64", r(m.Uint32("llama.context_length")), uint32(8192), nil, ""},
		{"Uint32 from int16", r(m.Uint32("i16")), uint32(300), nil, ""},
		{"Uint32 negative", r(m.Uint32("i8neg")), uint32(0), ErrWrongType, `gguf: key "i8neg": int8 value -1 does not fit in uint32`},
		{"Uint32 too big", r(m.Uint32("u64_4g")), uint32(0), ErrWrongType, `gguf: key "u64_4g": uint64 value 4294967296 does not fit in uint32`},
		{"Uint32 from float", r(m.Uint32("llama.rope.freq_base")), uint32(0), ErrWrongType, `gguf: key "llama.rope.freq_base" is float32, want uint32`},
		{"Uint64 max", r(m.Uint64("u64big")), uint64(math.MaxUint64), nil, ""},
		{"Uint64 negative", r(m.Uint64("i32")), uint64(0), ErrWrongType, "does not fit in uint64"},
		{"Int64 min", r(m.Int64("i64")), int64(math.MinInt64), nil, ""},
		{"Int64 from int32", r(m.Int64("i32")), int64(-5), nil, ""},
		{"Int64 too big", r(m.Int64("u64big")), int64(0), ErrWrongType, "does not fit in int64"},
		{"Int32 from uint8", r(m.Int32("u8")), int32(7), nil, ""},
		{"Int32 too small", r(m.Int32("i64")), int32(0), ErrWrongType, "does not fit in int32"},
		{"Float32", r(m.Float32("llama.rope.freq_base")), float32(500000), nil, ""},
		{"Float32 from float64", r(m.Float32("llama.attention.layer_norm_rms_epsilon")), float32(1e-5), nil, ""},
		{"Float32 out of range", r(m.Float32("f64big")), float32(0), ErrWrongType, "does not fit in float32"},
		{"Float32 from int", r(m.Float32("u8")), float32(0), ErrWrongType, `gguf: key "u8" is uint8, want float32`},
		{"Float64 from float32", r(m.Float64("llama.rope.freq_base")), float64(500000), nil, ""},
		{"Strings", r(m.Strings("tokens")), []string{"a", "b"}, nil, ""},
		{"Float32s", r(m.Float32s("scores")), []float32{0.5}, nil, ""},
		{"Int32s", r(m.Int32s("types")), []int32{1, 2}, nil, ""},
		{"Strings of int32", r(m.Strings("types")), []string(nil), ErrWrongType, `gguf: key "types" is array of int32, want array of string`},
		{"Int32s of string", r(m.Int32s("s")), []int32(nil), ErrWrongType, `gguf: key "s" is string, want array of int32`},
		{"Float32s of nested", r(m.Float32s("nested")), []float32(nil), ErrWrongType, "is array of array, want array of float32"},
		{"String of bool", r(m.String("b")), "", ErrWrongType, `gguf: key "b" is bool, want string`},
		{"Bool of string", r(m.Bool("s")), false, ErrWrongType, `gguf: key "s" is string, want bool`},
		{"String missing", r(m.String("nope")), "", ErrKeyNotFound, `gguf: key "nope" not found`},
		{"Uint32 missing", r(m.Uint32("nope")), uint32(0), ErrKeyNotFound, `gguf: key "nope" not found`},
		{"Strings missing", r(m.Strings("nope")), []string(nil), ErrKeyNotFound, `gguf: key "nope" not found`},
		{"ArchUint32", r(m.ArchUint32("block_count")), uint32(32), nil, ""},
		{"ArchFloat32", r(m.ArchFloat32("rope.freq_base")), float32(500000), nil, ""},
		{"ArchFloat32 from f64", r(m.ArchFloat32("attention.layer_norm_rms_epsilon")), float32(1e-5), nil, ""},
		{"ArchUint32 missing", r(m.ArchUint32("expert_count")), uint32(0), ErrKeyNotFound, `gguf: key "llama.expert_count" not found`},
		{"ArchUint32 wrong type", r(m.ArchUint32("rope.freq_base")), uint32(0), ErrWrongType, `gguf: key "llama.rope.freq_base" is float32, want uint32`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got.v, tt.want) {
				t.Errorf("value %#v, want %#v", tt.got.v, tt.want)
			}
			if tt.wantErr == nil {
				if tt.got.err != nil {
					t.Errorf("unexpected error %v", tt.got.err)
				}
				return
			}
			if !errors.Is(tt.got.err, tt.wantErr) {
				t.Errorf("error %v does not wrap %v", tt.got.err, tt.wantErr)
			}
			if tt.got.err != nil && !strings.Contains(tt.got.err.Error(), tt.msg) {
				t.Errorf("error %q does not contain %q", tt.got.err, tt.msg)
			}
		})
	}

	if got := m.Architecture(); got != "llama" {
		t.Errorf("Architecture = %q", got)
	}
	if got := m.ArchKey("block_count"); got != "llama.block_count" {
		t.Errorf("ArchKey = %q", got)
	}

	var empty Metadata
	if got := empty.Architecture(); got != "" {
		t.Errorf("Architecture of empty = %q", got)
	}
	_, err := empty.ArchUint32("block_count")
	if !errors.Is(err, ErrKeyNotFound) || !strings.Contains(err.Error(), `"general.architecture" not found`) {
		t.Errorf("ArchUint32 without an architecture: %v", err)
	}
}

func TestValueString(t *testing.T) {
	tests := []struct {
		v    Value
		want string
	}{
		{Uint32(7), "7"},
		{Float32(0.5), "0.5"},
		{Bool(true), "true"},
		{String("a\"b"), `"a\"b"`},
		{Strings([]string{"x", "y"}), `["x", "y"]`},
		{Int32s([]int32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}), "[1, 2, 3, 4, 5, 6, 7, 8, ... (10 elements)]"},
		{ArrayOf(Array{TypeArray, []Array{{TypeInt8, []int8{-1}}, {TypeString, []string{}}}}), "[[-1], []]"},
		{Value{}, "<nil>"},
	}
	for _, tt := range tests {
		if got := tt.v.String(); got != tt.want {
			t.Errorf("%#v.String() = %s, want %s", tt.v, got, tt.want)
		}
	}
	for typ, want := range map[ValueType]string{TypeUint8: "uint8", TypeString: "string", TypeArray: "array", TypeFloat64: "float64", 13: "ValueType(13)"} {
		if got := typ.String(); got != want {
			t.Errorf("ValueType(%d).String() = %q, want %q", uint32(typ), got, want)
		}
	}
	if n := (Array{TypeString, []string{"a", "b"}}).Len(); n != 2 {
		t.Errorf("Len = %d", n)
	}
	if n := (Array{}).Len(); n != 0 {
		t.Errorf("Len of empty = %d", n)
	}
}

func TestTensorInfoElements(t *testing.T) {
	for _, tt := range []struct {
		shape []int64
		want  int64
	}{{[]int64{5}, 5}, {[]int64{64, 3}, 192}, {[]int64{4, 0, 2}, 0}, {[]int64{2, 3, 4, 5}, 120}} {
		ti := TensorInfo{Shape: tt.shape}
		if got := ti.Elements(); got != tt.want {
			t.Errorf("Elements(%v) = %d, want %d", tt.shape, got, tt.want)
		}
	}
}

func TestTensorDataMissing(t *testing.T) {
	f, err := Parse(smallFile(t))
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.TensorData("no.such.tensor")
	if !errors.Is(err, ErrTensorNotFound) || !strings.Contains(err.Error(), `"no.such.tensor"`) {
		t.Errorf("TensorData of a missing tensor: %v", err)
	}
	if _, ok := f.Tensor("no.such.tensor"); ok {
		t.Error("Tensor found a missing tensor")
	}
}
