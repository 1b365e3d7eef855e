package opencl

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/ocelot-llm/ocelot/accel"
	"github.com/ocelot-llm/ocelot/graph"
	"github.com/ocelot-llm/ocelot/model"
	"github.com/ocelot-llm/ocelot/quant"
)

// Options configure Open.
type Options struct {
	// Device is the device index `ocelot devices` lists; -1 takes
	// $OCELOT_OPENCL_DEVICE when set, else the first GPU, else the first
	// device of any kind.
	Device int
	// Profile times every kernel with OpenCL events
	// (CL_QUEUE_PROFILING_ENABLE); Backend.Profile returns the totals.
	Profile bool
	// CacheDir holds compiled program binaries, keyed by device, driver
	// and kernel source, so that a second start skips the compiler. ""
	// means os.UserCacheDir()/ocelot/opencl (except on PoCL, which caches
	// its kernels itself and compiles slowly for a binary); "-" disables
	// the cache.
	CacheDir string
	// Logf receives one line per notable event (kernel variant chosen,
	// fallback to generic kernels, cache problems). nil discards them.
	Logf func(format string, args ...any)
	// Generic builds only the kernels that every device runs, without the
	// device-specific fast paths (inline PTX, sub-groups). Without it,
	// $OCELOT_OPENCL_KERNELS may name a variant to try first (generic,
	// nvidia-ptx, nvidia-ptx+mma, subgroups-khr, subgroups-intel).
	Generic bool
	// GPUOnly declines CPU OpenCL devices (PoCL and the like) unless
	// Device names one: automatic backend selection uses it, since the CPU
	// backend beats OpenCL on the same CPU.
	GPUOnly bool
}

// DefaultOptions are the options of a plain Open: default device, no
// profiling, the default cache.
func DefaultOptions() Options { return Options{Device: -1} }

// Backend runs graph ops on one OpenCL device. It implements
// accel.Backend in the accelerator slot (graph.Accel): weights and KV
// caches live in device buffers for good, intermediates in one buffer per
// arena, and Compute only enqueues work on one in-order queue.
//
// Its fields are the device and what Open made on it, then the groups
// below (tuning, scratch buffers, launch state, profile), then the
// lifecycle: the memory taken and what lives until Sync or Close. The
// device facts and the tuning do not change after Open; mu guards the
// rest.
type Backend struct {
	mu sync.Mutex
	a  *api

	// The device, and the context, queue and program Open made on it.
	info    DeviceInfo
	ctx     clContext
	q       clQueue
	prog    clProgram
	kernels map[string]*kernel
	variant variant
	opts    Options
	start   StartInfo
	env     switches // the environment's tuning switches, read once by Open

	tune     tuning
	tune0    tuning // tune as chooseTuning made it, before the tuner's choices (tune.go)
	scratch  scratch
	launcher launcher
	profile  profile

	// Lifecycle: what the backend holds, and until when.
	used    int64 // bytes of device memory this backend holds
	pending []any // host memory read by queued writes, kept until Sync
	arenas  map[*arena]bool
	closed  bool
}

// tuning is what the backend chose, once per program that Open builds,
// from the kernels' limits, the device and the switches: work-group sizes
// and which kernels serve which products. fuse alone is set by Open
// (tests turn it off).
type tuning struct {
	lwsMV, lwsNorm, lwsAttn, lwsElem, lws2D int
	gemm                                    bool // the tiled GEMM fits this device
	tc                                      bool // the tensor-core GEMM runs here (NVIDIA)
	mmMin                                   int  // batches of this many tokens or more use the GEMM
	mw                                      bool // the row-group GEMV serves one-token products ($OCELOT_OPENCL_MW=0 turns it off)
	mwGroups                                int  // row groups per work-group of the row-group GEMV
	mwt                                     bool // the row-group GEMV serves products of 2 to mmMin-1 tokens too ($OCELOT_OPENCL_MWT=0 turns it off)
	mwq                                     bool // and takes Q4_0 and Q6_K ones on int8 activations with dp4a (NVIDIA; $OCELOT_OPENCL_MWQ=0 turns it off)
	mmq                                     bool // the integer tensor-core GEMM serves Q4_0 prompts (NVIDIA)
	faTiled                                 bool // prompts use the tiled attention kernel ($OCELOT_OPENCL_ATTN_TILED=0 turns it off)
	fuse                                    bool // fuse RMS_NORM+MUL and ROPE+SET_ROWS
	// prod are the tuner's product kernels (tune.go), by weight type and
	// token class, where it chose one over the paths above; nil untuned.
	prod map[prodKey]prodChoice
}

// scratch holds device buffers the kernels need beside the tensors',
// made on first use, grown on demand and reused until teardown.
type scratch struct {
	actQ         clMem
	actQSize     int64         // bytes of actQ, the quantized activations of the integer GEMM
	actQFor      *graph.Tensor // the tensor whose activations actQ holds, within one Compute call
	attnPart     clMem
	attnPartSize int64 // bytes of attnPart, the split attention's partial results
	// RoPE tables, by their contents and, once seen, by the address of
	// their frequency factors (see ropeTable).
	ropeTabs map[string]clMem
	ropeFast map[ropeKey]clMem
	// stage is host memory, not a device buffer: the staging buffer of
	// split uploads (uploadChunk bytes), made by the first one and
	// reused, so loading a model leaves no trail of garbage chunks.
	stage []byte
}

// launcher is the state of kernel launches: the argument scratch, the
// launch sizes, the node being enqueued and the per-node kernel slots.
type launcher struct {
	argBuf   [maxArgs]uint64 // kernel argument values on their way to clSetKernelArg
	gws, lws [3]uintptr      // a launch's sizes, on the heap for the raw call
	cur      string          // the node Compute is enqueueing ("" outside Compute)
	curOp    string          // its op (or fusion), for the profile
	memGen   uint64          // counts buffer releases (see freeBuffer)
	slots    map[slotKey]*slot
}

