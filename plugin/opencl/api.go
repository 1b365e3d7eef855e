package opencl

import (
	"fmt"
	"runtime"
	"sync"
	"unsafe"
)

// The OpenCL object handles. They are opaque pointers in C; here they are
// typed integers so that one kind cannot be passed for another.
type (
	clPlatform uintptr
	clDevice   uintptr
	clContext  uintptr
	clQueue    uintptr
	clMem      uintptr
	clProgram  uintptr
	clKernel   uintptr
	clEvent    uintptr
)

// OpenCL enumerants this package uses (cl.h, OpenCL 1.2).
const (
	clPlatformVersion = 0x0901
	clPlatformName    = 0x0902
	clPlatformVendor  = 0x0903

	clDeviceTypeCPU         = 1 << 1
	clDeviceTypeGPU         = 1 << 2
	clDeviceTypeAccelerator = 1 << 3
	clDeviceTypeAll         = 0xFFFFFFFF

	clDeviceType                            = 0x1000
	clDeviceMaxComputeUnits                 = 0x1002
	clDeviceMaxWorkGroupSize                = 0x1004
	clDeviceMaxClockFrequency               = 0x100C
	clDeviceMaxMemAllocSize                 = 0x1010
	clDeviceImageSupport                    = 0x1016
	clDeviceMemBaseAddrAlign                = 0x1019
	clDeviceSingleFPConfig                  = 0x101B
	clDeviceGlobalMemSize                   = 0x101F
	clDeviceLocalMemSize                    = 0x1023
	clDeviceAvailable                       = 0x1027
	clDeviceCompilerAvailable               = 0x1028
	clDeviceName                            = 0x102B
	clDeviceVendor                          = 0x102C
	clDriverVersion                         = 0x102D
	clDeviceVersion                         = 0x102F
	clDeviceExtensions                      = 0x1030
	clDeviceHostUnifiedMemory               = 0x1035
	clDeviceOpenCLCVersion                  = 0x103D
	clDeviceImageMaxBufferSize              = 0x1040
	clDeviceComputeCapabilityMajorNV        = 0x4000 // cl_nv_device_attribute_query
	clDeviceComputeCapabilityMinorNV        = 0x4001
	clFPCorrectlyRoundedDivSqrt             = 1 << 7
	clQueueProfilingEnable                  = 1 << 1
	clMemReadWrite                          = 1 << 0
	clProgramNumDevices                     = 0x1162
	clProgramBinarySizes                    = 0x1165
	clProgramBinaries                       = 0x1166
	clProgramBuildLog                       = 0x1183
	clKernelWorkGroupSize                   = 0x11B0
	clKernelLocalMemSize                    = 0x11B2
	clKernelPreferredWGSMultiple            = 0x11B3
	clProfilingCommandStart                 = 0x1282
	clProfilingCommandEnd                   = 0x1283
	clTrue                           uint32 = 1
	clFalse                          uint32 = 0
)

