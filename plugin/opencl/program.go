package opencl

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/ocelot-llm/ocelot/graph"
)

//go:embed kernels.cl
var kernelSource string

// allKernels are the kernels the source defines, in source order.
var allKernels = func() []string {
	var out []string
	for _, m := range regexp.MustCompile(`(?m)^kernel void (\w+)\(`).FindAllStringSubmatch(kernelSource, -1) {
		out = append(out, m[1])
	}
	return out
}()

// kernelNames are the kernels a variant's program has: the tensor-core
// kernels exist only where it uses them.
func (v variant) kernelNames() []string {
	var out []string
	for _, n := range allKernels {
		if strings.HasPrefix(n, "mul_mm_tc_") && !v.mma || strings.HasPrefix(n, "mul_mmq_") && !v.mmq {
			continue
		}
		out = append(out, n)
	}
	return out
}

// variant is the set of device-specific code paths compiled in. The
// generic variant (all false) runs on every conformant OpenCL 1.2 device.
type variant struct {
	nvidia    bool   // inline PTX: exact mul/add for the quantizers
	mma       bool   // NVIDIA tensor cores with f16 activations (mma.sync m16n8k16, compute capability >= 8.0)
	mmq       bool   // NVIDIA integer tensor cores with Q8_0 activations (mma.sync m16n8k32 s8)
	emulate   bool   // tests: the tensor-core kernels with mma.sync emulated
	subgroups string // "khr" or "intel": sub-group reductions
}

func (v variant) String() string {
	var f []string
	if v.nvidia {
		f = append(f, "nvidia-ptx")
	}
	if v.mma {
		f = append(f, "mma")
	}
	if v.mmq {
		f = append(f, "mmq")
	}
	if v.emulate {
		f = append(f, "emulated")
	}
	if v.subgroups != "" {
		f = append(f, "subgroups-"+v.subgroups)
	}
	if len(f) == 0 {
		return "generic"
	}
	return strings.Join(f, "+")
}

// hostDefines are the kernels' tile sizes and the other constants that
// both sides use, as -D build options: the Go constants (backend.go) are
// their only source. kernels.cl has no defaults for them and stops with
// #error when one is missing. The integer GEMM's tokens per work-group
// (mqBN) and the row-group GEMV's blocks per lane and x tile (mwB) come
// from the tuning switches (see switches). Every variant gets all of them;
// kernels a variant leaves out ignore theirs.
func hostDefines(sw switches) []hostDefine {
	return []hostDefine{
		{"MV_R", mvR}, {"MV_NT", mvNT},
		{"MW_R", mwR}, {"MW_B", sw.mwB}, {"MWQ_LANES", sw.mwqLanes},
		{"MM_TM", mmTM}, {"MM_TN", mmTN}, {"MM_TN64", mmTN64},
		{"ATT_DPT", attDPT}, {"KV_PAGE", graph.PageCells},
		{"FA_TQ", faTQ}, {"FA_TK", faTK}, {"FA_DMAX", faDMax},
		{"TC_BM", tcBM}, {"TC_BN", tcBN}, {"TC_LD", tcLD},
		{"MQ_BM", mqBM}, {"MQ_BN", sw.mqBN}, {"MQ_KB", mqKB}, {"MQ_LD", mqLD},
	}
}

// hostDefine is one constant the host passes to the kernels' compiler.
type hostDefine struct {
	name  string
	value int
}

// options are the program's build options, for the build switches sw
// (mqBN, mwB and the extra options of $OCELOT_OPENCL_DEFINES, read once
// by Open). They are part of the binary cache's key (cacheKey).
func (v variant) options(sw switches) string {
	o := []string{"-cl-std=CL1.2"}
	if v.nvidia {
		o = append(o, "-DOCL_NVIDIA")
	}
	if v.mma {
		o = append(o, "-DOCL_NV_MMA")
	}
	if v.mmq {
		o = append(o, "-DOCL_NV_MMQ")
	}
	if v.emulate {
		o = append(o, "-DOCL_MMA_EMULATE")
	}
	switch v.subgroups {
	case "khr":
		o = append(o, "-DOCL_SUBGROUPS_KHR")
	case "intel":
		o = append(o, "-DOCL_SUBGROUPS_INTEL")
	}
	for _, d := range hostDefines(sw) {
		o = append(o, fmt.Sprintf("-D%s=%d", d.name, d.value))
	}
	// Tuning experiments: extra -D options (part of the cache key).
	if sw.defines != "" {
		o = append(o, sw.defines)
	}
	return strings.Join(o, " ")
}