// profile is the kernel timing of Options.Profile: events of queued
// kernels, and the totals Sync adds them to.
type profile struct {
	events []profEvent
	totals map[profKey]*accel.OpTime
}

var _ accel.Backend = (*Backend)(nil)

// forceVariant, set by tests, replaces the variant Open would choose (to
// exercise the fallback from a variant that fails to build).
var forceVariant *variant

// StartInfo says how Open went: which kernel variant was built, whether
// the program came from the binary cache, and how long each step took.
type StartInfo = accel.StartInfo

// profEvent is a queued kernel's event, with the op and kernel it
// profiles.
type profEvent struct {
	op, kernel string
	ev         clEvent
}

// profKey is one row of the profile.
type profKey struct{ op, kernel string }

// devTensor is the backend's handle of a resident tensor, kept in the
// tensor's Bufs[graph.Accel].
type devTensor struct {
	mem  clMem
	lay  layout
	name string
}

// Open loads the OpenCL library, picks a device, builds the kernels (or
// loads them from the binary cache) and runs a self-test: a small matrix
// product, KV-cache write and attention compared with the CPU. Any failure
// is an error and the caller runs on the CPU; a device-specific kernel
// variant that fails to build or fails the self-test is replaced by the
// generic kernels first.
func Open(opts Options) (*Backend, error) {
	t0 := time.Now()
	a, err := library()
	if err != nil {
		return nil, err
	}
	ds, err := listDevices(a)
	if err != nil {
		return nil, err
	}
	d, err := pickDevice(ds, opts.Device, opts.GPUOnly)
	if err != nil {
		return nil, err
	}
	env, err := readSwitches()
	if err != nil {
		return nil, err
	}
	b := &Backend{a: a, info: *d, opts: opts, env: env, arenas: map[*arena]bool{},
		tune:    tuning{fuse: true},
		scratch: scratch{ropeTabs: map[string]clMem{}, ropeFast: map[ropeKey]clMem{}},
		profile: profile{totals: map[profKey]*accel.OpTime{}}}
	cacheDir := opts.CacheDir
	switch {
	case cacheDir == "-":
		cacheDir = ""
	case cacheDir == "" && binaryCacheByDefault(d):
		cacheDir = defaultCacheDir()
	}
	variants := candidateVariants(d)
	if k := os.Getenv("OCELOT_OPENCL_KERNELS"); k != "" && k != "auto" {
		// A named variant (as `ocelot devices --device N` reports it),
		// then the generic one: a way around a driver that miscompiles
		// a fast path.
		variants = nil
		for _, v := range allVariants {
			if v.String() == k {
				variants = []variant{v, {}}
			}
		}
		if variants == nil {
			return nil, errorf("OCELOT_OPENCL_KERNELS=%q is not a kernel variant (use auto, generic, nvidia-ptx, nvidia-ptx+mmq, nvidia-ptx+mma, subgroups-khr or subgroups-intel)", k)
		}
	}
	if opts.Generic {
		variants = []variant{{}}
	}
	if forceVariant != nil {
		variants = []variant{*forceVariant, {}}
	}
	// Each variant gets a fresh context and queue: a kernel that faults
	// leaves NVIDIA's context unusable.
	for i, v := range variants {
		err = b.setup(v, cacheDir)
		if err == nil {
			break
		}
		b.teardown()
		if i == len(variants)-1 || v == (variant{}) {
			return nil, err
		}
		b.logf("opencl: %s kernels unusable on %s, trying %s: %v", v, d.Name, variants[i+1], err)
	}
	b.start.Total = time.Since(t0)
	b.logf("opencl: %s: %s kernels, built in %v (cache: %v), self-test %v", d.Name, b.variant, b.start.Build.Round(time.Millisecond), b.start.FromCache, b.start.SelfTest.Round(time.Millisecond))
	return b, nil
}

// setup makes a context and queue, builds the program of one variant,
// makes its kernels, tunes the launch sizes and runs the self-test; only a
// program that passes it goes into the binary cache.
func (b *Backend) setup(v variant, cacheDir string) error {
	var err error
	if b.ctx, err = b.a.newContext(b.info.id); err != nil {
		return err
	}
	var props uint64
	if b.opts.Profile {
		props |= clQueueProfilingEnable
	}
	if b.q, err = b.a.newQueue(b.ctx, b.info.id, props); err != nil {
		return err
	}
	res, err := buildProgram(b.a, b.ctx, &b.info, kernelSource, v.options(b.env), cacheDir)
	if err != nil {
		return err
	}
	b.prog, b.variant = res.prog, v
	b.start = StartInfo{Variant: v.String(), FromCache: res.fromCache, CacheFile: res.cacheFile, Build: res.took}
	if b.kernels, err = makeKernels(b.a, b.prog, b.info.id, v.kernelNames()); err != nil {
		return err
	}
	if err := b.chooseTuning(); err != nil {
		return err
	}
	t := time.Now()
	if err := b.selfTest(); err != nil {
		return fmt.Errorf("self-test: %w", err)
	}
	b.start.SelfTest = time.Since(t)
	if res.cacheFile != "" && !res.fromCache {
		if err := saveBinary(b.a, b.prog, res.cacheFile); err != nil {
			b.logf("opencl: could not cache the program binary in %s: %v", cacheDir, err)
			b.start.CacheFile = ""
		}
	}
	return nil
}

