package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/ocelot-llm/ocelot/plugin/opencl"
)

func init() {
	register(&command{name: "devices", summary: "list OpenCL platforms and devices and what ocelot uses on them", run: runDevices})
}

// devicesReport is what `ocelot devices --json` prints.
type devicesReport struct {
	Devices []opencl.DeviceInfo `json:"devices"`
	// Default is the index of the device ocelot takes without --device
	// (-1 when none).
	Default int `json:"default"`
	// Error says why no device is listed (no OpenCL library, say).
	Error string `json:"error,omitempty"`
	// Open is the result of --device N: the device opened, its kernels
	// built and self-tested.
	Open *openReport `json:"open,omitempty"`
}

type openReport struct {
	Device    int     `json:"device"`
	Name      string  `json:"name"`
	Variant   string  `json:"kernel_variant"`
	FromCache bool    `json:"from_cache"`
	CacheFile string  `json:"cache_file,omitempty"`
	BuildMS   float64 `json:"build_ms"`
	SelfTest  float64 `json:"self_test_ms"`
	TotalMS   float64 `json:"total_ms"`
	Error     string  `json:"error,omitempty"`
}

func runDevices(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("devices", stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	device := fs.Int("device", -1, "open device N: build its kernels (or load them from the cache), run the self-test and report the start time")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ocelot devices [--json] [--device N]")
		fmt.Fprintln(stderr, "\nLists every OpenCL platform and device with the capabilities ocelot uses. Without")
		fmt.Fprintln(stderr, "--device, ocelot runs on the first GPU, else the first device; $OCELOT_OPENCL_DEVICE")
		fmt.Fprintln(stderr, "overrides that. $OCELOT_OPENCL_LIB names the OpenCL library to load, and")
		fmt.Fprintln(stderr, "$OCELOT_OPENCL_KERNELS a kernel variant (generic, nvidia-ptx, nvidia-ptx+mmq, nvidia-ptx+mma, ...).")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	rep := devicesReport{Default: -1, Devices: []opencl.DeviceInfo{}}
	ds, err := opencl.Devices()
	if err != nil {
		rep.Error = err.Error()
	} else {
		rep.Devices = ds
		rep.Default = defaultDevice(ds)
	}
	var openErr error
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "device" })
	if set {
		if *device < 0 {
			return usagef("--device must not be negative, got %d", *device)
		}
		or := &openReport{Device: *device}
		b, err := opencl.Open(opencl.Options{Device: *device, Logf: func(format string, args ...any) {
			fmt.Fprintf(stderr, format+"\n", args...)
		}})
		if err != nil {
			or.Error, openErr = err.Error(), err
		} else {
			st := b.Start()
			info := b.Info()
			or.Name, or.Variant, or.FromCache, or.CacheFile = info.Name, st.Variant, st.FromCache, st.CacheFile
			or.BuildMS, or.SelfTest, or.TotalMS = ms(st.Build.Seconds()), ms(st.SelfTest.Seconds()), ms(st.Total.Seconds())
			b.Close()
		}
		rep.Open = or
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printDevices(stdout, rep)
	}
	if openErr != nil {
		return fmt.Errorf("device %d: %w", *device, openErr)
	}
	return nil
}

func ms(s float64) float64 { return float64(int64(s*1e6)) / 1e3 }

// defaultDevice is the device Open takes without --device: the first
// available GPU, else the first available device.
func defaultDevice(ds []opencl.DeviceInfo) int {
	for _, d := range ds {
		if d.Type == "GPU" && d.Available {
			return d.Index
		}
	}
	for _, d := range ds {
		if d.Available {
			return d.Index
		}
	}
	return -1
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func bytesText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%d KiB", n>>10)
	}
}

// kernelsText lists the kernel variants Open tries, and those a user may
// ask for with OCELOT_OPENCL_KERNELS.
func kernelsText(d opencl.DeviceInfo) string {
	s := strings.Join(d.Kernels, ", then ")
	if len(d.OptIn) > 0 {
		s += "; opt-in (OCELOT_OPENCL_KERNELS): " + strings.Join(d.OptIn, ", ")
	}
	return s
}

func printDevices(w io.Writer, rep devicesReport) {
	if rep.Error != "" || len(rep.Devices) == 0 {
		reason := rep.Error
		if reason == "" {
			reason = "the OpenCL loader lists no device"
		}
		fmt.Fprintf(w, "no OpenCL device: %s\nocelot runs on the CPU.\n", reason)
	}
	platform := -1
	for _, d := range rep.Devices {
		if d.PlatformIndex != platform {
			platform = d.PlatformIndex
			fmt.Fprintf(w, "platform %d: %s (%s)\n", d.PlatformIndex, d.Platform, d.PlatformVersion)
		}
		mark := ""
		if d.Index == rep.Default {
			mark = "  [default]"
		}
		fmt.Fprintf(w, "  device %d: %s — %s, %s%s\n", d.Index, d.Name, d.Type, d.Vendor, mark)
		tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
		var sg []string
		for _, s := range []struct {
			on   bool
			name string
		}{{d.SubgroupsKHR, "khr"}, {d.SubgroupsIntel, "intel"}, {d.SubgroupsQcom, "qcom"}} {
			if s.on {
				sg = append(sg, s.name)
			}
		}
		if len(sg) == 0 {
			sg = []string{"none"}
		}
		rows := [][2]string{
			{"version", fmt.Sprintf("%s; %s; driver %s", d.Version, d.OpenCLC, d.Driver)},
			{"compute units", fmt.Sprintf("%d at %d MHz", d.Units, d.ClockMHz)},
			{"memory", fmt.Sprintf("global %s, local %s, max allocation %s", bytesText(d.GlobalMem), bytesText(d.LocalMem), bytesText(d.MaxAlloc))},
			{"work-group", fmt.Sprintf("up to %d work-items", d.MaxWorkGroup)},
			{"fp16", yesNo(d.FP16)},
			{"subgroups", strings.Join(sg, ", ")},
			{"integer dot product", yesNo(d.IntegerDot)},
			{"image1d_buffer", yesNo(d.Image1DBuffer)},
			{"inline PTX", yesNo(d.InlinePTX)},
			{"kernels", kernelsText(d)},
		}
		if !d.Available {
			rows = append(rows, [2]string{"available", "no (the driver cannot run or compile for it)"})
		}
		for _, r := range rows {
			fmt.Fprintf(tw, "    %s:\t%s\n", r[0], r[1])
		}
		tw.Flush()
	}
	if o := rep.Open; o != nil {
		if o.Error != "" {
			fmt.Fprintf(w, "open device %d: %s\n", o.Device, o.Error)
			return
		}
		src := "compiled"
		if o.FromCache {
			src = "loaded from the cache"
		}
		fmt.Fprintf(w, "open device %d (%s): %s kernels %s in %.0f ms, self-test %.0f ms, ready in %.0f ms\n",
			o.Device, o.Name, o.Variant, src, o.BuildMS, o.SelfTest, o.TotalMS)
	}
}
