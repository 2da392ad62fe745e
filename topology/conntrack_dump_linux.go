package topology

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// ctnetlink's dump filter (Linux 5.8, "netfilter: ctnetlink: add kernel
// side filtering for dump"). x/sys/unix and netlink/nl have no names for
// these: the values are enum ctattr_type and enum ctattr_filter of
// include/uapi/linux/netfilter/nfnetlink_conntrack.h, and the
// CTA_FILTER_F_* bits of net/netfilter/nf_internals.h.
const (
	ctaFilter            = 25 // CTA_FILTER
	ctaFilterOrigFlags   = 1  // CTA_FILTER_ORIG_FLAGS
	ctaFilterReplyFlags  = 2  // CTA_FILTER_REPLY_FLAGS
	ctaFilterFIPSrc      = 1 << 0
	ctaFilterFIPDst      = 1 << 1
	ctaFilterFProtoNum   = 1 << 3
	ctaFilterFProtoDPort = 1 << 5
)

// ctMsgNew is the type of the messages a conntrack dump answers with.
const ctMsgNew = unix.NFNL_SUBSYS_CTNETLINK<<8 | nl.IPCTNL_MSG_CT_NEW

// ConntrackFilter selects conntrack entries by their original direction,
// in one address family. Family is required; any other zero field
// matches anything.
type ConntrackFilter struct {
	Family uint8      // unix.AF_INET or unix.AF_INET6
	Proto  uint8      // L4 protocol number
	Src    netip.Addr // original source, in the family's form (FamilyAddr)
	Dst    netip.Addr // original destination, in the family's form
	Port   uint16     // original destination port; TCP and UDP only
}

// FamilyAddr returns a as the conntrack entries of family hold it (an IPv4
// address as ::ffff:a.b.c.d in an IPv6 entry), and false when no entry of
// family can hold it.
func FamilyAddr(family uint8, a netip.Addr) (netip.Addr, bool) {
	switch {
	case !a.IsValid():
		return netip.Addr{}, false
	case family == unix.AF_INET6:
		return netip.AddrFrom16(a.As16()), true
	case a.Is4():
		return a, true
	}
	return netip.Addr{}, false
}

// ports says whether the filter's protocol has the ports ctnetlink filters on.
func (f ConntrackFilter) ports() bool {
	return f.Port != 0 && (f.Proto == unix.IPPROTO_TCP || f.Proto == unix.IPPROTO_UDP)
}

// Match reports whether fl is an entry the filter selects, as the kernel
// decides it (ctnetlink_filter_match).
func (f ConntrackFilter) Match(fl *netlink.ConntrackFlow) bool {
	if fl.FamilyType != f.Family || (f.Proto != 0 && fl.Forward.Protocol != f.Proto) {
		return false
	}
	if f.ports() && fl.Forward.DstPort != f.Port {
		return false
	}
	src, _ := netip.AddrFromSlice(fl.Forward.SrcIP)
	dst, _ := netip.AddrFromSlice(fl.Forward.DstIP)
	return (!f.Src.IsValid() || src == f.Src) && (!f.Dst.IsValid() || dst == f.Dst)
}