// teardown releases what setup made.
func (b *Backend) teardown() {
	b.teardownProgram()
	for _, m := range b.scratch.ropeTabs {
		b.freeBuffer(m)
	}
	clear(b.scratch.ropeTabs)
	clear(b.scratch.ropeFast)
	if b.scratch.attnPart != 0 {
		b.freeBuffer(b.scratch.attnPart)
		b.scratch.attnPart, b.scratch.attnPartSize = 0, 0
	}
	if b.scratch.actQ != 0 {
		b.freeBuffer(b.scratch.actQ)
		b.scratch.actQ, b.scratch.actQSize = 0, 0
	}
	b.profile.events, b.pending, b.used = nil, nil, 0
	b.a.freeQueue(b.q)
	b.a.freeContext(b.ctx)
	b.q, b.ctx = 0, 0
}

func (b *Backend) teardownProgram() {
	b.freeSlots()
	if b.kernels != nil {
		freeKernels(b.a, b.kernels)
		b.kernels = nil
	}
	b.a.freeProgram(b.prog)
	b.prog = 0
}

// pow2Floor is the largest power of two <= n (n >= 1).
func pow2Floor(n int) int {
	p := 1
	for p*2 <= n {
		p *= 2
	}
	return p
}

// chooseTuning chooses work-group sizes and the product kernels (b.tune,
// all but fuse) from what the driver allows each kernel, the device's
// local memory and the switches.
func (b *Backend) chooseTuning() error {
	lim := func(name string, want int) int {
		k := b.kernels[name]
		return pow2Floor(max(1, min(want, k.maxWG, b.info.MaxWorkGroup)))
	}
	minOf := func(want int, names ...string) int {
		l := want
		for _, n := range names {
			l = min(l, lim(n, want))
		}
		return l
	}
	var mv, mm, tc []string
	for _, n := range b.variant.kernelNames() {
		switch {
		case strings.HasPrefix(n, "mul_mv_"):
			mv = append(mv, n)
		case strings.HasPrefix(n, "mul_mm_tc_"):
			tc = append(tc, n)
		case strings.HasPrefix(n, "mul_mm_"):
			mm = append(mm, n)
		}
	}
	b.tune.prod = nil
	b.tune.lwsMV = minOf(64, mv...)
	// Many work-items per row: each one's loads wait in turn (one token
	// is a single work-group), so fewer loads per work-item is faster.
	b.tune.lwsNorm = minOf(1024, "rms_norm_f32", "rms_norm_mul_f32", "add_rms_norm_mul_f32")
	b.tune.lwsAttn = minOf(64, "attention")
	b.tune.lwsElem = minOf(256, "add_f32", "mul_f32", "swiglu_f32")
	b.tune.lws2D = minOf(64, "quantize_act_q8", "get_rows_f32", "get_rows_f16", "get_rows_bf16", "get_rows_q4_0", "get_rows_q8_0", "get_rows_q6_K",
		"rope_f32", "set_rows_f32", "set_rows_f16", "set_rows_q8_0", "set_rows_q4_0",
		"rope_set_rows_f32", "rope_set_rows_f16", "rope_set_rows_q8_0", "rope_set_rows_q4_0",
		"rope_qkv_f32", "rope_qkv_f16", "rope_qkv_q8_0", "rope_qkv_q4_0")
	// The tiled GEMM needs 64 work-items and its tiles in local memory.
	b.tune.gemm = minOf(64, mm...) == 64 && b.info.LocalMem >= mmLocalBytes+1024
	// The tensor-core GEMM needs 4 warps and its f16 tiles.
	b.tune.tc = b.variant.mma && minOf(128, tc...) == 128 && b.info.LocalMem >= tcLocalBytes+1024
	b.tune.mmMin = 16
	// The integer tensor-core GEMM: 4 warps and its int8 tiles.
	b.tune.mmq = b.variant.mmq && minOf(128, "mul_mmq_q4_0") == 128 && b.info.LocalMem >= mqLocalBytes(b.env.mqBN)+1024
	// The row-group GEMV needs work-groups of 32 by a few row groups.
	b.tune.mwGroups = min(b.env.mwGroups, minOf(32*b.env.mwGroups, "mul_mw_q4_0", "mul_mw_q6_K", "mul_mw3_q4_0", "mul_mw_swiglu_q4_0", "mul_mw3n_q4_0", "mul_mw_swiglun_q4_0", "mul_mw3nr_f32", "mul_mw3nr_f16", "mul_mwt_q4_0", "mul_mwt_q6_K")/32)
	b.tune.mw = b.tune.mwGroups >= 1 && b.env.mw
	b.tune.mwt = b.tune.mw && b.env.mwt
	b.tune.mwq = b.tune.mwt && b.env.mwq && b.variant.nvidia && minOf(32*b.tune.mwGroups, "mul_mwq_q4_0") >= 32*b.tune.mwGroups
	if b.tune.mwq {
		b.tune.mmMin = 33
	}
	if b.env.mmMin > 0 {
		b.tune.mmMin = b.env.mmMin
	}
	b.tune.faTiled = minOf(128, "attention_tiled") == 128 && b.env.attnTiled
	if b.tune.lwsAttn < 8 {
		return errorf("the attention kernel allows only %d work-items per group", b.tune.lwsAttn)
	}
	b.tune0 = b.tune
	return nil
}

