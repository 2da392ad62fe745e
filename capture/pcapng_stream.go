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
// to first), as far as a window of ReorderWindow allows: a packet is
// written once one ReorderWindow newer has arrived, the rest at Close.
// The readers hand packets over within about 30 ms of their stamps (a
// block retire timeout and a poll), so the file is in time order unless a
// reader fell further behind. Memory stays bounded: at most MaxQueued
// packets wait for the writer, at most MaxHeld in the window. When the
// writer falls MaxQueued packets behind (the file's disk stalls), further
// packets are left out of the file and counted per point (LeftOut, and
// the statistics blocks), rather than make the capture wait and its rings
// drop.
type PcapNGStream struct {
	w     *PcapNGWriter
	label func(Observation) string
	steps map[stepKey]int // tie-break for equal stamps
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
	// ReorderWindow is how far, in capture time, a packet may be handed
	// over late and still be written in time order: over three times the
	// usual lag of a reader (a block retire timeout and a poll, 28 ms).
	ReorderWindow = 100 * time.Millisecond
	// MaxQueued is how many packets may wait for the writer goroutine:
	// some 6 s of a five-point path's packets at 1 ms probes.
	MaxQueued = 1 << 16
	// MaxHeld is how many packets the reorder window holds at most (at
	// 1 ms probes on a five-point path it holds some 1,000); the oldest is
	// written when it is full.
	MaxHeld = 1 << 14
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
		start:   time.Now(),
		left:    map[string]uint64{},
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	for i, f := range ifaces {
		s.steps[stepKey{f.Point.ID, false}] = i
		s.steps[stepKey{f.Point.ID, true}] = 2*len(ifaces) - 1 - i
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
	var (
		win    window
		newest int64 // ns
		batch  []Observation
	)
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
			newest = max(newest, o.At.UnixNano())
			win.push(o, s.steps[stepKey{o.Point, o.IsReply()}])
		}
		clear(batch) // let the frames go
		for win.len() > 0 && (done || win.len() > MaxHeld || win.oldest() < newest-int64(ReorderWindow)) {
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
