package gguf

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ocelot-llm/ocelot/quant"
)

// umaskedMode returns the mode a file created with perm gets in dir, the
// umask applied.
func umaskedMode(t *testing.T, dir string, perm fs.FileMode) fs.FileMode {
	t.Helper()
	probe := filepath.Join(dir, "probe")
	f, err := os.OpenFile(probe, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		t.Fatal(err)
	}
	st, err := f.Stat()
	f.Close()
	os.Remove(probe)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode()
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// WriteFile replaces only regular files: a symlink (never followed), a
// directory, a FIFO or a device at the path is refused, untouched, and no
// temporary file is left.
func TestWriteFileTargets(t *testing.T) {
	w, _ := sampleWriter(t, 3, 0)
	want := encode(t, w)
	old := []byte("old contents")

	for _, c := range []struct {
		name string
		// setup makes what is at path (in dir) and returns the path to
		// write; it skips the test where it cannot be made.
		setup func(t *testing.T, dir string) string
		// refused is the kind named by the error; "" when WriteFile must
		// succeed.
		refused string
		// check looks at what is there afterwards.
		check func(t *testing.T, dir, path string)
	}{
		{
			name:  "new file",
			setup: func(t *testing.T, dir string) string { return filepath.Join(dir, "m.gguf") },
			check: func(t *testing.T, dir, path string) {
				st, err := os.Lstat(path)
				if err != nil {
					t.Fatal(err)
				}
				if got, wantMode := st.Mode(), umaskedMode(t, dir, 0o644); got != wantMode {
					t.Errorf("new file has mode %v, want %v (0644 less the umask)", got, wantMode)
				}
			},
		},
		{
			name: "regular file keeps its mode",
			setup: func(t *testing.T, dir string) string {
				path := filepath.Join(dir, "m.gguf")
				if err := os.WriteFile(path, old, 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, 0o640); err != nil {
					t.Fatal(err)
				}
				return path
			},
			check: func(t *testing.T, dir, path string) {
				if st, _ := os.Lstat(path); st.Mode() != 0o640 {
					t.Errorf("replaced file has mode %v, want -rw-r-----", st.Mode())
				}
			},
		},
		{
			name: "read-only file",
			setup: func(t *testing.T, dir string) string {
				path := filepath.Join(dir, "m.gguf")
				if err := os.WriteFile(path, old, 0o444); err != nil {
					t.Fatal(err)
				}
				return path
			},
			check: func(t *testing.T, dir, path string) {
				if st, _ := os.Lstat(path); st.Mode() != 0o444 {
					t.Errorf("replaced file has mode %v, want -r--r--r--", st.Mode())
				}
			},
		},
		{
			name: "setuid and sticky bits are dropped",
			setup: func(t *testing.T, dir string) string {
				path := filepath.Join(dir, "m.gguf")
				if err := os.WriteFile(path, old, 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, 0o750|fs.ModeSetuid|fs.ModeSticky); err != nil {
					t.Fatal(err)
				}
				if st, _ := os.Lstat(path); st.Mode()&(fs.ModeSetuid|fs.ModeSticky) == 0 {
					t.Skip("this file system does not keep setuid/sticky bits")
				}
				return path
			},
			check: func(t *testing.T, dir, path string) {
				if st, _ := os.Lstat(path); st.Mode() != 0o750 {
					t.Errorf("replaced file has mode %v, want -rwxr-x--- (permission bits only)", st.Mode())
				}
			},
		},
		{
			name: "symlink to a regular file",
			setup: func(t *testing.T, dir string) string {
				target := filepath.Join(dir, "target.gguf")
				if err := os.WriteFile(target, old, 0o644); err != nil {
					t.Fatal(err)
				}
				path := filepath.Join(dir, "m.gguf")
				if err := os.Symlink("target.gguf", path); err != nil {
					t.Skipf("cannot make a symlink: %v", err)
				}
				return path
			},
			refused: "a symbolic link",
			check: func(t *testing.T, dir, path string) {
				if dest, err := os.Readlink(path); err != nil || dest != "target.gguf" {
					t.Errorf("the link now reads %q, %v; want it untouched", dest, err)
				}
				got, err := os.ReadFile(filepath.Join(dir, "target.gguf"))
				if err != nil || !bytes.Equal(got, old) {
					t.Errorf("the link's target changed: %q, %v", got, err)
				}
			},
		},
		{
			name: "dangling symlink",
			setup: func(t *testing.T, dir string) string {
				path := filepath.Join(dir, "m.gguf")
				if err := os.Symlink("nowhere.gguf", path); err != nil {
					t.Skipf("cannot make a symlink: %v", err)
				}
				return path
			},
			refused: "a symbolic link",
			check: func(t *testing.T, dir, path string) {
				if _, err := os.Lstat(filepath.Join(dir, "nowhere.gguf")); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("the link was followed: its target exists (%v)", err)
				}
			},
		},
		{
			name: "directory",
			setup: func(t *testing.T, dir string) string {
				path := filepath.Join(dir, "m.gguf")
				if err := os.Mkdir(path, 0o755); err != nil {
					t.Fatal(err)
				}
				return path
			},
			refused: "a directory",
			check: func(t *testing.T, dir, path string) {
				if st, err := os.Lstat(path); err != nil || !st.IsDir() {
					t.Errorf("the directory is gone: %v, %v", st, err)
				}
			},
		},
		{
			name: "FIFO",
			setup: func(t *testing.T, dir string) string {
				path := filepath.Join(dir, "m.gguf")
				if err := mkfifo(path); err != nil {
					t.Skipf("cannot make a FIFO: %v", err)
				}
				return path
			},
			refused: "a FIFO",
			check: func(t *testing.T, dir, path string) {
				if st, err := os.Lstat(path); err != nil || st.Mode()&fs.ModeNamedPipe == 0 {
					t.Errorf("the FIFO is gone: %v, %v", st, err)
				}
			},
		},
		{
			name: "/dev/null",
			setup: func(t *testing.T, dir string) string {
				st, err := os.Lstat("/dev/null")
				if err != nil || st.Mode()&fs.ModeCharDevice == 0 {
					t.Skip("no /dev/null character device here")
				}
				return "/dev/null"
			},
			refused: "a character device",
			check: func(t *testing.T, dir, path string) {
				st, err := os.Lstat(path)
				if err != nil || st.Mode()&fs.ModeCharDevice == 0 {
					t.Fatalf("/dev/null is no longer a character device: %v, %v", st, err)
				}
			},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := c.setup(t, dir)
			pathDir := filepath.Dir(path)
			before := dirNames(t, pathDir)

			checkErr := CheckTarget(path)
			err := w.WriteFile(path)
			if c.refused == "" {
				if checkErr != nil || err != nil {
					t.Fatalf("CheckTarget: %v; WriteFile: %v", checkErr, err)
				}
				got, err := os.ReadFile(path)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("the file does not hold what WriteTo writes (%v)", err)
				}
				if st, _ := os.Lstat(path); !st.Mode().IsRegular() {
					t.Fatalf("%s is not a regular file: %v", path, st.Mode())
				}
				if after := dirNames(t, pathDir); !slices.Equal(after, []string{"m.gguf"}) {
					t.Errorf("the folder holds %v afterwards", after)
				}
			} else {
				for what, e := range map[string]error{"CheckTarget": checkErr, "WriteFile": err} {
					if e == nil {
						t.Fatalf("%s accepted %s", what, c.refused)
					}
					msg := e.Error()
					if !strings.Contains(msg, "refusing to replace "+path) || !strings.Contains(msg, "it is "+c.refused) || !strings.Contains(msg, "not a regular file") {
						t.Errorf("%s error %q does not say that %s is %s", what, msg, path, c.refused)
					}
				}
				if after := dirNames(t, pathDir); !slices.Equal(after, before) {
					t.Errorf("the folder held %v and holds %v afterwards", before, after)
				}
			}
			c.check(t, dir, path)
		})
	}
}

