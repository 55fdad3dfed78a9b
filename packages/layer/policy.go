package layer

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/opencontainers/go-digest"
)

// Default limits of a Policy whose limit fields are zero. They are far
// above real packages (of the bundled layers, nodejs unpacks to the most,
// 95 MB, and base has the most entries, 2,639) and low enough to stop a
// bomb before it fills a disk.
const (
	DefaultMaxEntries   = 1 << 20  // 1,048,576 entries
	DefaultMaxEntrySize = 4 << 30  // 4 GiB per file
	DefaultMaxTotalSize = 16 << 30 // 16 GiB uncompressed
)

// Policy is what a layer built from tar or directory input may contain
// beyond the rules every layer follows. The zero Policy is the default:
// setuid and setgid files refused, default limits.
//
// A layer built from tar or directory input (`envreg publish --from-tar`,
// --from-dir) or pushed may come from a build job the registry operator
// does not control, and every image that
// contains the package runs it. So whatever the policy, a layer never
// contains, and the input is refused with a *RefusedError (or an
// *UnsupportedFileError for devices, FIFOs and sockets) naming the entry:
//
//   - an absolute path, or a path with a ".." component (whether or not it
//     escapes the root: the canonical layer never needs one);
//   - two entries with the same name after cleaning ("./a" and "a/");
//   - an entry written through a symbolic link (its parent path is a
//     symlink): an extractor would follow the link and write wherever it
//     points. Symbolic links themselves are fine, absolute targets
//     included (Debian ships /etc/alternatives links, /etc/localtime):
//     their targets are never followed when a layer is built, only when a
//     container resolves them inside its own root;
//   - a hard link whose target is absolute, escapes the root or is not an
//     earlier regular file of the archive; a hard link becomes a copy of
//     its target, so it cannot reach outside the input. In a directory, a
//     file with more links than the tree holds (one name outside the
//     directory) is refused: its content belongs to a file elsewhere;
//   - a device node, FIFO or socket;
//   - a path longer than 4096 bytes (PATH_MAX) or with a component longer
//     than 255 bytes (NAME_MAX), and a symbolic link target longer than
//     4096 bytes; every directory a path implies counts as an entry;
//   - an OCI whiteout (".wh.*" as any path component), which would delete
//     other packages' files when the layers are stacked;
//   - more than MaxEntries entries, entry names longer together than 256
//     bytes per allowed entry, a file larger than MaxEntrySize, or more
//     than MaxTotalSize uncompressed bytes: bounds on decompression bombs
//     and sparse-file bombs (and on the memory a scan keeps, a fixed size
//     per entry plus its name), checked against the tar headers before
//     anything is spooled and against the decompressed stream as it is
//     read;
//   - data that starts like gzip but is not valid gzip (a corrupt stream,
//     a bad checksum, trailing garbage), data compressed with anything but
//     gzip, and empty input.
//
// and, unless AllowSetuid, a regular file with the setuid or setgid bit:
// in a shared image it is a privilege escalation handed to every
// container that contains the package. A hard link whose own header has
// them is refused the same way, whatever its target's mode: extractors
// that apply a link's header (Python's tarfile; containerd and moby chmod
// the link's path) make the file it shares setuid. Directories may keep
// setgid and sticky (group inheritance and /tmp; base-files ships
// /var/local with setgid).
//
// Debian recipes (package packages) keep setuid and setgid files: their
// content comes from the signed archive the recipe pins, where setuid
// programs are Debian's decision. The bundled closures contain none.
//
// This package only writes to the io.Writer it is given; its callers
// build into a temporary file and store the blob only after the build
// succeeded, so a refused layer is never stored.
type Policy struct {
	// AllowSetuid keeps setuid and setgid bits of regular files instead
	// of refusing the file.
	AllowSetuid bool
	// MaxEntries bounds the number of entries (0: DefaultMaxEntries;
	// negative: no limit).
	MaxEntries int
	// MaxEntrySize bounds the content of one regular file in bytes (0:
	// DefaultMaxEntrySize; negative: no limit). For a sparse file in a
	// tar it is the size once unpacked.
	MaxEntrySize int64
	// MaxTotalSize bounds the uncompressed size in bytes: of the tar
	// stream (headers included) and of all file contents together (0:
	// DefaultMaxTotalSize; negative: no limit).
	MaxTotalSize int64
}

// ErrRefused is wrapped by every error that refuses an entry of a layer:
// *RefusedError and *UnsupportedFileError. Callers map it to a client
// error (the input is at fault, not the registry).
var ErrRefused = errors.New("refused in a package layer")

// Rule names the rule a *RefusedError broke.
type Rule string

