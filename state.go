package ocelot

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math"

	"github.com/ocelot-llm/ocelot/gguf"
	"github.com/ocelot-llm/ocelot/model"
	"github.com/ocelot-llm/ocelot/quant"
)

// stateMagic and stateVersion open a saved session state (SaveState).
const (
	stateMagic   = "OCELOTST"
	stateVersion = 1
)

// fingerprint identifies a model for saved states: a SHA-256 of its
// hyperparameters and its tensor table (names, types, shapes), so that a
// state is only restored into the model that made it.
func fingerprint(f *gguf.File, c model.Config) [32]byte {
	h := sha256.New()
	fmt.Fprintf(h, "%+v;", c)
	for _, t := range f.Tensors {
		fmt.Fprintf(h, "%s:%d:%v;", t.Name, t.Type, t.Shape)
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// Fork returns a new session holding this one's sequence: a prompt
// evaluated once can be continued in several ways (two replies to one
// system prompt). The sessions share the cache of the common tokens
// (the graph engines copy a shared page of it only when one of them
// writes into it; the reference engine copies the cache); they are
// independent afterwards.
func (s *Session) Fork() (*Session, error) {
	if err := s.lockIdle(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	m := s.m
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, ErrClosed
	}
	sq, err := s.sq.fork(len(s.tokens) - s.pending)
	if err != nil {
		return nil, err
	}
	f := &Session{m: m, sq: sq}
	f.tokens, f.pending = append([]int32(nil), s.tokens...), s.pending
	if s.last != nil {
		f.last = append([]float32(nil), s.last...)
	}
	return f, nil
}

// SaveState writes the session's sequence and the KV cache of its cached
// tokens to w: a versioned header with the model's fingerprint and the KV
// types, the tokens, every layer's K and V rows, and a CRC-32 of it all.
// LoadState reads it back, into a session of the same model and KV types.
func (s *Session) SaveState(w io.Writer) error {
	if err := s.lockIdle(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	n := len(s.tokens) - s.pending
	k, v, err := s.sq.exportKV(n)
	if err != nil {
		return err
	}
	crc := crc32.NewIEEE()
	bw := bufio.NewWriter(io.MultiWriter(w, crc))
	m := s.m
	put := func(x any) { binary.Write(bw, binary.LittleEndian, x) }
	bw.WriteString(stateMagic)
	put(uint32(stateVersion))
	bw.Write(m.fp[:])
	put([4]uint32{uint32(m.opt.typeK), uint32(m.opt.typeV), uint32(len(s.tokens)), uint32(s.pending)})
	put(s.tokens)
	put(uint32(len(k)))
	for l := range k {
		put([2]uint64{uint64(len(k[l])), uint64(len(v[l]))})
		bw.Write(k[l])
		bw.Write(v[l])
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("ocelot: save state: %w", err)
	}
	if err := binary.Write(w, binary.LittleEndian, crc.Sum32()); err != nil {
		return fmt.Errorf("ocelot: save state: %w", err)
	}
	return nil
}

// LoadState replaces the session's sequence and cache with a state
// SaveState wrote. A state of another model, other KV types, a longer
// sequence than n_ctx, a truncated or damaged file are errors, and leave
// the session as it was.
func (s *Session) LoadState(r io.Reader) error {
	if err := s.lockIdle(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	m := s.m
	crc := crc32.NewIEEE()
	sr := &stateReader{r: bufio.NewReader(r), h: crc}
	magic := make([]byte, len(stateMagic))
	sr.read(magic)
	if sr.err == nil && string(magic) != stateMagic {
		return errors.New("ocelot: load state: not an ocelot session state (bad magic)")
	}
	var version uint32
	sr.get(&version)
	if sr.err == nil && version != stateVersion {
		return fmt.Errorf("ocelot: load state: version %d, this build reads version %d", version, stateVersion)
	}
	var fp [32]byte
	sr.read(fp[:])
	if sr.err == nil && fp != m.fp {
		return fmt.Errorf("ocelot: load state: it was saved from another model than %s", m.path)
	}
	var hdr [4]uint32
	sr.get(&hdr)
	if sr.err != nil {
		return sr.fail()
	}
	tk, tv, count, pending := quant.Type(hdr[0]), quant.Type(hdr[1]), int(hdr[2]), int(hdr[3])
	switch {
	case tk != m.opt.typeK || tv != m.opt.typeV:
		return fmt.Errorf("ocelot: load state: its KV cache is %s/%s, this model runs %s/%s (-ctk/-ctv)", tk, tv, m.opt.typeK, m.opt.typeV)
	case count > m.opt.NCtx:
		return fmt.Errorf("ocelot: load state: %d tokens do not fit n_ctx %d", count, m.opt.NCtx)
	case pending > 1 || pending > count:
		return fmt.Errorf("ocelot: load state: %d pending tokens of %d", pending, count)
	}
	tokens := make([]int32, count)
	sr.get(tokens)
	for i, id := range tokens {
		if sr.err == nil && (id < 0 || int(id) >= m.net.NVocab) {
			return fmt.Errorf("ocelot: load state: token %d at index %d is outside the vocabulary", id, i)
		}
	}
	var layers uint32
	sr.get(&layers)
	if sr.err == nil && int(layers) != m.net.NLayer {
		return fmt.Errorf("ocelot: load state: %d layers, the model has %d", layers, m.net.NLayer)
	}
	n := count - pending
	rk, rv, err := kvRowBytes(m)
	if err != nil {
		return err
	}
	var k, v [][]byte
	for l := 0; l < int(layers) && sr.err == nil; l++ {
		var sizes [2]uint64
		sr.get(&sizes)
		if sr.err == nil && (sizes[0] != uint64(n)*uint64(rk) || sizes[1] != uint64(n)*uint64(rv)) {
			return fmt.Errorf("ocelot: load state: layer %d holds %d and %d bytes of K and V, want %d and %d", l, sizes[0], sizes[1], n*rk, n*rv)
		}
		kl, vl := make([]byte, n*rk), make([]byte, n*rv)
		sr.read(kl)
		sr.read(vl)
		k, v = append(k, kl), append(v, vl)
	}
	if sr.err != nil {
		return sr.fail()
	}
	sum := crc.Sum32()
	var want uint32
	if err := binary.Read(sr.r, binary.LittleEndian, &want); err != nil {
		return errors.New("ocelot: load state: the file is truncated (no checksum)")
	}
	if sum != want {
		return errors.New("ocelot: load state: the checksum does not match: the file is damaged")
	}
	if err := s.sq.importKV(n, k, v); err != nil {
		return err
	}
	s.tokens, s.pending, s.last = tokens, pending, nil
	return nil
}

// kvRowBytes is the bytes of one cache cell's K row and V row.
func kvRowBytes(m *Model) (int, int, error) {
	k, v, err := model.KVRowBytes(m.net.Config, m.opt.typeK, m.opt.typeV)
	if err != nil {
		return 0, 0, fmt.Errorf("ocelot: %w", err)
	}
	if k > math.MaxInt32 || v > math.MaxInt32 {
		return 0, 0, errors.New("ocelot: KV rows too large")
	}
	return int(k), int(v), nil
}

// stateReader reads a state, hashing what it reads and remembering the
// first error.
type stateReader struct {
	r   *bufio.Reader
	h   hash.Hash32
	err error
}

func (s *stateReader) read(p []byte) {
	if s.err != nil {
		return
	}
	if _, err := io.ReadFull(s.r, p); err != nil {
		s.err = err
		return
	}
	s.h.Write(p)
}

func (s *stateReader) get(x any) {
	if s.err != nil {
		return
	}
	buf := make([]byte, binary.Size(x))
	s.read(buf)
	if s.err == nil {
		s.err = binary.Read(bytes.NewReader(buf), binary.LittleEndian, x)
	}
}

func (s *stateReader) fail() error {
	if errors.Is(s.err, io.EOF) || errors.Is(s.err, io.ErrUnexpectedEOF) {
		return errors.New("ocelot: load state: the file is truncated")
	}
	return fmt.Errorf("ocelot: load state: %w", s.err)
}
