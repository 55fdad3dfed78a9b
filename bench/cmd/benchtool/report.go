package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// result is one line of results.jsonl, written by run.sh (kind meta, wrk,
// rss, pull) and by firstget (kind firstget).
type result struct {
	Kind string `json:"kind"`

	// meta
	Date          string            `json:"date"`
	Tag           string            `json:"tag"`
	Digest        string            `json:"digest"`
	Layer         string            `json:"layer"`
	ManifestBytes int64             `json:"manifest_bytes"`
	BlobBytes     int64             `json:"blob_bytes"`
	Duration      string            `json:"duration"`
	Rounds        int               `json:"rounds"`
	Pulls         int               `json:"pulls"`
	WrkThreads    int               `json:"wrk_threads"`
	Tools         map[string]string `json:"tools"`
	DataFS        string            `json:"data_fs"`

	// wrk, rss, pull
	Server       string  `json:"server"`
	Test         string  `json:"test"`
	Conc         int     `json:"conc"`
	Round        int     `json:"round"`
	CPUSeconds   float64 `json:"cpu_s"`
	OtherCPUPct  int     `json:"other_cpu_pct"`
	Requests     float64 `json:"requests"`
	DurationUS   float64 `json:"duration_us"`
	Bytes        float64 `json:"bytes"`
	Errors       int     `json:"errors"`
	StatusErrors int     `json:"status_errors"`
	P50          float64 `json:"p50_us"`
	P90          float64 `json:"p90_us"`
	P99          float64 `json:"p99_us"`
	PeakRSSKB    float64 `json:"peak_rss_kb"`
	Seconds      float64 `json:"seconds"`

	// background
	When    string `json:"when"`
	LoadAvg string `json:"loadavg"`
	BusyPct int    `json:"busy_pct"`

	// firstget
	N       int       `json:"n"`
	FirstUS []float64 `json:"first_us"`
	WarmUS  []float64 `json:"warm_us"`
}

func (r result) reqPerSec() float64 { return r.Requests * 1e6 / r.DurationUS }
func (r result) mbPerSec() float64  { return r.Bytes / r.DurationUS } // 10^6 bytes per second
func (r result) cpuPerReqUS() float64 {
	if r.Requests == 0 {
		return math.NaN()
	}
	return r.CPUSeconds * 1e6 / r.Requests
}

// runReport reads results.jsonl, prints the ratios and the targets and
// writes the Markdown report.
func runReport(args []string) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	in := fs.String("results", "", "results.jsonl written by run.sh")
	out := fs.String("out", "", "Markdown file to write")
	analysis := fs.String("analysis", "", "optional hand-written Markdown appended under \"Analysis\"")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rs, err := readResults(*in)
	if err != nil {
		return err
	}
	rep := newReport(rs)
	rep.analysis = *analysis
	md := rep.markdown()
	fmt.Print(rep.console())
	if *out != "" {
		return os.WriteFile(*out, []byte(md+keptSection(*out)), 0o644)
	}
	return nil
}

// keptSection returns the section of file that bench/turnaround.sh writes
// (from its marker to the end), so that this report does not erase it.
func keptSection(file string) string {
	const marker = "<!-- turnaround: written by bench/turnaround.sh -->"
	old, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	i := strings.Index(string(old), marker)
	if i < 0 {
		return ""
	}
	return "\n" + string(old[i:])
}

func readResults(name string) ([]result, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rs []result
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var r result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s: %w: %s", name, err, sc.Text())
		}
		rs = append(rs, r)
	}
	return rs, sc.Err()
}

var servers = []string{"envreg", "reference", "limit", "limit-copy", "envreg-sendfile"}

type report struct {
	meta     result
	wrk      map[string][]result // test/conc/server → rounds
	rss      map[string]result
	pulls    map[string][]float64
	firstget []result // one per round
	first    map[string]float64
	warm     map[string]float64
	bg       []result
	rows     []row
	targets  []target
	errors   int
	analysis string // file name
}

// row is one line of the results table: a metric per server.
type row struct {
	name, unit string
	higher     bool // higher is better
	vals       map[string]float64
}

