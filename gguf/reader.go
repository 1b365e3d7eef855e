package gguf

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/ocelot-llm/ocelot/quant"
)

// Format limits.
const (
	// DefaultAlignment is the alignment of tensor data when
	// general.alignment is not set.
	DefaultAlignment = 32
	// MaxTensorNameLen is the longest tensor name in bytes that ggml
	// accepts (GGML_MAX_NAME - 1).
	MaxTensorNameLen = 63
	// MaxDims is the most dimensions a tensor can have.
	MaxDims = 4
	// MaxArrayDepth is how deeply arrays may nest in a metadata value (an
	// array of arrays of scalars has depth 2).
	MaxArrayDepth = 8
)

const (
	magic      = "GGUF"
	headerSize = 4 + 4 + 8 + 8
	// minKVSize is the fewest bytes a key/value pair takes: an empty key's
	// length, the type and a one-byte value.
	minKVSize = 8 + 4 + 1
	// minTensorInfoSize is the fewest bytes a tensor info takes: an empty
	// name's length, n_dims, one dimension, the type and the offset.
	minTensorInfoSize = 8 + 4 + 8 + 4 + 8
)

// FormatError is a damaged or unsupported GGUF file: what is wrong, in
// which field, at which byte offset of the file.
type FormatError struct {
	Field  string // the field, e.g. "header.n_tensors", `kv[3] "general.name" value`, "tensor_info[2].offset"
	Offset int64  // the byte offset of the field in the file
	Msg    string // what is wrong with it
}

func (e *FormatError) Error() string {
	return "gguf: " + e.Field + " at byte " + strconv.FormatInt(e.Offset, 10) + ": " + e.Msg
}

// ErrTensorNotFound is wrapped by the error TensorData returns for a name
// the file does not hold.
var ErrTensorNotFound = errors.New("gguf: tensor not found")

// TensorInfo describes one tensor of a file.
type TensorInfo struct {
	Name   string
	Type   quant.Type
	Shape  []int64 // ggml order: Shape[0] is the row length (ne0); 1 to 4 dims
	Offset int64   // from the start of the data section
	Size   int64   // bytes
}

// Elements returns the number of elements: the product of the shape.
func (t *TensorInfo) Elements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// File is a parsed GGUF file: its metadata, its tensor infos and access to
// the tensor data. The metadata and infos are copies and stay valid after
// Close; tensor data does not.
type File struct {
	Metadata

	Version    uint32
	Tensors    []TensorInfo
	Alignment  int64 // general.alignment or DefaultAlignment
	DataOffset int64 // absolute offset of the tensor data section
	Size       int64 // file size

	tensorIndex map[string]int
	data        []byte      // the whole file, in memory or mapped; nil in ReadAt mode
	mapped      bool        // data is a memory map to unmap on Close
	r           io.ReaderAt // ReadAt mode: the file
	closer      io.Closer   // ReadAt mode: closes the file
	closed      bool
	mu          sync.Mutex // orders Release and Close
}

// Parse parses a GGUF file held in memory. The File's tensor data are
// slices of data, which must not be modified while they are in use.
func Parse(data []byte) (*File, error) {
	f, err := parse(memSource(data), int64(len(data)))
	if err != nil {
		return nil, err
	}
	f.data = data
	return f, nil
}

// Open opens and parses the GGUF file at path. Where the platform allows,
// the file is memory-mapped read-only and TensorData returns slices of the
// map; elsewhere (and where mapping fails) tensor data is read on demand.
// A format error is returned wrapped with the path, and unwraps to a
// *FormatError.
func Open(path string) (*File, error) { return open(path, true) }

