// Package opencl is ocelot's OpenCL backend: it runs the graph's ops on any
// conformant OpenCL 1.2 device (PoCL, NVIDIA, Intel, AMD, Mali, Adreno),
// loaded at run time through purego, with no cgo on Linux and macOS.
//
// # Loading
//
// $OCELOT_OPENCL_LIB, when set, names the one library to load: if it
// cannot be loaded that is the error, and no other library is tried.
// Otherwise the library is looked for in order: libOpenCL.so.1,
// libOpenCL.so, the Android vendor paths and Mali's libGLES_mali.so, and
// on macOS the OpenCL framework. A missing library or symbol is an error
// from Devices and Open, never a panic, and the caller runs on the CPU.
// Android and FreeBSD builds need cgo (purego does there); without it the
// package compiles and Open reports that OpenCL is unavailable.
//
// Every OpenCL call goes through one small typed layer (api.go) that maps
// a failed status to an *Error naming the call, the object and the status
// ("opencl: clEnqueueNDRangeKernel(mul_mv_q4_0): CL_OUT_OF_RESOURCES
// (-5)"); tests inject failures per call through its hook.
//
// # Devices and kernels
//
// Devices lists every platform's devices with the capabilities ocelot
// uses. Open takes Options.Device, else $OCELOT_OPENCL_DEVICE, else the
// first GPU, else the first device. The kernels (kernels.cl, OpenCL C 1.2)
// come in variants chosen from the device's capabilities: "generic", which
// every device runs; "nvidia-ptx", whose quantizers use PTX mul.rn/add.rn
// so that no compiler can fuse them; "nvidia-ptx+mmq", the default on
// NVIDIA compute capability 8.0 and later, which adds a prompt GEMM for
// Q4_0 on the integer tensor cores (inline mma.sync.m16n8k32, activations
// quantized to Q8_0 as the CPU backend does); and, opt-in through
// $OCELOT_OPENCL_KERNELS, "nvidia-ptx+mma" (an f16 tensor-core GEMM) and
// "subgroups-khr"/"subgroups-intel" (sub-group reductions). Open builds
// the fastest variant offered, runs a self-test (a matrix product on both
// paths, a Q8_0 cache write that must match quant.Quantize byte for byte,
// attention), and falls back to the next variant in a fresh context if it
// fails to build or to pass. The program binary is cached in
// os.UserCacheDir()/ocelot/opencl, keyed by device, driver, build options
// and source.
//
// # Memory
//
// Weights and KV caches are resident device buffers (Tensor.Bufs[graph.Accel]):
// quantized blocks are split into dense arrays of quants and scales
// (layout.go) and joined again by Download, so Download(Upload(x)) == x
// for every type. Intermediates live in one buffer per arena at their
// planned offsets, passed to kernels as (buffer, offset) pairs. Inputs
// (token ids, positions, cells) are written without blocking from host
// copies kept until Sync.
//
// # Execution
//
// Compute only enqueues kernels on one in-order queue; Read (the logits)
// is the one blocking read of a forward pass. Every graph node has its own
// kernel objects (slots), so a launch re-sets only the arguments that
// changed since the last pass, and the two calls of a launch go through
// purego.SyscallN rather than reflection: on NVIDIA's driver the host side
// of a launch is then about 7 µs. Kernels are fused where that cuts
// launches: RMS_NORM with the MUL by its weight (and with the residual ADD
// before it); a layer's ROPE(Q), ROPE(K) and the K and V SET_ROWS; and,
// for one token, the Q, K and V products of one input, the FFN's gate and
// up products with their SwiGLU, and a product with the ADD after it. A
// fusion is skipped where the arena plan lets an output reuse memory that
// another work-group of the same launch still reads (overlaps). SET_ROWS
// quantizes on write (f16, q8_0, q4_0) bit-identically to quant.Quantize,
// and attention reads the quantized cache in place with online softmax,
// grouped-query heads and the causal mask: prompts in tiles of 32 queries
// that share K/V tiles in local memory (attention_tiled), decode split
// over work-groups along the cache and merged (attention_merge). The
// one-token GEMV for Q4_0 and Q6_K gives 32 work-items two rows and stages
// x in local memory per work-group (mul_mw_*); other types and small
// batches use mul_mv_*, which reads each weight piece once for up to eight
// tokens. Prompts use the tiled GEMM, or on NVIDIA the integer tensor-core
// GEMM for Q4_0 (mul_mmq_q4_0, after quantize_act_q8). Work-group sizes
// come from the driver's per-kernel limits. Read returns an error, not the
// values, when what it read holds NaN or ±Inf (a kernel that went wrong
// after passing the self-test). With Options.Profile, every kernel is
// timed with events and Profile returns the totals.
package opencl
