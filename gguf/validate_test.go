package gguf

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocelot-llm/ocelot/quant"
)

// TestTruncated cuts a valid file at every byte and checks that Parse
// fails cleanly up to the end of the last tensor's data, with an
// out-of-bounds error once the cut is past the tensor infos, and succeeds
// beyond it (only padding is lost).
func TestTruncated(t *testing.T) {
	data := smallFile(t)
	full, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	var dataEnd int64
	for _, ti := range full.Tensors {
		dataEnd = max(dataEnd, full.DataOffset+ti.Offset+ti.Size)
	}
	if dataEnd >= int64(len(data)) || dataEnd <= full.DataOffset {
		t.Fatalf("sample file lacks data or trailing padding: data ends at %d of %d", dataEnd, len(data))
	}

	// The ReadAt path must agree with Parse; a tiny window makes it
	// refill for nearly every field.
	defer func(n int64) { windowSize = n }(windowSize)
	windowSize = 7

	sawOOB := 0
	for cut := range int64(len(data)) {
		f, err := Parse(data[:cut:cut])
		_, ferr := parse(&fileSource{r: bytes.NewReader(data[:cut]), size: cut}, cut)
		if fmt.Sprint(err) != fmt.Sprint(ferr) {
			t.Errorf("cut at %d: Parse gives %v, the ReadAt path %v", cut, err, ferr)
		}
		if cut >= dataEnd {
			if err != nil {
				t.Errorf("cut at %d (in trailing padding): %v", cut, err)
			}
			continue
		}
		if err == nil {
			t.Fatalf("cut at %d of %d: Parse succeeded with %d tensors", cut, len(data), len(f.Tensors))
		}
		var fe *FormatError
		if !errors.As(err, &fe) {
			t.Fatalf("cut at %d: %T %v is not a *FormatError", cut, err, err)
		}
		if fe.Offset > cut || fe.Offset < 0 {
			t.Errorf("cut at %d: error offset %d is outside the cut file: %v", cut, fe.Offset, err)
		}
		oob := strings.Contains(fe.Msg, "out of bounds")
		if cut >= full.DataOffset && !(oob && strings.HasSuffix(fe.Field, ".offset")) {
			t.Errorf("cut at %d (in the data section at %d): %v, want an out-of-bounds tensor data error", cut, full.DataOffset, err)
		}
		if oob {
			sawOOB++
		}
	}
	if sawOOB < int(dataEnd-full.DataOffset) {
		t.Errorf("only %d cuts reported data out of bounds", sawOOB)
	}
}

