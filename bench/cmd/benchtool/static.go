package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// runStatic is the physical limit: the least a Go server can do to answer
// the same bytes. Every request opens the file, stats it and hands it to
// http.ServeContent, which copies an *os.File (sendfile on Linux). Paths
// containing /manifests/ get the manifest file, /blobs/ the blob file.
//
// With -no-sendfile the file is hidden behind a plain io.ReadSeeker, so
// net/http copies it through a 32 KiB user-space buffer instead: the same
// server without sendfile, to tell what sendfile itself costs or saves.
func runStatic(args []string) error {
	fs := flag.NewFlagSet("static", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	addrFile := fs.String("addr-file", "", "write the listening address here")
	manifest := fs.String("manifest", "", "file served for .../manifests/...")
	manifestType := fs.String("manifest-type", "application/vnd.oci.image.index.v1+json", "its Content-Type")
	blob := fs.String("blob", "", "file served for .../blobs/...")
	noSendfile := fs.Bool("no-sendfile", false, "copy through a user-space buffer instead of sendfile")
	if err := fs.Parse(args); err != nil {
		return err
	}
	serve := func(name, contentType string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			f, err := os.Open(name)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			defer f.Close()
			fi, err := f.Stat()
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", contentType)
			var content io.ReadSeeker = f
			if *noSendfile {
				content = struct{ io.ReadSeeker }{f}
			}
			http.ServeContent(w, r, "", fi.ModTime(), content)
		}
	}
	m, b := serve(*manifest, *manifestType), serve(*blob, "application/octet-stream")
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.Contains(r.URL.Path, "/manifests/"):
			m(w, r)
		case strings.Contains(r.URL.Path, "/blobs/"):
			b(w, r)
		case r.URL.Path == "/v2/":
			// Registry clients (crane) check the API version first.
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte("{}"))
		default:
			http.NotFound(w, r)
		}
	})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	if *addrFile != "" {
		if err := os.WriteFile(*addrFile, []byte(ln.Addr().String()+"\n"), 0o644); err != nil {
			return err
		}
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// runFreePort prints a port that was free on 127.0.0.1 a moment ago.
func runFreePort([]string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	return nil
}
