package capture

import (
	"context"
	"errors"
	"fmt"
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
	// point's reader goroutine (so concurrently, one goroutine per point),
	// and the session keeps none: a long run then holds only what the sink
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
}

// Interface is one capture point as Start opened it: the point, and the
// link type its ring found inside the point's netns (as PointStats.Link).
type Interface struct {
	Point topology.Point
	Link  LinkType
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

// Session captures on a set of points, one handle and one reader goroutine
// per point. Create it with Start and always end it with Stop.
type Session struct {
	handles []*handle
	stop    chan struct{}
	wg      sync.WaitGroup

	mu      sync.Mutex
	stopped bool
}

// Start opens a capture handle on every target, each inside its target's
// netns, and starts reading them. Each handle finds its interface's link
// type (Ethernet or raw IP) when it opens and filters and decodes for it;
// Config.Armed hears of them all before the first packet is read. All
// handles are open when Start returns, so probing can start right after;
// if one cannot be opened, the ones opened are closed again and the error
// names the point. Cancelling ctx stops the
// readers early; Stop must still be called to collect what was read and to
// release the handles.
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
	rings, err := openRings(targets, f)
	if err != nil {
		return nil, fmt.Errorf("start capture: %w", err)
	}
	s := &Session{stop: make(chan struct{})}
	for i, t := range targets {
		s.handles = append(s.handles, &handle{
			point: t.Point,
			ring:  rings[i],
			dec:   newDecoder(rings[i].link, cfg.Magic, cfg.UDPPorts),
			keep:  cfg.KeepFrames,
			sink:  cfg.Sink,
		})
	}
	if err := ctx.Err(); err != nil {
		s.closeAll()
		return nil, fmt.Errorf("start capture: %w", err)
	}
	if err := s.armed(cfg.Armed); err != nil {
		s.closeAll()
		return nil, fmt.Errorf("start capture: %w", err)
	}
	for _, h := range s.handles {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			h.run(ctx, s.stop)
		}()
	}
	return s, nil
}

// armed tells fn, if set, what every handle opened as.
func (s *Session) armed(fn func([]Interface) error) error {
	if fn == nil {
		return nil
	}
	ifaces := make([]Interface, 0, len(s.handles))
	for _, h := range s.handles {
		ifaces = append(ifaces, Interface{Point: h.point, Link: h.ring.link})
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

// Stop waits until what is already in the rings has been read (at least the
// block retire timeout and one poll), stops the readers, closes every handle
// and returns all observations sorted by time. On error it still returns
// what was captured, with the error of every point that failed. Stop may be
// called once; it also works after ctx was cancelled.
func (s *Session) Stop() (*Capture, error) {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil, errors.New("stop capture: already stopped")
	}
	s.stopped = true
	s.mu.Unlock()

	close(s.stop)
	s.wg.Wait()
	c := &Capture{}
	stats := make([]ringStats, len(s.handles))
	serrs := make([]error, len(s.handles))
	for i, h := range s.handles {
		stats[i], serrs[i] = h.ring.stats() // before the close, which loses them
	}
	cerrs := closeRings(s.rings())
	var errs []error
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

func (s *Session) closeAll() {
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

// openRings opens a ring on every target at once, each in its own netns,
// and returns them in target order. Setting up a ring waits for an RCU
// grace period (PACKET_RX_RING calls synchronize_net), 6-20 ms each here:
// opened one after the other, five rings took 69 ms, together they wait
// for about one. If any fails, the others are closed again and the error
// of the first failing target is returned.
func openRings(targets []Target, f filters) ([]*ring, error) {
	rings := make([]*ring, len(targets))
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() { rings[i], errs[i] = openRingIn(t.NS, t.Point, f) })
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

// handle is one capture point's ring and what its reader goroutine found.
// Everything but the ring is owned by the reader until it returns.
type handle struct {
	point       topology.Point
	ring        *ring
	dec         *Decoder
	keep        bool
	sink        func(Observation)
	obs         []Observation
	undecodable int
	err         error
}

// run reads the ring until stop is closed or ctx is done, then drains it.
func (h *handle) run(ctx context.Context, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			h.drain()
			return
		case <-ctx.Done():
			h.drain()
			return
		default:
		}
		if _, err := h.ring.next(pollInterval, h.add); err != nil {
			h.err = err
			return
		}
	}
}

// drain keeps reading for drainTime, long enough for the kernel to retire
// the block that held the last packets, then reads what is left.
func (h *handle) drain() {
	deadline := time.Now().Add(drainTime)
	for {
		left := max(time.Until(deadline), 0)
		got, err := h.ring.next(min(left, pollInterval), h.add)
		if err != nil {
			h.err = err
			return
		}
		if !got && left == 0 {
			return
		}
	}
}

// add decodes one packet into an observation of the handle's point.
func (h *handle) add(p packet) {
	o, err := h.dec.Decode(p.frame, Meta{Point: h.point.ID, At: p.at, Stamp: p.stamp, Dir: p.dir})
	if err != nil {
		h.undecodable++
		return
	}
	if h.keep {
		o.Frame = p.frame
	}
	if h.sink != nil {
		h.sink(o)
		return
	}
	h.obs = append(h.obs, o)
}
