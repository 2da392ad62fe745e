package probe

import (
	"net"
	"net/netip"
	"time"
)

// Conn is a probe socket, as Open, Listen, ListenIPv6 and ListenFor return it: a
// net.PacketConn that also sends each request with the key of its kernel TX
// timestamps, and reads replies and stamps in one go. Run and RunSources
// take nothing else. The methods they use are unexported, so only this
// package makes a Conn, and a connection that cannot report TX timestamps is
// refused by the compiler instead of being probed without them. One run at a
// time may use a Conn (two would read each other's replies); close it when
// done.
type Conn interface {
	net.PacketConn
	endpoint
}

// endpoint is all a run needs of its socket. Listen's *socket implements it
// for the kernel and the tests' fakes implement it for a pretend peer, so
// both drive the same send path, receive loop, reply matching and hand-over
// to the collector.
type endpoint interface {
	// codec checks that cfg (prepared) can be sent on the socket, its
	// protocol and target family, and returns how the run builds its
	// requests and recognises their answers.
	codec(cfg Config) (codec, error)
	// sendKeyed sends b to dst (the port is 0 for ICMP and raw TCP), reading now just before the send, and
	// returns that time and the OPT_ID key the kernel gives the packet's TX
	// timestamps: the keys of successive successful sends grow (modulo
	// 2^32), as the kernel's do, which is how the run finds a stamp's
	// probe (window.byKey). sentAt is zero when the send failed before it
	// was timed; the key means nothing when err is not nil. b is only
	// valid during the call (the codec rewrites it for the next probe).
	sendKeyed(b []byte, dst netip.AddrPort, now func() time.Time) (sentAt time.Time, key uint32, err error)
	// read waits until deadline for the socket to have something, then adds
	// to rx (reset by the caller) the TX stamps and ICMP errors queued and
	// at most one datagram as the socket returns it, read at rx.at from
	// now. A zero deadline means not to wait: it reads what is queued, if
	// anything, and returns. It returns os.ErrDeadlineExceeded when
	// nothing came by deadline, and may return nil having read nothing.
	// One goroutine at a time reads.
	read(rx *rxBatch, deadline time.Time, now func() time.Time) error
	// rxDrops returns how many packets the socket's receive queue has
	// dropped since it was opened, for want of room, and false when the
	// kernel cannot tell.
	rxDrops() (uint64, bool)
}

// rxBatch is what one read got, and the buffers it read into. The receiver
// owns one and reuses it for every read, so reads allocate nothing.
type rxBatch struct {
	stamps []txStamp  // TX stamps from the error queue, in the order read
	errs   []icmpErr  // ICMP errors from the error queue (sockets with IP_RECVERR only), in the order read
	msg    []byte     // one datagram as read (raw IPv4 reads start with the IP header), or nil; a slice of buf
	from   netip.Addr // who sent msg, as recvfrom says; invalid if it did not
	at     time.Time  // when msg was read
	buf    []byte     // room for the largest datagram
	quotes []byte     // what errs quote (icmpErr.data), copied out of the socket's buffers
}

func newRxBatch() *rxBatch {
	return &rxBatch{buf: make([]byte, 65536)}
}

// reset empties rx for the next read, keeping its buffers.
func (rx *rxBatch) reset() {
	rx.stamps, rx.errs, rx.msg, rx.from, rx.at = rx.stamps[:0], rx.errs[:0], nil, netip.Addr{}, time.Time{}
	rx.quotes = rx.quotes[:0]
}

// keep copies b into rx's room for quotes and returns the copy, valid
// until the next reset: the room grows to what one read holds and is
// reused, where a copy of its own was an allocation per ICMP error. (A
// copy made before the room grew stays valid: it keeps the old array.)
func (rx *rxBatch) keep(b []byte) []byte {
	start := len(rx.quotes)
	rx.quotes = append(rx.quotes, b...)
	return rx.quotes[start:len(rx.quotes):len(rx.quotes)]
}
