package gate

import "syscall"

// childSysProcAttr asks the kernel to SIGKILL a child process when the
// thread that started it (and so the worker process) dies, even by
// SIGKILL. The child's own parent watch (watchParent) backs it up.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