// TestCorrupt checks each validation with a hand-built file: the error
// must be a *FormatError naming the field, its offset and the problem.
func TestCorrupt(t *testing.T) {
	shape := func(d ...uint64) []uint64 { return d }
	tests := []struct {
		name  string
		build func(r *raw) int64 // appends the file, returns the field's offset
		field string
		msg   string
	}{
		{"empty file", func(r *raw) int64 { return 0 }, "header.magic", "unexpected end of file: need 4 bytes, 0 left"},
		{"bad magic", func(r *raw) int64 { r.bytes("GGML").u32(3).u64(0).u64(0); return 0 }, "header.magic", `got "GGML", want "GGUF": not a GGUF file`},
		{"version 1", func(r *raw) int64 { r.header(1, 0, 0); return 4 }, "header.version", "GGUF version 1 is not supported"},
		{"version 0", func(r *raw) int64 { r.header(0, 0, 0); return 4 }, "header.version", "version 0 is invalid"},
		{"version 4", func(r *raw) int64 { r.header(4, 0, 0); return 4 }, "header.version", "GGUF version 4 is not supported"},
		{"big endian", func(r *raw) int64 { r.header(3<<24, 0, 0); return 4 }, "header.version", "big-endian"},
		{"short header", func(r *raw) int64 { r.bytes("GGUF").u32(3).u64(0).u32(0); return 16 }, "header.n_kv", "unexpected end of file"},
		{"n_tensors huge", func(r *raw) int64 { r.header(3, math.MaxUint64, 0); return 8 }, "header.n_tensors", "tensors cannot fit in a file of 24 bytes"},
		{"n_tensors too many", func(r *raw) int64 { r.header(3, 2, 0).zeros(40); return 8 }, "header.n_tensors", "2 tensors cannot fit"},
		{"n_kv huge", func(r *raw) int64 { r.header(3, 0, 1<<62); return 16 }, "header.n_kv", "key/value pairs and 0 tensors cannot fit"},
		{"n_kv too many", func(r *raw) int64 { r.header(3, 1, 2).zeros(40); return 16 }, "header.n_kv", "2 key/value pairs and 1 tensors cannot fit"},
		{"key length huge", func(r *raw) int64 { r.header(3, 0, 1).u64(math.MaxUint64).zeros(8); return 24 }, "kv[0].key", "string length 18446744073709551615 is more than the 8 bytes left"},
		{"empty key", func(r *raw) int64 { r.header(3, 0, 1).str("").u32(0).u8(0); return 24 }, "kv[0].key", "empty key"},
		{"duplicate key", func(r *raw) int64 {
			r.header(3, 0, 2).kvU32("a", 1)
			at := r.pos()
			r.kvU32("a", 2)
			return at
		}, "kv[1].key", `duplicate key "a" (also kv[0])`},
		{"unknown value type", func(r *raw) int64 { r.header(3, 0, 1).str("a").u32(13).u64(0); return 33 }, `kv[0] "a" type`, "unknown value type 13"},
		{"truncated value", func(r *raw) int64 { r.header(3, 0, 1).str("a").u32(uint32(TypeUint64)).zeros(7); return 37 }, `kv[0] "a" value`, "need 8 bytes, 7 left"},
		{"string value too long", func(r *raw) int64 {
			r.header(3, 0, 1).str("a").u32(uint32(TypeString)).u64(10).bytes("short")
			return 37
		}, `kv[0] "a" value`, "string length 10 is more than the 5 bytes left"},
		{"array too long", func(r *raw) int64 {
			r.header(3, 0, 1).str("a").u32(uint32(TypeArray)).u32(uint32(TypeUint32)).u64(1 << 60).zeros(16)
			return 41
		}, `kv[0] "a" value`, "array of 1152921504606846976 uint32 elements cannot fit in the 16 bytes left"},
		{"string array too long", func(r *raw) int64 {
			r.header(3, 0, 1).str("a").u32(uint32(TypeArray)).u32(uint32(TypeString)).u64(3).str("x").str("y")
			return 41
		}, `kv[0] "a" value`, "array of 3 string elements cannot fit in the 18 bytes left"},
		{"array element type", func(r *raw) int64 {
			r.header(3, 0, 1).str("a").u32(uint32(TypeArray)).u32(77).u64(0)
			return 37
		}, `kv[0] "a" value`, "unknown array element type 77"},
		{"array string element", func(r *raw) int64 {
			r.header(3, 0, 1).str("a").u32(uint32(TypeArray)).u32(uint32(TypeString)).u64(2).str("ok")
			at := r.pos()
			r.u64(100).zeros(4)
			return at
		}, `kv[0] "a" value[1]`, "string length 100 is more than the 4 bytes left"},
		{"nested element", func(r *raw) int64 {
			r.header(3, 0, 1).str("a").u32(uint32(TypeArray)).u32(uint32(TypeArray)).u64(2)
			r.u32(uint32(TypeInt8)).u64(1).u8(0xff)
			r.u32(uint32(TypeString)).u64(1)
			at := r.pos()
			r.u64(9).bytes("12345678")
			return at
		}, `kv[0] "a" value[1][0]`, "string length 9 is more than the 8 bytes left"},
		{"nested too deep", func(r *raw) int64 {
			r.header(3, 0, 1).str("a").u32(uint32(TypeArray))
			for range MaxArrayDepth {
				r.u32(uint32(TypeArray)).u64(1)
			}
			at := r.pos()
			r.u32(uint32(TypeInt32)).u64(0)
			return at
		}, `kv[0] "a" value[0][0][0][0][0][0][0][0]`, "arrays nested more than 8 deep"},
		{"alignment type", func(r *raw) int64 {
			r.header(3, 0, 1).str(KeyAlignment).u32(uint32(TypeUint64)).u64(32)
			return 24 + 8 + 17 + 4
		}, `kv[0] "general.alignment" value`, "alignment must be a uint32, not uint64"},
		{"alignment zero", func(r *raw) int64 { r.header(3, 0, 1).kvU32(KeyAlignment, 0); return 53 }, `kv[0] "general.alignment" value`, "alignment 0 is not a power of two"},
		{"alignment 48", func(r *raw) int64 { r.header(3, 0, 1).kvU32(KeyAlignment, 48); return 53 }, `kv[0] "general.alignment" value`, "alignment 48 is not a power of two"},
		{"tensor name empty", func(r *raw) int64 { r.header(3, 1, 0).tensor("", shape(1), quant.F32, 0); return 24 }, "tensor_info[0].name", "empty tensor name"},
		{"tensor name long", func(r *raw) int64 {
			r.header(3, 1, 0).tensor(strings.Repeat("x", 64), shape(1), quant.F32, 0)
			return 24
		}, "tensor_info[0].name", "is 64 bytes long; the limit is 63"},
		{"tensor name truncated", func(r *raw) int64 { r.header(3, 1, 0).u64(40).zeros(32); return 24 }, "tensor_info[0].name", "string length 40 is more than the 32 bytes left"},
		{"duplicate tensor", func(r *raw) int64 {
			r.header(3, 2, 0).tensor("t", shape(8), quant.F32, 0)
			at := r.pos()
			r.tensor("t", shape(8), quant.F32, 32)
			r.pad(32).zeros(64)
			return at
		}, "tensor_info[1].name", `duplicate tensor name "t" (also tensor_info[0])`},
		{"n_dims 0", func(r *raw) int64 { r.header(3, 1, 0).tensor("t", shape(), quant.F32, 0); r.zeros(8); return 33 }, "tensor_info[0].n_dims", `tensor "t" has 0 dimensions; must be 1 to 4`},
		{"n_dims 5", func(r *raw) int64 { r.header(3, 1, 0).tensor("t", shape(1, 1, 1, 1, 1), quant.F32, 0); return 33 }, "tensor_info[0].n_dims", "has 5 dimensions"},
		{"negative dim", func(r *raw) int64 {
			r.header(3, 1, 0).tensor("t", shape(1, 1<<63), quant.F32, 0)
			return 45
		}, "tensor_info[0].shape[1]", `tensor "t" dimension 1 is negative (-9223372036854775808)`},
		{"elements overflow", func(r *raw) int64 {
			r.header(3, 1, 0).tensor("t", shape(1<<31, 1<<31, 4), quant.F32, 0)
			return 37
		}, "tensor_info[0].shape", "shape [2147483648 2147483648 4] has more than 2^63-1 elements"},
		{"bytes overflow", func(r *raw) int64 {
			r.header(3, 1, 0).tensor("t", shape(1<<31, 1<<31), quant.F32, 0)
			return 37
		}, "tensor_info[0].shape", "overflow"},
		{"unknown tensor type", func(r *raw) int64 { r.header(3, 1, 0).tensor("t", shape(32), quant.Type(99), 0); return 45 }, "tensor_info[0].type", `tensor "t" has unknown type 99`},
		{"removed tensor type", func(r *raw) int64 { r.header(3, 1, 0).tensor("t", shape(32), quant.Type(4), 0); return 45 }, "tensor_info[0].type", "unknown type 4"},
		{"block size", func(r *raw) int64 { r.header(3, 1, 0).tensor("t", shape(48, 2), quant.Q4_0, 0); return 37 }, "tensor_info[0].shape[0]", `tensor "t" row length 48 is not a multiple of the q4_0 block size 32`},
		{"k-quant block size", func(r *raw) int64 { r.header(3, 1, 0).tensor("t", shape(128), quant.Q6_K, 0); return 37 }, "tensor_info[0].shape[0]", "block size 256"},
		{"offset unaligned", func(r *raw) int64 {
			at := r.header(3, 1, 0).tensor("t", shape(8), quant.F32, 16)
			r.pad(32).zeros(64)
			return at
		}, "tensor_info[0].offset", `tensor "t" offset 16 is not a multiple of the alignment 32`},
		{"offset unaligned to custom", func(r *raw) int64 {
			r.header(3, 1, 1).kvU32(KeyAlignment, 64)
			at := r.tensor("t", shape(8), quant.F32, 32)
			r.pad(64).zeros(128)
			return at
		}, "tensor_info[0].offset", "offset 32 is not a multiple of the alignment 64"},
		{"offset huge", func(r *raw) int64 {
			at := r.header(3, 1, 0).tensor("t", shape(8), quant.F32, 1<<63)
			r.pad(32).zeros(64)
			return at
		}, "tensor_info[0].offset", "offset 9223372036854775808 is too large"},
		{"offset truncated", func(r *raw) int64 { r.header(3, 1, 0).str("tensor.name").u32(1).u64(8).u32(0).u32(0); return 59 }, "tensor_info[0].offset", "unexpected end of file: need 8 bytes, 4 left"},
		{"data out of bounds", func(r *raw) int64 {
			at := r.header(3, 1, 0).tensor("t", shape(8), quant.F32, 0)
			r.pad(32).zeros(31)
			return at
		}, "tensor_info[0].offset", `tensor "t" data (32 bytes at offset 0) is out of bounds: the data section at byte 64 holds 31 bytes`},
		{"data offset out of bounds", func(r *raw) int64 {
			at := r.header(3, 1, 0).tensor("t", shape(8), quant.F32, 1<<62)
			r.pad(32).zeros(64)
			return at
		}, "tensor_info[0].offset", "out of bounds"},
		{"data missing", func(r *raw) int64 { return r.header(3, 1, 0).tensor("t", shape(8), quant.F32, 0) }, "tensor_info[0].offset", "the data section at byte 64 holds 0 bytes"},
		{"overlap", func(r *raw) int64 {
			r.header(3, 3, 0).tensor("a", shape(16), quant.F32, 0)
			r.tensor("c", shape(8), quant.F32, 128)
			at := r.tensor("b", shape(8), quant.F32, 32)
			r.pad(32).zeros(256)
			return at
		}, "tensor_info[2].offset", `tensor "b" data [32, 64) overlaps tensor "a" [0, 64)`},
		{"same offset", func(r *raw) int64 {
			r.header(3, 2, 0).tensor("a", shape(8), quant.F32, 0)
			at := r.tensor("b", shape(8), quant.F32, 0)
			r.pad(32).zeros(64)
			return at
		}, "tensor_info[1].offset", "overlaps"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &raw{}
			wantOff := tt.build(r)
			f, err := Parse(r.b)
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", f)
			}
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("%T %v is not a *FormatError", err, err)
			}
			if fe.Field != tt.field || fe.Offset != wantOff || !strings.Contains(fe.Msg, tt.msg) {
				t.Errorf("got  %v\nwant gguf: %s at byte %d: …%s…", err, tt.field, wantOff, tt.msg)
			}
			want := "gguf: " + fe.Field + " at byte "
			if !strings.HasPrefix(err.Error(), want) {
				t.Errorf("Error() = %q, want prefix %q", err, want)
			}
		})
	}
}

