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
	// pollInterval bounds every wait on the ring, so a reader sees a stop
	// request within about this long.
	pollInterval = 20 * time.Millisecond
	// drainTime is how long a stopping reader keeps reading: whatever was
	// in the ring when it was asked to stop is retired and read by then.
	drainTime = ringRetire + pollInterval
)

// packet is one frame read from a ring, copied out of the shared memory.
type packet struct {
	frame []byte
	at    time.Time
	stamp StampSource
	dir   topology.Dir
}

// ringStats are the kernel's counters of one capture socket
// (PACKET_STATISTICS, tpacket_stats_v3).
type ringStats struct {
	packets uint64 // accepted by the filter, including drops
	drops   uint64 // lost because the ring was full
	freezes uint64 // times the ring queue was frozen because it was full
}
