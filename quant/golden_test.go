package quant

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The golden tests compare package quant with a real ggml build. The file
// testdata/ggml_golden.txt holds SHA-256 digests of what ggml's own
// libggml-base produced for deterministic inputs (see helpers_test.go), and
// the hash of its f32->f16/bf16 conversions over every float32. To check
// against a ggml library directly, build testdata/ggmlref (see its README)
// and run
//
//	OCELOT_GGMLREF=/path/to/ggmlref OCELOT_GGML_LIB=/path/to/libggml-base.so go test ./quant -run GGML
//
// which compares the bytes one by one and reports the first block that
// differs; add OCELOT_GGML_GOLDEN_WRITE=1 to rewrite the digests from ggml.

const goldenFile = "testdata/ggml_golden.txt"

var goldenTypes = []Type{F16, BF16, Q4_0, Q8_0, Q6_K}

// goldenCase is one comparison: the name it has in the golden file, how
// package quant computes it, and the ggmlref arguments and stdin that make
// ggml compute it.
type goldenCase struct {
	name  string
	ours  func() ([]byte, error)
	args  []string
	stdin []byte
	unit  int // bytes per block of output, for error messages
}

func goldenCases() []goldenCase {
	main := goldenInput(1 << 18)
	special := specialInput()
	var cases []goldenCase
	for _, t := range goldenTypes {
		for _, in := range []struct {
			label string
			x     []float32
		}{{"quantize", main}, {"quantize-special", special}} {
			x := in.x
			cases = append(cases, goldenCase{
				name: in.label + " " + t.String(),
				ours: func() ([]byte, error) {
					n, _ := RowSize(t, int64(len(x)))
					b := make([]byte, n)
					return b, Quantize(t, b, x)
				},
				args:  []string{"quantize", t.String()},
				stdin: Float32sToBytes(x),
				unit:  t.TypeSize(),
			})
		}
		// Dequantize arbitrary bytes: every scale, every quant, NaN
		// payloads in f16 and bf16.
		raw := randomBytes(uint64(t)+1, 4096*t.TypeSize())
		cases = append(cases, goldenCase{
			name: "dequantize-random " + t.String(),
			ours: func() ([]byte, error) {
				f := make([]float32, len(raw)/t.TypeSize()*t.BlockSize())
				err := Dequantize(t, f, raw)
				return Float32sToBytes(f), err
			},
			args:  []string{"dequantize", t.String()},
			stdin: raw,
			unit:  4 * t.BlockSize(),
		})
	}
	return cases
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func readGolden(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open(goldenFile)
	if err != nil {
		t.Fatalf("golden digests: %v", err)
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("%s: bad line %q", goldenFile, line)
		}
		m[line[:i]] = line[i+1:]
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

// ggmlRef runs the ggmlref harness if the environment names one.
func ggmlRef(t *testing.T, args []string, stdin []byte) ([]byte, bool) {
	t.Helper()
	bin, lib := os.Getenv("OCELOT_GGMLREF"), os.Getenv("OCELOT_GGML_LIB")
	if bin == "" || lib == "" {
		return nil, false
	}
	cmd := exec.Command(bin, append([]string{lib}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ggmlref %v: %v: %s", args, err, stderr.String())
	}
	return out, true
}

func TestGGMLGolden(t *testing.T) {
	golden := readGolden(t)
	write := os.Getenv("OCELOT_GGML_GOLDEN_WRITE") != ""
	var lines []string
	for _, c := range goldenCases() {
		ours, err := c.ours()
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		want, ok := golden[c.name]
		if ref, live := ggmlRef(t, c.args, c.stdin); live {
			if i := firstDiff(ours, ref); i >= 0 {
				t.Errorf("%s: differs from ggml in block %d (byte %d): ours % x, ggml % x",
					c.name, i/c.unit, i, window(ours, i/c.unit*c.unit, c.unit), window(ref, i/c.unit*c.unit, c.unit))
			}
			want, ok = digest(ref), true
			lines = append(lines, c.name+" "+want)
		}
		if !ok {
			t.Errorf("%s: no golden digest in %s", c.name, goldenFile)
			continue
		}
		if got := digest(ours); got != want {
			t.Errorf("%s: digest %s, ggml's is %s", c.name, got, want)
		}
	}
	if write {
		if len(lines) == 0 {
			t.Fatal("OCELOT_GGML_GOLDEN_WRITE needs OCELOT_GGMLREF and OCELOT_GGML_LIB")
		}
		// ggml's side of TestGGMLSweep16 (about half a minute).
		out, _ := ggmlRef(t, []string{"sweep16"}, nil)
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			lines = append(lines, l)
		}
		writeGolden(t, lines)
	}
}

// TestGGMLSweep16 compares Float32ToFP16 and Float32ToBF16 with ggml's over
// float32 inputs in chunks of 2^24 (all inputs sharing a top byte). By
// default it covers the chunks that matter for f16: zeros and float32
// subnormals, every exponent from far below f16's subnormals to past its
// overflow, and inf/NaN, of both signs (46 of the 256 chunks). Set
// OCELOT_QUANT_FULL_SWEEP=1 to check all 2^32 inputs.
func TestGGMLSweep16(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the f16/bf16 sweep in -short mode")
	}
	golden := readGolden(t)
	var chunks []uint32
	for c := range uint32(256) {
		top := c & 0x7f // the upper 7 bits of the float32 exponent
		if os.Getenv("OCELOT_QUANT_FULL_SWEEP") != "" || top == 0 || top == 0x7f || top >= 0x33 && top <= 0x47 {
			chunks = append(chunks, c)
		}
	}
	for c, h := range sweepChunks(chunks) {
		name := fmt.Sprintf("sweep %02x", c)
		want, ok := golden[name]
		if !ok {
			t.Errorf("%s: no golden hash in %s", name, goldenFile)
			continue
		}
		if got := fmt.Sprintf("%016x", h); got != want {
			t.Errorf("f32->f16/bf16 for inputs %#02x000000-%#02xffffff: hash %s, ggml's is %s", c, c, got, want)
		}
	}
}

func writeGolden(t *testing.T, lines []string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("# SHA-256 digests of ggml's output for the inputs of golden_test.go,\n")
	b.WriteString("# and hashes of its f32->f16/bf16 conversions over all float32s (per top byte).\n")
	b.WriteString("# Written by TestGGMLGolden with OCELOT_GGML_GOLDEN_WRITE=1 against\n")
	b.WriteString("# " + filepath.Base(os.Getenv("OCELOT_GGML_LIB")) + " " + os.Getenv("OCELOT_GGML_LIB_VERSION") + "\n")
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	if err := os.WriteFile(goldenFile, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func firstDiff(a, b []byte) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return n
	}
	return -1
}

func window(b []byte, off, n int) []byte {
	if off > len(b) {
		return nil
	}
	return b[off:min(len(b), off+n)]
}
