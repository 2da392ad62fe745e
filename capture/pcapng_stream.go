package capture

import (
	"errors"
	"io"
	"sync"
	"time"
)

// PcapNGStream writes a pcapng file (PcapNGWriter's layout) while the
// capture runs: create it from Config.Armed, with the interfaces it
// reports, and call Add from Config.Sink. Add only queues the packet and
// returns, so a capture reader never waits for the file; the stream's own
// goroutine labels, orders and encodes the packets and writes them through
// a 64 KiB buffer.
//
// Packets are written in the order of their kernel timestamps (equal
// stamps in path order: a request's points first to last, a reply's last
// to first), as far as the reorder window allows: a packet is written once
// one a window newer has arrived, the rest at Close. The window follows
// the capture's lag: it spans at least ReorderWindow, reorderLags times
// the longest lag the interfaces plan (Interface.Lag: a block retire
// timeout and the reader's scan gap, 28 ms to 258 ms), and twice the most
// a packet was seen late by (how far its stamp was behind the newest
// one's when it arrived: a reader kept off the CPU), up to
// MaxReorderWindow. So the file is in time order unless a reader fell
// behind by over half the window at once. Memory stays bounded: at most MaxQueued
// packets wait for the writer, at most MaxHeld in the window. When the
// writer falls MaxQueued packets behind (the file's disk stalls), further
// packets are left out of the file and counted per point (LeftOut, and
// the statistics blocks), rather than make the capture wait and its rings
// drop.
type PcapNGStream struct {
	w     *PcapNGWriter
	label func(Observation) string
	steps map[stepKey]int // tie-break for equal stamps
	span  time.Duration   // the window's width to begin with
	start time.Time

	mu      sync.Mutex
	queue   []Observation
	left    map[string]uint64 // left out, per point: the queue was full
	closed  bool
	wake    chan struct{} // signalled when queue becomes non-empty
	stop    chan struct{} // closed by Close
	stopped chan struct{} // closed when the writer goroutine is done

	err error // the writer goroutine's first error; read after stopped
}

// Limits of a PcapNGStream.
const (
	// ReorderWindow is the shortest reorder window, how far in capture
	// time a packet may be handed over late and still be written in time
	// order: over reorderLags times the lag of a reader that reads every
	// 20 ms (a block retire timeout and its scan gap, 28 ms).
	ReorderWindow = 100 * time.Millisecond
	// MaxReorderWindow is the widest the window grows to, however late a
	// packet arrived (a ring holds about 1 s of packets: a reader later
	// than that loses them anyway).
	MaxReorderWindow = 4 * time.Second
	// MaxQueued is how many packets may wait for the writer goroutine:
	// some 6 s of a five-point path's packets at 1 ms probes.
	MaxQueued = 1 << 16
	// MaxHeld is how many packets the reorder window holds at most (at
	// 1 ms probes on a five-point path it holds some 1,000 to 2,500); the
	// oldest is written when it is full.
	MaxHeld = 1 << 14
	// reorderLags is how many of the capture's planned lags the window
	// spans at least.
	reorderLags = 3
)

type stepKey struct {
	point string
	reply bool
}

// NewPcapNGStream writes the section and interface blocks of ifaces (in
// their order) to w and starts the writer goroutine; label, if not nil,
// gives each packet's comment its first words (PcapNGWriter.WritePacket),
// and is called on the writer goroutine. Close must be called to end it.
func NewPcapNGStream(w io.Writer, ifaces []Interface, label func(Observation) string) (*PcapNGStream, error) {
	pw, err := NewPcapNGWriter(w, ifaces)
	if err != nil {
		return nil, err
	}
	if err := pw.Flush(); err != nil { // a file that cannot be written shows now
		return nil, err
	}
	s := &PcapNGStream{
		w:       pw,
		label:   label,
		steps:   make(map[stepKey]int, 2*len(ifaces)),
		span:    ReorderWindow,
		start:   time.Now(),
		left:    map[string]uint64{},
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	for i, f := range ifaces {
		s.steps[stepKey{f.Point.ID, false}] = i
		s.steps[stepKey{f.Point.ID, true}] = 2*len(ifaces) - 1 - i
		s.span = min(max(s.span, reorderLags*f.Lag), MaxReorderWindow)
	}
	go s.run()
	return s, nil
}

// Add queues o for the file. It is safe for concurrent use and never
// blocks on the file: when MaxQueued packets already wait, o is left out
// and counted. Adds after Close are ignored.
func (s *PcapNGStream) Add(o Observation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return
	case len(s.queue) >= MaxQueued:
		s.left[o.Point]++
		return
	}
	s.queue = append(s.queue, o)
	if len(s.queue) == 1 {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// Close writes the packets still waiting, then, when stats is not nil, an
// interface statistics block per point (PcapNGWriter.WriteStats), flushes,
// and stops the writer goroutine. It does not close the underlying
// writer. It returns the first error writing met; packets left out are
// not an error (LeftOut says how many). A second call is an error.
func (s *PcapNGStream) Close(stats []PointStats) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errors.New("close pcapng stream: already closed")
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	<-s.stopped
	if s.err != nil {
		return s.err
	}
	if stats != nil {
		if err := s.w.WriteStats(stats, s.LeftOut(), s.start, time.Now()); err != nil {
			return err
		}
	}
	return s.w.Flush()
}

// LeftOut returns, per point ID, the packets left out of the file because
// the writer fell MaxQueued packets behind; nil when none were.
func (s *PcapNGStream) LeftOut() map[string]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.left) == 0 {
		return nil
	}
	left := make(map[string]uint64, len(s.left))
	for p, n := range s.left {
		left[p] = n
	}
	return left
}

