package opencl

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// TestHostDefines checks that the Go constants are the kernels' only
// source: kernels.cl defines none of them and stops without each, and
// every variant's options pass each exactly once.
func TestHostDefines(t *testing.T) {
	sw := switches{mqBN: 128, mwB: mwB}
	for _, d := range hostDefines(sw) {
		if regexp.MustCompile(`(?m)^\s*#\s*define\s+` + d.name + `\b`).MatchString(kernelSource) {
			t.Errorf("kernels.cl defines %s itself", d.name)
		}
		if !regexp.MustCompile(`(?m)^#ifndef ` + d.name + `\b.*\n#error ` + d.name + ` `).MatchString(kernelSource) {
			t.Errorf("kernels.cl does not stop when %s is missing", d.name)
		}
		for _, v := range allVariants {
			opt := fmt.Sprintf("-D%s=%d", d.name, d.value)
			if n := strings.Count(" "+v.options(sw)+" ", " "+opt+" "); n != 1 {
				t.Errorf("variant %s: %s %d times in %q", v, opt, n, v.options(sw))
			}
		}
	}
	// MQ_BN is a build option, so part of the binary cache's key.
	v := variant{nvidia: true, mmq: true}
	if v.options(switches{mqBN: 64, mwB: mwB}) == v.options(sw) {
		t.Error("the build options ignore MQ_BN")
	}
	if v.options(switches{mqBN: 128, mwB: 2}) == v.options(sw) {
		t.Error("the build options ignore MW_B")
	}
	if x := (switches{mqBN: 128, mwB: mwB, defines: "-DX=1"}); !strings.HasSuffix(v.options(x), " -DX=1") {
		t.Errorf("extra options not last: %q", v.options(x))
	}
}

func TestHostDefined(t *testing.T) {
	for extra, want := range map[string]string{
		"":                               "",
		"-DX=1":                          "",
		"-DMW_RX=1 -DFOO -cl-mad-enable": "",
		"-DMW_R=4":                       "MW_R",
		"-DX -D MQ_BN=32":                "MQ_BN",
		"-DFA_TQ":                        "FA_TQ",
	} {
		if got := hostDefined(extra); got != want {
			t.Errorf("hostDefined(%q) = %q, want %q", extra, got, want)
		}
	}
}

func TestReadSwitches(t *testing.T) {
	for _, k := range []string{"MW", "MWT", "MWQ", "MM_MIN", "ATTN_TILED", "ATTN_SPLIT", "MQ_BN", "MW_B", "MW_G", "MV_LANES", "MV_THREADS", "MWQ_LANES", "DEFINES"} {
		t.Setenv("OCELOT_OPENCL_"+k, "")
	}
	e, err := readSwitches()
	if err != nil || e != (switches{mw: true, mwt: true, mwq: true, attnTiled: true, attnSplit: true, mqBN: 128, mwB: mwB, mwGroups: mwGroups, mwqLanes: mwqLanes}) {
		t.Fatalf("defaults: %+v, %v", e, err)
	}
	t.Setenv("OCELOT_OPENCL_MW", "0")
	t.Setenv("OCELOT_OPENCL_MWT", "0")
	t.Setenv("OCELOT_OPENCL_MWQ", "0")
	t.Setenv("OCELOT_OPENCL_MM_MIN", "4")
	t.Setenv("OCELOT_OPENCL_ATTN_TILED", "0")
	t.Setenv("OCELOT_OPENCL_ATTN_SPLIT", "0")
	t.Setenv("OCELOT_OPENCL_MQ_BN", "64")
	t.Setenv("OCELOT_OPENCL_MW_B", "4")
	t.Setenv("OCELOT_OPENCL_MW_G", "16")
	t.Setenv("OCELOT_OPENCL_MV_LANES", "48")
	t.Setenv("OCELOT_OPENCL_MV_THREADS", "1000")
	t.Setenv("OCELOT_OPENCL_MWQ_LANES", "128")
	t.Setenv("OCELOT_OPENCL_DEFINES", "-DX=1")
	e, err = readSwitches()
	if err != nil || e != (switches{mmMin: 4, mqBN: 64, mwB: 4, mwGroups: 16, mwqLanes: 128, mvLanes: 32, mvPerCU: 1000, defines: "-DX=1"}) {
		t.Fatalf("set: %+v, %v", e, err)
	}
	for _, bad := range []string{"12", "136", "0", "x"} {
		t.Setenv("OCELOT_OPENCL_MQ_BN", bad)
		if e, _ := readSwitches(); e.mqBN != 128 {
			t.Errorf("OCELOT_OPENCL_MQ_BN=%s: mqBN %d, want the default 128", bad, e.mqBN)
		}
	}
	t.Setenv("OCELOT_OPENCL_MQ_BN", "")
	for _, bad := range []string{"48", "512", "0", "x"} {
		t.Setenv("OCELOT_OPENCL_MWQ_LANES", bad)
		if e, _ := readSwitches(); e.mwqLanes != mwqLanes {
			t.Errorf("OCELOT_OPENCL_MWQ_LANES=%s: %d, want the default %d", bad, e.mwqLanes, mwqLanes)
		}
	}
	for _, bad := range []string{"3", "0", "x"} {
		t.Setenv("OCELOT_OPENCL_MW_B", bad)
		t.Setenv("OCELOT_OPENCL_MW_G", bad+"00")
		if e, _ := readSwitches(); e.mwB != mwB || e.mwGroups != mwGroups {
			t.Errorf("OCELOT_OPENCL_MW_B=%s, MW_G=%s00: %d, %d, want the defaults", bad, bad, e.mwB, e.mwGroups)
		}
	}
	t.Setenv("OCELOT_OPENCL_DEFINES", "-DMV_R=8")
	if _, err := readSwitches(); err == nil || !strings.Contains(err.Error(), "MV_R") {
		t.Errorf("OCELOT_OPENCL_DEFINES redefining MV_R: %v", err)
	}
}

// TestHostDefinesRequired builds the kernels without one host constant:
// the build must fail, naming it.
func TestHostDefinesRequired(t *testing.T) {
	b := testBackend(t)
	opts := strings.Replace(b.variant.options(switches{mqBN: b.env.mqBN, mwB: b.env.mwB}), fmt.Sprintf(" -DMV_R=%d", mvR), "", 1)
	if strings.Contains(opts, "MV_R") {
		t.Fatalf("MV_R still in %q", opts)
	}
	res, err := buildProgram(b.a, b.ctx, &b.info, kernelSource, opts, "")
	if err == nil {
		b.a.freeProgram(res.prog)
		t.Fatal("the kernels built without MV_R")
	}
	if !strings.Contains(err.Error(), "MV_R must be set by the host") {
		t.Errorf("the build failed, but not on MV_R: %v", oneLine(err.Error()))
	}
}
