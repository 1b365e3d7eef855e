// Package quant holds ggml's tensor block formats (F32, F16, BF16, Q4_0,
// Q8_0, Q6_K) and their CPU kernels: conversion, quantization,
// dequantization, matrix products, the exponential and SwiGLU, and
// row-size arithmetic.
//
// Every type that ggml defines is known by name and size, so that a file
// holding any of them can be read and described; only the types listed by
// Supported can be converted and computed with.
package quant

import (
	"fmt"
	"sort"
)

// Type is a ggml tensor type, numbered as in ggml.h and in GGUF files.
type Type uint32

// The ggml tensor types. The numbers are part of the GGUF file format.
const (
	F32     Type = 0
	F16     Type = 1
	Q4_0    Type = 2
	Q4_1    Type = 3
	Q5_0    Type = 6
	Q5_1    Type = 7
	Q8_0    Type = 8
	Q8_1    Type = 9
	Q2_K    Type = 10
	Q3_K    Type = 11
	Q4_K    Type = 12
	Q5_K    Type = 13
	Q6_K    Type = 14
	Q8_K    Type = 15
	IQ2_XXS Type = 16
	IQ2_XS  Type = 17
	IQ3_XXS Type = 18
	IQ1_S   Type = 19
	IQ4_NL  Type = 20
	IQ3_S   Type = 21
	IQ2_S   Type = 22
	IQ4_XS  Type = 23
	I8      Type = 24
	I16     Type = 25
	I32     Type = 26
	I64     Type = 27
	F64     Type = 28
	IQ1_M   Type = 29
	BF16    Type = 30
	TQ1_0   Type = 34
	TQ2_0   Type = 35
	MXFP4   Type = 39
)

// QK_K is the number of elements in a k-quant super-block.
const QK_K = 256

// traits describes the storage of one type: how many elements one block
// holds and how many bytes that block takes.
type traits struct {
	name      string
	blockSize int
	typeSize  int
	supported bool
}

// table holds the traits of every type ggml defines, indexed by the type
// (an array: the lookups run for every tensor of every micro-batch).
var table = [...]traits{
	F32:     {"f32", 1, 4, true},
	F16:     {"f16", 1, 2, true},
	Q4_0:    {"q4_0", 32, 18, true},
	Q4_1:    {"q4_1", 32, 20, false},
	Q5_0:    {"q5_0", 32, 22, false},
	Q5_1:    {"q5_1", 32, 24, false},
	Q8_0:    {"q8_0", 32, 34, true},
	Q8_1:    {"q8_1", 32, 36, false},
	Q2_K:    {"q2_K", QK_K, 84, false},
	Q3_K:    {"q3_K", QK_K, 110, false},
	Q4_K:    {"q4_K", QK_K, 144, false},
	Q5_K:    {"q5_K", QK_K, 176, false},
	Q6_K:    {"q6_K", QK_K, 210, true},
	Q8_K:    {"q8_K", QK_K, 292, false},
	IQ2_XXS: {"iq2_xxs", QK_K, 66, false},
	IQ2_XS:  {"iq2_xs", QK_K, 74, false},
	IQ3_XXS: {"iq3_xxs", QK_K, 98, false},
	IQ1_S:   {"iq1_s", QK_K, 50, false},
	IQ4_NL:  {"iq4_nl", 32, 18, false},
	IQ3_S:   {"iq3_s", QK_K, 110, false},
	IQ2_S:   {"iq2_s", QK_K, 82, false},
	IQ4_XS:  {"iq4_xs", QK_K, 136, false},
	I8:      {"i8", 1, 1, false},
	I16:     {"i16", 1, 2, false},
	I32:     {"i32", 1, 4, false},
	I64:     {"i64", 1, 8, false},
	F64:     {"f64", 1, 8, false},
	IQ1_M:   {"iq1_m", QK_K, 56, false},
	BF16:    {"bf16", 1, 2, true},
	TQ1_0:   {"tq1_0", QK_K, 54, false},
	TQ2_0:   {"tq2_0", QK_K, 66, false},
	MXFP4:   {"mxfp4", 32, 17, false},
}

// lookup returns t's traits, ok false for a type ggml does not define.
func lookup(t Type) (tr traits, ok bool) {
	if uint64(t) < uint64(len(table)) && table[t].name != "" {
		return table[t], true
	}
	return traits{}, false
}

// Known reports whether t is a type ggml defines.
func (t Type) Known() bool { _, ok := lookup(t); return ok }

// Supported reports whether ocelot can convert and compute with t
// (F32, F16, BF16, Q4_0, Q8_0 and Q6_K).
func (t Type) Supported() bool { tr, _ := lookup(t); return tr.supported }

// SupportedTypes lists the types Supported accepts, in ggml's numbering.
func SupportedTypes() []Type {
	var out []Type
	for t, tr := range table {
		if tr.supported {
			out = append(out, Type(t))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// String returns the type's name as ggml spells it ("q4_0", "q6_K", "f16"),
// or "type(N)" for a number ggml does not define.
func (t Type) String() string {
	if tr, ok := lookup(t); ok {
		return tr.name
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// BlockSize is the number of elements in one block of t (1 for plain
// types), or 0 for an unknown type.
func (t Type) BlockSize() int { tr, _ := lookup(t); return tr.blockSize }

// TypeSize is the number of bytes in one block of t, or 0 for an unknown
// type.
func (t Type) TypeSize() int { tr, _ := lookup(t); return tr.typeSize }

// ParseType looks a type up by its ggml name, case-insensitively
// ("q4_0", "Q6_K", "f16").
func ParseType(name string) (Type, error) {
	for t, tr := range table {
		if tr.name != "" && equalFold(tr.name, name) {
			return Type(t), nil
		}
	}
	return 0, fmt.Errorf("quant: unknown tensor type %q", name)
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// RowSize returns the number of bytes that n elements of type t take.
// It fails for an unknown type, for n that is not a multiple of the block
// size, and for a size that would overflow int64.
func RowSize(t Type, n int64) (int64, error) {
	tr, ok := lookup(t)
	if !ok {
		return 0, fmt.Errorf("quant: unknown tensor type %d", uint32(t))
	}
	if n < 0 {
		return 0, fmt.Errorf("quant: negative element count %d for %s", n, tr.name)
	}
	if n%int64(tr.blockSize) != 0 {
		return 0, fmt.Errorf("quant: %d elements of %s is not a whole number of %d-element blocks", n, tr.name, tr.blockSize)
	}
	blocks := n / int64(tr.blockSize)
	const maxInt64 = 1<<63 - 1
	if blocks > maxInt64/int64(tr.typeSize) {
		return 0, fmt.Errorf("quant: %d elements of %s overflow a byte count", n, tr.name)
	}
	return blocks * int64(tr.typeSize), nil
}
