package capture

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"golang.org/x/net/bpf"

	"github.com/cnitrace/cnitrace/topology"
)

// ErrNotSupported is returned on systems without AF_PACKET rings.
var ErrNotSupported = errors.New("packet capture is not supported")

// Config says what a capture Session matches and keeps.
type Config struct {
	Magic      uint32   // probe.Magic, passed in by the caller (capture never imports probe)
	UDPPorts   []uint16 // extra tunnel ports (4789 and 8472 always included)
	KeepFrames bool     // keep Observation.Frame (for pcapng)
	// Sink, when set, receives every observation as it is decoded, from the
	// session's one reader goroutine (so never two calls at once), and the
	// session keeps none: a long run then holds only what the sink
	// keeps. Capture.Observations is empty.
	Sink func(Observation)
	// Armed, when set, is called once by Start when every handle is open
	// and before any reader starts, so before the first Sink call, with
	// every target's point and the link type its ring found, in target
	// order: what a pcapng file's interface blocks need before its first
	// packet (NewPcapNGStream). It runs on Start's goroutine while the
	// rings already queue packets, so it should be quick. An error fails
	// Start: the handles are closed again and the error is returned.
	Armed func([]Interface) error
	// Rate, when set, says what the caller will send, so that the session
	// sizes its rings' blocks and its reader's scan gap to the run: a slow
	// run is read every few hundred ms, from small rings, a fast one every
	// 20 ms, from rings that hold as long of its packets. Without it the
	// session keeps the geometry of an unknown rate (Rate).
	Rate Rate
}

// Interface is one capture point as Start opened it: the point, the link
// type its ring found inside the point's netns (as PointStats.Link), and
// how long after its stamp the session's reader hands a packet over as
// planned (its block's retire timeout and the reader's scan gap; a loaded
// machine adds to it): what a reorder window must span (NewPcapNGStream).
type Interface struct {
	Point topology.Point
	Link  LinkType
	Lag   time.Duration
}

// Target is one capture point and the network namespace its interface lives
// in. The NetNS must stay open until Start returns.
type Target struct {
	NS    *topology.NetNS
	Point topology.Point
}

// Capture is what a Session saw.
type Capture struct {
	Observations []Observation // sorted by time, then by target order
	Stats        []PointStats  // one per target, in target order
}

// PointStats are the counters of one capture point. Packets and Drops come
// from the kernel: Packets counts every packet the filter accepted, including
// the dropped ones; Drops and Freezes show the ring overflowed.
type PointStats struct {
	Point          string
	Link           LinkType // the interface's, found when its socket was opened
	Packets, Drops uint64
	Freezes        uint64 // times the kernel froze the full ring's queue
	Undecodable    int    // accepted by the filter but not decodable
}

// Session captures on a set of points, one handle per point and one
// reader goroutine for them all. Create it with Start and always end it
// with Stop.
type Session struct {
	handles []*handle
	poll    *poller
	geo     geometry // the rings' and the reader's, sized to Config.Rate
	stop    chan struct{}
	done    chan struct{} // closed when the reader returned

	stopOnce sync.Once

	mu      sync.Mutex
	stopped bool

	// released is closed once Finish's background close of the rings
	// and the poller is done; releaseErr is what it returned.
	released   chan struct{}
	releaseErr error
}