// switches are the environment's tuning switches (DEVELOPERS.md lists
// them). Open reads them once, before it builds a program (mqBN and
// defines are build options), and the backend never reads the
// environment again.
type switches struct {
	mw  bool // the row-group GEMV may serve one-token products ($OCELOT_OPENCL_MW=0: no)
	mwt bool // and products of a few tokens ($OCELOT_OPENCL_MWT=0: no)
	mwq bool // those on int8 activations where dp4a exists ($OCELOT_OPENCL_MWQ=0: no)
	// mmMin is the fewest tokens a product takes the GEMM for:
	// $OCELOT_OPENCL_MM_MIN (2 to 1024) for tuning, or 0: chosen (16; 33
	// where the int8 few-token GEMV runs, which on the H200 decoded 16
	// sequences at 743 tok/s against the GEMM's 239, 8b).
	mmMin     int
	attnTiled bool // prompts may use attention_tiled ($OCELOT_OPENCL_ATTN_TILED=0: no)
	attnSplit bool // decode attention may split over work-groups ($OCELOT_OPENCL_ATTN_SPLIT=0: no)
	// mqBN is the integer GEMM's tokens per work-group (MQ_BN): 128, or
	// $OCELOT_OPENCL_MQ_BN (a multiple of 8 up to 128) for tuning. On the
	// H200 128 gave 8b pp512 5,472 tok/s against 5,139 with 64 (1b: the
	// same).
	mqBN int
	// mwB is the row-group GEMV's blocks per lane and x tile (MW_B): mwB,
	// or $OCELOT_OPENCL_MW_B (1, 2 or 4) for tuning.
	mwB int
	// mwGroups are its row groups per work-group: mwGroups, or
	// $OCELOT_OPENCL_MW_G (1 to 32) for tuning.
	mwGroups int
	// mwqLanes are the lanes of a row group of the few-token GEMV on
	// int8 activations (MWQ_LANES): mwqLanes, or $OCELOT_OPENCL_MWQ_LANES
	// (32, 64, 128 or 256) for tuning.
	mwqLanes int
	// GEMV shape overrides ($OCELOT_OPENCL_MV_LANES,
	// $OCELOT_OPENCL_MV_THREADS): lanes per unit (a power of two) and
	// work-items wanted per compute unit; 0 chooses from the device.
	mvLanes, mvPerCU int
	// defines are extra build options for kernel experiments
	// ($OCELOT_OPENCL_DEFINES); they may not redefine a host constant
	// (hostDefines).
	defines string
}

// readSwitches reads the tuning switches from the environment.
func readSwitches() (switches, error) {
	e := switches{
		mw:        os.Getenv("OCELOT_OPENCL_MW") != "0",
		mwt:       os.Getenv("OCELOT_OPENCL_MWT") != "0",
		mwq:       os.Getenv("OCELOT_OPENCL_MWQ") != "0",
		attnTiled: os.Getenv("OCELOT_OPENCL_ATTN_TILED") != "0",
		attnSplit: os.Getenv("OCELOT_OPENCL_ATTN_SPLIT") != "0",
		mqBN:      128,
		mwB:       mwB,
		mwGroups:  mwGroups,
		mwqLanes:  mwqLanes,
		defines:   os.Getenv("OCELOT_OPENCL_DEFINES"),
	}
	if v, err := strconv.Atoi(os.Getenv("OCELOT_OPENCL_MW_B")); err == nil && (v == 1 || v == 2 || v == 4) {
		e.mwB = v
	}
	if v, err := strconv.Atoi(os.Getenv("OCELOT_OPENCL_MW_G")); err == nil && v >= 1 && v <= 32 {
		e.mwGroups = v
	}
	if v, err := strconv.Atoi(os.Getenv("OCELOT_OPENCL_MWQ_LANES")); err == nil && (v == 32 || v == 64 || v == 128 || v == 256) {
		e.mwqLanes = v
	}
	if v, err := strconv.Atoi(os.Getenv("OCELOT_OPENCL_MM_MIN")); err == nil && v >= 2 && v <= 1024 {
		e.mmMin = v
	}
	if v, err := strconv.Atoi(os.Getenv("OCELOT_OPENCL_MQ_BN")); err == nil && v >= 8 && v <= 128 && v%8 == 0 {
		e.mqBN = v
	}
	if v, err := strconv.Atoi(os.Getenv("OCELOT_OPENCL_MV_LANES")); err == nil && v > 0 {
		e.mvLanes = pow2Floor(v)
	}
	if v, err := strconv.Atoi(os.Getenv("OCELOT_OPENCL_MV_THREADS")); err == nil && v > 0 {
		e.mvPerCU = v
	}
	if n := hostDefined(e.defines); n != "" {
		return e, errorf("OCELOT_OPENCL_DEFINES=%q defines %s, which the host passes to the kernels from its own constant (change that in backend.go instead; MQ_BN: OCELOT_OPENCL_MQ_BN)", e.defines, n)
	}
	return e, nil
}

