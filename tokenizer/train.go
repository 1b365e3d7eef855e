package tokenizer

import (
	"fmt"
	"sort"
)

// llama3Specials returns the 256 special tokens of Llama 3.1, in id order
// (they take the last 256 ids of its vocabulary).
func llama3Specials() []string {
	s := []string{
		"<|begin_of_text|>",
		"<|end_of_text|>",
		"<|reserved_special_token_0|>",
		"<|reserved_special_token_1|>",
		"<|finetune_right_pad_id|>",
		"<|reserved_special_token_2|>",
		"<|start_header_id|>",
		"<|end_header_id|>",
		"<|eom_id|>",
		"<|eot_id|>",
		"<|python_tag|>",
	}
	for i := 3; len(s) < 256; i++ {
		s = append(s, fmt.Sprintf("<|reserved_special_token_%d|>", i))
	}
	return s
}

// Llama3ChatTemplate is the chat template of Meta's Llama 3 Instruct
// models; RenderChat recognises it as ChatLlama3.
const Llama3ChatTemplate = "{% set loop_messages = messages %}{% for message in loop_messages %}" +
	"{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}" +
	"{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}" +
	"{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"

// trainMinCount is the fewest occurrences a pair needs to be merged: any
// pair that occurs at all.
const trainMinCount = 1

// TrainBPE trains a Llama 3 style byte-level BPE vocabulary of exactly
// vocabSize tokens on text, deterministically.
//
// The text is cut into words by the Llama 3 pre-tokenizer; the 256 bytes
// are the first tokens (in GPT-2's order and byte-level spelling); then
// the most frequent adjacent pair of tokens (ties broken by the lower ids)
// is merged into a new token, again and again, until vocabSize-256 regular
// tokens exist or no pair is left to merge. If the text runs out of pairs, the
// gap is filled with reserved control tokens, as Llama 3 reserves unused
// special ids. The last 256 ids are Llama 3.1's special tokens
// (<|begin_of_text|>, <|end_of_text|>, <|start_header_id|>, <|eot_id|>,
// ...), of type control.
//
// The vocabulary is a "gpt2" model with the "llama-bpe" pre-tokenizer, BOS
// <|begin_of_text|> added to prompts, EOS <|end_of_text|>, EOT <|eot_id|>
// (the end of an instruct model's turn) and the Llama 3 chat template.
func TrainBPE(text string, vocabSize int) (*Vocab, error) {
	specials := llama3Specials()
	nRegular := vocabSize - len(specials)
	if nRegular < 256 {
		return nil, fmt.Errorf("tokenizer: vocabulary size %d too small: need at least %d (256 bytes and %d special tokens)", vocabSize, 256+len(specials), len(specials))
	}

	tr := newTrainer(text)
	tr.train(nRegular)

	tokens := tr.tokens
	types := make([]int32, 0, vocabSize)
	for range tokens {
		types = append(types, TypeNormal)
	}
	// Reserved names continue after Llama 3.1's last one,
	// <|reserved_special_token_247|>.
	for k := 248; len(tokens) < nRegular; k++ {
		tokens = append(tokens, fmt.Sprintf("<|reserved_special_token_%d|>", k))
		types = append(types, TypeControl)
	}
	seen := make(map[string]bool, vocabSize)
	for _, s := range tokens {
		seen[s] = true
	}
	for _, s := range specials {
		if seen[s] {
			return nil, fmt.Errorf("tokenizer: trained token %q collides with a special token", s)
		}
		tokens = append(tokens, s)
		types = append(types, TypeControl)
	}
	id := func(s string) int32 { return int32(nRegular + indexOf(specials, s)) }
	return &Vocab{
		Model:        ModelBPE,
		Pre:          "llama-bpe",
		Tokens:       tokens,
		Types:        types,
		Merges:       tr.merges,
		BOS:          id("<|begin_of_text|>"),
		EOS:          id("<|end_of_text|>"),
		EOT:          id("<|eot_id|>"),
		EOM:          id("<|eom_id|>"),
		UNK:          -1,
		PAD:          -1,
		AddBOS:       true,
		ChatTemplate: Llama3ChatTemplate,
	}, nil
}

func indexOf(xs []string, s string) int {
	for i, x := range xs {
		if x == s {
			return i
		}
	}
	return -1
}

// trainer holds the state of BPE training: the distinct words as token
// sequences with their counts, and the count of every adjacent pair with
// the words it occurs in.
type trainer struct {
	tokens []string         // token texts, byte-level spelling
	ids    map[string]int32 // token text -> id
	merges []string

	words  [][]int32
	counts []int64
	pairs  map[uint64]int64   // pair -> occurrences
	where  map[uint64][]int32 // pair -> words it occurs in (may repeat)
	heap   heap[pairCount]
	stamp  []int // last merge that touched each word
}

