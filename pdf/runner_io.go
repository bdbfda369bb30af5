package pdf

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
)

// headBuffer keeps the first max bytes written to it: a Go crash states its
// cause first, then dumps every goroutine, which can be megabytes.
type headBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (h *headBuffer) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if room := h.max - h.buf.Len(); room > 0 {
		h.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (h *headBuffer) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.buf.String()
}

// progressWriter turns the child's progress lines into callbacks and
// discards anything else the child prints.
type progressWriter struct {
	fn   func(done, total int)
	line []byte
}

func (w *progressWriter) Write(p []byte) (int, error) {
	for _, c := range p {
		if c != '\n' {
			if len(w.line) < 256 { // a progress line is short; ignore floods
				w.line = append(w.line, c)
			}
			continue
		}
		w.emit(string(w.line))
		w.line = w.line[:0]
	}
	return len(p), nil
}

func (w *progressWriter) emit(line string) {
	rest, ok := strings.CutPrefix(line, progressPrefix)
	if !ok || w.fn == nil {
		return
	}
	var done, total int
	if _, err := fmt.Sscanf(rest, "%d %d", &done, &total); err == nil {
		w.fn(done, total)
	}
}
