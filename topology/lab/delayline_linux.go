package lab

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/topology"
)

// spinMargin is how long before a frame's release time the delay line
// stops sleeping and spins: a sleeping thread wakes up to ~100 us late on
// a busy VM, and time.Sleep alone overshoots by 0.2-0.5 ms (design.md).
const spinMargin = 200 * time.Microsecond

// busyPoll is how long after the latest frame either lane took a lane with
// nothing queued keeps looking at its ring before it blocks in poll. Waking
// a blocked thread costs tens of microseconds on a VM, and the frame most
// likely next is the answer to the one just forwarded (a ping's reply
// comes back within ~100 us): with D = 0 this halves what the wire adds.
const busyPoll = 200 * time.Microsecond

// DelayLine is a "bump in the wire": it forwards every frame arriving on
// one wire link out of the other after a fixed delay, dropping a random
// fraction, per direction (netem's delay and loss, in user space: this
// kernel has no netem). Frames leave in the order they came.
//
// Each direction runs on its own locked OS thread, which waits for the
// next frame in poll, sleeps until spinMargin before that frame's release
// time (the kernel's receive time plus the delay) with a 1 ns timer slack,
// and spins the rest. The thread never changes namespace: the sockets are
// created inside the wire namespace and used from outside.
type DelayLine struct {
	lanes  [2]*lane
	rings  [2]*ring
	stop   int          // eventfd: readable once the lanes must return
	active atomic.Int64 // when a lane last took a frame, Unix ns
}

// lane is one direction of a delay line.
type lane struct {
	in     *ring
	out    int                    // the other link's socket
	tuning atomic.Pointer[tuning] // replaced whole by SetNetwork
	stop   int
	active *atomic.Int64 // the DelayLine's
	pfd    [2]unix.PollFd
}

// tuning is a lane's impairment and what the lane did under it.
type tuning struct {
	imp      Impairment
	drops0   uint64 // the ring's kernel drops when the tuning began
	counters laneCounters
}

// laneCounters are the live counters behind LaneStats, written by the
// lane's thread and read by Stats.
type laneCounters struct {
	forwarded, lost, skipped, sendErrors atomic.Uint64
	sumLate, maxLate                     atomic.Int64
	mu                                   sync.Mutex
	holds                                []ProbeHold // the first MaxProbeHolds
}

// addHold records the hold of a forwarded frame if it carries a probe.
func (c *laneCounters) addHold(data []byte, hold time.Duration) {
	runID, seq, reply, ok := probeToken(data)
	if !ok {
		return
	}
	c.mu.Lock()
	if len(c.holds) < MaxProbeHolds {
		c.holds = append(c.holds, ProbeHold{RunID: runID, Seq: seq, Reply: reply, Hold: hold})
	}
	c.mu.Unlock()
}

// OpenDelayLine opens the delay line of l's wire with the impairments of
// n: from the time it returns, frames queue up in its rings (1024 per
// direction) until Run forwards them. Close it after Run returned.
func OpenDelayLine(l *Lab, n Network) (_ *DelayLine, err error) {
	if l.Wire == nil || l.Wire.NS == nil {
		return nil, fmt.Errorf("open delay line of lab %s: the lab has no wire (set Faults.Wire or a network fault)", l.Name)
	}
	if err := (Faults{Network: n}).Validate(); err != nil {
		return nil, fmt.Errorf("open delay line of lab %s: %w", l.Name, err)
	}
	d := &DelayLine{stop: -1}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	for i, name := range []string{WireLink1, WireLink2} {
		if d.rings[i], err = topology.Open(l.Wire.NS, func() (*ring, error) { return openRing(name) }); err != nil {
			return nil, fmt.Errorf("open delay line in %s: %w", l.Wire.Name, err)
		}
	}
	if d.stop, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return nil, fmt.Errorf("open delay line: eventfd: %w", err)
	}
	d.lanes[0] = newLane(d, d.rings[0], d.rings[1], n.Request)
	d.lanes[1] = newLane(d, d.rings[1], d.rings[0], n.Reply)
	return d, nil
}

