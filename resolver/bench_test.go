package resolver_test

import (
	"fmt"
	"testing"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/resolver"
)

// benchCatalog publishes total versions spread over packages p0000, p0001…
// with perPackage versions each (1.0.0 … M.9.0), plus "base". Package i
// requires package i+1 at its newest major unless i+1 is a multiple of 5:
// requires chains of five packages.
func benchCatalog(total, perPackage int) *catalog.Snapshot {
	packages := total / perPackage
	majors := perPackage / 10
	releases := make([]catalog.Release, 0, total+1)
	releases = append(releases, rel("base 12.0.0"))
	for i := range packages {
		name := fmt.Sprintf("p%04d", i)
		var opts []string
		if (i+1)%5 != 0 && i+1 < packages {
			opts = append(opts, fmt.Sprintf("requires p%04d ^%d", i+1, majors))
		}
		for v := range perPackage {
			releases = append(releases, rel(fmt.Sprintf("%s %d.%d.0", name, 1+v/10, v%10), opts...))
		}
	}
	return catalog.NewSnapshot(1, releases, nil)
}

var benchSizes = []struct{ total, perPackage int }{{100, 10}, {10_000, 100}, {100_000, 100}}

// benchTag names the heads of two chains and the tail of the second:
// base + 5 + 5 = 11 packages resolved, each at its newest version.
const benchTag = "p0000_p0005_p0009"

func BenchmarkParseTag(b *testing.B) {
	snap := benchCatalog(10_000, 100)
	st := catalog.DefaultStack()
	st.Aliases["first"] = "p0000"
	for _, tag := range []string{benchTag, "first-10.9_p0005-10.9.0_p0009-10"} {
		b.Run(tag, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := resolver.ParseTag(tag, st, resolver.StackNames(snap, st)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkResolve(b *testing.B) {
	for _, size := range benchSizes {
		snap := benchCatalog(size.total, size.perPackage)
		st, _ := snap.Stack(catalog.DefaultStackName)
		req, err := resolver.ParseTag(benchTag, st, resolver.StackNames(snap, st))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("versions=%d", size.total), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				res, err := resolver.Resolve(snap, st, req)
				if err != nil {
					b.Fatal(err)
				}
				if len(res.Releases) != 11 {
					b.Fatalf("resolved %d releases, want 11", len(res.Releases))
				}
			}
		})
	}
}

// BenchmarkResolveConflict measures the failure path: the newest version
// of every package in a chain is tried, and the explanation is built.
func BenchmarkResolveConflict(b *testing.B) {
	for _, size := range benchSizes {
		snap := benchCatalog(size.total, size.perPackage)
		st, _ := snap.Stack(catalog.DefaultStackName)
		// p0004 1.x conflicts with p0003's requirement ^M (M > 1).
		req, err := resolver.ParseTag("p0000_p0004-1", st, resolver.StackNames(snap, st))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("versions=%d", size.total), func(b *testing.B) {
			if size.perPackage < 20 {
				b.Skip("needs two majors")
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := resolver.Resolve(snap, st, req); err == nil {
					b.Fatal("resolved a conflict")
				}
			}
		})
	}
}

// benchFiles is a layer's file list shaped like a Debian package's: n
// entries at depth 4 to 6, spread over the directories that many packages
// share (usr/bin, usr/lib/x86_64-linux-gnu, usr/share/doc) and the
// package's own subtrees.
func benchFiles(name string, n int) map[string]string {
	files := make(map[string]string, n)
	for i := range n {
		var p string
		switch i % 4 {
		case 0:
			p = fmt.Sprintf("usr/bin/%s-%d", name, i)
		case 1:
			p = fmt.Sprintf("usr/lib/x86_64-linux-gnu/%s/mod%02d/lib%d.so", name, i%16, i)
		case 2:
			p = fmt.Sprintf("usr/share/doc/%s/examples/d%02d/f%d.txt", name, i%32, i)
		default:
			p = fmt.Sprintf("opt/%s/share/d%02d/e%02d/f%d", name, i%8, i%24, i)
		}
		files[p] = fmt.Sprintf("sha256:%064x 0644", i)
	}
	return files
}

// BenchmarkResolveFiles resolves benchTag (11 packages) when every layer
// has a file list: base with 10,000 entries and each package with 2,000,
// so the overlap check reads 30,000 paths per platform, 60,000 in all.
func BenchmarkResolveFiles(b *testing.B) {
	snap := benchCatalog(10_000, 100)
	var releases []catalog.Release
	byName := map[string]map[string]string{}
	for _, name := range snap.Names() {
		n := 2_000
		if name == "base" {
			n = 10_000
		}
		byName[name] = benchFiles(name, n)
		for _, r := range snap.Releases(name) {
			releases = append(releases, withFiles(r, byName[name]))
		}
	}
	snap = catalog.NewSnapshot(1, releases, nil)
	st, _ := snap.Stack(catalog.DefaultStackName)
	req, err := resolver.ParseTag(benchTag, st, resolver.StackNames(snap, st))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		res, err := resolver.Resolve(snap, st, req)
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Releases) != 11 {
			b.Fatalf("resolved %d releases, want 11", len(res.Releases))
		}
	}
}
