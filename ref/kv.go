package ref

import (
	"fmt"

	"github.com/ocelot-llm/ocelot/model"
	"github.com/ocelot-llm/ocelot/quant"
)

// KVCache holds the keys and values of every position seen so far: NCtx
// cells per layer, each one row of NEmbdKV elements of TypeK or TypeV.
// Rows are quantized on write, exactly as the SET_ROWS op does, and
// dequantized on read.
type KVCache struct {
	TypeK, TypeV quant.Type
	NCtx         int
	width        int      // elements per row (NEmbdKV)
	rowK, rowV   int      // bytes per row
	k, v         [][]byte // per layer, NCtx rows
}

// NewKVCache makes an empty cache of nCtx cells for the model.
func NewKVCache(c model.Config, nCtx int, typeK, typeV quant.Type) (*KVCache, error) {
	if nCtx <= 0 {
		return nil, fmt.Errorf("ref: n_ctx must be positive, got %d", nCtx)
	}
	for _, t := range []quant.Type{typeK, typeV} {
		if err := model.CheckKVType(t); err != nil {
			return nil, fmt.Errorf("ref: %w", err)
		}
	}
	rk, rv, err := model.KVRowBytes(c, typeK, typeV)
	if err != nil {
		return nil, fmt.Errorf("ref: %w", err)
	}
	kv := &KVCache{TypeK: typeK, TypeV: typeV, NCtx: nCtx, width: c.NEmbdKV(), rowK: int(rk), rowV: int(rv)}
	nk, err := quant.MulSize(int64(nCtx), rk)
	if err != nil {
		return nil, fmt.Errorf("ref: K cache: %w", err)
	}
	nv, err := quant.MulSize(int64(nCtx), rv)
	if err != nil {
		return nil, fmt.Errorf("ref: V cache: %w", err)
	}
	for l := 0; l < c.NLayer; l++ {
		kv.k = append(kv.k, make([]byte, nk))
		kv.v = append(kv.v, make([]byte, nv))
	}
	return kv, nil
}

// Put quantizes one position's K and V rows into cell `cell` of layer l.
func (kv *KVCache) Put(l, cell int, k, v []float32) error {
	if err := quant.Quantize(kv.TypeK, kv.k[l][cell*kv.rowK:(cell+1)*kv.rowK], k); err != nil {
		return fmt.Errorf("ref: K cache write: %w", err)
	}
	if err := quant.Quantize(kv.TypeV, kv.v[l][cell*kv.rowV:(cell+1)*kv.rowV], v); err != nil {
		return fmt.Errorf("ref: V cache write: %w", err)
	}
	return nil
}

// Get dequantizes cells [0, n) of layer l into k and v (n rows each).
func (kv *KVCache) Get(l, n int, k, v []float32) error {
	if err := quant.Dequantize(kv.TypeK, k[:n*kv.width], kv.k[l][:n*kv.rowK]); err != nil {
		return fmt.Errorf("ref: K cache read: %w", err)
	}
	if err := quant.Dequantize(kv.TypeV, v[:n*kv.width], kv.v[l][:n*kv.rowV]); err != nil {
		return fmt.Errorf("ref: V cache read: %w", err)
	}
	return nil
}

// Cells returns the bytes of cells [0, n) of layer l's K and V caches, in
// place (rows of the cache types, one after another), for saving and
// copying a sequence's state.
func (kv *KVCache) Cells(l, n int) (k, v []byte) {
	return kv.k[l][:n*kv.rowK], kv.v[l][:n*kv.rowV]
}
