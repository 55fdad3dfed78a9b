package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/envreg/envreg/server/registry"
)

// issuer is the iss claim of every token envreg signs.
const issuer = "envreg"

// leeway absorbs clock differences between replicas when checking exp,
// nbf and iat.
const leeway = 30 * time.Second

// maxTokenBytes bounds the tokens verifyAccess parses.
const maxTokenBytes = 64 << 10

var b64 = base64.RawURLEncoding.Strict()

// tokenKeys are the HMAC keys, derived from the token secret: one for
// access tokens and one for refresh tokens, so that neither kind verifies
// as the other.
type tokenKeys struct {
	access, refresh []byte
}

func newTokenKeys(secret []byte) *tokenKeys {
	derive := func(label string) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(label))
		return m.Sum(nil)
	}
	return &tokenKeys{access: derive("envreg access token v1"), refresh: derive("envreg refresh token v1")}
}

// resourceActions is one entry of the access claim, in the Docker token
// format.
type resourceActions struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// claims of an access token.
type claims struct {
	Issuer    string            `json:"iss"`
	Subject   string            `json:"sub"`
	Audience  audience          `json:"aud"`
	Expiry    int64             `json:"exp"`
	NotBefore int64             `json:"nbf"`
	IssuedAt  int64             `json:"iat"`
	ID        string            `json:"jti"`
	Access    []resourceActions `json:"access"`
}

// refreshClaims of a refresh token: the user and a fingerprint of their
// htpasswd hash, so that a new password revokes the token.
type refreshClaims struct {
	Issuer      string   `json:"iss"`
	Subject     string   `json:"sub"`
	Audience    audience `json:"aud"`
	IssuedAt    int64    `json:"iat"`
	ID          string   `json:"jti"`
	Fingerprint string   `json:"fp"`
}

// audience is the aud claim: a string or an array of strings (RFC 7519
// allows both); envreg writes a string.
type audience []string

func (a audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

func (a *audience) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*a = audience{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return errors.New("aud is neither a string nor an array of strings")
	}
	*a = l
	return nil
}

func (a audience) contains(s string) bool { return slices.Contains(a, s) }

type header struct {
	Alg string `json:"alg"`
	Typ string `json:"typ,omitempty"`
}

// sign makes a compact HS256 JWT of payload.
func sign(key []byte, payload any) (string, error) {
	h, err := json.Marshal(header{Alg: "HS256", Typ: "JWT"})
	if err != nil {
		return "", err
	}
	p, err := json.Marshal(payload)
	if err != nil {
		return "", err
	}
	input := b64.EncodeToString(h) + "." + b64.EncodeToString(p)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(input))
	return input + "." + b64.EncodeToString(m.Sum(nil)), nil
}

// verify checks a compact JWT's algorithm (HS256 only) and signature and
// decodes its payload into v.
func verify(key []byte, token string, v any) error {
	if len(token) > maxTokenBytes {
		return errors.New("too long")
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return errors.New("not a JWT")
	}
	hb, err := b64.DecodeString(parts[0])
	if err != nil {
		return errors.New("malformed header")
	}
	var h header
	if err := json.Unmarshal(hb, &h); err != nil {
		return errors.New("malformed header")
	}
	if h.Alg != "HS256" {
		return fmt.Errorf("unsupported algorithm %q", h.Alg)
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil {
		return errors.New("malformed signature")
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(parts[0] + "." + parts[1]))
	if !hmac.Equal(sig, m.Sum(nil)) {
		return errors.New("bad signature")
	}
	pb, err := b64.DecodeString(parts[1])
	if err != nil {
		return errors.New("malformed payload")
	}
	if err := json.Unmarshal(pb, v); err != nil {
		return errors.New("malformed payload")
	}
	return nil
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// issueAccess signs an access token for user ("" anonymous) granting
// access, valid from now for ttl.
func (k *tokenKeys) issueAccess(user, service string, access []resourceActions, now time.Time, ttl time.Duration) (string, error) {
	if access == nil {
		access = []resourceActions{}
	}
	return sign(k.access, claims{
		Issuer:    issuer,
		Subject:   user,
		Audience:  audience{service},
		Expiry:    now.Add(ttl).Unix(),
		NotBefore: now.Unix(),
		IssuedAt:  now.Unix(),
		ID:        newID(),
		Access:    access,
	})
}

// verifyAccess checks an access token: signature, issuer, audience and
// times (with leeway).
func (k *tokenKeys) verifyAccess(token, service string, now time.Time) (*claims, error) {
	var c claims
	if err := verify(k.access, token, &c); err != nil {
		return nil, err
	}
	if c.Issuer != issuer {
		return nil, fmt.Errorf("issuer %q is not %q", c.Issuer, issuer)
	}
	if !c.Audience.contains(service) {
		return nil, fmt.Errorf("audience %q does not include %q", []string(c.Audience), service)
	}
	t := now.Unix()
	lw := int64(leeway / time.Second)
	switch {
	case c.Expiry == 0:
		return nil, errors.New("no expiry")
	case t >= c.Expiry+lw:
		return nil, errors.New("expired")
	case t < c.NotBefore-lw:
		return nil, errors.New("not valid yet")
	case t < c.IssuedAt-lw:
		return nil, errors.New("issued in the future")
	}
	return &c, nil
}

// uncovered returns the parts of access that c does not grant (nil when
// it grants all of it).
func (c *claims) uncovered(access []registry.Access) []registry.Access {
	granted := map[[3]string]bool{}
	for _, ra := range c.Access {
		for _, act := range ra.Actions {
			granted[[3]string{ra.Type, ra.Name, act}] = true
		}
	}
	var missing []registry.Access
	for _, ac := range access {
		var acts []string
		for _, act := range ac.Actions {
			if !granted[[3]string{ac.Type, ac.Name, act}] {
				acts = append(acts, act)
			}
		}
		if len(acts) > 0 {
			missing = append(missing, registry.Access{Type: ac.Type, Name: ac.Name, Actions: acts})
		}
	}
	return missing
}

// issueRefresh signs a refresh token for user.
func (k *tokenKeys) issueRefresh(user, fingerprint, service string, now time.Time) (string, error) {
	return sign(k.refresh, refreshClaims{
		Issuer:      issuer,
		Subject:     user,
		Audience:    audience{service},
		IssuedAt:    now.Unix(),
		ID:          newID(),
		Fingerprint: fingerprint,
	})
}

// verifyRefresh checks a refresh token's signature, issuer and audience;
// the caller checks the user and fingerprint against the htpasswd file.
func (k *tokenKeys) verifyRefresh(token, service string) (*refreshClaims, error) {
	var c refreshClaims
	if err := verify(k.refresh, token, &c); err != nil {
		return nil, err
	}
	if c.Issuer != issuer {
		return nil, fmt.Errorf("issuer %q is not %q", c.Issuer, issuer)
	}
	if !c.Audience.contains(service) {
		return nil, fmt.Errorf("audience %q does not include %q", []string(c.Audience), service)
	}
	if c.Subject == "" || c.Fingerprint == "" {
		return nil, errors.New("no user")
	}
	return &c, nil
}
