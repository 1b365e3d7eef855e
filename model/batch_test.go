package model

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ocelot-llm/ocelot/quant"
)

func TestUbatches(t *testing.T) {
	tokens := make([]int32, 10)
	for i := range tokens {
		tokens[i] = int32(i)
	}
	tests := []struct {
		nBatch, nUbatch int
		all             bool
		want            string // micro-batch lengths and the logits each asks for
	}{
		{16, 16, false, "10L"},
		{4, 4, false, "4N 4N 2L"},
		{4, 3, false, "3N 1N 3N 1N 2L"},
		{8, 3, true, "3A 3A 2A 2A"},
	}
	for _, tc := range tests {
		var got []string
		err := Ubatches(context.Background(), tokens, tc.nBatch, tc.nUbatch, tc.all, func(ub []int32, want Logits) error {
			got = append(got, fmt.Sprintf("%d%c", len(ub), "NLA"[want]))
			return nil
		})
		if err != nil || strings.Join(got, " ") != tc.want {
			t.Errorf("b=%d ub=%d all=%v: %v (err %v), want %s", tc.nBatch, tc.nUbatch, tc.all, got, err, tc.want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := Ubatches(ctx, tokens, 2, 2, false, func([]int32, Logits) error {
		calls++
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Errorf("cancelled: %d calls, err %v", calls, err)
	}
}

func TestKVTypesAndBytes(t *testing.T) {
	for _, typ := range KVTypes {
		if err := CheckKVType(typ); err != nil {
			t.Errorf("%s: %v", typ, err)
		}
	}
	if err := CheckKVType(quant.Q6_K); err == nil || !strings.Contains(err.Error(), "f32, f16, q8_0 or q4_0") {
		t.Errorf("q6_K: %v", err)
	}
	c := Config{NLayer: 2, NHeadKV: 2, HeadDim: 64} // rows of 128
	n, err := KVBytes(c, 10, 2, quant.F16, quant.Q8_0)
	if want := int64(2 * 10 * (128*2 + 4*34)); err != nil || n != want {
		t.Errorf("KVBytes = %d, %v; want %d", n, err, want)
	}
	if _, err := KVBytes(Config{NHeadKV: 1, HeadDim: 48}, 1, 1, quant.Q8_0, quant.F16); err == nil {
		t.Error("a q8_0 row of 48 elements was accepted")
	}
	for _, w := range WeightTypes {
		if !w.Supported() {
			t.Errorf("weight type %s is not one quant computes with", w)
		}
	}
}
