package packages

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/envreg/envreg/packages/internal/debian"
)

// patchelfTool is the patchelf a run uses, found or fetched once.
type patchelfTool struct {
	mu   sync.Mutex
	path string
}

// patchelf returns the patchelf that sets the DT_RPATH of relocated ELF
// files: the machine's when it is installed, else Debian's patchelf for
// this machine's architecture from the Debian sources (DebianSources, or
// the machine's apt sources), downloaded and checked like any package and
// unpacked once into the cache (debian/tools/patchelf_VERSION). So a
// fresh Debian machine publishes the bundled recipes without installing
// anything; patchelf needs only libc and libstdc++, which it has.
func (p *Publisher) patchelf(ctx context.Context) (string, error) {
	p.tool.mu.Lock()
	defer p.tool.mu.Unlock()
	if p.tool.path != "" {
		return p.tool.path, nil
	}
	if path, err := exec.LookPath("patchelf"); err == nil {
		p.tool.path = path
		return path, nil
	}
	path, err := p.fetchPatchelf(ctx)
	if err != nil {
		return "", fmt.Errorf("%w; fetching Debian's patchelf for this machine failed too: %w", debian.ErrNoPatchelf, err)
	}
	p.log().InfoContext(ctx, "using Debian's patchelf from the archive", "path", path)
	p.tool.path = path
	return path, nil
}

func (p *Publisher) fetchPatchelf(ctx context.Context) (string, error) {
	arch, ok := map[string]string{"amd64": "amd64", "arm64": "arm64", "arm": "armhf", "386": "i386", "ppc64le": "ppc64el", "s390x": "s390x", "riscv64": "riscv64"}[runtime.GOARCH]
	if !ok {
		return "", fmt.Errorf("no Debian architecture for %s", runtime.GOARCH)
	}
	a, err := p.apt(arch, &DebianSource{})
	if err != nil {
		return "", err
	}
	pkgs, err := a.Resolve(ctx, []debian.Request{{Name: "patchelf"}}, nil)
	if err != nil {
		return "", err
	}
	var pk *debian.Package
	for i := range pkgs {
		if pkgs[i].Name == "patchelf" {
			pk = &pkgs[i]
		}
	}
	if pk == nil {
		return "", errors.New("apt resolved no patchelf package")
	}
	dir, err := p.cacheDir()
	if err != nil {
		return "", err
	}
	tool := filepath.Join(dir, "tools", "patchelf_"+strings.NewReplacer(":", "%3a", "/", "_").Replace(pk.Version))
	if fi, err := os.Stat(tool); err == nil && fi.Mode().IsRegular() {
		return tool, nil
	}
	if err := a.Fetch(ctx, []debian.Package{*pk}); err != nil {
		return "", err
	}
	return tool, unpackFile(ctx, pk.File, "usr/bin/patchelf", tool)
}

// unpackFile writes the regular file name of the .deb file deb to dst
// (executable), through a temporary file and a rename.
func unpackFile(ctx context.Context, deb, name, dst string) error {
	data, err := debian.OpenData(ctx, deb)
	if err != nil {
		return err
	}
	defer data.Close()
	tr := tar.NewReader(data)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return fmt.Errorf("%s has no %s", filepath.Base(deb), name)
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", filepath.Base(deb), err)
		}
		if strings.TrimPrefix(h.Name, "./") != name || h.Typeflag != tar.TypeReg {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		f, err := os.CreateTemp(filepath.Dir(dst), ".tmp-"+filepath.Base(dst)+"-*")
		if err != nil {
			return err
		}
		defer os.Remove(f.Name())
		_, err = io.Copy(f, tr)
		if err == nil {
			err = f.Chmod(0o755)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("unpacking %s: %w", name, err)
		}
		return os.Rename(f.Name(), dst)
	}
}
