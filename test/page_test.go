package test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"image/png"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envreg/envreg/server/api"
	"github.com/envreg/envreg/test/fixtures"
)

// TestCatalogPageInChromium drives the catalog page in headless Chromium
// as a person would: open it, type requirements into the form, press
// Resolve, read the rendered text and the drawn layers, compare with a
// previous pin, and follow a package link. The page has no JavaScript; the
// test drives the browser over the DevTools protocol (--remote-debugging-
// pipe, so no extra Go module is needed). Locally it skips when chromium is
// not installed; with CI=true it fails (.ci/run installs Debian's chromium).
//
// The packages are the fixtures with incompressible payloads of realistic
// proportions (base largest, graphicsmagick too small to draw to scale),
// so the drawing is checked, and photographed, as it looks in use:
// go test ./test -run TestCatalogPageInChromium -update-screenshots
// writes docs/catalog-page.png and docs/package-page.png.
func TestCatalogPageInChromium(t *testing.T) {
	bin := tool(t, "chromium")
	data := publishSized(t)
	s := startServer(t, data)
	b := startBrowser(t, bin)
	b.viewport(t, 1200, 900)

	text := b.open(t, s.url("/"))
	for _, want := range []string{"Resolve requirements", "php\t8.2.36, 8.2.32, 8.1.27\tlinux/amd64, linux/arm64", "nodejs\t20.12.2, 20.11.1, 18.20.4"} {
		if !strings.Contains(text, want) {
			t.Errorf("catalog page does not show %q:\n%s", want, text)
		}
	}
	checkStrictPage(t, s, b, "/")

	text = b.submit(t, "php=^8.2\ngraphicsmagick\nnodejs=^20")
	pull := regexp.MustCompile(`docker pull ` + regexp.QuoteMeta(s.host) + `/env@(sha256:[0-9a-f]{64})`).FindStringSubmatch(text)
	if pull == nil {
		t.Fatalf("no docker pull line after resolving:\n%s", text)
	}
	for _, want := range []string{"php\t8.2.36", "nodejs\t20.12.2", "graphicsmagick\t1.3.42", "base\t12.0.0", "linux/amd64\t", "linux/arm64\t"} {
		if !strings.Contains(text, want) {
			t.Errorf("resolution does not show %q:\n%s", want, text)
		}
	}
	// What the page shows is what a pull gets.
	if got := digestOf(t, s, "env@"+pull[1]).String(); got != pull[1] {
		t.Errorf("pinned %s, registry has %s", pull[1], got)
	}
	checkDrawings(t, b, s.resolveAPI(t, `{"requirements":{"php":"^8.2","graphicsmagick":"*","nodejs":"^20"}}`))

	text = b.submit(t, "php=^9")
	if !strings.Contains(text, "Cannot resolve: no version of php satisfies ^9 (available: 8.1.27, 8.2.32, 8.2.36)") {
		t.Errorf("unsatisfiable requirements are not explained:\n%s", text)
	}

	// A previous pin, then the same requirements compared with it: php and
	// nodejs change, base and graphicsmagick are on the node already.
	text = b.submit(t, "php=8.1\ngraphicsmagick\nnodejs=18")
	old := regexp.MustCompile(`/env@(sha256:[0-9a-f]{64})`).FindStringSubmatch(text)
	if old == nil {
		t.Fatalf("no pinned reference:\n%s", text)
	}
	b.clickAndWait(t, "#use-as-from")
	if got := b.eval(t, "document.getElementById('from').value"); got != old[1] {
		t.Errorf("the link to compare with the pin fills in from %q, want %s", got, old[1])
	}
	text = b.submitForm(t, map[string]string{"requirements": "php=^8.2\ngraphicsmagick\nnodejs=^20", "policy": "all"})
	want := s.resolveAPI(t, `{"requirements":{"php":"^8.2","graphicsmagick":"*","nodejs":"^20"},"from":"`+old[1]+`"}`)
	for _, w := range []string{"php\tupgraded\t8.1.27\t8.2.36", "nodejs\tupgraded\t18.20.4\t20.12.2", "A node with the from image downloads 2 layers"} {
		if !strings.Contains(text, w) {
			t.Errorf("the comparison does not show %q:\n%s", w, text)
		}
	}
	for _, d := range checkDrawings(t, b, want) {
		for _, bar := range d.Bars {
			if wantDownload := bar.Package == "php" || bar.Package == "nodejs"; bar.Download != strconv.FormatBool(wantDownload) {
				t.Errorf("%s: %s marked download %q", d.Platform, bar.Package, bar.Download)
			}
		}
	}
	checkStrictPage(t, s, b, "")
	shot := b.screenshot(t, "catalog-page.png")
	checkColors(t, shot, "catalog page", [3]uint8{0xe8, 0x59, 0x0c}, [3]uint8{0xce, 0xd4, 0xda})
	// Without the stylesheet the drawings are the same: SVG attributes
	// carry the geometry, the fills and the words.
	b.eval(t, "document.querySelector('style').remove(); 'ok'")
	if w := b.eval(t, "getComputedStyle(document.body).maxWidth"); w != "none" {
		t.Fatalf("the stylesheet is still applied (body max-width %s)", w)
	}
	checkDrawings(t, b, want)

	// The package page, through the catalog's link, with a version yanked
	// while the registry serves.
	envreg(t, "yank", "--data", data, "php", "8.2.32")
	waitFor(t, "the server to see php 8.2.32 yanked", func() bool {
		_, data := s.get(t, "/api/v1/packages/php", "")
		return strings.Contains(string(data), `"version":"8.2.32","published"`) && bytes.Contains(data, []byte(`"yanked":true`))
	})
	b.open(t, s.url("/"))
	b.clickAndWait(t, `#packages a[href="/packages/php"]`)
	checkPackagePage(t, b, s)
	checkStrictPage(t, s, b, "/packages/php")
	shot = b.screenshot(t, "package-page.png")
	checkColors(t, shot, "package page", [3]uint8{0x3b, 0x6e, 0xa5})
}