// hostDefined returns the first of the host's constants (hostDefines)
// that extra build options define, or "": defining one there would change
// the kernels' value without the host's, which the host must not allow.
func hostDefined(extra string) string {
	f := strings.Fields(extra)
	for i, t := range f {
		if !strings.HasPrefix(t, "-D") {
			continue
		}
		name := t[2:]
		if name == "" && i+1 < len(f) {
			name = f[i+1]
		}
		name, _, _ = strings.Cut(name, "=")
		for _, d := range hostDefines(switches{}) {
			if name == d.name {
				return name
			}
		}
	}
	return ""
}

// allVariants are the variants a device may be offered.
var allVariants = []variant{{}, {nvidia: true}, {nvidia: true, mma: true}, {nvidia: true, mmq: true}, {subgroups: "khr"}, {subgroups: "intel"}}

// availableVariants lists every variant a device's capabilities allow,
// fastest first, ending with the generic one: NVIDIA's inline PTX, with
// tensor cores from compute capability 8.0; sub-group reductions where an
// extension offers them.
func availableVariants(d *DeviceInfo) []variant {
	var out []variant
	if d.InlinePTX && d.Family() == "nvidia" {
		if d.NVComputeMajor >= 8 {
			out = append(out, variant{nvidia: true, mmq: true}, variant{nvidia: true, mma: true})
		}
		out = append(out, variant{nvidia: true})
	}
	switch {
	case d.SubgroupsKHR:
		out = append(out, variant{subgroups: "khr"})
	case d.SubgroupsIntel:
		out = append(out, variant{subgroups: "intel"})
	}
	return append(out, variant{})
}

// validated says whether a variant is taken by default: it has passed the
// whole test suite, the end-to-end comparison included, on a device of
// its kind. The others run only when OCELOT_OPENCL_KERNELS names them:
// the tensor-core GEMM (exact on its own, NMSE 9e-7, but its f16
// activations flip Q4_0 KV-cache levels often enough that end-to-end
// logits on the test models exceed NMSE 5e-4), and the sub-group
// reductions, which no device here has run.
func (v variant) validated() bool {
	return !v.mma && v.subgroups == "" && !v.emulate
}

// candidateVariants lists the variants Open tries on a device, fastest
// first: the validated ones among those its capabilities allow. Open takes
// the first that builds and passes the self-test.
func candidateVariants(d *DeviceInfo) []variant {
	var out []variant
	for _, v := range availableVariants(d) {
		if v.validated() {
			out = append(out, v)
		}
	}
	return out
}

// kernel is one kernel object with what the driver says of it.
type kernel struct {
	name     string
	k        clKernel
	maxWG    int   // CL_KERNEL_WORK_GROUP_SIZE
	multiple int   // CL_KERNEL_PREFERRED_WORK_GROUP_SIZE_MULTIPLE
	localMem int64 // CL_KERNEL_LOCAL_MEM_SIZE (static local memory)
}

// buildResult says how the program was obtained.
type buildResult struct {
	prog      clProgram
	fromCache bool
	took      time.Duration
	cacheFile string // where the binary is (or is to be) cached
}

// cacheKey identifies a program binary: the device, its driver, the
// build options and the kernel source.
func cacheKey(d *DeviceInfo, options, src string) string {
	h := sha256.New()
	for _, s := range []string{d.Platform, d.PlatformVersion, d.Name, d.Vendor, d.Version, d.Driver, options, src} {
		fmt.Fprintf(h, "%d:%s\n", len(s), s)
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// defaultCacheDir is os.UserCacheDir()/ocelot/opencl.
func defaultCacheDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "ocelot", "opencl")
}

