package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"

	"github.com/ocelot-llm/ocelot/quant"
)

// Writer builds a GGUF file: metadata, then tensors whose data is produced
// while the file is written, so that a multi-gigabyte model streams
// through without being held in memory.
type Writer struct {
	md      Metadata
	version uint32
	tensors []wtensor
	names   map[string]bool
}

type wtensor struct {
	info TensorInfo
	fill func(io.Writer) error
}

// NewWriter returns a Writer of GGUF version 3 files with tensor data
// aligned to 32 bytes, or to general.alignment when that is set (as a
// uint32 power of two).
func NewWriter() *Writer {
	return &Writer{version: 3, names: make(map[string]bool)}
}

// SetVersion sets the GGUF version to write: 2 or 3 (the default). The
// two share one layout; version 2 exists for tests and old readers.
func (w *Writer) SetVersion(v uint32) { w.version = v }

// Set sets a metadata key, as Metadata.Set does.
func (w *Writer) Set(key string, v Value) { w.md.Set(key, v) }

// Metadata returns the metadata to be written, for reading or editing.
func (w *Writer) Metadata() *Metadata { return &w.md }

// AddTensor adds a tensor whose data fill writes when the file is written.
// It checks that the name is new, non-empty and at most MaxTensorNameLen
// bytes, that the shape has 1 to 4 non-negative dimensions, that the type
// is known and that the row length (shape[0]) is a whole number of blocks.
// fill must write exactly the tensor's byte size (quant.RowSize of its
// elements); WriteTo fails otherwise.
func (w *Writer) AddTensor(name string, typ quant.Type, shape []int64, fill func(io.Writer) error) error {
	info, err := w.check(name, typ, shape)
	if err != nil {
		return err
	}
	if fill == nil {
		return fmt.Errorf("gguf: tensor %q: nil fill function", name)
	}
	w.names[name] = true
	w.tensors = append(w.tensors, wtensor{info, fill})
	return nil
}

// AddTensorBytes adds a tensor whose data is data, which must be exactly
// the tensor's byte size. data is not copied: it must stay unchanged until
// the file is written.
func (w *Writer) AddTensorBytes(name string, typ quant.Type, shape []int64, data []byte) error {
	info, err := w.check(name, typ, shape)
	if err != nil {
		return err
	}
	if int64(len(data)) != info.Size {
		return fmt.Errorf("gguf: tensor %q (%s %v) takes %d bytes, got %d", name, typ, shape, info.Size, len(data))
	}
	w.names[name] = true
	w.tensors = append(w.tensors, wtensor{info, func(out io.Writer) error {
		_, err := out.Write(data)
		return err
	}})
	return nil
}

// check validates a tensor to add and returns its info, without offset.
func (w *Writer) check(name string, typ quant.Type, shape []int64) (TensorInfo, error) {
	switch {
	case name == "":
		return TensorInfo{}, errors.New("gguf: empty tensor name")
	case len(name) > MaxTensorNameLen:
		return TensorInfo{}, fmt.Errorf("gguf: tensor name %q is %d bytes long; the limit is %d", name, len(name), MaxTensorNameLen)
	case w.names[name]:
		return TensorInfo{}, fmt.Errorf("gguf: duplicate tensor name %q", name)
	case len(shape) < 1 || len(shape) > MaxDims:
		return TensorInfo{}, fmt.Errorf("gguf: tensor %q has %d dimensions; must be 1 to %d", name, len(shape), MaxDims)
	case !typ.Known():
		return TensorInfo{}, fmt.Errorf("gguf: tensor %q has unknown type %d", name, uint32(typ))
	}
	elems := int64(1)
	for j, x := range shape {
		if x < 0 {
			return TensorInfo{}, fmt.Errorf("gguf: tensor %q dimension %d is negative (%d)", name, j, x)
		}
		if x != 0 && elems > math.MaxInt64/x {
			return TensorInfo{}, fmt.Errorf("gguf: tensor %q shape %v has more than 2^63-1 elements", name, shape)
		}
		elems *= x
	}
	if bs := int64(typ.BlockSize()); shape[0]%bs != 0 {
		return TensorInfo{}, fmt.Errorf("gguf: tensor %q row length %d is not a multiple of the %s block size %d", name, shape[0], typ, bs)
	}
	size, err := quant.RowSize(typ, elems)
	if err != nil {
		return TensorInfo{}, fmt.Errorf("gguf: tensor %q: %w", name, err)
	}
	return TensorInfo{Name: name, Type: typ, Shape: append([]int64(nil), shape...), Size: size}, nil
}

