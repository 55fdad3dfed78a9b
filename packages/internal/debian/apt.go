package debian

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultKeyring verifies generated sources that do not name a keyring.
const DefaultKeyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

// Config configures an Apt: one architecture and one set of sources.
type Config struct {
	// CacheDir keeps package lists and .deb files between runs. Several Apts
	// (architectures, sources) share it; see the package documentation.
	CacheDir string
	// Arch is the Debian architecture, e.g. amd64 or arm64.
	Arch string
	// Sources are one-line apt sources ("deb URI SUITE COMPONENT...", see
	// sources.list(5)). nil means the machine's /etc/apt/sources.list and
	// /etc/apt/sources.list.d. Options that skip signature verification
	// (trusted=yes, allow-insecure, ...) are refused; check-valid-until=no
	// (for a mirror whose Release files have expired) is accepted, the
	// signatures are still checked, and the update's log line says so.
	Sources []string
	// Keyring is the Signed-By keyring of Sources entries that name none
	// ("": DefaultKeyring).
	Keyring string
	// TempDir holds the per-call status and preferences files ("":
	// os.TempDir).
	TempDir string
	// Progress receives apt's download progress (nil: apt runs quietly).
	Progress io.Writer
	// Log receives what apt did (nil: discard).
	Log *slog.Logger
}

// Apt runs apt-get and apt-cache with a private configuration for one
// architecture: its own package lists, an archive cache, a status file that
// lists only what the caller says is installed, and no file of the
// machine's /etc/apt/apt.conf.d, preferences or dpkg database.
type Apt struct {
	cfg      Config
	key      string // directory of this configuration under CacheDir
	state    string // Dir::State
	conf     string // APT_CONFIG
	archives string // Dir::Cache::archives, shared
	lockFile string

	mu      sync.Mutex
	updated bool
}

// Request names a package and optionally a version ("" = the candidate,
// i.e. the newest version the sources offer).
type Request struct {
	Name, Version string
}

var packageName = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)

// ParseRequest parses "name" or "name=version".
func ParseRequest(s string) (Request, error) {
	name, ver, pinned := strings.Cut(strings.TrimSpace(s), "=")
	if !packageName.MatchString(name) {
		return Request{}, fmt.Errorf("invalid Debian package %q: want name or name=version, name in [a-z0-9+.-]", s)
	}
	if pinned {
		if _, err := ParseVersion(ver); err != nil {
			return Request{}, fmt.Errorf("package %s: %w", name, err)
		}
	}
	return Request{Name: name, Version: ver}, nil
}

// String returns "name" or "name=version", as apt-get takes it.
func (r Request) String() string {
	if r.Version == "" {
		return r.Name
	}
	return r.Name + "=" + r.Version
}

// Package is one binary package of a resolved closure, as the signed
// archive index describes it.
type Package struct {
	Name, Version, Architecture string
	Source                      string // source package name
	SHA256                      string // hex, from the index
	Size                        int64
	File                        string    // the .deb in the cache (present after Fetch)
	Record                      Paragraph // the index entry
}

// String returns "name=version".
func (p Package) String() string { return p.Name + "=" + p.Version }

// Installed returns p's index entry as a dpkg status record, for the
// installed list of a later Resolve (see StatusRecord).
func (p Package) Installed() Paragraph {
	var out Paragraph
	for _, f := range StatusRecord(p.Record) {
		switch strings.ToLower(f.Name) {
		case "filename", "size", "md5sum", "sha1", "sha256", "sha512", "description-md5":
			continue
		}
		out = append(out, f)
	}
	return out
}

// NotFoundError reports a package, or a version of it, that the sources do
// not have.
type NotFoundError struct {
	Package, Version, Arch string
	Available              []string // versions the sources have, newest first
}

func (e *NotFoundError) Error() string {
	if e.Version == "" {
		return fmt.Sprintf("debian package %s not found for %s", e.Package, e.Arch)
	}
	s := fmt.Sprintf("debian package %s version %s not found for %s", e.Package, e.Version, e.Arch)
	if len(e.Available) > 0 {
		s += " (available: " + strings.Join(e.Available, ", ") + ")"
	}
	return s
}

