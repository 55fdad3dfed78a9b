//go:build !linux

package redisstore_test

import "syscall"

func serverProcAttr() *syscall.SysProcAttr { return nil }
