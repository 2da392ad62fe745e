//go:build linux

package capture

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// poller waits for every ring of a session at once, on one goroutine and
// without holding an OS thread: the rings' sockets are in an epoll set of
// its own, and that epoll descriptor, which is itself pollable, waits in
// Go's netpoller. One reader for all rings replaces one goroutine per
// ring, each woken by its own ring's blocks and by its own 20 ms read
// deadline: with five rings that was five wake-ups per probe at a 10 ms
// interval, and four getsockopt(SO_ERROR) calls a wake-up besides.
//
// It keeps time without a Go timer, on a timerfd: a runtime timer (a read
// deadline too) wakes up to a millisecond late (the netpoller sleeps in
// whole milliseconds) and keeps the runtime's sysmon polling every 20 us
// meanwhile, where a timerfd wakes the netpoller at its time. The timerfd
// is in the epoll set, for wait's deadline and for wake, and in the
// netpoller on its own, for sleep, which waits for it alone while the
// rings fill. It is the same shape as probe's waiter (probe/waiter_linux.go):
// capture and probe never import each other, and the house style keeps a
// copy per package rather than a util package.
//
// The set is quiet except while wait waits on it: its members listen for
// errors only (EPOLLERR and EPOLLHUP, which epoll always reports) and wait
// turns EPOLLIN on for its time. A set in the netpoller wakes the
// netpoller whenever a member becomes ready, waited on or not, so a set
// that listened all the time woke it at every block a ring retired, five
// times a probe at a 10 ms interval while the reader slept between its
// scans, each wake-up for nothing (strace: 13 epoll_pwait calls and 9
// context switches a probe).
type poller struct {
	file  *os.File        // the epoll descriptor, in the netpoller
	raw   syscall.RawConn // file's
	timer *os.File        // a timerfd, CLOCK_MONOTONIC, in the netpoller and in the set
	traw  syscall.RawConn // timer's
	// members are the set's descriptors and their event data, the rings'
	// (their index) and the timer's; a removed ring's fd is -1.
	members []member
	// woken is set by wake, for good, before it fires the timer; waits
	// and sleeps look at it once their timer is set, so a wake just
	// before they set it (which overwrites the wake's setting) is not lost.
	woken  atomic.Bool
	events []unix.EpollEvent
	got    []readiness // what the last wait or ready returned, reused
	// waits counts the times wait and sleep parked in the netpoller: the
	// reader's wake-ups, for tests.
	waits int

	// The reader's calls into its descriptors (syscall.RawConn's Read and
	// Control) take a func, which escapes: made per call, with the
	// variables it sets, it was two or three heap allocations a wait and
	// a sleep (newobject under ready and arm in a profile). These are made
	// once, by newPoller, and pass what they need through the fields
	// below; only the reader's goroutine uses them (wake has its own).
	armFn, readyFn, listenFn, readTimerFn func(uintptr)
	waitFn, sleepFn                       func(uintptr) bool
	spec                                  unix.ItimerSpec // armFn's setting
	evs                                   uint32          // listenFn's events
	n                                     int             // readyFn's and waitFn's count
	werr                                  error           // what the last of them failed on
}

// timerEvent is the epoll event data of the timer; a ring's is its index.
const timerEvent = -1

// member is one descriptor of the set and its event data.
type member struct {
	fd   int
	data int32
}

