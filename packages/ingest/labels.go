package ingest

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/envreg/envreg/catalog"
)

// LabelPrefix starts every package label.
const LabelPrefix = "io.envreg.package."

// The package labels.
const (
	LabelName      = LabelPrefix + "name"
	LabelVersion   = LabelPrefix + "version"
	LabelPath      = LabelPrefix + "env.path"
	LabelEnvPrefix = LabelPrefix + "env."
	LabelRequires  = LabelPrefix + "requires"
	LabelConflicts = LabelPrefix + "conflicts"
	LabelAliases   = LabelPrefix + "aliases"
	LabelLabel     = LabelPrefix + "label."
)

// Labels is what the package labels of a push say.
type Labels struct {
	Name, Version       string
	Path                []string
	Env                 map[string]string
	Requires, Conflicts []string
	Aliases             []string
	Labels              map[string]string
}

// ParseLabels reads the io.envreg.package.* entries of labels (other
// keys are ignored). Every problem is reported, as "label KEY: reason".
func ParseLabels(labels map[string]string) (Labels, []string) {
	var pl Labels
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	list := func(v string) []string {
		var out []string
		for _, s := range strings.Split(v, ";") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		v := labels[k]
		if !strings.HasPrefix(k, LabelPrefix) {
			continue
		}
		switch {
		case k == LabelName:
			pl.Name = strings.TrimSpace(v)
		case k == LabelVersion:
			pl.Version = strings.TrimSpace(v)
		case k == LabelPath:
			if strings.TrimSpace(v) == "" {
				continue
			}
			for i, p := range strings.Split(v, ":") {
				if p = strings.TrimSpace(p); p == "" {
					add("label %s: entry %d is empty (an empty PATH entry means the working directory)", k, i)
					continue
				}
				pl.Path = append(pl.Path, p)
			}
		case k == LabelRequires:
			pl.Requires = list(v)
		case k == LabelConflicts:
			pl.Conflicts = list(v)
		case k == LabelAliases:
			pl.Aliases = list(v)
		case strings.HasPrefix(k, LabelEnvPrefix):
			name := strings.TrimPrefix(k, LabelEnvPrefix)
			if name == "" {
				add("label %s: names no variable (use %sVAR)", k, LabelEnvPrefix)
				continue
			}
			if pl.Env == nil {
				pl.Env = map[string]string{}
			}
			pl.Env[name] = v
		case strings.HasPrefix(k, LabelLabel):
			name := strings.TrimPrefix(k, LabelLabel)
			if name == "" {
				add("label %s: names no label (use %sKEY)", k, LabelLabel)
				continue
			}
			if pl.Labels == nil {
				pl.Labels = map[string]string{}
			}
			pl.Labels[name] = v
		default:
			add("label %s: unknown package label (known: %s, %s, %s, %sVAR, %s, %s, %s, %sKEY)", k,
				LabelName, LabelVersion, LabelPath, LabelEnvPrefix, LabelRequires, LabelConflicts, LabelAliases, LabelLabel)
		}
	}
	return pl, problems
}

// ReleaseLabels returns the package labels that describe rel's metadata
// (everything but its layers): pushing an image with them to
// packages/<name>:<version> registers the same release. `envreg publish
// --registry` puts them on the manifests it pushes.
func ReleaseLabels(rel catalog.Release) map[string]string {
	l := map[string]string{
		LabelName:    rel.Name,
		LabelVersion: rel.Version.String(),
	}
	if len(rel.Env.Path) > 0 {
		l[LabelPath] = strings.Join(rel.Env.Path, ":")
	}
	for k, v := range rel.Env.Vars {
		l[LabelEnvPrefix+k] = v
	}
	cs := func(cs []catalog.Constraint) string {
		s := make([]string, len(cs))
		for i, c := range cs {
			s[i] = c.String()
		}
		return strings.Join(s, "; ")
	}
	if len(rel.Requires) > 0 {
		l[LabelRequires] = cs(rel.Requires)
	}
	if len(rel.Conflicts) > 0 {
		l[LabelConflicts] = cs(rel.Conflicts)
	}
	if len(rel.Aliases) > 0 {
		l[LabelAliases] = strings.Join(rel.Aliases, "; ")
	}
	for k, v := range rel.Labels {
		l[LabelLabel+k] = v
	}
	return l
}
