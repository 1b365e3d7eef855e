package gguf

import (
	"fmt"
	"strconv"
	"strings"
)

// ValueType is the type tag of a metadata value, numbered as in the GGUF
// specification.
type ValueType uint32

// The metadata value types. The numbers are part of the file format.
const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

var valueTypeNames = [...]string{
	TypeUint8:   "uint8",
	TypeInt8:    "int8",
	TypeUint16:  "uint16",
	TypeInt16:   "int16",
	TypeUint32:  "uint32",
	TypeInt32:   "int32",
	TypeFloat32: "float32",
	TypeBool:    "bool",
	TypeString:  "string",
	TypeArray:   "array",
	TypeUint64:  "uint64",
	TypeInt64:   "int64",
	TypeFloat64: "float64",
}

// String returns the type's name as the specification spells it ("uint32",
// "string", "array"), or "ValueType(N)" for a number it does not define.
func (t ValueType) String() string {
	if t.valid() {
		return valueTypeNames[t]
	}
	return "ValueType(" + strconv.FormatUint(uint64(t), 10) + ")"
}

func (t ValueType) valid() bool { return t <= TypeFloat64 }

// fixedSize is the encoded size of one value of a fixed-size type, or 0 for
// strings and arrays.
func (t ValueType) fixedSize() int {
	switch t {
	case TypeUint8, TypeInt8, TypeBool:
		return 1
	case TypeUint16, TypeInt16:
		return 2
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4
	case TypeUint64, TypeInt64, TypeFloat64:
		return 8
	}
	return 0
}

// minSize is the fewest bytes one encoded value of type t can take: the
// fixed size, a string's 8-byte length, or an array's element type and
// length.
func (t ValueType) minSize() int64 {
	switch t {
	case TypeString:
		return 8
	case TypeArray:
		return 4 + 8
	}
	return int64(t.fixedSize())
}

// Value is one metadata value. V holds uint8, int8, uint16, int16, uint32,
// int32, float32, bool, string, uint64, int64, float64, or Array, matching
// Type.
type Value struct {
	Type ValueType
	V    any
}

// Array is an array value. Elem is the element type; Values is []uint8,
// []int8, []uint16, []int16, []uint32, []int32, []float32, []bool,
// []string, []uint64, []int64, []float64, or []Array for nested arrays
// (each nested array has its own element type).
type Array struct {
	Elem   ValueType
	Values any
}

// Len returns the number of elements in a, or 0 when Values is nil or not
// one of the slice types above.
func (a Array) Len() int {
	switch v := a.Values.(type) {
	case []uint8:
		return len(v)
	case []int8:
		return len(v)
	case []uint16:
		return len(v)
	case []int16:
		return len(v)
	case []uint32:
		return len(v)
	case []int32:
		return len(v)
	case []float32:
		return len(v)
	case []bool:
		return len(v)
	case []string:
		return len(v)
	case []uint64:
		return len(v)
	case []int64:
		return len(v)
	case []float64:
		return len(v)
	case []Array:
		return len(v)
	}
	return 0
}

// Uint8 returns a uint8 value.
func Uint8(v uint8) Value { return Value{TypeUint8, v} }

// Int8 returns an int8 value.
func Int8(v int8) Value { return Value{TypeInt8, v} }

// Uint16 returns a uint16 value.
func Uint16(v uint16) Value { return Value{TypeUint16, v} }

// Int16 returns an int16 value.
func Int16(v int16) Value { return Value{TypeInt16, v} }

// Uint32 returns a uint32 value.
func Uint32(v uint32) Value { return Value{TypeUint32, v} }

// Int32 returns an int32 value.
func Int32(v int32) Value { return Value{TypeInt32, v} }

// Float32 returns a float32 value.
func Float32(v float32) Value { return Value{TypeFloat32, v} }

// Bool returns a bool value.
func Bool(v bool) Value { return Value{TypeBool, v} }

// String returns a string value.
func String(s string) Value { return Value{TypeString, s} }

// Uint64 returns a uint64 value.
func Uint64(v uint64) Value { return Value{TypeUint64, v} }

// Int64 returns an int64 value.
func Int64(v int64) Value { return Value{TypeInt64, v} }

// Float64 returns a float64 value.
func Float64(v float64) Value { return Value{TypeFloat64, v} }

// Strings returns an array-of-string value. The slice is not copied.
func Strings(v []string) Value { return ArrayOf(Array{TypeString, v}) }

// Float32s returns an array-of-float32 value. The slice is not copied.
func Float32s(v []float32) Value { return ArrayOf(Array{TypeFloat32, v}) }

// Int32s returns an array-of-int32 value. The slice is not copied.
func Int32s(v []int32) Value { return ArrayOf(Array{TypeInt32, v}) }

// Uint32s returns an array-of-uint32 value. The slice is not copied.
func Uint32s(v []uint32) Value { return ArrayOf(Array{TypeUint32, v}) }

// ArrayOf returns an array value.
func ArrayOf(a Array) Value { return Value{TypeArray, a} }

// describe names the type of v for error messages: "uint32", or
// "array of string" for an array.
func (v Value) describe() string {
	if a, ok := v.V.(Array); ok && v.Type == TypeArray {
		return "array of " + a.Elem.String()
	}
	return v.Type.String()
}

// maxShown is how many elements of an array String shows.
const maxShown = 8

// String formats v for people: numbers and booleans as Go prints them,
// strings quoted, arrays in brackets. An array longer than 8 elements is
// abbreviated to its first 8 and its length.
func (v Value) String() string {
	switch x := v.V.(type) {
	case string:
		return strconv.Quote(x)
	case Array:
		return x.String()
	case nil:
		return "<nil>"
	}
	return fmt.Sprint(v.V)
}

// String formats a like Value.String.
func (a Array) String() string {
	n := a.Len()
	var b strings.Builder
	b.WriteByte('[')
	for i := range min(n, maxShown) {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(a.elem(i).String())
	}
	if n > maxShown {
		fmt.Fprintf(&b, ", ... (%d elements)", n)
	}
	b.WriteByte(']')
	return b.String()
}

// elem returns element i of a as a Value. i must be in range.
func (a Array) elem(i int) Value {
	switch v := a.Values.(type) {
	case []uint8:
		return Uint8(v[i])
	case []int8:
		return Int8(v[i])
	case []uint16:
		return Uint16(v[i])
	case []int16:
		return Int16(v[i])
	case []uint32:
		return Uint32(v[i])
	case []int32:
		return Int32(v[i])
	case []float32:
		return Float32(v[i])
	case []bool:
		return Bool(v[i])
	case []string:
		return String(v[i])
	case []uint64:
		return Uint64(v[i])
	case []int64:
		return Int64(v[i])
	case []float64:
		return Float64(v[i])
	case []Array:
		return ArrayOf(v[i])
	}
	return Value{}
}