// browser is a headless Chromium driven over --remote-debugging-pipe
// (DevTools protocol messages, NUL-terminated JSON, on fds 3 and 4).
type browser struct {
	send    *os.File
	mu      sync.Mutex
	nextID  int
	waiting map[int]chan cdpMessage
	events  chan cdpMessage
	session string
}

type cdpMessage struct {
	ID        int             `json:"id,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *struct{ Message string }
	SessionID string `json:"sessionId,omitempty"`
}

func startBrowser(t *testing.T, bin string) *browser {
	t.Helper()
	toChrome, send, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	recv, fromChrome, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	// --no-sandbox: CI containers run as root, where the sandbox cannot start.
	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--remote-debugging-pipe", "--user-data-dir="+t.TempDir(), "about:blank")
	cmd.ExtraFiles = []*os.File{toChrome, fromChrome} // fds 3 and 4
	stderr := &lockedWriter{w: &bytes.Buffer{}}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	toChrome.Close()
	fromChrome.Close()
	b := &browser{send: send, waiting: map[int]chan cdpMessage{}, events: make(chan cdpMessage, 256)}
	t.Cleanup(func() {
		send.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		recv.Close()
		if t.Failed() {
			t.Logf("chromium stderr:\n%s", stderr.String())
		}
	})
	go b.read(recv)

	var target struct{ TargetID string }
	b.call(t, "", "Target.createTarget", map[string]any{"url": "about:blank"}, &target)
	var attached struct{ SessionID string }
	b.call(t, "", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &attached)
	b.session = attached.SessionID
	b.call(t, b.session, "Page.enable", nil, nil)
	return b
}

func (b *browser) read(r *os.File) {
	br := bufio.NewReader(r)
	for {
		data, err := br.ReadBytes(0)
		if err != nil {
			close(b.events)
			return
		}
		var m cdpMessage
		if json.Unmarshal(data[:len(data)-1], &m) != nil {
			continue
		}
		if m.ID != 0 {
			b.mu.Lock()
			ch := b.waiting[m.ID]
			delete(b.waiting, m.ID)
			b.mu.Unlock()
			if ch != nil {
				ch <- m
			}
			continue
		}
		select {
		case b.events <- m:
		default: // nobody waits for it
		}
	}
}

// call sends a command and decodes its result into out.
func (b *browser) call(t *testing.T, session, method string, params, out any) {
	t.Helper()
	b.mu.Lock()
	b.nextID++
	id := b.nextID
	ch := make(chan cdpMessage, 1)
	b.waiting[id] = ch
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if session != "" {
		msg["sessionId"] = session
	}
	data, _ := json.Marshal(msg)
	if _, err := b.send.Write(append(data, 0)); err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	select {
	case m := <-ch:
		if m.Error != nil {
			t.Fatalf("%s: %s", method, m.Error.Message)
		}
		if out != nil {
			if err := json.Unmarshal(m.Result, out); err != nil {
				t.Fatalf("%s: %v", method, err)
			}
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: no answer from chromium within 30s", method)
	}
}

// drain drops queued events, so that waitLoad sees only new ones.
func (b *browser) drain() {
	for {
		select {
		case <-b.events:
		default:
			return
		}
	}
}

func (b *browser) waitLoad(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for {
		select {
		case m, ok := <-b.events:
			if !ok {
				t.Fatal("chromium exited")
			}
			if m.Method == "Page.loadEventFired" && m.SessionID == b.session {
				return
			}
		case <-ctx.Done():
			t.Fatal("the page did not finish loading within 30s")
		}
	}
}

// eval evaluates a driver expression in the page and returns its string value.
func (b *browser) eval(t *testing.T, expr string) string {
	t.Helper()
	var res struct {
		Result           struct{ Value any }
		ExceptionDetails *struct{ Text string }
	}
	b.call(t, b.session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &res)
	if res.ExceptionDetails != nil {
		t.Fatalf("evaluating %s: %s", expr, res.ExceptionDetails.Text)
	}
	return fmt.Sprint(res.Result.Value)
}

// open navigates to url and returns the text a person sees.
func (b *browser) open(t *testing.T, url string) string {
	t.Helper()
	b.drain()
	b.call(t, b.session, "Page.navigate", map[string]any{"url": url}, nil)
	b.waitLoad(t)
	return b.eval(t, "document.body.innerText")
}

// submit types requirements into the form, presses Resolve and returns
// the text of the page that comes back.
func (b *browser) submit(t *testing.T, requirements string) string {
	t.Helper()
	return b.submitForm(t, map[string]string{"requirements": requirements})
}

// submitForm sets the form's fields by id, presses Resolve and returns the
// text of the page that comes back.
func (b *browser) submitForm(t *testing.T, fields map[string]string) string {
	t.Helper()
	b.drain()
	var js strings.Builder
	for _, id := range slices.Sorted(maps.Keys(fields)) {
		key, _ := json.Marshal(id)
		value, _ := json.Marshal(fields[id])
		fmt.Fprintf(&js, "document.getElementById(%s).value = %s; ", key, value)
	}
	b.eval(t, js.String()+"document.querySelector('button[type=submit]').click(); 'ok'")
	b.waitLoad(t)
	return b.eval(t, "document.body.innerText")
}

var updateScreenshots = flag.Bool("update-screenshots", false, "write the catalog pages' screenshots into docs/")

// payloadKiB gives the fixtures sizes in the proportions of the real
// packages (Debian's base, php-cli, nodejs, graphicsmagick), scaled down.
var payloadKiB = map[string]int{
	"base 12.0.0":           2900,
	"graphicsmagick 1.3.40": 170,
	"graphicsmagick 1.3.42": 190,
	"nodejs 18.20.4":        1700,
	"nodejs 20.11.1":        2050,
	"nodejs 20.12.2":        2100,
	"php 8.1.27":            880,
	"php 8.2.32":            1020,
	"php 8.2.36":            1060,
}

// publishSized publishes every fixture for both platforms, each with an
// incompressible payload of its payloadKiB (arm64 7% smaller), with the
// public form of "envreg publish", and returns the data directory.
func publishSized(t *testing.T) string {
	t.Helper()
	data := filepath.Join(t.TempDir(), "data")
	for _, p := range fixtures.All() {
		kib, ok := payloadKiB[p.Name+" "+p.Version]
		if !ok {
			t.Fatalf("no payload size for fixture %s %s", p.Name, p.Version)
		}
		for _, plat := range fixturePlatforms {
			root := filepath.Join(t.TempDir(), "rootfs")
			if err := fixtures.WriteTree(root, p, plat); err != nil {
				t.Fatal(err)
			}
			n := kib << 10
			if plat.Architecture == "arm64" {
				n = n * 93 / 100
			}
			payload := make([]byte, n)
			_, _ = rand.NewChaCha8(sha256.Sum256([]byte(p.Name + " " + p.Version + " " + plat.String()))).Read(payload)
			dir := filepath.Join(root, "usr", "share", p.Name)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "payload"), payload, 0o644); err != nil {
				t.Fatal(err)
			}
			envreg(t, publishArgs([]string{"--data", data}, p, plat, root)...)
		}
	}
	return data
}

// drawnStack is a drawing as Chromium rendered it.
type drawnStack struct {
	Platform      string
	Total         string
	DownloadBytes string
	Title, Desc   string
	Shown         float64 // the rendered height of the SVG
	Bars          []struct {
		Package, Version string
		Size             int64
		Download, Raised string
		Y, Height        float64 // the rendered box of the bar
		Label, Fill      string
		Mark             string // written on the bar, with from
		Fits             bool   // the label fits in the drawing, the mark on the bar
	}
}

const drawnStacksJS = `JSON.stringify([...document.querySelectorAll('figure.drawing')].map(f => ({
	Platform: f.dataset.platform,
	Total: f.querySelector('data.total').value,
	DownloadBytes: (f.querySelector('data.download-bytes') || {}).value || '',
	Title: f.querySelector('svg > title').textContent,
	Desc: f.querySelector('svg > desc').textContent,
	Shown: f.querySelector('svg').getBoundingClientRect().height,
	Bars: [...f.querySelectorAll('svg g.layer')].map(g => {
		const r = g.querySelector('rect'), box = r.getBBox(), label = g.querySelector('a text').getBBox();
		const mark = g.querySelector(':scope > text'), mbox = mark ? mark.getBBox() : box;
		return {Package: g.dataset.package, Version: g.dataset.version, Size: +g.dataset.size,
			Download: g.dataset.download || '', Raised: g.dataset.raised || '', Y: box.y, Height: box.height,
			Label: g.querySelector('a text').textContent, Fill: getComputedStyle(r).fill,
			Mark: mark ? mark.textContent : '',
			Fits: label.x + label.width <= g.ownerSVGElement.width.baseVal.value &&
				mbox.x >= box.x && mbox.x + mbox.width <= box.x + box.width && mbox.y >= box.y && mbox.y + mbox.height <= box.y + box.height + 1};
	}),
})))`

// checkDrawings reads the drawn layer stacks of the page in the browser
// and checks them against the API's answer for the same request: one per
// platform, a bar per layer from the bottom up, heights to one scale
// (bars under the legend's minimum raised to it), labels, and with from
// the download marks and the byte total.
func checkDrawings(t *testing.T, b *browser, want *api.ResolveResponse) []drawnStack {
	t.Helper()
	var got []drawnStack
	if err := json.Unmarshal([]byte(b.eval(t, drawnStacksJS)), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want.Platforms) {
		t.Fatalf("%d drawings, want %d (one per platform)", len(got), len(want.Platforms))
	}
	m := regexp.MustCompile(`a bar is at least (\d+) px high`).FindStringSubmatch(b.eval(t, "document.getElementById('legend').innerText"))
	if m == nil {
		t.Fatal("the legend does not state the minimum bar height")
	}
	minHeight, _ := strconv.ParseFloat(m[1], 64)
	// The scale: pixels per byte of the largest bar, which is drawn to scale.
	var perByte float64
	for _, d := range got {
		for _, bar := range d.Bars {
			if bar.Raised == "" && bar.Size > 0 {
				perByte = max(perByte, bar.Height/float64(bar.Size))
			}
		}
	}
	for i, d := range got {
		pr := want.Platforms[i]
		if d.Platform != pr.Platform || len(d.Bars) != len(pr.Layers) || d.Total != strconv.FormatInt(pr.Size, 10) || d.Shown < 100 {
			t.Errorf("drawing %d: %s, %d bars, total %s, %v px high; want %s, %d layers, %d bytes", i, d.Platform, len(d.Bars), d.Total, d.Shown, pr.Platform, len(pr.Layers), pr.Size)
			continue
		}
		for j, bar := range d.Bars {
			l := pr.Layers[j]
			if bar.Package != l.Package || bar.Version != l.Version || bar.Size != l.Size || !strings.HasPrefix(bar.Label, l.Package+" "+l.Version+" · ") {
				t.Errorf("%s bar %d: %s %s %d %q, want %s %s %d", d.Platform, j, bar.Package, bar.Version, bar.Size, bar.Label, l.Package, l.Version, l.Size)
			}
			if !strings.Contains(d.Desc, fmt.Sprintf("%d. %s %s, ", j+1, l.Package, l.Version)) {
				t.Errorf("%s: the description does not name layer %d, %s %s: %q", d.Platform, j+1, l.Package, l.Version, d.Desc)
			}
			toScale := float64(bar.Size) * perByte
			if bar.Height < minHeight || (bar.Raised == "" && math.Abs(bar.Height-toScale) > 1) || (bar.Raised != "" && (bar.Height != minHeight || toScale > minHeight)) {
				t.Errorf("%s bar %d (%s, %d bytes): %v px high (raised %q), %v to scale, minimum %v", d.Platform, j, bar.Package, bar.Size, bar.Height, bar.Raised, toScale, minHeight)
			}
			if j > 0 && bar.Y+bar.Height > d.Bars[j-1].Y {
				t.Errorf("%s: layer %d is not drawn above layer %d", d.Platform, j+1, j)
			}
			if !bar.Fits {
				t.Errorf("%s bar %d (%s): the label %q or %q does not fit", d.Platform, j, bar.Package, bar.Label, bar.Mark)
			}
			wantDownload, wantMark, wantFill := "", "", ""
			if l.Download != nil {
				wantDownload, wantMark, wantFill = strconv.FormatBool(*l.Download), "on the node", "rgb(206, 212, 218)"
				if *l.Download {
					wantMark, wantFill = "download", "rgb(232, 89, 12)"
				}
			}
			if bar.Download != wantDownload || bar.Mark != wantMark || (wantFill != "" && bar.Fill != wantFill) {
				t.Errorf("%s bar %d (%s): download %q, says %q, in %s; want %q, %q, %s", d.Platform, j, bar.Package, bar.Download, bar.Mark, bar.Fill, wantDownload, wantMark, wantFill)
			}
		}
		if pr.Download != nil && d.DownloadBytes != strconv.FormatInt(pr.Download.Size, 10) {
			t.Errorf("%s: download %s bytes, want %d", d.Platform, d.DownloadBytes, pr.Download.Size)
		}
	}
	return got
}

// checkPackagePage checks the php page against GET /api/v1/packages/php:
// versions newest first, the yanked one marked, publish times and sizes
// per platform.
func checkPackagePage(t *testing.T, b *browser, s *server) {
	t.Helper()
	if path := b.eval(t, "location.pathname"); path != "/packages/php" {
		t.Fatalf("the catalog's link led to %s", path)
	}
	resp, data := s.get(t, "/api/v1/packages/php", "")
	var detail api.PackageDetail
	if err := json.Unmarshal(data, &detail); resp.StatusCode != 200 || err != nil {
		t.Fatalf("GET /api/v1/packages/php: %d %v", resp.StatusCode, err)
	}
	var rows []struct {
		ID, Text, Time string
		Yanked         bool
		Sizes          []string
	}
	js := `JSON.stringify([...document.querySelectorAll('#versions tr[id]')].map(tr => ({ID: tr.id, Text: tr.innerText,
		Time: tr.querySelector('time').dateTime, Yanked: tr.classList.contains('yanked'),
		Sizes: [...tr.querySelectorAll('data')].map(d => d.value)})))`
	if err := json.Unmarshal([]byte(b.eval(t, js)), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(detail.Versions) {
		t.Fatalf("%d versions on the page, %d in the API", len(rows), len(detail.Versions))
	}
	yanked := 0
	for i, v := range detail.Versions {
		r := rows[i]
		var sizes []string
		for _, l := range v.Platforms {
			sizes = append(sizes, strconv.FormatInt(l.Size, 10))
		}
		published, err := time.Parse(time.RFC3339, r.Time)
		if r.ID != "v-"+v.Version || r.Yanked != v.Yanked || strings.Contains(r.Text, "yanked") != v.Yanked ||
			err != nil || !published.Equal(v.Published.Truncate(time.Second)) || !slices.Equal(r.Sizes, sizes) || !strings.Contains(r.Text, "base *") {
			t.Errorf("row %d: %+v; want version %s (yanked %v) published %s, sizes %v", i, r, v.Version, v.Yanked, v.Published, sizes)
		}
		if v.Yanked {
			yanked++
		}
	}
	if yanked != 1 {
		t.Errorf("%d yanked versions, want 1 (8.2.32)", yanked)
	}
}

// checkStrictPage checks that the page in the browser runs no script and
// is styled by its one stylesheet, and that the server still sends the
// strict Content-Security-Policy for it.
func checkStrictPage(t *testing.T, s *server, b *browser, path string) {
	t.Helper()
	if path == "" {
		path = b.eval(t, "location.pathname + location.search")
	}
	resp, _ := s.get(t, path, "")
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.HasPrefix(csp, "default-src 'none'; style-src 'sha256-") || strings.Contains(csp, "script") || strings.Contains(csp, "unsafe") {
		t.Errorf("GET %s: Content-Security-Policy %q", path, csp)
	}
	if n := b.eval(t, "document.scripts.length"); n != "0" {
		t.Errorf("%s has %s scripts", path, n)
	}
	// The CSP forbids inline scripts: one injected into the page does not run.
	if ran := b.eval(t, injectScriptJS); ran != "blocked" {
		t.Errorf("%s: an injected inline script ran (%s)", path, ran)
	}
	// The stylesheet's hash is right: Chromium applied it.
	if w := b.eval(t, "getComputedStyle(document.body).maxWidth"); w != "1120px" {
		t.Errorf("%s: the stylesheet is not applied (body max-width %s)", path, w)
	}
}

const injectScriptJS = `(() => { const s = document.createElement('script');
	s.textContent = 'document.documentElement.dataset.ran = "ran"';
	document.head.appendChild(s);
	return document.documentElement.dataset.ran || 'blocked'; })()`

// checkColors checks that a screenshot shows each colour (the drawing was
// painted) in at least 100 pixels.
func checkColors(t *testing.T, shot []byte, what string, colors ...[3]uint8) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("%s screenshot: %v", what, err)
	}
	count := make([]int, len(colors))
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			for i, c := range colors {
				if uint8(r>>8) == c[0] && uint8(g>>8) == c[1] && uint8(bl>>8) == c[2] {
					count[i]++
				}
			}
		}
	}
	for i, c := range colors {
		if count[i] < 100 {
			t.Errorf("%s screenshot (%v): %d pixels of #%02x%02x%02x", what, bounds.Size(), count[i], c[0], c[1], c[2])
		}
	}
}

// viewport sets the page's size, as a desktop browser window.
func (b *browser) viewport(t *testing.T, width, height int) {
	t.Helper()
	b.call(t, b.session, "Emulation.setDeviceMetricsOverride",
		map[string]any{"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}, nil)
}

// screenshot captures the whole page as PNG (Page.captureScreenshot) into
// a temporary directory, or into docs/ with -update-screenshots.
func (b *browser) screenshot(t *testing.T, name string) []byte {
	t.Helper()
	var metrics struct {
		CSSContentSize struct{ Width, Height float64 } `json:"cssContentSize"`
	}
	b.call(t, b.session, "Page.getLayoutMetrics", nil, &metrics)
	var shot struct{ Data []byte } // base64 in JSON
	b.call(t, b.session, "Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true,
		"clip": map[string]any{"x": 0, "y": 0, "width": metrics.CSSContentSize.Width, "height": metrics.CSSContentSize.Height, "scale": 1}}, &shot)
	dir := t.TempDir()
	if *updateScreenshots {
		dir = filepath.Join("..", "docs")
	}
	if err := os.WriteFile(filepath.Join(dir, name), shot.Data, 0o644); err != nil {
		t.Fatal(err)
	}
	return shot.Data
}

// clickAndWait clicks the element selector names and waits for the page
// it leads to.
func (b *browser) clickAndWait(t *testing.T, selector string) {
	t.Helper()
	b.drain()
	sel, _ := json.Marshal(selector)
	b.eval(t, "document.querySelector("+string(sel)+").click(); 'ok'")
	b.waitLoad(t)
}