func open(path string, useMap bool) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, err
	}
	if st.IsDir() {
		fh.Close()
		return nil, fmt.Errorf("gguf: %s is a directory", path)
	}
	size := st.Size()
	if useMap {
		if data, err := mmap(fh, size); err == nil {
			fh.Close()
			f, err := parse(memSource(data), size)
			if err != nil {
				munmap(data)
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			f.data, f.mapped = data, true
			return f, nil
		}
		// Mapping is impossible (an empty file, a file larger than the
		// address space, a file system without mmap): read instead.
	}
	f, err := parse(&fileSource{r: fh, size: size}, size)
	if err != nil {
		fh.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f.r, f.closer = fh, fh
	return f, nil
}

// Close releases the memory map or the open file. Tensor data slices
// returned earlier by a mapped File must not be used after Close. Closing
// twice is harmless.
func (f *File) Close() error {
	if f.closed {
		return nil
	}
	var err error
	// Under f.mu, so that no Release is at work on the map.
	f.mu.Lock()
	f.closed = true
	if f.mapped {
		err = munmap(f.data)
	}
	f.mu.Unlock()
	if f.closer != nil {
		if cerr := f.closer.Close(); err == nil {
			err = cerr
		}
	}
	f.data, f.r, f.closer = nil, nil, nil
	return err
}

// Tensor returns the info of the named tensor.
func (f *File) Tensor(name string) (*TensorInfo, bool) {
	i, ok := f.tensorIndex[name]
	if !ok {
		return nil, false
	}
	return &f.Tensors[i], true
}

// TensorData returns the bytes of the named tensor. For a mapped or parsed
// file this is a read-only slice of the file, without copying, valid until
// Close; otherwise the bytes are read from the file into a new slice.
func (f *File) TensorData(name string) ([]byte, error) {
	t, ok := f.Tensor(name)
	if !ok {
		return nil, &keyError{fmt.Sprintf("gguf: tensor %q not found", name), ErrTensorNotFound}
	}
	if f.closed {
		return nil, fmt.Errorf("gguf: tensor %q: file is closed", name)
	}
	if t.Size == 0 {
		return []byte{}, nil
	}
	start := f.DataOffset + t.Offset
	if f.data != nil {
		return f.data[start : start+t.Size : start+t.Size], nil
	}
	if t.Size > math.MaxInt {
		return nil, fmt.Errorf("gguf: tensor %q: %d bytes do not fit in memory", name, t.Size)
	}
	buf := make([]byte, t.Size)
	if _, err := f.r.ReadAt(buf, start); err != nil {
		return nil, fmt.Errorf("gguf: tensor %q: reading %d bytes at byte %d: %w", name, t.Size, start, err)
	}
	return buf, nil
}

// source gives the parser the file's bytes.
type source interface {
	// at returns the n bytes at off; off+n is within the file. The slice
	// is valid until the next call.
	at(off, n int64) ([]byte, error)
}

type memSource []byte

func (m memSource) at(off, n int64) ([]byte, error) { return m[off : off+n : off+n], nil }

// fileSource reads through a window of the file.
type fileSource struct {
	r      io.ReaderAt
	size   int64
	buf    []byte
	bufOff int64
}

// windowSize is how much fileSource reads at once (a variable for tests).
var windowSize int64 = 1 << 20

func (s *fileSource) at(off, n int64) ([]byte, error) {
	if off >= s.bufOff && off+n <= s.bufOff+int64(len(s.buf)) {
		i := off - s.bufOff
		return s.buf[i : i+n], nil
	}
	want := min(max(n, windowSize), s.size-off)
	if want > math.MaxInt {
		return nil, fmt.Errorf("%d bytes do not fit in memory", n)
	}
	if int64(cap(s.buf)) < want {
		s.buf = make([]byte, want)
	}
	s.buf = s.buf[:want]
	k, err := s.r.ReadAt(s.buf, off)
	if int64(k) < want {
		s.buf = s.buf[:0]
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	s.bufOff = off
	return s.buf[:n], nil
}

// field names a field of the file lazily, so that naming costs nothing
// until an error needs it.
type field struct {
	kind int // fieldHeader, fieldKV or fieldTensor
	idx  int
	key  string
	part string
	path []int // element indexes within an array value
}

const (
	fieldHeader = iota
	fieldKV
	fieldTensor
)

func (f field) String() string {
	var b strings.Builder
	switch f.kind {
	case fieldHeader:
		b.WriteString("header." + f.part)
	case fieldKV:
		if f.part == "key" {
			fmt.Fprintf(&b, "kv[%d].key", f.idx)
		} else {
			fmt.Fprintf(&b, "kv[%d] %q %s", f.idx, f.key, f.part)
		}
	case fieldTensor:
		fmt.Fprintf(&b, "tensor_info[%d].%s", f.idx, f.part)
	}
	for _, i := range f.path {
		fmt.Fprintf(&b, "[%d]", i)
	}
	return b.String()
}

// at returns f naming element i of its array.
func (f field) at(i int) field {
	f.path = append(f.path[:len(f.path):len(f.path)], i)
	return f
}

// shortError is a read past the end of the file.
type shortError struct{ need, left int64 }

func (e *shortError) Error() string {
	return fmt.Sprintf("unexpected end of file: need %d bytes, %d left", e.need, e.left)
}

// decoder reads the file's fields in order.
type decoder struct {
	src  source
	off  int64
	size int64
}

func (d *decoder) left() int64 { return d.size - d.off }

// errorf returns a FormatError for fld at off.
func errorf(fld field, off int64, format string, args ...any) error {
	return &FormatError{Field: fld.String(), Offset: off, Msg: fmt.Sprintf(format, args...)}
}

// fail turns a read error at off into the error for fld: a FormatError
// for a short file, otherwise the I/O error with the field's name.
func fail(fld field, off int64, err error) error {
	var se *shortError
	if errors.As(err, &se) {
		return &FormatError{Field: fld.String(), Offset: off, Msg: se.Error()}
	}
	return fmt.Errorf("gguf: reading %s at byte %d: %w", fld, off, err)
}

func (d *decoder) next(n int64) ([]byte, error) {
	if n > d.left() {
		return nil, &shortError{n, d.left()}
	}
	b, err := d.src.at(d.off, n)
	if err != nil {
		return nil, err
	}
	d.off += n
	return b, nil
}

func (d *decoder) u32() (uint32, error) {
	b, err := d.next(4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (d *decoder) u64() (uint64, error) {
	b, err := d.next(8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

// strBytes reads a length-prefixed string for fld, or for its element
// elem when elem >= 0; the bytes are valid until the next read.
func (d *decoder) strBytes(fld field, elem int) ([]byte, error) {
	name := func() field {
		if elem >= 0 {
			return fld.at(elem)
		}
		return fld
	}
	off := d.off
	n, err := d.u64()
	if err != nil {
		return nil, fail(name(), off, err)
	}
	if n > uint64(d.left()) {
		return nil, errorf(name(), off, "string length %d is more than the %d bytes left in the file", n, d.left())
	}
	b, err := d.next(int64(n))
	if err != nil {
		return nil, fail(name(), off+8, err)
	}
	return b, nil
}

func (d *decoder) str(fld field) (string, error) {
	b, err := d.strBytes(fld, -1)
	return string(b), err
}

// parse reads a whole GGUF file of the given size from src.
func parse(src source, size int64) (*File, error) {
	d := &decoder{src: src, size: size}
	f := &File{Size: size, Alignment: DefaultAlignment}
	hdr := func(part string) field { return field{kind: fieldHeader, part: part} }

	b, err := d.next(4)
	if err != nil {
		return nil, fail(hdr("magic"), 0, err)
	}
	if string(b) != magic {
		return nil, errorf(hdr("magic"), 0, "got %q, want %q: not a GGUF file", b, magic)
	}

	v, err := d.u32()
	if err != nil {
		return nil, fail(hdr("version"), 4, err)
	}
	switch {
	case v == 0:
		return nil, errorf(hdr("version"), 4, "version 0 is invalid")
	case v&0xFFFF == 0:
		return nil, errorf(hdr("version"), 4, "version %#x looks byte-swapped: big-endian GGUF files are not supported", v)
	case v == 1:
		return nil, errorf(hdr("version"), 4, "GGUF version 1 is not supported (only versions 2 and 3); convert the model again with a current llama.cpp")
	case v > 3:
		return nil, errorf(hdr("version"), 4, "GGUF version %d is not supported (only versions 2 and 3)", v)
	}
	f.Version = v

	// Each tensor info and each KV takes some bytes at least, so a file of
	// this size can hold only so many: bound the counts before allocating.
	nt, err := d.u64()
	if err != nil {
		return nil, fail(hdr("n_tensors"), 8, err)
	}
	room := max(size-headerSize, 0)
	if nt > uint64(room/minTensorInfoSize) {
		return nil, errorf(hdr("n_tensors"), 8, "%d tensors cannot fit in a file of %d bytes", nt, size)
	}
	nkv, err := d.u64()
	if err != nil {
		return nil, fail(hdr("n_kv"), 16, err)
	}
	room -= int64(nt) * minTensorInfoSize
	if nkv > uint64(room/minKVSize) {
		return nil, errorf(hdr("n_kv"), 16, "%d key/value pairs and %d tensors cannot fit in a file of %d bytes", nkv, nt, size)
	}

	if nt > math.MaxInt || nkv > math.MaxInt {
		return nil, errorf(hdr("n_tensors"), 8, "%d tensors and %d key/value pairs do not fit in memory", nt, nkv)
	}
	if err := d.readKVs(f, int(nkv)); err != nil {
		return nil, err
	}
	offsetAt, err := d.readTensorInfos(f, int(nt))
	if err != nil {
		return nil, err
	}

	// The data section starts at the next multiple of the alignment; a
	// file without tensor data may end before it.
	f.DataOffset = alignUp(d.off, f.Alignment)
	if err := f.checkData(offsetAt); err != nil {
		return nil, err
	}
	return f, nil
}

func alignUp(n, align int64) int64 { return (n + align - 1) &^ (align - 1) }

// readKVs reads n key/value pairs into f.Metadata and sets f.Alignment.
func (d *decoder) readKVs(f *File, n int) error {
	f.kvs = make([]KV, 0, n)
	f.index = make(map[string]int, n)
	for i := range n {
		fld := field{kind: fieldKV, idx: i, part: "key"}
		keyOff := d.off
		key, err := d.str(fld)
		if err != nil {
			return err
		}
		if key == "" {
			return errorf(fld, keyOff, "empty key")
		}
		if j, dup := f.index[key]; dup {
			return errorf(fld, keyOff, "duplicate key %q (also kv[%d])", key, j)
		}

		fld.key, fld.part = key, "type"
		typeOff := d.off
		t, err := d.u32()
		if err != nil {
			return fail(fld, typeOff, err)
		}
		vt := ValueType(t)
		if !vt.valid() {
			return errorf(fld, typeOff, "unknown value type %d", t)
		}

		fld.part = "value"
		valOff := d.off
		val, err := d.value(vt, fld, 0)
		if err != nil {
			return err
		}
		if key == KeyAlignment {
			a, ok := val.V.(uint32)
			if val.Type != TypeUint32 {
				return errorf(fld, valOff, "alignment must be a uint32, not %s", val.describe())
			}
			if !ok || a == 0 || a&(a-1) != 0 {
				return errorf(fld, valOff, "alignment %v is not a power of two", val.V)
			}
			f.Alignment = int64(a)
		}
		f.index[key] = len(f.kvs)
		f.kvs = append(f.kvs, KV{key, val})
	}
	return nil
}

// value reads one value of type t for fld; depth is the number of arrays
// it is nested in.
func (d *decoder) value(t ValueType, fld field, depth int) (Value, error) {
	off := d.off
	if t == TypeString {
		s, err := d.str(fld)
		return Value{TypeString, s}, err
	}
	if t == TypeArray {
		a, err := d.array(fld, depth+1)
		return Value{TypeArray, a}, err
	}
	b, err := d.next(int64(t.fixedSize()))
	if err != nil {
		return Value{}, fail(fld, off, err)
	}
	var v any
	switch t {
	case TypeUint8:
		v = b[0]
	case TypeInt8:
		v = int8(b[0])
	case TypeBool:
		v = b[0] != 0
	case TypeUint16:
		v = binary.LittleEndian.Uint16(b)
	case TypeInt16:
		v = int16(binary.LittleEndian.Uint16(b))
	case TypeUint32:
		v = binary.LittleEndian.Uint32(b)
	case TypeInt32:
		v = int32(binary.LittleEndian.Uint32(b))
	case TypeFloat32:
		v = math.Float32frombits(binary.LittleEndian.Uint32(b))
	case TypeUint64:
		v = binary.LittleEndian.Uint64(b)
	case TypeInt64:
		v = int64(binary.LittleEndian.Uint64(b))
	case TypeFloat64:
		v = math.Float64frombits(binary.LittleEndian.Uint64(b))
	}
	return Value{t, v}, nil
}

// array reads an array value (element type, length, elements) at nesting
// depth depth (1 for a top-level array).
func (d *decoder) array(fld field, depth int) (Array, error) {
	off := d.off
	if depth > MaxArrayDepth {
		return Array{}, errorf(fld, off, "arrays nested more than %d deep", MaxArrayDepth)
	}
	t, err := d.u32()
	if err != nil {
		return Array{}, fail(fld, off, err)
	}
	et := ValueType(t)
	if !et.valid() {
		return Array{}, errorf(fld, off, "unknown array element type %d", t)
	}
	lenOff := d.off
	n64, err := d.u64()
	if err != nil {
		return Array{}, fail(fld, lenOff, err)
	}
	if n64 > uint64(d.left()/et.minSize()) {
		return Array{}, errorf(fld, lenOff, "array of %d %s elements cannot fit in the %d bytes left in the file", n64, et, d.left())
	}
	if n64 > math.MaxInt {
		return Array{}, errorf(fld, lenOff, "array of %d elements does not fit in memory", n64)
	}
	n := int(n64)
	a := Array{Elem: et}

	switch et {
	case TypeString:
		// One allocation for all the strings: the elements are substrings
		// of a single string holding their bytes. A first pass checks the
		// lengths and sums them, a second copies.
		start := d.off
		ends := make([]int, n)
		var total int64
		for i := range n {
			lenOff := d.off
			k, err := d.u64()
			if err != nil {
				return Array{}, fail(fld.at(i), lenOff, err)
			}
			if k > uint64(d.left()) {
				return Array{}, errorf(fld.at(i), lenOff, "string length %d is more than the %d bytes left in the file", k, d.left())
			}
			d.off += int64(k)
			total += int64(k)
			if total > math.MaxInt {
				return Array{}, errorf(fld, start, "array of strings too large for memory")
			}
			ends[i] = int(total)
		}
		d.off = start
		var sb strings.Builder
		sb.Grow(int(total))
		for i := range n {
			b, err := d.strBytes(fld, i)
			if err != nil {
				return Array{}, err
			}
			sb.Write(b)
		}
		all := sb.String()
		vals := make([]string, n)
		prev := 0
		for i, end := range ends {
			vals[i] = all[prev:end]
			prev = end
		}
		a.Values = vals
		return a, nil
	case TypeArray:
		vals := make([]Array, n)
		for i := range n {
			v, err := d.array(fld.at(i), depth+1)
			if err != nil {
				return Array{}, err
			}
			vals[i] = v
		}
		a.Values = vals
		return a, nil
	}

	dataOff := d.off
	b, err := d.next(int64(n) * int64(et.fixedSize()))
	if err != nil {
		return Array{}, fail(fld, dataOff, err)
	}
	a.Values = decodeFixed(et, b, n)
	return a, nil
}

// decodeFixed decodes n little-endian values of fixed-size type t.
func decodeFixed(t ValueType, b []byte, n int) any {
	le := binary.LittleEndian
	switch t {
	case TypeUint8:
		return slices.Clone(b[:n:n])
	case TypeInt8:
		v := make([]int8, n)
		for i := range v {
			v[i] = int8(b[i])
		}
		return v
	case TypeBool:
		v := make([]bool, n)
		for i := range v {
			v[i] = b[i] != 0
		}
		return v
	case TypeUint16:
		v := make([]uint16, n)
		for i := range v {
			v[i] = le.Uint16(b[2*i:])
		}
		return v
	case TypeInt16:
		v := make([]int16, n)
		for i := range v {
			v[i] = int16(le.Uint16(b[2*i:]))
		}
		return v
	case TypeUint32:
		v := make([]uint32, n)
		for i := range v {
			v[i] = le.Uint32(b[4*i:])
		}
		return v
	case TypeInt32:
		v := make([]int32, n)
		for i := range v {
			v[i] = int32(le.Uint32(b[4*i:]))
		}
		return v
	case TypeFloat32:
		v := make([]float32, n)
		for i := range v {
			v[i] = math.Float32frombits(le.Uint32(b[4*i:]))
		}
		return v
	case TypeUint64:
		v := make([]uint64, n)
		for i := range v {
			v[i] = le.Uint64(b[8*i:])
		}
		return v
	case TypeInt64:
		v := make([]int64, n)
		for i := range v {
			v[i] = int64(le.Uint64(b[8*i:]))
		}
		return v
	case TypeFloat64:
		v := make([]float64, n)
		for i := range v {
			v[i] = math.Float64frombits(le.Uint64(b[8*i:]))
		}
		return v
	}
	panic("gguf: decodeFixed of " + t.String())
}

// readTensorInfos reads n tensor infos into f.Tensors and returns the file
// offset of each one's offset field, for later errors.
func (d *decoder) readTensorInfos(f *File, n int) ([]int64, error) {
	f.Tensors = make([]TensorInfo, 0, n)
	f.tensorIndex = make(map[string]int, n)
	offsetAt := make([]int64, n)
	for i := range n {
		fld := field{kind: fieldTensor, idx: i, part: "name"}
		part := func(p string) field { fld.part = p; return fld }

		nameOff := d.off
		name, err := d.str(fld)
		if err != nil {
			return nil, err
		}
		switch {
		case name == "":
			return nil, errorf(fld, nameOff, "empty tensor name")
		case len(name) > MaxTensorNameLen:
			return nil, errorf(fld, nameOff, "tensor name %q is %d bytes long; the limit is %d", name, len(name), MaxTensorNameLen)
		}
		if j, dup := f.tensorIndex[name]; dup {
			return nil, errorf(fld, nameOff, "duplicate tensor name %q (also tensor_info[%d])", name, j)
		}

		ndOff := d.off
		nd, err := d.u32()
		if err != nil {
			return nil, fail(part("n_dims"), ndOff, err)
		}
		if nd < 1 || nd > MaxDims {
			return nil, errorf(part("n_dims"), ndOff, "tensor %q has %d dimensions; must be 1 to %d", name, nd, MaxDims)
		}

		// Dimensions may be 0 (an empty tensor), as ggml allows, but not
		// negative, and their product must fit in an int64.
		shapeOff := d.off
		shape := make([]int64, nd)
		elems := int64(1)
		for j := range shape {
			dimOff := d.off
			x, err := d.u64()
			if err != nil {
				return nil, fail(part(fmt.Sprintf("shape[%d]", j)), dimOff, err)
			}
			if x > math.MaxInt64 {
				return nil, errorf(part(fmt.Sprintf("shape[%d]", j)), dimOff, "tensor %q dimension %d is negative (%d)", name, j, int64(x))
			}
			shape[j] = int64(x)
		}
		for _, x := range shape {
			if x != 0 && elems > math.MaxInt64/x {
				return nil, errorf(part("shape"), shapeOff, "tensor %q shape %v has more than 2^63-1 elements", name, shape)
			}
			elems *= x
		}

		typeOff := d.off
		t, err := d.u32()
		if err != nil {
			return nil, fail(part("type"), typeOff, err)
		}
		typ := quant.Type(t)
		if !typ.Known() {
			return nil, errorf(part("type"), typeOff, "tensor %q has unknown type %d", name, t)
		}
		if bs := int64(typ.BlockSize()); shape[0]%bs != 0 {
			return nil, errorf(part("shape[0]"), shapeOff, "tensor %q row length %d is not a multiple of the %s block size %d", name, shape[0], typ, bs)
		}
		nbytes, err := quant.RowSize(typ, elems)
		if err != nil {
			return nil, errorf(part("shape"), shapeOff, "tensor %q of type %s and shape %v: %v", name, typ, shape, err)
		}

		offOff := d.off
		o, err := d.u64()
		if err != nil {
			return nil, fail(part("offset"), offOff, err)
		}
		if o > math.MaxInt64 {
			return nil, errorf(part("offset"), offOff, "tensor %q offset %d is too large", name, o)
		}
		if int64(o)%f.Alignment != 0 {
			return nil, errorf(part("offset"), offOff, "tensor %q offset %d is not a multiple of the alignment %d", name, o, f.Alignment)
		}
		offsetAt[i] = offOff

		f.tensorIndex[name] = i
		f.Tensors = append(f.Tensors, TensorInfo{Name: name, Type: typ, Shape: shape, Offset: int64(o), Size: nbytes})
	}
	return offsetAt, nil
}

// checkData checks that every tensor's data lies within the file and that
// no two tensors share bytes.
func (f *File) checkData(offsetAt []int64) error {
	dataLen := f.Size - f.DataOffset // negative when the file ends in the padding
	fld := func(i int) field { return field{kind: fieldTensor, idx: i, part: "offset"} }
	order := make([]int, 0, len(f.Tensors))
	for i := range f.Tensors {
		t := &f.Tensors[i]
		if t.Size == 0 {
			continue
		}
		if dataLen < t.Size || t.Offset > dataLen-t.Size {
			return errorf(fld(i), offsetAt[i], "tensor %q data (%d bytes at offset %d) is out of bounds: the data section at byte %d holds %d bytes",
				t.Name, t.Size, t.Offset, f.DataOffset, max(dataLen, 0))
		}
		order = append(order, i)
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return cmp.Compare(f.Tensors[a].Offset, f.Tensors[b].Offset)
	})
	for k := 1; k < len(order); k++ {
		p, t := &f.Tensors[order[k-1]], &f.Tensors[order[k]]
		if p.Offset+p.Size > t.Offset {
			return errorf(fld(order[k]), offsetAt[order[k]], "tensor %q data [%d, %d) overlaps tensor %q [%d, %d)",
				t.Name, t.Offset, t.Offset+t.Size, p.Name, p.Offset, p.Offset+p.Size)
		}
	}
	return nil
}