// The kernels' tile sizes and related constants. Those named in capitals
// in their comments reach kernels.cl only as build options (hostDefines in
// program.go): these constants are their one source.
const (
	mmTM         = 64 // weight rows per tile of the GEMM (MM_TM)
	mmTN         = 32 // tokens per tile of the GEMM (MM_TN)
	mmLocalBytes = 4 * (32*(mmTM+1) + 32*(mmTN+1))
	// mmTN64 is the tokens per tile of the wider GEMM, mul_mm64_* (MM_TN64),
	// a tuner candidate for prompts; at most 64 (8 a work-item).
	mmTN64         = 64
	mm64LocalBytes = 4 * (32*(mmTM+1) + 32*(mmTN64+1))
	mvR            = 4   // rows per GEMV unit (MV_R)
	mvNT           = 8   // tokens per GEMV pass (MV_NT)
	mvGroup        = 256 // GEMV work-group size wanted
	mvMinLanes     = 16  // lanes per GEMV unit, at least (coalescing)
	mvMaxLanes     = 256
	// mvThreadsPerCU is how many GEMV work-items a GPU compute unit
	// should hold to keep enough loads in flight (a full NVIDIA SM).
	mvThreadsPerCU = 2048
	tcBM, tcBN     = 64, 64 // weight rows and tokens per tile of the tensor-core GEMM (TC_BM, TC_BN)
	tcLD           = 40     // halves per local row of the tensor-core tiles (TC_LD)
	tcLocalBytes   = 2 * tcLD * (tcBM + tcBN)
	attDPT         = 8      // output dimensions per attention work-item (ATT_DPT)
	mqBM           = 64     // weight rows per tile of the integer GEMM (MQ_BM; its tokens: switches.mqBN, MQ_BN)
	mqLD           = 36     // words per local row of the integer GEMM's tiles (MQ_LD)
	faTQ, faTK     = 32, 16 // query tokens and cells per tile of attention_tiled (FA_TQ, FA_TK)
	faDMax         = 256    // largest head size of attention_tiled (FA_DMAX)
	mqKB           = 4      // blocks per step of the integer GEMM (MQ_KB)
	mwR            = 2      // rows per row group of the row-group GEMV (MW_R)
	mwtR           = 4      // rows per row group of the GEMV for a few tokens (MWT_R in kernels.cl)
	mwGroups       = 8      // row groups per work-group wanted (switches.mwGroups)
	mwB            = 1      // blocks per lane and x tile of the row-group GEMV (switches.mwB, MW_B)
	// mwqLanes are the lanes per row group of the few-token GEMV on int8
	// activations (switches.mwqLanes, MWQ_LANES): on the H200 (8b, 8
	// sequences decoding, two runs) 32 gave 631/680 tok/s, 64 652/646,
	// 128 518/542 and 256 375/378: the kernels' time goes to their
	// per-token reductions, which more lanes make dearer.
	mwqLanes = 32
)

func (b *Backend) logf(format string, args ...any) {
	if b.opts.Logf != nil {
		b.opts.Logf(format, args...)
	}
}

// Name is "opencl".
func (b *Backend) Name() string { return "opencl" }

// Device describes the device, its platform and driver, and the kernel
// variant.
func (b *Backend) Device() string {
	return fmt.Sprintf("%s (%s, %s, driver %s, %s kernels)", b.info.Name, b.info.Platform, b.info.OpenCLC, b.info.Driver, b.variant)
}

// Info returns the device's description.
func (b *Backend) Info() DeviceInfo { return b.info }

// Start says how Open went.
func (b *Backend) Start() StartInfo { return b.start }

// ---------------------------------------------------------------------------
// What the backend runs.

func weightType(t quant.Type) bool { return deviceType(t) }

// kvType reports whether t can be a KV cache type here: every one ocelot
// has (SET_ROWS and attention have kernels for each).
func kvType(t quant.Type) bool { return model.HasType(model.KVTypes, t) }

const maxDim = 1<<31 - 1

// Supports says whether the backend runs node n with its types and
// shapes.
func (b *Backend) Supports(n *graph.Tensor) bool {
	if n != nil && n.Op == graph.OpFused {
		return b.supportsFused(n)
	}
	if n == nil || n.Type != quant.F32 && n.Op != graph.OpSetRows {
		return false
	}
	if int64(n.Elements()) > maxDim || n.Shape[2] != 1 || n.Shape[3] != 1 {
		return false
	}
	s0, s1, s2 := n.Src[0], n.Src[1], n.Src[2]
	f32 := func(t *graph.Tensor) bool { return t != nil && t.Type == quant.F32 }
	// Index inputs must be inputs, whose values the host checks before
	// the kernels use them (Supports may be asked before they are set).
	input := func(t *graph.Tensor, count int) bool {
		return t != nil && t.Type == graph.I32 && t.Kind == graph.Input && t.Elements() == count
	}
	width, rows := n.Shape[0], n.Rows()
	switch n.Op {
	case graph.OpGetRows:
		return s0 != nil && weightType(s0.Type) && s0.Shape[0] == width && input(s1, rows) && s0.Shape[0]%s0.Type.BlockSize() == 0
	case graph.OpMulMat:
		return s0 != nil && s0.Kind == graph.Weight && weightType(s0.Type) && f32(s1) &&
			s0.Shape[0] == s1.Shape[0] && s0.Shape[1] == width && s1.Rows() == rows && s0.Shape[0]%s0.Type.BlockSize() == 0
	case graph.OpRMSNorm:
		return f32(s0) && s0.Shape == n.Shape
	case graph.OpAdd, graph.OpMul, graph.OpSwiGLU:
		return f32(s0) && f32(s1) && s0.Shape == n.Shape && s1.Shape[0] == width && (s1.Rows() == rows || s1.Rows() == 1)
	case graph.OpRope:
		hd := n.Param.HeadDim
		return f32(s0) && s0.Shape == n.Shape && hd > 0 && hd%2 == 0 && width%hd == 0 && input(s1, rows) &&
			(s2 == nil || f32(s2) && s2.Elements() == hd/2 && s2.Kind == graph.Weight && len(s2.Data) == 2*hd)
	case graph.OpSetRows:
		c := s1
		if c == nil {
			return false
		}
		c = c.Storage()
		return f32(s0) && c.Kind == graph.Cache && kvType(c.Type) && n.Type == c.Type && s0.Shape[0] == c.Shape[0] &&
			c.Shape[0]%c.Type.BlockSize() == 0 && input(s2, s0.Rows())
	case graph.OpAttention:
		p := n.Param
		if !f32(s0) || s1 == nil || s2 == nil || n.Src[3] == nil || n.Src[3].Type != graph.I32 || n.Src[3].Kind != graph.Input || p.Page != graph.PageCells || p.HeadDim <= 0 || p.NHead <= 0 || p.NHeadKV <= 0 || p.NHead > maxDim || p.NHead%p.NHeadKV != 0 {
			return false
		}
		k, v := s1.Storage(), s2.Storage()
		// These products are exact wherever Supports says yes: NHead is
		// at most maxDim (above), HeadDim at most lwsAttn*attDPT (below).
		w := p.HeadDim * p.NHeadKV
		return k.Kind == graph.Cache && v.Kind == graph.Cache && kvType(k.Type) && kvType(v.Type) &&
			k.Shape[0] == w && v.Shape[0] == w && width == p.HeadDim*p.NHead && s0.Shape == n.Shape &&
			p.NKV >= 1 && int64(n.Src[3].Elements()) <= maxDim &&
			p.HeadDim <= b.tune.lwsAttn*attDPT && w%k.Type.BlockSize() == 0 && w%v.Type.BlockSize() == 0
	}
	return false
}