// newPoller makes an epoll set of the rings' sockets and the timer; an
// event's Fd field says which ring (its index in rings) is ready.
func newPoller(rings []*ring) (*poller, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("create epoll set: %w", err)
	}
	p := &poller{events: make([]unix.EpollEvent, len(rings)+1)}
	p.bindCalls()
	for i, r := range rings {
		// Level-triggered: a ring is ready while it holds a retired block,
		// once wait listens (quiet until then).
		ev := unix.EpollEvent{Fd: int32(i)}
		if err := unix.EpollCtl(fd, unix.EPOLL_CTL_ADD, r.fd, &ev); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("add capture socket of ifindex %d to the epoll set: %w", r.ifindex, err)
		}
		p.members = append(p.members, member{fd: r.fd, data: int32(i)})
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("set epoll set non-blocking: %w", err)
	}
	p.file = os.NewFile(uintptr(fd), "capture-epoll")
	if err := p.file.SetReadDeadline(time.Time{}); err != nil { // fails unless the netpoller took it
		p.file.Close()
		return nil, fmt.Errorf("wait for the epoll set in the netpoller: %w", err)
	}
	if p.raw, err = p.file.SyscallConn(); err != nil {
		p.file.Close()
		return nil, fmt.Errorf("epoll set: %w", err)
	}
	if err := p.openTimer(fd); err != nil {
		p.file.Close()
		return nil, err
	}
	return p, nil
}

// bindCalls makes the funcs the reader hands its descriptors, once.
func (p *poller) bindCalls() {
	p.armFn = func(fd uintptr) { p.werr = timerfdSetNoWait(fd, &p.spec) }
	p.readTimerFn = func(fd uintptr) { p.readTimer(fd) }
	p.sleepFn = p.readTimer
	p.readyFn = func(fd uintptr) { p.n, p.werr = epollNoWait(fd, p.events) }
	p.waitFn = func(fd uintptr) bool {
		p.n, p.werr = epollNoWait(fd, p.events)
		return p.n > 0 || p.werr != nil
	}
	p.listenFn = func(fd uintptr) {
		p.werr = nil
		for _, m := range p.members {
			if m.fd < 0 {
				continue
			}
			ev := unix.EpollEvent{Events: p.evs, Fd: m.data}
			if e := unix.EpollCtl(int(fd), unix.EPOLL_CTL_MOD, m.fd, &ev); e != nil && p.werr == nil {
				p.werr = e
			}
		}
	}
}

// openTimer makes the poller's timerfd, adds it to the epoll set ep and
// hands it to the netpoller.
func (p *poller) openTimer(ep int) error {
	tfd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("create timerfd: %w", err)
	}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, tfd, &unix.EpollEvent{Fd: timerEvent}); err != nil {
		unix.Close(tfd)
		return fmt.Errorf("add timerfd to the epoll set: %w", err)
	}
	p.members = append(p.members, member{fd: tfd, data: timerEvent})
	p.timer = os.NewFile(uintptr(tfd), "capture-timer")
	if p.traw, err = p.timer.SyscallConn(); err != nil {
		p.timer.Close()
		return fmt.Errorf("timerfd: %w", err)
	}
	return nil
}

// sleep waits d, or until wake; after a wake it returns at once. It
// reports a failure of the timer only.
func (p *poller) sleep(d time.Duration) error {
	if err := p.arm(d); err != nil {
		return err
	}
	if p.woken.Load() { // after the arm: a wake before it is not lost
		return nil
	}
	p.waits++
	err := p.traw.Read(p.sleepFn)
	if err != nil {
		return fmt.Errorf("sleep on timerfd: %w", err)
	}
	return nil
}

// readTimer reads the timer's expiry count, and reports false while there
// is none (EAGAIN). EINTR and other errors end the read too: the caller
// looks again.
func (p *poller) readTimer(fd uintptr) bool {
	return !errors.Is(timerfdReadNoWait(fd), unix.EAGAIN)
}

// arm sets the timer to expire d from now (clearing an expiry not read).
// Only the reader calls it.
func (p *poller) arm(d time.Duration) error {
	p.spec = unix.ItimerSpec{Value: unix.NsecToTimespec(max(d.Nanoseconds(), 1))}
	if err := p.traw.Control(p.armFn); err != nil {
		return fmt.Errorf("set timerfd: %w", err)
	}
	if p.werr != nil {
		return fmt.Errorf("set timerfd: %w", p.werr)
	}
	return nil
}

