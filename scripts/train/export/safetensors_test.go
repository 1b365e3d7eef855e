package main

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ocelot-llm/ocelot/quant"
)

// writeSafetensors writes float32 tensors (in the order of names) and
// metadata as a safetensors file, the layout train.py writes.
func writeSafetensors(path string, meta map[string]string, names []string, shapes map[string][]int64, values map[string][]float32) error {
	header := map[string]any{}
	if len(meta) > 0 {
		header["__metadata__"] = meta
	}
	var body []byte
	for _, name := range names {
		b := int64(len(body))
		for _, x := range values[name] {
			body = binary.LittleEndian.AppendUint32(body, math.Float32bits(x))
		}
		header[name] = map[string]any{"dtype": "F32", "shape": shapes[name], "data_offsets": []int64{b, int64(len(body))}}
	}
	js, err := json.Marshal(header)
	if err != nil {
		return err
	}
	for len(js)%8 != 0 {
		js = append(js, ' ')
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(js)))
	out = append(append(out, js...), body...)
	return os.WriteFile(path, out, 0o644)
}

// rawSafetensors is a file of the given header text and data bytes.
func rawSafetensors(header string, data []byte) []byte {
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(out, header...), data...)
}

func TestSafetensorsRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.safetensors")
	vals := map[string][]float32{"a": {1, -2.5, 3, float32(math.Pi)}, "b": {0.125}}
	shapes := map[string][]int64{"a": {2, 2}, "b": {1}}
	if err := writeSafetensors(path, map[string]string{"n_embd": "2"}, []string{"b", "a"}, shapes, vals); err != nil {
		t.Fatal(err)
	}
	st, err := readSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Metadata["n_embd"] != "2" || len(st.Tensors) != 2 {
		t.Fatalf("metadata %v, %d tensors; want n_embd 2 and 2 tensors", st.Metadata, len(st.Tensors))
	}
	for name, want := range vals {
		tn := st.Tensors[name]
		if !slices.Equal(tn.Shape, shapes[name]) || tn.DType != "F32" {
			t.Errorf("%s: %s %v, want F32 %v", name, tn.DType, tn.Shape, shapes[name])
		}
		got := tn.Floats()
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s[%d] = %v, want %v", name, i, got[i], want[i])
			}
		}
	}
}

func TestSafetensorsHalfTypes(t *testing.T) {
	want := []float32{1, -0.5, 65504, 0}
	var f16, bf16 []byte
	for _, v := range want {
		f16 = binary.LittleEndian.AppendUint16(f16, quant.Float32ToFP16(v))
		bf16 = binary.LittleEndian.AppendUint16(bf16, quant.Float32ToBF16(v))
	}
	header := `{"h":{"dtype":"F16","shape":[4],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[2,2],"data_offsets":[8,16]}}`
	st, err := parseSafetensors(rawSafetensors(header, append(f16, bf16...)))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"h", "b"} {
		got := st.Tensors[name].Floats()
		for i, w := range want {
			if name == "b" && w == 65504 {
				w = 65536 // bf16 rounds 65504 to nearest even
			}
			if got[i] != w {
				t.Errorf("%s[%d] = %v, want %v", name, i, got[i], w)
			}
		}
	}
}

func TestSafetensorsErrors(t *testing.T) {
	four := make([]byte, 16)
	cases := []struct {
		name string
		file []byte
		want string
	}{
		{"short", []byte{1, 2, 3}, "shorter than its 8-byte header length"},
		{"header past the end", binary.LittleEndian.AppendUint64(nil, 1000), "exceeds the file"},
		{"bad json", rawSafetensors(`{"a":`, nil), "header"},
		{"bad metadata", rawSafetensors(`{"__metadata__":{"n":1}}`, nil), "__metadata__ must map strings to strings"},
		{"dtype", rawSafetensors(`{"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}`, make([]byte, 8)), `dtype "I64"`},
		{"offsets count", rawSafetensors(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}`, four), "want [begin, end]"},
		{"outside", rawSafetensors(`{"a":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}}`, four), "outside the 16 data bytes"},
		{"size", rawSafetensors(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}}`, four), "needs 12 bytes"},
		{"negative dim", rawSafetensors(`{"a":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}}`, four), "negative or too large"},
		{"gap", rawSafetensors(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}`, four), "a gap or an overlap"},
		{"overlap", rawSafetensors(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, four), "a gap or an overlap"},
		{"uncovered tail", rawSafetensors(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, four), "cover 8 of the 16 data bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseSafetensors(c.file)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}
