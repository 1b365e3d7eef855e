//go:build !noasm

package quant

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestAsmInstructionSets checks the generated amd64 assembly against the
// instruction sets of the paths that run it: no AVX-512 (EVEX) instruction
// or register in the AVX2 and AVX-VNNI kernels, which run on CPUs without
// AVX-512, and no vpdpbusd in the kernels of the paths without VNNI. The
// tests of the other files run every kernel on this CPU, which has all of
// them, so they cannot catch an instruction the weaker CPUs lack. (The
// avx2 path was also run under qemu-x86_64 -cpu Haswell-v4.)
func TestAsmInstructionSets(t *testing.T) {
	src, err := os.ReadFile("kernels_gen_amd64.s")
	if err != nil {
		t.Fatal(err)
	}
	evex := regexp.MustCompile(`\b(Z\d+|[XY](1[6-9]|2\d|3[01])|K\d)\b|\.BCST|VMOVDQ[AU](32|64)|VP(AND|OR|XOR|TERNLOG)[DQ]\b|VPERM[WT]|VPERMT2|VINSERT[IF](32X4|64X4)|VEXTRACT[IF](32X4|64X4)|VSHUF[IF](32X4|64X2)|VPMOV[DQ][BW]\b|VPDPBUSD `)
	var fn string
	checked := 0
	for i, line := range strings.Split(string(src), "\n") {
		if name, ok := strings.CutPrefix(line, "TEXT ·"); ok {
			fn = name[:strings.Index(name, "(")]
			checked++
			continue
		}
		code, _, _ := strings.Cut(line, "//")
		if !strings.HasPrefix(code, "\t") {
			continue
		}
		switch {
		case strings.Contains(fn, "Avx2") || strings.Contains(fn, "AvxVnni"):
			if m := evex.FindString(code); m != "" {
				t.Errorf("line %d, %s: AVX-512 %q in a kernel of a path without AVX-512: %s", i+1, fn, m, strings.TrimSpace(code))
			}
		case strings.Contains(fn, "Avx512"):
			if strings.Contains(code, "VPDPBUSD") {
				t.Errorf("line %d, %s: vpdpbusd in a kernel of a path without VNNI", i+1, fn)
			}
		}
	}
	if checked < 50 {
		t.Fatalf("found only %d functions", checked)
	}
}
