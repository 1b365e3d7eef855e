package model

import (
	"fmt"
	"strings"

	"github.com/ocelot-llm/ocelot/quant"
)

// WeightTypes are the tensor types a model's weights may have: the types
// package quant converts and computes with. Backends that hold weights
// declare the subset they take.
var WeightTypes = quant.SupportedTypes()

// KVTypes are the types a KV cache may hold, in the order -ctk/-ctv
// list them.
var KVTypes = []quant.Type{quant.F32, quant.F16, quant.Q8_0, quant.Q4_0}

// CheckKVType says whether t can be a KV cache type.
func CheckKVType(t quant.Type) error {
	if !HasType(KVTypes, t) {
		return fmt.Errorf("KV cache type %s is not supported (use %s)", t, typeList(KVTypes))
	}
	return nil
}

// HasType reports whether t is one of ts.
func HasType(ts []quant.Type, t quant.Type) bool {
	for _, x := range ts {
		if x == t {
			return true
		}
	}
	return false
}

// typeList spells types as "f32, f16, q8_0 or q4_0".
func typeList(ts []quant.Type) string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.String()
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// KVRowBytes is the size of one cache cell's K row and V row for a
// model: NEmbdKV elements of each type.
func KVRowBytes(c Config, typeK, typeV quant.Type) (k, v int64, err error) {
	if k, err = quant.RowSize(typeK, int64(c.NEmbdKV())); err != nil {
		return 0, 0, fmt.Errorf("K cache row of %d elements: %w", c.NEmbdKV(), err)
	}
	if v, err = quant.RowSize(typeV, int64(c.NEmbdKV())); err != nil {
		return 0, 0, fmt.Errorf("V cache row of %d elements: %w", c.NEmbdKV(), err)
	}
	return k, v, nil
}

// KVBytes is the memory a cache of nCtx cells takes for `layers` layers
// of a model.
func KVBytes(c Config, nCtx, layers int, typeK, typeV quant.Type) (int64, error) {
	rk, rv, err := KVRowBytes(c, typeK, typeV)
	if err != nil {
		return 0, err
	}
	cell, err := quant.AddSize(rk, rv)
	if err != nil {
		return 0, err
	}
	n, err := quant.MulSize(int64(layers), int64(nCtx), cell)
	if err != nil {
		return 0, fmt.Errorf("KV cache of %d cells × %d layers: %w", nCtx, layers, err)
	}
	return n, nil
}
