package catalog

import "time"

// Observers are what a catalog backend reports for metrics: the duration
// and outcome of each backend operation (op is from a fixed set per
// backend: its document and mark operations, or its command names) and the
// time each load of a new catalog generation took. Either may be nil; both
// must be quick.
type Observers struct {
	Op     func(op string, d time.Duration, err error)
	Reload func(d time.Duration)
}

// Observed reports an operation that started at start.
func (o Observers) Observed(op string, start time.Time, err error) {
	if o.Op != nil {
		o.Op(op, time.Since(start), err)
	}
}

// Reloaded reports a generation load that started at start.
func (o Observers) Reloaded(start time.Time) {
	if o.Reload != nil {
		o.Reload(time.Since(start))
	}
}
