package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/ocelot-llm/ocelot/accel"
)

func init() {
	register(&command{name: "devices", summary: "list the accelerators' devices (OpenCL platforms and devices) and what ocelot uses on them", run: runDevices})
}

// devicesReport is what `ocelot devices --json` prints.
type devicesReport struct {
	// Devices are the backends' own descriptions of their devices.
	Devices []any `json:"devices"`
	// Default is the index of the device ocelot takes without --device
	// (-1 when none).
	Default int `json:"default"`
	// Error says why no device is listed (no OpenCL library, say).
	Error string `json:"error,omitempty"`
	// Open is the result of --device N: the device opened, its kernels
	// built and self-tested.
	Open *openReport `json:"open,omitempty"`

	listings []accel.Listing
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
		fmt.Fprintln(stderr, "\nLists every device of the accelerators compiled in (OpenCL platforms and devices)")
		fmt.Fprintln(stderr, "with the capabilities ocelot uses. Without --device, ocelot runs on the first GPU, else")
		fmt.Fprintln(stderr, "the first device; $OCELOT_OPENCL_DEVICE overrides that. $OCELOT_OPENCL_LIB names the")
		fmt.Fprintln(stderr, "OpenCL library to load, and $OCELOT_OPENCL_KERNELS a kernel variant (generic, nvidia-ptx, nvidia-ptx+mmq, nvidia-ptx+mma, ...).")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	rep := devicesReport{Default: -1, Devices: []any{}, listings: accel.Devices()}
	var errs []string
	for _, l := range rep.listings {
		if l.Err != nil {
			errs = append(errs, l.Err.Error())
		}
		for _, d := range l.Devices {
			rep.Devices = append(rep.Devices, d.JSON)
			if d.Default && rep.Default < 0 {
				rep.Default = d.Index
			}
		}
	}
	rep.Error = strings.Join(errs, "; ")
	if len(rep.listings) == 0 {
		rep.Error = "no accelerator backend is compiled into this build"
	}
	var openErr error
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "device" })
	if set {
		if *device < 0 {
			return usagef("--device must not be negative, got %d", *device)
		}
		or := &openReport{Device: *device}
		openErr = fmt.Errorf("no accelerator backend is compiled into this build")
		for _, l := range rep.listings {
			var b accel.Backend
			b, openErr = accel.Open(l.Backend, accel.Config{Device: *device, Logf: func(format string, args ...any) {
				fmt.Fprintf(stderr, format+"\n", args...)
			}})
			if openErr == nil {
				st := b.Start()
				or.Name, or.Variant, or.FromCache, or.CacheFile = deviceName(l, *device), st.Variant, st.FromCache, st.CacheFile
				or.BuildMS, or.SelfTest, or.TotalMS = ms(st.Build.Seconds()), ms(st.SelfTest.Seconds()), ms(st.Total.Seconds())
				b.Close()
			}
			break // the first accelerator numbers the devices --device takes
		}
		if openErr != nil {
			or.Error = openErr.Error()
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

func deviceName(l accel.Listing, index int) string {
	for _, d := range l.Devices {
		if d.Index == index {
			return d.Name
		}
	}
	return ""
}

func ms(s float64) float64 { return float64(int64(s*1e6)) / 1e3 }

func printDevices(w io.Writer, rep devicesReport) {
	if len(rep.listings) == 0 {
		fmt.Fprintf(w, "no accelerator: %s\nocelot runs on the CPU.\n", rep.Error)
	}
	for _, l := range rep.listings {
		if l.Err != nil || len(l.Devices) == 0 {
			reason := "the loader lists no device"
			if l.Err != nil {
				reason = l.Err.Error()
			}
			fmt.Fprintf(w, "no %s device: %s\nocelot runs on the CPU.\n", l.Title, reason)
		}
		group := ""
		for _, d := range l.Devices {
			if d.Group != group {
				group = d.Group
				fmt.Fprintln(w, group)
			}
			mark := ""
			if d.Default {
				mark = "  [default]"
			}
			fmt.Fprintf(w, "  device %d: %s — %s, %s%s\n", d.Index, d.Name, d.Type, d.Vendor, mark)
			tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
			for _, r := range d.Details {
				fmt.Fprintf(tw, "    %s:\t%s\n", r[0], r[1])
			}
			tw.Flush()
		}
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
