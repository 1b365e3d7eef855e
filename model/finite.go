package model

import (
	"fmt"
	"math"
)

// CheckFinite scans every weight matrix for a NaN or an infinity (for a
// quantized type, in its dequantized values, which a non-finite block
// scale makes non-finite) and names the first tensor and row holding
// one. The norm and RoPE vectors are checked by Load already. It reads
// every byte of the weights, so engines call it to explain non-finite
// logits rather than on every load.
func (m *Model) CheckFinite() error {
	ws := []*Weight{m.TokEmbd}
	for i := range m.Layers {
		l := &m.Layers[i]
		ws = append(ws, l.Wq, l.Wk, l.Wv, l.Wo, l.WGate, l.WUp, l.WDown)
	}
	if !m.Tied {
		ws = append(ws, m.Output)
	}
	for _, w := range ws {
		if err := w.checkFinite(); err != nil {
			return err
		}
	}
	return nil
}

func (w *Weight) checkFinite() error {
	row := make([]float32, w.Cols)
	for r := 0; r < w.Rows; r++ {
		if err := w.Row(r, row); err != nil {
			return fmt.Errorf("tensor %s: row %d: %w", w.Name, r, err)
		}
		for i, v := range row {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("tensor %s holds %v at row %d, element %d (a NaN or Inf weight or block scale in the file)", w.Name, v, r, i)
			}
		}
	}
	return nil
}
