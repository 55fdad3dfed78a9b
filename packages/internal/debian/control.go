package debian

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
)

// Field is one field of a control paragraph. Value is the text after
// "Name:" with surrounding space removed; a multi-line value keeps its
// continuation lines (each starting with a space) separated by '\n'.
type Field struct {
	Name, Value string
}

// Paragraph is one stanza of a deb822 file (a control file, a Packages
// index entry, a dpkg status record), in its original field order.
type Paragraph []Field

// Get returns the value of the field name (case-insensitive), or "".
func (p Paragraph) Get(name string) string {
	for _, f := range p {
		if strings.EqualFold(f.Name, name) {
			return f.Value
		}
	}
	return ""
}

// Bytes formats p as "Name: value" lines ending in '\n', without the blank
// line that separates paragraphs.
func (p Paragraph) Bytes() []byte {
	var b bytes.Buffer
	for _, f := range p {
		b.WriteString(f.Name)
		b.WriteByte(':')
		if f.Value != "" && f.Value[0] != '\n' {
			b.WriteByte(' ')
		}
		b.WriteString(f.Value)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// StatusRecord returns the dpkg status record of an installed package with
// control paragraph p: the Package field, then "Status: install ok
// installed", then the other fields in their order (an existing Status
// field is replaced). This is what dpkg writes to /var/lib/dpkg/status and
// what distroless images keep in /var/lib/dpkg/status.d/<package>.
func StatusRecord(p Paragraph) Paragraph {
	out := make(Paragraph, 0, len(p)+1)
	for _, f := range p {
		if strings.EqualFold(f.Name, "Package") {
			out = append(out, f, Field{Name: "Status", Value: "install ok installed"})
		}
	}
	for _, f := range p {
		if !strings.EqualFold(f.Name, "Package") && !strings.EqualFold(f.Name, "Status") {
			out = append(out, f)
		}
	}
	return out
}

// ParseParagraphs parses a deb822 file: paragraphs separated by blank
// lines, fields "Name: value" with continuation lines starting with a space
// or tab. Lines starting with '#' are comments.
func ParseParagraphs(data []byte) ([]Paragraph, error) {
	var (
		out []Paragraph
		cur Paragraph
	)
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSuffix(line, "\r")
		switch {
		case strings.TrimSpace(line) == "":
			if len(cur) > 0 {
				out = append(out, cur)
				cur = nil
			}
		case line[0] == '#':
		case line[0] == ' ' || line[0] == '\t':
			if len(cur) == 0 {
				return nil, fmt.Errorf("line %d: continuation line without a field", n+1)
			}
			cur[len(cur)-1].Value += "\n" + line
		default:
			name, value, ok := strings.Cut(line, ":")
			if !ok || name == "" || strings.ContainsAny(name, " \t") {
				return nil, fmt.Errorf("line %d: %q is not a field", n+1, line)
			}
			cur = append(cur, Field{Name: name, Value: strings.TrimSpace(value)})
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out, nil
}

// SourceOf returns the source package of an index entry or control file:
// its Source field without the version, or its Package.
func SourceOf(p Paragraph) string { return sourceName(p) }

// Without returns p without the fields named (case-insensitively).
func (p Paragraph) Without(names ...string) Paragraph {
	var out Paragraph
	for _, f := range p {
		if !slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(n, f.Name) }) {
			out = append(out, f)
		}
	}
	return out
}
