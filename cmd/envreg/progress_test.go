package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/envreg/envreg/packages"
)

// TestProgressBoard: the events of a run draw what `envreg publish` and
// `serve --seed` showed on a terminal before the publisher reported
// events: recipe and apt lines as they come, one compression line
// redrawn at most every 200 ms, a line per built layer, and the line
// cleared when the last layer ends.
func TestProgressBoard(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	now := t0
	var out bytes.Buffer
	b := newProgressBoard(&out, func() time.Time { return now })
	const a, c = "php 8.2.36 for linux/amd64", "php 8.2.36 for linux/arm64"
	steps := []struct {
		at   time.Duration
		e    packages.Event
		want string
	}{
		{0, packages.Event{Kind: packages.RecipeStarted, Subject: "php 8.2.36 for linux/amd64, linux/arm64", Index: 1, Count: 2},
			"publishing php 8.2.36 for linux/amd64, linux/arm64 (1 of 2)\n"},
		{0, packages.Event{Kind: packages.AptOutput, Line: "Get:1 http://deb.example bookworm InRelease [151 kB]"},
			"Get:1 http://deb.example bookworm InRelease [151 kB]\n"},
		{0, packages.Event{Kind: packages.LayerStarted, Subject: a}, ""},
		{0, packages.Event{Kind: packages.LayerStarted, Subject: c}, ""},
		{0, packages.Event{Kind: packages.LayerProgress, Subject: a, Bytes: 1_500_000},
			"\r\x1b[Kcompressing php 8.2.36 for linux/amd64: 1.5 MB, php 8.2.36 for linux/arm64: 0.0 MB"},
		{100 * time.Millisecond, packages.Event{Kind: packages.LayerProgress, Subject: c, Bytes: 2_000_000}, ""},
		{250 * time.Millisecond, packages.Event{Kind: packages.LayerProgress, Subject: a, Bytes: 3_000_000},
			"\r\x1b[Kcompressing php 8.2.36 for linux/amd64: 3.0 MB, php 8.2.36 for linux/arm64: 2.0 MB"},
		{1260 * time.Millisecond, packages.Event{Kind: packages.LayerBuilt, Subject: a, Bytes: 3_210_000},
			"\r\x1b[Kcompressed php 8.2.36 for linux/amd64: 3.2 MB in 1.3s\n" +
				"\r\x1b[Kcompressing php 8.2.36 for linux/arm64: 2.0 MB"},
		{1300 * time.Millisecond, packages.Event{Kind: packages.LayerProgress, Subject: c, Bytes: 2_500_000},
			"\r\x1b[Kcompressing php 8.2.36 for linux/arm64: 2.5 MB"},
		{1450 * time.Millisecond, packages.Event{Kind: packages.LayerProgress, Subject: c, Bytes: 2_550_000}, ""},
		{2 * time.Second, packages.Event{Kind: packages.LayerBuilt, Subject: c, Bytes: 2_600_000},
			"\r\x1b[Kcompressed php 8.2.36 for linux/arm64: 2.6 MB in 2s\n\r\x1b[K"},
		{2 * time.Second, packages.Event{Kind: packages.LayerStarted, Subject: "x 1.0.0 for linux/amd64"}, ""},
		{2 * time.Second, packages.Event{Kind: packages.LayerFailed, Subject: "x 1.0.0 for linux/amd64"}, "\r\x1b[K"},
		{2 * time.Second, packages.Event{Kind: packages.LayerProgress, Subject: "unknown"}, ""},
	}
	for i, s := range steps {
		now = t0.Add(s.at)
		out.Reset()
		b.event(s.e)
		if got := out.String(); got != s.want {
			t.Fatalf("step %d (%+v): drew %q, want %q", i, s.e, got, s.want)
		}
	}
}
