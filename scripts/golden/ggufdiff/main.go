// Command ggufdiff compares the tensors of two GGUF files: for each tensor
// of the first, whether the second has it with the same type, shape and
// bytes. It prints one line per difference and a summary, and exits 1 when
// any tensor differs (metadata is not compared: writers order and version
// it differently).
//
//	go run ./scripts/golden/ggufdiff A.gguf B.gguf
package main

import (
	"bytes"
	"fmt"
	"os"

	"github.com/ocelot-llm/ocelot/gguf"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: ggufdiff A.gguf B.gguf")
		os.Exit(2)
	}
	same, diff, err := compare(os.Args[1], os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "ggufdiff:", err)
		os.Exit(2)
	}
	fmt.Printf("ggufdiff: %d tensors identical, %d differ\n", same, len(diff))
	for _, d := range diff {
		fmt.Println("  " + d)
	}
	if len(diff) > 0 {
		os.Exit(1)
	}
}

// compare returns how many tensors of a match b exactly and a line for
// each that does not (or that b lacks, or has extra).
func compare(pa, pb string) (same int, diff []string, err error) {
	a, err := gguf.Open(pa)
	if err != nil {
		return 0, nil, err
	}
	defer a.Close()
	b, err := gguf.Open(pb)
	if err != nil {
		return 0, nil, err
	}
	defer b.Close()
	inB := map[string]gguf.TensorInfo{}
	for _, t := range b.Tensors {
		inB[t.Name] = t
	}
	for _, ta := range a.Tensors {
		tb, ok := inB[ta.Name]
		delete(inB, ta.Name)
		switch {
		case !ok:
			diff = append(diff, fmt.Sprintf("%s: only in %s", ta.Name, pa))
			continue
		case ta.Type != tb.Type || fmt.Sprint(ta.Shape) != fmt.Sprint(tb.Shape):
			diff = append(diff, fmt.Sprintf("%s: %s %v against %s %v", ta.Name, ta.Type, ta.Shape, tb.Type, tb.Shape))
			continue
		}
		da, err := a.TensorData(ta.Name)
		if err != nil {
			return 0, nil, err
		}
		db, err := b.TensorData(ta.Name)
		if err != nil {
			return 0, nil, err
		}
		if !bytes.Equal(da, db) {
			n := 0
			for i := range da {
				if da[i] != db[i] {
					n++
				}
			}
			diff = append(diff, fmt.Sprintf("%s (%s): %d of %d bytes differ", ta.Name, ta.Type, n, len(da)))
			continue
		}
		same++
	}
	for name := range inB {
		diff = append(diff, fmt.Sprintf("%s: only in %s", name, pb))
	}
	return same, diff, nil
}
