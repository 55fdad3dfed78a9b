package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/envreg/envreg/packages"
)

// terminalProgress returns the function that draws a publishing run's
// events on w, or nil (no progress) when w is not a terminal: CI logs and
// pipes get the log lines only.
func terminalProgress(w io.Writer) func(packages.Event) {
	if terminal(w) == nil {
		return nil
	}
	return newProgressBoard(w, time.Now).event
}

// progressBoard draws the events of a publishing run on a terminal: a
// line per recipe of a seeding run, apt's lines as apt prints them, and
// the layers being compressed on one line, "compressing php 8.2.36 for
// linux/amd64: 12.3 MB, php 8.2.36 for linux/arm64: 9.8 MB", redrawn at
// most five times a second, then one line per built layer.
type progressBoard struct {
	out    io.Writer
	now    func() time.Time
	mu     sync.Mutex
	active []*layerLine // the layers being built, in the order they started
	last   time.Time    // of the last redraw
}

// layerLine is one layer being built.
type layerLine struct {
	subject string
	n       int64 // compressed bytes so far
	start   time.Time
}

func newProgressBoard(out io.Writer, now func() time.Time) *progressBoard {
	return &progressBoard{out: out, now: now}
}

// redrawEvery is the shortest time between two redraws of the
// compression line.
const redrawEvery = 200 * time.Millisecond

// event draws e; it may be called from several goroutines at once.
func (b *progressBoard) event(e packages.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch e.Kind {
	case packages.RecipeStarted:
		fmt.Fprintf(b.out, "publishing %s (%d of %d)\n", e.Subject, e.Index, e.Count)
	case packages.AptOutput:
		fmt.Fprintln(b.out, e.Line)
	case packages.LayerStarted:
		b.active = append(b.active, &layerLine{subject: e.Subject, start: b.now()})
	case packages.LayerProgress:
		l := b.find(e.Subject)
		if l == nil {
			return
		}
		l.n = e.Bytes
		if now := b.now(); now.Sub(b.last) >= redrawEvery {
			b.last = now
			b.draw()
		}
	case packages.LayerBuilt:
		l := b.find(e.Subject)
		if l == nil {
			return
		}
		fmt.Fprintf(b.out, "\r\x1b[Kcompressed %s: %.1f MB in %s\n", l.subject, float64(e.Bytes)/1e6, b.now().Sub(l.start).Round(100*time.Millisecond))
		b.remove(l)
	case packages.LayerFailed:
		if l := b.find(e.Subject); l != nil {
			b.remove(l)
		}
	}
}

func (b *progressBoard) find(subject string) *layerLine {
	for _, l := range b.active {
		if l.subject == subject {
			return l
		}
	}
	return nil
}

// draw redraws the compression line.
func (b *progressBoard) draw() {
	if len(b.active) == 0 {
		return
	}
	parts := make([]string, len(b.active))
	for i, l := range b.active {
		parts[i] = fmt.Sprintf("%s: %.1f MB", l.subject, float64(l.n)/1e6)
	}
	fmt.Fprintf(b.out, "\r\x1b[Kcompressing %s", strings.Join(parts, ", "))
}

// remove takes l off the board and redraws the line, clearing it when no
// layer is left.
func (b *progressBoard) remove(l *layerLine) {
	b.active = slices.DeleteFunc(b.active, func(o *layerLine) bool { return o == l })
	if len(b.active) == 0 {
		fmt.Fprint(b.out, "\r\x1b[K")
	}
	b.draw()
}