// api is the small, typed surface of the OpenCL library ocelot calls.
// Every call goes through one of its methods, which consult callHook
// first and turn a failed status into an *Error naming the call: no other
// code in the package calls the library's functions.
type api struct {
	path string // the library that was loaded

	getPlatformIDs          func(n uint32, platforms *clPlatform, numPlatforms *uint32) int32
	getPlatformInfo         func(p clPlatform, param uint32, size uintptr, value unsafe.Pointer, sizeRet *uintptr) int32
	getDeviceIDs            func(p clPlatform, typ uint64, n uint32, devices *clDevice, numDevices *uint32) int32
	getDeviceInfo           func(d clDevice, param uint32, size uintptr, value unsafe.Pointer, sizeRet *uintptr) int32
	createContext           func(props unsafe.Pointer, n uint32, devices *clDevice, notify, user uintptr, errcode *int32) clContext
	releaseContext          func(c clContext) int32
	createCommandQueue      func(c clContext, d clDevice, props uint64, errcode *int32) clQueue
	releaseCommandQueue     func(q clQueue) int32
	createBuffer            func(c clContext, flags uint64, size uintptr, host unsafe.Pointer, errcode *int32) clMem
	releaseMemObject        func(m clMem) int32
	createProgramWithSource func(c clContext, count uint32, strs **byte, lengths *uintptr, errcode *int32) clProgram
	createProgramWithBinary func(c clContext, n uint32, devices *clDevice, lengths *uintptr, bins **byte, status *int32, errcode *int32) clProgram
	buildProgram            func(p clProgram, n uint32, devices *clDevice, options *byte, notify, user uintptr) int32
	getProgramBuildInfo     func(p clProgram, d clDevice, param uint32, size uintptr, value unsafe.Pointer, sizeRet *uintptr) int32
	getProgramInfo          func(p clProgram, param uint32, size uintptr, value unsafe.Pointer, sizeRet *uintptr) int32
	releaseProgram          func(p clProgram) int32
	createKernel            func(p clProgram, name *byte, errcode *int32) clKernel
	releaseKernel           func(k clKernel) int32
	setKernelArg            func(k clKernel, index uint32, size uintptr, value unsafe.Pointer) int32
	getKernelWorkGroupInfo  func(k clKernel, d clDevice, param uint32, size uintptr, value unsafe.Pointer, sizeRet *uintptr) int32
	enqueueNDRangeKernel    func(q clQueue, k clKernel, dim uint32, offset, global, local *uintptr, nWait uint32, wait, ev *clEvent) int32
	enqueueWriteBuffer      func(q clQueue, m clMem, blocking uint32, offset, size uintptr, ptr unsafe.Pointer, nWait uint32, wait, ev *clEvent) int32
	enqueueReadBuffer       func(q clQueue, m clMem, blocking uint32, offset, size uintptr, ptr unsafe.Pointer, nWait uint32, wait, ev *clEvent) int32
	enqueueCopyBuffer       func(q clQueue, src, dst clMem, srcOffset, dstOffset, size uintptr, nWait uint32, wait, ev *clEvent) int32
	finish                  func(q clQueue) int32
	flush                   func(q clQueue) int32
	getEventProfilingInfo   func(e clEvent, param uint32, size uintptr, value unsafe.Pointer, sizeRet *uintptr) int32
	releaseEvent            func(e clEvent) int32

	// Optional: nil when the library lacks it (it is OpenCL 1.2).
	enqueueFillBuffer func(q clQueue, m clMem, pattern unsafe.Pointer, patSize, offset, size uintptr, nWait uint32, wait, ev *clEvent) int32

	// The two calls of every kernel launch, also as raw symbols with a
	// direct caller (purego.SyscallN): the typed wrappers above go through
	// reflection, which costs more than the driver itself for these. Zero
	// where unavailable; the typed wrappers are used then.
	rawSetKernelArg, rawEnqueueNDRange uintptr
	rawCall                            func(fn uintptr, args ...uintptr) uintptr
}

// callHook, when set (by tests), is consulted before every OpenCL call
// with the function's name. A non-zero status it returns becomes that
// call's result and the library is not called, so a test can make any
// call site fail.
var callHook func(name string) int32

// valueHook, when set (by tests), is consulted with every number a query
// returns before it is checked and used: the function's name, the
// enumerant queried (0 for the counts of clGetPlatformIDs and
// clGetDeviceIDs) and the number the driver reported: a count, the
// length of an info string, a build log or a program binary, or an info
// value (CL_DEVICE_GLOBAL_MEM_SIZE, CL_KERNEL_WORK_GROUP_SIZE, ...). What
// it returns is used instead, so a test can make a driver report absurd
// values. Unset, it costs one nil check.
var valueHook func(call string, param uint32, v uint64) uint64

// post runs the value hook for one returned number.
func post(call string, param uint32, v uint64) uint64 {
	if h := valueHook; h != nil {
		return h(call, param, v)
	}
	return v
}

