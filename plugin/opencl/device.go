package opencl

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// DeviceInfo describes one OpenCL device and what ocelot can use on it.
type DeviceInfo struct {
	// Index numbers the device across all platforms, in the order the
	// ICD loader lists them; --device takes it.
	Index int `json:"index"`
	// Platform is the platform's index, name and version.
	PlatformIndex   int    `json:"platform_index"`
	Platform        string `json:"platform"`
	PlatformVersion string `json:"platform_version"`

	Name     string `json:"name"`
	Vendor   string `json:"vendor"`
	Type     string `json:"type"` // "GPU", "CPU", "accelerator" or "other"
	Version  string `json:"version"`
	Driver   string `json:"driver_version"`
	OpenCLC  string `json:"opencl_c_version"`
	Units    int    `json:"compute_units"`
	ClockMHz int    `json:"clock_mhz"`

	GlobalMem    int64 `json:"global_mem_bytes"`
	LocalMem     int64 `json:"local_mem_bytes"`
	MaxAlloc     int64 `json:"max_alloc_bytes"`
	MaxWorkGroup int   `json:"max_work_group_size"`
	BaseAlign    int   `json:"mem_base_addr_align_bits"`
	// HostUnified says the device's memory is the host's
	// (CL_DEVICE_HOST_UNIFIED_MEMORY: CPU OpenCL such as PoCL, phone and
	// integrated GPUs): a device buffer takes host memory, so a weight
	// uploaded there and also kept in the file's pages is held twice.
	// False where the driver does not answer (the query is deprecated
	// since OpenCL 2.0).
	HostUnified bool `json:"host_unified_memory"`

	FP16 bool `json:"fp16"` // cl_khr_fp16
	FP64 bool `json:"fp64"` // cl_khr_fp64
	// Correctly rounded float division and sqrt are available as a
	// build option.
	DivSqrtRN bool `json:"fp32_correctly_rounded_div_sqrt"`
	// Sub-group extensions: cl_khr_subgroups, cl_intel_subgroups and
	// Qualcomm's cl_qcom_* sub-group extensions.
	SubgroupsKHR   bool `json:"subgroups_khr"`
	SubgroupsIntel bool `json:"subgroups_intel"`
	SubgroupsQcom  bool `json:"subgroups_qcom"`
	// IntegerDot is cl_khr_integer_dot_product (or Arm's int8 dot
	// product extension).
	IntegerDot bool `json:"integer_dot_product"`
	// Image1DBuffer says 1D images over buffers can be read (OpenCL 1.2
	// with image support), which Adreno and Mali read faster.
	Image1DBuffer bool `json:"image1d_buffer"`
	// InlinePTX says the compiler takes NVIDIA PTX in asm statements
	// (dp4a, mma.sync).
	InlinePTX bool `json:"inline_ptx"`
	// NVComputeMajor and NVComputeMinor are an NVIDIA GPU's compute
	// capability (cl_nv_device_attribute_query); 0 elsewhere.
	NVComputeMajor int `json:"nv_compute_major,omitempty"`
	NVComputeMinor int `json:"nv_compute_minor,omitempty"`
	// Kernels names the kernel variants Open tries, in order (the last is
	// "generic"); OptIn those the device could run but that are taken
	// only when OCELOT_OPENCL_KERNELS names them.
	Kernels []string `json:"kernel_variants"`
	OptIn   []string `json:"kernel_variants_opt_in,omitempty"`
	// Available is false for a device the driver lists but cannot use.
	Available bool `json:"available"`

	Extensions []string `json:"extensions"`

	platform clPlatform
	id       clDevice
}

// Family names the GPU family where ocelot picks kernels for one:
// "nvidia", "adreno", "mali", "intel", "amd", or "" for others.
func (d *DeviceInfo) Family() string {
	s := strings.ToLower(d.Name + " " + d.Vendor + " " + d.Platform)
	switch {
	case d.Type == "CPU":
		return ""
	case strings.Contains(s, "nvidia"):
		return "nvidia"
	case strings.Contains(s, "adreno") || strings.Contains(s, "qualcomm"):
		return "adreno"
	case strings.Contains(s, "mali"):
		return "mali"
	case strings.Contains(s, "intel"):
		return "intel"
	case strings.Contains(s, "amd") || strings.Contains(s, "advanced micro"):
		return "amd"
	}
	return ""
}

// HasExtension says whether the device lists the extension.
func (d *DeviceInfo) HasExtension(name string) bool {
	for _, e := range d.Extensions {
		if e == name {
			return true
		}
	}
	return false
}

// String is a one-line summary.
func (d *DeviceInfo) String() string {
	return fmt.Sprintf("#%d %s (%s, %s, %s, %d CUs, %s)", d.Index, d.Name, d.Type, d.Platform, d.OpenCLC, d.Units, mib(d.GlobalMem))
}

