package gguf

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// Well-known metadata keys.
const (
	KeyArchitecture = "general.architecture"
	KeyAlignment    = "general.alignment"
)

// ErrKeyNotFound is wrapped by the error a typed accessor returns for a key
// that is not set.
var ErrKeyNotFound = errors.New("gguf: key not found")

// ErrWrongType is wrapped by the error a typed accessor returns for a value
// of another type, or one out of the wanted type's range.
var ErrWrongType = errors.New("gguf: value has the wrong type")

// KV is one metadata key and its value.
type KV struct {
	Key   string
	Value Value
}

// Metadata is an ordered set of key/value pairs: the order is the file's
// (or the order of Set calls), and each key appears once. The zero value is
// an empty set ready to use.
type Metadata struct {
	kvs   []KV
	index map[string]int
}

// KVs returns the pairs in order. The slice is a copy; the values in it
// share their arrays with m and must not be modified.
func (m *Metadata) KVs() []KV { return slices.Clone(m.kvs) }

// Len returns the number of pairs.
func (m *Metadata) Len() int { return len(m.kvs) }

// Get returns the value of key and whether it is set.
func (m *Metadata) Get(key string) (Value, bool) {
	i, ok := m.index[key]
	if !ok {
		return Value{}, false
	}
	return m.kvs[i].Value, true
}

// Set sets key to v, in place when key is set already, else at the end.
func (m *Metadata) Set(key string, v Value) {
	if i, ok := m.index[key]; ok {
		m.kvs[i].Value = v
		return
	}
	if m.index == nil {
		m.index = make(map[string]int)
	}
	m.index[key] = len(m.kvs)
	m.kvs = append(m.kvs, KV{key, v})
}

// Delete removes key, if set, keeping the order of the others.
func (m *Metadata) Delete(key string) {
	i, ok := m.index[key]
	if !ok {
		return
	}
	m.kvs = slices.Delete(m.kvs, i, i+1)
	delete(m.index, key)
	for j := i; j < len(m.kvs); j++ {
		m.index[m.kvs[j].Key] = j
	}
}

// keyError is a missing key or a value of the wrong type; it unwraps to
// ErrKeyNotFound or ErrWrongType.
type keyError struct {
	msg  string
	kind error
}

func (e *keyError) Error() string { return e.msg }
func (e *keyError) Unwrap() error { return e.kind }

func notFound(key string) error {
	return &keyError{fmt.Sprintf("gguf: key %q not found", key), ErrKeyNotFound}
}

func wrongType(key string, v Value, want string) error {
	return &keyError{fmt.Sprintf("gguf: key %q is %s, want %s", key, v.describe(), want), ErrWrongType}
}

func outOfRange(key string, v Value, want string) error {
	return &keyError{fmt.Sprintf("gguf: key %q: %s value %v does not fit in %s", key, v.describe(), v.V, want), ErrWrongType}
}

// lookup returns the value of key or the not-found error.
func (m *Metadata) lookup(key string) (Value, error) {
	v, ok := m.Get(key)
	if !ok {
		return Value{}, notFound(key)
	}
	return v, nil
}

// exact returns the value of key as a T when it is stored with type t.
func exact[T any](m *Metadata, key string, t ValueType) (T, error) {
	var zero T
	v, err := m.lookup(key)
	if err != nil {
		return zero, err
	}
	x, ok := v.V.(T)
	if v.Type != t || !ok {
		return zero, wrongType(key, v, t.String())
	}
	return x, nil
}

// exactArray returns the elements of the array under key when they are of
// type elem.
func exactArray[T any](m *Metadata, key string, elem ValueType) ([]T, error) {
	v, err := m.lookup(key)
	if err != nil {
		return nil, err
	}
	a, ok := v.V.(Array)
	if v.Type != TypeArray || !ok || a.Elem != elem {
		return nil, wrongType(key, v, "array of "+elem.String())
	}
	x, ok := a.Values.([]T)
	if !ok && a.Values != nil {
		return nil, wrongType(key, v, "array of "+elem.String())
	}
	return x, nil
}

// integer returns an integer value as a signed and an unsigned number:
// neg reports a negative value (use s), otherwise u holds it.
func integer(v Value) (s int64, u uint64, neg, ok bool) {
	switch x := v.V.(type) {
	case uint8:
		return 0, uint64(x), false, v.Type == TypeUint8
	case uint16:
		return 0, uint64(x), false, v.Type == TypeUint16
	case uint32:
		return 0, uint64(x), false, v.Type == TypeUint32
	case uint64:
		return 0, x, false, v.Type == TypeUint64
	case int8:
		s = int64(x)
		ok = v.Type == TypeInt8
	case int16:
		s = int64(x)
		ok = v.Type == TypeInt16
	case int32:
		s = int64(x)
		ok = v.Type == TypeInt32
	case int64:
		s = x
		ok = v.Type == TypeInt64
	default:
		return 0, 0, false, false
	}
	if s < 0 {
		return s, 0, true, ok
	}
	return s, uint64(s), false, ok
}

// unsigned returns the integer under key when it lies in [0, max].
func (m *Metadata) unsigned(key string, max uint64, want string) (uint64, error) {
	v, err := m.lookup(key)
	if err != nil {
		return 0, err
	}
	_, u, neg, ok := integer(v)
	if !ok {
		return 0, wrongType(key, v, want)
	}
	if neg || u > max {
		return 0, outOfRange(key, v, want)
	}
	return u, nil
}

