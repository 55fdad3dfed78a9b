package redisstore_test

import "syscall"

// serverProcAttr kills the redis-server the tests start when the test
// binary dies without running its cleanup (a panic, a timeout).
func serverProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
