package packages_test

import (
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/packages"
	"github.com/envreg/envreg/packages/layer/layertest"
)

// recordEvents sets pub.Progress to record every event.
func recordEvents(pub *packages.Publisher) func() []packages.Event {
	var mu sync.Mutex
	var events []packages.Event
	pub.Progress = func(e packages.Event) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, e)
	}
	return func() []packages.Event {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(events)
	}
}

// TestPublishProgress: a layer's events say it started, how many
// compressed bytes are written (growing), and that it was built, with the
// size of the stored blob.
func TestPublishProgress(t *testing.T) {
	pub, _, _ := newPublisher(t)
	events := recordEvents(pub)
	rel, err := pub.Publish(t.Context(), phpInput(phpTree(t, "a")))
	if err != nil {
		t.Fatal(err)
	}
	const subject = "php 8.2.36 for linux/amd64"
	got := events()
	if len(got) < 3 || got[0] != (packages.Event{Kind: packages.LayerStarted, Subject: subject}) {
		t.Fatalf("events %+v, want LayerStarted first", got)
	}
	last := got[len(got)-1]
	if want := (packages.Event{Kind: packages.LayerBuilt, Subject: subject, Bytes: rel.Layers[0].Size}); last != want {
		t.Fatalf("last event %+v, want %+v", last, want)
	}
	var n int64
	for _, e := range got[1 : len(got)-1] {
		if e.Kind != packages.LayerProgress || e.Subject != subject || e.Bytes < n {
			t.Fatalf("event %+v among %+v: want LayerProgress with growing Bytes", e, got)
		}
		n = e.Bytes
	}
	if n != rel.Layers[0].Size {
		t.Errorf("the last LayerProgress says %d bytes, the layer has %d", n, rel.Layers[0].Size)
	}
}

// TestPublishProgressFailed: a refused layer ends with LayerFailed, not
// LayerBuilt.
func TestPublishProgressFailed(t *testing.T) {
	pub, _, _ := newPublisher(t)
	events := recordEvents(pub)
	file := filepath.Join(t.TempDir(), "hostile.tar")
	if err := os.WriteFile(file, layertest.MessyTar(t, []layertest.TarEntry{layertest.Reg("/etc/passwd", "x")}, false), 0o644); err != nil {
		t.Fatal(err)
	}
	in := packages.Input{ReleaseSpec: catalog.ReleaseSpec{Name: "x", Version: "1.0.0"}, Platform: amd64, Tar: file}
	if _, err := pub.Publish(t.Context(), in); err == nil {
		t.Fatal("a hostile tar was published")
	}
	const subject = "x 1.0.0 for linux/amd64"
	want := []packages.Event{{Kind: packages.LayerStarted, Subject: subject}, {Kind: packages.LayerFailed, Subject: subject}}
	if got := events(); !slices.Equal(got, want) {
		t.Fatalf("events %+v, want %+v", got, want)
	}
}

// TestAptOutput: apt's output reaches Progress one line at a time, however
// it is written; with no Progress apt gets no writer (and runs quietly).
func TestAptOutput(t *testing.T) {
	pub, _, _ := newPublisher(t)
	if w := packages.AptWriter(pub); w != nil {
		t.Fatalf("AptWriter without Progress = %v, want nil", w)
	}
	events := recordEvents(pub)
	w := packages.AptWriter(pub)
	for _, s := range []string{"Get:1 http://deb.example bookworm InRelease [151 kB]\nGet:2 ", "http://deb.example", " bookworm/main amd64 Packages [8,788 kB]\n", "Fetched 8,939 kB in 2s\nReading package lists... Done\n"} {
		if _, err := w.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	var lines []string
	for _, e := range events() {
		if e.Kind != packages.AptOutput {
			t.Fatalf("event %+v, want AptOutput", e)
		}
		lines = append(lines, e.Line)
	}
	want := []string{"Get:1 http://deb.example bookworm InRelease [151 kB]", "Get:2 http://deb.example bookworm/main amd64 Packages [8,788 kB]",
		"Fetched 8,939 kB in 2s", "Reading package lists... Done"}
	if !slices.Equal(lines, want) {
		t.Fatalf("lines %q, want %q", lines, want)
	}
}
