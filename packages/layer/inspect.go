package layer

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// mediaTypeDockerLayerGzip is the Docker (schema 2) gzip layer media type;
// manifestgen.MediaTypeDockerLayerGzip is the same string (this package
// does not import manifestgen, which depends on the resolver).
const mediaTypeDockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"

// IsGzip reports whether mediaType is a gzip-compressed layer that
// may be registered as a package layer: the OCI or the Docker one.
// Uncompressed, zstd, foreign and non-distributable layers are not.
func IsGzip(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageLayerGzip || mediaType == mediaTypeDockerLayerGzip
}

// Inspect checks a layer that is registered as it is, byte for byte
// (a layer pushed to packages/<name>), and returns its diffID (the SHA-256
// digest of the uncompressed tar) and its files in the Files format.
// It reads r once, streaming: nothing is spooled or kept but the entry
// list.
//
// The layer must have a gzip media type (see IsGzip) and be gzip
// data. Its entries follow the same rules as NormalizeTar input (see
// Policy): the checks, refusals and limits are the same, and a refused
// layer gives a *RefusedError or *UnsupportedFileError naming the entry,
// both wrapping ErrRefused. Because the layer is not rewritten into the
// canonical form, what normalizing would drop is checked as well:
//
//   - a root entry ("./") is refused unless it is a directory with mode
//     0755 owned by 0:0, since it would set the mode and owner of / in
//     every image that contains the package;
//   - extended attributes are refused except user.*: security.capability
//     (file capabilities) is a setuid bit by another name and follows
//     AllowSetuid; trusted.* (overlay opaque markers are whiteouts by
//     another name), security.* and ACLs would change what the files
//     allow in every image;
//   - PAX global headers may carry a comment only: extractors disagree on
//     whether their records apply to later entries.
//
// Hard links stay hard links (their targets were checked to be earlier
// regular files of the layer); their Files entry is their target's. A
// link's own header must repeat its target's mode, owner (numbers and
// names) and extended attributes (see checkLinkHeader): extractors that
// apply it would otherwise change the target. Owners (uid, gid) are kept
// as pushed.
func (p Policy) Inspect(ctx context.Context, r io.Reader, mediaType string) (diffID digest.Digest, files map[string]string, err error) {
	diffID, files, err = p.inspect(ctx, r, mediaType)
	if err != nil {
		return "", nil, fmt.Errorf("inspecting layer: %w", err)
	}
	return diffID, files, nil
}

func (p Policy) inspect(ctx context.Context, r io.Reader, mediaType string) (digest.Digest, map[string]string, error) {
	if err := CheckMediaType(mediaType); err != nil {
		return "", nil, err
	}
	br := bufio.NewReaderSize(r, 64<<10)
	magic, _ := br.Peek(10)
	if !bytes.HasPrefix(magic, gzipMagic) {
		for _, o := range otherMagic {
			if hasMagic(magic, o.magic) {
				return "", nil, refuse("", RuleMalformed, "layer is %s-compressed, but its media type %s says gzip", o.name, mediaType)
			}
		}
		return "", nil, refuse("", RuleMalformed, "layer is not gzip data (it starts with % x), but its media type %s says gzip", magic[:min(len(magic), 4)], mediaType)
	}
	dg := digest.SHA256.Digester()
	entries, err := p.scanTar(ctx, br, tarScan{content: hashContent(), raw: dg.Hash(), asIs: true})
	if err != nil {
		return "", nil, err
	}
	files := map[string]string{}
	for _, e := range entries {
		switch e.Type {
		case tar.TypeReg:
			files[e.Name] = fmt.Sprintf("%s %04o", e.sum, e.Mode&modeMask)
		case tar.TypeSymlink:
			files[e.Name] = "-> " + e.Linkname
		}
	}
	// Duplicates, entries below a symbolic link or a file: the checks of
	// the canonical form (it adds the implied directories and sorts,
	// which no longer matters here).
	if _, err := canonicalize(entries); err != nil {
		return "", nil, err
	}
	return dg.Digest(), files, nil
}

// CheckMediaType refuses, with a *RefusedError (RuleMediaType) that says
// what to push instead, a media type that IsGzip does not accept.
func CheckMediaType(mediaType string) error {
	if IsGzip(mediaType) {
		return nil
	}
	return refuse("", RuleMediaType, "layer media type %q is not accepted: %s", mediaType, mediaTypeAdvice(mediaType))
}

// mediaTypeAdvice says what to push instead of a refused layer media type.
func mediaTypeAdvice(mt string) string {
	const want = "push a gzip-compressed layer (" + ocispec.MediaTypeImageLayerGzip + ")"
	switch {
	case strings.Contains(mt, "zstd"):
		return "zstd layers are not registered as packages; " + want
	case strings.Contains(mt, "nondistributable") || strings.Contains(mt, "foreign"):
		return "foreign (non-distributable) layers are not registered as packages; " + want
	case strings.HasSuffix(mt, ".tar") || strings.HasSuffix(mt, "+tar"):
		return "uncompressed layers are not registered as packages; " + want
	}
	return want
}

