package registry

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Budget bounds how many new compositions one client can make the server
// store per hour: every tag that resolves to an image not stored yet costs
// the client one unit (manifestgen.WithAdmission), everything already
// stored costs nothing. A client is its TCP peer address (never
// X-Forwarded-For); behind a proxy on the same host all clients share one
// budget. Each client has a bucket of PerHour units that refills
// continuously at PerHour units an hour, so a burst of PerHour new tags is
// fine and a loop of distinct tags is slowed to PerHour an hour.
type Budget struct {
	perHour float64
	now     func() time.Time

	mu      sync.Mutex
	clients map[string]*bucket
}

type bucket struct {
	units float64
	at    time.Time
}

// maxClients bounds the buckets kept; when more clients have one, the
// full buckets (clients that did not spend recently) are dropped.
const maxClients = 100_000

// DefaultBudget is the default number of new compositions a client may
// cause per hour.
const DefaultBudget = 600

// NewBudget allows perHour new compositions per client and hour (0 or
// less: no limit, NewBudget returns nil).
func NewBudget(perHour int) *Budget {
	if perHour <= 0 {
		return nil
	}
	return &Budget{perHour: float64(perHour), now: time.Now, clients: map[string]*bucket{}}
}

// take spends one unit of client's budget, or says how long until one is
// available.
func (b *Budget) take(client string) (bool, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	bk, ok := b.clients[client]
	if !ok {
		if len(b.clients) >= maxClients {
			b.dropFull(now)
		}
		bk = &bucket{units: b.perHour, at: now}
		b.clients[client] = bk
	}
	b.refill(bk, now)
	if bk.units < 1 {
		wait := time.Duration((1 - bk.units) / b.perHour * float64(time.Hour))
		return false, wait
	}
	bk.units--
	return true, 0
}

func (b *Budget) refill(bk *bucket, now time.Time) {
	if now.After(bk.at) {
		bk.units = math.Min(b.perHour, bk.units+now.Sub(bk.at).Hours()*b.perHour)
		bk.at = now
	}
}

// dropFull forgets the clients whose bucket has refilled (b.mu held).
func (b *Budget) dropFull(now time.Time) {
	for c, bk := range b.clients {
		if b.refill(bk, now); bk.units >= b.perHour {
			delete(b.clients, c)
		}
	}
}

// admission returns the manifestgen admission of r's client: nil without a
// budget; else a func that spends one unit or returns 429 TOOMANYREQUESTS
// with Retry-After.
func (b *Budget) admission(r *http.Request) func() error {
	if b == nil {
		return nil
	}
	client, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		client = r.RemoteAddr
	}
	return func() error {
		ok, wait := b.take(client)
		if ok {
			return nil
		}
		secs := int(math.Ceil(wait.Seconds()))
		return &Error{ErrorCode: CodeBusy, Message: fmt.Sprintf(
			"too many new compositions from %s: each tag that resolves to an image not stored yet counts, %d an hour; retry in %ds (tags already composed are not limited)",
			client, int(b.perHour), secs), header: http.Header{"Retry-After": {strconv.Itoa(secs)}}}
	}
}
