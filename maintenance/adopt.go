package maintenance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/manifestgen"
)

// AdoptionStore is what Adopt reads and marks.
type AdoptionStore interface {
	catalog.Documents
	catalog.Compositions
	catalog.Repositories
	catalog.LegacyAdoption
	DocumentWalker
}

// Adopt gives the compositions stored before stacks kept marks
// (catalog.Compositions) their marks, pinned, so that every digest a
// client saw before the upgrade stays pullable through its stack and gc
// keeps it, as it always did. A composition is recognised by its index:
// an image index whose io.envreg.stack annotation names the stack, that no
// repository holds (a pushed document is never adopted, whatever its
// annotations say) and that its stack has not marked (a composition with
// marks is not legacy: adopting it would pin it, and gc would never
// collect it). Its manifests and their configs are marked with it.
//
// It runs once per store: it returns at once when the store records that
// it ran, unless force (envreg migrate, which copies legacy documents into
// a store that may have run it). It returns how many indexes it adopted.
func Adopt(ctx context.Context, s AdoptionStore, now time.Time, force bool) (int, error) {
	if !force {
		done, err := s.LegacyAdopted(ctx)
		if err != nil || done {
			return 0, err
		}
	}
	found, err := legacyCompositions(ctx, s)
	if err != nil {
		return 0, fmt.Errorf("adopting compositions: %w", err)
	}
	for _, l := range found {
		if err := s.MarkComposed(ctx, l.stack, now, true, l.digests...); err != nil {
			return 0, fmt.Errorf("adopting composition %s of %s: %w", l.digests[0], l.stack, err)
		}
	}
	if err := s.SetLegacyAdopted(ctx); err != nil {
		return 0, fmt.Errorf("adopting compositions: %w", err)
	}
	return len(found), nil
}

// legacy is a composition stored before stacks kept marks: its stack, and
// the digests Adopt marks (the index first, its manifests, their configs).
type legacy struct {
	stack   string
	digests []digest.Digest
}

// legacyCompositions finds the compositions Adopt adopts, changing
// nothing.
func legacyCompositions(ctx context.Context, s AdoptionStore) ([]legacy, error) {
	held, err := heldDocuments(ctx, s)
	if err != nil {
		return nil, err
	}
	var found []legacy
	err = s.WalkDocuments(ctx, func(d catalog.Document) error {
		if held[d.Digest] || !isIndex(d.MediaType) {
			return nil
		}
		var idx struct {
			Manifests []struct {
				Digest digest.Digest `json:"digest"`
			} `json:"manifests"`
			Annotations map[string]string `json:"annotations"`
		}
		if json.Unmarshal(d.Data, &idx) != nil || catalog.ValidateName(idx.Annotations[manifestgen.KeyStack]) != nil {
			return nil
		}
		l := legacy{stack: idx.Annotations[manifestgen.KeyStack], digests: []digest.Digest{d.Digest}}
		for _, m := range idx.Manifests {
			l.digests = append(l.digests, m.Digest)
		}
		found = append(found, l)
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := found[:0]
	for _, l := range found {
		switch _, err := s.Composed(ctx, l.stack, l.digests[0]); {
		case err == nil:
			continue // marked: not legacy
		case !errors.Is(err, catalog.ErrNotFound):
			return nil, err
		}
		if l.digests, err = withConfigs(ctx, s, l.digests); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

// withConfigs adds the configs of the manifests ds[1:] to ds, and drops
// what is not a valid digest.
func withConfigs(ctx context.Context, s catalog.Documents, ds []digest.Digest) ([]digest.Digest, error) {
	for _, m := range ds[1:] {
		doc, err := s.Document(ctx, m)
		if errors.Is(err, catalog.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var man struct {
			Config struct {
				Digest digest.Digest `json:"digest"`
			} `json:"config"`
		}
		if json.Unmarshal(doc.Data, &man) == nil && man.Config.Digest.Validate() == nil {
			ds = append(ds, man.Config.Digest)
		}
	}
	return validDigests(ds), nil
}

// heldDocuments returns the manifests some repository holds.
func heldDocuments(ctx context.Context, repos catalog.Repositories) (map[digest.Digest]bool, error) {
	names, err := repos.RepositoryNames(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing repositories: %w", err)
	}
	held := map[digest.Digest]bool{}
	for _, name := range names {
		recs, err := repos.Manifests(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("listing the manifests of %s: %w", name, err)
		}
		for _, r := range recs {
			held[r.Digest] = true
		}
	}
	return held, nil
}

func validDigests(ds []digest.Digest) []digest.Digest {
	out := ds[:0:0]
	for _, d := range ds {
		if catalog.ValidateMark("x", d) == nil {
			out = append(out, d)
		}
	}
	return out
}
