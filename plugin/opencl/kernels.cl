// ocelot's OpenCL kernels. OpenCL C 1.2, no extension required.
//
// Build options select variants (type variant and its options method, in
// program.go):
//   -DOCL_NVIDIA      NVIDIA: inline PTX (mul.rn/add.rn for bit-exact
//                     quantization, dp4a for the integer GEMV)
//   -DOCL_NV_MMA      NVIDIA tensor cores, f16 activations (mul_mm_tc_*)
//   -DOCL_NV_MMQ      NVIDIA integer tensor cores, Q8_0 activations (mul_mmq_*)
//   -DOCL_MMA_EMULATE tests: mma.sync emulated
//   -DOCL_SUBGROUPS_KHR, -DOCL_SUBGROUPS_INTEL
//                     reductions use sub_group_reduce_add/max
//                     (cl_khr_subgroups or cl_intel_subgroups)
// and set the tile sizes and other constants the host shares with the
// kernels (MV_R, MV_NT, MW_R, MM_TM, MM_TN, MM_TN64, ATT_DPT, FA_TQ, FA_TK, FA_DMAX,
// TC_BM, TC_BN, TC_LD, MQ_BM, MQ_BN, MQ_KB, MQ_LD: hostDefines in
// program.go, from the Go constants in backend.go). They have no default
// here: a build without one stops at an #error.
//
// Buffers are passed as (global uchar* base, ulong byte offset) pairs: the
// arena's intermediates live at planned offsets inside one buffer, and a
// weight's regions (quants, scales) at offsets inside its buffer.
//
// Weight layouts (the device layout, see layout.go), for B blocks:
//   f32, f16, bf16: the elements, row-major              (o0)
//   q4_0: qs[B][16] at o0, d[B] (f16 bits) at o1
//   q8_0: qs[B][32] at o0, d[B] (f16 bits) at o1
//   q6_K: ql[B][128] at o0, qh[B][64] at o1, scales[B][16] at o2, d[B] at o3
// KV caches use the same layouts (f32, f16, q8_0, q4_0), one row a cell.

#pragma OPENCL FP_CONTRACT OFF

#ifdef OCL_SUBGROUPS_KHR
#pragma OPENCL EXTENSION cl_khr_subgroups : enable
#define OCL_SUBGROUPS 1
#endif
#ifdef OCL_SUBGROUPS_INTEL
#pragma OPENCL EXTENSION cl_intel_subgroups : enable
#define OCL_SUBGROUPS 1
#endif

// FN marks helper functions: static, so no external definition is needed
// when a compiler does not inline them (OpenCL C 1.2 allows static).
#define FN static inline

#define GP(T, b, o) ((global T*)((global uchar*)(b) + (o)))

// Type codes: ggml's numbers.
#define T_F32 0
#define T_F16 1
#define T_Q4_0 2
#define T_Q8_0 8
#define T_Q6_K 14
#define T_BF16 30

// ---------------------------------------------------------------------------
// Exact arithmetic for the quantizers. The pragma above forbids fusing a
// product into an add, but NVIDIA's compiler fuses regardless; PTX
// instructions with an explicit rounding mode are never fused.

