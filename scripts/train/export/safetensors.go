package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"

	"github.com/ocelot-llm/ocelot/quant"
)

// A safetensors file (https://huggingface.co/docs/safetensors) is an
// 8-byte little-endian header length N, N bytes of JSON header, then the
// tensors' bytes. The header maps each tensor's name to its dtype, shape
// (row-major, outermost first) and data_offsets [begin, end) into the
// bytes after the header; the optional "__metadata__" entry maps strings
// to strings. The tensors must cover the data without gaps or overlaps.

// maxHeader is the largest header accepted (the format's own limit).
const maxHeader = 100 << 20

// stTensor is one tensor of a safetensors file.
type stTensor struct {
	Name  string
	DType string  // "F32", "F16" or "BF16"
	Shape []int64 // row-major, outermost first (PyTorch's order)
	Data  []byte  // little-endian elements
}

// safetensors is a parsed safetensors file.
type safetensors struct {
	Metadata map[string]string
	Tensors  map[string]*stTensor
}

// dtypeSize is the element size of the dtypes this reader converts to
// float32.
var dtypeSize = map[string]int64{"F32": 4, "F16": 2, "BF16": 2}

// readSafetensors reads and checks the safetensors file at path.
func readSafetensors(path string) (*safetensors, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	st, err := parseSafetensors(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return st, nil
}

// parseSafetensors parses a whole safetensors file held in data; the
// tensors' Data alias it.
func parseSafetensors(data []byte) (*safetensors, error) {
	if len(data) < 8 {
		return nil, fmt.Errorf("safetensors: file of %d bytes is shorter than its 8-byte header length", len(data))
	}
	n := binary.LittleEndian.Uint64(data)
	if n > maxHeader || n > uint64(len(data)-8) {
		return nil, fmt.Errorf("safetensors: header length %d exceeds the file (%d bytes) or the %d-byte limit", n, len(data), maxHeader)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data[8:8+n], &raw); err != nil {
		return nil, fmt.Errorf("safetensors: header: %w", err)
	}
	body := data[8+n:]
	st := &safetensors{Metadata: map[string]string{}, Tensors: map[string]*stTensor{}}
	type span struct {
		begin, end int64
		name       string
	}
	var spans []span
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &st.Metadata); err != nil {
				return nil, fmt.Errorf("safetensors: __metadata__ must map strings to strings: %w", err)
			}
			continue
		}
		var h struct {
			DType   string  `json:"dtype"`
			Shape   []int64 `json:"shape"`
			Offsets []int64 `json:"data_offsets"`
		}
		if err := json.Unmarshal(msg, &h); err != nil {
			return nil, fmt.Errorf("safetensors: tensor %q: %w", name, err)
		}
		size, ok := dtypeSize[h.DType]
		if !ok {
			return nil, fmt.Errorf("safetensors: tensor %q has dtype %q; this reader takes F32, F16 and BF16", name, h.DType)
		}
		elems := int64(1)
		for _, d := range h.Shape {
			if d < 0 || (d > 0 && elems > math.MaxInt32/d) {
				return nil, fmt.Errorf("safetensors: tensor %q has shape %v: a negative or too large dimension", name, h.Shape)
			}
			elems *= d
		}
		if len(h.Offsets) != 2 {
			return nil, fmt.Errorf("safetensors: tensor %q has data_offsets %v, want [begin, end]", name, h.Offsets)
		}
		b, e := h.Offsets[0], h.Offsets[1]
		switch {
		case b < 0 || e < b || e > int64(len(body)):
			return nil, fmt.Errorf("safetensors: tensor %q has data_offsets [%d, %d] outside the %d data bytes", name, b, e, len(body))
		case e-b != elems*size:
			return nil, fmt.Errorf("safetensors: tensor %q (%s %v) needs %d bytes, its data_offsets [%d, %d] hold %d", name, h.DType, h.Shape, elems*size, b, e, e-b)
		}
		st.Tensors[name] = &stTensor{Name: name, DType: h.DType, Shape: h.Shape, Data: body[b:e:e]}
		spans = append(spans, span{b, e, name})
	}
	sort.Slice(spans, func(i, j int) bool {
		if spans[i].begin != spans[j].begin {
			return spans[i].begin < spans[j].begin
		}
		return spans[i].name < spans[j].name
	})
	var at int64
	for _, s := range spans {
		if s.begin != at {
			return nil, fmt.Errorf("safetensors: tensor %q starts at data byte %d, but the previous tensor ends at %d (a gap or an overlap)", s.name, s.begin, at)
		}
		at = s.end
	}
	if at != int64(len(body)) {
		return nil, fmt.Errorf("safetensors: the tensors cover %d of the %d data bytes", at, len(body))
	}
	return st, nil
}

// Floats returns the tensor's elements as float32 (exactly: f16 and bf16
// convert without rounding).
func (t *stTensor) Floats() []float32 {
	size := dtypeSize[t.DType]
	out := make([]float32, int64(len(t.Data))/size)
	for i := range out {
		switch t.DType {
		case "F32":
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
		case "F16":
			out[i] = quant.FP16ToFloat32(binary.LittleEndian.Uint16(t.Data[2*i:]))
		case "BF16":
			out[i] = quant.BF16ToFloat32(binary.LittleEndian.Uint16(t.Data[2*i:]))
		}
	}
	return out
}
