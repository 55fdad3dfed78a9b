package registry

import (
	"errors"
	"net/http/httptest"
	"testing"
	"time"
)

// TestBudget: a client spends its units, waits for the refill it is told
// to wait for, and does not spend another client's.
func TestBudget(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b := NewBudget(3)
	b.now = func() time.Time { return now }
	r := httptest.NewRequest("GET", "/v2/env/manifests/x", nil)
	r.RemoteAddr = "192.0.2.1:4711"
	admit := b.admission(r)
	for i := range 3 {
		if err := admit(); err != nil {
			t.Fatalf("unit %d of 3: %v", i+1, err)
		}
	}
	err := admit()
	var wire *Error
	if !errors.As(err, &wire) || wire.Status != 429 || wire.Code != "TOOMANYREQUESTS" {
		t.Fatalf("fourth composition: %v, want 429 TOOMANYREQUESTS", err)
	}
	if got := wire.header.Get("Retry-After"); got != "1200" { // one unit every 20 minutes
		t.Errorf("Retry-After %q, want 1200", got)
	}
	other := httptest.NewRequest("GET", "/v2/env/manifests/x", nil)
	other.RemoteAddr = "192.0.2.2:4711"
	if err := b.admission(other)(); err != nil {
		t.Errorf("another client: %v", err)
	}
	now = now.Add(20 * time.Minute)
	if err := admit(); err != nil {
		t.Errorf("after the refill it was told to wait for: %v", err)
	}
	if err := admit(); err == nil {
		t.Error("a second unit right after the refill of one")
	}
	if NewBudget(0) != nil || NewBudget(0).admission(r) != nil {
		t.Error("a budget of 0 limits")
	}
}