// dumpRequest builds the IPCTNL_MSG_CT_GET dump of the entries the filter
// selects: CTA_TUPLE_ORIG holds the values, CTA_FILTER which of them the
// kernel compares. A kernel before 5.8 ignores both and dumps the family's
// whole table, so what comes back must still be checked (Match).
//
// IPv6 addresses are not filtered in the kernel: ctnetlink_filter_match_tuple
// tests them with !ipv6_addr_cmp, which skips the entries with the address
// and keeps all others (measured on 6.18). Match checks them instead.
func dumpRequest(f ConntrackFilter) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(unix.NFNL_SUBSYS_CTNETLINK<<8|nl.IPCTNL_MSG_CT_GET, unix.NLM_F_DUMP)
	req.AddData(&nl.Nfgenmsg{NfgenFamily: f.Family, Version: nl.NFNETLINK_V0})
	var flags uint32
	orig := nl.NewRtAttr(unix.NLA_F_NESTED|nl.CTA_TUPLE_ORIG, nil)
	if f.Family == unix.AF_INET && (f.Src.IsValid() || f.Dst.IsValid()) {
		ip := orig.AddRtAttr(unix.NLA_F_NESTED|nl.CTA_TUPLE_IP, nil)
		if f.Src.IsValid() {
			ip.AddRtAttr(nl.CTA_IP_V4_SRC, f.Src.AsSlice())
			flags |= ctaFilterFIPSrc
		}
		if f.Dst.IsValid() {
			ip.AddRtAttr(nl.CTA_IP_V4_DST, f.Dst.AsSlice())
			flags |= ctaFilterFIPDst
		}
	}
	if f.Proto != 0 {
		proto := orig.AddRtAttr(unix.NLA_F_NESTED|nl.CTA_TUPLE_PROTO, nil)
		proto.AddRtAttr(nl.CTA_PROTO_NUM, []byte{f.Proto})
		flags |= ctaFilterFProtoNum
		if f.ports() {
			proto.AddRtAttr(nl.CTA_PROTO_DST_PORT, binary.BigEndian.AppendUint16(nil, f.Port))
			flags |= ctaFilterFProtoDPort
		}
	}
	if flags == 0 {
		return req // the family's whole table
	}
	req.AddData(orig)
	filter := nl.NewRtAttr(unix.NLA_F_NESTED|ctaFilter, nil)
	filter.AddRtAttr(ctaFilterOrigFlags, nl.Uint32Attr(flags))
	filter.AddRtAttr(ctaFilterReplyFlags, nl.Uint32Attr(0))
	req.AddData(filter)
	return req
}

// Conntrack reads the conntrack table of one network namespace through a
// NETLINK_NETFILTER socket created in it (Open), usable from any
// goroutine. Close it when done.
type Conntrack struct {
	sock *nl.SocketHandle
}

// nlSocket adapts *nl.NetlinkSocket to io.Closer so it can be made with Open.
type nlSocket struct{ *nl.NetlinkSocket }

func (s nlSocket) Close() error { s.NetlinkSocket.Close(); return nil }

// OpenConntrack opens the conntrack table of ns. The socket needs no
// capability; reading through it needs CAP_NET_ADMIN in the user namespace
// that owns ns.
func OpenConntrack(ns *NetNS) (*Conntrack, error) {
	s, err := Open(ns, func() (nlSocket, error) {
		s, err := nl.Subscribe(unix.NETLINK_NETFILTER) // no groups: a plain request socket
		return nlSocket{s}, err
	})
	if err != nil {
		return nil, fmt.Errorf("open conntrack netlink socket in %s: %w", ns, err)
	}
	return &Conntrack{sock: &nl.SocketHandle{Socket: s.NetlinkSocket}}, nil
}

// Close releases the socket. It is safe to call more than once.
func (c *Conntrack) Close() error {
	if c != nil && c.sock != nil {
		c.sock.Close()
		c.sock = nil
	}
	return nil
}

// List returns the entries f selects (Match), filtered by the kernel where
// it can (Linux 5.8 and later) and checked again here, so an older kernel
// that sends the family's whole table gives the same answer, only slower.
// It retries a dump the kernel interrupted (RetryDump); a refused dump is a
// *CapabilityError naming CAP_NET_ADMIN. The caller says where, as it
// does for netlink.Handle's dumps.
//
// A netns whose table is empty (no rule there uses conntrack: the node of
// a plain overlay, a lab's node without Services) is not dumped at all: a
// dump walks every bucket of the kernel's one hash table, shared by all
// namespaces (262144 buckets, 14 ms of CPU here, however few entries are
// this netns's), filter or not, while the netns's count is one message.
func (c *Conntrack) List(f ConntrackFilter) ([]*netlink.ConntrackFlow, error) {
	if n, ok := c.entries(); ok && n == 0 {
		return nil, nil
	}
	d, err := RetryDump(func() (dumpResult, error) { return c.dump(f) })
	if err != nil {
		return nil, NeedsCapability(err, "CAP_NET_ADMIN")
	}
	return d.flows, nil
}

