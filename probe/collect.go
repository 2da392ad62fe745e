package probe

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"
)

// collector owns a run's Result: it sends on schedule, records replies as
// they come and attaches TX timestamps to their probes. Only its goroutine
// touches res, so the receiver hands everything over through channels.
type collector struct {
	conn endpoint
	cfg  Config
	res  *Result
	// keys maps the OPT_ID key of every probe sent to its sequence. Keys of
	// earlier runs on the same socket are not in it, so their late stamps
	// are ignored.
	keys     map[uint32]uint32
	answered int
	schedule schedule
}

// newCollector starts the record of a run of cfg (prepared) on conn.
func newCollector(conn endpoint, cfg Config) *collector {
	return &collector{
		conn: conn, cfg: cfg, res: newResult(cfg),
		keys: make(map[uint32]uint32, cfg.Count), schedule: schedule{interval: cfg.Interval},
	}
}

// loop runs until every probe is answered and stamped, or cfg.Timeout after
// the last send, or ctx is done. Once the replies are in (or timed out) it
// waits at most stampGrace for TX stamps still missing. The receiver's
// error is read from rerr once recvDone is closed.
func (c *collector) loop(ctx context.Context, replies <-chan reply, stamps <-chan txStamp, recvDone <-chan struct{}, rerr *error) error {
	send := time.NewTimer(0)
	defer send.Stop()
	var deadline, grace <-chan time.Time
	timedOut := false
	for {
		if c.answered == c.cfg.Count || timedOut {
			if c.stamped() {
				return nil
			}
			if grace == nil {
				grace = time.After(stampGrace)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-recvDone:
			if err := ctx.Err(); err != nil {
				return err
			}
			return fmt.Errorf("receive echo replies: %w", *rerr)
		case <-deadline:
			timedOut = true
		case <-grace:
			return nil
		case r := <-replies:
			c.reply(r)
		case s := <-stamps:
			c.stamp(s)
		case <-send.C:
			if err := c.send(); err != nil {
				return err
			}
			if len(c.res.Probes) < c.cfg.Count {
				send.Reset(c.schedule.next(len(c.res.Probes), time.Now()))
			} else {
				deadline = time.After(c.cfg.Timeout)
			}
		}
	}
}

// schedule keeps sends on a fixed grid, start + n*interval, so the rate
// holds even when each wake-up is late (re-arming a relative timer after
// every send gave ~800 probes/s at a 1 ms interval). A sender that fell more
// than one interval behind starts a new grid rather than sending a burst.
type schedule struct {
	start    time.Time
	interval time.Duration
}

// next returns how long to wait before probe n, the first having been sent
// at start (set on the first call).
func (s *schedule) next(n int, now time.Time) time.Duration {
	if s.start.IsZero() {
		s.start = now.Add(-s.interval * time.Duration(n-1))
	}
	wait := s.start.Add(s.interval * time.Duration(n)).Sub(now)
	if wait < -s.interval {
		s.start = now.Add(-s.interval * time.Duration(n))
		return 0
	}
	return max(wait, 0)
}

func (c *collector) reply(r reply) {
	if int(r.seq) < len(c.res.Probes) && !c.res.Probes[r.seq].Answered() {
		c.res.Probes[r.seq].ReceivedAt = r.at
		c.answered++
	}
}

func (c *collector) stamp(s txStamp) {
	if seq, ok := c.keys[s.key]; ok {
		c.res.Probes[seq].addStamp(s)
	}
}

// stamped reports whether every answered probe has both TX stamps.
func (c *collector) stamped() bool {
	for i := range c.res.Probes {
		if p := &c.res.Probes[i]; p.Answered() && !p.stamped() {
			return false
		}
	}
	return true
}

// send sends the next probe and records it, with the OPT_ID key its TX
// stamps will carry. A probe the kernel refuses (Refused) is
// recorded as sent and never answered, and the run goes on: that refusal
// is what the run is there to find.
func (c *collector) send() error {
	seq := uint32(len(c.res.Probes))
	data := Payload{RunID: c.cfg.RunID, Seq: seq, SentAt: c.cfg.Now()}.Marshal(c.cfg.Size)
	b, err := protoFor(c.cfg.Target).echoRequest(c.cfg.ID, seq, data)
	if err != nil {
		return fmt.Errorf("build echo request %d: %w", seq, err)
	}
	sentAt, key, err := c.conn.sendKeyed(b, c.cfg.Target, c.cfg.Now)
	if err == nil {
		c.keys[key] = seq
	}
	p := Probe{Seq: seq, SentAt: sentAt}
	if err != nil {
		if !Refused(err) {
			return fmt.Errorf("send echo request %d to %s: %w", seq, c.cfg.Target, err)
		}
		p.SendErr = err
		if p.SentAt.IsZero() {
			p.SentAt = c.cfg.Now()
		}
	}
	c.res.Probes = append(c.res.Probes, p)
	return nil
}

// Refused reports whether err, from sending one probe, is the local stack
// refusing that packet rather than the run being impossible: EPERM
// (netfilter or a cgroup BPF program dropped it on output, as a
// NetworkPolicy does), EACCES (a prohibit route), ENOBUFS (no buffer or a
// full queue), ENETUNREACH and EHOSTUNREACH (the route went away or was
// made unreachable during the run).
func Refused(err error) bool {
	for _, e := range []error{syscall.EPERM, syscall.EACCES, syscall.ENOBUFS, syscall.ENETUNREACH, syscall.EHOSTUNREACH} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
