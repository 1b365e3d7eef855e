package model

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/ocelot-llm/ocelot/quant"
)

// CheckFinite scans every weight matrix for a NaN or an infinity — in a
// plain type every value, in a block type every block's scale — and
// names the first tensor, row and element or block holding one. Load
// calls it (the norm and RoPE vectors are checked as they are read), so
// a model never computes with a broken file's NaN. It reads the whole of
// every plain-typed weight and one scale of every block, on all cores.
func (m *Model) CheckFinite() error {
	ws := []*Weight{m.TokEmbd}
	for i := range m.Layers {
		l := &m.Layers[i]
		ws = append(ws, l.Wq, l.Wk, l.Wv, l.Wo, l.WGate, l.WUp, l.WDown)
	}
	if !m.Tied {
		ws = append(ws, m.Output)
	}
	// Work in pieces of about 4 MiB, so that big tensors spread over the
	// cores; the first bad piece in file order is reported.
	type piece struct {
		w      *Weight
		r0, r1 int
	}
	var pieces []piece
	for _, w := range ws {
		step := max(1, (4<<20)/max(1, w.RowBytes))
		for r := 0; r < w.Rows; r += step {
			pieces = append(pieces, piece{w, r, min(r+step, w.Rows)})
		}
	}
	errs := make([]error, len(pieces))
	var next sync.Mutex
	i := 0
	var wg sync.WaitGroup
	for range min(runtime.NumCPU(), len(pieces)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				next.Lock()
				j := i
				i++
				next.Unlock()
				if j >= len(pieces) {
					return
				}
				errs[j] = pieces[j].w.checkRows(pieces[j].r0, pieces[j].r1)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// checkRows checks rows [r0, r1) of w.
func (w *Weight) checkRows(r0, r1 int) error {
	for r := r0; r < r1; r++ {
		k, err := quant.FirstNonFinite(w.Type, w.Data[r*w.RowBytes:(r+1)*w.RowBytes])
		if err != nil {
			return fmt.Errorf("model: tensor %s: row %d: %w", w.Name, r, err)
		}
		if k >= 0 {
			what := "element"
			if w.Type.BlockSize() > 1 {
				what = "the scale of block"
			}
			return fmt.Errorf("model: tensor %s holds a NaN or Inf at row %d, %s %d", w.Name, r, what, k)
		}
	}
	return nil
}
