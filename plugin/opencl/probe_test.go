package opencl

import (
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/ocelot-llm/ocelot/quant"
)

// mmaProbe runs one mma.sync.m16n8k16 (f16 inputs, f32 accumulators) on
// one warp, from fragments packed on the host per the PTX ISA's layouts.
const mmaProbe = `
kernel void probe(global const uint* A, global const uint* B, global float* D) {
	uint lane = get_local_id(0);
	float d0, d1, d2, d3;
	float c0 = D[lane * 4u], c1 = D[lane * 4u + 1u], c2 = D[lane * 4u + 2u], c3 = D[lane * 4u + 3u];
	asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};"
		: "=f"(d0), "=f"(d1), "=f"(d2), "=f"(d3)
		: "r"(A[lane * 4u]), "r"(A[lane * 4u + 1u]), "r"(A[lane * 4u + 2u]), "r"(A[lane * 4u + 3u]),
		  "r"(B[lane * 2u]), "r"(B[lane * 2u + 1u]), "f"(c0), "f"(c1), "f"(c2), "f"(c3));
	D[lane * 4u] = d0;
	D[lane * 4u + 1u] = d1;
	D[lane * 4u + 2u] = d2;
	D[lane * 4u + 3u] = d3;
}
`

// TestMMAProbe checks, on NVIDIA GPUs with tensor cores, that inline
// mma.sync runs and that the fragment layouts the tensor-core GEMM uses
// are the hardware's: D = A·B + C on one warp against the CPU.
func TestMMAProbe(t *testing.T) {
	b := testBackend(t)
	if !b.info.InlinePTX || b.info.NVComputeMajor < 8 {
		t.Skip("not an NVIDIA GPU with mma.sync (compute capability 8.0)")
	}
	rng := rand.New(rand.NewPCG(12, 1))
	var a [16][16]uint16
	var bm [16][8]uint16
	var c [16][8]float32
	for i := range a {
		for k := range a[i] {
			a[i][k] = quant.Float32ToFP16(float32(rng.IntN(9) - 4))
		}
	}
	for k := range bm {
		for j := range bm[k] {
			bm[k][j] = quant.Float32ToFP16(float32(rng.IntN(9) - 4))
		}
	}
	for i := range c {
		for j := range c[i] {
			c[i][j] = float32(rng.IntN(5))
		}
	}
	pack := func(lo, hi uint16) uint32 { return uint32(lo) | uint32(hi)<<16 }
	A := make([]uint32, 32*4)
	B := make([]uint32, 32*2)
	D := make([]float32, 32*4)
	for lane := 0; lane < 32; lane++ {
		g, tq := lane>>2, lane&3
		A[lane*4+0] = pack(a[g][2*tq], a[g][2*tq+1])
		A[lane*4+1] = pack(a[g+8][2*tq], a[g+8][2*tq+1])
		A[lane*4+2] = pack(a[g][2*tq+8], a[g][2*tq+9])
		A[lane*4+3] = pack(a[g+8][2*tq+8], a[g+8][2*tq+9])
		B[lane*2+0] = pack(bm[2*tq][g], bm[2*tq+1][g])
		B[lane*2+1] = pack(bm[2*tq+8][g], bm[2*tq+9][g])
		for e := 0; e < 4; e++ {
			D[lane*4+e] = c[g+8*(e>>1)][2*tq+(e&1)]
		}
	}
	ctx, err := b.a.newContext(b.info.id)
	if err != nil {
		t.Fatal(err)
	}
	defer b.a.freeContext(ctx)
	q, err := b.a.newQueue(ctx, b.info.id, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.a.freeQueue(q)
	res, err := buildProgram(b.a, ctx, &b.info, mmaProbe, "-cl-std=CL1.2", "")
	if err != nil {
		t.Fatalf("inline mma.sync does not build: %v", err)
	}
	defer b.a.freeProgram(res.prog)
	k, err := b.a.newKernel(res.prog, "probe")
	if err != nil {
		t.Fatal(err)
	}
	defer b.a.freeKernel(k)
	var mems []clMem
	for _, s := range []struct {
		p unsafe.Pointer
		n int64
	}{{unsafe.Pointer(&A[0]), 4 * 128}, {unsafe.Pointer(&B[0]), 4 * 64}, {unsafe.Pointer(&D[0]), 4 * 128}} {
		m, err := b.a.newBuffer(ctx, s.n, "probe")
		if err != nil {
			t.Fatal(err)
		}
		defer b.a.freeBuffer(m)
		if err := b.a.write(q, m, "probe", true, 0, s.p, s.n, nil); err != nil {
			t.Fatal(err)
		}
		mems = append(mems, m)
	}
	for i, m := range mems {
		mm := m
		if err := b.a.setArg(k, "probe", uint32(i), unsafe.Sizeof(mm), unsafe.Pointer(&mm)); err != nil {
			t.Fatal(err)
		}
	}
	gws, lws := [3]uintptr{32, 1, 1}, [3]uintptr{32, 1, 1}
	if err := b.a.launch(q, k, "probe", 1, &gws, &lws, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.a.read(q, mems[2], "probe", true, 0, unsafe.Pointer(&D[0]), 4*128, nil); err != nil {
		t.Fatalf("mma.sync faults: %v", err)
	}
	bad := 0
	for lane := 0; lane < 32; lane++ {
		g, tq := lane>>2, lane&3
		for e := 0; e < 4; e++ {
			i, j := g+8*(e>>1), 2*tq+(e&1)
			want := c[i][j]
			for kk := 0; kk < 16; kk++ {
				want += quant.FP16ToFloat32(a[i][kk]) * quant.FP16ToFloat32(bm[kk][j])
			}
			if got := D[lane*4+e]; math.Abs(float64(got-want)) > 1e-3 {
				if bad < 5 {
					t.Errorf("lane %d, D[%d][%d] = %g, want %g", lane, i, j, got, want)
				}
				bad++
			}
		}
	}
	if bad == 0 {
		t.Logf("mma.sync.m16n8k16 on %s: all 128 outputs match the PTX fragment layouts", b.info.Name)
	}
}