func newLane(d *DelayLine, in, out *ring, imp Impairment) *lane {
	ln := &lane{in: in, out: out.fd, stop: d.stop, active: &d.active}
	ln.retune(imp)
	ln.pfd[0] = unix.PollFd{Fd: int32(d.stop), Events: unix.POLLIN}
	ln.pfd[1] = unix.PollFd{Fd: int32(in.fd), Events: unix.POLLIN}
	return ln
}

// Run forwards frames until ctx ends (it then returns nil) or a link
// fails. Run it once.
func (d *DelayLine) Run(ctx context.Context) error {
	errc := make(chan error, len(d.lanes))
	for _, ln := range d.lanes {
		go func() { errc <- ln.run() }()
	}
	var errs []error
	select {
	case <-ctx.Done():
	case err := <-errc:
		errs = append(errs, err)
	}
	d.signalStop()
	for len(errs) < len(d.lanes) {
		errs = append(errs, <-errc)
	}
	return errors.Join(errs...)
}

// SetNetwork gives a running (or not yet running) delay line the
// impairments of n from the next frame each lane looks at, and starts
// Stats afresh. Frames it holds stay queued and leave at their arrival
// plus the new delay (a frame already waiting out the old delay finishes
// it), so nothing is lost in the change, as it would be if the line were
// closed and opened again: what it held would be dropped, and nothing
// forwarded in between. Call it, like Stats, from one goroutine at a
// time.
func (d *DelayLine) SetNetwork(n Network) error {
	if err := (Faults{Network: n}).Validate(); err != nil {
		return fmt.Errorf("retune delay line: %w", err)
	}
	d.lanes[0].retune(n.Request)
	d.lanes[1].retune(n.Reply)
	return nil
}

// retune gives the lane imp and fresh counters.
func (ln *lane) retune(imp Impairment) {
	ln.tuning.Store(&tuning{imp: imp, drops0: ln.in.kernelDrops()})
}

// signalStop makes the stop eventfd readable, for good.
func (d *DelayLine) signalStop() {
	var one = [8]byte{1}
	unix.Write(d.stop, one[:]) // cannot fail short of EAGAIN at 2^64-1
}

// Stats returns what the delay line did since it was opened or last
// given a network (SetNetwork).
func (d *DelayLine) Stats() WireStats {
	return WireStats{Request: d.lanes[0].snapshot(), Reply: d.lanes[1].snapshot()}
}

// Close closes the sockets. Call it only after Run returned, or instead.
func (d *DelayLine) Close() error {
	var errs []error
	for _, r := range d.rings {
		if r != nil {
			errs = append(errs, r.Close())
		}
	}
	if d.stop >= 0 {
		errs = append(errs, unix.Close(d.stop))
		d.stop = -1
	}
	return errors.Join(errs...)
}

// RunWire runs the delay line of l's wire with n until ctx ends; ready,
// if not nil, is called once its sockets are open and frames queue up. It
// returns what the delay line did.
func RunWire(ctx context.Context, l *Lab, n Network, ready func()) (WireStats, error) {
	d, err := OpenDelayLine(l, n)
	if err != nil {
		return WireStats{}, err
	}
	defer d.Close()
	if ready != nil {
		ready()
	}
	err = d.Run(ctx)
	return d.Stats(), err
}

func (ln *lane) snapshot() LaneStats {
	tu := ln.tuning.Load()
	c := &tu.counters
	c.mu.Lock()
	holds := slices.Clone(c.holds)
	c.mu.Unlock()
	return LaneStats{Holds: holds,
		Forwarded: c.forwarded.Load(), Lost: c.lost.Load(), Overflowed: ln.in.kernelDrops() - tu.drops0,
		Skipped: c.skipped.Load(), SendErrors: c.sendErrors.Load(),
		SumLate: time.Duration(c.sumLate.Load()), MaxLate: time.Duration(c.maxLate.Load()),
	}
}

