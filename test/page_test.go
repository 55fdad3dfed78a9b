package test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestCatalogPageInChromium drives the catalog page in headless Chromium
// as a person would: open it, type requirements into the form, press
// Resolve, and read the rendered text. The page has no JavaScript; the
// test drives the browser over the DevTools protocol (--remote-debugging-
// pipe, so no extra Go module is needed). Locally it skips when chromium is
// not installed; with CI=true it fails (.ci/run installs Debian's chromium).
func TestCatalogPageInChromium(t *testing.T) {
	bin := tool(t, "chromium")
	s := startServer(t, publishAll(t))
	b := startBrowser(t, bin)

	text := b.open(t, s.url("/"))
	for _, want := range []string{"Resolve requirements", "php\t8.2.36, 8.2.32, 8.1.27\tlinux/amd64, linux/arm64", "nodejs\t20.12.2, 20.11.1, 18.20.4"} {
		if !strings.Contains(text, want) {
			t.Errorf("catalog page does not show %q:\n%s", want, text)
		}
	}

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

	text = b.submit(t, "php=^9")
	if !strings.Contains(text, "Cannot resolve: no version of php satisfies ^9 (available: 8.1.27, 8.2.32, 8.2.36)") {
		t.Errorf("unsatisfiable requirements are not explained:\n%s", text)
	}
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
	b.drain()
	value, _ := json.Marshal(requirements)
	b.eval(t, "document.getElementById('requirements').value = "+string(value)+"; document.querySelector('button[type=submit]').click(); 'ok'")
	b.waitLoad(t)
	return b.eval(t, "document.body.innerText")
}
