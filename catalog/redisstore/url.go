package redisstore

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// endpoint is a parsed catalog URL: exactly one of the options is set.
type endpoint struct {
	single   *redis.Options
	failover *redis.FailoverOptions
	cluster  *redis.ClusterOptions
}

// newClient returns a client for url (see the package doc for the forms).
func newClient(url string) (redis.UniversalClient, error) {
	ep, err := parseURL(url)
	if err != nil {
		return nil, err
	}
	switch {
	case ep.failover != nil:
		return redis.NewFailoverClient(ep.failover), nil
	case ep.cluster != nil:
		return redis.NewClusterClient(ep.cluster), nil
	default:
		return redis.NewClient(ep.single), nil
	}
}

const urlForms = "want redis://[USER:PASSWORD@]HOST:PORT/DB, rediss://..., " +
	"redis+sentinel://HOST:PORT[,HOST:PORT...]/MASTER[/DB] or redis+cluster://HOST:PORT[,HOST:PORT...]"

// parseURL turns a catalog URL into go-redis options. The plain forms go
// straight to redis.ParseURL; the Sentinel and Cluster forms are rewritten
// into go-redis's own URL forms (first node as host, the others as addr=
// options) so that go-redis parses every option the same way.
func parseURL(raw string) (endpoint, error) {
	scheme, _, ok := strings.Cut(raw, "://")
	if !ok {
		return endpoint{}, fmt.Errorf("invalid catalog URL: no scheme (%s)", urlForms)
	}
	base, topology, _ := strings.Cut(scheme, "+")
	if base != "redis" && base != "rediss" && !(base == "unix" && topology == "") {
		return endpoint{}, fmt.Errorf("invalid catalog URL: unknown scheme %q (%s)", scheme, urlForms)
	}
	// go-redis's URL parsers know context_timeout_enabled only for
	// Sentinel; envreg takes it for every form.
	raw, ctxTimeout, err := takeBoolOption(raw, "context_timeout_enabled", true)
	if err != nil {
		return endpoint{}, fmt.Errorf("invalid catalog URL: %w", err)
	}
	var ep endpoint
	switch topology {
	case "":
		ep.single, err = redis.ParseURL(raw)
	case "sentinel":
		ep.failover, err = parseSentinelURL(base, raw)
	case "cluster":
		ep.cluster, err = parseClusterURL(base, raw)
	default:
		return endpoint{}, fmt.Errorf("invalid catalog URL: unknown scheme %q (%s)", scheme, urlForms)
	}
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL, password included
		}
		return endpoint{}, fmt.Errorf("invalid catalog URL: %w", err)
	}
	var t tunables
	switch {
	case ep.single != nil:
		o := ep.single
		t = tunables{&o.ContextTimeoutEnabled, &o.ClientName, &o.DialTimeout, &o.DialerRetries, &o.MaxRetries}
	case ep.failover != nil:
		o := ep.failover
		t = tunables{&o.ContextTimeoutEnabled, &o.ClientName, &o.DialTimeout, &o.DialerRetries, &o.MaxRetries}
	case ep.cluster != nil:
		o := ep.cluster
		t = tunables{&o.ContextTimeoutEnabled, &o.ClientName, &o.DialTimeout, &o.DialerRetries, &o.MaxRetries}
	}
	*t.contextTimeout = ctxTimeout
	t.defaults(query(raw))
	return ep, nil
}

// takeBoolOption removes the option name from raw's query and returns its
// value, or def when it is not there.
func takeBoolOption(raw, name string, def bool) (string, bool, error) {
	before, q, ok := strings.Cut(raw, "?")
	if !ok {
		return raw, def, nil
	}
	q, fragment, hasFragment := strings.Cut(q, "#")
	v, err := url.ParseQuery(q)
	if err != nil {
		return "", false, errors.New("invalid options")
	}
	if !v.Has(name) {
		return raw, def, nil
	}
	val, err := strconv.ParseBool(v.Get(name))
	if err != nil {
		return "", false, fmt.Errorf("option %s=%q: want true or false", name, v.Get(name))
	}
	v.Del(name)
	out := before
	if len(v) > 0 {
		out += "?" + v.Encode()
	}
	if hasFragment {
		out += "#" + fragment
	}
	return out, val, nil
}

// tunables are the options whose envreg defaults differ from go-redis's.
type tunables struct {
	contextTimeout *bool
	clientName     *string
	dialTimeout    *time.Duration
	dialerRetries  *int
	maxRetries     *int
}

// defaults sets what the URL options q do not: connections are named "envreg" in CLIENT LIST, and a Redis that
// is down is reported within milliseconds (go-redis by default dials five
// times per attempt and retries three times, about two seconds per command
// against a refused connection).
func (t tunables) defaults(q url.Values) {
	if !q.Has("client_name") {
		*t.clientName = "envreg"
	}
	if !q.Has("dial_timeout") {
		*t.dialTimeout = 2 * time.Second
	}
	if !q.Has("dialer_retries") {
		*t.dialerRetries = 1
	}
	if !q.Has("max_retries") {
		*t.maxRetries = 1
	}
}

