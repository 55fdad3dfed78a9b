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
	Dynamic bool   // has a PT_DYNAMIC segment (not statically linked)
	Interp  string // the PT_INTERP program (the dynamic loader), "" if none
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
			switch p.Type {
			case elf.PT_DYNAMIC:
				f.Dynamic = true
			case elf.PT_INTERP:
				if p.Filesz > 4096 {
					return ELFFile{}, true, fmt.Errorf("PT_INTERP of %d bytes", p.Filesz)
				}
				b, err := io.ReadAll(p.Open())
				if err != nil {
					return ELFFile{}, true, fmt.Errorf("reading PT_INTERP: %w", err)
				}
				f.Interp = string(bytes.TrimRight(b, "\x00"))
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
	if err := runPatchelf(ctx, patchelf, file, "--force-rpath", "--set-rpath", rpath); err != nil {
		return err
	}
	if _, err := os.Stat(file); err != nil {
		return err
	}
	return nil
}

// runPatchelf runs patchelf ("": patchelf from PATH) with args on file.
func runPatchelf(ctx context.Context, patchelf, file string, args ...string) error {
	if patchelf == "" {
		patchelf = "patchelf"
	}
	cmd := exec.CommandContext(ctx, patchelf, append(args, file)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return ErrNoPatchelf
		}
		return fmt.Errorf("patchelf %s %s: %w%s", args[len(args)-2], file, err, stderrText(&stderr))
	}
	return nil
}

// SetInterpreter sets the PT_INTERP of the ELF executable file to interp,
// the dynamic loader that the kernel starts for it (e.g. a loader of a
// newer glibc than the one at /lib64/ld-linux-x86-64.so.2). patchelf is
// the program to run ("": patchelf from PATH).
func SetInterpreter(ctx context.Context, patchelf, file, interp string) error {
	return runPatchelf(ctx, patchelf, file, "--set-interpreter", interp)
}

// FixGNUProperty points the PT_GNU_PROPERTY program header of the ELF file
// at its .note.gnu.property section again after patchelf moved the
// section: patchelf 0.14 (Debian 12's) moves the notes when a longer
// DT_RPATH or PT_INTERP makes room at the start of the file, updates
// PT_NOTE but not PT_GNU_PROPERTY, which then points into the grown
// program header table. arm64 kernels read that note at exec and refuse
// the file (ENOEXEC) when it is not a GNU property note; glibc's loader
// reads it for the x86 ISA level and CET. A file without either is left
// alone. It reports whether it changed the file.
func FixGNUProperty(file string) (bool, error) {
	return editProgs(file, func(ef *elf.File, p *elf.ProgHeader) bool {
		sec := ef.Section(".note.gnu.property")
		if p.Type != elf.PT_GNU_PROPERTY || sec == nil || sec.Type != elf.SHT_NOTE ||
			p.Off == sec.Offset && p.Vaddr == sec.Addr && p.Filesz == sec.Size {
			return false
		}
		p.Off, p.Vaddr, p.Paddr, p.Filesz, p.Memsz = sec.Offset, sec.Addr, sec.Addr, sec.Size, sec.Size
		return true
	})
}

// ClearExecStack clears the executable bit of the ELF file's PT_GNU_STACK
// (what `execstack -c` does) and reports whether it was set. glibc 2.41
// and later refuse to dlopen a library that asks for an executable stack
// ("cannot enable executable stack as shared object requires"), and
// libraries built before asked for one by accident: an assembly file
// without a .note.GNU-stack section marks the whole library (bookworm's
// libde265 on armhf, which php's gd extension loads).
func ClearExecStack(file string) (bool, error) {
	return editProgs(file, func(_ *elf.File, p *elf.ProgHeader) bool {
		if p.Type != elf.PT_GNU_STACK || p.Flags&elf.PF_X == 0 {
			return false
		}
		p.Flags &^= elf.PF_X
		return true
	})
}

// editProgs rewrites the program headers of the ELF file that edit changes
// (edit reports whether it changed one), in place, and reports whether it
// wrote any.
func editProgs(file string, edit func(*elf.File, *elf.ProgHeader) bool) (bool, error) {
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		return false, err
	}
	defer f.Close()
	ef, err := elf.NewFile(f)
	if err != nil {
		return false, err
	}
	var hdr [64]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return false, err
	}
	bo := ef.ByteOrder
	var phoff, entsize uint64
	switch ef.Class {
	case elf.ELFCLASS64:
		phoff, entsize = bo.Uint64(hdr[0x20:]), uint64(bo.Uint16(hdr[0x36:]))
	case elf.ELFCLASS32:
		phoff, entsize = uint64(bo.Uint32(hdr[0x1c:])), uint64(bo.Uint16(hdr[0x2a:]))
	default:
		return false, fmt.Errorf("ELF class %s", ef.Class)
	}
	if want := map[elf.Class]uint64{elf.ELFCLASS64: 56, elf.ELFCLASS32: 32}[ef.Class]; entsize != want {
		return false, fmt.Errorf("program header entries of %d bytes, want %d", entsize, want)
	}
	changed := false
	for i, prog := range ef.Progs {
		p := prog.ProgHeader
		if !edit(ef, &p) {
			continue
		}
		ph := make([]byte, entsize)
		if ef.Class == elf.ELFCLASS64 {
			bo.PutUint32(ph[0:], uint32(p.Type))
			bo.PutUint32(ph[4:], uint32(p.Flags))
			for j, v := range []uint64{p.Off, p.Vaddr, p.Paddr, p.Filesz, p.Memsz, p.Align} {
				bo.PutUint64(ph[8+8*j:], v)
			}
		} else {
			for j, v := range []uint64{uint64(p.Type), p.Off, p.Vaddr, p.Paddr, p.Filesz, p.Memsz, uint64(p.Flags), p.Align} {
				bo.PutUint32(ph[4*j:], uint32(v))
			}
		}
		if _, err := f.WriteAt(ph, int64(phoff+uint64(i)*entsize)); err != nil {
			return false, err
		}
		changed = true
	}
	if !changed {
		return false, nil
	}
	return true, f.Close()
}
