//go:build linux

package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/topology"
)

// ring is a minimal TPACKET_V3 receive ring on one interface, built on
// golang.org/x/sys/unix.
//
// Why not gopacket: pcapgo.EthernetHandle (recvfrom) and afpacket expose
// neither the packet direction (sll_pkttype: was the packet transmitted or
// received by this interface?) nor tp_status (is the stamp the skb's own,
// TP_STATUS_TS_SOFTWARE, possibly inherited along stacked devices, or the
// time of the copy into the ring?). cnitrace needs both to attribute latency
// to hops (design.md, kernel fact 1), and google/gopacket's afpacket needs
// cgo besides.
//
// The socket never asks for timestamps (no SO_TIMESTAMP*, no
// PACKET_TIMESTAMP): doing so would turn on the host-wide RX timestamp key
// and change what every other tap reports.
//
// A ring is created inside its interface's netns and stays bound to it. It
// never waits: the session's reader waits for all its rings at once
// (poller) and then reads each. Its reading methods must be called from
// one goroutine at a time; Close only after reading stopped.
type ring struct {
	fd      int
	mem     []byte
	block   int       // bytes per block (geometryFor)
	cur     int       // the next block to read
	read    uint64    // packets handed to fn so far
	total   ringStats // counters read so far (reading resets the kernel's)
	ifindex int
	link    LinkType // how the interface's frames start
}

// Offsets into a tpacket_block_desc (its tpacket_hdr_v1 starts at 8) and a
// tpacket3_hdr, which is followed by a sockaddr_ll at TPACKET_ALIGN(48).
const (
	blkStatus      = 8
	blkNumPkts     = 12
	blkFirstPkt    = 16
	pktNext        = 0
	pktSec         = 4
	pktNsec        = 8
	pktSnaplen     = 12
	pktStatus      = 20
	pktMac         = 24
	pktSockaddr    = 48
	sllPkttype     = 10
	pktHeaderBytes = pktSockaddr + unix.SizeofSockaddrLinklayer
)

// openRingIn opens a ring of geometry g on pt's interface inside ns, with
// the filter of the interface's link type.
func openRingIn(ns *topology.NetNS, pt topology.Point, f filters, g geometry) (*ring, error) {
	if ns == nil {
		return nil, fmt.Errorf("open capture on %s: no netns", pt.Name())
	}
	r, err := topology.Open(ns, func() (*ring, error) {
		return openRing(pt.Interface, pt.Ifindex, f, g)
	})
	if err != nil {
		return nil, fmt.Errorf("open capture on %s: %w", pt.Name(), err)
	}
	return r, nil
}

// openRing opens a ring of geometry g on the interface called ifname (if
// set) or with index ifindex in the calling thread's netns. The socket is
// created with protocol 0, so it receives nothing until bind, after the
// filter is on.
func openRing(ifname string, ifindex int, f filters, g geometry) (*ring, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open AF_PACKET socket: %w", topology.NeedsCapability(err, "CAP_NET_RAW"))
	}
	r := &ring{fd: fd, block: g.blockSize}
	if err := r.setup(ifname, ifindex, f); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func (r *ring) setup(ifname string, ifindex int, f filters) error {
	idx, name, err := r.resolveIfindex(ifname, ifindex)
	if err != nil {
		return err
	}
	r.ifindex = idx
	if r.link, err = r.linkType(name); err != nil {
		return err
	}
	if err := r.attach(f[r.link]); err != nil {
		return err
	}
	if err := unix.SetsockoptInt(r.fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return fmt.Errorf("select TPACKET_V3: %w", err)
	}
	req := unix.TpacketReq3{
		Block_size:     uint32(r.block),
		Block_nr:       ringBlocks,
		Frame_size:     ringFrameSize,
		Frame_nr:       uint32(r.block / ringFrameSize * ringBlocks),
		Retire_blk_tov: uint32(ringRetire / time.Millisecond),
	}
	if err := unix.SetsockoptTpacketReq3(r.fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return fmt.Errorf("set up RX ring of %d blocks of %d bytes: %w", ringBlocks, r.block, err)
	}
	if r.mem, err = unix.Mmap(r.fd, 0, r.block*ringBlocks, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err != nil {
		return fmt.Errorf("map RX ring: %w", err)
	}
	sa := unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: idx}
	if err := unix.Bind(r.fd, &sa); err != nil {
		return fmt.Errorf("bind to ifindex %d: %w", idx, err)
	}
	return nil
}