// run is the writer goroutine: it takes what was queued, passes it
// through the reorder window and writes what leaves it. After an error it
// keeps taking packets, so that Add stays cheap, and drops them.
func (s *PcapNGStream) run() {
	defer close(s.stopped)
	var batch []Observation
	win := reorder{span: int64(s.span)}
	for done := false; !done; {
		select {
		case <-s.wake:
		case <-s.stop:
			done = true
		}
		s.mu.Lock()
		batch, s.queue = s.queue, batch[:0]
		s.mu.Unlock()
		for _, o := range batch {
			win.push(o, s.steps[stepKey{o.Point, o.IsReply()}])
		}
		clear(batch) // let the frames go
		for win.due(done) {
			s.write(win.pop())
		}
	}
}

// write writes one packet, or drops it after an earlier error.
func (s *PcapNGStream) write(o Observation) {
	if s.err != nil {
		return
	}
	label := ""
	if s.label != nil {
		label = s.label(o)
	}
	s.err = s.w.WritePacket(o, label)
}

// reorder is the stream's reorder window and its width, which grows to
// twice the most a packet was seen late by, up to MaxReorderWindow.
type reorder struct {
	window
	newest int64 // the newest stamp pushed, ns
	span   int64 // the window's width, ns
}

// push holds o, at step along the path, and widens the window if o came
// later than half its width.
func (r *reorder) push(o Observation, step int) {
	at := o.At.UnixNano()
	if late := r.newest - at; late > r.span/2 {
		r.span = min(2*late, int64(MaxReorderWindow))
	}
	r.newest = max(r.newest, at)
	r.window.push(o, step)
}

// due reports whether the oldest packet held is to be written now: at the
// end (done), when the window is full, or once it is a width older than
// the newest.
func (r *reorder) due(done bool) bool {
	return r.len() > 0 && (done || r.len() > MaxHeld || r.oldest() < r.newest-r.span)
}

// window is the reorder window: the packets held, and a min-heap of
// small keys into them by time, then by step along the path (swapping
// whole Observations, or boxing them for container/heap, costs more than
// the rest of the write).
type window struct {
	keys  []held
	slots []Observation
	free  []int32
}

// held is the heap key of a packet in the window.
type held struct {
	at   int64 // ns
	step int32
	slot int32 // in window.slots
}

func (w *window) len() int { return len(w.keys) }

// oldest is the time of the oldest packet held; len must be > 0.
func (w *window) oldest() int64 { return w.keys[0].at }

func (w *window) less(i, j int) bool {
	a, b := w.keys[i], w.keys[j]
	return a.at < b.at || a.at == b.at && a.step < b.step
}

func (w *window) push(o Observation, step int) {
	var slot int32
	if n := len(w.free); n > 0 {
		slot, w.free = w.free[n-1], w.free[:n-1]
		w.slots[slot] = o
	} else {
		slot = int32(len(w.slots))
		w.slots = append(w.slots, o)
	}
	w.keys = append(w.keys, held{at: o.At.UnixNano(), step: int32(step), slot: slot})
	for i := len(w.keys) - 1; i > 0; {
		parent := (i - 1) / 2
		if !w.less(i, parent) {
			break
		}
		w.keys[i], w.keys[parent] = w.keys[parent], w.keys[i]
		i = parent
	}
}

func (w *window) pop() Observation {
	top, n := w.keys[0], len(w.keys)-1
	w.keys[0] = w.keys[n]
	w.keys = w.keys[:n]
	for i := 0; ; {
		least, l, r := i, 2*i+1, 2*i+2
		if l < n && w.less(l, least) {
			least = l
		}
		if r < n && w.less(r, least) {
			least = r
		}
		if least == i {
			break
		}
		w.keys[i], w.keys[least] = w.keys[least], w.keys[i]
		i = least
	}
	o := w.slots[top.slot]
	w.slots[top.slot] = Observation{} // let the frame go
	w.free = append(w.free, top.slot)
	return o
}