// The temporary file is made in the target's folder (so the rename is
// atomic) and is removed when writing fails.
func TestWriteFileTemporary(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "m.gguf")
	if err := os.Mkdir(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	var during []string
	fail := errors.New("fill failed on purpose")
	for _, failing := range []bool{false, true} {
		w := NewWriter()
		if err := w.AddTensor("x", quant.F32, []int64{4}, func(out io.Writer) error {
			during = dirNames(t, filepath.Dir(path))
			if failing {
				return fail
			}
			_, err := out.Write(make([]byte, 16))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		err := w.WriteFile(path)
		if failing != (err != nil) || failing && !errors.Is(err, fail) {
			t.Fatalf("failing %v: WriteFile: %v", failing, err)
		}
		var tmps int
		for _, n := range during {
			if strings.HasPrefix(n, ".m.gguf.tmp") {
				tmps++
			}
		}
		if tmps != 1 {
			t.Fatalf("while writing, the target's folder held %v, want one .m.gguf.tmp* file", during)
		}
		if after := dirNames(t, filepath.Dir(path)); !slices.Equal(after, []string{"m.gguf"}) {
			t.Fatalf("failing %v: afterwards the folder holds %v, want only m.gguf", failing, after)
		}
		if entries := dirNames(t, dir); !slices.Equal(entries, []string{"sub"}) {
			t.Fatalf("a temporary file was made outside the target's folder: %v", entries)
		}
	}
	if err := NewWriter().WriteFile(""); err == nil {
		t.Fatal("WriteFile accepted an empty path")
	}
}
