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
type waiter struct {
	file   *os.File        // the epoll set, in the netpoller
	raw    syscall.RawConn // file's
	timer  int             // the timerfd, CLOCK_MONOTONIC
	events [2]unix.EpollEvent
	// woken is set by wake before it fires the timer, and taken by the
	// wait it ends: a wake that comes just before a wait sets the timer,
	// whose setting overwrites the wake's, still ends that wait.
	woken atomic.Bool
}

// Epoll event data of the waiter's two descriptors.
const (
	waitSocket = 0
	waitTimer  = 1
)

// newWaiter makes the waiter of socket fd.
func newWaiter(fd int) (*waiter, error) {
	tfd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("create timerfd: %w", err)
	}
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		unix.Close(tfd)
		return nil, fmt.Errorf("create epoll set: %w", err)
	}
	w := &waiter{timer: tfd}
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
	w.file = os.NewFile(uintptr(ep), "probe-epoll")
	if err := w.file.SetReadDeadline(time.Time{}); err != nil { // fails unless the netpoller took it
		w.Close()
		return nil, fmt.Errorf("wait for the epoll set in the netpoller: %w", err)
	}
	if w.raw, err = w.file.SyscallConn(); err != nil {
		w.Close()
		return nil, fmt.Errorf("epoll set: %w", err)
	}
	return w, nil
}

// wait waits for the socket for at most d, and reports whether the socket
// became ready (false: d passed, or wake was called).
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
	var ready, expired bool
	var werr error
	err := w.raw.Read(func(fd uintptr) bool {
		n, err := unix.EpollWait(int(fd), w.events[:], 0)
		if err != nil && !errors.Is(err, unix.EINTR) {
			werr = err
			return true
		}
		for _, ev := range w.events[:max(n, 0)] {
			ready = ready || ev.Fd == waitSocket
			expired = expired || ev.Fd == waitTimer
		}
		return ready || expired
	})
	switch {
	case err != nil:
		return false, fmt.Errorf("wait for the socket: %w", err)
	case werr != nil:
		return false, fmt.Errorf("wait for the socket: epoll_wait: %w", werr)
	}
	if expired {
		w.woken.Store(false) // this wait was the one a wake ended
	}
	return ready, nil
}

// arm sets the timer to expire d from now; setting it also clears an
// expiry not read yet.
func (w *waiter) arm(d time.Duration) error {
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(max(d.Nanoseconds(), 1))}
	if err := unix.TimerfdSettime(w.timer, 0, &spec, nil); err != nil {
		return fmt.Errorf("set timerfd: %w", err)
	}
	return nil
}

// wake makes a wait in progress return at once, as expired, or else the
// next wait, even one already setting its timer. It may be called from
// any goroutine; the wait after the one it ended waits as usual.
func (w *waiter) wake() {
	w.woken.Store(true)
	w.arm(time.Nanosecond)
}

// Close closes the epoll set and the timer.
func (w *waiter) Close() error {
	var err error
	if w.file != nil {
		err = w.file.Close()
	}
	return errors.Join(err, unix.Close(w.timer))
}
