package capture

import (
	"context"
	"time"

	"github.com/cnitrace/cnitrace/topology"
)

// handle is one capture point's ring and what the reader found there.
// Everything but the ring is owned by the reader until it returns.
type handle struct {
	point       topology.Point
	ring        *ring
	dec         *Decoder
	keep        bool
	sink        func(Observation)
	obs         []Observation
	undecodable int
	err         error // reading stopped on it; the ring is read no more
}

// read is the session's one reader: until Stop or ctx is done it reads
// every ring each scan gap (geometryFor: from 20 ms at high or unknown
// rates to 250 ms at low ones) while packets come, and once a scan found none
// it waits in the netpoller for any ring to hold a retired block; then it
// drains them. It holds no OS thread while it waits.
func (s *Session) read(ctx context.Context) {
	defer close(s.done)
	stopWaking := context.AfterFunc(ctx, s.poll.wake)
	defer stopWaking()
	idle := true
	for s.running(ctx) {
		if idle {
			events, err := s.poll.wait(time.Time{})
			if err != nil {
				s.failAll(err)
				return
			}
			if len(events) == 0 {
				continue // woken to stop
			}
		}
		if !s.pause(ctx, s.geo.scanGap) {
			break
		}
		if err := s.checkErrors(); err != nil {
			s.failAll(err)
			return
		}
		idle = s.scan() == 0
	}
	s.drain()
}

// running reports whether neither Stop was called nor ctx is done.
func (s *Session) running(ctx context.Context) bool {
	select {
	case <-s.stop:
		return false
	case <-ctx.Done():
		return false
	default:
		return true
	}
}

// pause waits d, and reports false if Stop was called or ctx was done
// meanwhile (both wake the poller, after closing their channel: a sleep
// after that returns at once), or the poller's timer failed.
func (s *Session) pause(ctx context.Context, d time.Duration) bool {
	if err := s.poll.sleep(d); err != nil {
		s.failAll(err)
		return false
	}
	return s.running(ctx)
}

// checkErrors stops reading every ring whose socket reports an error (the
// interface went down or away), and keeps the error; it fails only when
// the poller cannot tell.
func (s *Session) checkErrors() error {
	events, err := s.poll.ready()
	if err != nil {
		return err
	}
	for _, ev := range events {
		if !ev.failed {
			continue
		}
		h := s.handles[ev.ring]
		if err := h.ring.sockErr(); err != nil && h.err == nil {
			h.err = err
			s.poll.remove(h.ring)
		}
	}
	return nil
}

// scan reads every retired block of every ring still read, and returns
// how many packets it read.
func (s *Session) scan() int {
	total := 0
	for _, h := range s.handles {
		if h.err != nil {
			continue
		}
		n, err := h.ring.readBlocks(h.add)
		total += n
		if err != nil {
			h.err = err
			s.poll.remove(h.ring)
		}
	}
	return total
}

// drain reads the rings until every packet the kernel put in them was read
// (their counters say so), waiting for the blocks still open to retire,
// but for drainTime at most: what a ring holds when Stop is called is
// read by then. A short trace waits for the last blocks only, at most
// ringRetire, where it once waited drainTime every time. A ring whose
// socket reports an error is read no more here either: its EPOLLERR,
// always reported, would end every wait at once until drainTime.
func (s *Session) drain() {
	end := time.Now().Add(drainTime)
	for {
		s.scan()
		if !s.pending() || !time.Now().Before(end) {
			return
		}
		if _, err := s.poll.wait(end); err != nil {
			s.failAll(err)
			return
		}
		if err := s.checkErrors(); err != nil {
			s.failAll(err)
			return
		}
	}
}

// pending reports whether a ring still read holds packets not read yet.
func (s *Session) pending() bool {
	for _, h := range s.handles {
		if h.err != nil {
			continue
		}
		if p, err := h.ring.pending(); err == nil && p {
			return true
		}
	}
	return false
}

// failAll records err on every ring still read: waiting failed for all.
func (s *Session) failAll(err error) {
	for _, h := range s.handles {
		if h.err == nil {
			h.err = err
		}
	}
}

// add decodes one packet into an observation of the handle's point. The
// frame is read in place, in the ring: Decode copies what the observation
// keeps of it (Payload, Token), and the whole frame is copied only when
// kept for the pcapng.
func (h *handle) add(p packet) {
	o, err := h.dec.Decode(p.frame, Meta{Point: h.point.ID, At: p.at, Stamp: p.stamp, Dir: p.dir})
	if err != nil {
		h.undecodable++
		return
	}
	if h.keep {
		o.Frame = append([]byte(nil), p.frame...) // out of the ring, whose block goes back to the kernel
	}
	if h.sink != nil {
		h.sink(o)
		return
	}
	h.obs = append(h.obs, o)
}