// IPCTNL_MSG_CT_GET_STATS (enum cntl_msg_types) and its answer's
// CTA_STATS_GLOBAL_ENTRIES (enum ctattr_stats_global) of
// include/uapi/linux/netfilter/nfnetlink_conntrack.h.
const (
	ctMsgGetStats         = 5
	ctaStatsGlobalEntries = 1
)

// entries returns how many conntrack entries the socket's netns holds
// (nf_conntrack_count: every entry allocated there, unconfirmed ones too,
// so 0 means a dump would send none), and false when the kernel did not
// say: an error (a refused request among them, which the dump then reports
// in its turn) or an answer without the count.
func (c *Conntrack) entries() (uint32, bool) {
	req := nl.NewNetlinkRequest(unix.NFNL_SUBSYS_CTNETLINK<<8|ctMsgGetStats, 0)
	req.AddData(&nl.Nfgenmsg{NfgenFamily: unix.AF_UNSPEC, Version: nl.NFNETLINK_V0})
	msg, err := c.request(req, unix.NFNL_SUBSYS_CTNETLINK<<8|ctMsgGetStats)
	if err != nil {
		return 0, false
	}
	attrs, err := nl.ParseRouteAttr(msg[nl.SizeofNfgenmsg:])
	if err != nil {
		return 0, false
	}
	for _, a := range attrs {
		if a.Attr.Type&nl.NLA_TYPE_MASK == ctaStatsGlobalEntries && len(a.Value) == 4 {
			return binary.BigEndian.Uint32(a.Value), true
		}
	}
	return 0, false
}

// request sends req, a request ctnetlink answers with one message of type
// answer (not a dump), and returns that message's payload, or the error
// the kernel answered with (a syscall.Errno). The answer may be flagged
// NLM_F_MULTI with no NLMSG_DONE after it (ctnetlink_stat_ct's is), so it
// is read here, not through ExecuteIter, which would wait for the DONE.
func (c *Conntrack) request(req *nl.NetlinkRequest, answer uint16) ([]byte, error) {
	s := c.sock.Socket
	s.Lock()
	defer s.Unlock()
	req.Seq = atomic.AddUint32(&c.sock.Seq, 1)
	if err := s.Send(req); err != nil {
		return nil, err
	}
	for {
		msgs, from, err := s.Receive()
		if err != nil {
			return nil, err
		}
		if from.Pid != nl.PidKernel {
			return nil, fmt.Errorf("answer from portid %d, not the kernel", from.Pid)
		}
		for _, m := range msgs {
			switch {
			case m.Header.Seq != req.Seq:
				continue // a late answer to an earlier request
			case m.Header.Type == unix.NLMSG_ERROR && len(m.Data) >= 4:
				if errno := int32(binary.NativeEndian.Uint32(m.Data)); errno != 0 {
					return nil, syscall.Errno(-errno)
				}
				return nil, errors.New("acknowledged without an answer")
			case m.Header.Type != answer || len(m.Data) < nl.SizeofNfgenmsg:
				return nil, fmt.Errorf("answer of type %#x, want %#x", m.Header.Type, answer)
			}
			return m.Data, nil
		}
	}
}

// CTA_PROTO_ICMP_ID and CTA_PROTO_ICMPV6_ID (enum ctattr_l4proto); the
// type and code attributes follow each.
const (
	ctaProtoICMPID   = 4
	ctaProtoICMPv6ID = 7
)

// echo returns the conntrack entry of the ICMP echo flow from src to dst
// with echo id id (zone 0), as ctnetlink looks one tuple up in the hash
// (no table walk), and false when there is none. A refused request is a
// *CapabilityError naming CAP_NET_ADMIN.
func (c *Conntrack) echo(src, dst netip.Addr, id uint16) (*netlink.ConntrackFlow, bool, error) {
	proto, idAttr, echoType := uint8(unix.IPPROTO_ICMP), ctaProtoICMPID, byte(8)
	if dst.Is6() {
		proto, idAttr, echoType = unix.IPPROTO_ICMPV6, ctaProtoICMPv6ID, 128
	}
	return c.get(src, dst, proto, func(p *nl.RtAttr) {
		p.AddRtAttr(idAttr, binary.BigEndian.AppendUint16(nil, id))
		p.AddRtAttr(idAttr+1, []byte{echoType})
		p.AddRtAttr(idAttr+2, []byte{0})
	})
}

