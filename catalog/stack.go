package catalog

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// DefaultStackName is the repository clients pull from when no stack is
// configured: env:php-8.2_node-20.
const DefaultStackName = "env"

// DefaultMaxLayers is the default limit on layers per image. Overlay storage
// drivers stop near 127 layers.
const DefaultMaxLayers = 100

// Stack is a virtual repository: base packages that every image contains,
// image defaults, package aliases, and what the tag "latest" means.
type Stack struct {
	Name string `json:"name" yaml:"name"`
	// Base packages are part of every image of the stack, before any
	// requested package. A base package that has no published release is
	// skipped.
	Base []Constraint `json:"base,omitempty" yaml:"-"`
	// Latest are the requirements the tag "latest" stands for.
	Latest []Constraint `json:"latest,omitempty" yaml:"-"`
	// Aliases map a short name to a package name: node -> nodejs.
	Aliases map[string]string `json:"aliases,omitempty" yaml:"aliases,omitempty"`
	Image   ImageDefaults     `json:"image" yaml:"image"`
	// MaxLayers bounds the number of layers of one image (0: DefaultMaxLayers).
	MaxLayers int `json:"maxLayers,omitempty" yaml:"maxLayers,omitempty"`
	// AllowOverlap lets two packages of one image write the same path with
	// different content (the upper layer wins). Off by default: such a
	// resolution is refused, because the result would depend on layer order.
	AllowOverlap bool `json:"allowOverlap,omitempty" yaml:"allowOverlap,omitempty"`
	// LayerCompression is the form the stack serves layers in: gzip (""
	// means gzip) or none (the uncompressed tar, for nodes close to the
	// registry). See CompressionNone.
	LayerCompression string `json:"layerCompression,omitempty" yaml:"layerCompression,omitempty"`
}

// ImageDefaults go into every image config of the stack.
type ImageDefaults struct {
	// Env variables; PATH here is the tail that package paths are prepended to.
	Env        map[string]string `json:"env,omitempty" yaml:"env,omitempty"`
	WorkingDir string            `json:"workingDir,omitempty" yaml:"workingDir,omitempty"`
	User       string            `json:"user,omitempty" yaml:"user,omitempty"`
	Entrypoint []string          `json:"entrypoint,omitempty" yaml:"entrypoint,omitempty"`
	Cmd        []string          `json:"cmd,omitempty" yaml:"cmd,omitempty"`
	Labels     map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
}

// DefaultPath is the PATH tail of images whose stack sets none.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// DefaultStack is the stack "env" that exists without configuration: base
// package "base" (when published), aliases node -> nodejs and
// gm -> graphicsmagick, and a shell as the command.
func DefaultStack() Stack {
	return Stack{
		Name:    DefaultStackName,
		Base:    []Constraint{{Name: "base", Range: "*"}},
		Aliases: map[string]string{"node": "nodejs", "gm": "graphicsmagick"},
		Image: ImageDefaults{
			Env: map[string]string{"PATH": DefaultPath},
			Cmd: []string{"/bin/sh"},
		},
	}
}

// Limit returns the effective layer limit.
func (s Stack) Limit() int {
	if s.MaxLayers <= 0 {
		return DefaultMaxLayers
	}
	return s.MaxLayers
}

// Validate checks names, aliases and constraints.
func (s Stack) Validate() error {
	var errs []error
	if err := ValidateName(s.Name); err != nil {
		errs = append(errs, fmt.Errorf("stack: %w", err))
	}
	for _, c := range slices.Concat(s.Base, s.Latest) {
		if err := c.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("stack %s: %w", s.Name, err))
		}
	}
	for a, n := range s.Aliases {
		if err := ValidateName(a); err != nil {
			errs = append(errs, fmt.Errorf("stack %s alias: %w", s.Name, err))
		}
		if err := ValidateName(n); err != nil {
			errs = append(errs, fmt.Errorf("stack %s alias %s: %w", s.Name, a, err))
		}
	}
	if s.MaxLayers < 0 {
		errs = append(errs, fmt.Errorf("stack %s: maxLayers %d < 0", s.Name, s.MaxLayers))
	}
	if err := validCompression(s.LayerCompression); err != nil {
		errs = append(errs, fmt.Errorf("stack %s: %w", s.Name, err))
	}
	return errors.Join(errs...)
}

// stackYAML is the file form of a Stack: constraints as strings.
//
//	name: env
//	base: [base]
//	latest: ["php ^8", "nodejs"]
//	aliases: {node: nodejs, gm: graphicsmagick}
//	image:
//	  env: {PATH: /usr/local/bin:/usr/bin:/bin, LANG: C.UTF-8}
//	  workingDir: /app
//	  cmd: [/bin/sh]
//	maxLayers: 100
//	allowOverlap: false
//	layerCompression: gzip
type stackYAML struct {
	Stack  `yaml:",inline"`
	Base   []string `yaml:"base,omitempty"`
	Latest []string `yaml:"latest,omitempty"`
}

// ParseStackYAML parses and validates a stack file. Unknown fields are errors.
func ParseStackYAML(data []byte) (Stack, error) {
	var y stackYAML
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&y); err != nil {
		return Stack{}, fmt.Errorf("parsing stack: %w", err)
	}
	s := y.Stack
	for _, list := range []struct {
		in  []string
		out *[]Constraint
	}{{y.Base, &s.Base}, {y.Latest, &s.Latest}} {
		for _, str := range list.in {
			c, err := ParseConstraint(str)
			if err != nil {
				return Stack{}, fmt.Errorf("stack %s: %w", s.Name, err)
			}
			*list.out = append(*list.out, c)
		}
	}
	if err := s.Validate(); err != nil {
		return Stack{}, err
	}
	return s, nil
}

// MarshalStackYAML renders s in the form ParseStackYAML reads.
func MarshalStackYAML(s Stack) ([]byte, error) {
	y := stackYAML{Stack: s}
	for _, c := range s.Base {
		y.Base = append(y.Base, strings.TrimSpace(c.String()))
	}
	for _, c := range s.Latest {
		y.Latest = append(y.Latest, strings.TrimSpace(c.String()))
	}
	return yaml.Marshal(y)
}