// wait waits until a ring is ready, until deadline or until wake, and
// returns the rings' events; none when the deadline passed or wake was
// called. With a zero deadline it has none of its own and returns at
// once after a wake; with one it waits for it even after a wake (the
// drain).
func (p *poller) wait(deadline time.Time) (got []readiness, err error) {
	if err := p.listen(unix.EPOLLIN); err != nil {
		return nil, err
	}
	defer func() {
		if qerr := p.listen(0); qerr != nil && err == nil {
			got, err = nil, qerr
		}
	}()
	for {
		if !deadline.IsZero() {
			if err := p.arm(time.Until(deadline)); err != nil {
				return nil, err
			}
		} else if p.woken.Load() {
			return nil, nil
		}
		n, timer, err := p.epollWait()
		switch {
		case err != nil:
			return nil, err
		case n > 0:
			return p.got, nil
		case !timer:
			continue
		}
		p.traw.Control(p.readTimerFn) // the expiry, so the set is not readable for it
		if deadline.IsZero() || !time.Now().Before(deadline) {
			return nil, nil
		}
		// A wake's or an old sleep's expiry: the deadline is set again.
	}
}

// epollWait waits in the netpoller until the set has an event, and
// returns how many rings are ready (p.got), and whether the timer expired.
func (p *poller) epollWait() (int, bool, error) {
	p.waits++
	err := p.raw.Read(p.waitFn)
	switch {
	case err != nil:
		return 0, false, fmt.Errorf("wait on capture sockets: %w", err)
	case p.werr != nil:
		return 0, false, fmt.Errorf("wait on capture sockets: epoll_wait: %w", p.werr)
	}
	timer := p.readiness(p.n)
	return len(p.got), timer, nil
}

// ready returns the rings' events without waiting: outside wait, only
// the errors (EPOLLERR) of rings whose socket failed.
func (p *poller) ready() ([]readiness, error) {
	cerr := p.raw.Control(p.readyFn)
	switch {
	case cerr != nil:
		return nil, fmt.Errorf("read capture sockets' state: %w", cerr)
	case p.werr != nil:
		return nil, fmt.Errorf("read capture sockets' state: epoll_wait: %w", p.werr)
	}
	p.readiness(p.n)
	return p.got, nil
}

// readiness converts the first n events into p.got, the rings', and
// reports whether the timer's was among them.
func (p *poller) readiness(n int) (timer bool) {
	p.got = p.got[:0]
	for _, ev := range p.events[:n] {
		if ev.Fd == timerEvent {
			timer = true
			continue
		}
		p.got = append(p.got, readiness{ring: int(ev.Fd), failed: ev.Events&unix.EPOLLERR != 0})
	}
	return timer
}

// wake makes a wait in progress, and every later one without a deadline
// of its own, return at once, and a sleep in progress or later too. It
// may be called from any goroutine, so it sets the timer with its own
// variables, not arm's.
func (p *poller) wake() {
	p.woken.Store(true)
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(1)}
	p.traw.Control(func(fd uintptr) { timerfdSetNoWait(fd, &spec) })
}

// listen sets the events the set's members wait for besides errors:
// EPOLLIN while wait waits, none otherwise. Making a member listen again
// reports it at once if it is ready already (epoll polls it then).
func (p *poller) listen(events uint32) error {
	p.evs = events
	cerr := p.raw.Control(p.listenFn)
	if err := errors.Join(cerr, p.werr); err != nil {
		return fmt.Errorf("set the capture sockets' epoll events: %w", err)
	}
	return nil
}

// remove takes ring r's socket out of the set: a ring that failed is read
// no more.
func (p *poller) remove(r *ring) error {
	var err error
	cerr := p.raw.Control(func(fd uintptr) { err = unix.EpollCtl(int(fd), unix.EPOLL_CTL_DEL, r.fd, nil) })
	for i := range p.members {
		if p.members[i].fd == r.fd {
			p.members[i].fd = -1
		}
	}
	return errors.Join(cerr, err)
}

// Close closes the epoll set and the timer; the rings stay open.
func (p *poller) Close() error { return errors.Join(p.file.Close(), p.timer.Close()) }
