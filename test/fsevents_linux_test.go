package test

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"unsafe"
)

const watchMask = syscall.IN_CREATE | syscall.IN_CLOSE_WRITE | syscall.IN_MOVED_FROM | syscall.IN_MOVED_TO | syscall.IN_DELETE

// watchTree writes one line to w for every file created, written and
// closed, renamed or deleted under root, as another process makes those
// changes (inotify), until the returned stop is called. It lets a crash
// test kill a process after its Nth step on disk instead of after a
// number of milliseconds. Directories created meanwhile are watched as
// soon as their creation is seen; what happens in them before that is
// missed, which only makes the count smaller.
func watchTree(t *testing.T, root string, w io.Writer) (stop func()) {
	t.Helper()
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC | syscall.IN_NONBLOCK)
	if err != nil {
		t.Fatalf("inotify: %v", err)
	}
	// A non-blocking descriptor goes through the runtime poller, so Close
	// ends a pending Read.
	f := os.NewFile(uintptr(fd), "inotify")
	dirs := map[int]string{}
	watch := func(dir string) {
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				if wd, err := syscall.InotifyAddWatch(fd, p, watchMask); err == nil {
					dirs[wd] = p
				}
			}
			return nil
		})
	}
	watch(root)
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := f.Read(buf)
			if err != nil {
				if !errors.Is(err, os.ErrClosed) {
					fmt.Fprintf(w, "reading inotify events: %v\n", err)
				}
				return
			}
			for off := 0; off+syscall.SizeofInotifyEvent <= n; {
				ev := (*syscall.InotifyEvent)(unsafe.Pointer(&buf[off]))
				name := buf[off+syscall.SizeofInotifyEvent : off+syscall.SizeofInotifyEvent+int(ev.Len)]
				path := filepath.Join(dirs[int(ev.Wd)], string(trimNUL(name)))
				off += syscall.SizeofInotifyEvent + int(ev.Len)
				if ev.Mask&syscall.IN_ISDIR != 0 && ev.Mask&(syscall.IN_CREATE|syscall.IN_MOVED_TO) != 0 {
					watch(path)
				}
				fmt.Fprintf(w, "%#x %s\n", ev.Mask&watchMask, path)
			}
		}
	})
	return func() {
		f.Close()
		wg.Wait()
	}
}

func trimNUL(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return b
}