// portFlow returns the conntrack entry of the TCP or UDP (proto) flow
// from src:sport to dst:dport (zone 0), looked up as echo does.
func (c *Conntrack) portFlow(proto uint8, src netip.Addr, sport uint16, dst netip.Addr, dport uint16) (*netlink.ConntrackFlow, bool, error) {
	return c.get(src, dst, proto, func(p *nl.RtAttr) {
		p.AddRtAttr(nl.CTA_PROTO_SRC_PORT, binary.BigEndian.AppendUint16(nil, sport))
		p.AddRtAttr(nl.CTA_PROTO_DST_PORT, binary.BigEndian.AppendUint16(nil, dport))
	})
}

// get looks up the entry whose original tuple is src to dst, protocol
// proto, with the protocol's own attributes (ports, echo id) added by
// l4: IPCTNL_MSG_CT_GET, one hash lookup.
func (c *Conntrack) get(src, dst netip.Addr, proto uint8, l4 func(*nl.RtAttr)) (*netlink.ConntrackFlow, bool, error) {
	fam := uint8(unix.AF_INET)
	srcAttr, dstAttr := nl.CTA_IP_V4_SRC, nl.CTA_IP_V4_DST
	if dst.Is6() {
		fam = unix.AF_INET6
		srcAttr, dstAttr = nl.CTA_IP_V6_SRC, nl.CTA_IP_V6_DST
	}
	req := nl.NewNetlinkRequest(unix.NFNL_SUBSYS_CTNETLINK<<8|nl.IPCTNL_MSG_CT_GET, 0)
	req.AddData(&nl.Nfgenmsg{NfgenFamily: fam, Version: nl.NFNETLINK_V0})
	orig := nl.NewRtAttr(unix.NLA_F_NESTED|nl.CTA_TUPLE_ORIG, nil)
	ip := orig.AddRtAttr(unix.NLA_F_NESTED|nl.CTA_TUPLE_IP, nil)
	ip.AddRtAttr(srcAttr, src.AsSlice())
	ip.AddRtAttr(dstAttr, dst.AsSlice())
	p := orig.AddRtAttr(unix.NLA_F_NESTED|nl.CTA_TUPLE_PROTO, nil)
	p.AddRtAttr(nl.CTA_PROTO_NUM, []byte{proto})
	l4(p)
	req.AddData(orig)
	msg, err := c.request(req, ctMsgNew)
	switch {
	case errors.Is(err, unix.ENOENT):
		return nil, false, nil
	case err != nil:
		return nil, false, NeedsCapability(err, "CAP_NET_ADMIN")
	}
	fl, err := parseFlow(msg)
	if err != nil {
		return nil, false, fmt.Errorf("parse conntrack entry: %w", err)
	}
	return fl, true, nil
}

// dumpResult is one dump's answer: the selected entries, and how many entries
// the kernel sent.
type dumpResult struct {
	flows    []*netlink.ConntrackFlow
	received int
}

// dump runs one filtered dump and parses its messages as they arrive.
func (c *Conntrack) dump(f ConntrackFilter) (dumpResult, error) {
	var d dumpResult
	var perr error
	req := dumpRequest(f)
	req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_NETFILTER: c.sock}
	err := req.ExecuteIter(unix.NETLINK_NETFILTER, ctMsgNew, func(msg []byte) bool {
		d.received++
		fl, err := parseFlow(msg)
		if err != nil {
			perr = fmt.Errorf("parse conntrack entry %d: %w", d.received, err)
			return false
		}
		if f.Match(fl) {
			d.flows = append(d.flows, fl)
		}
		return true
	})
	if err == nil {
		err = perr
	}
	return d, err
}
