package redisstore

// DropNotifications makes s ignore change notifications, as if every
// message were lost on the way (drop = true), so that only the poller
// tells s about changes.
func DropNotifications(s *Store, drop bool) { s.dropNotifications.Store(drop) }