#ifdef OCL_NVIDIA
FN float mul_rn(float a, float b) {
	float r;
	asm("mul.rn.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
	return r;
}
FN float add_rn(float a, float b) {
	float r;
	asm("add.rn.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
	return r;
}
#else
FN float mul_rn(float a, float b) { return a * b; }
FN float add_rn(float a, float b) { return a + b; }
#endif

// div_rn is a/b correctly rounded (OpenCL's '/' may be 2.5 ulp off): it
// moves the quotient to the neighbour with the smaller exact remainder
// until neither neighbour is closer. A quotient of floats is never exactly
// half-way between two floats, so the nearest is unique.
FN float div_rn(float a, float b) {
	float q = a / b;
	if (!isfinite(q) || q == 0.0f) {
		return q;
	}
	for (int i = 0; i < 4; i++) {
		float up = nextafter(q, INFINITY), dn = nextafter(q, -INFINITY);
		float r = fabs(fma(-q, b, a));
		float ru = fabs(fma(-up, b, a)), rd = fabs(fma(-dn, b, a));
		if (ru < r) {
			q = up;
		} else if (rd < r) {
			q = dn;
		} else {
			break;
		}
	}
	return q;
}

// h2f converts IEEE half bits to float exactly (subnormals included, so a
// device that flushes float subnormals still gets every f16 value).
FN float h2f(uint h) {
	uint s = (h & 0x8000u) << 16;
	uint e = (h >> 10) & 0x1fu;
	uint m = h & 0x3ffu;
	if (e == 0u) {
		return as_float(s | as_uint((float)m * 5.9604644775390625e-8f));
	}
	if (e == 31u) {
		return as_float(s | 0x7f800000u | (m << 13) | (m != 0u ? 0x400000u : 0u));
	}
	return as_float(s | ((e + 112u) << 23) | (m << 13));
}

// f2h converts float to half bits, rounding to nearest even, exactly as
// quant.Float32ToFP16 (and ggml) do.
FN ushort f2h(float f) {
	uint b = as_uint(f);
	uint e8 = (b >> 23) & 0xffu;
	if (e8 - 113u < 30u) {
		uint v = (b & 0x7fffffffu) - (112u << 23);
		v = (v + 0x0fffu + ((v >> 13) & 1u)) >> 13;
		return (ushort)(((b >> 16) & 0x8000u) | v);
	}
	uint sign = (b >> 16) & 0x8000u;
	uint mant = b & 0x7fffffu;
	if (e8 == 0xffu) {
		return (ushort)(sign | (mant != 0u ? 0x7e00u : 0x7c00u));
	}
	if (e8 >= 143u || e8 == 0u) {
		return (ushort)(e8 == 0u ? sign : (sign | 0x7c00u));
	}
	uint m = mant | 0x800000u;
	uint shift = 126u - e8;
	if (shift > 24u) {
		return (ushort)sign;
	}
	uint h = m >> shift;
	uint rem = m & ((1u << shift) - 1u);
	uint half_ = 1u << (shift - 1u);
	if (rem > half_ || (rem == half_ && (h & 1u) != 0u)) {
		h++;
	}
	return (ushort)(sign | h);
}

FN float bf2f(uint h) { return as_float(h << 16); }

// ---------------------------------------------------------------------------
// Work-group reductions. Without sub-groups: a tree in local memory, for a
// power-of-two work-group size. red holds get_local_size(0) floats.

FN float wg_sum(float v, local float* red) {
#ifdef OCL_SUBGROUPS
	v = sub_group_reduce_add(v);
	uint ns = get_num_sub_groups();
	if (ns == 1u) {
		return v;
	}
	if (get_sub_group_local_id() == 0u) {
		red[get_sub_group_id()] = v;
	}
	barrier(CLK_LOCAL_MEM_FENCE);
	float s = 0.0f;
	for (uint i = 0; i < ns; i++) {
		s += red[i];
	}
	barrier(CLK_LOCAL_MEM_FENCE);
	return s;
#else
	uint lid = get_local_id(0);
	red[lid] = v;
	barrier(CLK_LOCAL_MEM_FENCE);
	for (uint s = get_local_size(0) / 2; s > 0u; s >>= 1) {
		if (lid < s) {
			red[lid] += red[lid + s];
		}
		barrier(CLK_LOCAL_MEM_FENCE);
	}
	float r = red[0];
	barrier(CLK_LOCAL_MEM_FENCE);
	return r;
#endif
}

FN float wg_max(float v, local float* red) {
#ifdef OCL_SUBGROUPS
	v = sub_group_reduce_max(v);
	uint ns = get_num_sub_groups();
	if (ns == 1u) {
		return v;
	}
	if (get_sub_group_local_id() == 0u) {
		red[get_sub_group_id()] = v;
	}
	barrier(CLK_LOCAL_MEM_FENCE);
	float s = -INFINITY;
	for (uint i = 0; i < ns; i++) {
		s = fmax(s, red[i]);
	}
	barrier(CLK_LOCAL_MEM_FENCE);
	return s;
#else
	uint lid = get_local_id(0);
	red[lid] = v;
	barrier(CLK_LOCAL_MEM_FENCE);
	for (uint s = get_local_size(0) / 2; s > 0u; s >>= 1) {
		if (lid < s) {
			red[lid] = fmax(red[lid], red[lid + s]);
		}
		barrier(CLK_LOCAL_MEM_FENCE);
	}
	float r = red[0];
	barrier(CLK_LOCAL_MEM_FENCE);
	return r;
#endif
}

// ---------------------------------------------------------------------------
// Weight chunks: 32 consecutive elements of a row, dequantized into
// v[0..7] (4 each). For float types a chunk past the row's end is padded
// with zeros; quantized rows are whole blocks.

FN void chunk_f32(global const uchar* w, ulong o0, uint row, uint K, uint c, float4* v) {
	global const float* p = GP(const float, w, o0) + (size_t)row * K + c * 32u;
	if (c * 32u + 32u <= K) {
		for (int i = 0; i < 8; i++) {
			v[i] = vload4(i, p);
		}
	} else {
		float* f = (float*)v;
		uint n = K - c * 32u;
		for (uint i = 0; i < 32u; i++) {
			f[i] = i < n ? p[i] : 0.0f;
		}
	}
}

FN void chunk_f16(global const uchar* w, ulong o0, uint row, uint K, uint c, float4* v) {
	global const half* p = GP(const half, w, o0) + (size_t)row * K + c * 32u;
	if (c * 32u + 32u <= K) {
		for (int i = 0; i < 8; i++) {
			v[i] = vload_half4(i, p);
		}
	} else {
		float* f = (float*)v;
		uint n = K - c * 32u;
		for (uint i = 0; i < 32u; i++) {
			f[i] = i < n ? vload_half(i, p) : 0.0f;
		}
	}
}

FN void chunk_bf16(global const uchar* w, ulong o0, uint row, uint K, uint c, float4* v) {
	global const ushort* p = GP(const ushort, w, o0) + (size_t)row * K + c * 32u;
	if (c * 32u + 32u <= K) {
		for (int i = 0; i < 8; i++) {
			uint4 u = convert_uint4(vload4(i, p));
			v[i] = as_float4(u << 16);
		}
	} else {
		float* f = (float*)v;
		uint n = K - c * 32u;
		for (uint i = 0; i < 32u; i++) {
			f[i] = i < n ? bf2f(p[i]) : 0.0f;
		}
	}
}

FN void chunk_q4_0(global const uchar* w, ulong o0, ulong o1, uint row, uint K, uint c, float4* v) {
	size_t b = (size_t)row * (K / 32u) + c;
	float d = h2f(GP(const ushort, w, o1)[b]);
	uchar16 q = vload16(0, w + o0 + b * 16u);
	float16 lo = convert_float16(convert_int16(q & (uchar16)(0x0f)) - 8);
	float16 hi = convert_float16(convert_int16(q >> (uchar16)(4)) - 8);
	v[0] = lo.s0123 * d;
	v[1] = lo.s4567 * d;
	v[2] = lo.s89ab * d;
	v[3] = lo.scdef * d;
	v[4] = hi.s0123 * d;
	v[5] = hi.s4567 * d;
	v[6] = hi.s89ab * d;
	v[7] = hi.scdef * d;
}

FN void chunk_q8_0(global const uchar* w, ulong o0, ulong o1, uint row, uint K, uint c, float4* v) {
	size_t b = (size_t)row * (K / 32u) + c;
	float d = h2f(GP(const ushort, w, o1)[b]);
	global const char* q = GP(const char, w, o0) + b * 32u;
	float16 a = convert_float16(vload16(0, q));
	float16 e = convert_float16(vload16(1, q));
	v[0] = a.s0123 * d;
	v[1] = a.s4567 * d;
	v[2] = a.s89ab * d;
	v[3] = a.scdef * d;
	v[4] = e.s0123 * d;
	v[5] = e.s4567 * d;
	v[6] = e.s89ab * d;
	v[7] = e.scdef * d;
}

// Q6_K: chunk c is 32 elements of super-block c/8; within the block, chunk
// j = c%8 lies in half h = j/4 at quarter jj = j%4 (see quant.BlockQ6_K).
FN void chunk_q6_K(global const uchar* w, ulong o0, ulong o1, ulong o2, ulong o3, uint row, uint K, uint c, float4* v) {
	size_t b = (size_t)row * (K / 256u) + c / 8u;
	uint j = c % 8u, h = j / 4u, jj = j % 4u;
	global const uchar* ql = w + o0 + b * 128u + 64u * h + (jj & 1u) * 32u;
	global const uchar* qh = w + o1 + b * 64u + 32u * h;
	global const char* sc = GP(const char, w, o2) + b * 16u + 8u * h + 2u * jj;
	float d = h2f(GP(const ushort, w, o3)[b]);
	float d0 = d * (float)sc[0], d1 = d * (float)sc[1];
	uchar sl = (jj >= 2u) ? 4 : 0, sh = (uchar)(2u * jj);
	uchar16 l0 = vload16(0, ql), l1 = vload16(1, ql);
	uchar16 h0 = vload16(0, qh), h1 = vload16(1, qh);
	int16 q0 = convert_int16(((l0 >> (uchar16)sl) & (uchar16)(0x0f)) | (((h0 >> (uchar16)sh) & (uchar16)(3)) << (uchar16)(4))) - 32;
	int16 q1 = convert_int16(((l1 >> (uchar16)sl) & (uchar16)(0x0f)) | (((h1 >> (uchar16)sh) & (uchar16)(3)) << (uchar16)(4))) - 32;
	float16 a = convert_float16(q0) * d0;
	float16 e = convert_float16(q1) * d1;
	v[0] = a.s0123;
	v[1] = a.s4567;
	v[2] = a.s89ab;
	v[3] = a.scdef;
	v[4] = e.s0123;
	v[5] = e.s4567;
	v[6] = e.s89ab;
	v[7] = e.scdef;
}

// chunk dispatches on the weight type; T is a constant in every caller,
// so the switch folds away.
FN void chunk(const int T, global const uchar* w, ulong o0, ulong o1, ulong o2, ulong o3, uint row, uint K, uint c, float4* v) {
	switch (T) {
	case T_F32:
		chunk_f32(w, o0, row, K, c, v);
		break;
	case T_F16:
		chunk_f16(w, o0, row, K, c, v);
		break;
	case T_BF16:
		chunk_bf16(w, o0, row, K, c, v);
		break;
	case T_Q4_0:
		chunk_q4_0(w, o0, o1, row, K, c, v);
		break;
	case T_Q8_0:
		chunk_q8_0(w, o0, o1, row, K, c, v);
		break;
	case T_Q6_K:
		chunk_q6_K(w, o0, o1, o2, o3, row, K, c, v);
		break;
	}
}

// load_x32 reads elements [32c, 32c+32) of an f32 row of K, zero-padded.
FN void load_x32(global const float* x, uint K, uint c, float4* v) {
	global const float* p = x + c * 32u;
	if (c * 32u + 32u <= K) {
		for (int i = 0; i < 8; i++) {
			v[i] = vload4(i, p);
		}
	} else {
		float* f = (float*)v;
		uint n = K - c * 32u;
		for (uint i = 0; i < 32u; i++) {
			f[i] = i < n ? p[i] : 0.0f;
		}
	}
}

FN float dot32(const float4* a, const float4* b) {
	float4 s = a[0] * b[0];
	for (int i = 1; i < 8; i++) {
		s = fma(a[i], b[i], s);
	}
	return (s.x + s.y) + (s.z + s.w);
}

// ---------------------------------------------------------------------------
// GET_ROWS: dst[t] = row ids[t] of the table, dequantized. Global size
// (chunks per row, n); one work-item per 32-element chunk.

FN void get_rows(const int T, global const uchar* w, ulong o0, ulong o1, ulong o2, ulong o3,
		global const uchar* ib, ulong io, global uchar* db, ulong dof, uint W, uint N) {
	uint c = get_global_id(0), t = get_global_id(1);
	if (t >= N || c * 32u >= W) {
		return;
	}
	uint row = (uint)GP(const int, ib, io)[t];
	float4 v[8];
	chunk(T, w, o0, o1, o2, o3, row, W, c, v);
	global float* d = GP(float, db, dof) + (size_t)t * W + c * 32u;
	if (c * 32u + 32u <= W) {
		for (int i = 0; i < 8; i++) {
			vstore4(v[i], i, d);
		}
	} else {
		float* f = (float*)v;
		uint n = W - c * 32u;
		for (uint i = 0; i < n; i++) {
			d[i] = f[i];
		}
	}
}

#define GET_ROWS_ARGS global const uchar *w, ulong o0, ulong o1, ulong o2, ulong o3, global const uchar *ib, ulong io, global uchar *db, ulong dof, uint W, uint N
#define GET_ROWS_PASS w, o0, o1, o2, o3, ib, io, db, dof, W, N
kernel void get_rows_f32(GET_ROWS_ARGS) { get_rows(T_F32, GET_ROWS_PASS); }
kernel void get_rows_f16(GET_ROWS_ARGS) { get_rows(T_F16, GET_ROWS_PASS); }
kernel void get_rows_bf16(GET_ROWS_ARGS) { get_rows(T_BF16, GET_ROWS_PASS); }
kernel void get_rows_q4_0(GET_ROWS_ARGS) { get_rows(T_Q4_0, GET_ROWS_PASS); }
kernel void get_rows_q8_0(GET_ROWS_ARGS) { get_rows(T_Q8_0, GET_ROWS_PASS); }
kernel void get_rows_q6_K(GET_ROWS_ARGS) { get_rows(T_Q6_K, GET_ROWS_PASS); }

// ---------------------------------------------------------------------------
// MUL_MAT, decode (and batches below the GEMM's threshold): a GEMV built
// for memory bandwidth. A row is cut into pieces of 8 elements (K/8 of
// them, the last one zero-padded for float types): elements e0..e0+3 and
// e1..e1+3, chosen per type so that consecutive pieces are consecutive
// bytes of the weights (Q4_0: one 32-bit word of quants, low nibbles at
// e0, high at e1 = e0+16; Q6_K: one word of ql and one of qh, two
// quarters of a half super-block) and of the activations.
//
// A "unit" of S work-items (lanes) computes MV_R consecutive rows: lane i
// takes pieces i, i+S, ...; it loads each piece of its MV_R rows once,
// reads the activations of the piece once per token (float4 loads,
// coalesced across lanes) and reuses them for the MV_R rows, accumulating
// MV_R x MV_NT sums in registers. The units' partial sums are then
// reduced in local memory (a tree, S a power of two). A work-group holds
// G units. Tokens come MV_NT at a time, so each weight piece is loaded
// once for up to MV_NT tokens. Local size (S, G); global size
// (S, ceil(M/MV_R)) rounded up to whole groups; red holds
// S*G*MV_R*min(N, NT) floats.

#ifndef MV_R // rows per unit
#error MV_R must be set by the host (hostDefines in program.go)
#endif
#ifndef MV_NT // tokens per pass
#error MV_NT must be set by the host (hostDefines in program.go)
#endif

// mv_pos gives the elements of piece p of a row (same for every row).
FN void mv_pos(const int T, uint p, uint* e0, uint* e1) {
	switch (T) {
	case T_Q4_0:
		*e0 = (p / 4u) * 32u + 4u * (p % 4u);
		*e1 = *e0 + 16u;
		break;
	case T_Q6_K: {
		uint r = p % 32u, h = r / 16u, s = r % 16u;
		*e0 = (p / 32u) * 256u + 128u * h + 32u * (s / 8u) + 4u * (s % 8u);
		*e1 = *e0 + 64u;
		break;
	}
	default:
		*e0 = 8u * p;
		*e1 = 8u * p + 4u;
		break;
	}
}

// ub4 is the four bytes of q (little-endian) as floats minus bias,
// through the exponent trick (2^23 + byte is exact) instead of integer
// conversions, which run at a quarter of the float rate on some GPUs.
FN float4 ub4(uint q, float bias) {
	uint4 v = ((uint4)(q, q >> 8, q >> 16, q >> 24) & (uint4)(0xffu)) | (uint4)(0x4b000000u);
	return as_float4(v) - (8388608.0f + bias);
}

// q6_piece loads piece p (see mv_pos) of a Q6_K row: lo and hi hold its
// two runs of four 6-bit quants, unsigned (the value is q - 32), one a
// byte, and *dl and *dh their scales (d times the sub-block's scale).
FN void q6_piece(global const uchar* w, ulong o0, ulong o1, ulong o2, ulong o3, uint row, uint K, uint p,
		uint* lo, uint* hi, float* dl, float* dh) {
	size_t b = (size_t)row * (K / 256u) + p / 32u;
	uint r = p % 32u, h = r / 16u, s = r % 16u, pr = s / 8u, l0 = 4u * (s % 8u);
	uint ql = GP(const uint, w, o0)[(b * 128u + 64u * h + 32u * pr + l0) / 4u];
	uint qh = GP(const uint, w, o1)[(b * 64u + 32u * h + l0) / 4u];
	global const char* sc = GP(const char, w, o2) + b * 16u + 8u * h + l0 / 16u + 2u * pr;
	float d = vload_half(b, GP(const half, w, o3));
	uint hl = (qh >> (2u * pr)) & 0x03030303u, hh = (qh >> (2u * pr + 4u)) & 0x03030303u;
	*lo = (ql & 0x0f0f0f0fu) | (hl << 4);
	*hi = ((ql >> 4) & 0x0f0f0f0fu) | (hh << 4);
	*dl = d * (float)sc[0];
	*dh = d * (float)sc[4];
}

// mv_piece loads piece p of a row: lo (at e0..) times *dl plus hi (at
// e1..) times *dh are its values; lo and hi are unscaled (exact small
// integers for the quantized types).
FN void mv_piece(const int T, global const uchar* w, ulong o0, ulong o1, ulong o2, ulong o3, uint row, uint K, uint p,
		float4* lo, float4* hi, float* dl, float* dh) {
	switch (T) {
	case T_F32:
	case T_F16:
	case T_BF16: {
		size_t base = (size_t)row * K;
		uint e = 8u * p;
		*dl = 1.0f;
		*dh = 1.0f;
		if (e + 8u <= K) {
			if (T == T_F32) {
				global const float* q = GP(const float, w, o0) + base + e;
				*lo = vload4(0, q);
				*hi = vload4(1, q);
			} else if (T == T_F16) {
				global const half* q = GP(const half, w, o0) + base + e;
				*lo = vload_half4(0, q);
				*hi = vload_half4(1, q);
			} else {
				global const ushort* q = GP(const ushort, w, o0) + base + e;
				*lo = as_float4(convert_uint4(vload4(0, q)) << 16);
				*hi = as_float4(convert_uint4(vload4(1, q)) << 16);
			}
		} else {
			float f[8];
			for (uint i = 0; i < 8u; i++) {
				float v = 0.0f;
				if (e + i < K) {
					if (T == T_F32) {
						v = GP(const float, w, o0)[base + e + i];
					} else if (T == T_F16) {
						v = vload_half(base + e + i, GP(const half, w, o0));
					} else {
						v = bf2f(GP(const ushort, w, o0)[base + e + i]);
					}
				}
				f[i] = v;
			}
			*lo = (float4)(f[0], f[1], f[2], f[3]);
			*hi = (float4)(f[4], f[5], f[6], f[7]);
		}
		break;
	}
	case T_Q4_0: {
		size_t b = (size_t)row * (K / 32u) + p / 4u;
		uint q = GP(const uint, w, o0)[b * 4u + p % 4u];
		float d = vload_half(b, GP(const half, w, o1));
		*lo = ub4(q & 0x0f0f0f0fu, 8.0f);
		*hi = ub4((q >> 4) & 0x0f0f0f0fu, 8.0f);
		*dl = d;
		*dh = d;
		break;
	}
	case T_Q8_0: {
		size_t b = (size_t)row * (K / 32u) + p / 4u;
		uint2 q = GP(const uint2, w, o0)[b * 4u + p % 4u];
		float d = vload_half(b, GP(const half, w, o1));
		*lo = ub4(q.x ^ 0x80808080u, 128.0f);
		*hi = ub4(q.y ^ 0x80808080u, 128.0f);
		*dl = d;
		*dh = d;
		break;
	}
	case T_Q6_K: {
		uint ql, qh;
		q6_piece(w, o0, o1, o2, o3, row, K, p, &ql, &qh, dl, dh);
		*lo = ub4(ql, 32.0f);
		*hi = ub4(qh, 32.0f);
		break;
	}
	}
}

// mv_x4 reads x[e..e+4) of an f32 row of K, zero-padded; al says that x
// and K allow aligned float4 loads.
FN float4 mv_x4(global const float* x, uint e, uint K, bool al) {
	if (e + 4u <= K) {
		return al ? *(global const float4*)(x + e) : vload4(0, x + e);
	}
	float f[4];
	for (uint i = 0; i < 4u; i++) {
		f[i] = e + i < K ? x[e + i] : 0.0f;
	}
	return (float4)(f[0], f[1], f[2], f[3]);
}

FN void mul_mv(const int T, const int NT, global const uchar* w, ulong o0, ulong o1, ulong o2, ulong o3,
		global const uchar* xb, ulong xo, global uchar* yb, ulong yo, uint K, uint M, uint N, local float* red) {
	uint lane = get_local_id(0), S = get_local_size(0);
	uint unit = get_local_id(1);
	uint row0 = (uint)get_global_id(1) * MV_R;
	uint np = (K + 7u) / 8u;
	uint nr = row0 < M ? min((uint)MV_R, M - row0) : 0u;
	bool al = (xo & 15ul) == 0ul && (K & 3u) == 0u;
	global const float* xs = GP(const float, xb, xo);
	global float* y = GP(float, yb, yo);
	uint ntmax = min((uint)NT, N);
	local float* rd = red + unit * (MV_R * ntmax) * S;
	for (uint t0 = 0; t0 < N; t0 += (uint)NT) {
		uint nt = min((uint)NT, N - t0);
		float acc[MV_R][MV_NT];
		for (int r = 0; r < MV_R; r++) {
			for (int t = 0; t < MV_NT; t++) {
				acc[r][t] = 0.0f;
			}
		}
		uint pend = nr > 0u ? np : 0u;
		for (uint p = lane; p < pend; p += S) {
			float4 wl[MV_R], wh[MV_R];
			float dl[MV_R], dh[MV_R];
			uint e0, e1;
			mv_pos(T, p, &e0, &e1);
			for (int r = 0; r < MV_R; r++) {
				if ((uint)r < nr) {
					mv_piece(T, w, o0, o1, o2, o3, row0 + (uint)r, K, p, &wl[r], &wh[r], &dl[r], &dh[r]);
				} else {
					wl[r] = (float4)(0.0f);
					wh[r] = (float4)(0.0f);
					dl[r] = 0.0f;
					dh[r] = 0.0f;
				}
				if (NT > 1) {
					// Scale once for all the tokens.
					wl[r] *= dl[r];
					wh[r] *= dh[r];
				}
			}
			for (int t = 0; t < NT; t++) {
				if ((uint)t < nt) {
					global const float* x = xs + (size_t)(t0 + (uint)t) * K;
					float4 xl = mv_x4(x, e0, K, al), xh = mv_x4(x, e1, K, al);
					for (int r = 0; r < MV_R; r++) {
						if (NT > 1) {
							acc[r][t] += dot(wl[r], xl) + dot(wh[r], xh);
						} else {
							acc[r][t] += dl[r] * dot(wl[r], xl) + dh[r] * dot(wh[r], xh);
						}
					}
				}
			}
		}
		// Reduce the V = nt*MV_R sums of the unit over its S lanes.
		uint V = nt * MV_R;
		for (int t = 0; t < NT; t++) {
			if ((uint)t < nt) {
				for (int r = 0; r < MV_R; r++) {
					rd[((uint)t * MV_R + (uint)r) * S + lane] = acc[r][t];
				}
			}
		}
		barrier(CLK_LOCAL_MEM_FENCE);
		for (uint s = S / 2u; s > 0u; s >>= 1) {
			for (uint i = lane; i < V * s; i += S) {
				uint v = i / s, l = i % s;
				rd[v * S + l] += rd[v * S + l + s];
			}
			barrier(CLK_LOCAL_MEM_FENCE);
		}
		for (uint v = lane; v < V; v += S) {
			uint t = v / MV_R, r = v % MV_R;
			if (r < nr) {
				y[(size_t)(t0 + t) * M + row0 + r] = rd[v * S];
			}
		}
		barrier(CLK_LOCAL_MEM_FENCE);
	}
}

#define MM_ARGS global const uchar *w, ulong o0, ulong o1, ulong o2, ulong o3, global const uchar *xb, ulong xo, global uchar *yb, ulong yo, uint K, uint M, uint N
#define MM_PASS w, o0, o1, o2, o3, xb, xo, yb, yo, K, M, N
// mul_mv1_* serve one token (decode), mul_mv_* up to MV_NT per pass.
kernel void mul_mv1_f32(MM_ARGS, local float* red) { mul_mv(T_F32, 1, MM_PASS, red); }
kernel void mul_mv1_f16(MM_ARGS, local float* red) { mul_mv(T_F16, 1, MM_PASS, red); }
kernel void mul_mv1_bf16(MM_ARGS, local float* red) { mul_mv(T_BF16, 1, MM_PASS, red); }
kernel void mul_mv1_q4_0(MM_ARGS, local float* red) { mul_mv(T_Q4_0, 1, MM_PASS, red); }
kernel void mul_mv1_q8_0(MM_ARGS, local float* red) { mul_mv(T_Q8_0, 1, MM_PASS, red); }
kernel void mul_mv1_q6_K(MM_ARGS, local float* red) { mul_mv(T_Q6_K, 1, MM_PASS, red); }
kernel void mul_mv_f32(MM_ARGS, local float* red) { mul_mv(T_F32, MV_NT, MM_PASS, red); }
kernel void mul_mv_f16(MM_ARGS, local float* red) { mul_mv(T_F16, MV_NT, MM_PASS, red); }
kernel void mul_mv_bf16(MM_ARGS, local float* red) { mul_mv(T_BF16, MV_NT, MM_PASS, red); }
kernel void mul_mv_q4_0(MM_ARGS, local float* red) { mul_mv(T_Q4_0, MV_NT, MM_PASS, red); }
kernel void mul_mv_q8_0(MM_ARGS, local float* red) { mul_mv(T_Q8_0, MV_NT, MM_PASS, red); }
kernel void mul_mv_q6_K(MM_ARGS, local float* red) { mul_mv(T_Q6_K, MV_NT, MM_PASS, red); }

// ---------------------------------------------------------------------------
// MUL_MAT in the shape of a CPU ("vr", vector rows): one work-item per R
// rows and NT tokens at a time walks whole rows 32 elements at a time with
// vector arithmetic, no local memory and no barriers. On a CPU device
// (PoCL and the like) that is what its compiler vectorizes well; on a GPU
// the work-items' loads do not coalesce. The tuner (tune.go) measures it
// against the other products on the device and decides. Global size
// ceil(M/R) rounded up to the local size; any local size works. R <=
// VR_RMAX and NT <= VR_TMAX are constants in every caller, so the loops
// over them unroll and the accumulators stay in registers.
#define VR_RMAX 4
#define VR_TMAX 4
FN void mul_vr(const int T, const int R, const int NT, global const uchar* w, ulong o0, ulong o1, ulong o2, ulong o3,
		global const uchar* xb, ulong xo, global uchar* yb, ulong yo, uint K, uint M, uint N) {
	uint row0 = (uint)get_global_id(0) * (uint)R;
	if (row0 >= M) {
		return;
	}
	uint nr = min((uint)R, M - row0);
	uint nc = (K + 31u) / 32u;
	global const float* xs = GP(const float, xb, xo);
	global float* y = GP(float, yb, yo);
	for (uint t0 = 0; t0 < N; t0 += (uint)NT) {
		uint nt = min((uint)NT, N - t0);
		float8 acc[VR_RMAX][VR_TMAX];
		for (int r = 0; r < R; r++) {
			for (int t = 0; t < NT; t++) {
				acc[r][t] = (float8)(0.0f);
			}
		}
		for (uint c = 0; c < nc; c++) {
			float4 wv[VR_RMAX][8];
			for (int r = 0; r < R; r++) {
				// Rows past M repeat the last one; their sums are dropped.
				chunk(T, w, o0, o1, o2, o3, min(row0 + (uint)r, M - 1u), K, c, wv[r]);
			}
			for (int t = 0; t < NT; t++) {
				if (NT == 1 || (uint)t < nt) {
					float4 xv[8];
					load_x32(xs + (size_t)(t0 + (uint)t) * K, K, c, xv);
					for (int r = 0; r < R; r++) {
						for (int i = 0; i < 8; i += 2) {
							acc[r][t] = fma((float8)(wv[r][i], wv[r][i + 1]), (float8)(xv[i], xv[i + 1]), acc[r][t]);
						}
					}
				}
			}
		}
		for (int t = 0; t < NT; t++) {
			for (int r = 0; r < R; r++) {
				if ((uint)t < nt && (uint)r < nr) {
					float4 s = acc[r][t].lo + acc[r][t].hi;
					y[(size_t)(t0 + (uint)t) * M + row0 + (uint)r] = (s.x + s.y) + (s.z + s.w);
				}
			}
		}
	}
}

// vr_chunk loads chunk c (32 elements) of a row of a quantized type as
// two halves of 16 unscaled values, *a and *e, with their scales *da and
// *de (see chunk_q4_0, chunk_q8_0, chunk_q6_K for the layouts).
FN void vr_chunk(const int T, global const uchar* w, ulong o0, ulong o1, ulong o2, ulong o3, uint row, uint K, uint c,
		float16* a, float16* e, float* da, float* de) {
	switch (T) {
	case T_Q4_0: {
		size_t b = (size_t)row * (K / 32u) + c;
		uchar16 q = vload16(0, w + o0 + b * 16u);
		*a = convert_float16(convert_int16(q & (uchar16)(0x0f)) - 8);
		*e = convert_float16(convert_int16(q >> (uchar16)(4)) - 8);
		*da = *de = vload_half(b, GP(const half, w, o1));
		break;
	}
	case T_Q8_0: {
		size_t b = (size_t)row * (K / 32u) + c;
		global const char* q = GP(const char, w, o0) + b * 32u;
		*a = convert_float16(vload16(0, q));
		*e = convert_float16(vload16(1, q));
		*da = *de = vload_half(b, GP(const half, w, o1));
		break;
	}
	case T_Q6_K: {
		size_t b = (size_t)row * (K / 256u) + c / 8u;
		uint j = c % 8u, h = j / 4u, jj = j % 4u;
		global const uchar* ql = w + o0 + b * 128u + 64u * h + (jj & 1u) * 32u;
		global const uchar* qh = w + o1 + b * 64u + 32u * h;
		global const char* sc = GP(const char, w, o2) + b * 16u + 8u * h + 2u * jj;
		float d = vload_half(b, GP(const half, w, o3));
		uchar sl = (jj >= 2u) ? 4 : 0, sh = (uchar)(2u * jj);
		uchar16 l0 = vload16(0, ql), l1 = vload16(1, ql);
		uchar16 h0 = vload16(0, qh), h1 = vload16(1, qh);
		*a = convert_float16(convert_int16(((l0 >> (uchar16)sl) & (uchar16)(0x0f)) | (((h0 >> (uchar16)sh) & (uchar16)(3)) << (uchar16)(4))) - 32);
		*e = convert_float16(convert_int16(((l1 >> (uchar16)sl) & (uchar16)(0x0f)) | (((h1 >> (uchar16)sh) & (uchar16)(3)) << (uchar16)(4))) - 32);
		*da = d * (float)sc[0];
		*de = d * (float)sc[1];
		break;
	}
	}
}

// mul_vr_q is mul_vr for the quantized types (whole rows of 32-element
// chunks): each chunk in two float16 vectors, scaled once per half (and
// per token, for one token), and no arrays whose address is taken, so that a CPU compiler
// keeps the accumulators in registers (the generic mul_vr's chunk()
// arrays go through the stack on PoCL: Q4_0 decode of the 1b preset took
// 276 ms a token with it, 76 ms with this).
FN void mul_vr_q(const int T, const int R, const int NT, global const uchar* w, ulong o0, ulong o1, ulong o2, ulong o3,
		global const uchar* xb, ulong xo, global uchar* yb, ulong yo, uint K, uint M, uint N) {
	uint row0 = (uint)get_global_id(0) * (uint)R;
	if (row0 >= M) {
		return;
	}
	uint nr = min((uint)R, M - row0);
	uint nc = K / 32u;
	global const float* xs = GP(const float, xb, xo);
	global float* y = GP(float, yb, yo);
	for (uint t0 = 0; t0 < N; t0 += (uint)NT) {
		uint nt = min((uint)NT, N - t0);
		float16 acc[VR_RMAX][VR_TMAX];
		for (int r = 0; r < R; r++) {
			for (int t = 0; t < NT; t++) {
				acc[r][t] = (float16)(0.0f);
			}
		}
		for (uint c = 0; c < nc; c++) {
			float16 a[VR_RMAX], e[VR_RMAX];
			float da[VR_RMAX], de[VR_RMAX];
			for (int r = 0; r < R; r++) {
				// Rows past M repeat the last one; their sums are dropped.
				vr_chunk(T, w, o0, o1, o2, o3, min(row0 + (uint)r, M - 1u), K, c, &a[r], &e[r], &da[r], &de[r]);
				if (NT > 1) {
					// Scaled once for all the tokens (on PoCL, 1b: the
					// Q4_0 prompt products in 683-978 ms a 16-token pass
					// against 1,181-1,207 scaling per token, alternating).
					a[r] *= da[r];
					e[r] *= de[r];
				}
			}
			for (int t = 0; t < NT; t++) {
				if (NT == 1 || (uint)t < nt) {
					global const float* x = xs + (size_t)(t0 + (uint)t) * K + c * 32u;
					float16 xl = vload16(0, x), xh = vload16(1, x);
					for (int r = 0; r < R; r++) {
						if (NT > 1) {
							acc[r][t] = fma(a[r], xl, fma(e[r], xh, acc[r][t]));
						} else if (T == T_Q6_K) {
							acc[r][t] = fma((float16)(da[r]), a[r] * xl, fma((float16)(de[r]), e[r] * xh, acc[r][t]));
						} else {
							acc[r][t] = fma((float16)(da[r]), fma(a[r], xl, e[r] * xh), acc[r][t]);
						}
					}
				}
			}
		}
		for (int t = 0; t < NT; t++) {
			for (int r = 0; r < R; r++) {
				if ((uint)t < nt && (uint)r < nr) {
					float8 s8 = acc[r][t].lo + acc[r][t].hi;
					float4 s = s8.lo + s8.hi;
					y[(size_t)(t0 + (uint)t) * M + row0 + (uint)r] = (s.x + s.y) + (s.z + s.w);
				}
			}
		}
	}
}

kernel void mul_vr1_f32(MM_ARGS) { mul_vr(T_F32, 1, 1, MM_PASS); }
kernel void mul_vr1_f16(MM_ARGS) { mul_vr(T_F16, 1, 1, MM_PASS); }
kernel void mul_vr1_q4_0(MM_ARGS) { mul_vr_q(T_Q4_0, 1, 1, MM_PASS); }
kernel void mul_vr1_q8_0(MM_ARGS) { mul_vr_q(T_Q8_0, 1, 1, MM_PASS); }
kernel void mul_vr1_q6_K(MM_ARGS) { mul_vr_q(T_Q6_K, 1, 1, MM_PASS); }
kernel void mul_vr2_f32(MM_ARGS) { mul_vr(T_F32, 2, 1, MM_PASS); }
kernel void mul_vr2_f16(MM_ARGS) { mul_vr(T_F16, 2, 1, MM_PASS); }
kernel void mul_vr2_q4_0(MM_ARGS) { mul_vr_q(T_Q4_0, 2, 1, MM_PASS); }
kernel void mul_vr2_q8_0(MM_ARGS) { mul_vr_q(T_Q8_0, 2, 1, MM_PASS); }
kernel void mul_vr2_q6_K(MM_ARGS) { mul_vr_q(T_Q6_K, 2, 1, MM_PASS); }
kernel void mul_vr4_f32(MM_ARGS) { mul_vr(T_F32, 4, 1, MM_PASS); }
kernel void mul_vr4_f16(MM_ARGS) { mul_vr(T_F16, 4, 1, MM_PASS); }
kernel void mul_vr4_q4_0(MM_ARGS) { mul_vr_q(T_Q4_0, 4, 1, MM_PASS); }
kernel void mul_vr4_q8_0(MM_ARGS) { mul_vr_q(T_Q8_0, 4, 1, MM_PASS); }
kernel void mul_vr4_q6_K(MM_ARGS) { mul_vr_q(T_Q6_K, 4, 1, MM_PASS); }
kernel void mul_vr2x4_f32(MM_ARGS) { mul_vr(T_F32, 2, 4, MM_PASS); }
kernel void mul_vr2x4_f16(MM_ARGS) { mul_vr(T_F16, 2, 4, MM_PASS); }
kernel void mul_vr2x4_q4_0(MM_ARGS) { mul_vr_q(T_Q4_0, 2, 4, MM_PASS); }
kernel void mul_vr2x4_q8_0(MM_ARGS) { mul_vr_q(T_Q8_0, 2, 4, MM_PASS); }
kernel void mul_vr2x4_q6_K(MM_ARGS) { mul_vr_q(T_Q6_K, 2, 4, MM_PASS); }
kernel void mul_vr4x2_f32(MM_ARGS) { mul_vr(T_F32, 4, 2, MM_PASS); }
kernel void mul_vr4x2_f16(MM_ARGS) { mul_vr(T_F16, 4, 2, MM_PASS); }
kernel void mul_vr4x2_q4_0(MM_ARGS) { mul_vr_q(T_Q4_0, 4, 2, MM_PASS); }
kernel void mul_vr4x2_q8_0(MM_ARGS) { mul_vr_q(T_Q8_0, 4, 2, MM_PASS); }
kernel void mul_vr4x2_q6_K(MM_ARGS) { mul_vr_q(T_Q6_K, 4, 2, MM_PASS); }

// ---------------------------------------------------------------------------
// ROPE. The angle of pair i at position p is p·f[i], f[i] =
// base^(-2i/headDim)/freqs[i], which the host computes in float64 and
// passes split into a float pair (hi, lo). The product is formed exactly
// (fma gives its rounding error) and reduced modulo 2π in two parts, so
// the angle is as accurate as the reference's float64 one at any position.

FN float rope_angle(int pos, float2 f, float* c) {
	float p = (float)pos;
	float th = p * f.x;
	float tl = fma(p, f.x, -th) + p * f.y;
	float k = rint(th * 0.15915494309189535f);
	// 2π = C1 + C2: C1 = 6.2831855f, C2 = -1.7484555e-7f. th - k*C1 is
	// exact (it fits in a float's mantissa).
	float r = fma(-k, 6.28318548202514648f, th) + fma(-k, -1.7484556000744487e-07f, tl);
	return sincos(r, c);
}

// ---------------------------------------------------------------------------
// Cache blocks, written by SET_ROWS and by the fused decode products.

// quantize_block writes the 32 values x (private) as block blk of a cache
// of type T in the device layout.
FN void quantize_block(const int T, const float* x, global uchar* cb, ulong o0, ulong o1, size_t blk) {
	if (T == T_F32) {
		global float* d = GP(float, cb, o0) + blk * 32u;
		for (int j = 0; j < 32; j++) {
			d[j] = x[j];
		}
	} else if (T == T_F16) {
		global ushort* d = GP(ushort, cb, o0) + blk * 32u;
		for (int j = 0; j < 32; j++) {
			d[j] = f2h(x[j]);
		}
	} else if (T == T_Q8_0) {
		float amax = 0.0f;
		for (int j = 0; j < 32; j++) {
			float a = fabs(x[j]);
			if (!(amax > a)) {
				amax = a;
			}
		}
		float d = div_rn(amax, 127.0f);
		float id = d != 0.0f ? div_rn(1.0f, d) : 0.0f;
		GP(ushort, cb, o1)[blk] = f2h(d);
		global char* q = GP(char, cb, o0) + blk * 32u;
		for (int j = 0; j < 32; j++) {
			q[j] = (char)(int)round(mul_rn(x[j], id));
		}
	} else if (T == T_Q4_0) {
		float amax = 0.0f, vmax = 0.0f;
		for (int j = 0; j < 32; j++) {
			float a = fabs(x[j]);
			if (amax < a) {
				amax = a;
				vmax = x[j];
			}
		}
		float d = div_rn(vmax, -8.0f);
		float id = d != 0.0f ? div_rn(1.0f, d) : 0.0f;
		GP(ushort, cb, o1)[blk] = f2h(d);
		global uchar* q = cb + o0 + blk * 16u;
		for (int j = 0; j < 16; j++) {
			int q0 = min(15, (int)(char)(int)add_rn(mul_rn(x[j], id), 8.5f));
			int q1 = min(15, (int)(char)(int)add_rn(mul_rn(x[16 + j], id), 8.5f));
			q[j] = (uchar)(((uint)q0 | ((uint)q1 << 4)) & 0xffu);
		}
	}
}

// ---------------------------------------------------------------------------
// MUL_MAT, decode (one token), row-group form: 32 work-items (one warp on
// NVIDIA) share MW_R = 2 weight rows, reading whole blocks (Q4_0: 16
// bytes of quants and the scale per work-item, block and row) so that many
// wide loads are in flight (4 rows measured slower on the H200). Local size
// (32, G); work-item (lane, j) serves rows MW_R*j to MW_R*j+MW_R-1 of its
// matrix. Variants add a residual (z = W·x + res, the
// ADD after the output projections), compute Q, K and V in one launch, or
// the FFN's gate and up rows with SwiGLU. The outputs of the fused ops are
// all written, so nothing that reads them later can tell.

#ifndef MW_R // rows per row group, even
#error MW_R must be set by the host (hostDefines in program.go)
#endif
#if MW_R % 2 != 0
#error MW_R must be even
#endif
#define MW_H (MW_R / 2)

// ldx loads four activations through the read-only data cache on NVIDIA
// (ld.global.nc): every row group of the Q6_K GEMV reads all of x.
#ifdef OCL_NVIDIA
FN float4 ldx(global const float4* p) {
	float4 v;
	asm("ld.global.nc.v4.f32 {%0, %1, %2, %3}, [%4];" : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w) : "l"(p));
	return v;
}
#else
FN float4 ldx(global const float4* p) { return *p; }
#endif

// rows_sum sums each of the MW_R values over the 32 lanes of a row group;
// lane 0 gets the totals (every lane on NVIDIA). red holds 32*MW_R floats
// per row group; every work-item of the group must call it.
FN void rows_sum(float* acc, local float* red) {
#ifdef OCL_NVIDIA
	for (int r = 0; r < MW_R; r++) {
		float v = acc[r];
		for (int o = 16; o > 0; o >>= 1) {
			float t;
			asm volatile("shfl.sync.bfly.b32 %0, %1, %2, 0x1f, 0xffffffff;" : "=f"(t) : "f"(v), "r"(o));
			v += t;
		}
		acc[r] = v;
	}
#else
	uint lane = get_local_id(0);
	local float* rd = red + get_local_id(1) * (32u * MW_R);
	for (int r = 0; r < MW_R; r++) {
		rd[(uint)r * 32u + lane] = acc[r];
	}
	barrier(CLK_LOCAL_MEM_FENCE);
	for (uint s = 16u; s > 0u; s >>= 1) {
		if (lane < s) {
			for (int r = 0; r < MW_R; r++) {
				rd[(uint)r * 32u + lane] += rd[(uint)r * 32u + lane + s];
			}
		}
		barrier(CLK_LOCAL_MEM_FENCE);
	}
	for (int r = 0; r < MW_R; r++) {
		acc[r] = rd[(uint)r * 32u];
	}
	barrier(CLK_LOCAL_MEM_FENCE);
#endif
}

// q4_dot is one Q4_0 block's quants (unscaled) times 32 activations.
FN float q4_dot(uint4 q, const float4* x) {
	const uint m = 0x0f0f0f0fu;
	float s = dot(ub4(q.x & m, 8.0f), x[0]) + dot(ub4(q.y & m, 8.0f), x[1]);
	s += dot(ub4(q.z & m, 8.0f), x[2]) + dot(ub4(q.w & m, 8.0f), x[3]);
	s += dot(ub4((q.x >> 4) & m, 8.0f), x[4]) + dot(ub4((q.y >> 4) & m, 8.0f), x[5]);
	s += dot(ub4((q.z >> 4) & m, 8.0f), x[6]) + dot(ub4((q.w >> 4) & m, 8.0f), x[7]);
	return s;
}

// mw_q4_0 gives MW_R row sums with x: MW_H rows from ra of Q4_0 weights
// (qa, da) and MW_H rows from rb of (qb, db), the first nv of them
// valid, nb blocks per row; the totals are in every lane on NVIDIA and in
// lane 0 elsewhere. The work-group stages x in local memory, 32·MW_B
// blocks (1024·MW_B values) at a time, so that x is read from global
// memory once per work-group instead of once per row group; xs holds
// 256·MW_B float4s, laid out so that the lanes' float4s of one slot of
// their blocks are consecutive (no bank conflicts). Each lane takes MW_B
// blocks of every row per tile, and issues their loads before the tile's
// staging, so that MW_B·MW_R 16-byte loads per lane are in flight across
// the barriers. With norm set, the product is with x·rs·nw instead (the
// RMS norm of x, scale rs from mw_norm, times the norm's weight nw),
// computed as the unfused norm and MUL compute it. Every work-item of the
// group must call it with the same nb.
#ifndef MW_B // blocks per lane and x tile
#error MW_B must be set by the host (hostDefines in program.go)
#endif
#define MW_T (32u * MW_B) // blocks per x tile
FN void mw_q4_0(global const uint4* qa, global const half* da, uint ra,
		global const uint4* qb, global const half* db, uint rb, uint nv, uint nb,
		global const float4* x, global const float4* nw, float rs, int norm, float* acc, local float* red, local float4* xs) {
	float s[MW_R];
	size_t base[MW_R];
	for (int r = 0; r < MW_R; r++) {
		s[r] = 0.0f;
		base[r] = (size_t)(r < MW_H ? ra + (uint)r : rb + (uint)(r - MW_H)) * nb;
	}
	uint lane = get_local_id(0);
	uint tid = get_local_id(1) * 32u + lane, nt = get_local_size(1) * 32u;
	for (uint b0 = 0; b0 < nb; b0 += MW_T) {
		uint nbt = min(MW_T, nb - b0);
		uint4 qv[MW_B][MW_R];
		float dv[MW_B][MW_R];
		for (int j = 0; j < MW_B; j++) {
			uint i = b0 + lane + 32u * (uint)j;
			for (int r = 0; r < MW_R; r++) {
				if ((uint)r < nv && i < nb) {
					global const uint4* q = r < MW_H ? qa : qb;
					global const half* d = r < MW_H ? da : db;
					qv[j][r] = q[base[r] + i];
					dv[j][r] = vload_half(base[r] + i, d);
				}
			}
		}
		barrier(CLK_LOCAL_MEM_FENCE);
		for (uint f = tid; f < nbt * 8u; f += nt) {
			// float4 f of the tile: block f/8, slot f%8.
			float4 v = x[8u * b0 + f];
			if (norm) {
				v = v * rs * nw[8u * b0 + f];
			}
			xs[(f % 8u) * MW_T + f / 8u] = v;
		}
		barrier(CLK_LOCAL_MEM_FENCE);
		for (int j = 0; j < MW_B; j++) {
			uint bl = lane + 32u * (uint)j;
			if (bl < nbt) {
				float4 xv[8];
				for (int k = 0; k < 8; k++) {
					xv[k] = xs[(uint)k * MW_T + bl];
				}
				for (int r = 0; r < MW_R; r++) {
					if ((uint)r < nv) {
						s[r] += dv[j][r] * q4_dot(qv[j][r], xv);
					}
				}
			}
		}
	}
	for (int r = 0; r < MW_R; r++) {
		acc[r] = s[r];
	}
	rows_sum(acc, red);
}

// mw_q6_K is mw_q4_0 for Q6_K weights (parts o0..o3 of w): rows r0 to
// r0+nv-1, one 8-element piece per lane and step, x read directly.
FN void mw_q6_K(global const uchar* w, ulong o0, ulong o1, ulong o2, ulong o3, uint K, uint r0, uint nv,
		global const float* x, float* acc, local float* red) {
	float s[MW_R];
	for (int r = 0; r < MW_R; r++) {
		s[r] = 0.0f;
	}
	uint np = K / 8u;
	for (uint p = get_local_id(0); p < np; p += 32u) {
		uint e0, e1;
		mv_pos(T_Q6_K, p, &e0, &e1);
		float4 xl = ldx((global const float4*)(x + e0)), xh = ldx((global const float4*)(x + e1));
		for (int r = 0; r < MW_R; r++) {
			if ((uint)r < nv) {
				float4 lo, hi;
				float dl, dh;
				mv_piece(T_Q6_K, w, o0, o1, o2, o3, r0 + (uint)r, K, p, &lo, &hi, &dl, &dh);
				s[r] += dl * dot(lo, xl) + dh * dot(hi, xh);
			}
		}
	}
	for (int r = 0; r < MW_R; r++) {
		acc[r] = s[r];
	}
	rows_sum(acc, red);
}

// mw_store writes rows r (valid ones) of y, and of z = y + res when z is
// given (zb non-null), from lane 0.
FN void mw_store(const float* acc, uint r0, uint M, global uchar* yb, ulong yo, global const uchar* rb, ulong ro,
		global uchar* zb, ulong zo, uint addres) {
	if (get_local_id(0) != 0u) {
		return;
	}
	for (uint r = 0; r < MW_R; r++) {
		uint row = r0 + r;
		if (row < M) {
			GP(float, yb, yo)[row] = acc[r];
			if (addres != 0u) {
				GP(float, zb, zo)[row] = GP(const float, rb, ro)[row] + acc[r];
			}
		}
	}
}

#define MW_ARGS global const uchar *w, ulong o0, ulong o1, ulong o2, ulong o3, global const uchar *xb, ulong xo, global uchar *yb, ulong yo, uint K, uint M, global const uchar *rb, ulong ro, global uchar *zb, ulong zo, uint addres, local float *red, local float4 *xs

kernel void mul_mw_q4_0(MW_ARGS) {
	uint r0 = (uint)get_global_id(1) * MW_R;
	float acc[MW_R];
	global const uint4* q = GP(const uint4, w, o0);
	global const half* d = GP(const half, w, o1);
	uint nv = r0 < M ? min((uint)MW_R, M - r0) : 0u;
	global const float4* x = GP(const float4, xb, xo);
	mw_q4_0(q, d, r0, q, d, r0 + MW_H, nv, K / 32u, x, x, 1.0f, 0, acc, red, xs);
	mw_store(acc, r0, M, yb, yo, rb, ro, zb, zo, addres);
}

kernel void mul_mw_q6_K(MW_ARGS) {
	uint r0 = (uint)get_global_id(1) * MW_R;
	float acc[MW_R];
	uint nv = r0 < M ? min((uint)MW_R, M - r0) : 0u;
	mw_q6_K(w, o0, o1, o2, o3, K, r0, nv, GP(const float, xb, xo), acc, red);
	mw_store(acc, r0, M, yb, yo, rb, ro, zb, zo, addres);
}

// MUL_MAT for a few tokens (batched decode: 2 to 15 sequences, one token
// each), row-group form: as mul_mw_*, 32 lanes per row group, each lane
// taking blocks lane, lane+32, ... of its rows, but a row group has MWT_R
// rows, and each lane's weight blocks, loaded once, are multiplied by
// every token's activations (read through the read-only cache), MV_NT
// tokens per pass over the weights: the activations a lane reads serve
// MWT_R rows. A lane sums its blocks in the order mul_mw_* does and the
// lanes' sums are reduced alike, so a token's result is the one-token
// product's, bit for bit. Global (32, ceil(M/MWT_R)), local (32, G); red
// holds 32 floats per row group.
#define MWT_R 4
#define MWT_ARGS global const uchar *w, ulong o0, ulong o1, ulong o2, ulong o3, global const uchar *xb, ulong xo, global uchar *yb, ulong yo, uint K, uint M, uint N, local float *red

// lanes_sum sums v over the 32 lanes of a row group as rows_sum does (in
// the same order); every work-item of the group must call it.
FN float lanes_sum(float v, local float* red) {
#ifdef OCL_NVIDIA
	for (int o = 16; o > 0; o >>= 1) {
		float t;
		asm volatile("shfl.sync.bfly.b32 %0, %1, %2, 0x1f, 0xffffffff;" : "=f"(t) : "f"(v), "r"(o));
		v += t;
	}
	return v;
#else
	uint lane = get_local_id(0);
	local float* rd = red + get_local_id(1) * 32u;
	rd[lane] = v;
	barrier(CLK_LOCAL_MEM_FENCE);
	for (uint s = 16u; s > 0u; s >>= 1) {
		if (lane < s) {
			rd[lane] += rd[lane + s];
		}
		barrier(CLK_LOCAL_MEM_FENCE);
	}
	v = rd[0];
	barrier(CLK_LOCAL_MEM_FENCE);
	return v;
#endif
}

// mwt_store reduces the row group's sums s[t][r] over its lanes and
// writes the valid ones (lane 0), tokens t0.. of nt.
// (Every token's sums are reduced, also the unused ones', so that the
// barriers of the reduction sit outside any condition.)
#define MWT_STORE(s) \
	for (int t = 0; t < MV_NT; t++) { \
		for (int r = 0; r < MWT_R; r++) { \
			float v = lanes_sum(s[t][r], red); \
			if (get_local_id(0) == 0u && (uint)t < nt && (uint)r < nv) { \
				GP(float, yb, yo)[(size_t)(t0 + (uint)t) * M + r0 + (uint)r] = v; \
			} \
		} \
	}

kernel void mul_mwt_q4_0(MWT_ARGS) {
	uint r0 = (uint)get_global_id(1) * MWT_R;
	uint nv = r0 < M ? min((uint)MWT_R, M - r0) : 0u;
	uint nb = K / 32u, lane = get_local_id(0);
	global const uint4* q = GP(const uint4, w, o0);
	global const half* d = GP(const half, w, o1);
	global const float4* x = GP(const float4, xb, xo);
	for (uint t0 = 0; t0 < N; t0 += MV_NT) {
		uint nt = min((uint)MV_NT, N - t0);
		float s[MV_NT][MWT_R];
#pragma unroll
		for (int t = 0; t < MV_NT; t++) {
#pragma unroll
			for (int r = 0; r < MWT_R; r++) {
				s[t][r] = 0.0f;
			}
		}
		for (uint i = lane; i < nb; i += 32u) {
			uint4 qv[MWT_R];
			float dv[MWT_R];
#pragma unroll
			for (int r = 0; r < MWT_R; r++) {
				size_t b = (size_t)min(r0 + (uint)r, M - 1u) * nb + i; // rows past M read the last one
				qv[r] = q[b];
				dv[r] = vload_half(b, d);
			}
#pragma unroll
			for (int t = 0; t < MV_NT; t++) {
				if ((uint)t < nt) {
					float4 xv[8];
					global const float4* xt = x + (size_t)(t0 + (uint)t) * (K / 4u) + 8u * i;
#pragma unroll
					for (int k = 0; k < 8; k++) {
						xv[k] = ldx(xt + k);
					}
#pragma unroll
					for (int r = 0; r < MWT_R; r++) {
						s[t][r] += dv[r] * q4_dot(qv[r], xv);
					}
				}
			}
		}
		MWT_STORE(s)
	}
}

// dot4 is c plus the dot product of the four unsigned bytes of a with
// the four signed bytes of b (dp4a on NVIDIA).
FN int dot4(uint a, int b, int c) {
#ifdef OCL_NVIDIA
	int d;
	asm("dp4a.u32.s32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
	return d;
#else
	uchar4 x = as_uchar4(a);
	char4 y = as_char4(b);
	return c + (int)x.x * (int)y.x + (int)x.y * (int)y.y + (int)x.z * (int)y.z + (int)x.w * (int)y.w;
#endif
}

#ifndef MWQ_LANES
#error MWQ_LANES must be set by the host (hostDefines in program.go)
#endif

// The few-token GEMV on int8 activations (mul_mwq_*) gives a row group
// MWQ_LANES lanes (a multiple of 32; 32, as the float one, by default):
// more lanes split each row's blocks further, for devices where a row
// group's lanes are too few to keep the loads in flight (on the H200 they
// were slower: see mwqLanes in backend.go). mwq_sum sums over them in a
// fixed order (each warp's lanes, then the warps in turn), so a result
// does not depend on the schedule.
FN float mwq_sum(float v, local float* red) {
	uint lane = get_local_id(0);
	local float* rd = red + get_local_id(1) * (uint)MWQ_LANES;
#ifdef OCL_NVIDIA
	for (int o = 16; o > 0; o >>= 1) {
		float t;
		asm volatile("shfl.sync.bfly.b32 %0, %1, %2, 0x1f, 0xffffffff;" : "=f"(t) : "f"(v), "r"(o));
		v += t;
	}
#if MWQ_LANES > 32
	if ((lane & 31u) == 0u) {
		rd[lane >> 5] = v;
	}
	barrier(CLK_LOCAL_MEM_FENCE);
	v = rd[0];
	for (uint w = 1u; w < (uint)MWQ_LANES / 32u; w++) {
		v += rd[w];
	}
	barrier(CLK_LOCAL_MEM_FENCE);
#endif
	return v;
#else
	rd[lane] = v;
	barrier(CLK_LOCAL_MEM_FENCE);
	for (uint s = (uint)MWQ_LANES / 2u; s > 0u; s >>= 1) {
		if (lane < s) {
			rd[lane] += rd[lane + s];
		}
		barrier(CLK_LOCAL_MEM_FENCE);
	}
	v = rd[0];
	barrier(CLK_LOCAL_MEM_FENCE);
	return v;
#endif
}

// MWQ_STORE is MWT_STORE over the MWQ_LANES lanes of a row group.
#define MWQ_STORE(s) \
	for (int t = 0; t < MV_NT; t++) { \
		for (int r = 0; r < MWT_R; r++) { \
			float v = mwq_sum(s[t][r], red); \
			if (get_local_id(0) == 0u && (uint)t < nt && (uint)r < nv) { \
				GP(float, yb, yo)[(size_t)(t0 + (uint)t) * M + r0 + (uint)r] = v; \
			} \
		} \
	}

// mwq_sums adds to s[t][r] the products of rows r0.. (MWT_R, rows past M
// reading the last one) of a Q4_0 matrix (quants q, scales d, nb blocks a
// row) with tokens t0.. (nt of them; activations xq, scales xd), this
// lane's blocks lane, lane+MWQ_LANES, ... .
FN void mwq_sums(global const uint4* q, global const half* d, global const int4* xq, global const half* xd,
		uint r0, uint M, uint nb, uint t0, uint nt, float s[MV_NT][MWT_R]) {
	const uint m = 0x0f0f0f0fu;
	for (uint i = get_local_id(0); i < nb; i += (uint)MWQ_LANES) {
		uint4 qv[MWT_R];
		float dv[MWT_R];
#pragma unroll
		for (int r = 0; r < MWT_R; r++) {
			size_t b = (size_t)min(r0 + (uint)r, M - 1u) * nb + i;
			qv[r] = q[b];
			dv[r] = vload_half(b, d);
		}
#pragma unroll
		for (int t = 0; t < MV_NT; t++) {
			if ((uint)t < nt) {
				size_t xb = (size_t)(t0 + (uint)t) * nb + i;
				int4 lo = xq[2u * xb], hi = xq[2u * xb + 1u];
				float dx = vload_half(xb, xd);
				// Σx, for the nibbles' offset of 8.
				int xs = dot4(0x01010101u, lo.x, dot4(0x01010101u, lo.y, dot4(0x01010101u, lo.z, dot4(0x01010101u, lo.w, 0))));
				xs = dot4(0x01010101u, hi.x, dot4(0x01010101u, hi.y, dot4(0x01010101u, hi.z, dot4(0x01010101u, hi.w, xs))));
#pragma unroll
				for (int r = 0; r < MWT_R; r++) {
					uint4 v = qv[r];
					int is = dot4(v.x & m, lo.x, dot4(v.y & m, lo.y, dot4(v.z & m, lo.z, dot4(v.w & m, lo.w, 0))));
					is = dot4((v.x >> 4) & m, hi.x, dot4((v.y >> 4) & m, hi.y, dot4((v.z >> 4) & m, hi.z, dot4((v.w >> 4) & m, hi.w, is))));
					s[t][r] += dv[r] * dx * (float)(is - 8 * xs);
				}
			}
		}
	}
}

#define MWQ_ZERO(s) \
	for (int t = 0; t < MV_NT; t++) { \
		for (int r = 0; r < MWT_R; r++) { \
			s[t][r] = 0.0f; \
		} \
	}

// mwq_rows writes rows r0.. (MWT_R of them, those below M) of the product
// of a Q4_0 matrix (w: quants at o0, scales at o1) with N tokens of
// quantized activations (quantize_act_q8 at qo) to y: the whole work of a
// row group of mul_mwq_q4_0 and of mul_mwq3_q4_0.
FN void mwq_rows(global const uchar* w, ulong o0, ulong o1, global const uchar* qb, ulong qo, global uchar* yb, ulong yo,
		uint r0, uint K, uint M, uint N, local float* red) {
	uint nv = r0 < M ? min((uint)MWT_R, M - r0) : 0u;
	uint nb = K / 32u;
	global const int4* xq = GP(const int4, qb, qo);
	global const half* xd = GP(const half, qb, qo + (ulong)N * K);
	for (uint t0 = 0; t0 < N; t0 += MV_NT) {
		uint nt = min((uint)MV_NT, N - t0);
		float s[MV_NT][MWT_R];
		MWQ_ZERO(s)
		mwq_sums(GP(const uint4, w, o0), GP(const half, w, o1), xq, xd, r0, M, nb, t0, nt, s);
		MWQ_STORE(s)
	}
}

// mul_mwq_q4_0 is mul_mwt_q4_0 on activations quantized to Q8_0
// (quantize_act_q8: N·K quants at qo, then N·K/32 f16 scales): each
// block's product is integer dot products of the nibbles with the int8
// activations (dp4a), scaled once, so the weights are unpacked for no
// token and the activations read are a quarter of the floats'. As
// llama.cpp's batched GEMV it rounds the activations to int8, as the
// CPU backend's default products do.
kernel void mul_mwq_q4_0(global const uchar* w, ulong o0, ulong o1, global const uchar* qb, ulong qo,
		global uchar* yb, ulong yo, uint K, uint M, uint N, local float* red) {
	mwq_rows(w, o0, o1, qb, qo, yb, yo, (uint)get_global_id(1) * MWT_R, K, M, N, red);
}

// mul_mwq3_q4_0 is mul_mwq_q4_0 for three matrices of one input (Q, K and
// V of a few tokens) in one launch: the row groups of the first, then of
// the second, then of the third, each written as mul_mwq_q4_0 would.
kernel void mul_mwq3_q4_0(global const uchar* w0, ulong a0, ulong b0, global const uchar* w1, ulong a1, ulong b1,
		global const uchar* w2, ulong a2, ulong b2, global const uchar* qb, ulong qo,
		global uchar* y0, ulong yo0, global uchar* y1, ulong yo1, global uchar* y2, ulong yo2,
		uint K, uint M0, uint M1, uint M2, uint N, local float* red) {
	uint g = (uint)get_global_id(1);
	uint g0 = (M0 + MWT_R - 1u) / MWT_R, g1 = (M1 + MWT_R - 1u) / MWT_R;
	global const uchar* w = w0;
	ulong o0 = a0, o1 = b0, yo = yo0;
	global uchar* yb = y0;
	uint M = M0;
	if (g >= g0 + g1) {
		w = w2, o0 = a2, o1 = b2, yb = y2, yo = yo2, M = M2, g -= g0 + g1;
	} else if (g >= g0) {
		w = w1, o0 = a1, o1 = b1, yb = y1, yo = yo1, M = M1, g -= g0;
	}
	mwq_rows(w, o0, o1, qb, qo, yb, yo, g * MWT_R, K, M, N, red);
}

// mul_mwq_swiglu_q4_0 is the gate and up products of a few tokens
// (mul_mwq_q4_0 each, rows r0.. of both in one row group) and their
// SwiGLU, silu(gate)·up as swiglu_f32 computes it: it writes all three.
kernel void mul_mwq_swiglu_q4_0(global const uchar* wg, ulong ga, ulong gb, global const uchar* wu, ulong ua, ulong ub,
		global const uchar* qb, ulong qo, global uchar* gy, ulong gyo, global uchar* uy, ulong uyo, global uchar* sy, ulong syo,
		uint K, uint M, uint N, local float* red) {
	uint r0 = (uint)get_global_id(1) * MWT_R;
	uint nv = r0 < M ? min((uint)MWT_R, M - r0) : 0u;
	uint nb = K / 32u;
	global const int4* xq = GP(const int4, qb, qo);
	global const half* xd = GP(const half, qb, qo + (ulong)N * K);
	for (uint t0 = 0; t0 < N; t0 += MV_NT) {
		uint nt = min((uint)MV_NT, N - t0);
		float sg[MV_NT][MWT_R], su[MV_NT][MWT_R];
		MWQ_ZERO(sg)
		MWQ_ZERO(su)
		mwq_sums(GP(const uint4, wg, ga), GP(const half, wg, gb), xq, xd, r0, M, nb, t0, nt, sg);
		mwq_sums(GP(const uint4, wu, ua), GP(const half, wu, ub), xq, xd, r0, M, nb, t0, nt, su);
		for (int t = 0; t < MV_NT; t++) {
			for (int r = 0; r < MWT_R; r++) {
				float a = mwq_sum(sg[t][r], red), b = mwq_sum(su[t][r], red);
				if (get_local_id(0) == 0u && (uint)t < nt && (uint)r < nv) {
					size_t i = (size_t)(t0 + (uint)t) * M + r0 + (uint)r;
					GP(float, gy, gyo)[i] = a;
					GP(float, uy, uyo)[i] = b;
					GP(float, sy, syo)[i] = (a / (1.0f + exp(-a))) * b;
				}
			}
		}
	}
}

// mul_mwq_add_q4_0 is mul_mwq_q4_0 followed by the ADD of a residual of
// the same shape: it writes the product to y and residual + product to z.
kernel void mul_mwq_add_q4_0(global const uchar* w, ulong o0, ulong o1, global const uchar* qb, ulong qo,
		global uchar* yb, ulong yo, global const uchar* rb, ulong ro, global uchar* zb, ulong zo,
		uint K, uint M, uint N, local float* red) {
	uint r0 = (uint)get_global_id(1) * MWT_R;
	uint nv = r0 < M ? min((uint)MWT_R, M - r0) : 0u;
	uint nb = K / 32u;
	global const int4* xq = GP(const int4, qb, qo);
	global const half* xd = GP(const half, qb, qo + (ulong)N * K);
	for (uint t0 = 0; t0 < N; t0 += MV_NT) {
		uint nt = min((uint)MV_NT, N - t0);
		float s[MV_NT][MWT_R];
		MWQ_ZERO(s)
		mwq_sums(GP(const uint4, w, o0), GP(const half, w, o1), xq, xd, r0, M, nb, t0, nt, s);
		for (int t = 0; t < MV_NT; t++) {
			for (int r = 0; r < MWT_R; r++) {
				float v = mwq_sum(s[t][r], red);
				if (get_local_id(0) == 0u && (uint)t < nt && (uint)r < nv) {
					size_t i = (size_t)(t0 + (uint)t) * M + r0 + (uint)r;
					GP(float, yb, yo)[i] = v;
					GP(float, zb, zo)[i] = GP(const float, rb, ro)[i] + v;
				}
			}
		}
	}
}

// mul_mwq_q6_K is mul_mwt_q6_K on activations quantized to Q8_0, as
// mul_mwq_q4_0 is for Q4_0: each piece's two runs of four quants are
// dot products (dp4a) with the int8 activations, less 32 times their sum,
// scaled by the sub-block's and the activation block's scales; the float
// activations' reads, eight times the weights' for eight tokens, shrink to
// a quarter.
kernel void mul_mwq_q6_K(global const uchar* w, ulong o0, ulong o1, ulong o2, ulong o3, global const uchar* qb, ulong qo,
		global uchar* yb, ulong yo, uint K, uint M, uint N, local float* red) {
	uint r0 = (uint)get_global_id(1) * MWT_R;
	uint nv = r0 < M ? min((uint)MWT_R, M - r0) : 0u;
	uint np = K / 8u;
	global const int* xq = GP(const int, qb, qo);
	global const half* xd = GP(const half, qb, qo + (ulong)N * K);
	for (uint t0 = 0; t0 < N; t0 += MV_NT) {
		uint nt = min((uint)MV_NT, N - t0);
		float s[MV_NT][MWT_R];
		MWQ_ZERO(s)
		for (uint p = get_local_id(0); p < np; p += (uint)MWQ_LANES) {
			uint e0, e1;
			mv_pos(T_Q6_K, p, &e0, &e1);
			uint wl[MWT_R], wh[MWT_R];
			float dl[MWT_R], dh[MWT_R];
#pragma unroll
			for (int r = 0; r < MWT_R; r++) {
				q6_piece(w, o0, o1, o2, o3, min(r0 + (uint)r, M - 1u), K, p, &wl[r], &wh[r], &dl[r], &dh[r]);
			}
#pragma unroll
			for (int t = 0; t < MV_NT; t++) {
				if ((uint)t < nt) {
					size_t xr = (size_t)(t0 + (uint)t) * K;
					int xl = xq[(xr + e0) / 4u], xh = xq[(xr + e1) / 4u];
					float dxl = vload_half((xr + e0) / 32u, xd), dxh = vload_half((xr + e1) / 32u, xd);
					int sl = 32 * dot4(0x01010101u, xl, 0), sh = 32 * dot4(0x01010101u, xh, 0);
#pragma unroll
					for (int r = 0; r < MWT_R; r++) {
						s[t][r] += dl[r] * dxl * (float)(dot4(wl[r], xl, 0) - sl) + dh[r] * dxh * (float)(dot4(wh[r], xh, 0) - sh);
					}
				}
			}
		}
		MWQ_STORE(s)
	}
}

kernel void mul_mwt_q6_K(MWT_ARGS) {
	uint r0 = (uint)get_global_id(1) * MWT_R;
	uint nv = r0 < M ? min((uint)MWT_R, M - r0) : 0u;
	uint np = K / 8u;
	global const float* xs = GP(const float, xb, xo);
	for (uint t0 = 0; t0 < N; t0 += MV_NT) {
		uint nt = min((uint)MV_NT, N - t0);
		float s[MV_NT][MWT_R];
#pragma unroll
		for (int t = 0; t < MV_NT; t++) {
#pragma unroll
			for (int r = 0; r < MWT_R; r++) {
				s[t][r] = 0.0f;
			}
		}
		for (uint p = get_local_id(0); p < np; p += 32u) {
			uint e0, e1;
			mv_pos(T_Q6_K, p, &e0, &e1);
			float4 lo[MWT_R], hi[MWT_R];
			float dl[MWT_R], dh[MWT_R];
#pragma unroll
			for (int r = 0; r < MWT_R; r++) {
				mv_piece(T_Q6_K, w, o0, o1, o2, o3, min(r0 + (uint)r, M - 1u), K, p, &lo[r], &hi[r], &dl[r], &dh[r]);
			}
#pragma unroll
			for (int t = 0; t < MV_NT; t++) {
				if ((uint)t < nt) {
					global const float* xr = xs + (size_t)(t0 + (uint)t) * K;
					float4 xl = ldx((global const float4*)(xr + e0)), xh = ldx((global const float4*)(xr + e1));
#pragma unroll
					for (int r = 0; r < MWT_R; r++) {
						s[t][r] += dl[r] * dot(lo[r], xl) + dh[r] * dot(hi[r], xh);
					}
				}
			}
		}
		MWT_STORE(s)
	}
}

// mw_norm returns, in every work-item of the group, the RMS norm's scale
// 1/sqrt(mean(x²) + eps) of the K values of x, for a row-group GEMV that
// multiplies the norm's output (mw_q4_0 with norm set); the work-group of
// the first rows also writes the norm's outputs, y = x·scale and z = y·nw,
// so that the fused parts' results exist as the unfused ones would. tmp
// holds a float per work-item (the GEMV's xs before its first use, 1024·MW_B
// floats: enough for work-groups of up to 1024 work-items).
FN float mw_norm(global const float4* x, uint K, float eps, global const float4* nw, global float4* y, global float4* z,
		local float* tmp) {
	uint tid = get_local_id(1) * 32u + get_local_id(0), nt = get_local_size(1) * 32u;
	float ss = 0.0f;
	for (uint i = tid; i < K / 4u; i += nt) {
		float4 v = x[i];
		ss = fma(v.x, v.x, ss);
		ss = fma(v.y, v.y, ss);
		ss = fma(v.z, v.z, ss);
		ss = fma(v.w, v.w, ss);
	}
	tmp[tid] = ss;
	barrier(CLK_LOCAL_MEM_FENCE);
	for (uint st = 512u; st > 0u; st >>= 1) {
		if (tid < st && tid + st < nt) {
			tmp[tid] += tmp[tid + st];
		}
		barrier(CLK_LOCAL_MEM_FENCE);
	}
	float scale = 1.0f / sqrt(tmp[0] / (float)K + eps);
	barrier(CLK_LOCAL_MEM_FENCE);
	if (get_group_id(1) == 0u) {
		for (uint i = tid; i < K / 4u; i += nt) {
			float4 v = x[i] * scale;
			y[i] = v;
			z[i] = v * nw[i];
		}
	}
	return scale;
}

// mw_store_pair writes the values a, b to elements i and i+1 of a cache
// of type T (f32 or f16), as SET_ROWS would.
FN void mw_store_pair(const int T, global uchar* cb, ulong o0, size_t i, float a, float b) {
	if (T == T_F16) {
		GP(ushort, cb, o0)[i] = f2h(a);
		GP(ushort, cb, o0)[i + 1u] = f2h(b);
	} else {
		GP(float, cb, o0)[i] = a;
		GP(float, cb, o0)[i + 1u] = b;
	}
}

// mw3 computes three products of the same x (Q, K and V) in one launch:
// row groups run over Ma + Mb + Mc rows (each a multiple of MW_R). With
// norm set, x is first RMS-normed and multiplied by nw (see mw_norm).
// With rope set (and norm), it goes on as a layer's ROPE(Q), ROPE(K),
// SET_ROWS(K) and SET_ROWS(V) for one token at position pos: a row group
// holds whole pairs of rows, which is all the rotation needs, and writes
// the rotated Q and K rows (to qr and kr), then K's and V's rows into
// cells kcell and vcell of caches of type T (f32, f16, or q8_0 and q4_0
// with 32 rows per work-group: see below).
FN void mw3(const int T, global const uchar* wa, ulong a0, ulong a1, global const uchar* wb, ulong b0, ulong b1,
		global const uchar* wc, ulong c0, ulong c1, global const uchar* xb, ulong xo,
		global uchar* ya, ulong yao, global uchar* yb, ulong ybo, global uchar* yc, ulong yco,
		uint K, uint Ma, uint Mb, uint Mc, int norm, global const uchar* nwb, ulong nwo, global uchar* nyb, ulong nyo,
		global uchar* nzb, ulong nzo, float eps, int rope, int pos, global const uchar* fb, ulong fo, uint HD,
		global uchar* qrb, ulong qro, global uchar* krb, ulong kro, uint kcell, global uchar* kcache, ulong k0, ulong k1,
		uint vcell, global uchar* vcache, ulong v0, ulong v1, local float* red, local float4* xs) {
	global const float4* x = GP(const float4, xb, xo);
	global const float4* nw = GP(const float4, nwb, nwo);
	float rs = 1.0f;
	if (norm) {
		rs = mw_norm(x, K, eps, nw, GP(float4, nyb, nyo), GP(float4, nzb, nzo), (local float*)xs);
	}
	uint r0 = (uint)get_global_id(1) * MW_R;
	global const uchar* w = wa;
	ulong o0 = a0, o1 = a1;
	global uchar* y = ya;
	ulong yo = yao;
	uint M = Ma;
	int sel = 0; // Q, K, V
	if (r0 >= Ma + Mb) {
		w = wc, o0 = c0, o1 = c1, y = yc, yo = yco, r0 -= Ma + Mb, M = Mc, sel = 2;
	} else if (r0 >= Ma) {
		w = wb, o0 = b0, o1 = b1, y = yb, yo = ybo, r0 -= Ma, M = Mb, sel = 1;
	}
	float acc[MW_R];
	global const uint4* q = GP(const uint4, w, o0);
	global const half* d = GP(const half, w, o1);
	uint nv = r0 < M ? min((uint)MW_R, M - r0) : 0u;
	mw_q4_0(q, d, r0, q, d, r0 + MW_H, nv, K / 32u, x, nw, rs, norm, acc, red, xs);
	mw_store(acc, r0, M, y, yo, y, yo, y, yo, 0u);
	if (!rope) {
		return;
	}
	// Quantized caches: the work-group's 32 rows (one block: 16 row
	// groups, all of Q, K or V, since Ma, Mb and Mc are multiples of 32)
	// meet in local memory and one work-item quantizes them.
	const bool qc = T == T_Q8_0 || T == T_Q4_0;
	if (get_local_id(0) == 0u) {
		for (uint r = 0; r < (uint)MW_R; r += 2u) {
			uint row = r0 + r;
			if (row + 1u >= M) {
				break;
			}
			float a = acc[r], b = acc[r + 1u];
			if (sel < 2) {
				float c, s = rope_angle(pos, GP(const float2, fb, fo)[(row / 2u) % (HD / 2u)], &c);
				float ra = a * c - b * s, rb = a * s + b * c;
				global float* yr = sel == 0 ? GP(float, qrb, qro) : GP(float, krb, kro);
				yr[row] = ra;
				yr[row + 1u] = rb;
				a = ra, b = rb;
			}
			if (qc) {
				red[row % 32u] = a;
				red[row % 32u + 1u] = b;
			} else if (sel == 1) {
				mw_store_pair(T, kcache, k0, (size_t)kcell * M + row, a, b);
			} else if (sel == 2) {
				mw_store_pair(T, vcache, v0, (size_t)vcell * M + row, a, b);
			}
		}
	}
	if (qc) {
		barrier(CLK_LOCAL_MEM_FENCE);
		if (get_local_id(0) == 0u && get_local_id(1) == 0u && sel > 0 && r0 < M) {
			float v[32];
			for (int j = 0; j < 32; j++) {
				v[j] = red[j];
			}
			size_t blk = (size_t)(sel == 1 ? kcell : vcell) * (M / 32u) + r0 / 32u;
			if (sel == 1) {
				quantize_block(T, v, kcache, k0, k1, blk);
			} else {
				quantize_block(T, v, vcache, v0, v1, blk);
			}
		}
	}
}

#define MW3_ARGS global const uchar *wa, ulong a0, ulong a1, global const uchar *wb, ulong b0, ulong b1, global const uchar *wc, ulong c0, ulong c1, global const uchar *xb, ulong xo, global uchar *ya, ulong yao, global uchar *yb, ulong ybo, global uchar *yc, ulong yco, uint K, uint Ma, uint Mb, uint Mc
#define MW3_PASS wa, a0, a1, wb, b0, b1, wc, c0, c1, xb, xo, ya, yao, yb, ybo, yc, yco, K, Ma, Mb, Mc
#define MWN_ARGS global const uchar *nwb, ulong nwo, global uchar *nyb, ulong nyo, global uchar *nzb, ulong nzo, float eps
#define MWN_PASS nwb, nwo, nyb, nyo, nzb, nzo, eps
#define MWR_ARGS int pos, global const uchar *fb, ulong fo, uint HD, global uchar *qrb, ulong qro, global uchar *krb, ulong kro, uint kcell, global uchar *kcache, ulong k0, ulong k1, uint vcell, global uchar *vcache, ulong v0, ulong v1
#define MWR_PASS pos, fb, fo, HD, qrb, qro, krb, kro, kcell, kcache, k0, k1, vcell, vcache, v0, v1
#define MWR_NONE 0, xb, 0, 2u, ya, 0, ya, 0, 0u, ya, 0, 0, 0u, ya, 0, 0

kernel void mul_mw3_q4_0(MW3_ARGS, local float* red, local float4* xs) {
	mw3(T_F32, MW3_PASS, 0, xb, xo, ya, yao, ya, yao, 0.0f, 0, MWR_NONE, red, xs);
}

// mul_mw3n_q4_0 is the attention block's start for one token: RMS_NORM
// of x, the MUL by the norm's weight, and the Q, K and V products of it.
kernel void mul_mw3n_q4_0(MW3_ARGS, MWN_ARGS, local float* red, local float4* xs) {
	mw3(T_F32, MW3_PASS, 1, MWN_PASS, 0, MWR_NONE, red, xs);
}

// mul_mw3nr_{f32,f16} go on from there to RoPE and the K/V cache stores
// (caches of the suffix's type).
kernel void mul_mw3nr_f32(MW3_ARGS, MWN_ARGS, MWR_ARGS, local float* red, local float4* xs) {
	mw3(T_F32, MW3_PASS, 1, MWN_PASS, 1, MWR_PASS, red, xs);
}

kernel void mul_mw3nr_f16(MW3_ARGS, MWN_ARGS, MWR_ARGS, local float* red, local float4* xs) {
	mw3(T_F16, MW3_PASS, 1, MWN_PASS, 1, MWR_PASS, red, xs);
}

// mul_mw3nr_{q8_0,q4_0} run with 16 row groups per work-group (32 rows,
// one cache block), local size (32, 16).
kernel void mul_mw3nr_q8_0(MW3_ARGS, MWN_ARGS, MWR_ARGS, local float* red, local float4* xs) {
	mw3(T_Q8_0, MW3_PASS, 1, MWN_PASS, 1, MWR_PASS, red, xs);
}

kernel void mul_mw3nr_q4_0(MW3_ARGS, MWN_ARGS, MWR_ARGS, local float* red, local float4* xs) {
	mw3(T_Q4_0, MW3_PASS, 1, MWN_PASS, 1, MWR_PASS, red, xs);
}

// mw_swiglu computes MW_H rows from j of the FFN's gate and of its up
// matrix (one row group) and their SwiGLU, silu(gate)·up, writing all
// three. With norm set, x is first RMS-normed and multiplied by nw.
FN void mw_swiglu(global const uchar* wg, ulong g0, ulong g1, global const uchar* wu, ulong u0, ulong u1,
		global const uchar* xb, ulong xo, global uchar* gb, ulong go, global uchar* ub, ulong uo, global uchar* sb, ulong so,
		uint K, uint M, int norm, global const uchar* nwb, ulong nwo, global uchar* nyb, ulong nyo,
		global uchar* nzb, ulong nzo, float eps, local float* red, local float4* xs) {
	global const float4* x = GP(const float4, xb, xo);
	global const float4* nw = GP(const float4, nwb, nwo);
	float rs = 1.0f;
	if (norm) {
		rs = mw_norm(x, K, eps, nw, GP(float4, nyb, nyo), GP(float4, nzb, nzo), (local float*)xs);
	}
	uint j = (uint)get_global_id(1) * MW_H;
	float acc[MW_R];
	// Gate rows are sums 0..MW_H-1, up rows MW_H..MW_R-1 (M is a
	// multiple of MW_H).
	uint nv = j < M ? (uint)MW_R : 0u;
	mw_q4_0(GP(const uint4, wg, g0), GP(const half, wg, g1), j, GP(const uint4, wu, u0), GP(const half, wu, u1), j, nv,
		K / 32u, x, nw, rs, norm, acc, red, xs);
	if (get_local_id(0) == 0u) {
		for (uint r = 0; r < MW_H; r++) {
			if (j + r < M) {
				float g = acc[r], u = acc[MW_H + r];
				GP(float, gb, go)[j + r] = g;
				GP(float, ub, uo)[j + r] = u;
				GP(float, sb, so)[j + r] = (g / (1.0f + exp(-g))) * u;
			}
		}
	}
}

#define MWS_ARGS global const uchar *wg, ulong g0, ulong g1, global const uchar *wu, ulong u0, ulong u1, global const uchar *xb, ulong xo, global uchar *gb, ulong go, global uchar *ub, ulong uo, global uchar *sb, ulong so, uint K, uint M
#define MWS_PASS wg, g0, g1, wu, u0, u1, xb, xo, gb, go, ub, uo, sb, so, K, M

kernel void mul_mw_swiglu_q4_0(MWS_ARGS, local float* red, local float4* xs) {
	mw_swiglu(MWS_PASS, 0, xb, xo, gb, go, gb, go, 0.0f, red, xs);
}

// mul_mw_swiglun_q4_0 is the FFN's start for one token: RMS_NORM of x,
// the MUL by the norm's weight, the gate and up products and their SwiGLU.
kernel void mul_mw_swiglun_q4_0(MWS_ARGS, MWN_ARGS, local float* red, local float4* xs) {
	mw_swiglu(MWS_PASS, 1, MWN_PASS, red, xs);
}

// ---------------------------------------------------------------------------
// MUL_MAT, prefill: a tiled product. A work-group of 64 work-items computes
// a tile of MM_TM weight rows by MM_TN tokens, 32 columns (one chunk) at a
// time: each work-item dequantizes one row's chunk into local memory, the
// group loads the tokens' chunk, and each work-item accumulates 8 rows by
// TN/8 tokens (TN: MM_TN, or MM_TN64 for mul_mm64_*). Global size
// (ceil(M/64)*64, ceil(N/TN)), local (64, 1).

#ifndef MM_TM // weight rows per tile
#error MM_TM must be set by the host (hostDefines in program.go)
#endif
#ifndef MM_TN // tokens per tile
#error MM_TN must be set by the host (hostDefines in program.go)
#endif
#ifndef MM_TN64 // tokens per tile of mul_mm64_*
#error MM_TN64 must be set by the host (hostDefines in program.go)
#endif

FN void mul_mm(const int T, const int TN, global const uchar* w, ulong o0, ulong o1, ulong o2, ulong o3,
		global const uchar* xb, ulong xo, global uchar* yb, ulong yo, uint K, uint M, uint N,
		local float* ws, local float* xs) {
	const int J = TN / 8; // tokens per work-item
	uint lid = get_local_id(0);
	uint m0 = get_group_id(0) * MM_TM, n0 = get_group_id(1) * (uint)TN;
	uint tm = lid % 8u, tn = lid / 8u;
	global const float* x = GP(const float, xb, xo);
	float acc[8][MM_TN64 / 8];
	for (int i = 0; i < 8; i++) {
		for (int j = 0; j < J; j++) {
			acc[i][j] = 0.0f;
		}
	}
	uint nc = (K + 31u) / 32u;
	for (uint c = 0; c < nc; c++) {
		// The weight tile, k-major: ws[k*(MM_TM+1) + r].
		uint r = m0 + lid;
		float4 v[8];
		if (r < M) {
			chunk(T, w, o0, o1, o2, o3, r, K, c, v);
		} else {
			for (int i = 0; i < 8; i++) {
				v[i] = (float4)(0.0f);
			}
		}
		for (int i = 0; i < 8; i++) {
			ws[(4 * i + 0) * (MM_TM + 1) + lid] = v[i].x;
			ws[(4 * i + 1) * (MM_TM + 1) + lid] = v[i].y;
			ws[(4 * i + 2) * (MM_TM + 1) + lid] = v[i].z;
			ws[(4 * i + 3) * (MM_TM + 1) + lid] = v[i].w;
		}
		// The tokens' tile, k-major: xs[k*(TN+1) + t]; consecutive
		// work-items read consecutive columns.
		for (uint it = 0; it < ((uint)TN * 32u) / 64u; it++) {
			uint idx = it * 64u + lid;
			uint tt = idx / 32u, kk = idx % 32u;
			uint tok = n0 + tt, k = c * 32u + kk;
			xs[kk * (uint)(TN + 1) + tt] = (tok < N && k < K) ? x[(size_t)tok * K + k] : 0.0f;
		}
		barrier(CLK_LOCAL_MEM_FENCE);
		for (uint k = 0; k < 32u; k++) {
			float a[8], b[MM_TN64 / 8];
			for (int i = 0; i < 8; i++) {
				a[i] = ws[k * (MM_TM + 1) + tm + 8u * i];
			}
			for (int j = 0; j < J; j++) {
				b[j] = xs[k * (uint)(TN + 1) + tn + 8u * j];
			}
			for (int i = 0; i < 8; i++) {
				for (int j = 0; j < J; j++) {
					acc[i][j] = fma(a[i], b[j], acc[i][j]);
				}
			}
		}
		barrier(CLK_LOCAL_MEM_FENCE);
	}
	global float* y = GP(float, yb, yo);
	for (int i = 0; i < 8; i++) {
		uint r = m0 + tm + 8u * i;
		for (int j = 0; j < J; j++) {
			uint tok = n0 + tn + 8u * j;
			if (r < M && tok < N) {
				y[(size_t)tok * M + r] = acc[i][j];
			}
		}
	}
}

#define MM_LOCAL local float *ws, local float *xs
kernel void mul_mm_f32(MM_ARGS, MM_LOCAL) { mul_mm(T_F32, MM_TN, MM_PASS, ws, xs); }
kernel void mul_mm_f16(MM_ARGS, MM_LOCAL) { mul_mm(T_F16, MM_TN, MM_PASS, ws, xs); }
kernel void mul_mm_bf16(MM_ARGS, MM_LOCAL) { mul_mm(T_BF16, MM_TN, MM_PASS, ws, xs); }
kernel void mul_mm_q4_0(MM_ARGS, MM_LOCAL) { mul_mm(T_Q4_0, MM_TN, MM_PASS, ws, xs); }
kernel void mul_mm_q8_0(MM_ARGS, MM_LOCAL) { mul_mm(T_Q8_0, MM_TN, MM_PASS, ws, xs); }
kernel void mul_mm_q6_K(MM_ARGS, MM_LOCAL) { mul_mm(T_Q6_K, MM_TN, MM_PASS, ws, xs); }
// mul_mm64_*: 64 tokens a tile, 8 by 8 a work-item: twice the products
// per local load of mul_mm's 8 by 4, for devices with the registers (a
// tuner candidate for prompts).
kernel void mul_mm64_f32(MM_ARGS, MM_LOCAL) { mul_mm(T_F32, MM_TN64, MM_PASS, ws, xs); }
kernel void mul_mm64_f16(MM_ARGS, MM_LOCAL) { mul_mm(T_F16, MM_TN64, MM_PASS, ws, xs); }
kernel void mul_mm64_q4_0(MM_ARGS, MM_LOCAL) { mul_mm(T_Q4_0, MM_TN64, MM_PASS, ws, xs); }
kernel void mul_mm64_q8_0(MM_ARGS, MM_LOCAL) { mul_mm(T_Q8_0, MM_TN64, MM_PASS, ws, xs); }
kernel void mul_mm64_q6_K(MM_ARGS, MM_LOCAL) { mul_mm(T_Q6_K, MM_TN64, MM_PASS, ws, xs); }

// ---------------------------------------------------------------------------
// RMS_NORM, and RMS_NORM fused with the MUL by its weight that follows it:
// y = x / sqrt(mean(x²) + eps); z = y * w. One work-group per row.

FN void rms_norm_rest(global const float* x, float ss, global uchar* yb, ulong yo, uint W, float eps,
		global const uchar* wb, ulong wo, global uchar* zb, ulong zo, int fused, local float* red) {
	uint row = get_group_id(0), lid = get_local_id(0), L = get_local_size(0);
	ss = wg_sum(ss, red);
	float scale = 1.0f / sqrt(ss / (float)W + eps);
	global float* y = GP(float, yb, yo) + (size_t)row * W;
	if (fused) {
		global const float* wt = GP(const float, wb, wo);
		global float* z = GP(float, zb, zo) + (size_t)row * W;
		for (uint i = lid; i < W; i += L) {
			float v = x[i] * scale;
			y[i] = v;
			z[i] = v * wt[i];
		}
	} else {
		for (uint i = lid; i < W; i += L) {
			y[i] = x[i] * scale;
		}
	}
}

FN void rms_norm(global const uchar* xb, ulong xo, global uchar* yb, ulong yo, uint W, float eps,
		global const uchar* wb, ulong wo, global uchar* zb, ulong zo, int fused, local float* red) {
	uint row = get_group_id(0), lid = get_local_id(0), L = get_local_size(0);
	global const float* x = GP(const float, xb, xo) + (size_t)row * W;
	float ss = 0.0f;
	for (uint i = lid; i < W; i += L) {
		ss = fma(x[i], x[i], ss);
	}
	rms_norm_rest(x, ss, yb, yo, W, eps, wb, wo, zb, zo, fused, red);
}

// add_rms_norm_mul: the residual ADD s = a + b, then RMS_NORM of s and
// the MUL by its weight, one work-group per row; all three outputs are
// written. Each work-item reads and writes only its own elements of a, b
// and s, so s may reuse a's or b's memory.
kernel void add_rms_norm_mul_f32(global const uchar* ab, ulong ao, global const uchar* bb, ulong bo, global uchar* sb, ulong so,
		global uchar* yb, ulong yo, uint W, float eps, global const uchar* wb, ulong wo, global uchar* zb, ulong zo, local float* red) {
	uint row = get_group_id(0), lid = get_local_id(0), L = get_local_size(0);
	global const float* a = GP(const float, ab, ao) + (size_t)row * W;
	global const float* b = GP(const float, bb, bo) + (size_t)row * W;
	global float* x = GP(float, sb, so) + (size_t)row * W;
	float ss = 0.0f;
	for (uint i = lid; i < W; i += L) {
		float v = a[i] + b[i];
		x[i] = v;
		ss = fma(v, v, ss);
	}
	rms_norm_rest(x, ss, yb, yo, W, eps, wb, wo, zb, zo, 1, red);
}

kernel void rms_norm_f32(global const uchar* xb, ulong xo, global uchar* yb, ulong yo, uint W, float eps, local float* red) {
	rms_norm(xb, xo, yb, yo, W, eps, xb, 0, yb, 0, 0, red);
}

kernel void rms_norm_mul_f32(global const uchar* xb, ulong xo, global uchar* yb, ulong yo, uint W, float eps,
		global const uchar* wb, ulong wo, global uchar* zb, ulong zo, local float* red) {
	rms_norm(xb, xo, yb, yo, W, eps, wb, wo, zb, zo, 1, red);
}

// ---------------------------------------------------------------------------
// Element-wise ops over n elements; b is read at i % bn (bn = n, or the
// row width when b is one row broadcast over all rows).

kernel void add_f32(global const uchar* ab, ulong ao, global const uchar* bb, ulong bo, global uchar* db, ulong dof, uint n, uint bn) {
	uint i = get_global_id(0);
	if (i < n) {
		GP(float, db, dof)[i] = GP(const float, ab, ao)[i] + GP(const float, bb, bo)[i % bn];
	}
}

kernel void mul_f32(global const uchar* ab, ulong ao, global const uchar* bb, ulong bo, global uchar* db, ulong dof, uint n, uint bn) {
	uint i = get_global_id(0);
	if (i < n) {
		GP(float, db, dof)[i] = GP(const float, ab, ao)[i] * GP(const float, bb, bo)[i % bn];
	}
}

kernel void swiglu_f32(global const uchar* ab, ulong ao, global const uchar* bb, ulong bo, global uchar* db, ulong dof, uint n, uint bn) {
	uint i = get_global_id(0);
	if (i < n) {
		float a = GP(const float, ab, ao)[i];
		GP(float, db, dof)[i] = (a / (1.0f + exp(-a))) * GP(const float, bb, bo)[i % bn];
	}
}

// ---------------------------------------------------------------------------
// ROPE (rope_angle is above, with the row-group GEMV that also uses it).

// rope: global size (W/2 pairs, n tokens).
kernel void rope_f32(global const uchar* xb, ulong xo, global uchar* yb, ulong yo, global const uchar* pb, ulong po,
		global const uchar* fb, ulong fo, uint W, uint HD, uint N) {
	uint p = get_global_id(0), t = get_global_id(1);
	if (p >= W / 2u || t >= N) {
		return;
	}
	float2 f = GP(const float2, fb, fo)[p % (HD / 2u)];
	float c, s = rope_angle(GP(const int, pb, po)[t], f, &c);
	global const float* x = GP(const float, xb, xo) + (size_t)t * W + 2u * p;
	global float* y = GP(float, yb, yo) + (size_t)t * W + 2u * p;
	float a = x[0], b = x[1];
	y[0] = a * c - b * s;
	y[1] = a * s + b * c;
}

// ---------------------------------------------------------------------------
// SET_ROWS: quantize rows into cache cells, bit-identical to quant.Quantize.

// (quantize_block is above, with the row-group GEMV that also uses it.)

// set_rows for float caches: one work-item per element (any width).
// Global size (W, n).
kernel void set_rows_f32(global const uchar* xb, ulong xo, global const uchar* cellb, ulong cello,
		global uchar* cb, ulong o0, ulong o1, uint W, uint N) {
	uint i = get_global_id(0), t = get_global_id(1);
	if (i < W && t < N) {
		size_t cell = (size_t)GP(const int, cellb, cello)[t];
		GP(float, cb, o0)[cell * W + i] = GP(const float, xb, xo)[(size_t)t * W + i];
	}
}

kernel void set_rows_f16(global const uchar* xb, ulong xo, global const uchar* cellb, ulong cello,
		global uchar* cb, ulong o0, ulong o1, uint W, uint N) {
	uint i = get_global_id(0), t = get_global_id(1);
	if (i < W && t < N) {
		size_t cell = (size_t)GP(const int, cellb, cello)[t];
		GP(ushort, cb, o0)[cell * W + i] = f2h(GP(const float, xb, xo)[(size_t)t * W + i]);
	}
}

// set_rows for quantized caches: one work-item per 32-element block.
// Global size (W/32, n).
FN void set_rows_q(const int T, global const uchar* xb, ulong xo, global const uchar* cellb, ulong cello,
		global uchar* cb, ulong o0, ulong o1, uint W, uint N) {
	uint c = get_global_id(0), t = get_global_id(1);
	uint nb = W / 32u;
	if (c >= nb || t >= N) {
		return;
	}
	size_t cell = (size_t)GP(const int, cellb, cello)[t];
	global const float* src = GP(const float, xb, xo) + (size_t)t * W + c * 32u;
	float x[32];
	for (int j = 0; j < 32; j++) {
		x[j] = src[j];
	}
	quantize_block(T, x, cb, o0, o1, cell * nb + c);
}

#define SET_ROWS_ARGS global const uchar *xb, ulong xo, global const uchar *cellb, ulong cello, global uchar *cb, ulong o0, ulong o1, uint W, uint N
#define SET_ROWS_PASS xb, xo, cellb, cello, cb, o0, o1, W, N
kernel void set_rows_q8_0(SET_ROWS_ARGS) { set_rows_q(T_Q8_0, SET_ROWS_PASS); }
kernel void set_rows_q4_0(SET_ROWS_ARGS) { set_rows_q(T_Q4_0, SET_ROWS_PASS); }

// rope_set_rows: ROPE fused with the SET_ROWS that stores its result: each
// work-item rotates 16 pairs, writes them to the ROPE node's output and
// into the cache. W must be a multiple of 32. Global size (W/32, n).
// rope_block rotates the 16 pairs of 32-value block c of a row of x into
// r, and writes them to y when wy.
FN void rope_block(global const float* x, global float* y, bool wy, int pos, global const float2* fr, uint c, uint HD, float* r) {
	x += c * 32u;
	y += c * 32u;
	for (uint i = 0; i < 16u; i++) {
		uint p = c * 16u + i;
		float cs, sn = rope_angle(pos, fr[p % (HD / 2u)], &cs);
		float a = x[2u * i], b = x[2u * i + 1u];
		r[2u * i] = a * cs - b * sn;
		r[2u * i + 1u] = a * sn + b * cs;
	}
	if (wy) {
		for (int j = 0; j < 32; j++) {
			y[j] = r[j];
		}
	}
}

FN void rope_set_rows(const int T, global const uchar* xb, ulong xo, global uchar* yb, ulong yo,
		global const uchar* pb, ulong po, global const uchar* fb, ulong fo, uint W, uint HD, uint N,
		global const uchar* cellb, ulong cello, global uchar* cb, ulong o0, ulong o1) {
	uint c = get_global_id(0), t = get_global_id(1);
	uint nb = W / 32u;
	if (c >= nb || t >= N) {
		return;
	}
	float r[32];
	rope_block(GP(const float, xb, xo) + (size_t)t * W, GP(float, yb, yo) + (size_t)t * W, true, GP(const int, pb, po)[t],
		GP(const float2, fb, fo), c, HD, r);
	size_t cell = (size_t)GP(const int, cellb, cello)[t];
	quantize_block(T, r, cb, o0, o1, cell * nb + c);
}

// rope_qkv: one launch for a layer's ROPE(Q), ROPE(K), SET_ROWS(K) and
// SET_ROWS(V), with K and V caches of one type T. Work-item c of token t
// takes block c of the rows Q (rotated), K (rotated and stored) and V
// (stored), one after the other; the rotated K rows are written to their
// node's output only when wk. Global size ((Wq+Wk+Wv)/32, n).
FN void rope_qkv(const int T, global const uchar* qb, ulong qo, global uchar* yqb, ulong yqo,
		global const uchar* kb, ulong ko, global uchar* ykb, ulong yko, global const uchar* vb, ulong vo,
		global const uchar* pb, ulong po, global const uchar* fb, ulong fo, uint Wq, uint Wk, uint Wv, uint HD, uint N,
		global const uchar* kcb, ulong kco, global uchar* kcache, ulong k0, ulong k1,
		global const uchar* vcb, ulong vco, global uchar* vcache, ulong v0, ulong v1, uint wk) {
	uint c = get_global_id(0), t = get_global_id(1);
	uint nq = Wq / 32u, nk = Wk / 32u, nv = Wv / 32u;
	if (c >= nq + nk + nv || t >= N) {
		return;
	}
	int pos = GP(const int, pb, po)[t];
	global const float2* fr = GP(const float2, fb, fo);
	float r[32];
	if (c < nq) {
		rope_block(GP(const float, qb, qo) + (size_t)t * Wq, GP(float, yqb, yqo) + (size_t)t * Wq, true, pos, fr, c, HD, r);
	} else if (c < nq + nk) {
		c -= nq;
		rope_block(GP(const float, kb, ko) + (size_t)t * Wk, GP(float, ykb, yko) + (size_t)t * Wk, wk != 0u, pos, fr, c, HD, r);
		size_t cell = (size_t)GP(const int, kcb, kco)[t];
		quantize_block(T, r, kcache, k0, k1, cell * nk + c);
	} else {
		c -= nq + nk;
		global const float* x = GP(const float, vb, vo) + (size_t)t * Wv + c * 32u;
		for (int j = 0; j < 32; j++) {
			r[j] = x[j];
		}
		size_t cell = (size_t)GP(const int, vcb, vco)[t];
		quantize_block(T, r, vcache, v0, v1, cell * nv + c);
	}
}

#define ROPE_QKV_ARGS global const uchar *qb, ulong qo, global uchar *yqb, ulong yqo, global const uchar *kb, ulong ko, global uchar *ykb, ulong yko, global const uchar *vb, ulong vo, global const uchar *pb, ulong po, global const uchar *fb, ulong fo, uint Wq, uint Wk, uint Wv, uint HD, uint N, global const uchar *kcb, ulong kco, global uchar *kcache, ulong k0, ulong k1, global const uchar *vcb, ulong vco, global uchar *vcache, ulong v0, ulong v1, uint wk
#define ROPE_QKV_PASS qb, qo, yqb, yqo, kb, ko, ykb, yko, vb, vo, pb, po, fb, fo, Wq, Wk, Wv, HD, N, kcb, kco, kcache, k0, k1, vcb, vco, vcache, v0, v1, wk
kernel void rope_qkv_f32(ROPE_QKV_ARGS) { rope_qkv(T_F32, ROPE_QKV_PASS); }
kernel void rope_qkv_f16(ROPE_QKV_ARGS) { rope_qkv(T_F16, ROPE_QKV_PASS); }
kernel void rope_qkv_q8_0(ROPE_QKV_ARGS) { rope_qkv(T_Q8_0, ROPE_QKV_PASS); }
kernel void rope_qkv_q4_0(ROPE_QKV_ARGS) { rope_qkv(T_Q4_0, ROPE_QKV_PASS); }

#define ROPE_SET_ARGS global const uchar *xb, ulong xo, global uchar *yb, ulong yo, global const uchar *pb, ulong po, global const uchar *fb, ulong fo, uint W, uint HD, uint N, global const uchar *cellb, ulong cello, global uchar *cb, ulong o0, ulong o1
#define ROPE_SET_PASS xb, xo, yb, yo, pb, po, fb, fo, W, HD, N, cellb, cello, cb, o0, o1
kernel void rope_set_rows_f32(ROPE_SET_ARGS) { rope_set_rows(T_F32, ROPE_SET_PASS); }
kernel void rope_set_rows_f16(ROPE_SET_ARGS) { rope_set_rows(T_F16, ROPE_SET_PASS); }
kernel void rope_set_rows_q8_0(ROPE_SET_ARGS) { rope_set_rows(T_Q8_0, ROPE_SET_PASS); }
kernel void rope_set_rows_q4_0(ROPE_SET_ARGS) { rope_set_rows(T_Q4_0, ROPE_SET_PASS); }

// ---------------------------------------------------------------------------
// ATTENTION over a cache of any KV type, read in place (no dequantized
// copy): online softmax over tiles of L cells, grouped-query heads, the
// causal mask. One work-group per (query head, token); global size
// (NH*L, n), local (L, 1). Work-item i scores cell j0+i of each tile, and
// accumulates output dimensions i, i+L, ... (at most ATT_DPT of them).

#ifndef ATT_DPT // output dimensions per work-item
#error ATT_DPT must be set by the host (hostDefines in program.go)
#endif

// kv_dot is q · row[col0, col0+D) of a cache of type T and row width W.
FN float kv_dot(int T, global const uchar* b, ulong o0, ulong o1, size_t row, uint W, uint col0, uint D, local const float* q) {
	float s = 0.0f;
	switch (T) {
	case T_F32: {
		global const float* p = GP(const float, b, o0) + row * W + col0;
		for (uint e = 0; e < D; e++) {
			s = fma(q[e], p[e], s);
		}
		break;
	}
	case T_F16: {
		global const half* p = GP(const half, b, o0) + row * W + col0;
		for (uint e = 0; e < D; e++) {
			s = fma(q[e], vload_half(e, p), s);
		}
		break;
	}
	case T_Q8_0: {
		uint nb = W / 32u;
		for (uint e = 0; e < D;) {
			uint col = col0 + e, i0 = col % 32u, cnt = min(32u - i0, D - e);
			size_t blk = row * nb + col / 32u;
			float d = h2f(GP(const ushort, b, o1)[blk]);
			global const char* qs = GP(const char, b, o0) + blk * 32u + i0;
			float part = 0.0f;
			for (uint i = 0; i < cnt; i++) {
				part = fma(q[e + i], (float)qs[i], part);
			}
			s = fma(part, d, s);
			e += cnt;
		}
		break;
	}
	case T_Q4_0: {
		uint nb = W / 32u;
		for (uint e = 0; e < D;) {
			uint col = col0 + e, i0 = col % 32u, cnt = min(32u - i0, D - e);
			size_t blk = row * nb + col / 32u;
			float d = h2f(GP(const ushort, b, o1)[blk]);
			global const uchar* qs = b + o0 + blk * 16u;
			float part = 0.0f;
			for (uint i = 0; i < cnt; i++) {
				uint k = i0 + i;
				uchar by = qs[k & 15u];
				int v = (k < 16u ? (by & 0xf) : (by >> 4)) - 8;
				part = fma(q[e + i], (float)v, part);
			}
			s = fma(part, d, s);
			e += cnt;
		}
		break;
	}
	}
	return s;
}

// kv_axpy is Σ_j p[j] · cache[j0+j][col] over the tile's nj cells.
FN float kv_axpy(int T, global const uchar* b, ulong o0, ulong o1, size_t j0, uint nj, uint W, uint col, local const float* p) {
	float s = 0.0f;
	switch (T) {
	case T_F32: {
		global const float* v = GP(const float, b, o0) + j0 * W + col;
		for (uint j = 0; j < nj; j++) {
			s = fma(p[j], v[(size_t)j * W], s);
		}
		break;
	}
	case T_F16: {
		global const half* v = GP(const half, b, o0) + j0 * W + col;
		for (uint j = 0; j < nj; j++) {
			s = fma(p[j], vload_half((size_t)j * W, v), s);
		}
		break;
	}
	case T_Q8_0: {
		uint nb = W / 32u;
		size_t blk = j0 * nb + col / 32u;
		global const ushort* d = GP(const ushort, b, o1) + blk;
		global const char* qs = GP(const char, b, o0) + blk * 32u + col % 32u;
		for (uint j = 0; j < nj; j++) {
			s = fma(p[j], (float)qs[(size_t)j * nb * 32u] * h2f(d[(size_t)j * nb]), s);
		}
		break;
	}
	case T_Q4_0: {
		uint nb = W / 32u;
		uint k = col % 32u;
		size_t blk = j0 * nb + col / 32u;
		global const ushort* d = GP(const ushort, b, o1) + blk;
		global const uchar* qs = b + o0 + blk * 16u + (k & 15u);
		uint sh = k < 16u ? 0u : 4u;
		for (uint j = 0; j < nj; j++) {
			int v = (int)((qs[(size_t)j * nb * 16u] >> sh) & 0xfu) - 8;
			s = fma(p[j], (float)v * h2f(d[(size_t)j * nb]), s);
		}
		break;
	}
	}
	return s;
}

#ifndef KV_PAGE // cells per page of the KV index (graph.PageCells)
#error KV_PAGE must be set by the host (hostDefines in program.go)
#endif

// kv_cell is the cell holding position j of the sequence whose list of
// pages starts at idx[base] (see graph.KVIndex).
FN size_t kv_cell(global const int* idx, uint base, uint j) {
	return (size_t)(uint)idx[base + j / KV_PAGE] * KV_PAGE + j % KV_PAGE;
}

// ATTENTION: one work-group per (head, token, chunk of positions). The
// KV index (ib) holds each token's position, then where its sequence's
// pages are listed, then the lists: token t sees positions 0..idx[t] of
// its own sequence.
kernel void attention(global const uchar* qb, ulong qo,
		global const uchar* kb, ulong ko0, ulong ko1, int kt,
		global const uchar* vb, ulong vo0, ulong vo1, int vt,
		global uchar* ob, ulong oo,
		uint D, uint NH, uint NHKV, global const uchar* ib, ulong io, uint N, float scale,
		uint chunk, uint nch, global uchar* pb, ulong po,
		local float* ql, local float* pl, local float* red) {
	uint h = get_group_id(0), t = get_group_id(1) / nch, c = get_group_id(1) % nch;
	uint lid = get_local_id(0), L = get_local_size(0);
	uint kvh = h / (NH / NHKV);
	uint W = D * NHKV;
	global const int* idx = GP(const int, ib, io);
	uint base = (uint)idx[N + t];
	global const float* q = GP(const float, qb, qo) + (size_t)t * D * NH + h * D;
	for (uint i = lid; i < D; i += L) {
		ql[i] = q[i];
	}
	barrier(CLK_LOCAL_MEM_FENCE);
	uint visible = (uint)idx[t] + 1u;
	uint jb = c * chunk;
	visible = min(visible, jb + chunk);
	float m = -INFINITY, l = 0.0f;
	float acc[ATT_DPT];
	for (int k = 0; k < ATT_DPT; k++) {
		acc[k] = 0.0f;
	}
	for (uint j0 = jb; j0 < visible; j0 += L) {
		uint j = j0 + lid;
		float s = -INFINITY;
		if (j < visible) {
			s = kv_dot(kt, kb, ko0, ko1, kv_cell(idx, base, j), W, kvh * D, D, ql) * scale;
		}
		float mn = fmax(m, wg_max(s, red));
		float p = j < visible ? exp(s - mn) : 0.0f;
		pl[lid] = p;
		float ps = wg_sum(p, red); // its barriers also publish pl
		float alpha = exp(m - mn);
		l = l * alpha + ps;
		// The tile's positions lie in at most two pages, each a run of
		// consecutive cells.
		uint nj = min(L, visible - j0);
		uint n1 = min(nj, KV_PAGE - j0 % KV_PAGE);
		size_t c0 = kv_cell(idx, base, j0);
		size_t c1 = n1 < nj ? kv_cell(idx, base, j0 + n1) : 0;
		for (int k = 0; k < ATT_DPT; k++) {
			uint d = lid + (uint)k * L;
			if (d < D) {
				float a = kv_axpy(vt, vb, vo0, vo1, c0, n1, W, kvh * D + d, pl);
				if (n1 < nj) {
					a += kv_axpy(vt, vb, vo0, vo1, c1, nj - n1, W, kvh * D + d, pl + n1);
				}
				acc[k] = acc[k] * alpha + a;
			}
		}
		m = mn;
		barrier(CLK_LOCAL_MEM_FENCE);
	}
	if (nch > 1u) {
		// One chunk of the cells (split over work-groups for decode):
		// its max, sum and unnormalised output, for attention_merge.
		global float* part = GP(float, pb, po) + ((size_t)(t * NH + h) * nch + c) * (D + 2u);
		if (lid == 0u) {
			part[0] = m;
			part[1] = l;
		}
		for (int k = 0; k < ATT_DPT; k++) {
			uint d = lid + (uint)k * L;
			if (d < D) {
				part[2u + d] = acc[k];
			}
		}
		return;
	}
	global float* o = GP(float, ob, oo) + (size_t)t * D * NH + h * D;
	float inv = 1.0f / l;
	for (int k = 0; k < ATT_DPT; k++) {
		uint d = lid + (uint)k * L;
		if (d < D) {
			o[d] = acc[k] * inv;
		}
	}
}

// ATTENTION for prompts: a tile of FA_TQ query tokens of one head per
// work-group, so that each K/V cell is read from global memory once per
// tile instead of once per token. For each tile of FA_TK cells the group
// stages K and V (dequantized) in local memory; work-item (qi, part) of
// 128 scores cells part, part+4, ... of query qi, the online softmax
// updates the query's max and sum, and the work-item accumulates output
// dimensions part, part+4, ... Global size (NH*128, ceil(n/FA_TQ)),
// local (128, 1). Local: qs FA_TQ*(D+1), ks and vs FA_TK*(D+1), ps
// FA_TQ*(FA_TK+1) floats.

#ifndef FA_TQ // query tokens per tile
#error FA_TQ must be set by the host (hostDefines in program.go)
#endif
#ifndef FA_TK // cells per tile
#error FA_TK must be set by the host (hostDefines in program.go)
#endif
#ifndef FA_DMAX // largest head size
#error FA_DMAX must be set by the host (hostDefines in program.go)
#endif

// kv_at is element col of row row of a cache of type T and row width W.
FN float kv_at(int T, global const uchar* b, ulong o0, ulong o1, size_t row, uint W, uint col) {
	size_t i = row * W + col;
	switch (T) {
	case T_F32:
		return GP(const float, b, o0)[i];
	case T_F16:
		return vload_half(i, GP(const half, b, o0));
	case T_Q8_0:
		return (float)GP(const char, b, o0)[i] * h2f(GP(const ushort, b, o1)[i / 32u]);
	case T_Q4_0: {
		uint k = (uint)(i % 32u);
		uchar by = (b + o0)[(i / 32u) * 16u + (k & 15u)];
		int v = (k < 16u ? (by & 0xf) : (by >> 4)) - 8;
		return (float)v * h2f(GP(const ushort, b, o1)[i / 32u]);
	}
	}
	return 0.0f;
}

kernel void attention_tiled(global const uchar* qb, ulong qo,
		global const uchar* kb, ulong ko0, ulong ko1, int kt,
		global const uchar* vb, ulong vo0, ulong vo1, int vt,
		global uchar* ob, ulong oo,
		uint D, uint NH, uint NHKV, global const uchar* ib, ulong io, float scale, uint N,
		local float* qs, local float* ks, local float* vs, local float* ps) {
	uint h = get_group_id(0), t0 = get_group_id(1) * FA_TQ;
	uint lid = get_local_id(0);
	uint qi = lid / 4u, part = lid % 4u;
	uint kvh = h / (NH / NHKV);
	uint W = D * NHKV, LD = D + 1u;
	global const int* idx = GP(const int, ib, io);
	global const float* q = GP(const float, qb, qo);
	for (uint i = lid; i < FA_TQ * D; i += 128u) {
		uint r = i / D, d = i % D;
		qs[r * LD + d] = t0 + r < N ? q[(size_t)(t0 + r) * D * NH + h * D + d] : 0.0f;
	}
	uint t = t0 + qi;
	uint last = min(t0 + FA_TQ, N) - 1u;
	float m = -INFINITY, l = 0.0f;
	float acc[FA_DMAX / 4];
	for (int k = 0; k < FA_DMAX / 4; k++) {
		acc[k] = 0.0f;
	}
	uint nd = (D + 3u - part) / 4u; // dimensions part, part+4, ... below D
	// The tile's tokens in runs of one sequence (one list of pages): each
	// run stages its own sequence's cells; the tile's other queries see
	// none of them, which leaves their sums exactly as they were.
	for (uint r0 = t0; r0 <= last;) {
		uint base = (uint)idx[N + r0];
		uint r1 = r0 + 1u;
		uint end = (uint)idx[r0] + 1u; // positions any query of the run sees
		while (r1 <= last && (uint)idx[N + r1] == base) {
			end = max(end, (uint)idx[r1] + 1u);
			r1++;
		}
		uint visible = t >= r0 && t < r1 ? (uint)idx[t] + 1u : 0u;
		for (uint j0 = 0; j0 < end; j0 += FA_TK) {
			barrier(CLK_LOCAL_MEM_FENCE);
			for (uint i = lid; i < FA_TK * D; i += 128u) {
				uint r = i / D, d = i % D;
				bool in = j0 + r < end;
				size_t cell = in ? kv_cell(idx, base, j0 + r) : 0;
				ks[r * LD + d] = in ? kv_at(kt, kb, ko0, ko1, cell, W, kvh * D + d) : 0.0f;
				vs[r * LD + d] = in ? kv_at(vt, vb, vo0, vo1, cell, W, kvh * D + d) : 0.0f;
			}
			barrier(CLK_LOCAL_MEM_FENCE);
			// Scores of cells part, part+4, ... of this tile.
			float s[FA_TK / 4];
			float mt = -INFINITY;
			for (uint jj = 0; jj < FA_TK / 4u; jj++) {
				uint j = part + 4u * jj;
				float v = 0.0f;
				for (uint d = 0; d < D; d++) {
					v = fma(qs[qi * LD + d], ks[j * LD + d], v);
				}
				v = j0 + j < visible ? v * scale : -INFINITY;
				s[jj] = v;
				mt = fmax(mt, v);
			}
			for (uint jj = 0; jj < FA_TK / 4u; jj++) {
				ps[qi * (FA_TK + 1u) + part + 4u * jj] = s[jj];
			}
			barrier(CLK_LOCAL_MEM_FENCE);
			for (uint j = 0; j < FA_TK; j++) {
				mt = fmax(mt, ps[qi * (FA_TK + 1u) + j]);
			}
			float mn = fmax(m, mt);
			barrier(CLK_LOCAL_MEM_FENCE);
			for (uint jj = 0; jj < FA_TK / 4u; jj++) {
				ps[qi * (FA_TK + 1u) + part + 4u * jj] = mn == -INFINITY ? 0.0f : exp(s[jj] - mn);
			}
			barrier(CLK_LOCAL_MEM_FENCE);
			float alpha = mn == -INFINITY ? 1.0f : exp(m - mn);
			float ls = 0.0f;
			for (uint j = 0; j < FA_TK; j++) {
				ls += ps[qi * (FA_TK + 1u) + j];
			}
			l = l * alpha + ls;
			m = mn;
			// Constant bounds keep acc in registers.
			for (int k = 0; k < FA_DMAX / 4; k++) {
				if ((uint)k < nd) {
					uint d = part + 4u * (uint)k;
					float a = acc[k] * alpha;
					for (uint j = 0; j < FA_TK; j++) {
						a = fma(ps[qi * (FA_TK + 1u) + j], vs[j * LD + d], a);
					}
					acc[k] = a;
				}
			}
		}
		r0 = r1;
	}
	if (t < N) {
		global float* o = GP(float, ob, oo) + (size_t)t * D * NH + h * D;
		float inv = 1.0f / l;
		for (int k = 0; k < FA_DMAX / 4; k++) {
			if ((uint)k < nd) {
				o[part + 4u * (uint)k] = acc[k] * inv;
			}
		}
	}
}

// attention_merge joins the nch chunks of a split attention: the output
// is Σ_c e^(m_c−M)·acc_c / Σ_c e^(m_c−M)·l_c with M the largest m_c. One
// work-group per (query head, token): global (NH*L, n), local (L, 1).
kernel void attention_merge(global const uchar* pb, ulong po, global uchar* ob, ulong oo, uint D, uint NH, uint nch) {
	uint h = get_group_id(0), t = get_group_id(1);
	uint lid = get_local_id(0), L = get_local_size(0);
	uint S = D + 2u;
	global const float* part = GP(const float, pb, po) + (size_t)(t * NH + h) * nch * S;
	float M = -INFINITY;
	for (uint c = 0; c < nch; c++) {
		M = fmax(M, part[c * S]);
	}
	float l = 0.0f;
	for (uint c = 0; c < nch; c++) {
		l += exp(part[c * S] - M) * part[c * S + 1u];
	}
	float inv = 1.0f / l;
	global float* o = GP(float, ob, oo) + (size_t)t * D * NH + h * D;
	for (uint d = lid; d < D; d += L) {
		float s = 0.0f;
		for (uint c = 0; c < nch; c++) {
			s += exp(part[c * S] - M) * part[c * S + 2u + d];
		}
		o[d] = s * inv;
	}
}

// ---------------------------------------------------------------------------
// NVIDIA tensor cores (compute capability 8.0 and later): the prefill
// product with mma.sync.m16n8k16 in inline PTX. A work-group of 128
// work-items (4 warps) computes 64 weight rows by 64 tokens, 32 columns at
// a time: the weight chunk is dequantized and the tokens' chunk converted
// to f16 in local memory (rounded to nearest even), and each warp
// multiplies its 16 rows by the 64 tokens, accumulating in f32.
// Global size (ceil(M/64)*128, ceil(N/64)), local (128, 1).

// quantize_act_q8 quantizes N rows of K activations to Q8_0, bit for bit
// as quant.QuantizeRowQ8_0 (the CPU's int8 path) does, for the integer
// tensor-core product: the quants of all rows (N*K bytes at qo), then
// their f16 scales. One work-item per block: global (K/32, N).
kernel void quantize_act_q8(global const uchar* xb, ulong xo, global uchar* qb, ulong qo, uint K, uint N) {
	uint blk = get_global_id(0), t = get_global_id(1);
	uint nb = K / 32u;
	if (blk >= nb || t >= N) {
		return;
	}
	global const float* x = GP(const float, xb, xo) + (size_t)t * K + blk * 32u;
	float v[32];
	for (int j = 0; j < 32; j++) {
		v[j] = x[j];
	}
	quantize_block(T_Q8_0, v, qb, qo, qo + (ulong)N * K, (size_t)t * nb + blk);
}

#ifdef OCL_MMA_EMULATE
// emu_share publishes each lane's six fragment registers of an emulated
// mma.sync to its warp through local memory (emu: 6 words per work-item)
// and returns the warp's block: word 6*lane+i is register i of lane.
FN local uint* emu_share(uint a0, uint a1, uint a2, uint a3, uint b0, uint b1, local uint* emu) {
	uint lid = get_local_id(0), lane = lid & 31u;
	local uint* wa = emu + (lid & ~31u) * 6u;
	barrier(CLK_LOCAL_MEM_FENCE);
	wa[lane * 6u + 0u] = a0;
	wa[lane * 6u + 1u] = a1;
	wa[lane * 6u + 2u] = a2;
	wa[lane * 6u + 3u] = a3;
	wa[lane * 6u + 4u] = b0;
	wa[lane * 6u + 5u] = b1;
	barrier(CLK_LOCAL_MEM_FENCE);
	return wa;
}
#endif

#ifdef OCL_NV_MMA

#ifndef TC_BM // weight rows per tile
#error TC_BM must be set by the host (hostDefines in program.go)
#endif
#ifndef TC_BN // tokens per tile
#error TC_BN must be set by the host (hostDefines in program.go)
#endif
#ifndef TC_LD // halves per local row: 32 + 8 of padding against bank conflicts
#error TC_LD must be set by the host (hostDefines in program.go)
#endif

#ifndef OCL_MMA_EMULATE
#define MMA_EMU_ARG
#define MMA_EMU_PASS
FN void mma_16x8x16(float* c, uint a0, uint a1, uint a2, uint a3, uint b0, uint b1) {
	float d0, d1, d2, d3;
	asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};"
		: "=f"(d0), "=f"(d1), "=f"(d2), "=f"(d3)
		: "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
	c[0] = d0;
	c[1] = d1;
	c[2] = d2;
	c[3] = d3;
}
#else
// A test-only emulation of mma.sync.m16n8k16 (f16 in, f32 out) for
// devices without tensor cores, following the PTX ISA's fragment layouts:
// lane = 4*groupID + threadID_in_group; A (16x16, row-major) register i
// holds rows groupID (+8 for i = 1, 3) and columns 2*tig, 2*tig+1 (+8
// for i = 2, 3); B (16x8) register i holds rows 2*tig, 2*tig+1 (+8 for
// i = 1) of column groupID; C holds rows groupID (+8 for c = 2, 3) and
// columns 2*tig + (c & 1). Lanes swap fragments through local memory
// (emu: 6 words per work-item); every work-item of the group must call
// it together.
#define MMA_EMU_ARG , local uint* emu
#define MMA_EMU_PASS , emu
FN float emu_half(uint r, uint hi) { return h2f(hi ? (r >> 16) : (r & 0xffffu)); }
FN void mma_16x8x16_emu(float* c, uint a0, uint a1, uint a2, uint a3, uint b0, uint b1, local uint* emu) {
	uint lane = get_local_id(0) & 31u;
	local uint* wa = emu_share(a0, a1, a2, a3, b0, b1, emu);
	uint g = lane >> 2, tq = lane & 3u;
	for (uint e = 0; e < 4u; e++) {
		uint row = g + 8u * (e >> 1), col = 2u * tq + (e & 1u);
		float s = c[e];
		for (uint k = 0; k < 16u; k++) {
			uint kt = (k % 8u) / 2u, kh = k & 1u;
			uint areg = (row >= 8u ? 1u : 0u) + (k >= 8u ? 2u : 0u);
			float av = emu_half(wa[((row % 8u) * 4u + kt) * 6u + areg], kh);
			float bv = emu_half(wa[(col * 4u + kt) * 6u + 4u + (k >= 8u ? 1u : 0u)], kh);
			s = fma(av, bv, s);
		}
		c[e] = s;
	}
}
#define mma_16x8x16(c, a0, a1, a2, a3, b0, b1) mma_16x8x16_emu(c, a0, a1, a2, a3, b0, b1, emu)
#endif

FN void mul_mm_tc(const int T, global const uchar* w, ulong o0, ulong o1, ulong o2, ulong o3,
		global const uchar* xb, ulong xo, global uchar* yb, ulong yo, uint K, uint M, uint N,
		local ushort* wh, local ushort* xh MMA_EMU_ARG) {
	uint lid = get_local_id(0);
	uint lane = lid & 31u, warp = lid >> 5;
	uint g = lane >> 2, tq = lane & 3u;
	uint m0 = get_group_id(0) * TC_BM, n0 = get_group_id(1) * TC_BN;
	global const float* x = GP(const float, xb, xo);
	float acc[8][4];
	for (int j = 0; j < 8; j++) {
		for (int c = 0; c < 4; c++) {
			acc[j][c] = 0.0f;
		}
	}
	uint nc = (K + 31u) / 32u;
	for (uint c = 0; c < nc; c++) {
		if (lid < TC_BM) {
			uint r = m0 + lid;
			float4 v[8];
			if (r < M) {
				chunk(T, w, o0, o1, o2, o3, r, K, c, v);
			} else {
				for (int i = 0; i < 8; i++) {
					v[i] = (float4)(0.0f);
				}
			}
			local half* dst = (local half*)(wh + lid * TC_LD);
			for (int i = 0; i < 8; i++) {
				vstore_half4(v[i], i, dst);
			}
		}
		// 64 tokens x 32 columns, 16 per work-item, consecutive columns
		// across consecutive work-items.
		for (uint it = 0; it < (TC_BN * 32u) / 128u; it++) {
			uint idx = it * 128u + lid;
			uint tt = idx / 32u, kk = idx % 32u;
			uint tok = n0 + tt, k = c * 32u + kk;
			float v = (tok < N && k < K) ? x[(size_t)tok * K + k] : 0.0f;
			vstore_half(v, tt * TC_LD + kk, (local half*)xh);
		}
		barrier(CLK_LOCAL_MEM_FENCE);
		for (uint k16 = 0; k16 < 32u; k16 += 16u) {
			// Fragments are gathered from 16-bit loads (the low half holds
			// the lower column), so no 32-bit access depends on the
			// alignment of the local buffers.
			local const ushort* ar = wh + (warp * 16u + g) * TC_LD + k16 + 2u * tq;
			uint a0 = (uint)ar[0] | ((uint)ar[1] << 16);
			uint a1 = (uint)ar[8u * TC_LD] | ((uint)ar[8u * TC_LD + 1u] << 16);
			uint a2 = (uint)ar[8u] | ((uint)ar[9u] << 16);
			uint a3 = (uint)ar[8u * TC_LD + 8u] | ((uint)ar[8u * TC_LD + 9u] << 16);
			for (int j = 0; j < 8; j++) {
				local const ushort* br = xh + ((uint)j * 8u + g) * TC_LD + k16 + 2u * tq;
				uint b0 = (uint)br[0] | ((uint)br[1] << 16);
				uint b1 = (uint)br[8u] | ((uint)br[9u] << 16);
				mma_16x8x16(acc[j], a0, a1, a2, a3, b0, b1);
			}
		}
		barrier(CLK_LOCAL_MEM_FENCE);
	}
	global float* y = GP(float, yb, yo);
	for (int j = 0; j < 8; j++) {
		for (int c = 0; c < 4; c++) {
			uint r = m0 + warp * 16u + g + 8u * ((uint)c >> 1);
			uint tok = n0 + (uint)j * 8u + 2u * tq + ((uint)c & 1u);
			if (r < M && tok < N) {
				y[(size_t)tok * M + r] = acc[j][c];
			}
		}
	}
}

#define TC_LOCAL local ushort *wh, local ushort *xh MMA_EMU_ARG
#define TC_PASS wh, xh MMA_EMU_PASS
kernel void mul_mm_tc_f32(MM_ARGS, TC_LOCAL) { mul_mm_tc(T_F32, MM_PASS, TC_PASS); }
kernel void mul_mm_tc_f16(MM_ARGS, TC_LOCAL) { mul_mm_tc(T_F16, MM_PASS, TC_PASS); }
kernel void mul_mm_tc_bf16(MM_ARGS, TC_LOCAL) { mul_mm_tc(T_BF16, MM_PASS, TC_PASS); }
kernel void mul_mm_tc_q4_0(MM_ARGS, TC_LOCAL) { mul_mm_tc(T_Q4_0, MM_PASS, TC_PASS); }
kernel void mul_mm_tc_q8_0(MM_ARGS, TC_LOCAL) { mul_mm_tc(T_Q8_0, MM_PASS, TC_PASS); }
kernel void mul_mm_tc_q6_K(MM_ARGS, TC_LOCAL) { mul_mm_tc(T_Q6_K, MM_PASS, TC_PASS); }


#endif // OCL_NV_MMA

#ifdef OCL_NV_MMQ
// ---------------------------------------------------------------------------
// Prefill with integer tensor cores (mma.sync.m16n8k32, s8 x s8 -> s32),
// as llama.cpp's MMQ does it: the activations are quantized to 8 bits per
// 32-value block (quantize_act_q8, a scale per block), the Q4_0 weights'
// nibbles become signed bytes, each block's product is an exact integer,
// and only the scaling d_w·d_x and the sum over blocks are in float. A
// work-group of 128 work-items (4 warps) computes 64 weight rows by MQ_BN
// tokens, 4 blocks (128 columns) per step; each warp multiplies its 16 rows
// by the MQ_BN tokens. Global size (ceil(M/64)*128, ceil(N/MQ_BN)), local
// (128, 1).

#ifndef MQ_BM // weight rows per work-group
#error MQ_BM must be set by the host (hostDefines in program.go)
#endif
#ifndef MQ_BN // tokens per work-group, a multiple of 8
#error MQ_BN must be set by the host (hostDefines in program.go)
#endif
#if MQ_BN % 8 != 0
#error MQ_BN must be a multiple of 8
#endif
#define MQ_NT (MQ_BN / 8) // 8-token tiles per warp
#ifndef MQ_KB // blocks per step
#error MQ_KB must be set by the host (hostDefines in program.go)
#endif
#ifndef MQ_LD // words per local row: 32 + 4 of padding against bank conflicts
#error MQ_LD must be set by the host (hostDefines in program.go)
#endif

#ifndef OCL_MMA_EMULATE
#define MQ_EMU_ARG
FN void mma_s8(int* c, uint a0, uint a1, uint a2, uint a3, uint b0, uint b1) {
	int d0, d1, d2, d3;
	asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};"
		: "=r"(d0), "=r"(d1), "=r"(d2), "=r"(d3)
		: "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1), "r"(c[0]), "r"(c[1]), "r"(c[2]), "r"(c[3]));
	c[0] = d0;
	c[1] = d1;
	c[2] = d2;
	c[3] = d3;
}
#else
// A test-only emulation of mma.sync.m16n8k32 (s8 in, s32 out), following
// the PTX ISA's fragment layouts: A (16x32, row-major) register i holds
// rows groupID (+8 for i = 1, 3) and columns 4*tig..4*tig+3 (+16 for
// i = 2, 3); B (32x8) register i holds rows 4*tig..4*tig+3 (+16 for i = 1)
// of column groupID; C holds rows groupID (+8 for c = 2, 3) and columns
// 2*tig + (c & 1). Lanes swap fragments through local memory (emu: 6
// words per work-item); every work-item of the group calls it together.
#define MQ_EMU_ARG , local uint* emu
FN int emu_s8(uint r, uint i) { return (int)(char)(uchar)((r >> (8u * i)) & 0xffu); }
FN void mma_s8_emu(int* c, uint a0, uint a1, uint a2, uint a3, uint b0, uint b1, local uint* emu) {
	uint lane = get_local_id(0) & 31u;
	local uint* wa = emu_share(a0, a1, a2, a3, b0, b1, emu);
	uint g = lane >> 2, tq = lane & 3u;
	for (uint e = 0; e < 4u; e++) {
		uint row = g + 8u * (e >> 1), col = 2u * tq + (e & 1u);
		int s = c[e];
		for (uint k = 0; k < 32u; k++) {
			uint kt = (k % 16u) / 4u, kb = k & 3u;
			uint areg = (row >= 8u ? 1u : 0u) + (k >= 16u ? 2u : 0u);
			int av = emu_s8(wa[((row % 8u) * 4u + kt) * 6u + areg], kb);
			int bv = emu_s8(wa[(col * 4u + kt) * 6u + 4u + (k >= 16u ? 1u : 0u)], kb);
			s += av * bv;
		}
		c[e] = s;
	}
}
#define mma_s8(c, a0, a1, a2, a3, b0, b1) mma_s8_emu(c, a0, a1, a2, a3, b0, b1, emu)
#endif

