package capture

import (
	"math"
	"time"

	"github.com/cnitrace/cnitrace/topology"
)

// Geometry of the TPACKET_V3 receive ring of every capture handle: ringBlocks
// blocks of a size sized to the run (geometryFor). The kernel hands a block
// over when it is full or ringRetire after it opened, so at probe rates,
// below a block's bytes, each block holds ringRetire's worth of packets,
// and the ring ringBlocks*ringRetire (1 s) of them before it drops: that
// is how long the reader may be kept off the CPU (8 blocks of 256 KiB held
// 64 ms, and dropped probe packets at a load average of 6 on two CPUs).
// Frames are variable-sized in V3; ringFrameSize only sets the kernel's
// frame count.
const (
	ringBlocks    = 128
	ringFrameSize = 2048
	// ringRetire is the block retire timeout: a block holding packets is
	// handed to user space at the latest this long after it opened.
	ringRetire = 8 * time.Millisecond
	// drainTime bounds how long a stopping reader waits for the blocks
	// still open to retire: the last packets are read by then.
	drainTime = ringRetire + 20*time.Millisecond
)

// Sizing a ring and its reader to the run (geometryFor).
const (
	// blockHeader is a block's tpacket_block_desc, before its first packet.
	blockHeader = 48
	// slotOverhead is what a packet takes in a block besides its frame: its
	// tpacket3_hdr and sockaddr_ll (68 bytes), room for a link header of up
	// to 16 bytes, aligned to 16 (the frame of an Ethernet packet starts 82
	// bytes in, of a raw-IP one 96). Each packet then starts 16-aligned.
	slotOverhead = 96
	// encapHeadroom is what an encapsulation adds to a probe's frame at an
	// overlay's underlay point, sized for VXLAN over IPv6 (outer Ethernet,
	// IPv6, UDP, VXLAN: 70 bytes), the largest of the common ones; a
	// Geneve header with options takes more, and a block then holds
	// somewhat less than ringRetire of such packets.
	encapHeadroom = 14 + 40 + 8 + 8
	// maxEncapHeadroom is the most any encapsulation capture decodes adds:
	// outer Ethernet, IPv6, UDP, Geneve with 252 bytes of options. A block
	// holds at least one probe frame so encapsulated.
	maxEncapHeadroom = 14 + 40 + 8 + 8 + 252
	// maxBlockSize caps a block whatever rate a caller names (32 MiB a
	// ring): what 10,000 TCP probes a second from two sources need.
	maxBlockSize = 256 << 10

	// scanBatch is about how many packets a ring holds when the reader
	// scans it, at rates where that is scanGap's bound: a scan's fixed cost
	// (a wake-up, every ring looked at, three syscalls, on a cold cache at
	// low rates) is then a small part of reading them.
	scanBatch = 128
	// minScanGap is the reader's scan gap at high rates, and the one of a
	// session that does not know its rate: a packet reaches the sink at
	// most ringRetire + minScanGap (28 ms) after its stamp.
	minScanGap = 20 * time.Millisecond
	// maxScanGap is the reader's longest scan gap, at low rates: a quarter
	// of the 1 s the ring holds, which leaves the rest for a loaded machine
	// keeping the reader off the CPU.
	maxScanGap = 250 * time.Millisecond
	// defaultBlockSize is the block of a session that does not know its
	// rate: 16 KiB, 2 MiB a ring, 1 s of packets up to 4,000 probe packets
	// a second, about 9,000 packets in all at higher rates.
	defaultBlockSize = 16 << 10
)

// Rate is what a session's caller expects its points to see, so that the
// session sizes its rings and its reader's scan gap to the run
// (Config.Rate). The zero Rate, or one with a field not set, says nothing
// (cnitrace listen hears any number of runs at any rate): the session then
// reads every minScanGap, with 16 KiB blocks.
type Rate struct {
	// Interval is the time between probes: the shortest there is, when it
	// varies.
	Interval time.Duration
	// Packets is how many packets a probe makes at a point, every source's
	// probes counted: an ICMP or a UDP probe 2 (request and reply), a TCP
	// probe up to 3; twice as many with a second source at the same
	// interval.
	Packets int
	// Frame is the largest frame a probe makes (its request, reply or an
	// ICMP error quoting it), in bytes from its link header on, not
	// encapsulated: the session adds room for an encapsulation.
	Frame int
}

// geometry is a session's ring block size and its reader's scan gap.
type geometry struct {
	blockSize int
	scanGap   time.Duration
}

// ringBytes is what a ring of this geometry maps.
func (g geometry) ringBytes() int { return g.blockSize * ringBlocks }

// lag is how long after its stamp a packet reaches the sink, as planned:
// its block retires, then the reader's next scan reads it.
func (g geometry) lag() time.Duration { return ringRetire + g.scanGap }

// geometryFor sizes the rings and the reader to rate r on a system with
// pages of page bytes (a power of two). A block is the smallest power of
// two, at least a page, that holds ringRetire's worth of packets at the
// rate (so the ring's ringBlocks still hold ringBlocks*ringRetire, 1 s)
// and the largest frame in the largest encapsulation. The scan gap is the
// time a ring takes to gather scanBatch packets, between minScanGap and
// maxScanGap. An unknown rate keeps 16 KiB and minScanGap.
func geometryFor(r Rate, page int) geometry {
	if r.Interval <= 0 || r.Packets <= 0 || r.Frame <= 0 {
		return geometry{blockSize: defaultBlockSize, scanGap: minScanGap}
	}
	perSecond := float64(r.Packets) * float64(time.Second) / float64(r.Interval) // at a point
	perRetire := max(1, int(math.Ceil(perSecond*ringRetire.Seconds())))
	need := blockHeader + max(perRetire*slot(r.Frame+encapHeadroom), slot(r.Frame+maxEncapHeadroom))
	block := max(page, 1)
	for block < need && block < maxBlockSize {
		block *= 2
	}
	gap := time.Duration(scanBatch / perSecond * float64(time.Second))
	return geometry{blockSize: block, scanGap: min(max(gap, minScanGap), maxScanGap)}
}

// slot is what a packet whose frame has n bytes takes in a block.
func slot(n int) int { return (slotOverhead + n + 15) &^ 15 }

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
