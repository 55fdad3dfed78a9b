package layer

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// layerModTime is the modification time of every entry of a built layer:
// the Unix epoch, the value reproducible-builds tools use by default.
var layerModTime = time.Unix(0, 0).UTC()

// compressionLevel is the gzip level of every layer. DefaultCompression is
// a good ratio at a reasonable speed; changing it changes every layer digest.
const compressionLevel = gzip.DefaultCompression

// Entry modes: the bits kept from the source (permissions plus setuid,
// setgid, sticky), the mode of every symbolic link, and the mode of parent
// directories that a tar source does not list.
const (
	modeMask        = 0o7777
	symlinkMode     = 0o777
	dirModeImplicit = 0o755 // parents a tar source does not list
)

// UnsupportedFileError reports a file a layer cannot contain: a device,
// FIFO, socket or unknown tar entry type.
type UnsupportedFileError struct {
	Path string // slash-separated path inside the tree or tar
	Kind string // e.g. "character device", "named pipe (FIFO)", "socket"
}

func (e *UnsupportedFileError) Error() string {
	return fmt.Sprintf("%s: %s not supported in a layer (only directories, regular files and symbolic links)", e.Path, e.Kind)
}

// Entry is one file of a layer: what Write writes and ReadTar returns.
// Only the fields below are recorded; every other piece of metadata is
// the canonical form's (see the package documentation).
type Entry struct {
	Name     string // slash-separated, relative, clean, no trailing slash
	Type     byte   // tar.TypeReg, tar.TypeDir or tar.TypeSymlink
	Mode     int64  // permission bits plus setuid, setgid, sticky (07777); 0777 for symbolic links
	Size     int64  // regular files
	Linkname string // symbolic links: the target, never followed
	// Open returns a regular file's content, exactly Size bytes.
	Open func() (io.ReadCloser, error)

	sum digest.Digest // regular files of an inspected layer: SHA-256 of the content
	// owner is what a regular file's header says besides its mode, in a
	// layer kept as it is (tarScan.asIs): a hard link's header must say
	// the same (see checkLinkHeader). Nil elsewhere, so that the entries
	// of a layer being built stay small.
	owner *owner
}

// Build writes a gzip-compressed tar of the tree root to w, in the
// canonical form described in the package documentation, and returns the
// digest of the uncompressed tar (the layer's diffID), under the default
// Policy (setuid and setgid files refused; see Policy.Build).
//
// Symbolic links are preserved when root implements fs.ReadLinkFS (as
// os.DirFS, (*os.Root).FS and fstest.MapFS do); otherwise a symbolic link is
// an error. BuildFromDir is the way to build from a directory.
func Build(ctx context.Context, root fs.FS, w io.Writer) (diffID digest.Digest, err error) {
	return Policy{}.Build(ctx, root, w)
}

// BuildFromDir is Build for the directory dir. It reads the tree
// through an os.Root, so nothing outside dir is read even if the tree
// changes while it is read; symbolic links are recorded (never followed),
// hard links become independent regular files (a file that also has a
// name outside dir is refused), and devices, FIFOs and sockets are
// refused with an *UnsupportedFileError naming the path. The default
// Policy applies (see Policy.BuildFromDir).
func BuildFromDir(ctx context.Context, dir string, w io.Writer) (diffID digest.Digest, err error) {
	return Policy{}.BuildFromDir(ctx, dir, w)
}

// NormalizeTar reads a tar archive from r (gzip-compressed or plain,
// detected by its magic bytes) and writes the canonical layer of the same
// tree to w, returning its diffID. Entry contents are spooled to a
// temporary directory (os.TempDir), not memory.
//
// Entries with absolute paths or ".." components, duplicate entries (after
// cleaning: "./a" and "a/" are the same entry), entries below a
// non-directory (a symbolic link included), whiteouts, devices and FIFOs
// are refused, and so is what the default Policy refuses (setuid and
// setgid files, input beyond the default limits, invalid gzip). A hard
// link becomes a copy of its (earlier) target; missing parent directories
// are added with mode 0755; the root entry ("./") and PAX global headers
// are dropped. See Policy.NormalizeTar.
func NormalizeTar(ctx context.Context, r io.Reader, w io.Writer) (diffID digest.Digest, err error) {
	return Policy{}.NormalizeTar(ctx, r, w)
}

