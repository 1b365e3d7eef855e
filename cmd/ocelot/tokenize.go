package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/ocelot-llm/ocelot/tokenizer"
)

func init() {
	register(&command{
		name:    "tokenize",
		summary: "turn text into token ids with a model's tokenizer",
		run:     runTokenize,
	})
}

// tokenizeStdin is where tokenize reads when no text or file is given (a
// variable so that tests can replace it).
var tokenizeStdin io.Reader = os.Stdin

func runTokenize(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("tokenize", stderr)
	var (
		model, prompt, file                               string
		jsonl, noBOS, bos, special, noSpecial, showPieces bool
	)
	fs.StringVar(&model, "m", "", "model or vocabulary file (GGUF)")
	fs.StringVar(&prompt, "p", "", "text to tokenize")
	fs.StringVar(&file, "f", "", "read the text from a file (\"-\" for stdin)")
	fs.BoolVar(&jsonl, "jsonl", false, "read JSON strings, one per line, and write one JSON array of ids per line")
	fs.BoolVar(&noBOS, "no-bos", false, "add no BOS (nor EOS), even where the model asks for it")
	fs.BoolVar(&bos, "bos", false, "no effect: BOS is added by default (kept for older scripts)")
	fs.BoolVar(&noSpecial, "no-parse-special", false, "do not parse special tokens written in the text (such as <|eot_id|>): tokenize them as text")
	fs.BoolVar(&special, "special", false, "no effect: special tokens are parsed by default, as llama-tokenize does (kept for older scripts)")
	fs.BoolVar(&showPieces, "show-pieces", false, "print one token per line: id, a tab, and the quoted text it stands for")
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintln(w, "usage: ocelot tokenize -m M.gguf [-p TEXT | -f FILE] [--jsonl] [--no-bos] [--no-parse-special] [--show-pieces]")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Prints the token ids of the text as a JSON array. Without -p or -f the text")
		fmt.Fprintln(w, "is read from stdin. As in llama-tokenize, BOS (and EOS) are added where the")
		fmt.Fprintln(w, "model asks for BOS (tokenizer.ggml.add_bos_token), unless --no-bos is given.")
		fmt.Fprintln(w, "Special tokens written in the text are parsed, as llama-tokenize does, unless --no-parse-special is given.")
		fmt.Fprintln(w)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case model == "":
		return usagef("-m is required")
	case prompt != "" && file != "":
		return usagef("give -p or -f, not both")
	case jsonl && prompt != "":
		return usagef("--jsonl reads lines from -f or stdin, not -p")
	case jsonl && showPieces:
		return usagef("--show-pieces does not go with --jsonl")
	}

	tok, err := tokenizer.Load(model)
	if err != nil {
		return err
	}
	// llama-tokenize adds the special tokens when the model wants BOS and
	// --no-bos is not given (add_special = add_bos && !no_bos).
	addSpecial := tok.AddBOS() && !noBOS
	special = !noSpecial

	promptSet := false
	fs.Visit(func(f *flag.Flag) { promptSet = promptSet || f.Name == "p" })
	var in io.Reader
	switch {
	case promptSet:
		in = nil // -p "" is the empty text, not stdin
	case file == "" || file == "-":
		in = tokenizeStdin
	default:
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}

	w := bufio.NewWriter(stdout)
	if jsonl {
		if err := tokenizeLines(tok, in, w, addSpecial, special); err != nil {
			return err
		}
		return w.Flush()
	}

	text := prompt
	if in != nil {
		data, err := io.ReadAll(in)
		if err != nil {
			return fmt.Errorf("read text: %w", err)
		}
		text = string(data)
	}
	ids, err := tok.Encode(text, addSpecial, special)
	if err != nil {
		return err
	}
	if showPieces {
		for _, id := range ids {
			piece, err := tok.Piece(id)
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "%d\t%s\n", id, strconv.Quote(string(piece)))
		}
	} else {
		w.Write(appendIDs(nil, ids))
		w.WriteByte('\n')
	}
	return w.Flush()
}

// tokenizeLines reads one JSON string per line and writes the ids of each
// as a JSON array on a line of its own. Blank lines are skipped.
func tokenizeLines(tok *tokenizer.Tokenizer, in io.Reader, w *bufio.Writer, addSpecial, special bool) error {
	r := bufio.NewReader(in)
	var ids []int32
	var out []byte
	for lineNo := 1; ; lineNo++ {
		line, err := r.ReadBytes('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read line %d: %w", lineNo, err)
		}
		if trimmed := bytes.TrimSpace(line); len(trimmed) > 0 {
			var text string
			if jerr := json.Unmarshal(trimmed, &text); jerr != nil {
				return fmt.Errorf("line %d: want a JSON string: %v", lineNo, jerr)
			}
			if ids, err = tok.AppendEncode(ids[:0], text, addSpecial, special); err != nil {
				return fmt.Errorf("line %d: %w", lineNo, err)
			}
			out = append(appendIDs(out[:0], ids), '\n')
			if _, err := w.Write(out); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
	}
}

// appendIDs appends ids as a JSON array: [128000, 9906].
func appendIDs(dst []byte, ids []int32) []byte {
	dst = append(dst, '[')
	for i, id := range ids {
		if i > 0 {
			dst = append(dst, ", "...)
		}
		dst = strconv.AppendInt(dst, int64(id), 10)
	}
	return append(dst, ']')
}