// The rules of the layer input policy.
const (
	RuleAbsolute       Rule = "absolute-path"   // "/etc/passwd"
	RuleDotDot         Rule = "dotdot"          // "a/../b", "../etc"
	RuleDuplicate      Rule = "duplicate"       // "a" twice, or "./a" and "a/"
	RuleThroughSymlink Rule = "through-symlink" // "l/passwd" where l is a symlink
	RuleNotDirectory   Rule = "parent-not-directory"
	RuleHardLink       Rule = "hard-link"   // target missing, not a file, or outside the input
	RuleWhiteout       Rule = "whiteout"    // ".wh.*" component
	RuleSetuid         Rule = "setuid"      // setuid or setgid regular file
	RuleEntries        Rule = "max-entries" // too many entries
	RuleEntrySize      Rule = "max-entry-size"
	RuleTotalSize      Rule = "max-total-size"
	RuleNameLength     Rule = "name-length" // path over PATH_MAX, component over NAME_MAX
	RuleMalformed      Rule = "malformed"   // not (valid) gzip or tar, empty input, bad name

	// Rules of layers kept as they are (Policy.Inspect): what the
	// canonical form drops cannot be dropped there, so it is refused.
	RuleMediaType Rule = "media-type" // not a gzip layer media type
	RuleRoot      Rule = "root-entry" // a root entry other than 0755 root:root
	RuleXattr     Rule = "xattr"      // extended attributes other than user.*, ACLs
)

// Linux's limits on names: no longer path (PATH_MAX) or symbolic link
// target, and no longer component (NAME_MAX). A layer cannot be unpacked
// with longer names anyway; bounding them also bounds the directories a
// deep path implies (each is an entry of the layer, so a single entry
// named "a/a/a/…" could otherwise turn a few bytes of input into
// gigabytes of directory headers).
const (
	maxPathLength      = 4096
	maxComponentLength = 255
)

// checkLength refuses a name (or, with what "symbolic link target", a
// link target) beyond Linux's limits.
func checkLength(entry, name, what string) error {
	if len(name) > maxPathLength {
		return refuse(entry, RuleNameLength, "%s: %s of %d bytes; the limit is %d (PATH_MAX)", shorten(entry), what, len(name), maxPathLength)
	}
	for c := range strings.SplitSeq(name, "/") {
		if len(c) > maxComponentLength {
			return refuse(entry, RuleNameLength, "%s: %s has a component of %d bytes; the limit is %d (NAME_MAX)", shorten(entry), what, len(c), maxComponentLength)
		}
	}
	return nil
}

// shorten keeps a name readable in a message.
func shorten(s string) string {
	if len(s) <= 100 {
		return s
	}
	return s[:60] + "…" + s[len(s)-30:]
}

// RefusedError reports an entry that a package layer may not contain, or
// input that is not a layer at all. Its message names the entry.
// errors.Is(err, ErrRefused) is true for it.
type RefusedError struct {
	// Path is the entry as the input names it (the tar header's name, or
	// the slash-separated path in the directory); "" when the input as a
	// whole is refused (e.g. not gzip).
	Path string
	Rule Rule
	msg  string
}

func (e *RefusedError) Error() string { return e.msg }

// Is makes errors.Is(err, ErrRefused) true.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

func refuse(path string, rule Rule, format string, args ...any) *RefusedError {
	return &RefusedError{Path: path, Rule: rule, msg: fmt.Sprintf(format, args...)}
}

// Is makes errors.Is(err, ErrRefused) true for an *UnsupportedFileError.
func (e *UnsupportedFileError) Is(target error) bool { return target == ErrRefused }

func (p Policy) maxEntries() int     { return limit(p.MaxEntries, DefaultMaxEntries) }
func (p Policy) maxEntrySize() int64 { return limit(p.MaxEntrySize, DefaultMaxEntrySize) }
func (p Policy) maxTotalSize() int64 { return limit(p.MaxTotalSize, DefaultMaxTotalSize) }
func limit[T int | int64](v, def T) T { // 0: def; negative: no limit (-1)
	switch {
	case v == 0:
		return def
	case v < 0:
		return -1
	}
	return v
}

// averageNameLimit bounds the bytes of entry names per allowed entry: the
// names of a layer's entries together may take at most MaxEntries times
// this. A scan keeps every name (to find duplicates and to list the
// files a release records), so without it the memory kept per entry would
// be bounded only by PATH_MAX: 4 KiB names compress to almost nothing.
// Real packages average well under 100 bytes (the 120,815 files of 767
// Debian packages on one machine: 58 bytes).
const averageNameLimit = 256