// attach attaches the filter; the socket must not be bound yet.
func (r *ring) attach(filter []bpf.RawInstruction) error {
	if len(filter) == 0 {
		return errors.New("attach filter: empty program")
	}
	prog := make([]unix.SockFilter, len(filter))
	for i, ins := range filter {
		prog[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.SetsockoptSockFprog(r.fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		return fmt.Errorf("attach filter: %w", err)
	}
	return nil
}

// resolveIfindex looks ifname up in the socket's netns, or the name of
// ifindex when there is no name. When both a name and an index are given
// they must agree: a mismatch means the interface was replaced since
// discovery.
func (r *ring) resolveIfindex(ifname string, ifindex int) (int, string, error) {
	if ifname == "" {
		if ifindex <= 0 {
			return 0, "", errors.New("no interface name or index")
		}
		ifr, err := unix.NewIfreq("")
		if err != nil {
			return 0, "", fmt.Errorf("look up interface %d: %w", ifindex, err)
		}
		ifr.SetUint32(uint32(ifindex))
		if err := unix.IoctlIfreq(r.fd, unix.SIOCGIFNAME, ifr); err != nil {
			return 0, "", fmt.Errorf("look up interface %d: %w", ifindex, err)
		}
		return ifindex, ifr.Name(), nil
	}
	ifr, err := unix.NewIfreq(ifname)
	if err != nil {
		return 0, "", fmt.Errorf("look up interface %q: %w", ifname, err)
	}
	if err := unix.IoctlIfreq(r.fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, "", fmt.Errorf("look up interface %q: %w", ifname, err)
	}
	idx := int(ifr.Uint32())
	if ifindex > 0 && idx != ifindex {
		return 0, "", fmt.Errorf("interface %q has index %d, want %d (replaced since discovery?)", ifname, idx, ifindex)
	}
	return idx, ifname, nil
}

// linkType asks the kernel for the device type of ifname: SIOCGIFHWADDR
// returns it as the sa_family of the hardware address (ARPHRD_*, the value
// every frame will carry in sll_hatype). It is read before bind because the
// filter, which depends on it, must be on before the first packet.
func (r *ring) linkType(ifname string) (LinkType, error) {
	ifr, err := unix.NewIfreq(ifname)
	if err != nil {
		return 0, fmt.Errorf("read device type of %q: %w", ifname, err)
	}
	if err := unix.IoctlIfreq(r.fd, unix.SIOCGIFHWADDR, ifr); err != nil {
		return 0, fmt.Errorf("read device type of %q: %w", ifname, err)
	}
	link, err := LinkTypeOf(ifr.Uint16())
	if err != nil {
		return 0, fmt.Errorf("capture on %q: %w", ifname, err)
	}
	return link, nil
}

// readBlocks hands every packet of every block the kernel has retired to
// fn, oldest first, and gives each block back to the kernel. It never
// waits, and reports how many packets it read.
func (r *ring) readBlocks(fn func(packet)) (int, error) {
	total := 0
	for range ringBlocks {
		blk := r.mem[r.cur*r.block : (r.cur+1)*r.block]
		status := (*uint32)(unsafe.Pointer(&blk[blkStatus])) // shared with the kernel
		if atomic.LoadUint32(status)&unix.TP_STATUS_USER == 0 {
			break
		}
		n, err := walkBlock(blk, fn)
		atomic.StoreUint32(status, unix.TP_STATUS_KERNEL)
		r.cur = (r.cur + 1) % ringBlocks
		r.read += uint64(n)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// sockErr fetches, and so clears, the socket's pending error: what the
// kernel flags when the interface goes down or away (ENETDOWN). It
// returns nil when there is none.
func (r *ring) sockErr() error {
	e, err := unix.GetsockoptInt(r.fd, unix.SOL_SOCKET, unix.SO_ERROR)
	switch {
	case err != nil:
		return fmt.Errorf("capture on ifindex %d: read socket error: %w", r.ifindex, err)
	case e != 0:
		return fmt.Errorf("capture on ifindex %d: %w", r.ifindex, unix.Errno(e))
	}
	return nil
}

// pending reports whether the kernel put packets in the ring that were
// not read yet: its counters (PACKET_STATISTICS, which count every packet
// the filter passed, dropped ones included) against what readBlocks
// handed over. Packets in a block not retired yet are pending.
func (r *ring) pending() (bool, error) {
	st, err := r.stats()
	if err != nil {
		return false, err
	}
	return st.packets-st.drops > r.read, nil
}

// walkBlock hands every packet of a retired block to fn, its frame still
// in the block, and returns how many it handed over. The offsets come from the kernel, but are checked
// all the same: a bad one ends the walk with an error instead of a panic.
func walkBlock(blk []byte, fn func(packet)) (int, error) {
	ne := binary.NativeEndian
	n := ne.Uint32(blk[blkNumPkts:])
	off := uint64(ne.Uint32(blk[blkFirstPkt:]))
	for i := uint32(0); i < n; i++ {
		if off+pktHeaderBytes > uint64(len(blk)) {
			return int(i), fmt.Errorf("ring block: packet %d of %d at offset %d out of bounds", i, n, off)
		}
		h := blk[off:]
		mac, snap := uint64(ne.Uint16(h[pktMac:])), uint64(ne.Uint32(h[pktSnaplen:]))
		if off+mac+snap > uint64(len(blk)) {
			return int(i), fmt.Errorf("ring block: frame of packet %d (%d bytes at %d) out of bounds", i, snap, off+mac)
		}
		fn(packet{
			frame: h[mac : mac+snap : mac+snap], // not copied: fn copies what it keeps
			at:    time.Unix(int64(ne.Uint32(h[pktSec:])), int64(ne.Uint32(h[pktNsec:]))),
			stamp: stampSource(ne.Uint32(h[pktStatus:])),
			dir:   direction(h[pktSockaddr+sllPkttype]),
		})
		next := uint64(ne.Uint32(h[pktNext:]))
		if next == 0 && i+1 < n {
			return int(i) + 1, fmt.Errorf("ring block: packet %d of %d has no successor", i, n)
		}
		off += next
	}
	return int(n), nil
}

// stampSource tells from tp_status whether the time is the skb's stamp or
// the time of the copy into the ring.
func stampSource(tpStatus uint32) StampSource {
	if tpStatus&unix.TP_STATUS_TS_SOFTWARE != 0 {
		return StampSKB
	}
	return StampCopy
}

// direction maps sll_pkttype: PACKET_OUTGOING is a transmit tap, everything
// else (host, broadcast, multicast, other host) was received.
func direction(pkttype uint8) topology.Dir {
	if pkttype == unix.PACKET_OUTGOING {
		return topology.TX
	}
	return topology.RX
}

// stats returns the socket's counters since it was opened.
func (r *ring) stats() (ringStats, error) {
	st, err := unix.GetsockoptTpacketStatsV3(r.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err != nil {
		return r.total, fmt.Errorf("read capture statistics: %w", err)
	}
	r.total.packets += uint64(st.Packets)
	r.total.drops += uint64(st.Drops)
	r.total.freezes += uint64(st.Freeze_q_cnt)
	return r.total, nil
}

// Close unmaps the ring and closes the socket. It is safe to call more than
// once, and must not be called while another goroutine reads.
func (r *ring) Close() error {
	var errs []error
	if r.mem != nil {
		errs = append(errs, unix.Munmap(r.mem))
		r.mem = nil
	}
	if r.fd >= 0 {
		errs = append(errs, unix.Close(r.fd))
		r.fd = -1
	}
	return errors.Join(errs...)
}

// htons converts a 16-bit value to network byte order, as sll_protocol
// wants it.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}