// run forwards this lane's frames until the stop eventfd is readable.
func (ln *lane) run() error {
	// Never unlocked: the thread's timer slack and nice value change, so
	// the runtime discards the thread when run returns rather than reuse it.
	runtime.LockOSThread()
	// Wake up on time, not up to 50 us late; and, when allowed (root), run
	// ahead of ordinary work when the machine is busy: on a loaded 2-vCPU VM
	// a nice-0 thread woke up to 2.5 ms late once in ~20 frames. Failing
	// either only costs accuracy.
	unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)
	unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), -20)
	for {
		f, ok := ln.in.peek()
		if !ok && ln.pollBusy() {
			continue
		}
		if !ok {
			if stop, err := ln.waitFrame(); stop || err != nil {
				return err
			}
			continue
		}
		ln.active.Store(time.Now().UnixNano())
		if stop := ln.forward(f); stop {
			return nil
		}
		ln.in.release()
	}
}

// forward sends f on after its delay, or drops it; it reports whether the
// lane must stop (f is then left in the ring).
func (ln *lane) forward(f frame) (stop bool) {
	tu := ln.tuning.Load()
	imp, c := &tu.imp, &tu.counters
	switch {
	case f.skip:
		c.skipped.Add(1)
		return false
	case imp.Loss > 0 && rand.Float64() < imp.Loss:
		c.lost.Add(1)
		return false
	}
	release := f.at.Add(imp.Delay)
	if ln.sleepUntil(release.Add(-spinMargin)) {
		return true
	}
	now := time.Now()
	for now.Before(release) { // at most spinMargin
		now = time.Now()
	}
	// Lateness is taken before the write: the write also runs what the
	// frame sets off downstream (the softirq delivering it to the node, and
	// possibly the reply coming back), which is not the delay line's error.
	late := int64(now.Sub(release))
	if _, err := unix.Write(ln.out, f.data); err != nil {
		c.sendErrors.Add(1)
		return false
	}
	// The hold, too, ends before the write; f.data is still the ring's.
	c.addHold(f.data, now.Sub(f.at))
	c.forwarded.Add(1)
	c.sumLate.Add(late)
	if late > c.maxLate.Load() {
		c.maxLate.Store(late) // this lane is the only writer
	}
	return false
}

// pollBusy looks at the ring until a frame is there (true) or busyPoll
// after the latest frame either lane took (false).
func (ln *lane) pollBusy() bool {
	until := time.Unix(0, ln.active.Load()).Add(busyPoll)
	for time.Now().Before(until) { // at most busyPoll
		if _, ok := ln.in.peek(); ok {
			return true
		}
	}
	return false
}

// sleepUntil sleeps until t, or until the stop eventfd is readable, and
// reports the latter. ppoll sleeps on an hrtimer: with the 1 ns timer
// slack it wakes within scheduling latency of t.
func (ln *lane) sleepUntil(t time.Time) (stop bool) {
	for { // bounded by t: every pass sleeps until t or returns
		wait := time.Until(t)
		if wait <= 0 {
			return false
		}
		ts := unix.NsecToTimespec(int64(wait))
		n, err := unix.Ppoll(ln.pfd[:1], &ts, nil)
		if err == nil && n > 0 {
			return true
		}
	}
}

// waitFrame blocks until a frame is in the ring or the lane must stop. A
// link that went away (the lab was removed) is an error.
func (ln *lane) waitFrame() (stop bool, err error) {
	ln.pfd[0].Revents, ln.pfd[1].Revents = 0, 0
	if _, err := unix.Ppoll(ln.pfd[:], nil, nil); err != nil {
		if errors.Is(err, unix.EINTR) {
			return false, nil
		}
		return false, fmt.Errorf("wait for frames on %s: %w", ln.in.ifname, err)
	}
	if ln.pfd[0].Revents != 0 {
		return true, nil
	}
	if ln.pfd[1].Revents&(unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) != 0 {
		err := errors.New("link gone")
		if soErr, _ := unix.GetsockoptInt(ln.in.fd, unix.SOL_SOCKET, unix.SO_ERROR); soErr != 0 {
			err = unix.Errno(soErr)
		}
		return false, fmt.Errorf("wait for frames on %s: %w", ln.in.ifname, err)
	}
	return false, nil
}
