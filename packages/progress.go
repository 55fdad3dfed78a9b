package packages

import (
	"bytes"
	"io"
	"sync"
)

// Event is one step of a publishing run, for a person watching it.
// Publisher.Progress receives the events as they happen; how they look
// is the caller's business (cmd/envreg draws them on a terminal).
type Event struct {
	Kind EventKind
	// Subject is what the event is about: a recipe for RecipeStarted
	// ("php 8.2.36 for linux/amd64, linux/arm64"), a layer for the Layer
	// kinds ("php 8.2.36 for linux/amd64"). Layers built at the same time
	// have different subjects.
	Subject string
	// Bytes is the size of the compressed layer: written so far
	// (LayerProgress), or in all (LayerBuilt).
	Bytes int64
	// Index and Count place a step in a Syncer round: the Index-th of
	// Count (RecipeStarted).
	Index, Count int
	// Line is one line apt printed, without its newline (AptOutput).
	Line string
}

// EventKind says what an Event reports.
type EventKind int

// The kinds of events, in the order a run reports them.
const (
	// RecipeStarted: a Syncer round starts a step (a recipe version for
	// some of its platforms).
	RecipeStarted EventKind = iota + 1
	// AptOutput: apt printed a line while refreshing package lists or
	// downloading the .debs of a Debian recipe.
	AptOutput
	// LayerStarted: a layer starts building (compressing).
	LayerStarted
	// LayerProgress: more of a layer is compressed; sent once per write
	// of compressed data (about every MiB).
	LayerProgress
	// LayerBuilt: a layer is built; its blob is stored next.
	LayerBuilt
	// LayerFailed: a layer's build failed or was cancelled.
	LayerFailed
)

// report sends e to Progress, if set.
func (p *Publisher) report(e Event) {
	if p.Progress != nil {
		p.Progress(e)
	}
}

// aptOutput is where apt prints its progress: a writer that reports each
// line as an AptOutput event, or nil (apt then runs quietly) when no one
// watches.
func (p *Publisher) aptOutput() io.Writer {
	if p.Progress == nil {
		return nil
	}
	return &lineWriter{line: func(s string) { p.report(Event{Kind: AptOutput, Line: s}) }}
}

// lineWriter calls line with each complete line written to it.
type lineWriter struct {
	mu   sync.Mutex
	buf  []byte
	line func(string)
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		w.line(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
}

// watchLayer reports the building of the layer subject, whose compressed
// bytes are written to w: it returns the writer to write them to instead
// and the function to call when the build ends, with the layer's size,
// or -1 if it failed. Without Progress it returns w itself.
func (p *Publisher) watchLayer(subject string, w io.Writer) (io.Writer, func(size int64)) {
	if p.Progress == nil {
		return w, func(int64) {}
	}
	p.report(Event{Kind: LayerStarted, Subject: subject})
	pw := &progressWriter{w: w, report: func(n int64) { p.report(Event{Kind: LayerProgress, Subject: subject, Bytes: n}) }}
	var once sync.Once
	return pw, func(size int64) {
		once.Do(func() {
			if size < 0 {
				p.report(Event{Kind: LayerFailed, Subject: subject})
				return
			}
			p.report(Event{Kind: LayerBuilt, Subject: subject, Bytes: size})
		})
	}
}

// progressWriter reports the number of bytes written through it so far
// after every write.
type progressWriter struct {
	w      io.Writer
	n      int64
	report func(n int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.n += int64(n)
	p.report(p.n)
	return n, err
}
