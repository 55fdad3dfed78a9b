package redisstore

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseURL(t *testing.T) {
	type want struct {
		kind      string // single, sentinel, cluster
		addrs     []string
		db        int
		master    string
		user, pw  string
		sentinel  string // sentinel user:password
		tls       bool
		network   string
		dial      time.Duration
		ctxTimout bool
		name      string
	}
	for _, tc := range []struct {
		url  string
		want want
	}{
		{"redis://127.0.0.1:6390/2", want{kind: "single", addrs: []string{"127.0.0.1:6390"}, db: 2}},
		{"redis://localhost", want{kind: "single", addrs: []string{"localhost:6379"}}},
		{"rediss://u:p%40ss@redis.internal:6380/0", want{kind: "single", addrs: []string{"redis.internal:6380"}, user: "u", pw: "p@ss", tls: true}},
		{"redis://h/1?dial_timeout=3s&context_timeout_enabled=false&client_name=web", want{kind: "single", addrs: []string{"h:6379"}, db: 1, dial: 3 * time.Second, ctxTimout: false, name: "web"}},
		{"unix:///run/redis.sock?db=3", want{kind: "single", network: "unix", addrs: []string{"/run/redis.sock"}, db: 3}},
		{"redis+sentinel://s1:26380,s2/mymaster/1", want{kind: "sentinel", addrs: []string{"s1:26380", "s2:26379"}, master: "mymaster", db: 1}},
		{"redis+sentinel://:pw@[::1]:26379,[::2]/m?sentinel_username=su&sentinel_password=sp", want{kind: "sentinel", addrs: []string{"[::1]:26379", "[::2]:26379"}, master: "m", pw: "pw", sentinel: "su:sp"}},
		{"rediss+sentinel://s1/m/", want{kind: "sentinel", addrs: []string{"s1:26379"}, master: "m", tls: true}},
		{"redis+cluster://h1:7000,h2:7001,h3", want{kind: "cluster", addrs: []string{"h1:7000", "h2:7001", "h3:6379"}}},
		{"rediss+cluster://u:p@h1/0?read_only=true", want{kind: "cluster", addrs: []string{"h1:6379"}, user: "u", pw: "p", tls: true}},
	} {
		t.Run(tc.url, func(t *testing.T) {
			ep, err := parseURL(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			w := tc.want
			if w.network == "" {
				w.network = "tcp"
			}
			if w.dial == 0 {
				w.dial = 2 * time.Second
			}
			if w.name == "" {
				w.name = "envreg"
				w.ctxTimout = true
			}
			var got want
			switch {
			case ep.single != nil:
				o := ep.single
				got = want{kind: "single", addrs: []string{o.Addr}, db: o.DB, user: o.Username, pw: o.Password, tls: o.TLSConfig != nil,
					network: o.Network, dial: o.DialTimeout, ctxTimout: o.ContextTimeoutEnabled, name: o.ClientName}
			case ep.failover != nil:
				o := ep.failover
				got = want{kind: "sentinel", addrs: o.SentinelAddrs, db: o.DB, master: o.MasterName, user: o.Username, pw: o.Password, tls: o.TLSConfig != nil,
					network: "tcp", dial: o.DialTimeout, ctxTimout: o.ContextTimeoutEnabled, name: o.ClientName}
				if o.SentinelUsername != "" || o.SentinelPassword != "" {
					got.sentinel = o.SentinelUsername + ":" + o.SentinelPassword
				}
			case ep.cluster != nil:
				o := ep.cluster
				got = want{kind: "cluster", addrs: o.Addrs, user: o.Username, pw: o.Password, tls: o.TLSConfig != nil,
					network: "tcp", dial: o.DialTimeout, ctxTimout: o.ContextTimeoutEnabled, name: o.ClientName}
			}
			if g, w := fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", w); g != w {
				t.Errorf("\n got %s\nwant %s", g, w)
			}
		})
	}
}

func TestParseURLErrors(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"127.0.0.1:6379", "no scheme"},
		{"http://u:s3cret@h", "unknown scheme"},
		{"redis+ring://h", "unknown scheme"},
		{"unix+cluster:///x", "unknown scheme"},
		{"redis://u:s3cret@h/0?bogus=1", "bogus"},
		{"redis://u:s3cret@h/x", "database"},
		{"redis://u:s3cret@h/0?context_timeout_enabled=maybe", "context_timeout_enabled"},
		{"redis+sentinel://u:s3cret@h1", "names the master"},
		{"redis+sentinel://h1/m/x", "database"},
		{"redis+sentinel://h1/m/0/extra", "names the master"},
		{"redis+sentinel://h1:abc/m", "port"},
		{"redis+sentinel://h1/m?master_name=n", "master_name"},
		{"redis+sentinel://h1/m?db=1", "db"},
		{"redis+sentinel://h1/m?context_timeout_enabled=false&bogus=1", "bogus"},
		{"redis+cluster://h1/1", "only database 0"},
		{"redis+cluster://h1?addr=h2:7000", "addr"},
		{"redis+cluster://", "invalid host"},
		{"redis+cluster://h1,,h2", "invalid host"},
		{"redis+cluster://u:s3cret@h1?sentinel_password=x", "sentinel_password"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			_, err := parseURL(tc.url)
			if err == nil {
				t.Fatal("parsed")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"},
		{"redis://u:s3cret@h:1/0", "redis://u:xxxxx@h:1/0"},
		{"redis://:s3cret@h", "redis://:xxxxx@h"},
		{"redis://user@h", "redis://user@h"},
		{"redis+sentinel://u:s3cret@h1,h2/m?sentinel_password=s3cret&dial_timeout=1s", "redis+sentinel://u:xxxxx@h1,h2/m?dial_timeout=1s&sentinel_password=xxxxx"},
		{"no scheme", "(invalid URL)"},
	} {
		if got := redact(tc.in); got != tc.want {
			t.Errorf("redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestKeys(t *testing.T) {
	k := newKeys("envreg:")
	got := []string{k.generation, k.epoch, k.releases, k.stacks, k.release + "php:8.2.36", k.document + "sha256:abc", k.channel}
	want := []string{"{envreg:}generation", "{envreg:}epoch", "{envreg:}releases", "{envreg:}stacks", "{envreg:}rel:php:8.2.36", "envreg:doc:sha256:abc", "envreg:changes"}
	if !slices.Equal(got, want) {
		t.Errorf("keys:\n got %q\nwant %q", got, want)
	}
}
