package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ocelot-llm/ocelot"
	"github.com/ocelot-llm/ocelot/gguf"
	"github.com/ocelot-llm/ocelot/model"
	"github.com/ocelot-llm/ocelot/synth"
)

// A numeric flag out of its range is a usage error (exit 2) naming the
// flag, the value and the range, given at once: nothing is generated.
func TestGenFlagRanges(t *testing.T) {
	maxL := strconv.Itoa(model.MaxLayers)
	maxT := strconv.Itoa(ocelot.MaxThreads)
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--layers", "2000000000"}, []string{"--layers 2000000000 out of range", "1.." + maxL, "tiny preset's 4"}},
		{[]string{"--layers", strconv.Itoa(model.MaxLayers + 1)}, []string{"--layers " + strconv.Itoa(model.MaxLayers+1) + " out of range", "1.." + maxL}},
		{[]string{"--layers", "-1"}, []string{"--layers -1 out of range", "1.." + maxL}},
		{[]string{"--layers", "99999999999999999999"}, []string{"-layers", "out of range"}},
		{[]string{"--layers", "many"}, []string{"-layers", "invalid"}},
		{[]string{"-t", "-1"}, []string{"-t -1 out of range", "1.." + maxT}},
		{[]string{"-t", strconv.Itoa(ocelot.MaxThreads + 1)}, []string{"-t " + strconv.Itoa(ocelot.MaxThreads+1) + " out of range", "1.." + maxT}},
		{[]string{"--seed", "-1"}, []string{"-seed"}},
		{[]string{"--seed", "18446744073709551616"}, []string{"-seed", "out of range"}},
		{[]string{"--type", "q4_K"}, []string{"--type q4_K"}},
		{[]string{"--output-type", "q9"}, []string{"--output-type q9"}},
		{[]string{"--preset", "70b"}, []string{`unknown preset "70b"`}},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "m.gguf")
			start := time.Now()
			code, stdout, stderr := cli(t, append(append([]string{"gen"}, c.args...), "-o", out)...)
			if code != 2 {
				t.Fatalf("code %d, want 2 (usage); stdout %q, stderr %q", code, stdout, stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q does not mention %q", stderr, w)
				}
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("the refusal took %v", d)
			}
			if _, err := os.Lstat(out); err == nil {
				t.Error("a refused gen wrote the file")
			}
		})
	}
	if code, _, stderr := cli(t, "gen", "--layers", "2"); code != 2 || !strings.Contains(stderr, "-o is required") {
		t.Errorf("gen without -o: code %d, %q", code, stderr)
	}
}

// The values at the ends of the ranges are accepted.
func TestGenFlagBoundsAccepted(t *testing.T) {
	out := filepath.Join(t.TempDir(), "m.gguf")
	code, stdout, stderr := cli(t, "gen", "--layers", "1", "-t", strconv.Itoa(ocelot.MaxThreads), "--seed", "18446744073709551615", "--fast", "-o", out)
	if code != 0 {
		t.Fatalf("code %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "wrote "+out) {
		t.Errorf("stdout %q", stdout)
	}
	f, err := gguf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if n, err := f.ArchUint32("block_count"); err != nil || n != 1 {
		t.Fatalf("block_count %d, %v; want 1", n, err)
	}
}

// synth cannot import the root package; its bound on threads must still
// be ocelot's.
func TestGenMaxThreadsAgree(t *testing.T) {
	if synth.MaxThreads != ocelot.MaxThreads {
		t.Fatalf("synth.MaxThreads %d, ocelot.MaxThreads %d", synth.MaxThreads, ocelot.MaxThreads)
	}
}

// gen -o refuses, before generating, to replace what is not a regular
// file (exit 1), and replaces a regular file.
func TestGenOutputTargets(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target.gguf")
	old := []byte("not a model")
	if err := os.WriteFile(target, old, 0o640); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.gguf")
	if err := os.Symlink("target.gguf", link); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, kind string }{
		{link, "a symbolic link"},
		{dir, "a directory"},
		{"/dev/null", "a character device"},
	} {
		if c.path == "/dev/null" {
			if st, err := os.Lstat(c.path); err != nil || st.Mode()&fs.ModeCharDevice == 0 {
				continue
			}
		}
		code, _, stderr := cli(t, "gen", "--layers", "1", "-o", c.path)
		if code != 1 || !strings.Contains(stderr, "refusing to replace "+c.path+": it is "+c.kind+", not a regular file") {
			t.Errorf("gen -o %s: code %d, stderr %q", c.path, code, stderr)
		}
	}
	if st, err := os.Lstat("/dev/null"); err == nil && st.Mode()&fs.ModeCharDevice == 0 {
		t.Fatalf("/dev/null is now %v", st.Mode())
	}
	if got, _ := os.ReadFile(target); !bytes.Equal(got, old) {
		t.Fatal("the symlink's target changed")
	}
	if dest, err := os.Readlink(link); err != nil || dest != "target.gguf" {
		t.Fatalf("the symlink now reads %q, %v", dest, err)
	}

	// A regular file is replaced, keeping its permission bits.
	if code, _, stderr := cli(t, "gen", "--layers", "1", "--fast", "-o", target); code != 0 {
		t.Fatalf("gen over a regular file: code %d, %s", code, stderr)
	}
	st, err := os.Lstat(target)
	if err != nil || !st.Mode().IsRegular() || st.Mode().Perm() != 0o640 {
		t.Fatalf("replaced file: %v, %v; want a regular -rw-r----- file", st, err)
	}
	if f, err := gguf.Open(target); err != nil {
		t.Fatalf("replaced file: %v", err)
	} else {
		f.Close()
	}
}