type pairCount struct {
	count int64
	pair  uint64
}

// before orders pairs for merging: more frequent first, then lower ids.
func (a *pairCount) before(b *pairCount) bool {
	return a.count > b.count || (a.count == b.count && a.pair < b.pair)
}

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

func newTrainer(text string) *trainer {
	tr := &trainer{ids: map[string]int32{}, pairs: map[uint64]int64{}, where: map[uint64][]int32{}}
	var byteID [256]int32
	for i, b := range byteOrder {
		byteID[b] = int32(i)
		tr.tokens = append(tr.tokens, byteToUnicode[b])
		tr.ids[byteToUnicode[b]] = int32(i)
	}
	wordCount := map[string]int64{}
	splitLlama3(normalizeUTF8(text), func(w string) { wordCount[w]++ })
	distinct := make([]string, 0, len(wordCount))
	for w := range wordCount {
		distinct = append(distinct, w)
	}
	sort.Strings(distinct)
	for i, w := range distinct {
		syms := make([]int32, len(w))
		for j := 0; j < len(w); j++ {
			syms[j] = byteID[w[j]]
		}
		tr.words = append(tr.words, syms)
		tr.counts = append(tr.counts, wordCount[w])
		tr.addPairs(int32(i), +1)
	}
	tr.stamp = make([]int, len(tr.words))
	items := make([]pairCount, 0, len(tr.pairs))
	for p, c := range tr.pairs {
		items = append(items, pairCount{c, p})
	}
	sort.Slice(items, func(i, j int) bool { return items[i].before(&items[j]) }) // a sorted slice is a heap
	tr.heap = heap[pairCount]{less: (*pairCount).before, items: items}
	return tr
}

// addPairs adds (sign +1) or removes (-1) the pairs of word w to the
// counts, noting the words of added pairs.
func (tr *trainer) addPairs(w int32, sign int64) {
	syms, c := tr.words[w], tr.counts[w]*sign
	for j := 0; j+1 < len(syms); j++ {
		p := pairKey(syms[j], syms[j+1])
		tr.pairs[p] += c
		if sign > 0 {
			tr.where[p] = append(tr.where[p], w)
		}
	}
}

// train merges pairs until there are n tokens or no pair occurs often
// enough.
func (tr *trainer) train(n int) {
	for iter := 1; len(tr.tokens) < n; iter++ {
		best, ok := tr.popBest()
		if !ok {
			return
		}
		a, b := int32(best>>32), int32(uint32(best))
		text := tr.tokens[a] + tr.tokens[b]
		tr.merges = append(tr.merges, tr.tokens[a]+" "+tr.tokens[b])
		id, exists := tr.ids[text]
		if !exists {
			id = int32(len(tr.tokens))
			tr.tokens = append(tr.tokens, text)
			tr.ids[text] = id
		}
		touched := map[uint64]bool{}
		for _, w := range tr.where[best] {
			if tr.stamp[w] == iter {
				continue
			}
			tr.stamp[w] = iter
			syms := tr.words[w]
			if !containsPair(syms, a, b) {
				continue
			}
			for j := 0; j+1 < len(syms); j++ {
				touched[pairKey(syms[j], syms[j+1])] = true
			}
			tr.addPairs(w, -1)
			out := syms[:0]
			for j := 0; j < len(syms); j++ {
				if j+1 < len(syms) && syms[j] == a && syms[j+1] == b {
					out = append(out, id)
					j++
					continue
				}
				out = append(out, syms[j])
			}
			tr.words[w] = out
			tr.addPairs(w, +1)
			for j := 0; j+1 < len(out); j++ {
				touched[pairKey(out[j], out[j+1])] = true
			}
		}
		delete(tr.where, best)
		keys := make([]uint64, 0, len(touched))
		for p := range touched {
			keys = append(keys, p)
		}
		sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
		for _, p := range keys {
			if c := tr.pairs[p]; c >= trainMinCount {
				tr.heap.push(pairCount{c, p})
			} else if c == 0 {
				delete(tr.pairs, p)
			}
		}
	}
}

func containsPair(syms []int32, a, b int32) bool {
	for j := 0; j+1 < len(syms); j++ {
		if syms[j] == a && syms[j+1] == b {
			return true
		}
	}
	return false
}

// popBest returns the most frequent pair, skipping heap entries whose count
// has changed since they were pushed.
func (tr *trainer) popBest() (uint64, bool) {
	for tr.heap.len() > 0 {
		top := tr.heap.pop()
		if top.count < trainMinCount || tr.pairs[top.pair] != top.count {
			continue
		}
		return top.pair, true
	}
	return 0, false
}
