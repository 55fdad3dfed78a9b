package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/envreg/envreg/server/registry"
)

// printConfig writes the effective deployment settings of fs (defaults <
// config file < ENVREG_* < flags, as parseFlags applied them) as the YAML
// a --config file takes, with credentials in URLs masked.
func printConfig(w io.Writer, fs *flag.FlagSet) error {
	settings := yaml.Node{Kind: yaml.MappingNode}
	fs.VisitAll(func(f *flag.Flag) {
		if !envFlags[f.Name] {
			return
		}
		value := f.Value.String()
		if g, ok := f.Value.(flag.Getter); ok {
			switch v := g.Get().(type) {
			case time.Duration:
				value = v.String()
			case string:
				value = maskURL(v)
			}
		}
		v := &yaml.Node{Kind: yaml.ScalarNode, Value: value}
		if value == "" {
			v.Style = yaml.DoubleQuotedStyle // "" rather than null
		}
		settings.Content = append(settings.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: f.Name}, v)
	})
	out, err := yaml.Marshal(&settings)
	if err != nil {
		return err
	}
	_, err = w.Write(out)
	return err
}

// maskURL hides the password of a URL ("redis://u:xxxxx@h"); anything
// else is returned as it is.
func maskURL(s string) string {
	if !strings.Contains(s, "://") || !strings.Contains(s, "@") {
		return s
	}
	return redact(s)
}

// validateServe checks every serve setting that can be checked before
// anything is opened, and reports all problems at once, each naming its
// key, so that an invalid config fails at start-up rather than at the
// first request.
func validateServe(fs *flag.FlagSet) error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, a...)))
	}
	get := func(name string) string { return fs.Lookup(name).Value.String() }
	var level slog.Level
	if err := level.UnmarshalText([]byte(get("log-level"))); err != nil {
		bad("log-level", "%q is not debug, info, warn or error", get("log-level"))
	}
	if f := get("log-format"); f != "text" && f != "json" {
		bad("log-format", "%q is not text or json", f)
	}
	if _, err := registry.ParseSendfileMode(get("sendfile")); err != nil {
		bad("sendfile", "%v", err)
	}
	if _, _, err := net.SplitHostPort(get("addr")); err != nil {
		bad("addr", "%q is not host:port (%v)", get("addr"), err)
	}
	if s := urlScheme(get("catalog")); s != "" && s != "redis" && s != "rediss" && s != "redis+sentinel" && s != "redis+cluster" {
		bad("catalog", "unsupported scheme %q (want redis://, rediss://, redis+sentinel:// or redis+cluster://)", s)
	}
	if s := urlScheme(get("blobs")); s != "" && s != "s3" {
		bad("blobs", "unsupported scheme %q (want s3://)", s)
	}
	if (get("tls-cert") == "") != (get("tls-key") == "") {
		bad("tls-cert", "tls-cert and tls-key go together")
	}
	fs.VisitAll(func(f *flag.Flag) {
		g, ok := f.Value.(flag.Getter)
		if !ok || !envFlags[f.Name] {
			return
		}
		switch v := g.Get().(type) {
		case time.Duration:
			if v < 0 {
				bad(f.Name, "%s is negative", v)
			}
		case int:
			if v < 0 {
				bad(f.Name, "%d is negative", v)
			}
		case int64:
			if v < 0 {
				bad(f.Name, "%d is negative", v)
			}
		}
	})
	if len(errs) > 0 {
		return usagef("invalid configuration: %v", errors.Join(errs...))
	}
	return nil
}