// UnsatisfiableError reports requests whose dependencies apt cannot
// satisfy, with apt's explanation.
type UnsatisfiableError struct {
	Arch     string
	Requests []string
	Problems []string // apt's lines, e.g. "php8.2-cli : Depends: php8.2-common (= 8.2.32-1~deb12u1) but 8.2.36-1~deb12u1 is to be installed"
}

func (e *UnsatisfiableError) Error() string {
	return fmt.Sprintf("unsatisfiable Debian dependencies of %s for %s: %s",
		strings.Join(e.Requests, ", "), e.Arch, strings.Join(e.Problems, "; "))
}

// InstalledConflictError reports a closure that would change a package the
// caller said is installed (the base layer's): a newer version is needed,
// or it would be removed.
type InstalledConflictError struct {
	Arch, Package, Installed string
	Wanted                   string // "" when apt would remove it
}

func (e *InstalledConflictError) Error() string {
	if e.Wanted == "" {
		return fmt.Sprintf("installing would remove %s %s (%s), which the base provides", e.Package, e.Installed, e.Arch)
	}
	return fmt.Sprintf("installing needs %s %s (%s), but the base provides %s; publish a base with it first, or let the layer carry it in its prefix (source.debian.carryNewer)",
		e.Package, e.Wanted, e.Arch, e.Installed)
}

// New prepares the private configuration under cfg.CacheDir. It does not
// touch the network.
func New(cfg Config) (*Apt, error) {
	if cfg.CacheDir == "" || cfg.Arch == "" {
		return nil, errors.New("apt: cache directory and architecture are required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Keyring == "" {
		cfg.Keyring = DefaultKeyring
	}
	if cfg.TempDir != "" {
		// apt reads a relative Dir::State::status relative to Dir::State,
		// not to the working directory: a relative TempDir ("--data ./data")
		// made it miss the installed list, and every package the base
		// provides looked new.
		abs, err := filepath.Abs(cfg.TempDir)
		if err != nil {
			return nil, err
		}
		cfg.TempDir = abs
	}
	sources, err := sourcesList(cfg.Sources, cfg.Keyring)
	if err != nil {
		return nil, err
	}
	key := cfg.Arch + "-machine"
	if cfg.Sources != nil {
		h := sha256.Sum256([]byte(sources))
		key = cfg.Arch + "-" + hex.EncodeToString(h[:6])
	}
	abs, err := filepath.Abs(cfg.CacheDir)
	if err != nil {
		return nil, err
	}
	a := &Apt{
		cfg:      cfg,
		key:      key,
		state:    filepath.Join(abs, key),
		archives: filepath.Join(abs, "archives"),
		lockFile: filepath.Join(abs, "lock"),
	}
	a.conf = filepath.Join(a.state, "apt.conf")
	for _, d := range []string{
		filepath.Join(a.state, "lists", "partial"), filepath.Join(a.state, "empty.d"),
		filepath.Join(a.archives, "partial"),
	} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("apt: %w", err)
		}
	}
	for name, data := range map[string]string{"status": "", "preferences": ""} {
		if err := writeFile(filepath.Join(a.state, name), []byte(data)); err != nil {
			return nil, fmt.Errorf("apt: %w", err)
		}
	}
	if err := a.writeConf(sources, abs); err != nil {
		return nil, fmt.Errorf("apt: %w", err)
	}
	return a, nil
}