func mib(n int64) string {
	if n >= 10<<30 {
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	}
	return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
}

// Devices lists every OpenCL device of every platform. It fails when no
// OpenCL library can be loaded; a library with no platform gives an empty
// list.
func Devices() ([]DeviceInfo, error) {
	a, err := library()
	if err != nil {
		return nil, err
	}
	return listDevices(a)
}

func listDevices(a *api) ([]DeviceInfo, error) {
	ps, err := a.platforms()
	if err != nil {
		return nil, err
	}
	var out []DeviceInfo
	for pi, p := range ps {
		pname, err := a.platformString(p, clPlatformName)
		if err != nil {
			return nil, err
		}
		pver, err := a.platformString(p, clPlatformVersion)
		if err != nil {
			return nil, err
		}
		ds, err := a.devices(p, pi)
		if err != nil {
			return nil, fmt.Errorf("%w (platform %q)", err, pname)
		}
		for di, d := range ds {
			info, err := describe(a, d)
			if err != nil {
				return nil, fmt.Errorf("%w (device %d of platform %d, %q)", err, di, pi, pname)
			}
			info.Index, info.PlatformIndex, info.Platform, info.PlatformVersion = len(out), pi, pname, pver
			info.platform, info.id = p, d
			for _, v := range availableVariants(&info) {
				if v.validated() {
					info.Kernels = append(info.Kernels, v.String())
				} else {
					info.OptIn = append(info.OptIn, v.String())
				}
			}
			out = append(out, info)
		}
	}
	return out, nil
}

// describe queries one device's properties.
func describe(a *api, d clDevice) (DeviceInfo, error) {
	var info DeviceInfo
	var err error
	str := func(param uint32) string {
		if err != nil {
			return ""
		}
		var s string
		s, err = a.deviceString(d, param)
		return strings.TrimSpace(s)
	}
	u32 := func(param uint32) uint32 {
		if err != nil {
			return 0
		}
		var v uint32
		v, err = a.deviceUint(d, param)
		return v
	}
	u64 := func(param uint32) uint64 {
		if err != nil {
			return 0
		}
		var v uint64
		v, err = a.deviceUlong(d, param)
		return v
	}
	size := func(param uint32) uint64 {
		if err != nil {
			return 0
		}
		var v uint64
		v, err = a.deviceSize(d, param)
		return v
	}
	info.Name = str(clDeviceName)
	info.Vendor = str(clDeviceVendor)
	info.Version = str(clDeviceVersion)
	info.Driver = str(clDriverVersion)
	info.OpenCLC = str(clDeviceOpenCLCVersion)
	info.Extensions = strings.Fields(str(clDeviceExtensions))
	switch t := u64(clDeviceType); {
	case t&clDeviceTypeGPU != 0:
		info.Type = "GPU"
	case t&clDeviceTypeCPU != 0:
		info.Type = "CPU"
	case t&clDeviceTypeAccelerator != 0:
		info.Type = "accelerator"
	default:
		info.Type = "other"
	}
	// Every number below is checked before it is stored: the backend
	// divides work by them and sizes buffers and local memory with them.
	inRange := func(param uint32, v, lo, hi uint64, unit string) uint64 {
		if err == nil && (v < lo || v > hi) {
			bound := fmt.Sprintf("%d to %d", lo, hi)
			if hi == maxMemBytes {
				bound = fmt.Sprintf("%d to %d (1 PiB)", lo, hi)
			}
			err = badValue("clGetDeviceInfo", param, v, "%d%s; %s are accepted", v, unit, bound)
		}
		return v
	}
	info.Units = int(inRange(clDeviceMaxComputeUnits, uint64(u32(clDeviceMaxComputeUnits)), 1, maxComputeUnits, ""))
	info.ClockMHz = int(u32(clDeviceMaxClockFrequency))
	info.GlobalMem = int64(inRange(clDeviceGlobalMemSize, u64(clDeviceGlobalMemSize), 1, maxMemBytes, " bytes"))
	info.LocalMem = int64(inRange(clDeviceLocalMemSize, u64(clDeviceLocalMemSize), 0, maxMemBytes, " bytes"))
	info.MaxAlloc = int64(inRange(clDeviceMaxMemAllocSize, u64(clDeviceMaxMemAllocSize), 1, maxMemBytes, " bytes"))
	info.MaxWorkGroup = int(inRange(clDeviceMaxWorkGroupSize, size(clDeviceMaxWorkGroupSize), 1, maxWorkGroup, ""))
	if err == nil && info.MaxAlloc > info.GlobalMem {
		err = badValue("clGetDeviceInfo", clDeviceMaxMemAllocSize, uint64(info.MaxAlloc), "%d bytes, more than CL_DEVICE_GLOBAL_MEM_SIZE (%d bytes)", info.MaxAlloc, info.GlobalMem)
	}
	if err == nil && info.LocalMem > info.GlobalMem {
		err = badValue("clGetDeviceInfo", clDeviceLocalMemSize, uint64(info.LocalMem), "%d bytes, more than CL_DEVICE_GLOBAL_MEM_SIZE (%d bytes)", info.LocalMem, info.GlobalMem)
	}
	info.BaseAlign = int(u32(clDeviceMemBaseAddrAlign))
	info.Available = u32(clDeviceAvailable) != 0 && u32(clDeviceCompilerAvailable) != 0
	images := u32(clDeviceImageSupport) != 0
	fp := u64(clDeviceSingleFPConfig)
	if err != nil {
		return info, err
	}
	// CL_DEVICE_IMAGE_MAX_BUFFER_SIZE is OpenCL 1.2; older devices fail
	// the query, which only means no 1D image buffers.
	if v, qerr := a.deviceUint(d, clDeviceHostUnifiedMemory); qerr == nil {
		info.HostUnified = v != 0
	}
	imgBuf, qerr := a.deviceSize(d, clDeviceImageMaxBufferSize)
	info.Image1DBuffer = images && qerr == nil && imgBuf > 0 && clVersionAtLeast(info.Version, 1, 2)
	info.DivSqrtRN = fp&clFPCorrectlyRoundedDivSqrt != 0
	for _, e := range info.Extensions {
		switch {
		case e == "cl_khr_fp16":
			info.FP16 = true
		case e == "cl_khr_fp64":
			info.FP64 = true
		case e == "cl_khr_subgroups":
			info.SubgroupsKHR = true
		case e == "cl_intel_subgroups":
			info.SubgroupsIntel = true
		case strings.HasPrefix(e, "cl_qcom_") && (strings.Contains(e, "sub_group") || strings.Contains(e, "subgroup")):
			info.SubgroupsQcom = true
		case e == "cl_khr_integer_dot_product" || e == "cl_arm_integer_dot_product_int8":
			info.IntegerDot = true
		}
	}
	info.InlinePTX = strings.Contains(strings.ToLower(info.Vendor), "nvidia")
	if info.HasExtension("cl_nv_device_attribute_query") {
		if v, err := a.deviceUint(d, clDeviceComputeCapabilityMajorNV); err == nil {
			info.NVComputeMajor = int(v)
		}
		if v, err := a.deviceUint(d, clDeviceComputeCapabilityMinorNV); err == nil {
			info.NVComputeMinor = int(v)
		}
	}
	return info, nil
}