// ---------------------------------------------------------------------------
// Resident tensors.

func devOf(t *graph.Tensor) *devTensor {
	d, _ := t.Bufs[graph.Accel].(*devTensor)
	return d
}

// oomError explains an allocation the device could not make.
func (b *Backend) oomError(what string, size int64, err error) error {
	return fmt.Errorf("opencl: out of device memory for %s (%s; %s of %s already in use on %s): offload fewer layers (a smaller -ngl) or use a smaller KV cache type: %w",
		what, mib(size), mib(b.used), mib(b.info.GlobalMem), b.info.Name, err)
}

// alloc makes a device buffer, checking the device's limits first.
func (b *Backend) alloc(what string, size int64) (clMem, error) {
	if size < 0 {
		return 0, errorf("%s: a buffer of %d bytes", what, size)
	}
	if size > b.info.MaxAlloc {
		return 0, fmt.Errorf("opencl: %s needs one buffer of %s, more than %s allows (CL_DEVICE_MAX_MEM_ALLOC_SIZE %s): keep it on the CPU (a smaller -ngl)",
			what, mib(size), b.info.Name, mib(b.info.MaxAlloc))
	}
	if b.used+size > b.info.GlobalMem {
		return 0, b.oomError(what, size, errorf("the device has %s", mib(b.info.GlobalMem)))
	}
	m, err := b.a.newBuffer(b.ctx, max(size, 4), what)
	if err != nil {
		if IsOutOfMemory(err) {
			return 0, b.oomError(what, size, err)
		}
		return 0, err
	}
	b.used += size
	return m, nil
}

// Load makes a weight or cache resident: a weight is uploaded in the
// device's layout, a cache is allocated and zeroed. Loading a resident
// tensor again does nothing.
func (b *Backend) Load(t *graph.Tensor) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errorf("backend is closed")
	}
	if devOf(t) != nil {
		return nil
	}
	if t.Kind != graph.Weight && t.Kind != graph.Cache {
		return errorf("load %s: a %s tensor is not persistent", t.Name, t.Kind)
	}
	lay, err := newLayout(t.Type, t.Shape)
	if err != nil {
		return errorf("load %s: %w", t.Name, err)
	}
	if t.Kind == graph.Weight && int64(len(t.Data)) != lay.size {
		return errorf("load %s: %d bytes of data for %s %v, which needs %d", t.Name, len(t.Data), t.Type, t.Shape, lay.size)
	}
	m, err := b.alloc(t.Name, lay.size)
	if err != nil {
		return err
	}
	d := &devTensor{mem: m, lay: lay, name: t.Name}
	if t.Kind == graph.Weight {
		err = b.upload(d, t.Data)
	} else {
		err = b.a.zero(b.q, m, t.Name, 0, lay.size)
	}
	if err == nil {
		// Allocation failures surface at the first use of a buffer.
		err = b.a.finishQueue(b.q)
	}
	if err != nil {
		b.freeBuffer(m)
		b.used -= lay.size
		if IsOutOfMemory(err) {
			return b.oomError(t.Name, lay.size, err)
		}
		return err
	}
	t.Bufs[graph.Accel] = d
	return nil
}

// upload writes raw (ggml-layout) bytes into a resident tensor, blocking.
// A split layout goes up in chunks of at most uploadChunk bytes through
// one staging buffer, so an upload never holds a device-layout copy of
// the whole tensor in host memory (on a device that shares the host's
// memory that copy would be a third one, beside the file's pages and
// the buffer's).
func (b *Backend) upload(d *devTensor, raw []byte) error {
	var stage []byte
	if d.lay.split() {
		if b.scratch.stage == nil {
			b.scratch.stage = make([]byte, uploadChunk)
		}
		stage = b.scratch.stage
	}
	return d.lay.toDeviceChunks(raw, stage, func(off int64, c []byte) error {
		return b.a.write(b.q, d.mem, d.name, true, off, unsafe.Pointer(&c[0]), int64(len(c)), nil)
	})
}

// Free releases a resident tensor.
func (b *Backend) Free(t *graph.Tensor) {
	b.mu.Lock()
	defer b.mu.Unlock()
	d := devOf(t)
	if d == nil {
		return
	}
	b.freeBuffer(d.mem)
	b.used -= d.lay.size
	t.Bufs[graph.Accel] = nil
}

// Upload replaces a resident tensor's bytes (raw, in its type).
func (b *Backend) Upload(t *graph.Tensor, src []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	d := devOf(t)
	if d == nil {
		return errorf("upload %s: not resident on the device", t.Name)
	}
	if int64(len(src)) != d.lay.size {
		return errorf("upload %s: %d bytes, want %d", t.Name, len(src), d.lay.size)
	}
	return b.upload(d, src)
}