// writeConf writes the APT_CONFIG file (and the generated sources.list)
// of a private configuration; abs is the absolute CacheDir.
func (a *Apt) writeConf(sources, abs string) error {
	cfg := a.cfg
	srcList, srcParts := "/etc/apt/sources.list", "/etc/apt/sources.list.d"
	if cfg.Sources != nil {
		srcList, srcParts = filepath.Join(a.state, "sources.list"), filepath.Join(a.state, "empty.d")
		if err := writeFile(srcList, []byte(sources)); err != nil {
			return err
		}
	}
	conf := []struct{ k, v string }{
		// Read no configuration of the machine: APT_CONFIG is read first,
		// so these keep apt.conf and apt.conf.d (hooks, proxies, pins,
		// "Check-Valid-Until false") out.
		{"Dir::Etc::Main", filepath.Join(a.state, "empty.d", "apt.conf")},
		{"Dir::Etc::Parts", filepath.Join(a.state, "empty.d")},
		{"Dir::Etc::Preferences", filepath.Join(a.state, "preferences")},
		{"Dir::Etc::PreferencesParts", filepath.Join(a.state, "empty.d")},
		{"Dir::Etc::SourceList", srcList},
		{"Dir::Etc::SourceParts", srcParts},
		{"Dir::State", a.state},
		{"Dir::State::status", filepath.Join(a.state, "status")},
		{"Dir::Cache", abs},
		{"Dir::Cache::archives", a.archives},
		// apt's binary caches of the lists, per architecture and sources:
		// they make apt-cache show ~50 times faster. Resolve builds the
		// cache for its own status file in memory (pkgcache "").
		{"Dir::Cache::pkgcache", filepath.Join(a.state, "pkgcache.bin")},
		{"Dir::Cache::srcpkgcache", filepath.Join(a.state, "srcpkgcache.bin")},
		{"Dir::Log", filepath.Join(a.state, "log")},
		{"APT::Architecture", cfg.Arch},
		{"APT::Install-Recommends", "false"},
		{"APT::Install-Suggests", "false"},
		{"Acquire::Languages", "none"},
		{"Debug::NoLocking", "true"}, // we lock CacheDir/lock ourselves
	}
	var b strings.Builder
	for _, kv := range conf {
		if strings.ContainsAny(kv.v, "\"\n") {
			return fmt.Errorf("%s %q: quotes and newlines are not supported", kv.k, kv.v)
		}
		fmt.Fprintf(&b, "%s \"%s\";\n", kv.k, kv.v)
	}
	fmt.Fprintf(&b, "APT::Architectures { \"%s\"; };\n", cfg.Arch)
	return writeFile(a.conf, []byte(b.String()))
}

// Arch returns the Debian architecture.
func (a *Apt) Arch() string { return a.cfg.Arch }

// CheckSources reports what is wrong with one-line sources (see
// Config.Sources).
func CheckSources(lines []string) error {
	_, err := sourcesList(lines, DefaultKeyring)
	return err
}

// sourcesList formats one-line sources, adding signed-by where an entry has
// no options, and refuses options that weaken verification.
func sourcesList(lines []string, keyring string) (string, error) {
	if lines != nil && len(lines) == 0 {
		return "", errors.New("apt: sources is empty")
	}
	var b strings.Builder
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) < 3 || f[0] != "deb" {
			return "", fmt.Errorf("apt: source %q: want \"deb [options] URI SUITE [COMPONENT...]\"", l)
		}
		rest := f[1:]
		if strings.HasPrefix(rest[0], "[") {
			opts := strings.Join(rest, " ")
			end := strings.IndexByte(opts, ']')
			if end < 0 {
				return "", fmt.Errorf("apt: source %q: unclosed '['", l)
			}
			lower := strings.ToLower(opts[:end])
			for _, bad := range []string{"trusted=", "allow-insecure", "allow-weak", "allow-downgrade-to-insecure"} {
				if strings.Contains(lower, bad) {
					return "", fmt.Errorf("apt: source %q: option %s would skip signature verification", l, strings.TrimSuffix(bad, "="))
				}
			}
			b.WriteString("deb " + opts + "\n")
			continue
		}
		b.WriteString("deb [signed-by=" + keyring + "] " + strings.Join(rest, " ") + "\n")
	}
	return b.String(), nil
}