// binaryCacheByDefault says whether the program-binary cache pays on a
// device. PoCL compiles kernels lazily, one work-group size at a time, and
// keeps them in its own cache; asking it for a program binary compiles
// every kernel up front (about a minute on two cores), so on PoCL the
// cache is used only when a cache folder is named explicitly.
func binaryCacheByDefault(d *DeviceInfo) bool {
	return !strings.Contains(d.Platform, "Portable Computing Language")
}

// buildProgram builds src for the device, from the binary cache when it
// holds a binary for this device, driver, options and source, and from
// source otherwise; the caller saves the binary (saveBinary) once the
// program has proved itself.
func buildProgram(a *api, ctx clContext, d *DeviceInfo, src, opts, cacheDir string) (buildResult, error) {
	start := time.Now()
	var res buildResult
	if cacheDir != "" {
		res.cacheFile = filepath.Join(cacheDir, cacheKey(d, opts, src)+".bin")
		if bin, err := os.ReadFile(res.cacheFile); err == nil {
			if p, err := a.programFromBinary(ctx, d.id, bin); err == nil {
				if err := a.build(p, d.id, opts); err == nil {
					res.prog, res.fromCache, res.took = p, true, time.Since(start)
					return res, nil
				}
				a.freeProgram(p)
			}
			// A stale or corrupt binary: rebuild from source and replace it.
		}
	}
	p, err := a.programFromSource(ctx, src)
	if err != nil {
		return res, err
	}
	if err := a.build(p, d.id, opts); err != nil {
		log := strings.TrimSpace(a.buildLog(p, d.id))
		a.freeProgram(p)
		if len(log) > 4000 {
			log = log[:4000] + "\n..."
		}
		if log == "" {
			return res, fmt.Errorf("%w: kernels (%s) failed to build (no build log)", err, opts)
		}
		return res, fmt.Errorf("%w: kernels (%s) failed to build:\n%s", err, opts, log)
	}
	res.prog, res.took = p, time.Since(start)
	return res, nil
}

// saveBinary writes the program's binary atomically.
func saveBinary(a *api, p clProgram, file string) error {
	bin, err := a.binary(p)
	if err != nil {
		return err
	}
	return writeFileAtomic(file, bin)
}

// writeFileAtomic writes data to file through a temporary file in the
// same folder (made if missing) and a rename, so that a reader never sees
// a partial file: the program binaries and the tuner's results.
func writeFileAtomic(file string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), ".tmp-*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if werr != nil || cerr != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %v", file, errorsJoin(werr, cerr))
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}

func errorsJoin(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// makeKernels creates every kernel of a built program and asks the driver
// about each.
func makeKernels(a *api, p clProgram, d clDevice, names []string) (map[string]*kernel, error) {
	ks := map[string]*kernel{}
	for _, name := range names {
		k, err := a.newKernel(p, name)
		if err != nil {
			freeKernels(a, ks)
			return nil, err
		}
		kr := &kernel{name: name, k: k}
		ks[name] = kr
		wg, err := a.kernelWGInfo(k, d, name, clKernelWorkGroupSize)
		if err != nil {
			freeKernels(a, ks)
			return nil, err
		}
		kr.maxWG = int(wg)
		if m, err := a.kernelWGInfo(k, d, name, clKernelPreferredWGSMultiple); err == nil {
			kr.multiple = int(m)
		}
		if lm, err := a.kernelWGInfo(k, d, name, clKernelLocalMemSize); err == nil {
			kr.localMem = int64(lm)
		}
		if kr.maxWG < 1 {
			freeKernels(a, ks)
			return nil, errorf("kernel %s: the driver allows no work-group size", name)
		}
	}
	return ks, nil
}

func freeKernels(a *api, ks map[string]*kernel) {
	for _, k := range ks {
		a.freeKernel(k.k)
	}
}
