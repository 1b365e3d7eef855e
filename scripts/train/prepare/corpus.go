package main

import (
	"bufio"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"
)

// doc is one source file of the corpus.
type doc struct {
	Rel  string // path under GOROOT/src, slash-separated
	Text string
	Test bool // a _test.go file
}

// skipped counts the files the collection left out, by reason.
type skipped struct {
	Generated int `json:"generated"`
	TooLarge  int `json:"too_large"`
	NotUTF8   int `json:"not_utf8"`
	Tests     int `json:"tests"` // _test.go files, when tests are not used
}

// generatedRE is Go's convention for generated files
// (https://go.dev/s/generatedcode): a line of this form before the
// package clause.
var generatedRE = regexp.MustCompile(`^// Code generated .* DO NOT EDIT\.$`)

// isGenerated reports whether a Go file says that it was generated.
func isGenerated(text string) bool {
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64*1024), len(text)+1)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if generatedRE.MatchString(line) {
			return true
		}
		if strings.HasPrefix(line, "package ") {
			return false
		}
	}
	return false
}

// skipDir reports whether a directory under src is left out of the
// corpus: test data, vendored third-party copies (src/vendor and
// src/cmd/vendor), and the directories the go tool itself ignores (names
// starting with "." or "_").
func skipDir(name string) bool {
	return name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")
}

// heldOut reports whether rel (a slash path under src) lies in one of the
// held-out package trees: the directory itself or anything below it.
func heldOut(rel string, trees []string) bool {
	dir := filepath.ToSlash(filepath.Dir(filepath.FromSlash(rel)))
	for _, t := range trees {
		if dir == t || strings.HasPrefix(dir, t+"/") {
			return true
		}
	}
	return false
}

// collect walks src (GOROOT/src) in lexical order and returns the files of
// the corpus, split into training and held-out files, and what it left
// out. Files of the held-out trees go to val, tests included (which val
// keeps only when withTests); the held-out trees must each exist.
func collect(src string, trees []string, maxFile int, withTests bool) (train, val []doc, skip skipped, err error) {
	for _, t := range trees {
		st, err := os.Stat(filepath.Join(src, filepath.FromSlash(t)))
		if err != nil || !st.IsDir() {
			return nil, nil, skip, fmt.Errorf("held-out package tree %q is not a directory under %s", t, src)
		}
	}
	err = filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != src && skipDir(d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		name := d.Name()
		if !d.Type().IsRegular() || !strings.HasSuffix(name, ".go") || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
			return nil
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		test := strings.HasSuffix(name, "_test.go")
		if test && !withTests {
			skip.Tests++
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Size() > int64(maxFile) {
			skip.TooLarge++
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		text := string(data)
		switch {
		case !utf8.ValidString(text):
			skip.NotUTF8++
			return nil
		case isGenerated(text):
			skip.Generated++
			return nil
		}
		dc := doc{Rel: rel, Text: text, Test: test}
		if heldOut(rel, trees) {
			if !test {
				val = append(val, dc)
			}
			return nil
		}
		train = append(train, dc)
		return nil
	})
	if err != nil {
		return nil, nil, skip, fmt.Errorf("walk %s: %w", src, err)
	}
	return train, val, skip, nil
}

// rank is a file's place in the corpus's fixed shuffle: the FNV-1a hash of
// its path. It depends on nothing but the path, so the order is the same
// on every machine and for every subset of files.
func rank(rel string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(rel))
	return h.Sum64()
}

// shuffle orders docs for sampling: non-test files first, then test
// files, each group by rank (ties by path).
func shuffle(docs []doc) {
	sort.SliceStable(docs, func(i, j int) bool {
		a, b := docs[i], docs[j]
		if a.Test != b.Test {
			return !a.Test
		}
		ra, rb := rank(a.Rel), rank(b.Rel)
		if ra != rb {
			return ra < rb
		}
		return a.Rel < b.Rel
	})
}

// tokenizerText joins non-test docs, in their order, while they fit in
// limit bytes (a doc that does not fit is passed over): the text the tokenizer is trained on. Test files are left out so
// that the vocabulary is that of library code.
func tokenizerText(docs []doc, limit int) string {
	var b strings.Builder
	for _, d := range docs {
		if d.Test {
			continue
		}
		if b.Len()+len(d.Text) > limit {
			continue
		}
		b.WriteString(d.Text)
	}
	return b.String()
}