// alignment returns general.alignment, or DefaultAlignment when unset.
func (w *Writer) alignment() (int64, error) {
	v, ok := w.md.Get(KeyAlignment)
	if !ok {
		return DefaultAlignment, nil
	}
	a, ok := v.V.(uint32)
	if v.Type != TypeUint32 || !ok {
		return 0, fmt.Errorf("gguf: %s must be a uint32, not %s", KeyAlignment, v.describe())
	}
	if a == 0 || a&(a-1) != 0 {
		return 0, fmt.Errorf("gguf: %s %d is not a power of two", KeyAlignment, a)
	}
	return int64(a), nil
}

// WriteTo writes the file to out: header, metadata, tensor infos, padding
// to the alignment, then each tensor's data padded to the alignment. It
// calls each tensor's fill function once per call.
func (w *Writer) WriteTo(out io.Writer) (int64, error) {
	if w.version != 2 && w.version != 3 {
		return 0, fmt.Errorf("gguf: cannot write GGUF version %d (only 2 and 3)", w.version)
	}
	align, err := w.alignment()
	if err != nil {
		return 0, err
	}

	// Lay the data out: each tensor at the next aligned offset.
	infos := make([]TensorInfo, len(w.tensors))
	var off int64
	for i, t := range w.tensors {
		infos[i] = t.info
		infos[i].Offset = off
		if t.info.Size > math.MaxInt64-off-align {
			return 0, fmt.Errorf("gguf: tensor %q: data section larger than 2^63-1 bytes", t.info.Name)
		}
		off = alignUp(off+t.info.Size, align)
	}

	// The header, metadata and tensor infos are small: build them in
	// memory and write them at once.
	var e encoder
	e.b = append(e.b, magic...)
	e.u32(w.version)
	e.u64(uint64(len(infos)))
	e.u64(uint64(len(w.md.kvs)))
	for _, kv := range w.md.kvs {
		if kv.Key == "" {
			return 0, errors.New("gguf: empty metadata key")
		}
		e.str(kv.Key)
		e.u32(uint32(kv.Value.Type))
		if err := e.value(kv.Value, 0); err != nil {
			return 0, fmt.Errorf("gguf: key %q: %w", kv.Key, err)
		}
	}
	for _, t := range infos {
		e.str(t.Name)
		e.u32(uint32(len(t.Shape)))
		for _, x := range t.Shape {
			e.u64(uint64(x))
		}
		e.u32(uint32(t.Type))
		e.u64(uint64(t.Offset))
	}
	e.pad(align)

	cw := &countWriter{w: out}
	if _, err := cw.Write(e.b); err != nil {
		return cw.n, err
	}
	for i, t := range w.tensors {
		lw := &limitWriter{w: cw, left: t.info.Size}
		if err := t.fill(lw); err != nil {
			return cw.n, fmt.Errorf("gguf: tensor %q: %w", t.info.Name, err)
		}
		if lw.left != 0 {
			return cw.n, fmt.Errorf("gguf: tensor %q: fill wrote %d of its %d bytes", t.info.Name, t.info.Size-lw.left, t.info.Size)
		}
		end := infos[i].Offset + t.info.Size
		if err := writeZeros(cw, alignUp(end, align)-end); err != nil {
			return cw.n, err
		}
	}
	return cw.n, nil
}