// scanFS lists the tree root (without the root itself). With links, a
// regular file that has more hard links than names in the tree is
// refused: one of its names is outside the tree.
func (p Policy) scanFS(ctx context.Context, root fs.FS, links bool) ([]Entry, error) {
	var entries []Entry
	b := budget{p: p}
	files := hardLinks{}
	err := fs.WalkDir(root, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if name == "." {
			if !d.IsDir() {
				return errors.New("root is not a directory")
			}
			return nil
		}
		e, info, err := fsEntry(root, name, d)
		if err != nil {
			return err
		}
		if links && e.Type == tar.TypeReg {
			files.add(name, info)
		}
		if err := b.entry(name); err != nil {
			return err
		}
		if err := b.name(name, len(name)); err != nil {
			return err
		}
		if err := b.content(name, e.Size); err != nil {
			return err
		}
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := files.check(); err != nil {
		return nil, err
	}
	for _, e := range entries {
		if err := p.checkSetuid(e.Name, e.Type, e.Mode); err != nil {
			return nil, err
		}
	}
	return entries, nil
}

// fsEntry is the Entry of name in root, checked.
func fsEntry(root fs.FS, name string, d fs.DirEntry) (Entry, fs.FileInfo, error) {
	if err := checkLength(name, name, "name"); err != nil {
		return Entry{}, nil, err
	}
	if err := checkName(name); err != nil {
		return Entry{}, nil, err
	}
	info, err := d.Info()
	if err != nil {
		return Entry{}, nil, err
	}
	m := info.Mode()
	e := Entry{Name: name, Mode: tarMode(m)}
	switch m.Type() {
	case 0:
		e.Type, e.Size = tar.TypeReg, info.Size()
		e.Open = func() (io.ReadCloser, error) { return root.Open(name) }
	case fs.ModeDir:
		e.Type = tar.TypeDir
	case fs.ModeSymlink:
		target, err := fs.ReadLink(root, name)
		if err != nil {
			return Entry{}, nil, fmt.Errorf("reading symbolic link %s: %w", name, err)
		}
		if len(target) > maxPathLength {
			return Entry{}, nil, checkLength(name, target, "symbolic link target")
		}
		e.Type, e.Linkname, e.Mode = tar.TypeSymlink, target, symlinkMode
	default:
		return Entry{}, nil, &UnsupportedFileError{Path: name, Kind: fileKind(m)}
	}
	return e, info, nil
}

// hardLinks counts the names in a tree of each file with several links.
type hardLinks map[[2]uint64]*linked

type linked struct {
	name  string // first name in the tree
	nlink uint64
	seen  uint64
}

// add counts name, a regular file, if it has several links.
func (h hardLinks) add(name string, info fs.FileInfo) {
	id, n, ok := fileID(info)
	if !ok || n <= 1 {
		return
	}
	l := h[id]
	if l == nil {
		l = &linked{name: name, nlink: n}
		h[id] = l
	}
	l.seen++
}

// check refuses a file with links outside the tree.
func (h hardLinks) check() error {
	for _, l := range h {
		if l.seen < l.nlink {
			return refuse(l.name, RuleHardLink, "%s: hard link to a file outside the directory (%d links, %d in the tree); copy the file instead of linking it", l.name, l.nlink, l.seen)
		}
	}
	return nil
}

// tarMode converts permission and special bits to their tar (Unix) values.
func tarMode(m fs.FileMode) int64 {
	mode := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}

func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "socket"
	default:
		return "irregular file (" + m.Type().String() + ")"
	}
}

// checkName refuses OCI whiteouts: in a package layer they would delete
// files of other packages when the layers are stacked. Every component
// counts: "a/.wh.b/c" would put the whiteout directory a/.wh.b in the
// layer as c's parent.
func checkName(name string) error {
	for c := range strings.SplitSeq(name, "/") {
		if strings.HasPrefix(c, ".wh.") {
			return refuse(name, RuleWhiteout, "%s: whiteout files (.wh.*) are not allowed in a package layer", name)
		}
	}
	return nil
}