// Bounds on what a driver may report. A number outside them is a
// *ValueError (the driver is not used), never an allocation of that size
// or an index past a slice.
const (
	maxPlatforms     = 64       // clGetPlatformIDs
	maxDevices       = 256      // clGetDeviceIDs, per platform
	maxInfoBytes     = 1 << 20  // a platform or device info string (names, versions, extensions)
	maxBuildLogBytes = 16 << 20 // a build log
	maxBinaryBytes   = 1 << 30  // a program binary (CL_PROGRAM_BINARY_SIZES)
	maxWorkGroup     = 1 << 16  // work-group sizes and multiples
	maxComputeUnits  = 1 << 16  // CL_DEVICE_MAX_COMPUTE_UNITS
	maxMemBytes      = 1 << 50  // any memory size (1 PiB): within int64, and sums of a few stay so
)

// paramNames name the enumerants queried, for errors.
var paramNames = map[uint32]string{
	clPlatformVersion:                "CL_PLATFORM_VERSION",
	clPlatformName:                   "CL_PLATFORM_NAME",
	clPlatformVendor:                 "CL_PLATFORM_VENDOR",
	clDeviceType:                     "CL_DEVICE_TYPE",
	clDeviceMaxComputeUnits:          "CL_DEVICE_MAX_COMPUTE_UNITS",
	clDeviceMaxWorkGroupSize:         "CL_DEVICE_MAX_WORK_GROUP_SIZE",
	clDeviceMaxClockFrequency:        "CL_DEVICE_MAX_CLOCK_FREQUENCY",
	clDeviceMaxMemAllocSize:          "CL_DEVICE_MAX_MEM_ALLOC_SIZE",
	clDeviceImageSupport:             "CL_DEVICE_IMAGE_SUPPORT",
	clDeviceMemBaseAddrAlign:         "CL_DEVICE_MEM_BASE_ADDR_ALIGN",
	clDeviceSingleFPConfig:           "CL_DEVICE_SINGLE_FP_CONFIG",
	clDeviceGlobalMemSize:            "CL_DEVICE_GLOBAL_MEM_SIZE",
	clDeviceLocalMemSize:             "CL_DEVICE_LOCAL_MEM_SIZE",
	clDeviceAvailable:                "CL_DEVICE_AVAILABLE",
	clDeviceCompilerAvailable:        "CL_DEVICE_COMPILER_AVAILABLE",
	clDeviceName:                     "CL_DEVICE_NAME",
	clDeviceVendor:                   "CL_DEVICE_VENDOR",
	clDriverVersion:                  "CL_DRIVER_VERSION",
	clDeviceVersion:                  "CL_DEVICE_VERSION",
	clDeviceExtensions:               "CL_DEVICE_EXTENSIONS",
	clDeviceHostUnifiedMemory:        "CL_DEVICE_HOST_UNIFIED_MEMORY",
	clDeviceOpenCLCVersion:           "CL_DEVICE_OPENCL_C_VERSION",
	clDeviceImageMaxBufferSize:       "CL_DEVICE_IMAGE_MAX_BUFFER_SIZE",
	clDeviceComputeCapabilityMajorNV: "CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV",
	clDeviceComputeCapabilityMinorNV: "CL_DEVICE_COMPUTE_CAPABILITY_MINOR_NV",
	clProgramNumDevices:              "CL_PROGRAM_NUM_DEVICES",
	clProgramBinarySizes:             "CL_PROGRAM_BINARY_SIZES",
	clProgramBinaries:                "CL_PROGRAM_BINARIES",
	clProgramBuildLog:                "CL_PROGRAM_BUILD_LOG",
	clKernelWorkGroupSize:            "CL_KERNEL_WORK_GROUP_SIZE",
	clKernelLocalMemSize:             "CL_KERNEL_LOCAL_MEM_SIZE",
	clKernelPreferredWGSMultiple:     "CL_KERNEL_PREFERRED_WORK_GROUP_SIZE_MULTIPLE",
}

// paramName is an enumerant's CL_* name, "" for 0 and its number for
// one not listed.
func paramName(param uint32) string {
	if param == 0 {
		return ""
	}
	if n, ok := paramNames[param]; ok {
		return n
	}
	return fmt.Sprintf("0x%X", param)
}

// checkLen checks the length of an info string (or log, or binary) a
// query reports before it is allocated.
func checkLen(call string, param uint32, size uintptr, limit uint64, what string) error {
	if uint64(size) > limit {
		return badValue(call, param, uint64(size), "a length of %d bytes%s; at most %d are accepted", uint64(size), what, limit)
	}
	return nil
}