// WriteFile writes the file to path atomically: into a temporary file in
// the same folder, through a large buffer, then synced and renamed over
// path. On failure path is untouched and the temporary file removed.
//
// Only a regular file is replaced, keeping its permission bits (and only
// those: no setuid, setgid or sticky bit); a new file gets 0644 less the
// umask, as os.Create gives. A path that names anything else (a symbolic
// link, which is never followed, a directory, a FIFO, a device or a
// socket) is refused before anything is written: see CheckTarget.
func (w *Writer) WriteFile(path string) (err error) {
	st, err := targetStat(path)
	if err != nil {
		return err
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	// A new file is created 0644 so that the umask applies; a replaced one
	// is created private and given the old file's bits once written.
	mode := os.FileMode(0o644)
	if st != nil {
		mode = 0o600
	}
	tmp, err := createTemp(dir, "."+base+".tmp", mode)
	if err != nil {
		return fmt.Errorf("gguf: writing %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriterSize(tmp, 4<<20)
	if _, err = w.WriteTo(bw); err != nil {
		return fmt.Errorf("gguf: writing %s: %w", path, err)
	}
	if err = bw.Flush(); err != nil {
		return fmt.Errorf("gguf: writing %s: %w", path, err)
	}
	if st != nil {
		if err = tmp.Chmod(st.Mode().Perm()); err != nil {
			return fmt.Errorf("gguf: writing %s: %w", path, err)
		}
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("gguf: writing %s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("gguf: writing %s: %w", path, err)
	}
	// Look again: writing may have taken minutes, and what is at path now
	// is what the rename replaces.
	if _, err = targetStat(path); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("gguf: writing %s: %w", path, err)
	}
	return nil
}

// CheckTarget reports whether WriteFile may write path: nil when nothing
// is there or a regular file is, an error naming path and what it is
// otherwise (a symbolic link, to whatever it points, a directory, a FIFO,
// a device, a socket), or the error of looking. Callers that spend long
// preparing a file call it first, to fail before the work.
func CheckTarget(path string) error {
	_, err := targetStat(path)
	return err
}

// targetStat returns the file info of the regular file at path, nil when
// path does not exist, or an error for anything else. It never follows a
// symbolic link at path.
func targetStat(path string) (fs.FileInfo, error) {
	if path == "" {
		return nil, errors.New("gguf: empty output path")
	}
	st, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("gguf: cannot write %s: %w", path, err)
	case !st.Mode().IsRegular():
		return nil, fmt.Errorf("gguf: refusing to replace %s: it is %s, not a regular file", path, describeType(st.Mode()))
	}
	return st, nil
}

// describeType names the kind of file a mode says, with its article.
func describeType(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO (named pipe)"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return "an irregular file"
}

// createTemp creates a new file prefix+random in dir with the given mode
// (less the umask), as os.CreateTemp does with 0600. O_EXCL makes the
// creation fail rather than open, or follow a link at, an existing name.
func createTemp(dir, prefix string, mode os.FileMode) (*os.File, error) {
	for range 10000 {
		name := filepath.Join(dir, prefix+strconv.FormatUint(uint64(rand.Uint32()), 10))
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, mode)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, err
	}
	return nil, fmt.Errorf("cannot create a temporary file %s* in %s", prefix, dir)
}

var zeros [4096]byte

// writeZeros writes n zero bytes.
func writeZeros(out io.Writer, n int64) error {
	for n > 0 {
		k := min(n, int64(len(zeros)))
		if _, err := out.Write(zeros[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// limitWriter passes at most left bytes through and fails beyond them.
type limitWriter struct {
	w    io.Writer
	left int64
}

var errOverfill = errors.New("fill wrote more than the tensor's size")

func (l *limitWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.left {
		return 0, errOverfill
	}
	n, err := l.w.Write(p)
	l.left -= int64(n)
	return n, err
}

// encoder appends little-endian fields to b.
type encoder struct{ b []byte }

func (e *encoder) u32(v uint32) { e.b = binary.LittleEndian.AppendUint32(e.b, v) }
func (e *encoder) u64(v uint64) { e.b = binary.LittleEndian.AppendUint64(e.b, v) }

func (e *encoder) str(s string) {
	e.u64(uint64(len(s)))
	e.b = append(e.b, s...)
}

func (e *encoder) pad(align int64) {
	n := int(alignUp(int64(len(e.b)), align)) - len(e.b)
	e.b = append(e.b, make([]byte, n)...)
}

// value appends the encoding of v (without its type tag), checking that
// V holds what Type says; depth counts the arrays v is nested in.
func (e *encoder) value(v Value, depth int) error {
	mismatch := func() error {
		return fmt.Errorf("value of type %s holds a %T", v.Type, v.V)
	}
	switch v.Type {
	case TypeString:
		s, ok := v.V.(string)
		if !ok {
			return mismatch()
		}
		e.str(s)
		return nil
	case TypeArray:
		a, ok := v.V.(Array)
		if !ok {
			return mismatch()
		}
		return e.array(a, depth+1)
	}
	b := e.b
	le := binary.LittleEndian
	ok := false
	switch x := v.V.(type) {
	case uint8:
		b, ok = append(b, x), v.Type == TypeUint8
	case int8:
		b, ok = append(b, byte(x)), v.Type == TypeInt8
	case bool:
		b, ok = append(b, boolByte(x)), v.Type == TypeBool
	case uint16:
		b, ok = le.AppendUint16(b, x), v.Type == TypeUint16
	case int16:
		b, ok = le.AppendUint16(b, uint16(x)), v.Type == TypeInt16
	case uint32:
		b, ok = le.AppendUint32(b, x), v.Type == TypeUint32
	case int32:
		b, ok = le.AppendUint32(b, uint32(x)), v.Type == TypeInt32
	case float32:
		b, ok = le.AppendUint32(b, math.Float32bits(x)), v.Type == TypeFloat32
	case uint64:
		b, ok = le.AppendUint64(b, x), v.Type == TypeUint64
	case int64:
		b, ok = le.AppendUint64(b, uint64(x)), v.Type == TypeInt64
	case float64:
		b, ok = le.AppendUint64(b, math.Float64bits(x)), v.Type == TypeFloat64
	}
	if !ok {
		if !v.Type.valid() {
			return fmt.Errorf("unknown value type %d", uint32(v.Type))
		}
		return mismatch()
	}
	e.b = b
	return nil
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// array appends an array: element type, length and elements.
func (e *encoder) array(a Array, depth int) error {
	if depth > MaxArrayDepth {
		return fmt.Errorf("arrays nested more than %d deep", MaxArrayDepth)
	}
	if !a.Elem.valid() {
		return fmt.Errorf("unknown array element type %d", uint32(a.Elem))
	}
	e.u32(uint32(a.Elem))
	le := binary.LittleEndian
	ok := false
	switch x := a.Values.(type) {
	case nil:
		e.u64(0)
		return nil
	case []uint8:
		e.u64(uint64(len(x)))
		e.b, ok = append(e.b, x...), a.Elem == TypeUint8
	case []int8:
		e.u64(uint64(len(x)))
		for _, v := range x {
			e.b = append(e.b, byte(v))
		}
		ok = a.Elem == TypeInt8
	case []bool:
		e.u64(uint64(len(x)))
		for _, v := range x {
			e.b = append(e.b, boolByte(v))
		}
		ok = a.Elem == TypeBool
	case []uint16:
		e.u64(uint64(len(x)))
		for _, v := range x {
			e.b = le.AppendUint16(e.b, v)
		}
		ok = a.Elem == TypeUint16
	case []int16:
		e.u64(uint64(len(x)))
		for _, v := range x {
			e.b = le.AppendUint16(e.b, uint16(v))
		}
		ok = a.Elem == TypeInt16
	case []uint32:
		e.u64(uint64(len(x)))
		for _, v := range x {
			e.b = le.AppendUint32(e.b, v)
		}
		ok = a.Elem == TypeUint32
	case []int32:
		e.u64(uint64(len(x)))
		for _, v := range x {
			e.b = le.AppendUint32(e.b, uint32(v))
		}
		ok = a.Elem == TypeInt32
	case []float32:
		e.u64(uint64(len(x)))
		for _, v := range x {
			e.b = le.AppendUint32(e.b, math.Float32bits(v))
		}
		ok = a.Elem == TypeFloat32
	case []uint64:
		e.u64(uint64(len(x)))
		for _, v := range x {
			e.b = le.AppendUint64(e.b, v)
		}
		ok = a.Elem == TypeUint64
	case []int64:
		e.u64(uint64(len(x)))
		for _, v := range x {
			e.b = le.AppendUint64(e.b, uint64(v))
		}
		ok = a.Elem == TypeInt64
	case []float64:
		e.u64(uint64(len(x)))
		for _, v := range x {
			e.b = le.AppendUint64(e.b, math.Float64bits(v))
		}
		ok = a.Elem == TypeFloat64
	case []string:
		e.u64(uint64(len(x)))
		for _, v := range x {
			e.str(v)
		}
		ok = a.Elem == TypeString
	case []Array:
		if a.Elem != TypeArray {
			break
		}
		e.u64(uint64(len(x)))
		for i, v := range x {
			if err := e.array(v, depth+1); err != nil {
				return fmt.Errorf("element %d: %w", i, err)
			}
		}
		ok = true
	}
	if !ok {
		return fmt.Errorf("array of %s holds a %T", a.Elem, a.Values)
	}
	return nil
}
