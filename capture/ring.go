package capture

import (
	"time"

	"github.com/cnitrace/cnitrace/topology"
)

// Geometry of the TPACKET_V3 receive ring of every capture handle: 2 MiB,
// enough for thousands of probe packets between two reads. Frames are
// variable-sized in V3; ringFrameSize only sets the kernel's frame count.
const (
	ringBlockSize = 256 << 10
	ringBlocks    = 8
	ringFrameSize = 2048
	// ringRetire is the block retire timeout: a block holding packets is
	// handed to user space at the latest this long after it was opened.
	ringRetire = 8 * time.Millisecond
	// scanGap is how long the session's reader waits, once a ring has a
	// block for it, before it reads every ring: the blocks that hold one
	// probe's packets at the other points retire within ringRetire of
	// the first, so one scan takes them all (every ring's retire timer
	// runs on its own clock). It also bounds the reader's wake-ups to
	// two per scanGap, however many rings and packets.
	scanGap = ringRetire
	// drainTime bounds how long a stopping reader waits for the blocks
	// still open to retire: the last packets are read by then.
	drainTime = ringRetire + 20*time.Millisecond
)

// packet is one frame read from a ring, copied out of the shared memory.
type packet struct {
	frame []byte
	at    time.Time
	stamp StampSource
	dir   topology.Dir
}

// readiness is one ring's state when the session's poller woke up.
type readiness struct {
	ring   int  // the ring's index in the session
	failed bool // its socket has an error pending (EPOLLERR)
}

// ringStats are the kernel's counters of one capture socket
// (PACKET_STATISTICS, tpacket_stats_v3).
type ringStats struct {
	packets uint64 // accepted by the filter, including drops
	drops   uint64 // lost because the ring was full
	freezes uint64 // times the ring queue was frozen because it was full
}