// Start opens a capture handle on every target, each inside its target's
// netns, and starts reading them. Each handle finds its interface's link
// type (Ethernet or raw IP) when it opens and filters and decodes for it;
// Config.Armed hears of them all before the first packet is read. All
// handles are open when Start returns, so probing can start right after;
// if one cannot be opened, the ones opened are closed again and the error
// names the point. Cancelling ctx stops the
// reader early; Stop (or Finish and then Close) must still be called to
// collect what was read and to release the handles.
func Start(ctx context.Context, targets []Target, cfg Config) (*Session, error) {
	if len(targets) == 0 {
		return nil, errors.New("start capture: no capture points")
	}
	if err := checkPointIDs(targets); err != nil {
		return nil, fmt.Errorf("start capture: %w", err)
	}
	f, err := newFilters(cfg.Magic, cfg.UDPPorts)
	if err != nil {
		return nil, fmt.Errorf("start capture: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start capture: %w", err)
	}
	geo := geometryFor(cfg.Rate, os.Getpagesize())
	rings, err := openRings(targets, f, geo)
	if err != nil {
		return nil, fmt.Errorf("start capture: %w", err)
	}
	s := &Session{stop: make(chan struct{}), geo: geo}
	for i, t := range targets {
		s.handles = append(s.handles, &handle{
			point: t.Point,
			ring:  rings[i],
			dec:   newDecoder(rings[i].link, cfg.Magic, cfg.UDPPorts),
			keep:  cfg.KeepFrames,
			sink:  cfg.Sink,
		})
	}
	if s.poll, err = newPoller(rings); err != nil {
		s.closeAll()
		return nil, fmt.Errorf("start capture: %w", err)
	}
	if err := ctx.Err(); err != nil {
		s.closeAll()
		return nil, fmt.Errorf("start capture: %w", err)
	}
	if err := s.armed(cfg.Armed); err != nil {
		s.closeAll()
		return nil, fmt.Errorf("start capture: %w", err)
	}
	s.done = make(chan struct{})
	go s.read(ctx)
	return s, nil
}

// armed tells fn, if set, what every handle opened as.
func (s *Session) armed(fn func([]Interface) error) error {
	if fn == nil {
		return nil
	}
	ifaces := make([]Interface, 0, len(s.handles))
	for _, h := range s.handles {
		ifaces = append(ifaces, Interface{Point: h.point, Link: h.ring.link, Lag: s.geo.lag()})
	}
	return fn(ifaces)
}

// filters holds the assembled probe filter of every link type. Start builds
// them all before it enters any netns; each ring takes the one of its
// interface's link type, which it learns only inside the netns.
type filters map[LinkType][]bpf.RawInstruction

func newFilters(magic uint32, udpPorts []uint16) (filters, error) {
	f := filters{}
	for _, link := range []LinkType{LinkEthernet, LinkRawIP} {
		prog, err := FilterFor(link, magic, udpPorts)
		if err != nil {
			return nil, err
		}
		if f[link], err = bpf.Assemble(prog); err != nil {
			return nil, fmt.Errorf("assemble %s filter: %w", link, err)
		}
	}
	return f, nil
}

func checkPointIDs(targets []Target) error {
	seen := map[string]bool{}
	for _, t := range targets {
		if t.Point.ID == "" {
			return fmt.Errorf("capture point %s has no ID", t.Point.Name())
		}
		if seen[t.Point.ID] {
			return fmt.Errorf("capture point ID %q used twice", t.Point.ID)
		}
		seen[t.Point.ID] = true
	}
	return nil
}

// Stop waits until what is already in the rings has been read (until the
// rings' counters say every packet the kernel put there was, at most
// drainTime), stops the reader, closes every handle and returns all
// observations sorted by time. On error it still returns what was
// captured, with the error of every point that failed. Stop may be called
// once; it also works after ctx was cancelled.
func (s *Session) Stop() (*Capture, error) {
	if err := s.markStopped(); err != nil {
		return nil, err
	}
	s.stopReading()
	stats, serrs := s.counters()
	cerrs := closeRings(s.rings())
	var errs []error
	if err := s.poll.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close the epoll set: %w", err))
	}
	return s.assemble(stats, serrs, cerrs, errs)
}

// Finish is Stop but for the closing: it waits for the same drain, stops
// the reader and reads every ring's counters (so Stats, drops included,
// are final: what Stop returns), returns what the session saw, and only
// starts closing the rings, in the background. Closing a ring waits for
// two RCU grace periods (packet_release: 26 ms for five rings together
// here), which the caller can spend writing its report; Close waits for
// them and says whether every ring closed. Finish or Stop may be called
// once; Close must follow Finish.
func (s *Session) Finish() (*Capture, error) {
	if err := s.markStopped(); err != nil {
		return nil, err
	}
	s.stopReading()
	stats, serrs := s.counters()
	released := make(chan struct{})
	s.mu.Lock()
	s.released = released
	s.mu.Unlock()
	rings := s.rings()
	go func() {
		defer close(released)
		var errs []error
		for i, err := range closeRings(rings) {
			if err != nil {
				errs = append(errs, fmt.Errorf("close capture on %s: %w", s.handles[i].point.Name(), err))
			}
		}
		if err := s.poll.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close the epoll set: %w", err))
		}
		s.releaseErr = errors.Join(errs...)
	}()
	return s.assemble(stats, serrs, make([]error, len(s.handles)), nil)
}