// Update refreshes the package lists, once per Apt: later calls do
// nothing. apt verifies the InRelease signatures and index hashes. If the
// archive is unreachable but earlier lists exist, they are used with a
// warning in the log.
func (a *Apt) Update(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.updated {
		return nil
	}
	unlock, err := lockFile(a.lockFile)
	if err != nil {
		return err
	}
	defer unlock()
	start := time.Now()
	_, err = a.run(ctx, "", true, "apt-get", "update", "-o", "APT::Update::Error-Mode=any")
	if err != nil {
		lists, _ := filepath.Glob(filepath.Join(a.state, "lists", "*_Packages*"))
		if len(lists) == 0 || ctx.Err() != nil {
			return fmt.Errorf("updating Debian package lists for %s: %w", a.cfg.Arch, err)
		}
		a.cfg.Log.WarnContext(ctx, "updating Debian package lists failed; using the cached lists", "arch", a.cfg.Arch, "error", err)
	} else {
		attrs := []any{"arch", a.cfg.Arch, "sources", a.key, "duration", time.Since(start).Round(time.Millisecond)}
		if slices.ContainsFunc(a.cfg.Sources, func(l string) bool { return strings.Contains(strings.ToLower(l), "check-valid-until=no") }) {
			// The recipe said so (a frozen mirror or testing suite);
			// signatures are still checked.
			attrs = append(attrs, "validUntil", "not checked")
		}
		a.cfg.Log.InfoContext(ctx, "updated Debian package lists", attrs...)
	}
	a.updated = true
	return nil
}

// Distro names the Debian release the sources belong to, "debian-12",
// from the Version field of their signed Release files (bookworm's says
// 12.12, bookworm-security's 12), or, for a suite that has no version yet
// (testing, unstable), from its Codename: "debian-forky". Once the lists
// are updated; "" when they do not say, or disagree.
func (a *Apt) Distro() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	files, _ := filepath.Glob(filepath.Join(a.state, "lists", "*InRelease"))
	release := ""
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return ""
		}
		r := releaseOf(data)
		if r == "" || (release != "" && r != release) {
			return ""
		}
		release = r
	}
	if release == "" {
		return ""
	}
	return "debian-" + release
}

// releaseOf is the release a Debian Release file names: the major of its
// Version ("12" for 12.12), or its Codename without a suffix ("forky" for
// forky, "bookworm" for bookworm-security) when it has no Version; "" for
// another origin.
func releaseOf(data []byte) string {
	origin, version, codename := releaseFields(data)
	if origin != "Debian" {
		return ""
	}
	if version == "" {
		codename, _, _ = strings.Cut(codename, "-")
		if codename == "" || strings.Trim(codename, "abcdefghijklmnopqrstuvwxyz") != "" {
			return ""
		}
		return codename
	}
	m, _, _ := strings.Cut(version, ".")
	if m == "" || strings.Trim(m, "0123456789") != "" {
		return ""
	}
	return m
}

func releaseFields(data []byte) (origin, version, codename string) {
	for line := range strings.Lines(string(data)) {
		line = strings.TrimRight(line, "\n")
		if v, ok := strings.CutPrefix(line, "Origin: "); ok {
			origin = v
		} else if v, ok := strings.CutPrefix(line, "Version: "); ok {
			version = v
		} else if v, ok := strings.CutPrefix(line, "Codename: "); ok {
			codename = v
		} else if strings.HasPrefix(line, "SHA256:") || strings.HasPrefix(line, "MD5Sum:") {
			break
		}
	}
	return origin, version, codename
}

// ListsFingerprint identifies the package lists as they are now (names,
// sizes and modification times of the files apt keeps): equal
// fingerprints before and after an Update mean that the archive's indexes
// did not change, since apt leaves a list it did not download again
// untouched.
func (a *Apt) ListsFingerprint() (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	entries, err := os.ReadDir(filepath.Join(a.state, "lists"))
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() || e.Name() == "lock" {
			continue
		}
		fmt.Fprintf(h, "%s %d %d\n", e.Name(), fi.Size(), fi.ModTime().UnixNano())
	}
	return fmt.Sprintf("%x", h.Sum(nil)), nil
}

// Resolve computes the closure of reqs that apt would download to install
// them on a system where exactly installed (dpkg status records, e.g. from
// Package.Installed) is installed, without recommends. The result is
// sorted by name. A pinned request also pins the other binary packages of
// its source package to the same version (apt preferences "src:"), so that
// php8.2-cli=8.2.32-1~deb12u1 brings php8.2-common of the same version
// rather than the newest one.
//
// It fails with a *NotFoundError, *UnsatisfiableError or
// *InstalledConflictError naming the package.
func (a *Apt) Resolve(ctx context.Context, reqs []Request, installed []Paragraph) ([]Package, error) {
	return a.resolve(ctx, reqs, installed, false)
}

