package model

import "context"

// Logits says which positions of a batch get logits.
type Logits int

// Which logits a forward pass returns.
const (
	LogitsNone Logits = iota // none: the batch only fills the cache
	LogitsLast               // the last position's
	LogitsAll                // every position's
	// Hidden asks for every position's final hidden state (after the
	// output norm, before the output matrix) instead of logits: what
	// embeddings are pooled from.
	Hidden
)

// Ubatches splits tokens as llama.cpp does — logical batches of nBatch,
// each cut into micro-batches of nUbatch — and calls run on each
// micro-batch in order, saying which logits it must produce: every
// position's when all is set, else the last position's in the last
// micro-batch and none elsewhere. It stops at the first error, and between
// micro-batches when ctx is cancelled. The sizes change the order of float
// operations only.
func Ubatches(ctx context.Context, tokens []int32, nBatch, nUbatch int, all bool, run func(ub []int32, want Logits) error) error {
	for b := 0; b < len(tokens); b += nBatch {
		chunk := tokens[b:min(b+nBatch, len(tokens))]
		for u := 0; u < len(chunk); u += nUbatch {
			if err := ctx.Err(); err != nil {
				return err
			}
			ub := chunk[u:min(u+nUbatch, len(chunk))]
			want := LogitsNone
			switch {
			case all:
				want = LogitsAll
			case b+u+len(ub) == len(tokens):
				want = LogitsLast
			}
			if err := run(ub, want); err != nil {
				return err
			}
		}
	}
	return nil
}
