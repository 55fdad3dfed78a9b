package uploads

import (
	"encoding"
	"encoding/json"
	"fmt"
	"hash"
	"slices"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/layerstore"
)

// StoredChunk is one chunk object of a shared session.
type StoredChunk struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
}

// record is a shared session's state, stored as JSON in a RecordStore
// (see the package doc).
type record struct {
	Repo    string           `json:"repo"`
	Size    int64            `json:"size"`
	Alg     digest.Algorithm `json:"alg"`
	Hash    []byte           `json:"hash"` // the running hash's MarshalBinary state
	Chunks  []StoredChunk    `json:"chunks,omitempty"`
	Writer  string           `json:"writer,omitempty"` // the lease holder's token
	Until   time.Time        `json:"until,omitzero"`   // when the lease expires
	Updated time.Time        `json:"updated"`
	// Seq grows with every write, so that no two values of a record are
	// ever equal and a compare-and-set cannot mistake an old value for
	// the current one.
	Seq uint64 `json:"seq"`
}

// newRecord is the record of a new, empty session of repo.
func newRecord(repo string, alg digest.Algorithm, now time.Time) (record, error) {
	state, err := marshalHash(alg.Hash())
	if err != nil {
		return record{}, err
	}
	return record{Repo: repo, Alg: alg, Hash: state, Updated: now, Seq: 1}, nil
}

func (r record) encode() []byte {
	b, err := json.Marshal(r)
	if err != nil {
		panic(fmt.Sprintf("encoding an upload record: %v", err)) // only plain fields: cannot happen
	}
	return b
}

// decodeRecord parses a stored record and checks what later steps rely on.
func decodeRecord(id string, raw []byte) (record, error) {
	var r record
	if err := json.Unmarshal(raw, &r); err != nil {
		return record{}, fmt.Errorf("upload %s: corrupt record: %w", id, err)
	}
	if !slices.Contains(layerstore.Algorithms, r.Alg) || r.Size < 0 {
		return record{}, fmt.Errorf("upload %s: corrupt record: algorithm %q, size %d", id, r.Alg, r.Size)
	}
	var sum int64
	for _, c := range r.Chunks {
		sum += c.Size
	}
	if sum != r.Size {
		return record{}, fmt.Errorf("upload %s: corrupt record: chunks hold %d bytes, the record says %d", id, sum, r.Size)
	}
	return r, nil
}

// leased reports whether a request holds the session's lease at now.
func (r record) leased(now time.Time) bool { return r.Writer != "" && now.Before(r.Until) }

// hasher returns the running hash, continued from the recorded state.
func (r record) hasher() (hash.Hash, error) {
	h := r.Alg.Hash()
	u, ok := h.(encoding.BinaryUnmarshaler)
	if !ok {
		return nil, fmt.Errorf("%s hash state cannot be restored", r.Alg)
	}
	if err := u.UnmarshalBinary(r.Hash); err != nil {
		return nil, fmt.Errorf("restoring the %s state of an upload: %w", r.Alg, err)
	}
	return h, nil
}

// digest is the digest of the bytes committed so far.
func (r record) digest() (digest.Digest, error) {
	h, err := r.hasher()
	if err != nil {
		return "", err
	}
	return digest.NewDigest(r.Alg, h), nil
}

func marshalHash(h hash.Hash) ([]byte, error) {
	m, ok := h.(encoding.BinaryMarshaler)
	if !ok {
		return nil, fmt.Errorf("hash %T cannot save its state", h)
	}
	return m.MarshalBinary()
}