// checkRoot refuses a root entry of a pushed layer that would change / in
// the image.
func checkRoot(hdr *tar.Header) error {
	if hdr.Mode&modeMask == 0o755 && hdr.Uid == 0 && hdr.Gid == 0 {
		return nil
	}
	return refuse(hdr.Name, RuleRoot, "entry %q: a root directory with mode %04o and owner %d:%d would change / in every image that contains the package; leave the root out of the layer (or make it 0755 root:root)",
		hdr.Name, hdr.Mode&modeMask, hdr.Uid, hdr.Gid)
}

// checkGlobalHeader refuses a PAX global header with records other than a
// comment.
func checkGlobalHeader(hdr *tar.Header) error {
	for _, k := range slices.Sorted(maps.Keys(hdr.PAXRecords)) {
		if k != "comment" {
			return refuse(hdr.Name, RuleMalformed, "PAX global header %q sets %q: extractors disagree on whether global records apply to later entries, so a pushed layer may not carry them", hdr.Name, k)
		}
	}
	return nil
}

// PAX record prefixes of extended attributes and ACLs (GNU tar, star,
// libarchive).
var (
	xattrPrefixes = []string{"SCHILY.xattr.", "LIBARCHIVE.xattr.", "RHT."}
	aclPrefixes   = []string{"SCHILY.acl.", "LIBARCHIVE.acl."}
)

// checkRecords refuses extended attributes (but user.*, and
// security.capability when setuid files are allowed) and ACLs in the PAX
// records of an entry of a pushed layer.
func (p Policy) checkRecords(hdr *tar.Header) error {
	for _, k := range slices.Sorted(maps.Keys(hdr.PAXRecords)) {
		for _, pre := range aclPrefixes {
			if strings.HasPrefix(k, pre) {
				return refuse(hdr.Name, RuleXattr, "%s: access control list (PAX record %s) refused; a package layer's permissions are its modes", shorten(hdr.Name), k)
			}
		}
		attr := ""
		for _, pre := range xattrPrefixes {
			if a, ok := strings.CutPrefix(k, pre); ok {
				attr = a
				break
			}
		}
		switch {
		case attr == "" || strings.HasPrefix(attr, "user."):
		case attr == "security.capability":
			if !p.AllowSetuid {
				return refuse(hdr.Name, RuleSetuid, "%s: file capabilities (extended attribute security.capability) refused; like a setuid bit they hand privileges to every image that contains the package (allow with Policy.AllowSetuid)", shorten(hdr.Name))
			}
		default:
			return refuse(hdr.Name, RuleXattr, "%s: extended attribute %s refused; a package layer may carry user.* attributes only", shorten(hdr.Name), attr)
		}
	}
	return nil
}

// owner is what the header of a regular file of a pushed layer says
// about the file besides its mode: its owner, by number and by name, and
// its extended attributes and ACLs (their PAX records, in canonical form).
type owner struct {
	uid, gid     int
	uname, gname string
	attrs        string
}

// ownerOf reads the owner and the attribute records of hdr.
func ownerOf(hdr *tar.Header) *owner {
	o := &owner{uid: hdr.Uid, gid: hdr.Gid, uname: hdr.Uname, gname: hdr.Gname}
	var attrs strings.Builder
	for _, k := range slices.Sorted(maps.Keys(hdr.PAXRecords)) {
		if hasAnyPrefix(k, xattrPrefixes) || hasAnyPrefix(k, aclPrefixes) {
			fmt.Fprintf(&attrs, "%s=%q ", k, hdr.PAXRecords[k])
		}
	}
	o.attrs = strings.TrimSuffix(attrs.String(), " ")
	return o
}

func hasAnyPrefix(s string, prefixes []string) bool {
	return slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(s, p) })
}

// checkLinkHeader refuses a hard link of a pushed layer whose header
// gives another mode, owner or extended attributes than its target's
// header. A hard link is the same inode as its target, and extractors
// disagree on its header: Python's tarfile, containerd and moby chown,
// chmod and set the attributes of the link's path, which changes the
// target too; others ignore them. Since a pushed layer is served as it
// is, the only unambiguous link is one whose header repeats its target's
// (as an archiver that takes both from one stat(2) of the file writes
// it), and the file list recorded for it (the target's) is then what
// every extractor produces.
func checkLinkHeader(hdr *tar.Header, name string, target Entry) error {
	const why = "a hard link shares its target's inode, and extractors that apply the link's header would change the target"
	if mode := hdr.Mode & modeMask; mode != target.Mode {
		return refuse(hdr.Name, RuleHardLink, "hard link %s: its header says mode %04o, its target %s has %04o; %s", name, mode, target.Name, target.Mode, why)
	}
	o, t := ownerOf(hdr), target.owner
	switch {
	case o.uid != t.uid || o.gid != t.gid:
		return refuse(hdr.Name, RuleHardLink, "hard link %s: its header says owner %d:%d, its target %s is owned by %d:%d; %s", name, o.uid, o.gid, target.Name, t.uid, t.gid, why)
	case o.uname != t.uname || o.gname != t.gname:
		return refuse(hdr.Name, RuleHardLink, "hard link %s: its header names owner %q:%q, its target %s %q:%q; %s", name, o.uname, o.gname, target.Name, t.uname, t.gname, why)
	case o.attrs != t.attrs:
		return refuse(hdr.Name, RuleXattr, "hard link %s: its header's extended attributes [%s] differ from those of its target %s [%s]; %s", name, shorten(o.attrs), target.Name, shorten(t.attrs), why)
	}
	return nil
}
