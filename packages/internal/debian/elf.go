package debian

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
)

// Multiarch returns the multiarch tuple of a Debian architecture, the
// directory name of its libraries (/usr/lib/x86_64-linux-gnu).
func Multiarch(arch string) (string, error) {
	if a, ok := archs[arch]; ok {
		return a.tuple, nil
	}
	return "", fmt.Errorf("no multiarch tuple known for Debian architecture %s", arch)
}

var archs = map[string]struct {
	tuple   string
	machine elf.Machine
}{
	"amd64":    {"x86_64-linux-gnu", elf.EM_X86_64},
	"arm64":    {"aarch64-linux-gnu", elf.EM_AARCH64},
	"armhf":    {"arm-linux-gnueabihf", elf.EM_ARM},
	"armel":    {"arm-linux-gnueabi", elf.EM_ARM},
	"i386":     {"i386-linux-gnu", elf.EM_386},
	"ppc64el":  {"powerpc64le-linux-gnu", elf.EM_PPC64},
	"s390x":    {"s390x-linux-gnu", elf.EM_S390},
	"riscv64":  {"riscv64-linux-gnu", elf.EM_RISCV},
	"mips64el": {"mips64el-linux-gnuabi64", elf.EM_MIPS},
}

// ELFFile describes an ELF file that the dynamic loader links: an
// executable or shared object with a dynamic section.
type ELFFile struct {
	Machine elf.Machine
	Dynamic bool // has a PT_DYNAMIC segment (not statically linked)
}

// ReadELF reports whether r holds an ELF file and, if so, its machine and
// whether it is dynamically linked. A file that is not ELF gives ok false
// and no error; a file with the ELF magic that cannot be parsed is an
// error.
func ReadELF(r io.ReaderAt) (f ELFFile, ok bool, err error) {
	var magic [4]byte
	if _, err := r.ReadAt(magic[:], 0); err != nil || !bytes.Equal(magic[:], []byte(elf.ELFMAG)) {
		return ELFFile{}, false, nil
	}
	ef, err := elf.NewFile(r)
	if err != nil {
		return ELFFile{}, true, err
	}
	f.Machine = ef.Machine
	if ef.Type == elf.ET_EXEC || ef.Type == elf.ET_DYN {
		for _, p := range ef.Progs {
			if p.Type == elf.PT_DYNAMIC {
				f.Dynamic = true
			}
		}
	}
	return f, true, nil
}

// CheckMachine reports whether an ELF machine is the one of arch.
func CheckMachine(arch string, m elf.Machine) error {
	a, ok := archs[arch]
	if !ok {
		return fmt.Errorf("no ELF machine known for Debian architecture %s", arch)
	}
	if a.machine != m {
		return fmt.Errorf("ELF machine %s, want %s for %s", m, a.machine, arch)
	}
	return nil
}

// ErrNoPatchelf reports that patchelf, which SetRPath runs, is missing.
var ErrNoPatchelf = errors.New("patchelf not found: install Debian's patchelf (apt-get install patchelf) to publish packages that carry their own libraries")

// SetRPath sets the DT_RPATH of the ELF file to rpath (directories
// separated by ':'), replacing a DT_RUNPATH or DT_RPATH it has. It runs
// Debian's patchelf with --force-rpath: DT_RPATH, unlike DT_RUNPATH,
// applies to the whole tree of dependencies the file loads (libxml2 loaded
// by php finds libicuuc.so.72 through php's RPATH) and is not overridden
// by LD_LIBRARY_PATH.
//
// patchelf is the program to run ("": patchelf from PATH).
func SetRPath(ctx context.Context, patchelf, file, rpath string) error {
	if patchelf == "" {
		patchelf = "patchelf"
	}
	cmd := exec.CommandContext(ctx, patchelf, "--force-rpath", "--set-rpath", rpath, file)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return ErrNoPatchelf
		}
		return fmt.Errorf("patchelf --set-rpath %s: %w%s", file, err, stderrText(&stderr))
	}
	if _, err := os.Stat(file); err != nil {
		return err
	}
	return nil
}
