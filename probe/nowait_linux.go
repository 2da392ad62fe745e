package probe

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The run's own syscalls, the ones it makes for every probe, are made
// with RawSyscall, which leaves the Go scheduler out: every one of them
// returns without waiting (MSG_DONTWAIT sends and reads, epoll_wait with
// no timeout, timerfd_settime, getsockopt), so none needs what Syscall's
// entersyscall buys, a hand-off of the goroutine's P should the call
// block. What entersyscall costs here is sysmon: between probes every P
// is idle and sysmon sleeps; the first Syscall after that wakes it
// (futex), and it then polls every 20 us for as long as a P runs, some
// seven wake-ups and a futex wait more for each probe. The price of the
// raw call is that the goroutine keeps its P for the call's length: on a
// path of veths the whole round trip runs in softirq inside sendto, a few
// hundred microseconds that a stop-the-world waits at most. Blocking
// waits (the netpoller's) are untouched. 300 ICMP probes at 10 ms on the
// lab (perf stat, five alternating runs, this and the capture reader's
// together): futex calls ~1,000 -> ~120, nanosleep ~850 -> ~240, context
// switches ~2,000 -> ~820.

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

// sendtoNoWait sends b to sa without waiting (MSG_DONTWAIT: EAGAIN when
// the socket's buffer is full).
func sendtoNoWait(fd uintptr, b []byte, sa *rawSockaddr) error {
	_, err := noWait(func() (uintptr, unix.Errno) {
		r, _, e := unix.RawSyscall6(unix.SYS_SENDTO, fd, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)),
			unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&sa.buf)), uintptr(sa.len))
		return r, e
	})
	return err
}

// sendmsgNoWait sends b to sa with oob as control data, without waiting.
func sendmsgNoWait(fd uintptr, b, oob []byte, sa *rawSockaddr) error {
	iov := unix.Iovec{Base: unsafe.SliceData(b)}
	iov.SetLen(len(b))
	h := unix.Msghdr{Name: (*byte)(unsafe.Pointer(&sa.buf)), Namelen: sa.len, Iov: &iov, Control: unsafe.SliceData(oob)}
	h.SetIovlen(1)
	h.SetControllen(len(oob))
	_, err := noWait(func() (uintptr, unix.Errno) {
		r, _, e := unix.RawSyscall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&h)), unix.MSG_DONTWAIT)
		return r, e
	})
	return err
}

// clearSockErr reads and so clears the socket's pending error.
func clearSockErr(fd uintptr) {
	var v int32
	l := uint32(unsafe.Sizeof(v))
	noWait(func() (uintptr, unix.Errno) {
		r, _, e := unix.RawSyscall6(unix.SYS_GETSOCKOPT, fd, unix.SOL_SOCKET, unix.SO_ERROR, uintptr(unsafe.Pointer(&v)), uintptr(unsafe.Pointer(&l)), 0)
		return r, e
	})
}

// timerfdSetNoWait sets timerfd fd to spec (relative).
func timerfdSetNoWait(fd uintptr, spec *unix.ItimerSpec) error {
	_, err := noWait(func() (uintptr, unix.Errno) {
		r, _, e := unix.RawSyscall6(unix.SYS_TIMERFD_SETTIME, fd, 0, uintptr(unsafe.Pointer(spec)), 0, 0, 0)
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