// pre runs the hook for one call.
func pre(name string) int32 {
	if h := callHook; h != nil {
		return h(name)
	}
	return clSuccess
}

func check(call, obj string, st int32) error {
	if st == clSuccess {
		return nil
	}
	return &Error{Call: call, Object: obj, Code: st}
}

var (
	loadOnce sync.Once
	loaded   *api
	loadErr  error
)

// library loads the OpenCL library once per process.
func library() (*api, error) {
	loadOnce.Do(func() {
		defer func() {
			// The loader never panics by design; this is a last line of
			// defence against a library that makes purego panic.
			if r := recover(); r != nil {
				loaded, loadErr = nil, errorf("loading the OpenCL library panicked: %v", r)
			}
		}()
		loaded, loadErr = loadAPI()
	})
	return loaded, loadErr
}

// cString returns s as a NUL-terminated byte slice.
func cString(s string) []byte {
	b := make([]byte, len(s)+1)
	copy(b, s)
	return b
}

// goString returns the bytes of b up to the first NUL.
func goString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

func (a *api) platforms() ([]clPlatform, error) {
	var n uint32
	st := pre("clGetPlatformIDs")
	if st == clSuccess {
		st = a.getPlatformIDs(0, nil, &n)
		n = uint32(post("clGetPlatformIDs", 0, uint64(n)))
	}
	if st == -1001 || (st == clSuccess && n == 0) { // CL_PLATFORM_NOT_FOUND_KHR: the ICD loader found no driver
		return nil, nil
	}
	if err := check("clGetPlatformIDs", "", st); err != nil {
		return nil, err
	}
	if n > maxPlatforms {
		return nil, badValue("clGetPlatformIDs", 0, uint64(n), "%d platforms; at most %d are accepted", n, maxPlatforms)
	}
	ps := make([]clPlatform, n)
	if st := a.getPlatformIDs(n, &ps[0], &n); st != clSuccess {
		return nil, check("clGetPlatformIDs", "", st)
	}
	// The driver fills at most len(ps) entries; n may say more (a
	// platform that appeared since the first call).
	return ps[:min(int(n), len(ps))], nil
}

func (a *api) platformString(p clPlatform, param uint32) (string, error) {
	var size uintptr
	st := pre("clGetPlatformInfo")
	if st == clSuccess {
		st = a.getPlatformInfo(p, param, 0, nil, &size)
		size = uintptr(post("clGetPlatformInfo", param, uint64(size)))
	}
	if err := check("clGetPlatformInfo", "", st); err != nil {
		return "", err
	}
	if err := checkLen("clGetPlatformInfo", param, size, maxInfoBytes, ""); err != nil {
		return "", err
	}
	if size == 0 {
		return "", nil
	}
	b := make([]byte, size)
	if st := a.getPlatformInfo(p, param, size, unsafe.Pointer(&b[0]), nil); st != clSuccess {
		return "", check("clGetPlatformInfo", "", st)
	}
	return goString(b), nil
}

// devices lists the devices of platform p, the index-th.
func (a *api) devices(p clPlatform, index int) ([]clDevice, error) {
	var n uint32
	st := pre("clGetDeviceIDs")
	if st == clSuccess {
		st = a.getDeviceIDs(p, clDeviceTypeAll, 0, nil, &n)
		n = uint32(post("clGetDeviceIDs", 0, uint64(n)))
	}
	if st == clDeviceNotFound || (st == clSuccess && n == 0) {
		return nil, nil
	}
	if err := check("clGetDeviceIDs", "", st); err != nil {
		return nil, err
	}
	if n > maxDevices {
		return nil, badValue("clGetDeviceIDs", 0, uint64(n), "%d devices on platform %d; at most %d are accepted", n, index, maxDevices)
	}
	ds := make([]clDevice, n)
	if st := a.getDeviceIDs(p, clDeviceTypeAll, n, &ds[0], &n); st != clSuccess {
		return nil, check("clGetDeviceIDs", "", st)
	}
	return ds[:min(int(n), len(ds))], nil
}

