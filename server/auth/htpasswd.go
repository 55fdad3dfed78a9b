package auth

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// MaxBcryptCost is the highest bcrypt cost an htpasswd entry may have.
// Each step doubles the work of every password check: cost 10 (Go's
// default; htpasswd -B uses 5) takes about 50–100 ms, 14 about a second,
// and 31 (the most bcrypt allows) days, which hung serve at start-up (it
// hashes a dummy password at the first entry's cost) and would let any
// client burn a CPU per login attempt. Higher costs are refused when the
// file is loaded.
const MaxBcryptCost = 14

// users is a loaded htpasswd file: user → bcrypt hash.
type users struct {
	hashes map[string][]byte
	// dummy is a bcrypt hash of a random password, compared against for
	// unknown users so that they take as long as known ones.
	dummy []byte
}

func (u *users) len() int { return len(u.hashes) }

// loadHtpasswd reads an htpasswd file: "user:hash" lines, '#' comments
// and blank lines ignored, bcrypt hashes only.
func loadHtpasswd(path string) (*users, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading htpasswd file: %w", err)
	}
	u, err := parseHtpasswd(data)
	if err != nil {
		return nil, fmt.Errorf("htpasswd file %s: %w", path, err)
	}
	return u, nil
}

func parseHtpasswd(data []byte) (*users, error) {
	u := &users{hashes: map[string][]byte{}}
	cost := bcrypt.DefaultCost
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" || hash == "" {
			return nil, fmt.Errorf("line %d: want user:hash", n)
		}
		if _, dup := u.hashes[user]; dup {
			return nil, fmt.Errorf("line %d: user %q appears twice", n, user)
		}
		if !strings.HasPrefix(hash, "$2a$") && !strings.HasPrefix(hash, "$2b$") && !strings.HasPrefix(hash, "$2y$") {
			return nil, fmt.Errorf("line %d: user %q has a %s hash; envreg accepts bcrypt only: recreate the entry with htpasswd -B", n, user, hashKind(hash))
		}
		c, err := bcrypt.Cost([]byte(hash))
		if err != nil {
			return nil, fmt.Errorf("line %d: user %q has a malformed bcrypt hash (%v); recreate the entry with htpasswd -B", n, user, err)
		}
		if c > MaxBcryptCost {
			return nil, fmt.Errorf("line %d: user %q has bcrypt cost %d; envreg accepts at most %d (each login would cost 2^%d bcrypt rounds); recreate the entry with htpasswd -B -C %d or lower",
				n, user, c, MaxBcryptCost, c, MaxBcryptCost)
		}
		if len(u.hashes) == 0 {
			cost = c
		}
		u.hashes[user] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	// The dummy costs what the first user's hash costs, so that an unknown
	// user is as slow as a known one.
	pw := make([]byte, 16)
	_, _ = rand.Read(pw)
	dummy, err := bcrypt.GenerateFromPassword(pw, cost)
	if err != nil {
		return nil, fmt.Errorf("making the dummy hash: %w", err)
	}
	u.dummy = dummy
	return u, nil
}

// hashKind names a non-bcrypt htpasswd hash for the error message.
func hashKind(h string) string {
	switch {
	case strings.HasPrefix(h, "$apr1$"):
		return "MD5 ($apr1$)"
	case strings.HasPrefix(h, "{SHA}"):
		return "SHA-1 ({SHA})"
	case strings.HasPrefix(h, "$1$"):
		return "MD5-crypt ($1$)"
	case strings.HasPrefix(h, "$5$"), strings.HasPrefix(h, "$6$"):
		return "SHA-crypt (" + h[:3] + ")"
	case strings.HasPrefix(h, "$"):
		return "unsupported"
	case len(h) == 13:
		return "DES crypt or plain text"
	default:
		return "plain-text or unknown"
	}
}

// check compares password with user's hash with bcrypt; unknown users
// are compared with the dummy hash and fail.
func (u *users) check(user, password string) bool {
	hash, ok := u.hashes[user]
	if !ok {
		_ = bcrypt.CompareHashAndPassword(u.dummy, []byte(password))
		return false
	}
	return bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil
}

// fingerprint identifies user's current hash (for refresh tokens: a new
// password invalidates them); "" for an unknown user.
func (u *users) fingerprint(user string) string {
	hash, ok := u.hashes[user]
	if !ok {
		return ""
	}
	sum := sha256.Sum256(hash)
	return fmt.Sprintf("%x", sum[:12])
}

// verifyPassword checks user and password, through the cache.
func (a *Auth) verifyPassword(user, password string) bool {
	now := a.now()
	key := a.cache.key(user, password)
	if a.cache.hit(key, now) {
		return true
	}
	if !a.users.check(user, password) {
		return false
	}
	a.cache.add(key, now)
	return true
}

// credCache remembers successful bcrypt checks for ttl, so that a client
// sending Basic credentials with every request pays bcrypt once a minute.
// Keys are HMAC-SHA256 of user and password under a per-process random
// key: neither passwords nor plain hashes of them are kept. Failures are
// not cached.
type credCache struct {
	mu      sync.Mutex
	hmacKey []byte
	ttl     time.Duration
	max     int
	expires map[[sha256.Size]byte]time.Time
}

func newCredCache(ttl time.Duration, max int) *credCache {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return &credCache{hmacKey: k, ttl: ttl, max: max, expires: map[[sha256.Size]byte]time.Time{}}
}

func (c *credCache) key(user, password string) [sha256.Size]byte {
	m := hmac.New(sha256.New, c.hmacKey)
	// The length prefix keeps ("a:b", "c") and ("a", "b:c") apart.
	fmt.Fprintf(m, "%d:%s", len(user), user)
	m.Write([]byte(password))
	var k [sha256.Size]byte
	m.Sum(k[:0])
	return k
}

func (c *credCache) hit(k [sha256.Size]byte, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	exp, ok := c.expires[k]
	if !ok {
		return false
	}
	if !now.Before(exp) {
		delete(c.expires, k)
		return false
	}
	return true
}

func (c *credCache) add(k [sha256.Size]byte, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.expires) >= c.max {
		for k, exp := range c.expires {
			if !now.Before(exp) {
				delete(c.expires, k)
			}
		}
		// Still full: drop arbitrary entries (map order); they only cost
		// one more bcrypt check.
		for k := range c.expires {
			if len(c.expires) < c.max {
				break
			}
			delete(c.expires, k)
		}
	}
	c.expires[k] = now.Add(c.ttl)
}

func (c *credCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.expires)
}