type target struct {
	name, measured string
	pass           bool
	short          string // by how much it is missed
	rounds         string // the same comparison per round
	na             bool
}

func key(test string, conc int, server string) string {
	return fmt.Sprintf("%s/%d/%s", test, conc, server)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func newReport(rs []result) *report {
	rep := &report{wrk: map[string][]result{}, rss: map[string]result{}, pulls: map[string][]float64{}}
	for _, r := range rs {
		switch r.Kind {
		case "meta":
			rep.meta = r
		case "wrk":
			rep.wrk[key(r.Test, r.Conc, r.Server)] = append(rep.wrk[key(r.Test, r.Conc, r.Server)], r)
			rep.errors += r.Errors + r.StatusErrors
		case "rss":
			rep.rss[r.Server] = r
			rep.errors += r.Errors + r.StatusErrors
		case "pull":
			rep.pulls[r.Server] = append(rep.pulls[r.Server], r.Seconds)
		case "background":
			rep.bg = append(rep.bg, r)
		case "firstget":
			rep.firstget = append(rep.firstget, r)
		}
	}
	var first, warm []float64
	for _, r := range rep.firstget {
		first = append(first, r.FirstUS...)
		warm = append(warm, r.WarmUS...)
	}
	rep.first, rep.warm = dist(first), dist(warm)
	rep.buildRows()
	rep.buildTargets()
	return rep
}

// metric is the median over rounds of f for test/conc on every server.
func (rep *report) metric(test string, conc int, f func(result) float64) map[string]float64 {
	m := map[string]float64{}
	for _, s := range servers {
		var xs []float64
		for _, r := range rep.wrk[key(test, conc, s)] {
			xs = append(xs, f(r))
		}
		if len(xs) > 0 {
			m[s] = median(xs)
		}
	}
	return m
}

func (rep *report) add(name, unit string, higher bool, vals map[string]float64) {
	rep.rows = append(rep.rows, row{name: name, unit: unit, higher: higher, vals: vals})
}

func (rep *report) buildRows() {
	reqs := func(r result) float64 { return r.reqPerSec() }
	p50 := func(r result) float64 { return r.P50 / 1000 }
	p99 := func(r result) float64 { return r.P99 / 1000 }
	cpu := func(r result) float64 { return r.cpuPerReqUS() }
	mbs := func(r result) float64 { return r.mbPerSec() }
	for _, m := range []struct{ test, label string }{{"manifest-tag", "manifest GET by tag"}, {"manifest-digest", "manifest GET by digest"}} {
		for _, c := range []int{1, 32} {
			l := fmt.Sprintf("%s, c=%d", m.label, c)
			rep.add(l, "req/s", true, rep.metric(m.test, c, reqs))
			rep.add(l+", p50", "ms", false, rep.metric(m.test, c, p50))
			rep.add(l+", p99", "ms", false, rep.metric(m.test, c, p99))
			rep.add(l+", server CPU per request", "µs", false, rep.metric(m.test, c, cpu))
		}
	}
	for _, c := range []int{1, 8} {
		l := fmt.Sprintf("blob GET (%.0f MB layer), c=%d", float64(rep.meta.BlobBytes)/1e6, c)
		rep.add(l, "MB/s", true, rep.metric("blob", c, mbs))
		rep.add(l+", p50", "ms", false, rep.metric("blob", c, p50))
		rep.add(l+", server CPU per request", "ms", false,
			rep.metric("blob", c, func(r result) float64 { return r.cpuPerReqUS() / 1000 }))
	}
	rep.add("1 MiB range GET, c=8", "req/s", true, rep.metric("range-1MiB", 8, reqs))
	rep.add("1 MiB range GET, c=8, p99", "ms", false, rep.metric("range-1MiB", 8, p99))
	rep.add("1 MiB range GET, c=8, server CPU per request", "µs", false, rep.metric("range-1MiB", 8, cpu))
	rss, tput := map[string]float64{}, map[string]float64{}
	for s, r := range rep.rss {
		rss[s] = r.PeakRSSKB / 1024
		tput[s] = r.mbPerSec()
	}
	rep.add("64 concurrent blob GETs, peak RSS", "MiB", false, rss)
	rep.add("64 concurrent blob GETs", "MB/s", true, tput)
	pull := map[string]float64{}
	for s, xs := range rep.pulls {
		pull[s] = median(xs)
	}
	rep.add("crane pull (linux/amd64), median wall time", "s", false, pull)
}

func (rep *report) find(name string) row {
	for _, r := range rep.rows {
		if r.name == name {
			return r
		}
	}
	return row{vals: map[string]float64{}}
}

// atLeast checks got/base ≥ want and says by how much it is missed.
func atLeast(name string, got, base, want float64, what string) target {
	ratio := got / base
	t := target{name: name, measured: fmt.Sprintf("%.2f× (%s)", ratio, what), pass: ratio >= want}
	if math.IsNaN(ratio) {
		t.na, t.measured = true, "not measured"
	} else if !t.pass {
		t.short = fmt.Sprintf("%.0f%% short of %.2f×", (1-ratio/want)*100, want)
	}
	return t
}

// atMost checks got ≤ limit.
func atMost(name string, got, limit float64, unit, what string) target {
	sep := " "
	if unit == "×" {
		sep = ""
	}
	t := target{name: name, measured: fmt.Sprintf("%.3g%s%s%s", got, sep, unit, what), pass: got <= limit}
	if math.IsNaN(got) {
		t.na, t.measured = true, "not measured"
	} else if !t.pass {
		t.short = fmt.Sprintf("%.2f× the allowed %g%s%s", got/limit, limit, sep, unit)
	}
	return t
}

// perRound lists f(envreg run) / f(other run) per round, or f(envreg run)
// alone when other is "".
func (rep *report) perRound(test string, conc int, other string, f func(result) float64) string {
	var out []string
	for _, e := range rep.wrk[key(test, conc, "envreg")] {
		if other == "" {
			out = append(out, fmtVal(f(e))+mark(e))
			continue
		}
		for _, o := range rep.wrk[key(test, conc, other)] {
			if o.Round == e.Round {
				out = append(out, fmt.Sprintf("%.2f", f(e)/f(o))+mark(e, o))
			}
		}
	}
	return strings.Join(out, ", ")
}

// disturbed is the share of the machine's CPU used by other processes
// above which a run is marked.
const disturbed = 10

// mark flags a comparison in which a run was disturbed by other processes.
func mark(rs ...result) string {
	for _, r := range rs {
		if r.OtherCPUPct > disturbed {
			return "*"
		}
	}
	return ""
}

func (rep *report) buildTargets() {
	tag32 := rep.find("manifest GET by tag, c=32").vals
	f := func(v float64) string { return fmt.Sprintf("%.0f", v) }
	reqs := func(r result) float64 { return r.reqPerSec() }
	mbs := func(r result) float64 { return r.mbPerSec() }
	t := atLeast("manifest GET by tag, warm, c=32: ≥ 3× the reference's req/s", tag32["envreg"], tag32["reference"], 3,
		f(tag32["envreg"])+" vs "+f(tag32["reference"])+" req/s")
	t.rounds = rep.perRound("manifest-tag", 32, "reference", reqs)
	rep.targets = append(rep.targets, t)
	t = atLeast("manifest GET by tag, warm, c=32: ≥ 0.5× the static server's req/s", tag32["envreg"], tag32["limit"], 0.5,
		f(tag32["envreg"])+" vs "+f(tag32["limit"])+" req/s")
	t.rounds = rep.perRound("manifest-tag", 32, "limit", reqs)
	rep.targets = append(rep.targets, t)
	p99 := rep.find("manifest GET by tag, c=32, p99").vals
	t = atMost("manifest GET by tag, warm, c=32: p99 ≤ 5 ms", p99["envreg"], 5, "ms",
		fmt.Sprintf(" (reference %.3g ms, limit %.3g ms)", p99["reference"], p99["limit"]))
	t.rounds = rep.perRound("manifest-tag", 32, "", func(r result) float64 { return r.P99 / 1000 }) + " ms"
	rep.targets = append(rep.targets, t)
	t = atMost("first GET of a new combination (resolve + synthesize + persist): p50 ≤ 5 ms", rep.first["p50_us"]/1000, 5, "ms",
		fmt.Sprintf(" over %d new tags", rep.newTags()))
	var fr []string
	for _, r := range rep.firstget {
		fr = append(fr, fmtVal(dist(r.FirstUS)["p50_us"]/1000)+mark(r))
	}
	t.rounds = strings.Join(fr, ", ") + " ms"
	rep.targets = append(rep.targets, t)
	for _, c := range []int{1, 8} {
		b := rep.find(fmt.Sprintf("blob GET (%.0f MB layer), c=%d", float64(rep.meta.BlobBytes)/1e6, c)).vals
		mb := func(v float64) string { return fmt.Sprintf("%.0f", v) }
		t := atLeast(fmt.Sprintf("blob GET, c=%d: ≥ 1.0× the reference's MB/s", c), b["envreg"], b["reference"], 1,
			mb(b["envreg"])+" vs "+mb(b["reference"])+" MB/s")
		t.rounds = rep.perRound("blob", c, "reference", mbs)
		rep.targets = append(rep.targets, t)
		t = atLeast(fmt.Sprintf("blob GET, c=%d: ≥ 0.95× the ServeContent server's MB/s", c), b["envreg"], b["limit"], 0.95,
			mb(b["envreg"])+" vs "+mb(b["limit"])+" MB/s")
		t.rounds = rep.perRound("blob", c, "limit", mbs)
		rep.targets = append(rep.targets, t)
	}
	rc := rep.find("1 MiB range GET, c=8, server CPU per request").vals
	rt := atMost("1 MiB range GET: server CPU ≤ 0.25× the reference's", rc["envreg"]/rc["reference"], 0.25, "×",
		fmt.Sprintf(" (%.0f vs %.0f µs per request)", rc["envreg"], rc["reference"]))
	rt.rounds = rep.perRound("range-1MiB", 8, "reference", func(r result) float64 { return r.cpuPerReqUS() })
	rep.targets = append(rep.targets, rt)
	p := rep.find("crane pull (linux/amd64), median wall time").vals
	pt := atMost("full crane pull: ≤ 1.0× the reference's time", p["envreg"]/p["reference"], 1, "×",
		fmt.Sprintf(" (%.3f vs %.3f s)", p["envreg"], p["reference"]))
	var pr []string
	for i := range min(len(rep.pulls["envreg"]), len(rep.pulls["reference"])) {
		pr = append(pr, fmt.Sprintf("%.2f", rep.pulls["envreg"][i]/rep.pulls["reference"][i]))
	}
	pt.rounds = strings.Join(pr, ", ")
	rep.targets = append(rep.targets, pt)
	m := rep.find("64 concurrent blob GETs, peak RSS").vals
	rep.targets = append(rep.targets, atMost("resident set ≤ 150 MB while serving 64 concurrent GETs of the 50 MB layer",
		m["envreg"]*1024*1024/1e6, 150, "MB", ""))
	rep.targets = append(rep.targets,
		target{name: "resolution flat in catalog size (100,000 versions ≤ 2× 100)", measured: "not measured here: Go benchmarks in ./resolver", na: true},
		target{name: "no thundering herd: 500 concurrent first GETs resolve once", measured: "not measured here: a Go test", na: true})
}

// newTags is the number of first GETs measured.
func (rep *report) newTags() int {
	n := 0
	for _, r := range rep.firstget {
		n += len(r.FirstUS)
	}
	return n
}

func verdict(t target) string {
	switch {
	case t.na:
		return "n/a"
	case t.pass:
		return "PASS"
	default:
		return "FAIL (" + t.short + ")"
	}
}

func fmtVal(v float64) string {
	switch {
	case math.IsNaN(v):
		return "–"
	case v >= 1000:
		return fmt.Sprintf("%.0f", v)
	case v >= 100:
		return fmt.Sprintf("%.1f", v)
	case v >= 10:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

func ratio(r row, a, b string) string {
	x, okx := r.vals[a]
	y, oky := r.vals[b]
	if !okx || !oky || y == 0 || math.IsNaN(x) || math.IsNaN(y) {
		return "–"
	}
	return fmt.Sprintf("%.2f×", x/y)
}

func val(r row, s string) string {
	v, ok := r.vals[s]
	if !ok {
		return "–"
	}
	return fmtVal(v)
}

func (rep *report) console() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-58s %10s %10s %10s %10s %10s %9s %9s %9s\n", "measurement (medians)", "envreg", "reference", "limit", "lim-copy",
		"env-sendf", "env/ref", "env/lim", "env-sf/lim")
	for _, r := range rep.rows {
		fmt.Fprintf(&b, "%-58s %10s %10s %10s %10s %10s %9s %9s %9s\n", r.name+" ["+r.unit+"]", val(r, "envreg"), val(r, "reference"), val(r, "limit"),
			val(r, "limit-copy"), val(r, "envreg-sendfile"), ratio(r, "envreg", "reference"), ratio(r, "envreg", "limit"),
			ratio(r, "envreg-sendfile", "limit"))
	}
	if n := rep.newTags(); n > 0 {
		fmt.Fprintf(&b, "first GET of a new combination (envreg, %d tags): p50 %.3f ms, p90 %.3f ms, max %.3f ms; same tags warm: p50 %.3f ms\n",
			n, rep.first["p50_us"]/1000, rep.first["p90_us"]/1000, rep.first["max_us"]/1000, rep.warm["p50_us"]/1000)
	}
	fmt.Fprintf(&b, "\ntargets (issue 8):\n")
	for _, t := range rep.targets {
		fmt.Fprintf(&b, "  %-86s %-50s %s\n", t.name, t.measured, verdict(t))
		if t.rounds != "" {
			fmt.Fprintf(&b, "  %-86s per round: %s\n", "", t.rounds)
		}
	}
	if rep.errors > 0 {
		fmt.Fprintf(&b, "WARNING: %d socket or non-2xx errors in the load runs (see the raw runs)\n", rep.errors)
	}
	return b.String()
}

func (rep *report) markdown() string {
	var b strings.Builder
	m := rep.meta
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("# Benchmarks\n\n")
	date := m.Date
	if date == "" {
		date = time.Now().UTC().Format("2006-01-02 15:04 MST")
	}
	p("Written by [`bench/run.sh`](../bench/run.sh) from a run started %s; rerun it rather than editing this file.\n", date)
	p("One run, on loopback: envreg, the reference registry (CNCF Distribution %s) and the physical limit\n", m.Tools["registry"])
	p("(a bare Go server answering the same files with `http.ServeContent`) measured interleaved, test after test,\n")
	p("%d rounds of `wrk -t%d -d%s` per test and server; the tables show the medians over the rounds.\n", m.Rounds, m.WrkThreads, m.Duration)
	p("The load tool and the servers share the machine's cores: the ratios are what this page is for,\n")
	p("not the absolute numbers.\n\n")

	p("## Machine\n\n")
	for _, kv := range machine() {
		p("* %s: %s\n", kv[0], kv[1])
	}
	p("* data directories on: %s\n", orDash(m.DataFS))
	if len(rep.bg) > 0 {
		var xs []string
		for _, r := range rep.bg {
			xs = append(xs, fmt.Sprintf("%s %d%% (load average %s)", r.When, r.BusyPct, r.LoadAvg))
		}
		p("* CPU used by other processes while the benchmarked servers were idle (1 s samples): %s\n", strings.Join(xs, "; "))
	}
	p("* tools: wrk %s (`wrk -t%d`, 30 s timeout), crane %s, registry %s, envreg at %s\n\n",
		strings.TrimPrefix(m.Tools["wrk"], "wrk "), m.WrkThreads, m.Tools["crane"], m.Tools["registry"], m.Tools["envreg"])

	p("## What is measured\n\n")
	p("* The image: `env:%s`, composed by envreg from the test fixtures (base, php 8.2, nodejs 20,\n", m.Tag)
	p("  graphicsmagick) and a `bulk` package holding one incompressible %.0f MB file; a 2-platform OCI index\n", float64(m.BlobBytes)/1e6)
	p("  of %d bytes, `%s`. `crane copy` pushed it into the reference as a plain image under the same name\n", m.ManifestBytes, m.Digest)
	p("  and tag; all servers answer the same bytes for every URL below (checked before measuring).\n")
	p("* Manifest GETs send `Accept: application/vnd.oci.image.index.v1+json`, so every server returns that index.\n")
	p("  envreg's GET by tag is warm: the tag was composed before the runs (by `crane copy`), so it parses the tag,\n")
	p("  looks up the composition cached for the catalog generation and writes the bytes.\n")
	p("* The limit opens, stats and `http.ServeContent`s the file on every request (headers, then sendfile). For a\n")
	p("  document this small that is not a floor: envreg answers a tag from memory, so envreg / limit can exceed 1.\n")
	p("* Blob GETs fetch the %.0f MB layer `%s` (MB = 10⁶ bytes); the range GET asks\n", float64(m.BlobBytes)/1e6, shortDigest(m.Layer))
	p("  for its first MiB (`Range: bytes=0-1048575`).\n")
	p("* Server CPU per request: user + system time of the server process (from `/proc/PID/stat`) over the run,\n")
	p("  divided by the requests completed (interrupt time, where the kernel accounts loopback softirq work, is in\n")
	p("  no process's time and so in nobody's figure).\n")
	p("* Peak RSS: the largest `VmRSS` sampled every 200 ms during a %s run of 64 concurrent GETs of the layer.\n", m.Duration)
	p("* crane pull: `crane pull --platform linux/amd64` as a tarball to /dev/null, %d times per registry, alternating;\n", m.Pulls)
	p("  median wall time, crane's start-up included.\n")
	p("* First GET of a new combination: after publishing `p0` … `p%d` (generic packages, both platforms) ahead of time,\n", max(rep.newTags()-1, 0))
	p("  `GET /v2/env/manifests/php-8.2_pN` for each N, one at a time on one keep-alive connection, a share of the tags at\n")
	p("  the start of each round: each is a combination envreg has never composed (resolve, synthesize, store the 2\n")
	p("  configs, 2 manifests and the index durably, answer). Then the same tags again, warm.\n\n")

	p("## Results\n\n")
	p("envreg runs with its default `--sendfile auto`: blob bodies go to remote clients with sendfile(2) and are copied\n")
	p("to loopback clients, which wrk and crane are here. \"envreg, sendfile\" is a second envreg process on the same\n")
	p("data with `--sendfile always`, the path remote clients get; \"limit, no sendfile\" is the limit with the file\n")
	p("hidden behind a plain `io.ReadSeeker`, so that net/http copies it through a 32 KiB buffer. Both run the blob tests\n")
	p("and (envreg, sendfile) the pulls only, to separate what sendfile itself does on loopback.\n\n")
	p("| measurement | unit | envreg | reference | limit | limit, no sendfile | envreg, sendfile | envreg / reference | envreg / limit | envreg, sendfile / limit |\n")
	p("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range rep.rows {
		dir := "lower is better"
		if r.higher {
			dir = "higher is better"
		}
		p("| %s | %s (%s) | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.name, r.unit, dir, val(r, "envreg"), val(r, "reference"), val(r, "limit"),
			val(r, "limit-copy"), val(r, "envreg-sendfile"), ratio(r, "envreg", "reference"), ratio(r, "envreg", "limit"),
			ratio(r, "envreg-sendfile", "limit"))
	}
	if n := rep.newTags(); n > 0 {
		p("\nFirst GET of a new combination (envreg only; %d tags, measured in %d rounds): p50 %.3f ms, p90 %.3f ms, min %.3f ms,\n",
			n, len(rep.firstget), rep.first["p50_us"]/1000, rep.first["p90_us"]/1000, rep.first["min_us"]/1000)
		p("max %.3f ms. The same tags again (warm): p50 %.3f ms, p90 %.3f ms.\n", rep.first["max_us"]/1000, rep.warm["p50_us"]/1000, rep.warm["p90_us"]/1000)
	}
	var runs, dist int
	for _, rs := range rep.wrk {
		for _, r := range rs {
			runs++
			if r.OtherCPUPct > disturbed {
				dist++
			}
		}
	}
	p("\nIn %d of the %d load runs other processes used more than %d%% of the machine's CPU (see the raw runs).\n", dist, runs, disturbed)
	if rep.errors > 0 {
		p("\n**%d socket or non-2xx errors occurred in the load runs** (see the raw runs below).\n", rep.errors)
	}

	p("\n## Targets (issue 8)\n\n")
	p("The verdicts compare the medians; the per-round column repeats the comparison for each round's adjacent runs,\n")
	p("to show whether a verdict is outside the run-to-run noise (* = a run in which other processes used more than\n")
	p("%d%% of the machine's CPU).\n\n", disturbed)
	p("| target | measured (envreg) | per round | result |\n|---|---|---|---|\n")
	for _, t := range rep.targets {
		p("| %s | %s | %s | %s |\n", t.name, t.measured, orDash(t.rounds), verdict(t))
	}

	p("\n## Raw runs\n\n")
	p("\"other CPU\" is the share of the machine's CPU that processes other than the server and wrk used during the run\n")
	p("(task time from `/proc/stat` minus theirs): other tenants of the machine. Runs where it is high measured the\n")
	p("neighbours as much as the server.\n\n")
	p("| test | c | server | round | req/s | MB/s | p50 ms | p99 ms | server CPU s | other CPU | errors |\n")
	p("|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	var keys []string
	for k := range rep.wrk {
		keys = append(keys, k)
	}
	order := map[string]int{"envreg": 0, "reference": 1, "limit": 2, "limit-copy": 3, "envreg-sendfile": 4}
	slices.SortFunc(keys, func(a, b string) int {
		ra, rb := rep.wrk[a][0], rep.wrk[b][0]
		if c := strings.Compare(ra.Test, rb.Test); c != 0 {
			return c
		}
		if ra.Conc != rb.Conc {
			return ra.Conc - rb.Conc
		}
		return order[ra.Server] - order[rb.Server]
	})
	for _, k := range keys {
		for _, r := range rep.wrk[k] {
			p("| %s | %d | %s | %d | %.0f | %.1f | %.3f | %.3f | %.2f | %d%% | %d |\n", r.Test, r.Conc, r.Server, r.Round,
				r.reqPerSec(), r.mbPerSec(), r.P50/1000, r.P99/1000, r.CPUSeconds, r.OtherCPUPct, r.Errors+r.StatusErrors)
		}
	}
	p("\ncrane pull wall times (s):")
	for _, s := range []string{"envreg", "reference", "envreg-sendfile"} {
		var xs []string
		for _, x := range rep.pulls[s] {
			xs = append(xs, fmt.Sprintf("%.3f", x))
		}
		p(" %s %s;", s, strings.Join(xs, ", "))
	}
	p("\n")
	if a, err := os.ReadFile(rep.analysis); rep.analysis != "" && err == nil {
		p("\n## Analysis\n\n")
		p("Hand-written in `bench/analysis.md` (read it against the date it names, not this run's).\n\n")
		b.Write(a)
	}
	return b.String()
}

func shortDigest(d string) string {
	if len(d) > 19 {
		return d[:19] + "…"
	}
	return d
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

// machine describes the host from /proc and uname.
func machine() [][2]string {
	var out [][2]string
	cpu, mem := "", ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
				var kb float64
				fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
				mem = fmt.Sprintf("%.1f GiB", kb/1024/1024)
			}
		}
	}
	kernel, _ := exec.Command("uname", "-srm").Output()
	nproc, _ := exec.Command("nproc").Output()
	goVersion, _ := exec.Command("go", "version").Output()
	out = append(out,
		[2]string{"CPU", fmt.Sprintf("%s, %s cores (nproc)", orDash(cpu), strings.TrimSpace(string(nproc)))},
		[2]string{"memory", orDash(mem)},
		[2]string{"kernel", strings.TrimSpace(string(kernel))},
		[2]string{"Go", strings.TrimSpace(strings.TrimPrefix(string(goVersion), "go version ")) + " (benchtool built with " + runtime.Version() + ")"},
	)
	return out
}
