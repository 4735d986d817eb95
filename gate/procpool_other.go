//go:build !linux

package gate

import "syscall"

// childSysProcAttr: no parent-death signal outside Linux; the child's own
// parent watch (watchParent) ends it.
func childSysProcAttr() *syscall.SysProcAttr { return nil }
