package opencl

import (
	"fmt"
	"strings"

	"github.com/ocelot-llm/ocelot/accel"
)

// The backend registers itself as the "opencl" accelerator: importing the
// package makes --backend opencl (and auto) able to pick it, and `ocelot
// devices` list its devices.
func init() {
	accel.Register(accel.Factory{Name: "opencl", Title: "OpenCL",
		Open: func(c accel.Config) (accel.Backend, error) {
			b, err := Open(Options{Device: c.Device, Profile: c.Profile, Logf: c.Logf, GPUOnly: c.Auto})
			if err != nil {
				return nil, err
			}
			return b, nil
		},
		Devices: registryDevices,
	})
}

// registryDevices lists the OpenCL devices for the registry: the
// default is the one Open takes without a device index.
func registryDevices() ([]accel.Device, error) {
	ds, err := Devices()
	if err != nil {
		return nil, err
	}
	def := -1
	if d, err := pickDevice(ds, -1, false); err == nil {
		def = d.Index
	}
	out := make([]accel.Device, len(ds))
	for i, d := range ds {
		out[i] = accel.Device{Backend: "opencl", Index: d.Index, Name: d.Name, Type: d.Type, Vendor: d.Vendor,
			Group:   fmt.Sprintf("platform %d: %s (%s)", d.PlatformIndex, d.Platform, d.PlatformVersion),
			Default: d.Index == def, Available: d.Available,
			Memory:  accel.Memory{Free: d.GlobalMem, Total: d.GlobalMem, MaxAlloc: d.MaxAlloc},
			Details: details(d), JSON: d}
	}
	return out, nil
}

// details are the facts `ocelot devices` prints for a device.
func details(d DeviceInfo) [][2]string {
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
	kernels := strings.Join(d.Kernels, ", then ")
	if len(d.OptIn) > 0 {
		kernels += "; opt-in (OCELOT_OPENCL_KERNELS): " + strings.Join(d.OptIn, ", ")
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
		{"kernels", kernels},
	}
	if !d.Available {
		rows = append(rows, [2]string{"available", "no (the driver cannot run or compile for it)"})
	}
	return append(rows, [2]string{"tuned", tunedText(d)})
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

// tunedText lists the tuning results cached for d (`ocelot tune`): the
// model each was made for, how and when, and what it chose.
func tunedText(d DeviceInfo) string {
	ts, err := CachedTunings("", d)
	if err != nil || len(ts) == 0 {
		return "nothing cached (ocelot tune -m M.gguf, or any run, tunes for a model)"
	}
	var f []string
	for _, t := range ts {
		how := "full"
		if t.Quick {
			how = "quick"
		}
		if t.Partial {
			how += ", partial"
		}
		model := t.Model
		if model == "" {
			model = "(unnamed)"
		}
		choices := "the defaults"
		if len(t.Choices) > 0 {
			choices = strings.Join(t.Choices, ", ")
		}
		f = append(f, fmt.Sprintf("%s (%s, %s): %s", model, how, t.When.Format("2006-01-02 15:04"), choices))
	}
	return strings.Join(f, "; ")
}