// Download reads a resident tensor's bytes back, in ggml's layout, for
// any type.
func (b *Backend) Download(t *graph.Tensor, dst []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	d := devOf(t)
	if d == nil {
		return errorf("download %s: not resident on the device", t.Name)
	}
	if int64(len(dst)) != d.lay.size {
		return errorf("download %s: %d bytes of room, want %d", t.Name, len(dst), d.lay.size)
	}
	buf := dst
	if d.lay.split() {
		buf = make([]byte, d.lay.size)
	}
	if err := b.a.read(b.q, d.mem, d.name, true, 0, unsafe.Pointer(&buf[0]), d.lay.size, nil); err != nil {
		return err
	}
	if d.lay.split() {
		d.lay.fromDevice(dst, buf)
	}
	return nil
}

// CopyRows copies rows [src, src+n) of a resident tensor over rows
// [dst, dst+n) on the device: each region of the layout in turn.
func (b *Backend) CopyRows(t *graph.Tensor, dst, src, n int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	d := devOf(t)
	if d == nil {
		return errorf("copy rows of %s: not resident on the device", t.Name)
	}
	rows := d.lay.rows
	if n < 0 || src < 0 || dst < 0 || int64(src)+int64(n) > rows || int64(dst)+int64(n) > rows || src < dst+n && dst < src+n {
		return errorf("copy rows [%d, %d) of %s over [%d, %d): outside its %d rows or overlapping", src, src+n, t.Name, dst, dst+n, rows)
	}
	if n == 0 {
		return nil
	}
	perRow := d.lay.blocks / rows // blocks (elements, for float types) per row
	regions := parts[d.lay.typ]
	if len(regions) == 0 {
		regions = []part{{0, int(d.lay.size / d.lay.blocks)}}
	}
	for i, r := range regions {
		rb := perRow * int64(r.n) // the region's bytes per row
		if err := b.a.copy(b.q, d.mem, d.mem, d.name, d.lay.off[i]+int64(src)*rb, d.lay.off[i]+int64(dst)*rb, int64(n)*rb); err != nil {
			return err
		}
	}
	return nil
}

// ---------------------------------------------------------------------------
// Arenas.

// arena is one buffer for a sequence's intermediates, plus a small device
// buffer for the graph's inputs (token ids, positions, cells).
type arena struct {
	b      *Backend
	mem    clMem
	size   int64
	in     clMem
	inCap  int64
	inUsed int64
	inputs map[*graph.Tensor]loc
	old    []clMem // input buffers outgrown since the last Sync
}

func (a *arena) Size() int64 { return a.size }

// Free releases the arena (OpenCL keeps the memory until queued work that
// uses it is done).
func (a *arena) Free() {
	b := a.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if a.mem == 0 {
		return
	}
	b.freeBuffer(a.mem)
	b.used -= a.size
	a.mem = 0
	b.releaseInputs(a)
	if a.in != 0 {
		b.freeBuffer(a.in)
		b.used -= a.inCap
		a.in = 0
	}
	delete(b.arenas, a)
}

// NewArena allocates scratch memory for intermediates.
func (b *Backend) NewArena(size int64) (accel.Arena, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, errorf("backend is closed")
	}
	m, err := b.alloc("intermediates", size)
	if err != nil {
		return nil, err
	}
	a := &arena{b: b, mem: m, size: size, inputs: map[*graph.Tensor]loc{}}
	b.arenas[a] = true
	return a, nil
}

func (b *Backend) arenaOf(x accel.Arena) (*arena, error) {
	a, ok := x.(*arena)
	if !ok || a.b != b {
		return nil, errorf("arena %T does not belong to this backend", x)
	}
	if a.mem == 0 {
		return nil, errorf("arena was freed")
	}
	return a, nil
}

// releaseInputs forgets staged inputs and frees outgrown input buffers.
func (b *Backend) releaseInputs(a *arena) {
	for _, m := range a.old {
		b.freeBuffer(m)
	}
	a.old = nil
	clear(a.inputs)
	a.inUsed = 0
}

// loc is where a tensor's data is: a buffer and the offsets of its
// regions there.
type loc struct {
	mem clMem
	off [4]uint64
	typ quant.Type
	lay *layout // resident tensors only
}

// input stages an I32 input in the arena's input buffer with a
// non-blocking write from a host copy that lives until Sync.
func (b *Backend) input(a *arena, t *graph.Tensor) (loc, error) {
	if l, ok := a.inputs[t]; ok {
		return l, nil
	}
	if len(t.I32s) != t.Elements() {
		return loc{}, errorf("input %s has %d values for %d elements", t.Name, len(t.I32s), t.Elements())
	}
	size, err := quant.MulSize(4, int64(len(t.I32s)))
	if err != nil {
		return loc{}, errorf("size of input %s: %w", t.Name, err)
	}
	// size is that of host memory, and inUsed and inCap are within one
	// device buffer: the sums below cannot wrap.
	need := (size + 255) / 256 * 256
	if a.inUsed+need > a.inCap {
		newCap := max(2*a.inCap, need, 64<<10)
		m, err := b.alloc("inputs", newCap)
		if err != nil {
			return loc{}, err
		}
		if a.in != 0 {
			a.old = append(a.old, a.in)
			b.used -= a.inCap
		}
		a.in, a.inCap, a.inUsed = m, newCap, 0
	}
	host := append([]int32(nil), t.I32s...)
	b.pending = append(b.pending, host)
	if err := b.a.write(b.q, a.in, t.Name, false, a.inUsed, unsafe.Pointer(&host[0]), size, nil); err != nil {
		return loc{}, err
	}
	l := loc{mem: a.in, off: [4]uint64{uint64(a.inUsed)}, typ: graph.I32}
	a.inUsed += need
	a.inputs[t] = l
	return l, nil
}

