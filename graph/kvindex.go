package graph

import "fmt"

// PageCells is how many KV cells make a page: the unit in which a cache
// is shared by sequences. A sequence's positions [i*PageCells,
// (i+1)*PageCells) sit in one page, in order, so attention reads runs of
// up to PageCells consecutive cells. The CPU's attention tile (64 cells)
// divides it.
const PageCells = 64

// Batch is one micro-batch of tokens from one or more sequences, as
// Build evaluates it. Token t belongs to sequence Seq[t] at position
// Pos[t]; its K and V rows go to cell Pages[Seq[t]][Pos[t]/PageCells] *
// PageCells + Pos[t]%PageCells of the cache, and it attends to positions
// 0..Pos[t] of its sequence. The caller makes sure no two sequences of a
// batch write the same cell and that a token's earlier positions are in
// the cache or earlier in the batch.
type Batch struct {
	Tokens []int32
	Pos    []int32   // each token's position in its sequence
	Seq    []int32   // each token's sequence: an index into Pages
	Pages  [][]int32 // each sequence's pages, in position order
	// Out lists the rows whose logits (or hidden states) the pass
	// returns, in that order; none when empty.
	Out []int32
	// Hidden asks for the final hidden states of the Out rows instead of
	// their logits (embeddings).
	Hidden bool
}

// Cell is the cache cell of token t.
func (b *Batch) Cell(t int) int32 {
	p := b.Pos[t]
	return b.Pages[b.Seq[t]][p/PageCells]*PageCells + p%PageCells
}

// check verifies the batch against a cache of cells cells.
func (b *Batch) check(cells int) error {
	n := len(b.Tokens)
	if n == 0 {
		return fmt.Errorf("graph: empty batch")
	}
	if len(b.Pos) != n || len(b.Seq) != n {
		return fmt.Errorf("graph: batch of %d tokens has %d positions and %d sequence ids", n, len(b.Pos), len(b.Seq))
	}
	pages := cells / PageCells
	for i, pg := range b.Pages {
		for j, p := range pg {
			if p < 0 || int(p) >= pages {
				return fmt.Errorf("graph: page %d of sequence %d is %d, outside the %d pages of the cache", j, i, p, pages)
			}
		}
	}
	for t := range n {
		s, p := b.Seq[t], b.Pos[t]
		if s < 0 || int(s) >= len(b.Pages) {
			return fmt.Errorf("graph: token %d belongs to sequence %d of %d", t, s, len(b.Pages))
		}
		if p < 0 || int(p)/PageCells >= len(b.Pages[s]) {
			return fmt.Errorf("graph: token %d at position %d lies past the %d pages of its sequence", t, p, len(b.Pages[s]))
		}
	}
	for _, r := range b.Out {
		if r < 0 || int(r) >= n {
			return fmt.Errorf("graph: output row %d of a batch of %d tokens", r, n)
		}
	}
	return nil
}

// index encodes the batch's KV index (see KVIndex).
func (b *Batch) index() []int32 {
	n := len(b.Tokens)
	idx := make([]int32, 2*n, 2*n+len(b.Pages))
	copy(idx, b.Pos)
	base := make([]int32, len(b.Pages))
	for i, pg := range b.Pages {
		base[i] = int32(len(idx))
		idx = append(idx, pg...)
	}
	for t, s := range b.Seq {
		idx[n+t] = base[s]
	}
	return idx
}

// KVIndex reads an attention's KV index (its Src[3]), the I32 values
// of a batch of n tokens: n positions, then n offsets into the index
// where each token's list of pages starts, then the lists. A sequence's
// tokens share one list.
type KVIndex struct {
	Idx []int32
	N   int // tokens
}

// Pos is token t's position: it sees positions 0..Pos(t).
func (x KVIndex) Pos(t int) int { return int(x.Idx[t]) }

// Base is where token t's list of pages starts in Idx; tokens of one
// sequence have the same.
func (x KVIndex) Base(t int) int { return int(x.Idx[x.N+t]) }

// Cell is the cache cell holding position j of token t's sequence.
func (x KVIndex) Cell(t, j int) int {
	return int(x.Idx[x.Base(t)+j/PageCells])*PageCells + j%PageCells
}

// Check verifies an index of n tokens against a cache of cells cells
// with pages of page cells, as backends do before they read a cache
// through it, and returns the most positions a token sees.
func (x KVIndex) Check(page, cells int) (int, error) {
	n := x.N
	if page != PageCells {
		return 0, fmt.Errorf("KV index with pages of %d cells, want %d", page, PageCells)
	}
	if n < 1 || len(x.Idx) < 2*n {
		return 0, fmt.Errorf("KV index of %d values for %d tokens", len(x.Idx), n)
	}
	most := 0
	for t := range n {
		p, base := x.Idx[t], x.Idx[n+t]
		if p < 0 || base < int32(2*n) || int(base) >= len(x.Idx) || int(base)+int(p)/page >= len(x.Idx) {
			return 0, fmt.Errorf("KV index: token %d at position %d with pages from %d of %d values", t, p, base, len(x.Idx))
		}
		// The pages before the token's own are read whole; its own up to
		// its position.
		list := x.Idx[base : int(base)+int(p)/page+1]
		for i, pg := range list {
			end := int64(pg)*int64(page) + int64(page)
			if i == len(list)-1 {
				end = int64(pg)*int64(page) + int64(p)%int64(page) + 1
			}
			if pg < 0 || end > int64(cells) {
				return 0, fmt.Errorf("KV index: token %d reads page %d, outside the cache of %d cells", t, pg, cells)
			}
		}
		most = max(most, int(p)+1)
	}
	return most, nil
}

// SeqIndex is the KV index input of n tokens of one sequence at
// positions pos0, pos0+1, ..., whose position i sits in cell i.
func SeqIndex(pos0, n int) *Tensor {
	return input("kv_index", seqBatch(make([]int32, n), pos0, (pos0+n+PageCells-1)/PageCells).index())
}

// seqBatch is tokens of one sequence at positions pos0, pos0+1, ...,
// whose pages 0..pages-1 are the cache's pages of the same numbers
// (position i in cell i).
func seqBatch(tokens []int32, pos0, pages int) *Batch {
	n := len(tokens)
	b := &Batch{Tokens: tokens, Pos: make([]int32, n), Seq: make([]int32, n), Pages: [][]int32{make([]int32, pages)}}
	for i := range b.Pos {
		b.Pos[i] = int32(pos0 + i)
	}
	for i := range b.Pages[0] {
		b.Pages[0][i] = int32(i)
	}
	return b
}