// TestLenient checks files that are unusual but valid.
func TestLenient(t *testing.T) {
	shape := func(d ...uint64) []uint64 { return d }
	tests := []struct {
		name  string
		build func(r *raw)
		check func(t *testing.T, f *File)
	}{
		{"out of order tensors with gaps", func(r *raw) {
			r.header(3, 2, 0).tensor("late", shape(8), quant.F32, 96)
			r.tensor("early", shape(8), quant.F32, 0)
			r.pad(32).zeros(128)
		}, func(t *testing.T, f *File) {
			if f.Tensors[0].Offset != 96 || f.Tensors[1].Offset != 0 {
				t.Errorf("tensors %+v", f.Tensors)
			}
		}},
		{"zero-size tensors anywhere", func(r *raw) {
			r.header(3, 3, 0).tensor("a", shape(8), quant.F32, 0)
			r.tensor("empty", shape(0, 5), quant.Q4_0, 0)
			r.tensor("far", shape(4, 0), quant.F32, 1<<40)
			r.pad(32).zeros(32)
		}, func(t *testing.T, f *File) {
			d, err := f.TensorData("empty")
			if err != nil || len(d) != 0 || f.Tensors[1].Elements() != 0 || f.Tensors[1].Size != 0 {
				t.Errorf("empty tensor: %+v %v %v", f.Tensors[1], d, err)
			}
		}},
		{"trailing bytes", func(r *raw) {
			r.header(3, 1, 0).tensor("a", shape(8), quant.F32, 0)
			r.pad(32).zeros(32).bytes("trailing garbage")
		}, nil},
		{"no padding after metadata without tensors", func(r *raw) {
			r.header(3, 0, 1).kvU32("a", 1)
		}, func(t *testing.T, f *File) {
			if f.DataOffset != 64 || f.Size != 41 {
				t.Errorf("data offset %d size %d", f.DataOffset, f.Size)
			}
		}},
		{"bool byte 2", func(r *raw) {
			r.header(2, 0, 1).str("b").u32(uint32(TypeBool)).u8(2)
		}, func(t *testing.T, f *File) {
			if b, err := f.Bool("b"); !b || err != nil {
				t.Errorf("bool = %v, %v", b, err)
			}
		}},
		{"alignment 1", func(r *raw) {
			r.header(3, 1, 1).kvU32(KeyAlignment, 1)
			r.tensor("a", shape(2), quant.F16, 0)
			r.bytes("abcd")
		}, func(t *testing.T, f *File) {
			if d, _ := f.TensorData("a"); string(d) != "abcd" {
				t.Errorf("data %q", d)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &raw{}
			tt.build(r)
			f, err := Parse(r.b)
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				tt.check(t, f)
			}
		})
	}
}

