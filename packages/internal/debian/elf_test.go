package debian

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestFixGNUProperty: patchelf 0.14 moves .note.gnu.property when a long
// DT_RPATH grows the program header table and leaves PT_GNU_PROPERTY
// pointing into that table (an arm64 kernel then refuses the file);
// FixGNUProperty points it at the section again, and the file still runs.
func TestFixGNUProperty(t *testing.T) {
	if _, err := exec.LookPath("patchelf"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("patchelf is required in CI: %v", err)
		}
		t.Skip(err)
	}
	file := copyOfTrue(t)
	prop := func() (*elf.Prog, *elf.Section) {
		t.Helper()
		ef, err := elf.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		defer ef.Close()
		i := slices.IndexFunc(ef.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_GNU_PROPERTY })
		sec := ef.Section(".note.gnu.property")
		if i < 0 || sec == nil {
			t.Skip("/bin/true has no PT_GNU_PROPERTY")
		}
		return ef.Progs[i], sec
	}
	prop()
	long := "/opt/envreg/php-8.2.36+1.deb12u1/usr/lib/x86_64-linux-gnu:" + strings.Repeat("/opt/envreg/long", 20)
	if err := SetRPath(t.Context(), "", file, long); err != nil {
		t.Fatal(err)
	}
	if p, sec := prop(); p.Off == sec.Offset {
		t.Logf("this patchelf kept PT_GNU_PROPERTY at its section (offset %#x)", p.Off)
	}
	changed, err := FixGNUProperty(file)
	if err != nil {
		t.Fatal(err)
	}
	p, sec := prop()
	if p.Off != sec.Offset || p.Vaddr != sec.Addr || p.Filesz != sec.Size || p.Memsz != sec.Size {
		t.Errorf("PT_GNU_PROPERTY at %#x (vaddr %#x, %d bytes), .note.gnu.property at %#x (addr %#x, %d bytes)",
			p.Off, p.Vaddr, p.Filesz, sec.Offset, sec.Addr, sec.Size)
	}
	// The segment holds a GNU property note: n_type 5, name "GNU".
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	note := data[p.Off : p.Off+16]
	if note[8] != 5 || string(note[12:15]) != "GNU" {
		t.Errorf("PT_GNU_PROPERTY holds % x, want a GNU property note", note)
	}
	if err := exec.Command(file).Run(); err != nil {
		t.Errorf("the patched true does not run: %v", err)
	}
	if again, err := FixGNUProperty(file); err != nil || again {
		t.Errorf("a second FixGNUProperty changed %v, err %v; want nothing to do", again, err)
	}
	t.Logf("changed: %v", changed)
}

// TestClearExecStack: a library whose PT_GNU_STACK asks for an executable
// stack loses the mark (glibc 2.41 would refuse to dlopen it); one without
// it is left alone.
func TestClearExecStack(t *testing.T) {
	file := copyOfTrue(t)
	flags := func() elf.ProgFlag {
		t.Helper()
		ef, err := elf.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		defer ef.Close()
		i := slices.IndexFunc(ef.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_GNU_STACK })
		if i < 0 {
			t.Skip("/bin/true has no PT_GNU_STACK")
		}
		return ef.Progs[i].Flags
	}
	if changed, err := ClearExecStack(file); err != nil || changed {
		t.Fatalf("ClearExecStack of a file without the mark: changed %v, err %v", changed, err)
	}
	// Mark it, as an assembly file without .note.GNU-stack would.
	if _, err := editProgs(file, func(_ *elf.File, p *elf.ProgHeader) bool {
		if p.Type != elf.PT_GNU_STACK {
			return false
		}
		p.Flags |= elf.PF_X
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if f := flags(); f&elf.PF_X == 0 {
		t.Fatalf("marking failed: %v", f)
	}
	if changed, err := ClearExecStack(file); err != nil || !changed {
		t.Fatalf("ClearExecStack: changed %v, err %v", changed, err)
	}
	if f := flags(); f != elf.PF_R|elf.PF_W {
		t.Errorf("PT_GNU_STACK flags %v, want PF_R+PF_W", f)
	}
	if err := exec.Command(file).Run(); err != nil {
		t.Errorf("the edited true does not run: %v", err)
	}
}

// copyOfTrue copies /bin/true, a dynamically linked ELF executable of this
// machine, into a temporary file and returns its path.
func copyOfTrue(t *testing.T) string {
	t.Helper()
	sample, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Skip(err)
	}
	file := filepath.Join(t.TempDir(), "true")
	if err := os.WriteFile(file, sample, 0o755); err != nil {
		t.Fatal(err)
	}
	return file
}