// budget counts entries and bytes against a Policy's limits.
type budget struct {
	p       Policy
	entries int
	names   int64
	total   int64
}

// name accounts for the n bytes of an entry's name that a scan keeps.
func (b *budget) name(entry string, n int) error {
	b.names += int64(n)
	if m := b.p.maxEntries(); m >= 0 && b.names > int64(m)*averageNameLimit {
		return refuse(entry, RuleNameLength, "%s: the names of the entries so far add up to %d bytes; the limit is %d (%d bytes for each of the %d entries Policy.MaxEntries allows)",
			shorten(entry), b.names, int64(m)*averageNameLimit, averageNameLimit, m)
	}
	return nil
}

// entry accounts for one more entry.
func (b *budget) entry(name string) error {
	b.entries++
	if m := b.p.maxEntries(); m >= 0 && b.entries > m {
		return refuse(name, RuleEntries, "%s: more than %d entries; the limit is %d (Policy.MaxEntries)", name, m, m)
	}
	return nil
}

// content accounts for size bytes of file content that the layer will
// hold (a hard link's copy counts again: the layer holds it twice).
func (b *budget) content(name string, size int64) error {
	if m := b.p.maxEntrySize(); m >= 0 && size > m {
		return refuse(name, RuleEntrySize, "%s: %d bytes; the limit is %d bytes per file (Policy.MaxEntrySize)", name, size, m)
	}
	b.total += size
	if m := b.p.maxTotalSize(); m >= 0 && b.total > m {
		return refuse(name, RuleTotalSize, "%s: the files so far add up to %d bytes; the limit is %d bytes uncompressed (Policy.MaxTotalSize)", name, b.total, m)
	}
	return nil
}

// checkSetuid refuses a regular file with the setuid or setgid bit unless
// the policy allows them, and a hard link (typ tar.TypeLink) whose own
// header has them: extractors that apply a link's header (Python's
// tarfile, containerd, moby) chmod the file the link shares, so the
// header's mode is a file's mode as much as the target's is.
func (p Policy) checkSetuid(name string, typ byte, mode int64) error {
	if p.AllowSetuid || typ != tar.TypeReg && typ != tar.TypeLink || mode&0o6000 == 0 {
		return nil
	}
	what := "setuid"
	switch {
	case mode&0o6000 == 0o6000:
		what = "setuid and setgid"
	case mode&0o2000 != 0:
		what = "setgid"
	}
	kind := "file (mode %04o)"
	if typ == tar.TypeLink {
		kind = "hard link (mode %04o in its header, which extractors apply to the file it links to)"
	}
	return refuse(name, RuleSetuid, "%s: %s "+kind+" refused; a package layer must not hand root privileges to every image that contains it (allow with Policy.AllowSetuid)", name, what, mode&modeMask)
}

// Build is the package function Build under policy p.
func (p Policy) Build(ctx context.Context, root fs.FS, w io.Writer) (diffID digest.Digest, err error) {
	entries, err := p.scanFS(ctx, root, false)
	if err != nil {
		return "", fmt.Errorf("building layer: %w", err)
	}
	d, err := writeLayer(ctx, entries, w)
	if err != nil {
		return "", fmt.Errorf("building layer: %w", err)
	}
	return d, nil
}

// BuildFromDir is the package function BuildFromDir under policy p.
func (p Policy) BuildFromDir(ctx context.Context, dir string, w io.Writer) (diffID digest.Digest, err error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return "", fmt.Errorf("building layer from %s: %w", dir, err)
	}
	defer root.Close()
	entries, err := p.scanFS(ctx, root.FS(), true)
	if err != nil {
		return "", fmt.Errorf("building layer from %s: %w", dir, err)
	}
	d, err := writeLayer(ctx, entries, w)
	if err != nil {
		return "", fmt.Errorf("building layer from %s: %w", dir, err)
	}
	return d, nil
}

// NormalizeTar is the package function NormalizeTar under policy p.
func (p Policy) NormalizeTar(ctx context.Context, r io.Reader, w io.Writer) (diffID digest.Digest, err error) {
	d, err := p.normalizeTar(ctx, r, w)
	if err != nil {
		return "", fmt.Errorf("normalizing tar: %w", err)
	}
	return d, nil
}

// normalizeTar is NormalizeTar without error context.
func (p Policy) normalizeTar(ctx context.Context, r io.Reader, w io.Writer) (digest.Digest, error) {
	spool, err := os.MkdirTemp("", "envreg-tar-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(spool)
	entries, err := p.ReadTar(ctx, r, spool)
	if err != nil {
		return "", err
	}
	return writeLayer(ctx, entries, w)
}
