package probe

import "time"

// flight is one probe in flight: sent, and not yet handed over.
type flight struct {
	Probe
	key   uint32 // the OPT_ID key of its TX stamps, when keyed
	keyed bool   // the send succeeded, so the kernel numbered it
	late  bool   // a reply came after Deadline; later ones are not counted again
	// due is when the run stops waiting for the reply and stampsDue, once
	// it is answered, when it stops waiting for TX stamps; both read from
	// the monotonic clock, which Config.Now may not be.
	due, stampsDue time.Time
}

// window holds the probes in flight, oldest first, in a ring that grows
// by doubling up to limit entries: a run of any length holds at most limit
// probes, and a short run only as many as it had in flight at once.
type window struct {
	ring  []flight
	start int    // index in ring of the oldest probe
	head  uint32 // its sequence number
	n     int    // probes in flight
	limit int
}

// minRing is the ring a window starts with.
const minRing = 64

func newWindow(limit int) window { return window{limit: limit} }

// full reports whether the window holds limit probes.
func (w *window) full() bool { return w.n >= w.limit }

// push adds f, whose sequence number must be head+n, as the newest probe.
// The caller makes room first (full): push on a full window overwrites
// nothing, it grows beyond limit.
func (w *window) push(f flight) {
	if w.n == 0 {
		w.head = f.Seq
	}
	if w.n == len(w.ring) {
		w.grow()
	}
	w.ring[(w.start+w.n)%len(w.ring)] = f
	w.n++
}

// grow doubles the ring (to at least minRing, at most limit unless the
// window is already that full), keeping the order.
func (w *window) grow() {
	size := min(max(2*len(w.ring), minRing), max(w.limit, w.n+1))
	ring := make([]flight, size)
	for i := range w.n {
		ring[i] = w.ring[(w.start+i)%len(w.ring)]
	}
	w.ring, w.start = ring, 0
}

// at returns the probe in flight with sequence number seq, or nil.
func (w *window) at(seq uint32) *flight {
	off := seq - w.head // wraps for seq < head, so it is >= n then
	if w.n == 0 || off >= uint32(w.n) {
		return nil
	}
	return &w.ring[(w.start+int(off))%len(w.ring)]
}

// nth returns the i-th oldest probe in flight, 0 <= i < n.
func (w *window) nth(i int) *flight { return &w.ring[(w.start+i)%len(w.ring)] }

// byKey returns the probe in flight sent with OPT_ID key k, or nil. The
// kernel numbers a socket's packets in the order they are sent, so the
// keys of the keyed probes grow with their sequence (modulo 2^32; a
// window spans far fewer keys than 2^31); a refused send has none. The
// newest probe is looked at first (a send's stamps are read right after
// it), then the window by bisection, unkeyed probes skipped: where
// collector.keys, a map, had a lookup, an insert and a delete per probe.
func (w *window) byKey(k uint32) *flight {
	if w.n == 0 {
		return nil
	}
	if f := w.nth(w.n - 1); f.keyed && f.key == k {
		return f
	}
	lo, hi := 0, w.n // a keyed probe with key k is in [lo, hi), if any
	for lo < hi {
		mid := lo + (hi-lo)/2
		j := mid
		for j < hi && !w.nth(j).keyed {
			j++
		}
		if j == hi { // nothing keyed in [mid, hi)
			hi = mid
			continue
		}
		f := w.nth(j)
		switch d := int32(f.key - k); {
		case d == 0:
			return f
		case d < 0:
			lo = j + 1
		default:
			hi = mid
		}
	}
	return nil
}

// front returns the oldest probe in flight, or nil.
func (w *window) front() *flight {
	if w.n == 0 {
		return nil
	}
	return &w.ring[w.start]
}

// pop removes the oldest probe and returns it. The window must not be
// empty.
func (w *window) pop() flight {
	f := w.ring[w.start]
	w.ring[w.start] = flight{} // drop its SendErr
	w.start = (w.start + 1) % len(w.ring)
	w.n--
	w.head++
	return f
}
