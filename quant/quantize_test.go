package quant

import (
	"bytes"
	"testing"
)

// Encode is Quantize into a buffer of the row's size.
func TestEncode(t *testing.T) {
	src := make([]float32, 64)
	for i := range src {
		src[i] = float32(i%7) - 3
	}
	for _, typ := range []Type{F32, F16, Q4_0, Q8_0} {
		got, err := Encode(typ, src)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := RowSize(typ, int64(len(src)))
		want := make([]byte, n)
		if err := Quantize(typ, want, src); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: Encode differs from Quantize", typ)
		}
	}
	if _, err := Encode(Q4_0, src[:33]); err == nil {
		t.Error("Encode took 33 values as Q4_0 blocks")
	}
}