// multiHost is a URL whose host part may list several nodes.
type multiHost struct {
	user  *url.Userinfo
	hosts []string // host:port, default port filled in
	path  []string // path segments
	query url.Values
}

// parseMultiHost splits raw by hand: net/url rejects "h1:1,h2:2" as a host
// when the first is an IPv6 literal, and a comma-separated list is not a
// host for it anyway.
func parseMultiHost(raw, defaultPort string) (multiHost, error) {
	_, rest, _ := strings.Cut(raw, "://")
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], rest[end:]
	var m multiHost
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		u, err := url.Parse("x://" + authority[:at+1] + "h")
		if err != nil {
			return multiHost{}, errors.New("invalid user information")
		}
		m.user = u.User
		authority = authority[at+1:]
	}
	for h := range strings.SplitSeq(authority, ",") {
		host, port, err := net.SplitHostPort(h)
		if err != nil { // no port
			host, port = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"), defaultPort
		}
		if host == "" || strings.ContainsAny(host, "[]/") {
			return multiHost{}, fmt.Errorf("invalid host %q in %q", h, authority)
		}
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
			return multiHost{}, fmt.Errorf("invalid port in %q", h)
		}
		m.hosts = append(m.hosts, net.JoinHostPort(host, port))
	}
	u, err := url.Parse("x://h" + tail)
	if err != nil {
		return multiHost{}, err
	}
	if u.Fragment != "" {
		return multiHost{}, errors.New("unexpected fragment")
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		m.path = strings.Split(p, "/")
	}
	m.query = u.Query()
	for _, k := range []string{"addr", "master_name", "db", "username", "password"} {
		if m.query.Has(k) {
			return multiHost{}, fmt.Errorf("option %s is not accepted here: write it in the URL's user, host or path part", k)
		}
	}
	return m, nil
}

// goRedisURL is the go-redis form of m: the first node as host, the others
// as addr= options.
func (m multiHost) goRedisURL(scheme string, user *url.Userinfo) string {
	q := m.query
	for _, h := range m.hosts[1:] {
		q.Add("addr", h)
	}
	u := url.URL{Scheme: scheme, User: user, Host: m.hosts[0], RawQuery: q.Encode()}
	return u.String()
}

func parseSentinelURL(scheme, raw string) (*redis.FailoverOptions, error) {
	m, err := parseMultiHost(raw, "26379")
	if err != nil {
		return nil, err
	}
	if len(m.path) < 1 || len(m.path) > 2 {
		return nil, errors.New("a Sentinel URL names the master and optionally the database: redis+sentinel://HOST:PORT[,HOST:PORT...]/MASTER[/DB]")
	}
	db := 0
	if len(m.path) == 2 {
		if db, err = strconv.Atoi(m.path[1]); err != nil || db < 0 {
			return nil, fmt.Errorf("invalid database number %q", m.path[1])
		}
	}
	// go-redis's failover URL carries the Sentinels' credentials in the
	// user part; ours carries the data servers' (see the package doc).
	var sentinelUser *url.Userinfo
	if m.query.Has("sentinel_username") || m.query.Has("sentinel_password") {
		sentinelUser = url.UserPassword(m.query.Get("sentinel_username"), m.query.Get("sentinel_password"))
		m.query.Del("sentinel_username")
		m.query.Del("sentinel_password")
	}
	m.query.Set("master_name", m.path[0])
	m.query.Set("db", strconv.Itoa(db))
	o, err := redis.ParseFailoverURL(m.goRedisURL(scheme, sentinelUser))
	if err != nil {
		return nil, err
	}
	if m.user != nil {
		o.Username = m.user.Username()
		o.Password, _ = m.user.Password()
	}
	return o, nil
}

func parseClusterURL(scheme, raw string) (*redis.ClusterOptions, error) {
	m, err := parseMultiHost(raw, "6379")
	if err != nil {
		return nil, err
	}
	if len(m.path) > 1 || len(m.path) == 1 && m.path[0] != "0" {
		return nil, errors.New("a Redis Cluster has only database 0: redis+cluster://HOST:PORT[,HOST:PORT...]")
	}
	return redis.ParseClusterURL(m.goRedisURL(scheme, m.user))
}

// query returns the options of a URL, or nil.
func query(raw string) url.Values {
	_, q, ok := strings.Cut(raw, "?")
	if !ok {
		return nil
	}
	q, _, _ = strings.Cut(q, "#")
	v, _ := url.ParseQuery(q)
	return v
}

// redact returns raw with the password (in the user part or an option)
// replaced by "xxxxx", for messages and logs.
func redact(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return "(invalid URL)"
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], rest[end:]
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		user, _, hasPassword := strings.Cut(authority[:at], ":")
		if hasPassword {
			user += ":xxxxx"
		}
		authority = user + "@" + authority[at+1:]
	}
	if before, q, ok := strings.Cut(tail, "?"); ok {
		v, err := url.ParseQuery(q)
		if err != nil {
			return scheme + "://" + authority + before + "?(invalid options)"
		}
		for k := range v {
			if strings.Contains(k, "password") {
				v.Set(k, "xxxxx")
			}
		}
		tail = before + "?" + v.Encode()
	}
	return scheme + "://" + authority + tail
}
