package capture

import (
	"time"

	"github.com/cnitrace/cnitrace/topology"
)

// Geometry of the TPACKET_V3 receive ring of every capture handle: 2 MiB
// in 128 blocks of 16 KiB. The kernel hands a block over when it is full
// or ringRetire after it opened, so at probe rates, far below a block's
// bytes, each block holds ringRetire's worth of packets, and the ring
// ringBlocks*ringRetire (1 s) of them before it drops: that is how long
// the reader may be kept off the CPU (8 blocks of 256 KiB held 64 ms, and
// dropped probe packets at a load average of 6 on two CPUs). At high rates
// the bytes bound it: about 9,000 probe packets. A block holds any frame a
// probe makes (max_frame_len is the block less its header). Frames are
// variable-sized in V3; ringFrameSize only sets the kernel's frame count.
const (
	ringBlockSize = 16 << 10
	ringBlocks    = 128
	ringFrameSize = 2048
	// ringRetire is the block retire timeout: a block holding packets is
	// handed to user space at the latest this long after it was opened.
	ringRetire = 8 * time.Millisecond
	// scanGap is how often the session's reader reads the rings while
	// packets come: one wake-up per scanGap however many rings, where a
	// wake-up per retired block was one per ring and probe at a 10 ms
	// interval. A packet reaches the sink at most ringRetire + scanGap
	// after its stamp, and a ring holds that long of packets easily (at
	// 10,000 probes a second about 130 KB, under one of its blocks).
	scanGap = 20 * time.Millisecond
	// drainTime bounds how long a stopping reader waits for the blocks
	// still open to retire: the last packets are read by then.
	drainTime = ringRetire + 20*time.Millisecond
)

// packet is one frame read from a ring.
type packet struct {
	// frame is the frame where the kernel wrote it, in the ring's shared
	// memory: valid only until the callback it is handed to returns (its
	// block then goes back to the kernel). Whatever outlives the call is
	// copied out of it.
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
