package probe

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/cnitrace/cnitrace/topology"
	"golang.org/x/sys/unix"
)

// tcpState is what a raw TCP socket holds besides its descriptor: the
// block of source ports, and for IPv4 the means to learn the source
// address of a run's SYNs.
type tcpState struct {
	ports portBlock
	holds []int // the bound TCP sockets that reserve the ports
	// lookup is a UDP socket (IPv4 only; -1 otherwise), connected to each
	// run's target to learn the source address the kernel picks for it:
	// the TCP checksum covers it, and a raw IPv4 socket has no
	// IPV6_CHECKSUM to leave it to the kernel.
	lookup int
	oob    atomic.Pointer[[]byte] // IP_PKTINFO pinning that address on every send; nil: none
	once   sync.Once
}

// tcpMade is what listenTCP creates inside the netns, as one io.Closer.
type tcpMade struct {
	fd rawFD
	st *tcpState
}

func (m tcpMade) Close() error {
	m.st.close()
	return m.fd.Close()
}

// close releases the ports and the lookup socket; later calls do nothing.
func (t *tcpState) close() {
	t.once.Do(func() {
		for _, fd := range t.holds {
			unix.Close(fd)
		}
		if t.lookup >= 0 {
			unix.Close(t.lookup)
		}
	})
}

// pktinfo returns the control data that pins the run's source address,
// or nil.
func (t *tcpState) pktinfo() []byte {
	if p := t.oob.Load(); p != nil {
		return *p
	}
	return nil
}

// source connects the lookup socket to dst, which sends nothing, and
// returns the local address the kernel picked: the one a SYN to dst
// leaves from. It pins that address for the sends (IP_PKTINFO), so that
// they leave from the address the checksum covers even should the route
// change meanwhile; on failure it pins none.
func (t *tcpState) source(dst netip.AddrPort) (netip.Addr, error) {
	t.oob.Store(nil)
	if err := unix.Connect(t.lookup, &unix.SockaddrInet4{Addr: dst.Addr().Unmap().As4(), Port: int(dst.Port())}); err != nil {
		return netip.Addr{}, fmt.Errorf("find the source address of SYNs to %s: connect: %w", dst, err)
	}
	sa, err := unix.Getsockname(t.lookup)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("find the source address of SYNs to %s: getsockname: %w", dst, err)
	}
	src := sockaddrAddr(sa)
	if !src.Is4() {
		return netip.Addr{}, fmt.Errorf("find the source address of SYNs to %s: got %v", dst, sa)
	}
	oob := pktinfoCmsg(src)
	t.oob.Store(&oob)
	return src, nil
}

// pktinfoCmsg is an IP_PKTINFO control message whose ipi_spec_dst is src:
// raw_sendmsg then routes and sends from src.
func pktinfoCmsg(src netip.Addr) []byte {
	b := make([]byte, unix.CmsgSpace(unix.SizeofInet4Pktinfo))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = unix.IPPROTO_IP, unix.IP_PKTINFO
	h.SetLen(unix.CmsgLen(unix.SizeofInet4Pktinfo))
	info := (*unix.Inet4Pktinfo)(unsafe.Pointer(&b[unix.CmsgLen(0)]))
	info.Spec_dst = src.As4()
	return b
}

// listenTCP is Open for TCP: see there.
func listenTCP(ns *topology.NetNS, cfg Config) (Conn, error) {
	v6 := protoFor(cfg.Target) == protoICMPv6
	n, err := tcpPorts(cfg)
	if err != nil {
		return nil, err
	}
	name := "TCP"
	if v6 {
		name = "TCP (IPv6)"
	}
	m, err := topology.Open(ns, func() (tcpMade, error) { return makeTCP(v6, n) })
	if err != nil {
		return nil, fmt.Errorf("open %s socket in %s: %w", name, ns, err)
	}
	if err := setTCPOptions(int(m.fd), m.st.ports, v6); err != nil {
		m.Close()
		return nil, fmt.Errorf("set up %s socket in %s: %w", name, ns, err)
	}
	s, err := wrapFD(m.fd, "tcp@"+ns.ID())
	if err != nil {
		m.st.close()
		return nil, fmt.Errorf("wrap %s socket in %s: %w", name, ns, err)
	}
	s.proto, s.family, s.recverr, s.tcp = TCP, protoICMP, true, m.st
	if v6 {
		s.family = protoICMPv6
	}
	return s, nil
}