func (a *api) deviceInfo(d clDevice, param uint32, size uintptr, value unsafe.Pointer) error {
	st := pre("clGetDeviceInfo")
	if st == clSuccess {
		st = a.getDeviceInfo(d, param, size, value, nil)
	}
	return check("clGetDeviceInfo", "", st)
}

func (a *api) deviceString(d clDevice, param uint32) (string, error) {
	var size uintptr
	st := pre("clGetDeviceInfo")
	if st == clSuccess {
		st = a.getDeviceInfo(d, param, 0, nil, &size)
		size = uintptr(post("clGetDeviceInfo", param, uint64(size)))
	}
	if err := check("clGetDeviceInfo", "", st); err != nil {
		return "", err
	}
	if err := checkLen("clGetDeviceInfo", param, size, maxInfoBytes, ""); err != nil {
		return "", err
	}
	if size == 0 {
		return "", nil
	}
	b := make([]byte, size)
	if err := a.deviceInfo(d, param, size, unsafe.Pointer(&b[0])); err != nil {
		return "", err
	}
	return goString(b), nil
}

// deviceUint, deviceUlong and deviceSize query a cl_uint, cl_ulong and
// size_t property. The caller checks the value (see describe).
func (a *api) deviceUint(d clDevice, param uint32) (uint32, error) {
	v := new(uint32)
	if err := a.deviceInfo(d, param, 4, unsafe.Pointer(v)); err != nil {
		return 0, err
	}
	return uint32(post("clGetDeviceInfo", param, uint64(*v))), nil
}

func (a *api) deviceUlong(d clDevice, param uint32) (uint64, error) {
	v := new(uint64)
	if err := a.deviceInfo(d, param, 8, unsafe.Pointer(v)); err != nil {
		return 0, err
	}
	return post("clGetDeviceInfo", param, *v), nil
}

func (a *api) deviceSize(d clDevice, param uint32) (uint64, error) {
	v := new(uintptr)
	if err := a.deviceInfo(d, param, unsafe.Sizeof(uintptr(0)), unsafe.Pointer(v)); err != nil {
		return 0, err
	}
	return post("clGetDeviceInfo", param, uint64(*v)), nil
}

func (a *api) newContext(d clDevice) (clContext, error) {
	if st := pre("clCreateContext"); st != clSuccess {
		return 0, check("clCreateContext", "", st)
	}
	dev := new(clDevice)
	*dev = d
	var st int32
	c := a.createContext(nil, 1, dev, 0, 0, &st)
	if st == clSuccess && c == 0 {
		st = clInvalidValue
	}
	return c, check("clCreateContext", "", st)
}

func (a *api) freeContext(c clContext) {
	if c != 0 && pre("clReleaseContext") == clSuccess {
		a.releaseContext(c)
	}
}

func (a *api) newQueue(c clContext, d clDevice, props uint64) (clQueue, error) {
	if st := pre("clCreateCommandQueue"); st != clSuccess {
		return 0, check("clCreateCommandQueue", "", st)
	}
	var st int32
	q := a.createCommandQueue(c, d, props, &st)
	if st == clSuccess && q == 0 {
		st = clInvalidValue
	}
	return q, check("clCreateCommandQueue", "", st)
}

func (a *api) freeQueue(q clQueue) {
	if q != 0 && pre("clReleaseCommandQueue") == clSuccess {
		a.releaseCommandQueue(q)
	}
}

func (a *api) newBuffer(c clContext, size int64, what string) (clMem, error) {
	if st := pre("clCreateBuffer"); st != clSuccess {
		return 0, check("clCreateBuffer", what, st)
	}
	var st int32
	m := a.createBuffer(c, clMemReadWrite, uintptr(size), nil, &st)
	if st == clSuccess && m == 0 {
		st = clMemObjectAllocationFailure
	}
	return m, check("clCreateBuffer", what, st)
}

func (a *api) freeBuffer(m clMem) {
	if m != 0 && pre("clReleaseMemObject") == clSuccess {
		a.releaseMemObject(m)
	}
}