// s4x4 turns four nibbles (one per byte, 0..15) into the signed bytes
// nibble-8, without carries between the bytes.
FN uint s4x4(uint v) { return ((v | 0x80808080u) - 0x08080808u) ^ 0x80808080u; }

// mul_mmq_q4_0: y = W·x for Q4_0 weights W (quants o0, scales o1) and
// activations quantized by quantize_act_q8 (N rows of K bytes at qo, then
// N*K/32 f16 scales).
kernel void mul_mmq_q4_0(global const uchar* w, ulong o0, ulong o1, global const uchar* qb, ulong qo,
		global uchar* yb, ulong yo, uint K, uint M, uint N,
		local uint* wq, local uint* xq, local float* wd, local float* xd MQ_EMU_ARG) {
	uint lid = get_local_id(0);
	uint lane = lid & 31u, warp = lid >> 5;
	uint g = lane >> 2, tq = lane & 3u;
	uint m0 = get_group_id(0) * MQ_BM, n0 = get_group_id(1) * MQ_BN;
	uint nb = K / 32u;
	global const uint4* wqs = GP(const uint4, w, o0);
	global const half* wds = GP(const half, w, o1);
	global const uint4* xqs = GP(const uint4, qb, qo);
	global const half* xds = GP(const half, qb, qo + (ulong)N * K);
	float acc[MQ_NT][4];
	for (int j = 0; j < MQ_NT; j++) {
		for (int c = 0; c < 4; c++) {
			acc[j][c] = 0.0f;
		}
	}
	const uint m = 0x0f0f0f0fu;
	for (uint s0 = 0; s0 < nb; s0 += MQ_KB) {
		// Stage MQ_BM rows x MQ_KB blocks of weights, their nibbles as
		// signed bytes, and MQ_BN tokens x MQ_KB blocks of activations.
		for (uint p = lid; p < MQ_BM * MQ_KB; p += 128u) {
			uint r = p / MQ_KB, kb = p % MQ_KB, blk = s0 + kb;
			uint4 q = (uint4)(0u);
			float d = 0.0f;
			if (m0 + r < M && blk < nb) {
				size_t i = (size_t)(m0 + r) * nb + blk;
				q = wqs[i];
				d = vload_half(i, wds);
			}
			local uint* dst = wq + r * MQ_LD + kb * 8u;
			dst[0] = s4x4(q.x & m);
			dst[1] = s4x4(q.y & m);
			dst[2] = s4x4(q.z & m);
			dst[3] = s4x4(q.w & m);
			dst[4] = s4x4((q.x >> 4) & m);
			dst[5] = s4x4((q.y >> 4) & m);
			dst[6] = s4x4((q.z >> 4) & m);
			dst[7] = s4x4((q.w >> 4) & m);
			wd[r * MQ_KB + kb] = d;
		}
		for (uint p = lid; p < MQ_BN * MQ_KB; p += 128u) {
			uint r = p / MQ_KB, kb = p % MQ_KB, blk = s0 + kb;
			uint4 x0 = (uint4)(0u), x1 = (uint4)(0u);
			float dx = 0.0f;
			if (n0 + r < N && blk < nb) {
				size_t i = (size_t)(n0 + r) * nb + blk;
				x0 = xqs[2u * i];
				x1 = xqs[2u * i + 1u];
				dx = vload_half(i, xds);
			}
			local uint* dst = xq + r * MQ_LD + kb * 8u;
			dst[0] = x0.x;
			dst[1] = x0.y;
			dst[2] = x0.z;
			dst[3] = x0.w;
			dst[4] = x1.x;
			dst[5] = x1.y;
			dst[6] = x1.z;
			dst[7] = x1.w;
			xd[r * MQ_KB + kb] = dx;
		}
		barrier(CLK_LOCAL_MEM_FENCE);
		for (uint kb = 0; kb < MQ_KB; kb++) {
			uint ra = warp * 16u + g;
			local const uint* ar = wq + ra * MQ_LD + kb * 8u + tq;
			uint a0 = ar[0], a1 = ar[8u * MQ_LD], a2 = ar[4], a3 = ar[8u * MQ_LD + 4u];
			float dw0 = wd[ra * MQ_KB + kb], dw1 = wd[(ra + 8u) * MQ_KB + kb];
			for (int j = 0; j < MQ_NT; j++) {
				local const uint* br = xq + ((uint)j * 8u + g) * MQ_LD + kb * 8u + tq;
				int c[4] = {0, 0, 0, 0};
				mma_s8(c, a0, a1, a2, a3, br[0], br[4]);
				uint t0 = (uint)j * 8u + 2u * tq;
				float dx0 = xd[t0 * MQ_KB + kb], dx1 = xd[(t0 + 1u) * MQ_KB + kb];
				acc[j][0] = fma(dw0 * dx0, (float)c[0], acc[j][0]);
				acc[j][1] = fma(dw0 * dx1, (float)c[1], acc[j][1]);
				acc[j][2] = fma(dw1 * dx0, (float)c[2], acc[j][2]);
				acc[j][3] = fma(dw1 * dx1, (float)c[3], acc[j][3]);
			}
		}
		barrier(CLK_LOCAL_MEM_FENCE);
	}
	global float* y = GP(float, yb, yo);
	for (int j = 0; j < MQ_NT; j++) {
		for (int c = 0; c < 4; c++) {
			uint r = m0 + warp * 16u + g + 8u * ((uint)c >> 1);
			uint tok = n0 + (uint)j * 8u + 2u * tq + ((uint)c & 1u);
			if (r < M && tok < N) {
				y[(size_t)tok * M + r] = acc[j][c];
			}
		}
	}
}

#endif // OCL_NV_MMQ
