package lab

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The receive ring of one wire link. It is the delay line's queue: frames
// wait in it, in arrival order, until their release time, and when all
// ringFrames slots are taken the kernel drops what arrives and counts it
// (PACKET_STATISTICS).
const (
	ringFrameSize = 2048 // holds a 1514-byte frame after the headers
	ringFrames    = 1024
	ringBlockSize = 1 << 16 // 32 frames per block
)

// ring is an AF_PACKET socket bound to one interface, with a TPACKET_V2
// receive ring.
//
// Why not pcapgo, or the capture package's TPACKET_V3 reader: a V3 block
// reaches user space only when it is full or its timeout expires, which
// would add up to that timeout to the delay, while a V2 frame is handed
// over as soon as it is copied. And the ring gives the arrival time the
// delay counts from: tp_sec/tp_nsec is the kernel's CLOCK_REALTIME at
// receive (at the copy into the ring, as this socket asks for no
// timestamps), without SO_TIMESTAMP*, SIOCGSTAMP or PACKET_TIMESTAMP, so
// the host-wide RX timestamping key stays off (design.md, kernel fact 1).
//
// PACKET_IGNORE_OUTGOING keeps the frames sent on the interface, the delay
// line's own among them, out of the ring. The socket is also where the
// other direction's frames are written to (write on a bound packet socket
// sends on its interface); it is non-blocking, so a full send buffer drops
// the frame (a send error) rather than stall the lane.
type ring struct {
	ifname string
	fd     int
	mem    []byte
	next   int // the slot of the next frame to read

	dropped uint64 // frames the kernel dropped, summed over PACKET_STATISTICS reads
}

// openRing opens a ring on ifname in the calling thread's network
// namespace (call it through topology.Open). The socket is created with
// protocol 0, so nothing reaches it before bind names the interface.
func openRing(ifname string) (_ *ring, err error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("open packet socket on %s: %w", ifname, capHint(err, "CAP_NET_RAW"))
	}
	r := &ring{ifname: ifname, fd: fd}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	if err := r.setup(); err != nil {
		return nil, fmt.Errorf("set up ring on %s: %w", ifname, err)
	}
	ifr, err := unix.NewIfreq(ifname)
	if err != nil {
		return nil, fmt.Errorf("look up %s: %w", ifname, err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return nil, fmt.Errorf("look up %s: %w", ifname, err)
	}
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: int(ifr.Uint32())}
	if err := unix.Bind(fd, sa); err != nil {
		return nil, fmt.Errorf("bind packet socket to %s: %w", ifname, err)
	}
	return r, nil
}

// setup selects TPACKET_V2, ignores outgoing frames and maps the ring.
func (r *ring) setup() error {
	if err := unix.SetsockoptInt(r.fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V2); err != nil {
		return fmt.Errorf("PACKET_VERSION: %w", err)
	}
	if err := unix.SetsockoptInt(r.fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		return fmt.Errorf("PACKET_IGNORE_OUTGOING: %w", err)
	}
	req := &unix.TpacketReq{
		Block_size: ringBlockSize,
		Block_nr:   ringFrames * ringFrameSize / ringBlockSize,
		Frame_size: ringFrameSize,
		Frame_nr:   ringFrames,
	}
	if err := unix.SetsockoptTpacketReq(r.fd, unix.SOL_PACKET, unix.PACKET_RX_RING, req); err != nil {
		return fmt.Errorf("PACKET_RX_RING: %w", err)
	}
	mem, err := unix.Mmap(r.fd, 0, ringFrames*ringFrameSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("mmap: %w", err)
	}
	r.mem = mem
	return nil
}

// Close unmaps the ring and closes the socket.
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

// frame is one received frame, still in its ring slot.
type frame struct {
	at   time.Time // the kernel's receive time
	data []byte    // valid until release
	skip bool      // truncated, VLAN-offloaded or outgoing: not forwarded
}

// peek returns the next frame if the kernel has handed one over.
func (r *ring) peek() (frame, bool) {
	off := r.next * ringFrameSize
	h := (*unix.Tpacket2Hdr)(unsafe.Pointer(&r.mem[off]))
	status := atomic.LoadUint32(&h.Status)
	if status&unix.TP_STATUS_USER == 0 {
		return frame{}, false
	}
	start := off + int(h.Mac)
	end := min(start+int(h.Snaplen), off+ringFrameSize)
	// sockaddr_ll follows the header at TPACKET_ALIGN(sizeof header): its
	// sll_pkttype is at byte 10.
	pktType := r.mem[off+unix.SizeofTpacket2Hdr+10]
	return frame{
		at:   time.Unix(int64(h.Sec), int64(h.Nsec)),
		data: r.mem[start:end],
		skip: status&(unix.TP_STATUS_COPY|unix.TP_STATUS_VLAN_VALID) != 0 || h.Snaplen < h.Len ||
			pktType == unix.PACKET_OUTGOING,
	}, true
}

// release hands the slot of the frame peek returned back to the kernel.
func (r *ring) release() {
	h := (*unix.Tpacket2Hdr)(unsafe.Pointer(&r.mem[r.next*ringFrameSize]))
	atomic.StoreUint32(&h.Status, unix.TP_STATUS_KERNEL)
	r.next = (r.next + 1) % ringFrames
}

// kernelDrops returns how many frames the kernel dropped for want of a
// free slot since the ring was opened. Reading PACKET_STATISTICS resets
// the kernel's counters, so the sum is kept here; call it from one
// goroutine at a time.
func (r *ring) kernelDrops() uint64 {
	if st, err := unix.GetsockoptTpacketStats(r.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
		atomic.AddUint64(&r.dropped, uint64(st.Drops))
	}
	return atomic.LoadUint64(&r.dropped)
}

// htons converts a protocol number to network byte order.
func htons(v uint16) uint16 { return v<<8 | v>>8 }

// capHint adds the capability an EPERM points to (house-style.md, errors).
func capHint(err error, capability string) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return fmt.Errorf("%w (needs %s)", err, capability)
	}
	return err
}