func (a *api) programFromSource(c clContext, src string) (clProgram, error) {
	if st := pre("clCreateProgramWithSource"); st != clSuccess {
		return 0, check("clCreateProgramWithSource", "", st)
	}
	b := cString(src)
	strs := []*byte{&b[0]}
	lens := []uintptr{uintptr(len(src))}
	var st int32
	p := a.createProgramWithSource(c, 1, &strs[0], &lens[0], &st)
	runtime.KeepAlive(b)
	if st == clSuccess && p == 0 {
		st = clInvalidValue
	}
	return p, check("clCreateProgramWithSource", "", st)
}

func (a *api) programFromBinary(c clContext, d clDevice, bin []byte) (clProgram, error) {
	if len(bin) == 0 {
		return 0, check("clCreateProgramWithBinary", "", clInvalidBinary)
	}
	if st := pre("clCreateProgramWithBinary"); st != clSuccess {
		return 0, check("clCreateProgramWithBinary", "", st)
	}
	dev := []clDevice{d}
	lens := []uintptr{uintptr(len(bin))}
	bins := []*byte{&bin[0]}
	status := []int32{0}
	var st int32
	p := a.createProgramWithBinary(c, 1, &dev[0], &lens[0], &bins[0], &status[0], &st)
	runtime.KeepAlive(bin)
	if st == clSuccess && status[0] != clSuccess {
		st = status[0]
	}
	if st == clSuccess && p == 0 {
		st = clInvalidBinary
	}
	if st != clSuccess && p != 0 {
		a.freeProgram(p)
		p = 0
	}
	return p, check("clCreateProgramWithBinary", "", st)
}

func (a *api) build(p clProgram, d clDevice, options string) error {
	if st := pre("clBuildProgram"); st != clSuccess {
		return check("clBuildProgram", "", st)
	}
	dev := []clDevice{d}
	opts := cString(options)
	st := a.buildProgram(p, 1, &dev[0], &opts[0], 0, 0)
	runtime.KeepAlive(opts)
	return check("clBuildProgram", "", st)
}

// buildLog is the compiler's output for a program (empty when the call
// fails; a note instead of a log of absurd length).
func (a *api) buildLog(p clProgram, d clDevice) string {
	if pre("clGetProgramBuildInfo") != clSuccess {
		return ""
	}
	var size uintptr
	if a.getProgramBuildInfo(p, d, clProgramBuildLog, 0, nil, &size) != clSuccess {
		return ""
	}
	size = uintptr(post("clGetProgramBuildInfo", clProgramBuildLog, uint64(size)))
	if err := checkLen("clGetProgramBuildInfo", clProgramBuildLog, size, maxBuildLogBytes, ""); err != nil {
		return "(the build log is not read: " + err.Error() + ")"
	}
	if size == 0 {
		return ""
	}
	b := make([]byte, size)
	if a.getProgramBuildInfo(p, d, clProgramBuildLog, size, unsafe.Pointer(&b[0]), nil) != clSuccess {
		return ""
	}
	return goString(b)
}

// binary returns a built program's binary for its one device.
func (a *api) binary(p clProgram) ([]byte, error) {
	if st := pre("clGetProgramInfo"); st != clSuccess {
		return nil, check("clGetProgramInfo", "", st)
	}
	n := new(uint32)
	if st := a.getProgramInfo(p, clProgramNumDevices, 4, unsafe.Pointer(n), nil); st != clSuccess {
		return nil, check("clGetProgramInfo", "CL_PROGRAM_NUM_DEVICES", st)
	}
	if *n != 1 {
		return nil, check("clGetProgramInfo", "CL_PROGRAM_NUM_DEVICES", clInvalidValue)
	}
	size := new(uintptr)
	if st := a.getProgramInfo(p, clProgramBinarySizes, unsafe.Sizeof(uintptr(0)), unsafe.Pointer(size), nil); st != clSuccess {
		return nil, check("clGetProgramInfo", "CL_PROGRAM_BINARY_SIZES", st)
	}
	*size = uintptr(post("clGetProgramInfo", clProgramBinarySizes, uint64(*size)))
	if *size == 0 {
		return nil, check("clGetProgramInfo", "CL_PROGRAM_BINARY_SIZES", clInvalidBinary)
	}
	if err := checkLen("clGetProgramInfo", clProgramBinarySizes, *size, maxBinaryBytes, " for the program binary"); err != nil {
		return nil, err
	}
	bin := make([]byte, *size)
	ptrs := []*byte{&bin[0]}
	st := a.getProgramInfo(p, clProgramBinaries, unsafe.Sizeof(uintptr(0)), unsafe.Pointer(&ptrs[0]), nil)
	runtime.KeepAlive(bin)
	if st != clSuccess {
		return nil, check("clGetProgramInfo", "CL_PROGRAM_BINARIES", st)
	}
	return bin, nil
}