// Magic bytes of compressed input.
var (
	gzipMagic  = []byte{0x1f, 0x8b}
	otherMagic = []struct {
		name  string
		magic []byte
	}{
		{"zstd", []byte{0x28, 0xb5, 0x2f, 0xfd}},
		{"xz", []byte{0xfd, '7', 'z', 'X', 'Z', 0}},
		// "BZh", the block size, the first block's magic: a plain tar
		// whose first name starts with "BZh" is still a tar.
		{"bzip2", []byte("BZh?1AY&SY")},
	}
)

// hasMagic reports whether b starts with magic, where '?' in magic
// matches a digit 1 to 9.
func hasMagic(b, magic []byte) bool {
	if len(b) < len(magic) {
		return false
	}
	for i, m := range magic {
		if m == '?' && b[i] >= '1' && b[i] <= '9' || m == b[i] {
			continue
		}
		return false
	}
	return true
}

// errTooLarge is what limitedReader returns past its limit.
var errTooLarge = errors.New("uncompressed input too large")

// limitedReader counts what it reads and fails past max (max < 0: no
// limit).
type limitedReader struct {
	r   io.Reader
	max int64
	n   int64
}

func (l *limitedReader) Read(b []byte) (int, error) {
	if l.max >= 0 && l.n >= l.max {
		// Allow reading exactly max bytes; fail only if there is more.
		var one [1]byte
		if n, err := l.r.Read(one[:]); n == 0 {
			return 0, err
		}
		return 0, errTooLarge
	}
	if l.max >= 0 && int64(len(b)) > l.max-l.n {
		b = b[:l.max-l.n]
	}
	n, err := l.r.Read(b)
	l.n += int64(n)
	return n, err
}

// ReadTar reads a tar archive from r (gzip-compressed or plain) under
// policy p, checking every entry as NormalizeTar does, and returns its
// entries in archive order, hard links as copies of their targets, for
// Write. Regular file contents are spooled into files under spool, an
// existing directory that the caller removes after Write.
//
// It is for a caller that merges several archives into one layer (the
// Debian packages of a recipe); NormalizeTar is ReadTar then Write.
func (p Policy) ReadTar(ctx context.Context, r io.Reader, spool string) ([]Entry, error) {
	return p.scanTar(ctx, r, tarScan{content: spoolContent(spool)})
}

// tarScan says what scanTar does besides checking the entries.
type tarScan struct {
	// content consumes the content of regular file number i (r) and sets
	// e.Size and e.Open or e.sum. readErr is the input's fault, writeErr
	// the system's (disk full, …).
	content func(i int, e *Entry, r io.Reader) (readErr, writeErr error)
	// raw, when set, receives the uncompressed tar stream, to the end of
	// the gzip stream (its digest is the layer's diffID).
	raw io.Writer
	// asIs: the tar is a layer that stays as it is (a pushed layer), not
	// input to the canonical form. What normalizing would drop is then
	// checked too: the root entry, extended attributes and ACLs, and PAX
	// global headers.
	asIs bool
}

// copyBufferSize is the size of the one buffer a scan copies every file's
// content through. io.Copy would allocate 32 KiB per file (neither a hash
// nor a file taking a tar entry has ReadFrom/WriteTo that avoids it): for
// a layer of a million empty files, 32 GiB of garbage (issue 15).
const copyBufferSize = 32 << 10

// spoolContent spools each regular file into spool/<i>.
func spoolContent(spool string) func(int, *Entry, io.Reader) (error, error) {
	buf := make([]byte, copyBufferSize)
	return func(i int, e *Entry, r io.Reader) (error, error) {
		file := filepath.Join(spool, strconv.Itoa(i))
		n, rerr, err := spoolFile(file, r, buf)
		e.Size = n
		e.Open = func() (io.ReadCloser, error) { return os.Open(file) }
		return rerr, err
	}
}

// hashContent records each regular file's size and SHA-256 digest.
func hashContent() func(int, *Entry, io.Reader) (error, error) {
	buf := make([]byte, copyBufferSize)
	h := digest.SHA256.Hash()
	return func(_ int, e *Entry, r io.Reader) (error, error) {
		h.Reset()
		er := &errReader{r: r}
		n, _ := io.CopyBuffer(writerOnly{h}, er, buf) // a hash never fails to write
		e.Size, e.sum = n, digest.NewDigest(digest.SHA256, h)
		return er.err, nil
	}
}

