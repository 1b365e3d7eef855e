package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// The progress line is drawn in place once the work has run its delay,
// shows bytes in MiB/GiB or counts with their unit, and is erased at the
// end; off (not a terminal, or -q), and before the delay, it draws nothing.
func TestProgress(t *testing.T) {
	var buf bytes.Buffer
	p := &progress{w: &buf, on: true, what: "prompt", unit: "tokens", start: time.Now()}
	p.update(512, 2048)
	p.done()
	if got := buf.String(); !strings.HasPrefix(got, "\r\033[Kprompt: 512/2048 tokens (25%), ") || !strings.HasSuffix(got, "\r\033[K") {
		t.Errorf("count line %q", got)
	}
	buf.Reset()
	p = &progress{w: &buf, on: true, what: "uploading weights", bytesUnits: true, start: time.Now()}
	p.update(3<<29, 3<<30)
	if got := buf.String(); !strings.Contains(got, "uploading weights: 1.50 GiB/3.00 GiB (50%)") {
		t.Errorf("bytes line %q", got)
	}
	buf.Reset()
	for _, p := range []*progress{
		{w: &buf, on: false, what: "off", start: time.Now()},
		{w: &buf, on: true, what: "early", start: time.Now(), delay: time.Hour},
		newProgress(&buf, false, "a buffer is no terminal"),
	} {
		p.update(1, 2)
		p.done()
	}
	if buf.Len() != 0 {
		t.Errorf("drew %q", buf.String())
	}
}