func (a *api) freeProgram(p clProgram) {
	if p != 0 && pre("clReleaseProgram") == clSuccess {
		a.releaseProgram(p)
	}
}

func (a *api) newKernel(p clProgram, name string) (clKernel, error) {
	if st := pre("clCreateKernel"); st != clSuccess {
		return 0, check("clCreateKernel", name, st)
	}
	b := cString(name)
	var st int32
	k := a.createKernel(p, &b[0], &st)
	runtime.KeepAlive(b)
	if st == clSuccess && k == 0 {
		st = clInvalidValue
	}
	return k, check("clCreateKernel", name, st)
}

func (a *api) freeKernel(k clKernel) {
	if k != 0 && pre("clReleaseKernel") == clSuccess {
		a.releaseKernel(k)
	}
}

func (a *api) setArg(k clKernel, name string, index uint32, size uintptr, value unsafe.Pointer) error {
	st := pre("clSetKernelArg")
	if st == clSuccess {
		if a.rawSetKernelArg != 0 {
			// value points into the heap (launcher.argBuf) or is nil.
			st = int32(a.rawCall(a.rawSetKernelArg, uintptr(k), uintptr(index), size, uintptr(value)))
		} else {
			st = a.setKernelArg(k, index, size, value)
		}
	}
	return check("clSetKernelArg", name, st)
}

func (a *api) kernelWGInfo(k clKernel, d clDevice, name string, param uint32) (uint64, error) {
	st := pre("clGetKernelWorkGroupInfo")
	var v uint64
	switch param {
	case clKernelLocalMemSize:
		p := new(uint64)
		if st == clSuccess {
			st = a.getKernelWorkGroupInfo(k, d, param, 8, unsafe.Pointer(p), nil)
		}
		v = *p
	default:
		p := new(uintptr)
		if st == clSuccess {
			st = a.getKernelWorkGroupInfo(k, d, param, unsafe.Sizeof(uintptr(0)), unsafe.Pointer(p), nil)
		}
		v = uint64(*p)
	}
	if err := check("clGetKernelWorkGroupInfo", name, st); err != nil {
		return 0, err
	}
	v = post("clGetKernelWorkGroupInfo", param, v)
	switch param {
	case clKernelWorkGroupSize, clKernelPreferredWGSMultiple:
		if v < 1 || v > maxWorkGroup {
			return 0, badValue("clGetKernelWorkGroupInfo", param, v, "%d for kernel %s; 1 to %d are accepted", v, name, maxWorkGroup)
		}
	default:
		if v > maxMemBytes {
			return 0, badValue("clGetKernelWorkGroupInfo", param, v, "%d bytes for kernel %s; at most %d are accepted", v, name, uint64(maxMemBytes))
		}
	}
	return v, nil
}

func (a *api) launch(q clQueue, k clKernel, name string, dims uint32, global, local *[3]uintptr, ev *clEvent) error {
	st := pre("clEnqueueNDRangeKernel")
	if st == clSuccess {
		if a.rawEnqueueNDRange != 0 {
			// global, local and ev point into the heap (the Backend's own
			// fields and a new event), never into a moving stack.
			st = int32(a.rawCall(a.rawEnqueueNDRange, uintptr(q), uintptr(k), uintptr(dims), 0,
				uintptr(unsafe.Pointer(&global[0])), uintptr(unsafe.Pointer(&local[0])), 0, 0, uintptr(unsafe.Pointer(ev))))
		} else {
			st = a.enqueueNDRangeKernel(q, k, dims, nil, &global[0], &local[0], 0, nil, ev)
		}
	}
	return check("clEnqueueNDRangeKernel", name, st)
}