// writerOnly hides a writer's ReadFrom, so that io.CopyBuffer uses the
// buffer it is given (*os.File.ReadFrom falls back to io.Copy, which
// allocates one).
type writerOnly struct{ io.Writer }

// scanTar reads a gzip-compressed or plain tar under policy p, checking
// every entry as the package documentation and Policy describe, and
// returns its entries (hard links as copies of their targets).
func (p Policy) scanTar(ctx context.Context, r io.Reader, s tarScan) ([]Entry, error) {
	sc, err := p.newTarScanner(r, s)
	if err != nil {
		return nil, err
	}
	if sc.zr != nil {
		defer sc.zr.Close()
	}
	for i := 0; ; i++ {
		hdr, err := sc.tr.Next()
		if err == io.EOF {
			break
		}
		// archive/tar may flag insecure names (GODEBUG=tarinsecurepath=0);
		// cleanName refuses them with a better message.
		if err != nil && !(errors.Is(err, tar.ErrInsecurePath) && hdr != nil) {
			return nil, sc.readErr(err)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := sc.header(i, hdr); err != nil {
			return nil, err
		}
	}
	if sc.lr.n == 0 {
		return nil, refuse("", RuleMalformed, "input is empty, not a tar archive")
	}
	if sc.zr != nil {
		// Read the gzip stream to its end: that checks its CRC and length,
		// and that nothing but further gzip members follows.
		if _, err := io.Copy(io.Discard, sc.lr); err != nil {
			return nil, sc.readErr(err)
		}
	}
	return sc.entries, nil
}

// tarScanner is the state of one scanTar.
type tarScanner struct {
	p       Policy
	s       tarScan
	b       budget
	zr      *gzip.Reader // nil for a plain tar
	lr      *limitedReader
	tr      *tar.Reader
	entries []Entry
	index   map[string]int  // name -> position in entries
	implied map[string]bool // parents not (yet) listed
	last    string          // the last entry read, for errors about the stream
}

// newTarScanner refuses other compressions and opens gzip.
func (p Policy) newTarScanner(r io.Reader, s tarScan) (*tarScanner, error) {
	br := bufio.NewReader(r)
	magic, _ := br.Peek(10)
	for _, o := range otherMagic {
		if hasMagic(magic, o.magic) {
			return nil, refuse("", RuleMalformed, "input is %s-compressed; a layer source must be a plain or gzip-compressed tar", o.name)
		}
	}
	sc := &tarScanner{p: p, s: s, b: budget{p: p}, index: map[string]int{}, implied: map[string]bool{}}
	var src io.Reader = br
	if bytes.HasPrefix(magic, gzipMagic) {
		var err error
		if sc.zr, err = gzip.NewReader(br); err != nil {
			return nil, refuse("", RuleMalformed, "input starts like gzip but is not valid gzip data: %v", err)
		}
		src = sc.zr
	}
	if s.raw != nil {
		src = io.TeeReader(src, s.raw)
	}
	sc.lr = &limitedReader{r: src, max: p.maxTotalSize()}
	sc.tr = tar.NewReader(sc.lr)
	return sc, nil
}

// readErr is the refusal for an error reading the input.
func (sc *tarScanner) readErr(err error) error {
	where := "reading tar"
	if sc.last != "" {
		where = fmt.Sprintf("reading tar after entry %q", sc.last)
	}
	switch {
	case errors.Is(err, errTooLarge):
		return refuse(sc.last, RuleTotalSize, "%s: more than %d uncompressed bytes; the limit is %d (Policy.MaxTotalSize)", where, sc.lr.max, sc.lr.max)
	case sc.zr != nil:
		return refuse(sc.last, RuleMalformed, "%s: invalid gzip or tar data: %v", where, err)
	}
	return refuse(sc.last, RuleMalformed, "%s: not a valid tar archive: %v", where, err)
}

// header checks entry number i and adds it to the entries.
func (sc *tarScanner) header(i int, hdr *tar.Header) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		if err := sc.b.entry(hdr.Name); err != nil {
			return err
		}
		if sc.s.asIs {
			return checkGlobalHeader(hdr)
		}
		return nil
	}
	sc.last = hdr.Name
	name, err := sc.name(hdr)
	if err != nil {
		return err
	}
	if name == "" { // the root directory
		if hdr.Typeflag != tar.TypeDir {
			return refuse(hdr.Name, RuleMalformed, "entry %q: the root must be a directory", hdr.Name)
		}
		if sc.s.asIs {
			return checkRoot(hdr)
		}
		return nil
	}
	if _, dup := sc.index[name]; dup {
		if name != hdr.Name && name+"/" != hdr.Name {
			return refuse(hdr.Name, RuleDuplicate, "duplicate entry %q (spelled %q here)", name, hdr.Name)
		}
		return refuse(hdr.Name, RuleDuplicate, "duplicate entry %q", name)
	}
	if err := checkName(name); err != nil {
		return err
	}
	e, err := sc.entry(i, name, hdr)
	if err != nil {
		return err
	}
	sc.index[name] = len(sc.entries)
	sc.entries = append(sc.entries, e)
	return nil
}