// locate finds a tensor's data: resident tensors in their buffers,
// inputs staged in the arena, intermediates at their planned offset.
func (b *Backend) locate(a *arena, t *graph.Tensor) (loc, error) {
	t = t.Storage()
	switch t.Kind {
	case graph.Weight, graph.Cache:
		d := devOf(t)
		if d == nil {
			return loc{}, errorf("%s (%s) is not resident on the device", t.Name, t.Kind)
		}
		var off [4]uint64
		for i, o := range d.lay.off {
			off[i] = uint64(o)
		}
		return loc{mem: d.mem, off: off, typ: t.Type, lay: &d.lay}, nil
	case graph.Input:
		return b.input(a, t)
	}
	// Compared without the sum Offset+size, which could wrap.
	if nb := t.Bytes(); t.Offset < 0 || nb > a.size || t.Offset > a.size-nb {
		return loc{}, errorf("%s at offset %d (%d bytes) lies outside the arena of %d bytes", t.Name, t.Offset, nb, a.size)
	}
	return loc{mem: a.mem, off: [4]uint64{uint64(t.Offset)}, typ: t.Type}, nil
}

// Read copies an intermediate's f32 values out of the arena: the one
// blocking read of a forward pass. (The runner and the engine check what
// crosses to the host for NaN and Inf, for every backend alike.)
func (b *Backend) Read(x accel.Arena, t *graph.Tensor, dst []float32) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	a, err := b.arenaOf(x)
	if err != nil {
		return err
	}
	if t.Type != quant.F32 || len(dst) != t.Elements() {
		return errorf("read %s: %d floats from a %s tensor of %d elements", t.Name, len(dst), t.Type, t.Elements())
	}
	l, err := b.locate(a, t)
	if err != nil {
		return err
	}
	if len(dst) == 0 {
		return nil
	}
	if err := b.a.read(b.q, l.mem, t.Name, true, int64(l.off[0]), unsafe.Pointer(&dst[0]), int64(4*len(dst)), nil); err != nil {
		return err
	}
	return nil
}

// Write copies f32 values into an intermediate's place (the receiving end
// of a CPY). It blocks until the copy is made, so src may be reused.
func (b *Backend) Write(x accel.Arena, t *graph.Tensor, src []float32) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	a, err := b.arenaOf(x)
	if err != nil {
		return err
	}
	if t.Type != quant.F32 || len(src) != t.Elements() || t.Kind != graph.Intermediate {
		return errorf("write %s: %d floats into a %s %s tensor of %d elements", t.Name, len(src), t.Kind, t.Type, t.Elements())
	}
	l, err := b.locate(a, t)
	if err != nil {
		return err
	}
	if len(src) == 0 {
		return nil
	}
	return b.a.write(b.q, l.mem, t.Name, true, int64(l.off[0]), unsafe.Pointer(&src[0]), int64(4*len(src)), nil)
}

// Sync waits for all queued work, collects the profile, and releases the
// host memory and staged inputs of the finished work.
func (b *Backend) Sync() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sync()
}

func (b *Backend) sync() error {
	if b.closed {
		return nil
	}
	err := b.a.finishQueue(b.q)
	for _, e := range b.profile.events {
		if err == nil {
			start, e1 := b.a.eventTime(e.ev, e.kernel, clProfilingCommandStart)
			end, e2 := b.a.eventTime(e.ev, e.kernel, clProfilingCommandEnd)
			if e1 == nil && e2 == nil && end >= start {
				k := profKey{e.op, e.kernel}
				ot := b.profile.totals[k]
				if ot == nil {
					ot = &accel.OpTime{Op: e.op, Kernel: e.kernel}
					b.profile.totals[k] = ot
				}
				ot.Launches++
				ot.Device += time.Duration(end - start)
			}
		}
		b.a.freeEvent(e.ev)
	}
	b.profile.events = b.profile.events[:0]
	b.pending = nil
	for a := range b.arenas {
		b.releaseInputs(a)
	}
	return err
}

// Profile returns the time each op's kernels ran on the device since
// Open (or ResetProfile), longest first. It is empty unless
// Options.Profile was set; work still queued is counted after the next
// Sync.
func (b *Backend) Profile() []accel.OpTime {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]accel.OpTime, 0, len(b.profile.totals))
	for _, k := range b.profile.totals {
		out = append(out, *k)
	}
	accel.SortProfile(out)
	return out
}

// ResetProfile clears the kernel times.
func (b *Backend) ResetProfile() {
	b.mu.Lock()
	defer b.mu.Unlock()
	clear(b.profile.totals)
}

// Caps says what the backend holds and runs: every weight and KV type
// ocelot has, attention heads up to what its attention kernel's
// work-group covers, and every fusion unless fusing is off.
func (b *Backend) Caps() accel.Caps {
	c := accel.Caps{WeightTypes: model.WeightTypes, KVTypes: model.KVTypes, MaxHeadDim: b.tune.lwsAttn * attDPT, Timing: true}
	if b.tune.fuse {
		c.Fusions = graph.Fusions()
	}
	return c
}

// Memory returns the device's global memory, what this backend has not
// yet taken of it, and the largest single allocation it allows.
// (OpenCL cannot say what other processes hold.)
func (b *Backend) Memory() accel.Memory {
	b.mu.Lock()
	defer b.mu.Unlock()
	return accel.Memory{Free: max(0, b.info.GlobalMem-b.used), Total: b.info.GlobalMem, MaxAlloc: b.info.MaxAlloc}
}

// MemoryUsed is the device memory the backend holds, in bytes.
func (b *Backend) MemoryUsed() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// Close waits for queued work and releases everything. Tensors still
// resident must not be used afterwards.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	var err error
	if b.q != 0 {
		err = b.sync()
	}
	b.closed = true
	for a := range b.arenas {
		b.freeBuffer(a.mem)
		if a.in != 0 {
			b.freeBuffer(a.in)
		}
		a.mem, a.in = 0, 0
	}
	b.arenas = nil
	b.teardown()
	return err
}
