package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestDevices runs `ocelot devices` in text and JSON. Without OpenCL it
// must still succeed and say why there is no device.
func TestDevices(t *testing.T) {
	code, out, errs := cli(t, "devices")
	if code != 0 {
		t.Fatalf("code %d: %s", code, errs)
	}
	code, js, errs := cli(t, "devices", "--json")
	if code != 0 {
		t.Fatalf("--json: code %d: %s", code, errs)
	}
	var rep struct {
		Devices []map[string]any `json:"devices"`
		Default int              `json:"default"`
		Error   string           `json:"error"`
	}
	if err := json.Unmarshal([]byte(js), &rep); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, js)
	}
	if len(rep.Devices) == 0 {
		if os.Getenv("OCELOT_REQUIRE_OPENCL") == "1" {
			t.Fatalf("no OpenCL device: %s", rep.Error)
		}
		if !strings.Contains(out, "no OpenCL device") || rep.Default != -1 {
			t.Fatalf("no device, but the text says:\n%s", out)
		}
		t.Skipf("opencl: no device: %s", rep.Error)
	}
	for _, key := range []string{"opencl_c_version", "compute_units", "global_mem_bytes", "local_mem_bytes", "max_alloc_bytes",
		"fp16", "subgroups_khr", "subgroups_intel", "subgroups_qcom", "integer_dot_product", "image1d_buffer", "platform", "name"} {
		if _, ok := rep.Devices[0][key]; !ok {
			t.Errorf("--json lacks %q", key)
		}
	}
	if rep.Default < 0 || rep.Default >= len(rep.Devices) {
		t.Errorf("default device %d", rep.Default)
	}
	for _, want := range []string{"platform 0:", "device 0:", "OpenCL C", "compute units", "max allocation", "fp16", "subgroups", "integer dot product", "image1d_buffer", "[default]"} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}

	// --device opens a device and reports its start.
	code, out, errs = cli(t, "devices", "--device", "0")
	if code != 0 || !strings.Contains(out, "open device 0") || !strings.Contains(out, "self-test") {
		t.Fatalf("--device 0: code %d\n%s%s", code, out, errs)
	}
	code, _, errs = cli(t, "devices", "--device", "999")
	if code != 1 || !strings.Contains(errs, "device 999 does not exist") {
		t.Fatalf("--device 999: code %d: %s", code, errs)
	}
	if code, _, _ := cli(t, "devices", "--device", "-3"); code != 2 {
		t.Fatalf("--device -3: code %d, want a usage error", code)
	}
}