// name cleans hdr's name and counts it against the budget: every entry
// counts, and so does every directory its path implies (once: an entry
// listed after its children was counted as implied).
func (sc *tarScanner) name(hdr *tar.Header) (string, error) {
	if err := checkLength(hdr.Name, hdr.Name, "name"); err != nil {
		return "", err
	}
	name, err := cleanName(hdr.Name)
	if err != nil {
		return "", err
	}
	if !sc.implied[name] {
		if err := sc.b.entry(hdr.Name); err != nil {
			return "", err
		}
	}
	for dir := name; ; {
		i := strings.LastIndexByte(dir, '/')
		if i < 0 {
			break
		}
		dir = dir[:i]
		if _, ok := sc.index[dir]; ok || sc.implied[dir] {
			break
		}
		sc.implied[dir] = true
		if err := sc.b.entry(hdr.Name); err != nil {
			return "", err
		}
	}
	if err := sc.b.name(hdr.Name, len(name)); err != nil {
		return "", err
	}
	if sc.s.asIs {
		if err := sc.p.checkRecords(hdr); err != nil {
			return "", err
		}
	}
	return name, nil
}

// entry is the Entry of the (cleaned) name of hdr, number i.
func (sc *tarScanner) entry(i int, name string, hdr *tar.Header) (Entry, error) {
	e := Entry{Name: name, Mode: hdr.Mode & modeMask}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeGNUSparse:
		if err := sc.regular(i, &e, hdr); err != nil {
			return Entry{}, err
		}
	case tar.TypeLink:
		return sc.hardLink(name, hdr)
	case tar.TypeDir:
		e.Type = tar.TypeDir
	case tar.TypeSymlink:
		if hdr.Linkname == "" {
			return Entry{}, refuse(hdr.Name, RuleMalformed, "symbolic link %s: empty target", name)
		}
		if len(hdr.Linkname) > maxPathLength {
			return Entry{}, checkLength(hdr.Name, hdr.Linkname, "symbolic link target")
		}
		e.Type, e.Linkname, e.Mode = tar.TypeSymlink, hdr.Linkname, symlinkMode
	case tar.TypeChar:
		return Entry{}, &UnsupportedFileError{Path: name, Kind: "character device"}
	case tar.TypeBlock:
		return Entry{}, &UnsupportedFileError{Path: name, Kind: "block device"}
	case tar.TypeFifo:
		return Entry{}, &UnsupportedFileError{Path: name, Kind: "named pipe (FIFO)"}
	default:
		return Entry{}, &UnsupportedFileError{Path: name, Kind: fmt.Sprintf("tar entry type %q", hdr.Typeflag)}
	}
	return e, nil
}

// regular checks a regular file and consumes its content (tarScan.content).
func (sc *tarScanner) regular(i int, e *Entry, hdr *tar.Header) error {
	if err := sc.p.checkSetuid(e.Name, tar.TypeReg, e.Mode); err != nil {
		return err
	}
	if sc.s.asIs {
		e.owner = ownerOf(hdr)
	}
	if err := sc.b.content(hdr.Name, hdr.Size); err != nil {
		return err
	}
	rerr, err := sc.s.content(i, e, sc.tr)
	if rerr != nil { // the input's fault
		return sc.readErr(rerr)
	}
	if err != nil { // ours (disk full, …)
		return fmt.Errorf("spooling %s: %w", e.Name, err)
	}
	e.Type = tar.TypeReg
	return nil
}

