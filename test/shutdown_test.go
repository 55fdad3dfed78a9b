package test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestGracefulShutdownFinishesDownloads: SIGTERM stops accepting new
// connections, lets a blob download in flight finish completely, and the
// process exits 0.
func TestGracefulShutdownFinishesDownloads(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	root := filepath.Join(t.TempDir(), "big")
	if err := os.MkdirAll(filepath.Join(root, "opt/big"), 0o755); err != nil {
		t.Fatal(err)
	}
	blob := make([]byte, 64<<20) // incompressible: more than loopback socket buffers hold
	if _, err := rand.Read(blob); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "opt/big/data"), blob, 0o644); err != nil {
		t.Fatal(err)
	}
	envreg(t, "publish", "--data", data, "--name", "big", "--version", "1.0.0", "--platform", "linux/amd64", "--from-dir", root)
	s := startServer(t, data)

	resp, body := s.get(t, "/v2/env/manifests/big", ocispec.MediaTypeImageManifest)
	var m ocispec.Manifest
	if err := json.Unmarshal(body, &m); err != nil || resp.StatusCode != 200 {
		t.Fatalf("manifest: %d %s", resp.StatusCode, body)
	}
	layer := m.Layers[0]

	download, err := http.Get(s.url("/v2/env/blobs/" + layer.Digest.String()))
	if err != nil {
		t.Fatal(err)
	}
	defer download.Body.Close()
	dg := digest.Canonical.Digester()
	if _, err := io.CopyN(dg.Hash(), download.Body, 1<<20); err != nil {
		t.Fatal(err)
	}

	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// New connections are refused once shutdown has begun.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.host, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting connections 5s after SIGTERM")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The download in flight completes, byte for byte.
	n, err := io.Copy(dg.Hash(), download.Body)
	if err != nil {
		t.Fatalf("download cut off after SIGTERM: %v (%d more bytes)", err, n)
	}
	if n+1<<20 != layer.Size || dg.Digest() != layer.Digest {
		t.Errorf("downloaded %d bytes with digest %s; want %d bytes, %s", n+1<<20, dg.Digest(), layer.Size, layer.Digest)
	}
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("envreg serve exited with %v after SIGTERM\n%s", err, s.logs())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("envreg serve did not exit after the download finished")
	}
}

// TestTLS serves HTTPS with --tls-cert/--tls-key and pulls through it with
// a client that trusts only that certificate.
func TestTLS(t *testing.T) {
	certFile, keyFile, pool := selfSignedCert(t)
	s := startServer(t, publishAll(t), "--tls-cert", certFile, "--tls-key", keyFile)

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get("https://" + s.host + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("https GET /v2/: %d", resp.StatusCode)
	}
	if plain, err := http.Get("http://" + s.host + "/v2/"); err == nil {
		plain.Body.Close()
		if plain.StatusCode == 200 {
			t.Error("plain HTTP answered 200 on the TLS port")
		}
	}

	ref, err := name.ParseReference(s.host + "/env:php-8.2_node-20")
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(ref, remote.WithTransport(client.Transport))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Error(err)
	}
}

// selfSignedCert writes a certificate for 127.0.0.1 and its key, and
// returns a pool that trusts it.
func selfSignedCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "envreg test"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