// signed returns the integer under key when it lies in [lo, hi].
func (m *Metadata) signed(key string, lo, hi int64, want string) (int64, error) {
	v, err := m.lookup(key)
	if err != nil {
		return 0, err
	}
	s, u, neg, ok := integer(v)
	if !ok {
		return 0, wrongType(key, v, want)
	}
	if neg {
		if s < lo {
			return 0, outOfRange(key, v, want)
		}
		return s, nil
	}
	if u > uint64(hi) {
		return 0, outOfRange(key, v, want)
	}
	return int64(u), nil
}

// String returns the string under key.
func (m *Metadata) String(key string) (string, error) {
	return exact[string](m, key, TypeString)
}

// Bool returns the bool under key.
func (m *Metadata) Bool(key string) (bool, error) {
	return exact[bool](m, key, TypeBool)
}

// Uint32 returns the integer under key, of any integer type, when it fits
// in a uint32.
func (m *Metadata) Uint32(key string) (uint32, error) {
	u, err := m.unsigned(key, math.MaxUint32, "uint32")
	return uint32(u), err
}

// Uint64 returns the integer under key, of any integer type, when it is not
// negative.
func (m *Metadata) Uint64(key string) (uint64, error) {
	return m.unsigned(key, math.MaxUint64, "uint64")
}

// Int32 returns the integer under key, of any integer type, when it fits in
// an int32.
func (m *Metadata) Int32(key string) (int32, error) {
	s, err := m.signed(key, math.MinInt32, math.MaxInt32, "int32")
	return int32(s), err
}

// Int64 returns the integer under key, of any integer type, when it fits in
// an int64.
func (m *Metadata) Int64(key string) (int64, error) {
	return m.signed(key, math.MinInt64, math.MaxInt64, "int64")
}

// Float32 returns the float32 or float64 under key as a float32. A finite
// float64 beyond float32's range is an error.
func (m *Metadata) Float32(key string) (float32, error) {
	v, err := m.lookup(key)
	if err != nil {
		return 0, err
	}
	switch x := v.V.(type) {
	case float32:
		if v.Type == TypeFloat32 {
			return x, nil
		}
	case float64:
		if v.Type == TypeFloat64 {
			f := float32(x)
			if math.IsInf(float64(f), 0) && !math.IsInf(x, 0) {
				return 0, outOfRange(key, v, "float32")
			}
			return f, nil
		}
	}
	return 0, wrongType(key, v, "float32")
}

// Float64 returns the float32 or float64 under key as a float64.
func (m *Metadata) Float64(key string) (float64, error) {
	v, err := m.lookup(key)
	if err != nil {
		return 0, err
	}
	switch x := v.V.(type) {
	case float32:
		if v.Type == TypeFloat32 {
			return float64(x), nil
		}
	case float64:
		if v.Type == TypeFloat64 {
			return x, nil
		}
	}
	return 0, wrongType(key, v, "float64")
}

// Array returns the array under key, of any element type.
func (m *Metadata) Array(key string) (Array, error) {
	return exact[Array](m, key, TypeArray)
}

// Strings returns the array of strings under key. The slice is shared with
// m and must not be modified.
func (m *Metadata) Strings(key string) ([]string, error) {
	return exactArray[string](m, key, TypeString)
}

// Float32s returns the array of float32 under key. The slice is shared with
// m and must not be modified.
func (m *Metadata) Float32s(key string) ([]float32, error) {
	return exactArray[float32](m, key, TypeFloat32)
}

// Int32s returns the array of int32 under key. The slice is shared with m
// and must not be modified.
func (m *Metadata) Int32s(key string) ([]int32, error) {
	return exactArray[int32](m, key, TypeInt32)
}

// Architecture returns general.architecture ("llama"), or "" when it is
// not set or not a string.
func (m *Metadata) Architecture() string {
	s, _ := m.String(KeyArchitecture)
	return s
}

// ArchKey returns the key of an architecture-specific value:
// Architecture()+"."+suffix, such as "llama.block_count".
func (m *Metadata) ArchKey(suffix string) string {
	return m.Architecture() + "." + suffix
}

// archKey is ArchKey, or the error for a missing general.architecture.
func (m *Metadata) archKey(suffix string) (string, error) {
	arch := m.Architecture()
	if arch == "" {
		if _, err := m.String(KeyArchitecture); err != nil {
			return "", fmt.Errorf("%w (needed for %q)", err, "<arch>."+suffix)
		}
	}
	return arch + "." + suffix, nil
}

// ArchUint32 returns the integer under ArchKey(suffix), as Uint32 does.
func (m *Metadata) ArchUint32(suffix string) (uint32, error) {
	key, err := m.archKey(suffix)
	if err != nil {
		return 0, err
	}
	return m.Uint32(key)
}

// ArchFloat32 returns the float under ArchKey(suffix), as Float32 does.
func (m *Metadata) ArchFloat32(suffix string) (float32, error) {
	key, err := m.archKey(suffix)
	if err != nil {
		return 0, err
	}
	return m.Float32(key)
}