// TestOpenErrors checks that Open names the file and keeps the
// *FormatError reachable, in both reading modes.
func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.gguf")
	v1 := filepath.Join(dir, "v1.gguf")
	cut := filepath.Join(dir, "cut.gguf")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(v1, (&raw{}).header(1, 0, 0).b, 0o644); err != nil {
		t.Fatal(err)
	}
	small := smallFile(t)
	if err := os.WriteFile(cut, small[:len(small)-40], 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path, field, msg string
	}{
		{empty, "header.magic", "unexpected end of file"},
		{v1, "header.version", "version 1 is not supported"},
		{cut, "tensor_info[2].offset", "out of bounds"},
	}
	for _, useMap := range []bool{true, false} {
		for _, tt := range tests {
			_, err := open(tt.path, useMap)
			var fe *FormatError
			if !errors.As(err, &fe) || fe.Field != tt.field || !strings.Contains(fe.Msg, tt.msg) {
				t.Errorf("open(%s, map=%v): %v, want %s: …%s…", tt.path, useMap, err, tt.field, tt.msg)
				continue
			}
			if !strings.HasPrefix(err.Error(), tt.path+": gguf: "+tt.field) {
				t.Errorf("error %q does not start with the path", err)
			}
		}
	}
	if _, err := Open(filepath.Join(dir, "missing.gguf")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open of a missing file: %v", err)
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("Open of a folder: %v", err)
	}
}
