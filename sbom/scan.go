package sbom

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"

	"github.com/envreg/envreg/catalog"
)

// Contents is what Scan found in a layer.
type Contents struct {
	// Components are the installed Debian packages, sorted by name and
	// architecture.
	Components []catalog.Component
	// Distro is "<ID>-<VERSION_ID>" from the layer's os-release
	// ("debian-12"), or empty.
	Distro string
}

// Limits on what Scan reads of one file: dpkg records and copyright files
// are small; a larger one is skipped, not read.
const (
	maxRecordFile    = 4 << 20
	maxCopyrightFile = 1 << 20
	maxComponents    = 100000
)

// Paths Scan reads.
const (
	statusDir  = "var/lib/dpkg/status.d/"
	statusFile = "var/lib/dpkg/status"
	docDir     = "usr/share/doc/"
)

var osReleaseFiles = []string{"etc/os-release", "usr/lib/os-release"}

// Scan reads a gzip-compressed layer tar and returns the Debian packages its
// dpkg records list and the distribution its os-release names. It reads r
// to the end (a caller may tee another reader into it). A layer that is not
// a gzip tar is an error.
func Scan(ctx context.Context, r io.Reader) (Contents, error) {
	c, err := scan(ctx, r)
	_, _ = io.Copy(io.Discard, r)
	if err != nil {
		return Contents{}, fmt.Errorf("reading the dpkg records of the layer: %w", err)
	}
	return c, nil
}

func scan(ctx context.Context, r io.Reader) (Contents, error) {
	zr, err := gzip.NewReader(bufio.NewReaderSize(r, 64<<10))
	if err != nil {
		return Contents{}, err
	}
	var (
		records   []stanza
		licenses  = map[string][]string{}
		osRelease []byte
	)
	tr := tar.NewReader(zr)
	for {
		if err := ctx.Err(); err != nil {
			return Contents{}, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Contents{}, err
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		name := strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")
		switch kind := fileKind(name); {
		case kind == "" || hdr.Size > maxRecordFile:
		case kind == "record":
			data, err := io.ReadAll(tr)
			if err != nil {
				return Contents{}, err
			}
			records = append(records, parseStanzas(data)...)
		case kind == "copyright" && hdr.Size <= maxCopyrightFile:
			data, err := io.ReadAll(tr)
			if err != nil {
				return Contents{}, err
			}
			licenses[path.Base(path.Dir(name))] = copyrightLicenses(data)
		case kind == "os-release" && osRelease == nil:
			if osRelease, err = io.ReadAll(tr); err != nil {
				return Contents{}, err
			}
		}
	}
	return contents(records, licenses, osRelease)
}

// fileKind says what a layer path is to Scan: "record", "copyright",
// "os-release" or "" (not read).
func fileKind(name string) string {
	switch {
	case name == statusFile:
		return "record"
	case strings.HasPrefix(name, statusDir):
		rest := strings.TrimPrefix(name, statusDir)
		if rest != "" && !strings.Contains(rest, "/") && !strings.HasSuffix(rest, ".md5sums") {
			return "record"
		}
	case strings.HasPrefix(name, docDir) && strings.HasSuffix(name, "/copyright") && strings.Count(name, "/") == 4:
		return "copyright"
	case slices.Contains(osReleaseFiles, name):
		return "os-release"
	}
	return ""
}

// contents turns the records into sorted components, with licenses.
func contents(records []stanza, licenses map[string][]string, osRelease []byte) (Contents, error) {
	var c Contents
	for _, s := range records {
		name, version := s["Package"], s["Version"]
		if name == "" || version == "" || !installed(s["Status"]) {
			continue
		}
		c.Components = append(c.Components, catalog.Component{Type: "deb", Name: name, Version: version,
			Architecture: s["Architecture"], Licenses: licenses[name]})
	}
	if len(c.Components) > maxComponents {
		return Contents{}, fmt.Errorf("%d dpkg records: more than %d", len(c.Components), maxComponents)
	}
	slices.SortFunc(c.Components, func(a, b catalog.Component) int {
		return strings.Compare(a.Name+" "+a.Architecture+" "+a.Version, b.Name+" "+b.Architecture+" "+b.Version)
	})
	c.Components = slices.CompactFunc(c.Components, catalog.Component.Equal)
	c.Distro = distro(osRelease)
	return c, nil
}

// installed reports whether a dpkg Status field says the package is
// installed (a record without Status, as some distroless tools write, is).
func installed(status string) bool {
	return status == "" || strings.HasSuffix(status, " installed")
}

// stanza is one paragraph of a Debian control file: field → value (the
// first line, folded lines dropped).
type stanza map[string]string

// parseStanzas splits control data into paragraphs.
func parseStanzas(data []byte) []stanza {
	var out []stanza
	cur := stanza{}
	for line := range strings.Lines(string(data)) {
		line = strings.TrimRight(line, "\r\n")
		switch {
		case strings.TrimSpace(line) == "":
			if len(cur) > 0 {
				out = append(out, cur)
				cur = stanza{}
			}
		case line[0] == ' ' || line[0] == '\t' || line[0] == '#':
		default:
			if k, v, ok := strings.Cut(line, ":"); ok {
				cur[k] = strings.TrimSpace(v)
			}
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// copyrightLicenses returns the license short names of the Files
// paragraphs of a machine-readable Debian copyright file (DEP-5), sorted
// and unique, or nil when the file is not machine-readable.
func copyrightLicenses(data []byte) []string {
	ps := parseStanzas(data)
	if len(ps) == 0 || !strings.Contains(ps[0]["Format"], "copyright-format") {
		return nil
	}
	var out []string
	for _, p := range ps[1:] {
		if _, ok := p["Files"]; !ok {
			continue
		}
		out = append(out, splitLicense(p["License"])...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// splitLicense splits a DEP-5 license expression ("GPL-2+ or Artistic",
// "LGPL-2.1+ and BSD-3-clause") into its names; an exception ("GPL-2+
// with OpenSSL exception") is dropped with its name.
func splitLicense(expr string) []string {
	var out []string
	skip := false
	for _, f := range strings.Fields(strings.NewReplacer(",", " ", "(", " ", ")", " ").Replace(expr)) {
		switch l := strings.ToLower(f); {
		case l == "with":
			skip = true
		case skip:
			skip = l != "exception"
		case l != "or" && l != "and":
			out = append(out, f)
		}
	}
	return out
}

// distro returns "<ID>-<VERSION_ID>" from os-release data, or "".
func distro(data []byte) string {
	var id, version string
	for line := range bytes.Lines(data) {
		k, v, ok := strings.Cut(strings.TrimSpace(string(line)), "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"'`)
		switch k {
		case "ID":
			id = v
		case "VERSION_ID":
			version = v
		}
	}
	if id == "" || version == "" {
		return ""
	}
	return id + "-" + version
}