// ResolveUpgrading is Resolve for a closure that may hold newer versions
// of installed packages than those installed: where the requests need a
// newer libc6 or libstdc++6 than the base has, the newer one is part of
// the closure instead of an *InstalledConflictError. A closure that would remove
// an installed package still fails.
func (a *Apt) ResolveUpgrading(ctx context.Context, reqs []Request, installed []Paragraph) ([]Package, error) {
	return a.resolve(ctx, reqs, installed, true)
}

func (a *Apt) resolve(ctx context.Context, reqs []Request, installed []Paragraph, upgrade bool) ([]Package, error) {
	if len(reqs) == 0 {
		return nil, errors.New("no packages requested")
	}
	unlock, err := a.updatedAndLocked(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()

	// Check the requests against the index first, for precise errors.
	prefs, err := a.pins(ctx, reqs)
	if err != nil {
		return nil, err
	}
	closure, err := a.simulate(ctx, reqs, installed, prefs, upgrade)
	if err != nil {
		return nil, err
	}
	return a.packages(ctx, closure)
}

// updatedAndLocked refreshes the lists (once per Apt), then holds the Apt
// and its state directory's file lock until unlock is called.
func (a *Apt) updatedAndLocked(ctx context.Context) (unlock func(), err error) {
	if err := a.Update(ctx); err != nil {
		return nil, err
	}
	a.mu.Lock()
	unlockFile, err := lockFile(a.lockFile)
	if err != nil {
		a.mu.Unlock()
		return nil, err
	}
	return func() {
		unlockFile()
		a.mu.Unlock()
	}, nil
}

// Versions lists the versions of package name that the sources offer,
// newest first (Compare), after refreshing the lists once (Update). A
// package the sources lack is a *NotFoundError.
func (a *Apt) Versions(ctx context.Context, name string) ([]string, error) {
	unlock, err := a.updatedAndLocked(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	records, err := a.show(ctx, []string{name})
	if err != nil {
		return nil, err
	}
	var versions []Version
	for _, p := range records {
		if p.Get("Package") != name {
			continue
		}
		v, err := ParseVersion(p.Get("Version"))
		if err != nil {
			return nil, fmt.Errorf("index entry of %s: %w", name, err)
		}
		versions = append(versions, v)
	}
	if len(versions) == 0 {
		return nil, &NotFoundError{Package: name, Arch: a.cfg.Arch}
	}
	slices.SortFunc(versions, func(x, y Version) int { return Compare(y, x) })
	out := make([]string, 0, len(versions))
	for _, v := range versions {
		if s := v.String(); len(out) == 0 || out[len(out)-1] != s {
			out = append(out, s)
		}
	}
	return out, nil
}

// pins checks that every request is in the index and returns the apt
// preferences that pin the source packages of the pinned ones.
func (a *Apt) pins(ctx context.Context, reqs []Request) (string, error) {
	var names []string
	for _, r := range reqs {
		names = append(names, r.Name)
	}
	records, err := a.show(ctx, names)
	if err != nil {
		return "", err
	}
	var prefs strings.Builder
	for _, r := range reqs {
		var versions []string
		var match Paragraph
		for _, p := range records {
			if p.Get("Package") != r.Name {
				continue
			}
			versions = append(versions, p.Get("Version"))
			if p.Get("Version") == r.Version {
				match = p
			}
		}
		if len(versions) == 0 {
			return "", &NotFoundError{Package: r.Name, Arch: a.cfg.Arch}
		}
		if r.Version == "" {
			continue
		}
		if match == nil {
			return "", &NotFoundError{Package: r.Name, Version: r.Version, Arch: a.cfg.Arch, Available: slices.Compact(versions)}
		}
		fmt.Fprintf(&prefs, "Package: src:%s\nPin: version %s\nPin-Priority: 990\n\n", sourceName(match), r.Version)
	}
	return prefs.String(), nil
}

// simulate runs `apt-get install --simulate` with installed as the status
// file and prefs as the preferences, and returns the closure as sorted
// name=version strings.
func (a *Apt) simulate(ctx context.Context, reqs []Request, installed []Paragraph, prefs string, upgrade bool) ([]string, error) {
	tmp, err := os.MkdirTemp(a.cfg.TempDir, "envreg-apt-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	var status bytes.Buffer
	installedVersion := map[string]string{}
	for _, p := range installed {
		status.Write(p.Bytes())
		status.WriteByte('\n')
		installedVersion[p.Get("Package")] = p.Get("Version")
	}
	statusFile, prefFile := filepath.Join(tmp, "status"), filepath.Join(tmp, "preferences")
	if err := writeFile(statusFile, status.Bytes()); err != nil {
		return nil, err
	}
	if err := writeFile(prefFile, []byte(prefs)); err != nil {
		return nil, err
	}
	args := []string{"install", "--simulate", "--no-install-recommends", "-y",
		"-o", "Dir::State::status=" + statusFile, "-o", "Dir::Etc::Preferences=" + prefFile,
		"-o", "Dir::Cache::pkgcache=", "--"}
	var reqStrs []string
	for _, r := range reqs {
		reqStrs = append(reqStrs, r.String())
	}
	out, err := a.run(ctx, "", false, "apt-get", append(args, reqStrs...)...)
	if err != nil {
		return nil, a.explain(err, out, reqStrs)
	}
	closure, err := a.installs(out, installedVersion, upgrade)
	if err != nil {
		return nil, err
	}
	if len(closure) == 0 {
		return nil, fmt.Errorf("resolving %s for %s: everything is already installed (provided by the base)", strings.Join(reqStrs, ", "), a.cfg.Arch)
	}
	a.cfg.Log.DebugContext(ctx, "resolved Debian packages", "arch", a.cfg.Arch, "requests", reqStrs, "closure", closure)
	return closure, nil
}

// installs reads the Inst and Remv lines of a simulated install. A
// package apt would "reinstall" at the version that is installed (its
// installed record differs from the index's, as a record of another
// release's base with its Conflicts removed does) is provided, not part of
// the closure. A newer version of an installed package is part of the
// closure with upgrade, an *InstalledConflictError without.
func (a *Apt) installs(out []byte, installedVersion map[string]string, upgrade bool) ([]string, error) {
	var closure []string
	for line := range strings.Lines(string(out)) {
		if m := remvLine.FindStringSubmatch(line); m != nil {
			return nil, &InstalledConflictError{Arch: a.cfg.Arch, Package: m[1], Installed: installedVersion[m[1]]}
		}
		m := instLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		name, old, ver := m[1], m[2], m[3]
		switch {
		case old != "" && old == ver && installedVersion[name] == ver:
			continue
		case upgrade && old != "" && old == installedVersion[name] && newer(ver, old):
		case old != "" || installedVersion[name] != "":
			return nil, &InstalledConflictError{Arch: a.cfg.Arch, Package: name, Installed: installedVersion[name], Wanted: ver}
		}
		closure = append(closure, name+"="+ver)
	}
	slices.Sort(closure)
	return closure, nil
}

// newer reports whether Debian version a is newer than b (false if either
// does not parse).
func newer(a, b string) bool {
	va, err := ParseVersion(a)
	if err != nil {
		return false
	}
	vb, err := ParseVersion(b)
	return err == nil && Compare(va, vb) > 0
}

// packages returns the index entries of a closure of name=version strings.
func (a *Apt) packages(ctx context.Context, closure []string) ([]Package, error) {
	records, err := a.show(ctx, closure)
	if err != nil {
		return nil, err
	}
	pkgs := make([]Package, 0, len(closure))
	for _, nv := range closure {
		name, ver, _ := strings.Cut(nv, "=")
		i := slices.IndexFunc(records, func(p Paragraph) bool { return p.Get("Package") == name && p.Get("Version") == ver })
		if i < 0 {
			return nil, fmt.Errorf("resolving for %s: apt-cache show gave no index entry for %s", a.cfg.Arch, nv)
		}
		p, err := a.newPackage(records[i])
		if err != nil {
			return nil, err
		}
		pkgs = append(pkgs, p)
	}
	return pkgs, nil
}

var (
	// Inst php8.2-cli (8.2.36-1~deb12u1 Debian-Security:12/oldstable-security [amd64])
	// Inst libc6 [2.36-9+deb12u7] (2.36-9+deb12u14 Debian:12.15/oldstable [amd64])
	instLine = regexp.MustCompile(`^Inst (\S+) (?:\[([^\]]*)\] )?\((\S+)`)
	remvLine = regexp.MustCompile(`^Remv (\S+)`)

	errLocate  = regexp.MustCompile(`E: Unable to locate package (\S+)`)
	errVersion = regexp.MustCompile(`E: Version '([^']+)' for '([^']+)' was not found`)
	errNoCand  = regexp.MustCompile(`E: Package '([^']+)' has no installation candidate`)
)

// explain turns a failed apt-get install into a typed error.
func (a *Apt) explain(err error, out []byte, reqs []string) error {
	text := string(out)
	if m := errVersion.FindStringSubmatch(text); m != nil {
		return &NotFoundError{Package: m[2], Version: m[1], Arch: a.cfg.Arch}
	}
	if m := errLocate.FindStringSubmatch(text); m != nil {
		return &NotFoundError{Package: m[1], Arch: a.cfg.Arch}
	}
	if m := errNoCand.FindStringSubmatch(text); m != nil {
		return &NotFoundError{Package: m[1], Arch: a.cfg.Arch}
	}
	if i := strings.Index(text, "unmet dependencies:"); i >= 0 {
		var problems []string
		for line := range strings.Lines(text[i+len("unmet dependencies:"):]) {
			line = strings.TrimSpace(line)
			if strings.HasPrefix(line, "E:") {
				break
			}
			if line != "" {
				problems = append(problems, strings.Join(strings.Fields(line), " "))
			}
		}
		return &UnsatisfiableError{Arch: a.cfg.Arch, Requests: reqs, Problems: problems}
	}
	return fmt.Errorf("resolving %s for %s: %w", strings.Join(reqs, ", "), a.cfg.Arch, err)
}

// show returns the index entries `apt-cache show` prints for args (names
// or name=version).
func (a *Apt) show(ctx context.Context, args []string) ([]Paragraph, error) {
	out, err := a.run(ctx, "", false, "apt-cache", append([]string{"show", "--"}, args...)...)
	if err != nil && !bytes.Contains(out, []byte("No packages found")) {
		return nil, err
	}
	ps, perr := ParseParagraphs(out)
	if perr != nil {
		return nil, fmt.Errorf("parsing apt-cache show output: %w", perr)
	}
	return ps, nil
}

func sourceName(p Paragraph) string {
	src, _, _ := strings.Cut(p.Get("Source"), " ")
	if src == "" {
		return p.Get("Package")
	}
	return src
}

func (a *Apt) newPackage(rec Paragraph) (Package, error) {
	p := Package{
		Name: rec.Get("Package"), Version: rec.Get("Version"), Architecture: rec.Get("Architecture"),
		Source: sourceName(rec), SHA256: strings.ToLower(rec.Get("SHA256")), Record: rec,
	}
	size, err := strconv.ParseInt(rec.Get("Size"), 10, 64)
	if err != nil || len(p.SHA256) != 64 || rec.Get("Filename") == "" {
		return Package{}, fmt.Errorf("index entry of %s lacks Filename, Size or SHA256", p)
	}
	if p.Architecture != a.cfg.Arch && p.Architecture != "all" {
		return Package{}, fmt.Errorf("index entry of %s is for architecture %s, want %s or all", p, p.Architecture, a.cfg.Arch)
	}
	p.Size = size
	ext := filepath.Ext(rec.Get("Filename"))
	// apt's name for a downloaded package (pkgAcqArchive::StoreFilename).
	p.File = filepath.Join(a.archives,
		quote(p.Name, "_:")+"_"+quote(p.Version, "_:")+"_"+quote(p.Architecture, "_:.")+ext)
	return p, nil
}

// quote is apt's QuoteString: bad characters, '%', and non-printable
// bytes become %xx.
func quote(s, bad string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if strings.IndexByte(bad, c) >= 0 || c == '%' || c <= 0x20 || c >= 0x7f {
			fmt.Fprintf(&b, "%%%02x", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Fetch makes sure the .deb of every package is in the cache with the size
// and SHA256 of the signed index: cached files are checked, a cached file
// that does not match is removed (and logged), and missing files are
// downloaded with `apt-get download`, which verifies them too. Every file
// is checked again afterwards; one that still does not match fails with a
// *ChecksumError naming the package.
func (a *Apt) Fetch(ctx context.Context, pkgs []Package) error {
	if err := a.Update(ctx); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	unlock, err := lockFile(a.lockFile)
	if err != nil {
		return err
	}
	defer unlock()

	var missing []Package
	for _, p := range pkgs {
		err := Verify(p)
		switch {
		case err == nil:
			continue
		case errors.Is(err, fs.ErrNotExist):
		case IsChecksumError(err):
			a.cfg.Log.WarnContext(ctx, "cached Debian package does not match the archive index; downloading it again",
				"package", p.Name, "version", p.Version, "arch", p.Architecture, "error", err)
			if err := os.Remove(p.File); err != nil {
				return err
			}
		default:
			return err
		}
		missing = append(missing, p)
	}
	if len(missing) == 0 {
		return nil
	}
	args := []string{"download", "--"}
	var size int64
	for _, p := range missing {
		args = append(args, p.String())
		size += p.Size
	}
	start := time.Now()
	if out, err := a.run(ctx, a.archives, true, "apt-get", args...); err != nil {
		return fmt.Errorf("downloading Debian packages for %s: %w", a.cfg.Arch, a.explain(err, out, args[2:]))
	}
	for _, p := range missing {
		if err := Verify(p); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("downloading %s for %s: apt-get download did not create %s", p, a.cfg.Arch, p.File)
			}
			return err
		}
	}
	a.cfg.Log.InfoContext(ctx, "downloaded Debian packages", "arch", a.cfg.Arch, "count", len(missing), "bytes", size,
		"duration", time.Since(start).Round(time.Millisecond))
	return nil
}

// run runs an apt command with the private configuration in dir ("": the
// state directory) and returns its standard output. With progress set and
// cfg.Progress given, standard output also goes there; otherwise apt runs
// with -q. The error includes apt's error lines.
func (a *Apt) run(ctx context.Context, dir string, progress bool, name string, args ...string) ([]byte, error) {
	if dir == "" {
		dir = a.state
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "APT_CONFIG=") || strings.HasPrefix(kv, "LC_") || strings.HasPrefix(kv, "LANG")
	}), "APT_CONFIG="+a.conf, "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive")
	cmd.Stderr = &stderr
	if progress && a.cfg.Progress != nil {
		cmd.Stdout = io.MultiWriter(&stdout, a.cfg.Progress)
	} else {
		cmd.Stdout = &stdout
		if name == "apt-get" && !slices.Contains(args, "--simulate") {
			cmd.Args = slices.Insert(cmd.Args, 1, "-q")
		}
	}
	err := cmd.Run()
	if s := strings.TrimSpace(stderr.String()); s != "" {
		a.cfg.Log.Debug("apt output", "command", name+" "+strings.Join(args, " "), "stderr", s)
	}
	out := append(stdout.Bytes(), stderr.Bytes()...)
	if err != nil {
		var lines []string
		for line := range strings.Lines(string(out)) {
			if strings.HasPrefix(line, "E: ") || strings.HasPrefix(line, "W: ") {
				lines = append(lines, strings.TrimSpace(line))
			}
		}
		if len(lines) == 0 {
			lines = append(lines, strings.TrimSpace(stderr.String()))
		}
		return out, fmt.Errorf("%s %s: %w: %s", name, args[0], err, strings.Join(lines, "; "))
	}
	return out, nil
}

// writeFile replaces name with data.
func writeFile(name string, data []byte) error {
	if old, err := os.ReadFile(name); err == nil && bytes.Equal(old, data) {
		return nil
	}
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}
