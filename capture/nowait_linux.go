//go:build linux

package capture

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The reader's syscalls between its waits (the timerfd's setting and
// reading, epoll_wait with no timeout) are made with RawSyscall, which
// leaves the Go scheduler out: none of them blocks, so none needs what
// Syscall's entersyscall buys, a hand-off of the goroutine's P should the
// call block, while entersyscall wakes the runtime's sysmon from its sleep
// whenever every P was idle, and sysmon then polls every 20 us while any
// P runs: a futex wake and several wake-ups more for every scan. The
// waits themselves stay in the netpoller. It is the same as probe's
// (probe/nowait_linux.go): the house style keeps a copy per package.

// noWait makes call, a syscall that must not block made with RawSyscall,
// again while a signal interrupts it. call makes the syscall itself, with
// its pointers converted to uintptr in RawSyscall's own argument list:
// only there (a function in assembly) does the compiler keep what they
// point to alive and in place for the call; converted before, in the
// arguments of a Go function, a stack object could move (the stack grows)
// or a heap one be freed while the kernel reads or writes it.
func noWait(call func() (uintptr, unix.Errno)) (uintptr, error) {
	for {
		r, errno := call()
		switch errno {
		case 0:
			return r, nil
		case unix.EINTR:
			continue
		}
		return r, errno
	}
}

// timerfdSetNoWait sets timerfd fd to spec (relative).
func timerfdSetNoWait(fd uintptr, spec *unix.ItimerSpec) error {
	_, err := noWait(func() (uintptr, unix.Errno) {
		r, _, e := unix.RawSyscall6(unix.SYS_TIMERFD_SETTIME, fd, 0, uintptr(unsafe.Pointer(spec)), 0, 0, 0)
		return r, e
	})
	return err
}

// timerfdReadNoWait reads timerfd fd's expiry count: EAGAIN while there is
// none (the descriptor is non-blocking).
func timerfdReadNoWait(fd uintptr) error {
	var buf [8]byte
	_, err := noWait(func() (uintptr, unix.Errno) {
		r, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
		return r, e
	})
	return err
}

// epollNoWait returns the events epoll set fd holds now, into events.
func epollNoWait(fd uintptr, events []unix.EpollEvent) (int, error) {
	n, err := noWait(func() (uintptr, unix.Errno) {
		r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, fd, uintptr(unsafe.Pointer(unsafe.SliceData(events))), uintptr(len(events)), 0, 0, 0)
		return r, e
	})
	if err != nil {
		return 0, err
	}
	return int(n), nil
}