// Close waits until the rings Finish started closing are closed, and
// returns what closing them failed on. It may be called more than once;
// after Stop, or before Finish, it does nothing.
func (s *Session) Close() error {
	s.mu.Lock()
	released := s.released
	s.mu.Unlock()
	if released == nil {
		return nil
	}
	<-released
	return s.releaseErr
}

// markStopped makes sure Stop or Finish runs once.
func (s *Session) markStopped() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return errors.New("stop capture: already stopped")
	}
	s.stopped = true
	return nil
}

// stopReading tells the reader to drain the rings and stop, and waits
// until it has. It may be called more than once.
func (s *Session) stopReading() {
	s.stopOnce.Do(func() {
		close(s.stop)
		s.poll.wake()
	})
	<-s.done
}

// counters reads every ring's counters, which closing it loses; the
// reader must have stopped.
func (s *Session) counters() ([]ringStats, []error) {
	stats := make([]ringStats, len(s.handles))
	serrs := make([]error, len(s.handles))
	for i, h := range s.handles {
		stats[i], serrs[i] = h.ring.stats()
	}
	return stats, serrs
}

// assemble puts together what the session saw from the rings' counters,
// the errors of reading them (serrs) and of closing them (cerrs), one per
// handle, and the session's own errors; the reader must have stopped.
func (s *Session) assemble(stats []ringStats, serrs, cerrs, errs []error) (*Capture, error) {
	c := &Capture{}
	for i, h := range s.handles {
		st := stats[i]
		if err := errors.Join(h.err, serrs[i], cerrs[i]); err != nil {
			errs = append(errs, fmt.Errorf("capture on %s: %w", h.point.Name(), err))
		}
		c.Stats = append(c.Stats, PointStats{
			Point:       h.point.ID,
			Link:        h.ring.link,
			Packets:     st.packets,
			Drops:       st.drops,
			Freezes:     st.freezes,
			Undecodable: h.undecodable,
		})
		c.Observations = append(c.Observations, h.obs...)
	}
	// Stable: equal stamps (inherited along stacked devices) keep target order.
	slices.SortStableFunc(c.Observations, func(a, b Observation) int { return a.At.Compare(b.At) })
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("stop capture: %w", err)
	}
	return c, nil
}

// closeAll closes what a Start that failed opened.
func (s *Session) closeAll() {
	if s.poll != nil {
		s.poll.Close()
	}
	closeRings(s.rings())
	s.handles = nil
}

// rings returns the handles' rings, in target order.
func (s *Session) rings() []*ring {
	rings := make([]*ring, len(s.handles))
	for i, h := range s.handles {
		rings[i] = h.ring
	}
	return rings
}

// openRings opens a ring of geometry g on every target at once, each in
// its own netns, and returns them in target order. Setting up a ring waits for an RCU
// grace period (PACKET_RX_RING calls synchronize_net), 6-20 ms each here:
// opened one after the other, five rings took 69 ms, together they wait
// for about one. If any fails, the others are closed again and the error
// of the first failing target is returned.
func openRings(targets []Target, f filters, g geometry) ([]*ring, error) {
	rings := make([]*ring, len(targets))
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() { rings[i], errs[i] = openRingIn(t.NS, t.Point, f, g) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			closeRings(rings)
			return nil, err
		}
	}
	return rings, nil
}

// closeRings closes every ring that is not nil, all at once, and returns
// each one's error, in order. Closing a ring waits
// for RCU grace periods too (packet_release calls synchronize_net): five
// rings closed in turn took 113 ms; closed together their waits overlap.
func closeRings(rings []*ring) []error {
	errs := make([]error, len(rings))
	var wg sync.WaitGroup
	for i, r := range rings {
		if r != nil {
			wg.Go(func() { errs[i] = r.Close() })
		}
	}
	wg.Wait()
	return errs
}