// clVersionAtLeast parses "OpenCL 1.2 ..." (or "OpenCL C 1.2 ...").
func clVersionAtLeast(v string, major, minor int) bool {
	maj, min, ok := parseCLVersion(v)
	return ok && (maj > major || maj == major && min >= minor)
}

func parseCLVersion(v string) (int, int, bool) {
	for _, f := range strings.Fields(v) {
		a, b, ok := strings.Cut(f, ".")
		if !ok {
			continue
		}
		maj, err1 := strconv.Atoi(a)
		min, err2 := strconv.Atoi(strings.TrimRight(b, "+abcdefghijklmnopqrstuvwxyz-_"))
		if err1 == nil && err2 == nil {
			return maj, min, true
		}
	}
	return 0, 0, false
}

// pickDevice chooses the device for Open: index n when n >= 0, else
// $OCELOT_OPENCL_DEVICE when set, else the first available GPU, then the
// first available device of any kind (unless gpuOnly).
func pickDevice(ds []DeviceInfo, n int, gpuOnly bool) (*DeviceInfo, error) {
	if n < 0 {
		if s := os.Getenv("OCELOT_OPENCL_DEVICE"); s != "" {
			v, err := strconv.Atoi(s)
			if err != nil || v < 0 {
				return nil, errorf("OCELOT_OPENCL_DEVICE=%q is not a device index", s)
			}
			n = v
		}
	}
	if len(ds) == 0 {
		return nil, errorf("no OpenCL device (the ICD loader lists no platform with devices)")
	}
	if n >= 0 {
		if n >= len(ds) {
			return nil, errorf("device %d does not exist (there are %d: 0..%d; see `ocelot devices`)", n, len(ds), len(ds)-1)
		}
		if !ds[n].Available {
			return nil, errorf("device %d (%s) is not available or has no compiler", n, ds[n].Name)
		}
		return &ds[n], nil
	}
	for i := range ds {
		if ds[i].Type == "GPU" && ds[i].Available {
			return &ds[i], nil
		}
	}
	if gpuOnly {
		return nil, errorf("no OpenCL GPU (CPU OpenCL devices such as PoCL are used only when asked for: --backend opencl)")
	}
	for i := range ds {
		if ds[i].Available {
			return &ds[i], nil
		}
	}
	return nil, errorf("no available OpenCL device with a compiler")
}

// errorf makes an error with the package's prefix.
func errorf(format string, args ...any) error {
	return fmt.Errorf("opencl: "+format, args...)
}
