package tokenizer

// heap is a binary min-heap ordered by less: pop returns an item that no
// other item is less than. BPE merging (mergeLong), SentencePiece merging
// and BPE training all use it. Items of equal priority leave in an order
// that depends on the sequence of pushes and pops, so the less functions
// break ties themselves (by position or by id): the tokens must match
// llama.cpp's exactly.
//
// less takes pointers because calls through a func value are not inlined:
// passing two pointers instead of two structs keeps the heap as fast as the
// hand-written ones it replaces.
//
// items may be set to a slice to reuse, or to a slice already sorted by less
// (a sorted slice is a valid heap).
type heap[T any] struct {
	less  func(a, b *T) bool
	items []T
}

func (h *heap[T]) len() int { return len(h.items) }

// push adds x.
func (h *heap[T]) push(x T) {
	s := append(h.items, x)
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(&s[i], &s[p]) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
	h.items = s
}

// pop removes and returns the least item; the heap must not be empty.
func (h *heap[T]) pop() T {
	s := h.items
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	i := 0
	for {
		l := 2*i + 1
		if l >= len(s) {
			break
		}
		c := l
		if r := l + 1; r < len(s) && h.less(&s[r], &s[l]) {
			c = r
		}
		if !h.less(&s[c], &s[i]) {
			break
		}
		s[i], s[c] = s[c], s[i]
		i = c
	}
	h.items = s
	return top
}