// makeTCP creates, in the calling thread's netns, the raw TCP socket, n
// reserved source ports and, for IPv4, the lookup socket.
func makeTCP(v6 bool, n int) (m tcpMade, err error) {
	domain := unix.AF_INET
	if v6 {
		domain = unix.AF_INET6
	}
	fd, err := unix.Socket(domain, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return m, rawTCPError(v6, err)
	}
	m = tcpMade{fd: rawFD(fd), st: &tcpState{lookup: -1}}
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	lo, hi := localPortRange()
	if m.st.ports, m.st.holds, err = reservePorts(domain, n, lo, hi, reservedPorts()); err != nil {
		return m, err
	}
	if !v6 {
		if m.st.lookup, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return m, fmt.Errorf("socket(AF_INET, SOCK_DGRAM): %w", err)
		}
	}
	return m, nil
}

// rawTCPError names the capability a raw TCP socket needs, and what
// timing connect() instead, which needs none, would lose.
func rawTCPError(v6 bool, err error) error {
	call := "socket(AF_INET, SOCK_RAW, IPPROTO_TCP)"
	if v6 {
		call = "socket(AF_INET6, SOCK_RAW, IPPROTO_TCP)"
	}
	if errors.Is(err, os.ErrPermission) {
		err = fmt.Errorf("%w: TCP SYN probes need a raw socket; timing connect() instead would fold a SYN retransmitted after a loss into a 1s \"latency\" and match no probe at any hop", err)
	}
	return fmt.Errorf("%s: %w", call, topology.NeedsCapability(err, "CAP_NET_RAW"))
}

// reservePorts binds n TCP sockets of domain to n consecutive ports in
// [lo, hi] that avoid reserved, from a random base, and returns the block
// and the sockets. Bound and never listening, they keep every other socket
// of the netns off those ports (connect's choice of an ephemeral port
// skips them; bind to them fails) without accepting anything, so the
// kernel answers a SYN-ACK to one of them with a RST. A block taken in
// part by another socket is given up for another base, 32 times at most.
func reservePorts(domain, n, lo, hi int, reserved func(int) bool) (portBlock, []int, error) {
	if hi-lo+1 < n {
		return portBlock{}, nil, fmt.Errorf("reserve %d source ports: the local port range %d-%d is smaller", n, lo, hi)
	}
	var lastErr error
	for range 32 {
		base := lo + rand.IntN(hi-lo+2-n)
		if overlaps(base, n, reserved) {
			continue
		}
		holds, err := bindBlock(domain, base, n)
		if err == nil {
			return portBlock{base: uint16(base), size: uint16(n)}, holds, nil
		}
		if !errors.Is(err, unix.EADDRINUSE) {
			return portBlock{}, nil, fmt.Errorf("reserve source ports %d-%d: %w", base, base+n-1, err)
		}
		lastErr = err
	}
	return portBlock{}, nil, fmt.Errorf("reserve %d consecutive source ports in %d-%d: none free after 32 tries (last: %v)", n, lo, hi, lastErr)
}

func overlaps(base, n int, reserved func(int) bool) bool {
	for p := base; p < base+n; p++ {
		if reserved(p) {
			return true
		}
	}
	return false
}

// bindBlock binds one TCP socket to each port of [base, base+n), or none.
func bindBlock(domain, base, n int) ([]int, error) {
	holds := make([]int, 0, n)
	fail := func(err error) ([]int, error) {
		for _, fd := range holds {
			unix.Close(fd)
		}
		return nil, err
	}
	for p := base; p < base+n; p++ {
		fd, err := unix.Socket(domain, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fail(fmt.Errorf("socket(SOCK_STREAM): %w", err))
		}
		holds = append(holds, fd)
		var sa unix.Sockaddr = &unix.SockaddrInet4{Port: p}
		if domain == unix.AF_INET6 {
			sa = &unix.SockaddrInet6{Port: p}
		}
		if err := unix.Bind(fd, sa); err != nil {
			return fail(fmt.Errorf("bind port %d: %w", p, err))
		}
	}
	return holds, nil
}

// localPortRange reads the calling thread's netns's
// net.ipv4.ip_local_port_range (which IPv6 uses too), or Linux's default.
func localPortRange() (lo, hi int) {
	lo, hi = 32768, 60999
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return lo, hi
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return lo, hi
	}
	l, err1 := strconv.Atoi(f[0])
	h, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || l < 1 || h > 65535 || l > h {
		return lo, hi
	}
	return l, h
}