// hardLink is a copy of the link's target, an earlier regular file.
func (sc *tarScanner) hardLink(name string, hdr *tar.Header) (Entry, error) {
	if err := checkLength(hdr.Name, hdr.Linkname, "hard link target"); err != nil {
		return Entry{}, err
	}
	target, err := cleanName(hdr.Linkname)
	if err != nil {
		return Entry{}, refuse(hdr.Name, RuleHardLink, "hard link %s: %v", name, err)
	}
	t, ok := sc.index[target]
	if !ok || sc.entries[t].Type != tar.TypeReg {
		return Entry{}, refuse(hdr.Name, RuleHardLink, "hard link %s: target %q is not an earlier regular file", name, hdr.Linkname)
	}
	// The link's own header counts as much as a file's: extractors apply
	// it to the inode the link shares with its target.
	if err := sc.p.checkSetuid(name, tar.TypeLink, hdr.Mode&modeMask); err != nil {
		return Entry{}, err
	}
	if sc.s.asIs {
		if err := checkLinkHeader(hdr, name, sc.entries[t]); err != nil {
			return Entry{}, err
		}
	}
	if err := sc.b.content(hdr.Name, sc.entries[t].Size); err != nil {
		return Entry{}, err
	}
	e := sc.entries[t]
	e.Name = name
	return e, nil
}

// spoolFile copies r into a new file. It tells errors reading r (the
// input's) from errors writing the file (the system's).
func spoolFile(file string, r io.Reader, buf []byte) (n int64, readErr, writeErr error) {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, nil, err
	}
	er := &errReader{r: r}
	n, err = io.CopyBuffer(writerOnly{f}, er, buf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if er.err != nil {
		return n, er.err, nil
	}
	return n, nil, err
}

// errReader remembers the error its reader returned, other than io.EOF.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(b []byte) (int, error) {
	n, err := e.r.Read(b)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// cleanName returns the canonical form of a tar entry name, "" for the
// root, or a *RefusedError for names that are absolute or have a ".."
// component (escaping the root or not: a canonical layer never needs one).
func cleanName(name string) (string, error) {
	if name == "" {
		return "", refuse(name, RuleMalformed, "entry with an empty name")
	}
	if strings.HasPrefix(name, "/") {
		return "", refuse(name, RuleAbsolute, "entry %q: absolute paths are not allowed", name)
	}
	c := path.Clean(name)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", refuse(name, RuleDotDot, "entry %q: path escapes the root", name)
	}
	for part := range strings.SplitSeq(name, "/") {
		if part == ".." {
			return "", refuse(name, RuleDotDot, `entry %q: ".." components are not allowed`, name)
		}
	}
	if c == "." {
		return "", nil
	}
	return c, nil
}

// compareNames orders paths component by component ('/' sorts before every
// other byte), which puts parents before children.
func compareNames(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		ca, cb := a[i], b[i]
		if ca == cb {
			continue
		}
		if ca == '/' {
			return -1
		}
		if cb == '/' {
			return 1
		}
		if ca < cb {
			return -1
		}
		return 1
	}
	return len(a) - len(b)
}

// canonicalize sorts entries, refuses duplicates and entries below a
// non-directory (a symbolic link included: an extractor would write
// through it), and adds missing parent directories.
func canonicalize(entries []Entry) ([]Entry, error) {
	types := make(map[string]byte, len(entries))
	for _, e := range entries {
		if _, dup := types[e.Name]; dup {
			return nil, refuse(e.Name, RuleDuplicate, "duplicate entry %q", e.Name)
		}
		types[e.Name] = e.Type
	}
	// Walk up from each entry to the first parent that is listed (or
	// already added): that one's own parents are checked when its turn
	// comes (or were when it was added), so the work is linear in the
	// length of the names, not quadratic in their depth.
	n := len(entries)
	for _, e := range entries[:n] {
		if err := checkName(e.Name); err != nil {
			return nil, err
		}
	parents:
		for dir := e.Name; ; {
			i := strings.LastIndexByte(dir, '/')
			if i < 0 {
				break
			}
			dir = dir[:i]
			typ, ok := types[dir]
			switch {
			case !ok:
				types[dir] = tar.TypeDir
				entries = append(entries, Entry{Name: dir, Type: tar.TypeDir, Mode: dirModeImplicit})
			case typ == tar.TypeDir:
				break parents
			case typ == tar.TypeSymlink:
				return nil, refuse(e.Name, RuleThroughSymlink, "%s: parent %s is not a directory but a symbolic link; nothing may be written through a symbolic link", e.Name, dir)
			default:
				return nil, refuse(e.Name, RuleNotDirectory, "%s: parent %s is not a directory", e.Name, dir)
			}
		}
	}
	slices.SortFunc(entries, func(a, b Entry) int { return compareNames(a.Name, b.Name) })
	return entries, nil
}

