package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Client calls the API of a running envreg ("envreg resolve --registry").
type Client struct {
	base *url.URL
	http *http.Client
	// user and password are sent as Basic credentials when user is set.
	user, password string
}

// SetBasicAuth makes the client send Basic credentials of a registry
// user (the API of a registry with authentication needs pull on the
// stack).
func (c *Client) SetBasicAuth(user, password string) { c.user, c.password = user, password }

// NewClient returns a client for the registry at base: "http://host:port"
// (a bare "host:port" means http), optionally with a path prefix when the
// registry is mounted under one. hc nil means http.DefaultClient.
func NewClient(base string, hc *http.Client) (*Client, error) {
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("registry URL %q: %w", base, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("registry URL %q: want http://HOST[:PORT] or https://HOST[:PORT]", base)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: u, http: hc}, nil
}

// Resolve calls POST /api/v1/stacks/{stack}/resolve. An answer other than
// 200 is returned as *Error (Status set, Message the server's sentence).
func (c *Client) Resolve(ctx context.Context, stack string, in ResolveRequest) (*ResolveResponse, error) {
	body, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	var out ResolveResponse
	if err := c.do(ctx, http.MethodPost, Prefix+"/stacks/"+url.PathEscape(stack)+"/resolve", body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func (c *Client) do(ctx context.Context, method, path string, body []byte, out any) error {
	u := *c.base
	u.Path += path
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if c.user != "" {
		req.SetBasicAuth(c.user, c.password)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("reading the answer of %s: %w", u.Redacted(), err)
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decoding the answer of %s: %w", u.Redacted(), err)
		}
		return nil
	}
	var e Error
	if err := json.Unmarshal(data, &e); err != nil || e.Code == "" || e.Message == "" {
		// Not this API: another server, or an envreg without it.
		snippet := strings.TrimSpace(string(data))
		if len(snippet) > 200 {
			snippet = snippet[:200] + "…"
		}
		return &Error{Status: resp.StatusCode, Code: "HTTP", Message: fmt.Sprintf("%s %s: HTTP %d (is this an envreg with the provisioning API?): %s",
			method, u.Redacted(), resp.StatusCode, snippet)}
	}
	e.Status = resp.StatusCode
	return &e
}