func (a *api) write(q clQueue, m clMem, what string, blocking bool, offset int64, src unsafe.Pointer, size int64, ev *clEvent) error {
	st := pre("clEnqueueWriteBuffer")
	if st == clSuccess {
		b := clFalse
		if blocking {
			b = clTrue
		}
		st = a.enqueueWriteBuffer(q, m, b, uintptr(offset), uintptr(size), src, 0, nil, ev)
	}
	return check("clEnqueueWriteBuffer", what, st)
}

func (a *api) read(q clQueue, m clMem, what string, blocking bool, offset int64, dst unsafe.Pointer, size int64, ev *clEvent) error {
	st := pre("clEnqueueReadBuffer")
	if st == clSuccess {
		b := clFalse
		if blocking {
			b = clTrue
		}
		st = a.enqueueReadBuffer(q, m, b, uintptr(offset), uintptr(size), dst, 0, nil, ev)
	}
	return check("clEnqueueReadBuffer", what, st)
}

// copy queues a copy of size bytes within device memory, from src at
// srcOff to dst at dstOff (the regions of one buffer must not overlap).
func (a *api) copy(q clQueue, src, dst clMem, what string, srcOff, dstOff, size int64) error {
	st := pre("clEnqueueCopyBuffer")
	if st == clSuccess {
		st = a.enqueueCopyBuffer(q, src, dst, uintptr(srcOff), uintptr(dstOff), uintptr(size), 0, nil, nil)
	}
	return check("clEnqueueCopyBuffer", what, st)
}

// zero zeroes size bytes of m from offset; without clEnqueueFillBuffer it
// writes zeros from host memory (blocking).
func (a *api) zero(q clQueue, m clMem, what string, offset, size int64) error {
	return a.fill(q, m, what, offset, size, 0)
}

// fill sets size bytes of m from offset to the 32-bit pattern (size and
// offset multiples of 4 for a non-zero pattern); without
// clEnqueueFillBuffer it writes the pattern from host memory (blocking).
func (a *api) fill(q clQueue, m clMem, what string, offset, size int64, pattern uint32) error {
	if size == 0 {
		return nil
	}
	if a.enqueueFillBuffer != nil && offset%4 == 0 && size%4 == 0 {
		st := pre("clEnqueueFillBuffer")
		if st == clSuccess {
			pat := new(uint32)
			*pat = pattern
			st = a.enqueueFillBuffer(q, m, unsafe.Pointer(pat), 4, uintptr(offset), uintptr(size), 0, nil, nil)
			runtime.KeepAlive(pat)
		}
		return check("clEnqueueFillBuffer", what, st)
	}
	buf := make([]uint32, (min(size, 1<<24)+3)/4)
	for i := range buf {
		buf[i] = pattern
	}
	for done := int64(0); done < size; {
		n := min(size-done, int64(4*len(buf)))
		if err := a.write(q, m, what, true, offset+done, unsafe.Pointer(&buf[0]), n, nil); err != nil {
			return err
		}
		done += n
	}
	return nil
}

func (a *api) finishQueue(q clQueue) error {
	st := pre("clFinish")
	if st == clSuccess {
		st = a.finish(q)
	}
	return check("clFinish", "", st)
}

func (a *api) flushQueue(q clQueue) error {
	st := pre("clFlush")
	if st == clSuccess {
		st = a.flush(q)
	}
	return check("clFlush", "", st)
}

func (a *api) eventTime(e clEvent, name string, param uint32) (uint64, error) {
	st := pre("clGetEventProfilingInfo")
	v := new(uint64)
	if st == clSuccess {
		st = a.getEventProfilingInfo(e, param, 8, unsafe.Pointer(v), nil)
	}
	return *v, check("clGetEventProfilingInfo", name, st)
}

func (a *api) freeEvent(e clEvent) {
	if e != 0 && pre("clReleaseEvent") == clSuccess {
		a.releaseEvent(e)
	}
}
