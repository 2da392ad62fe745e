package probe

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// waiter waits for a socket to have something to read, or for a
// deadline, without a Go timer: the socket and a timerfd are in an epoll
// set of their own, whose descriptor waits in Go's netpoller. A read
// deadline (SetReadDeadline) is a runtime timer, and the netpoller sleeps
// in whole milliseconds (epoll_pwait), so a probe's wake-up came up to a
// millisecond late and, meanwhile, the runtime's sysmon, which saw the
// timer overdue, polled every 20 us and started a thread to run it: most
// of the process's nanosleep and futex calls. A timerfd makes the epoll
// set readable at its time, to the microsecond, and the netpoller's wait
// returns then.
//
// Both descriptors are *os.File, used through their RawConn: Close may
// come from another goroutine while a wait or a wake is under way (the
// socket closed during a run), and the runtime then closes a descriptor
// only once no call is using it, never under a timerfd_settime. The
// callbacks are bound once, so that a wait allocates nothing.
type waiter struct {
	file  *os.File        // the epoll set, in the netpoller
	raw   syscall.RawConn // file's
	timer *os.File        // the timerfd, CLOCK_MONOTONIC
	traw  syscall.RawConn // timer's
	// woken is set by wake before it fires the timer, and taken by the
	// wait it ends: a wake that comes just before a wait sets the timer,
	// whose setting overwrites the wake's, still ends that wait.
	woken atomic.Bool

	// The waiting goroutine's: what its callbacks read and write.
	events          [2]unix.EpollEvent
	spec            unix.ItimerSpec
	ready, expired  bool
	armErr, waitErr error
	armFn           func(fd uintptr)
	waitFn          func(fd uintptr) bool
	wakeFn          func(fd uintptr) // wake's, which writes nothing
}

// Epoll event data of the waiter's two descriptors.
const (
	waitSocket = 0
	waitTimer  = 1
)

// wakeSpec fires the timer at once.
var wakeSpec = unix.ItimerSpec{Value: unix.Timespec{Nsec: 1}}

// newWaiter makes the waiter of socket fd.
func newWaiter(fd int) (*waiter, error) {
	// Blocking, so that os.NewFile leaves it out of the netpoller: only the
	// epoll set waits for it, and nothing ever reads it (setting it clears
	// an expiry). Non-blocking, it sat in the netpoller too, and each
	// expiry was a second event there, of no use: one more ready item for
	// the kernel to poll and copy out, one more pollDesc for the runtime
	// to look up, cold, at every probe's wake-up.
	tfd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("create timerfd: %w", err)
	}
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		unix.Close(tfd)
		return nil, fmt.Errorf("create epoll set: %w", err)
	}
	// Level-triggered: readable while the socket holds a datagram or its
	// error queue a message (EPOLLERR, always reported).
	if err := errors.Join(
		unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: waitSocket}),
		unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, tfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: waitTimer}),
		unix.SetNonblock(ep, true),
	); err != nil {
		unix.Close(ep)
		unix.Close(tfd)
		return nil, fmt.Errorf("set up epoll set: %w", err)
	}
	w := &waiter{file: os.NewFile(uintptr(ep), "probe-epoll"), timer: os.NewFile(uintptr(tfd), "probe-timer")}
	if err := w.file.SetReadDeadline(time.Time{}); err != nil { // fails unless the netpoller took it
		w.Close()
		return nil, fmt.Errorf("wait for the epoll set in the netpoller: %w", err)
	}
	if w.raw, err = w.file.SyscallConn(); err != nil {
		w.Close()
		return nil, fmt.Errorf("epoll set: %w", err)
	}
	if w.traw, err = w.timer.SyscallConn(); err != nil {
		w.Close()
		return nil, fmt.Errorf("timerfd: %w", err)
	}
	w.armFn = func(fd uintptr) { w.armErr = timerfdSetNoWait(fd, &w.spec) }
	w.wakeFn = func(fd uintptr) { timerfdSetNoWait(fd, &wakeSpec) }
	w.waitFn = w.epollWait
	return w, nil
}

// wait waits for the socket for at most d, and reports whether the socket
// became ready (false: d passed, or wake was called). One goroutine at a
// time may wait.
func (w *waiter) wait(d time.Duration) (bool, error) {
	if d <= 0 {
		return false, nil
	}
	if err := w.arm(d); err != nil {
		return false, err
	}
	if w.woken.Swap(false) { // after the arm: a wake before it is not lost
		return false, nil
	}
	w.ready, w.expired, w.waitErr = false, false, nil
	err := w.raw.Read(w.waitFn)
	switch {
	case err != nil:
		return false, fmt.Errorf("wait for the socket: %w", err)
	case w.waitErr != nil:
		return false, fmt.Errorf("wait for the socket: epoll_wait: %w", w.waitErr)
	}
	if w.expired {
		w.woken.Store(false) // this wait was the one a wake ended
	}
	return w.ready, nil
}

// epollWait is wait's RawConn callback: it reports true, to stop waiting,
// once the socket is ready, the timer expired or epoll_wait failed.
func (w *waiter) epollWait(fd uintptr) bool {
	n, err := epollNoWait(fd, w.events[:])
	if err != nil {
		w.waitErr = err
		return true
	}
	for _, ev := range w.events[:n] {
		w.ready = w.ready || ev.Fd == waitSocket
		w.expired = w.expired || ev.Fd == waitTimer
	}
	return w.ready || w.expired
}

// arm sets the timer to expire d from now; setting it also clears an
// expiry not read yet.
func (w *waiter) arm(d time.Duration) error {
	w.spec = unix.ItimerSpec{Value: unix.NsecToTimespec(max(d.Nanoseconds(), 1))}
	if err := w.traw.Control(w.armFn); err != nil {
		return fmt.Errorf("set timerfd: %w", err)
	}
	if w.armErr != nil {
		return fmt.Errorf("set timerfd: %w", w.armErr)
	}
	return nil
}

// wake makes a wait in progress return at once, as expired, or else the
// next wait, even one already setting its timer. It may be called from
// any goroutine, and after Close it does nothing; the wait after the one
// it ended waits as usual.
func (w *waiter) wake() {
	w.woken.Store(true)
	w.traw.Control(w.wakeFn)
}

// Close closes the epoll set and the timer; a wait in progress returns
// an error, and the descriptors are closed once it has.
func (w *waiter) Close() error {
	var err error
	if w.file != nil {
		err = w.file.Close()
	}
	if w.timer != nil {
		err = errors.Join(err, w.timer.Close())
	}
	return err
}