// reservedPorts reads net.ipv4.ip_local_reserved_ports of the calling
// thread's netns ("8080,9000-9010"): ports the pod keeps for its own
// binds, which the block stays off.
func reservedPorts() func(int) bool {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_reserved_ports")
	if err != nil {
		return func(int) bool { return false }
	}
	return parsePortList(strings.TrimSpace(string(b)))
}

// parsePortList reads a list of ports and ranges, "8080,9000-9010"; what
// does not parse is left out.
func parsePortList(s string) func(int) bool {
	type span struct{ lo, hi int }
	var spans []span
	for _, f := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(f), "-")
		l, err := strconv.Atoi(lo)
		if err != nil {
			continue
		}
		h := l
		if isRange {
			if h, err = strconv.Atoi(hi); err != nil {
				continue
			}
		}
		spans = append(spans, span{l, h})
	}
	return func(p int) bool {
		for _, s := range spans {
			if p >= s.lo && p <= s.hi {
				return true
			}
		}
		return false
	}
}

// setTCPOptions sets up the raw TCP socket: its socket filter first, then
// the receive buffer, IP_RECVERR (ICMP errors quoting the SYNs), for IPv6
// the checksum at offset 16, and TX timestamps. Setting OPT_ID on a fresh
// socket starts its keys at 0.
func setTCPOptions(fd int, ports portBlock, v6 bool) error {
	prog, err := tcpFilter(ports, v6)
	if err != nil {
		return err
	}
	if err := attachFilter(fd, prog); err != nil {
		return err
	}
	if err := setReceiveBuffer(fd); err != nil {
		return err
	}
	if err := setRecvErr(fd, v6); err != nil {
		return err
	}
	if v6 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_CHECKSUM, 16); err != nil {
			return fmt.Errorf("set IPV6_CHECKSUM 16: %w", err)
		}
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPING, txTimestamping); err != nil {
		return fmt.Errorf("set SO_TIMESTAMPING %#x: %w", txTimestamping, err)
	}
	return nil
}

// setRecvErr sets IP_RECVERR, or IPV6_RECVERR for IPv6.
func setRecvErr(fd int, v6 bool) error {
	level, opt, name := unix.IPPROTO_IP, unix.IP_RECVERR, "IP_RECVERR"
	if v6 {
		level, opt, name = unix.IPPROTO_IPV6, unix.IPV6_RECVERR, "IPV6_RECVERR"
	}
	if err := unix.SetsockoptInt(fd, level, opt, 1); err != nil {
		return fmt.Errorf("set %s: %w", name, err)
	}
	return nil
}

// checkFor reports why s (TCP or UDP) cannot send cfg: another protocol,
// or a target of the other family.
func (s *socket) checkFor(cfg Config) error {
	if cfg.Proto != s.proto {
		return fmt.Errorf("%s probes need a socket opened for them, got a %s one (open it with Open)", cfg.Proto, strings.ToUpper(s.proto.String()))
	}
	if want := protoFor(cfg.Target); want != s.family {
		return fmt.Errorf("target %s needs an %s %s socket, got an %s one (open it with Open)", cfg.Target, ipFamily(want), strings.ToUpper(s.proto.String()), ipFamily(s.family))
	}
	return nil
}

func ipFamily(p icmpProto) string {
	if p == protoICMPv6 {
		return "IPv6"
	}
	return "IPv4"
}

// codecTCP returns the codec of a TCP run of cfg on s.
func (s *socket) codecTCP(cfg Config) (codec, error) {
	if err := s.checkFor(cfg); err != nil {
		return nil, err
	}
	need, err := tcpPorts(cfg)
	if err != nil {
		return nil, err
	}
	if got := int(s.tcp.ports.size); need > got {
		return nil, fmt.Errorf("timeout %s at interval %s: the socket reserved %d source ports, the run needs %d (open one for this config)", cfg.Timeout, cfg.Interval, got, need)
	}
	c := newTCPCodec(cfg, s.tcp.ports, nil)
	if s.family == protoICMP {
		c.lookup = func() (netip.Addr, error) { return s.tcp.source(c.target) }
		c.src, _ = c.lookup() // without a route the sends are refused; request looks again
	}
	return c, nil
}
