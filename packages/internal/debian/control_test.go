package debian_test

import (
	"strings"
	"testing"

	"github.com/envreg/envreg/packages/internal/debian"
)

const control = `Package: hello
Version: 1.0-1
Architecture: amd64
Maintainer: Someone <someone@example.org>
Depends: libc6 (>= 2.34)
Conffiles:
 /etc/hello.conf 0123456789abcdef0123456789abcdef
Description: greets
 A longer description.
 .
 With a paragraph.
`

func TestParagraphs(t *testing.T) {
	ps, err := debian.ParseParagraphs([]byte("# comment\n" + control + "\n\nPackage: other\nStatus: purge ok not-installed\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 {
		t.Fatalf("%d paragraphs, want 2", len(ps))
	}
	p := ps[0]
	if got := p.Get("depends"); got != "libc6 (>= 2.34)" {
		t.Errorf("Get(depends) = %q", got)
	}
	if got := p.Get("Description"); got != "greets\n A longer description.\n .\n With a paragraph." {
		t.Errorf("Get(Description) = %q", got)
	}
	if got := string(p.Bytes()); got != control {
		t.Errorf("Bytes() =\n%s\nwant the input back:\n%s", got, control)
	}
	if ps[1].Get("Status") != "purge ok not-installed" {
		t.Errorf("CRLF line: %q", ps[1].Get("Status"))
	}
	for _, bad := range []string{" continuation first\n", "no colon here\n", "Bad Name: x\n"} {
		if _, err := debian.ParseParagraphs([]byte(bad)); err == nil {
			t.Errorf("ParseParagraphs(%q) succeeded", bad)
		}
	}
}

func TestStatusRecord(t *testing.T) {
	ps, err := debian.ParseParagraphs([]byte("Version: 1.0-1\nStatus: deinstall ok config-files\nPackage: hello\nArchitecture: amd64\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := string(debian.StatusRecord(ps[0]).Bytes())
	want := "Package: hello\nStatus: install ok installed\nVersion: 1.0-1\nArchitecture: amd64\n"
	if got != want {
		t.Errorf("StatusRecord =\n%s\nwant\n%s", got, want)
	}
}

func TestCheckSources(t *testing.T) {
	tests := []struct {
		lines []string
		err   string
	}{
		{lines: []string{"deb http://deb.debian.org/debian bookworm main"}},
		{lines: []string{"deb [signed-by=/k.gpg arch=amd64] http://deb.debian.org/debian bookworm main"}},
		{lines: []string{}, err: "empty"},
		{lines: []string{"deb-src http://deb.debian.org/debian bookworm main"}, err: "want"},
		{lines: []string{"deb http://deb.debian.org/debian"}, err: "want"},
		{lines: []string{"deb [trusted=yes] http://x bookworm main"}, err: "trusted would skip signature verification"},
		{lines: []string{"deb [allow-insecure=yes] http://x bookworm main"}, err: "allow-insecure"},
		{lines: []string{"deb [Allow-Weak=yes] http://x bookworm main"}, err: "allow-weak"},
		{lines: []string{"deb [signed-by=/k http://x bookworm main"}, err: "unclosed"},
	}
	for _, tc := range tests {
		err := debian.CheckSources(tc.lines)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("CheckSources(%q) = %v", tc.lines, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("CheckSources(%q) = %v, want error containing %q", tc.lines, err, tc.err)
		}
	}
}
