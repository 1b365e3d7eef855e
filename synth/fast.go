package synth

import (
	"io"
	"sync"

	"github.com/ocelot-llm/ocelot/quant"
)

// poolElems is the number of values in one pool of ready-made blocks.
const poolElems = 1 << 22

// pool is a run of valid blocks of one type, made by quantizing random
// values of one standard deviation. Fast models tile their tensors with
// pieces of it taken at random offsets.
type pool struct {
	typ       quant.Type
	blocks    int64
	blockSize int64 // bytes per block
	data      []byte
	err       error
}

type poolKey struct {
	typ quant.Type
	std float32
}

type poolCache struct {
	mu    sync.Mutex
	pools map[poolKey]*pool
}

func newPoolCache() *poolCache { return &poolCache{pools: map[poolKey]*pool{}} }

// get returns the pool for a type and standard deviation, making it on
// first use.
func (c *poolCache) get(t quant.Type, std float32, seed uint64) *pool {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := poolKey{t, std}
	if p, ok := c.pools[k]; ok {
		return p
	}
	p := &pool{typ: t, blockSize: int64(t.TypeSize())}
	p.blocks = poolElems / int64(t.BlockSize())
	n, err := quant.RowSize(t, poolElems)
	if err == nil {
		v := make([]float32, poolElems)
		r := newRNG(hashString(seed, t.String()) ^ uint64(std*1e6))
		for i := range v {
			v[i] = std * r.normal()
		}
		p.data = make([]byte, n)
		err = quant.Quantize(t, p.data, v)
	}
	p.err = err
	c.pools[k] = p
	return p
}

// fillFast writes t's bytes as runs of pool blocks taken at seeded random
// offsets.
func fillFast(out io.Writer, t tensorPlan, seed uint64, p *pool) error {
	if p.err != nil {
		return p.err
	}
	elems := int64(1)
	for _, d := range t.shape {
		elems *= d
	}
	total := elems / int64(t.typ.BlockSize())
	r := newRNG(seed)
	const run = 4096 // blocks per copied run
	for done := int64(0); done < total; {
		n := min(int64(run), total-done)
		off := int64(r.next() % uint64(p.blocks-n+1))
		if _, err := out.Write(p.data[off*p.blockSize : (off+n)*p.blockSize]); err != nil {
			return err
		}
		done += n
	}
	return nil
}