// Write writes the canonical gzip-compressed tar of entries to w and
// returns the digest of the uncompressed tar (the layer's diffID). The
// entries may come in any order (entries itself is not changed): Write
// sorts them, adds missing parent directories (0755), keeps only the mode
// bits of the canonical form and gives symbolic links mode 0777. It
// refuses what no layer may hold (see Policy): names that are not clean
// and relative, duplicates, whiteouts, entries below a symbolic link or a
// file, and other types than regular files, directories and symbolic
// links. It applies no Policy limits: entries from ReadTar were checked
// against them already.
func Write(ctx context.Context, entries []Entry, w io.Writer) (diffID digest.Digest, err error) {
	own := make([]Entry, len(entries))
	for i, e := range entries {
		if c, err := cleanName(e.Name); err != nil || c != e.Name || c == "" {
			return "", refuse(e.Name, RuleMalformed, "entry %q: not a clean relative name", e.Name)
		}
		switch e.Type {
		case tar.TypeReg:
			if e.Open == nil {
				return "", fmt.Errorf("entry %q: a regular file without content (Open is nil)", e.Name)
			}
			e.Mode &= modeMask
		case tar.TypeDir:
			e.Mode &= modeMask
		case tar.TypeSymlink:
			e.Mode = symlinkMode
		default:
			return "", &UnsupportedFileError{Path: e.Name, Kind: fmt.Sprintf("tar entry type %q", e.Type)}
		}
		own[i] = e
	}
	return writeLayer(ctx, own, w)
}

// writeLayer is Write for entries that are clean and of the allowed types
// by construction (from a scan); it may reorder them and append to them.
func writeLayer(ctx context.Context, entries []Entry, w io.Writer) (digest.Digest, error) {
	entries, err := canonicalize(entries)
	if err != nil {
		return "", err
	}
	gz, err := gzip.NewWriterLevel(w, compressionLevel)
	if err != nil {
		return "", err
	}
	// The zero gzip.Header: no name, no comment, mtime 0, OS "unknown".
	dg := digest.SHA256.Digester()
	tw := tar.NewWriter(io.MultiWriter(gz, dg.Hash()))
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		hdr := &tar.Header{
			Typeflag: e.Type,
			Name:     e.Name,
			Linkname: e.Linkname,
			Mode:     e.Mode,
			ModTime:  layerModTime,
			Format:   tar.FormatPAX, // USTAR unless an entry needs PAX
		}
		switch e.Type {
		case tar.TypeDir:
			hdr.Name += "/"
		case tar.TypeReg:
			hdr.Size = e.Size
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return "", fmt.Errorf("writing %s: %w", e.Name, err)
		}
		if e.Type == tar.TypeReg {
			if err := copyContent(tw, e); err != nil {
				return "", err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return "", fmt.Errorf("writing tar: %w", err)
	}
	if err := gz.Close(); err != nil {
		return "", fmt.Errorf("writing gzip: %w", err)
	}
	return dg.Digest(), nil
}

// copyContent copies exactly e.Size bytes of e's content and fails if the
// file changed size since it was listed.
func copyContent(w io.Writer, e Entry) error {
	f, err := e.Open()
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.CopyN(w, f, e.Size)
	if err == io.EOF {
		return fmt.Errorf("%s: file shrank from %d to %d bytes while building the layer", e.Name, e.Size, n)
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", e.Name, err)
	}
	if extra, _ := io.CopyN(io.Discard, f, 1); extra > 0 {
		return fmt.Errorf("%s: file grew beyond %d bytes while building the layer", e.Name, e.Size)
	}
	return nil
}
