package auth

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/envreg/envreg/server/registry"
)

// acl is a loaded access list: rules that grant, never deny.
type acl struct {
	rules []rule
}

type rule struct {
	user     string // "*": any authenticated user
	patterns [][]string
	actions  map[string]bool
}

// aclFile is the YAML document.
type aclFile struct {
	Access []struct {
		User         string   `yaml:"user"`
		Repositories []string `yaml:"repositories"`
		Actions      []string `yaml:"actions"`
	} `yaml:"access"`
}

func loadACL(file string) (*acl, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading ACL file: %w", err)
	}
	a, err := parseACL(data)
	if err != nil {
		return nil, fmt.Errorf("ACL file %s: %w", file, err)
	}
	return a, nil
}

func parseACL(data []byte) (*acl, error) {
	var f aclFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New(`is empty (write "access: []" to grant users nothing)`)
		}
		return nil, err
	}
	a := &acl{}
	for i, r := range f.Access {
		n := i + 1
		if r.User == "" {
			return nil, fmt.Errorf("rule %d: no user (use \"*\" for any authenticated user)", n)
		}
		if len(r.Repositories) == 0 {
			return nil, fmt.Errorf("rule %d (user %q): no repositories", n, r.User)
		}
		if len(r.Actions) == 0 {
			return nil, fmt.Errorf("rule %d (user %q): no actions", n, r.User)
		}
		ru := rule{user: r.User, actions: map[string]bool{}}
		for _, p := range r.Repositories {
			comps, err := parsePattern(p)
			if err != nil {
				return nil, fmt.Errorf("rule %d (user %q): repository pattern %q: %w", n, r.User, p, err)
			}
			ru.patterns = append(ru.patterns, comps)
		}
		for _, act := range r.Actions {
			switch act {
			case registry.ActionPull, registry.ActionPush, registry.ActionDelete:
				ru.actions[act] = true
			case "*":
				ru.actions[registry.ActionPull] = true
				ru.actions[registry.ActionPush] = true
				ru.actions[registry.ActionDelete] = true
			default:
				return nil, fmt.Errorf("rule %d (user %q): unknown action %q (want pull, push, delete or *)", n, r.User, act)
			}
		}
		a.rules = append(a.rules, ru)
	}
	return a, nil
}

// allows reports whether some rule grants user action on the repository.
func (a *acl) allows(user, repo, action string) bool {
	name := strings.Split(repo, "/")
	for _, r := range a.rules {
		if (r.user != user && r.user != "*") || !r.actions[action] {
			continue
		}
		for _, p := range r.patterns {
			if matchComponents(p, name) {
				return true
			}
		}
	}
	return false
}

// parsePattern splits a repository pattern into components and checks
// each: non-empty, a valid path.Match pattern, and "**" only as a whole
// component.
func parsePattern(p string) ([]string, error) {
	if p == "" {
		return nil, errors.New("empty")
	}
	comps := strings.Split(p, "/")
	for _, c := range comps {
		switch {
		case c == "":
			return nil, errors.New("empty path component (leading, trailing or double '/')")
		case c == "**":
		case strings.Contains(c, "**"):
			return nil, fmt.Errorf("%q: ** must be a whole path component", c)
		default:
			if _, err := path.Match(c, ""); err != nil {
				return nil, fmt.Errorf("%q: %w", c, err)
			}
		}
	}
	return comps, nil
}

// matchComponents reports whether name (a repository name split at '/')
// matches pattern: each pattern component matches one name component with
// path.Match, except "**", which matches any number of components, none
// included. It is dynamic programming over (pattern prefix, name prefix),
// so several "**" cost O(len(pattern)·len(name)), not exponential
// backtracking.
func matchComponents(pattern, name []string) bool {
	// cur[j]: the pattern components seen so far match name[:j].
	cur := make([]bool, len(name)+1)
	next := make([]bool, len(name)+1)
	cur[0] = true
	for _, p := range pattern {
		if p == "**" {
			seen := false
			for j := range cur {
				seen = seen || cur[j]
				next[j] = seen
			}
		} else {
			next[0] = false
			for j := 1; j <= len(name); j++ {
				next[j] = false
				if cur[j-1] {
					ok, _ := path.Match(p, name[j-1])
					next[j] = ok
				}
			}
		}
		cur, next = next, cur
	}
	return cur[len(name)]
}
