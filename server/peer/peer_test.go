package peer

import "testing"

func TestLoopback(t *testing.T) {
	for remote, want := range map[string]bool{
		"127.0.0.1:5000": true, "127.9.9.9:1": true, "[::1]:443": true, "[::ffff:127.0.0.1]:80": true,
		"::1": true, "127.0.0.1": true,
		"10.0.0.1:5000": false, "[2001:db8::1]:443": false, "[::ffff:10.0.0.1]:80": false,
		"localhost:5000": false, "": false, "@": false,
	} {
		if got := Loopback(remote); got != want {
			t.Errorf("Loopback(%q) = %v, want %v", remote, got, want)
		}
	}
}
