package capture

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Hand-built TCP, UDP and DNS probes as docs/probe.md lays them out, their
// replies, ICMP errors quoting them, and the background traffic most like
// them. A transportCase is the IP packet alone, between a probe's source a
// and its target b; transportEncaps put it on the path plain or in a
// tunnel.

const (
	tokRun uint64 = 0x0123456789abcdef
	tokSeq uint32 = 7
	tokISN uint32 = testMagic&0xffff0000 | tokSeq<<1 // the probe's ISN; replies acknowledge tokISN+1
)

// tokenBytes is the 16-byte token every probe of these tests carries.
var tokenBytes = func() []byte {
	b := binary.BigEndian.AppendUint32(nil, testMagic)
	b = binary.BigEndian.AppendUint64(b, tokRun)
	return binary.BigEndian.AppendUint32(b, tokSeq)
}()

// dnsProbeName is the question of a DNS probe: its first label is "cnt1"
// and the run id and sequence in hex.
var dnsProbeName = fmt.Sprintf("cnt1%016x%08x.probe.cnitrace.test", tokRun, tokSeq)

// dnsProbeNameMixed is dnsProbeName as a server that randomises the case
// of the question (0x20 encoding) may answer it: the magic and the hex
// digits in both cases.
var dnsProbeNameMixed = "CnT1" + "0123456789AbCdEf" + "00000007" + ".pROBE.CnItRaCe.TEST"

// udpProbeData is a UDP probe's payload: the 24-byte ICMP token (the send
// time zero) and padding, as probe.Payload.Marshal(56) lays it out.
func udpProbeData() []byte {
	b := append(append([]byte(nil), tokenBytes...), make([]byte, 8)...)
	for i := len(b); i < 56; i++ {
		b = append(b, byte(i))
	}
	return b
}

// transportCase is one IP packet between a (the probe's source) and b (its
// target): what the filter must say, and what Decode must fill in besides
// the tunnel and the addresses.
type transportCase struct {
	name   string
	pkt    func(a, b netip.Addr) stack
	accept bool
	reply  bool        // sent by b to a (replies and ICMP errors)
	v4     bool        // IPv4 only (a quote with IP options)
	plain  bool        // not encapsulated only
	want   Observation // Proto, ICMPType/Code, ports, TCP fields, DNS, Token
}

// tcpSYN is the SYN of a TCP probe: ISN tokISN, the token option first,
// then MSS and two NOPs (a 44-byte header).
func tcpSYN() *layers.TCP {
	return &layers.TCP{SrcPort: 40001, DstPort: 80, Seq: tokISN, SYN: true, Window: 64240, Options: []layers.TCPOption{
		{OptionType: tcpTokenKind, OptionData: tokenBytes},
		{OptionType: layers.TCPOptionKindMSS, OptionData: []byte{0x05, 0xb4}},
		{OptionType: layers.TCPOptionKindNop}, {OptionType: layers.TCPOptionKindNop},
	}}
}

// ordinarySYN is the SYN of a connect() with the given ISN: options MSS,
// SACK permitted, timestamps (the value "cnt1"...), NOP, window scale.
func ordinarySYN(isn uint32) func(a, b netip.Addr) stack {
	return func(a, b netip.Addr) stack {
		t := &layers.TCP{SrcPort: 51234, DstPort: 80, Seq: isn, SYN: true, Window: 64240, Options: []layers.TCPOption{
			{OptionType: layers.TCPOptionKindMSS, OptionData: []byte{0x05, 0xb4}}, {OptionType: layers.TCPOptionKindSACKPermitted},
			{OptionType: layers.TCPOptionKindTimestamps, OptionData: withCnt1At(make([]byte, 8), 0)},
			{OptionType: layers.TCPOptionKindNop}, {OptionType: layers.TCPOptionKindWindowScale, OptionData: []byte{7}}}}
		return tcpPacket(a, b, t, nil)
	}
}

// tcpReply is the target's answer to tcpSYN with the given flags and
// acknowledgement.
func tcpReply(syn, rst bool, ack uint32) *layers.TCP {
	t := &layers.TCP{SrcPort: 80, DstPort: 40001, Seq: 0x1badcafe, Ack: ack, ACK: true, SYN: syn, RST: rst, Window: 65160}
	if syn {
		t.Options = []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionData: []byte{0x05, 0xb4}}}
	}
	return t
}

func tcpPacket(src, dst netip.Addr, t *layers.TCP, payload []byte) stack {
	return stack{ipLayer(layers.IPProtocolTCP, src, dst), t, gopacket.Payload(payload)}
}

func udpPacket(src, dst netip.Addr, sport, dport uint16, payload []byte) stack {
	return stack{ipLayer(layers.IPProtocolUDP, src, dst), &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}, gopacket.Payload(payload)}
}

// dnsQuery and dnsAnswer are a DNS query for name and its answer, as bytes.
func dnsQuery(name string) []byte {
	return dnsBytes(&layers.DNS{ID: 0x4d2e, RD: true, Questions: []layers.DNSQuestion{{Name: []byte(name), Type: layers.DNSTypeA, Class: layers.DNSClassIN}}})
}

func dnsAnswer(name string) []byte {
	return dnsBytes(&layers.DNS{ID: 0x4d2e, QR: true, RD: true, RA: true, ResponseCode: layers.DNSResponseCodeNXDomain,
		Questions: []layers.DNSQuestion{{Name: []byte(name), Type: layers.DNSTypeA, Class: layers.DNSClassIN}}})
}

func dnsBytes(d *layers.DNS) []byte {
	buf := gopacket.NewSerializeBuffer()
	if err := d.SerializeTo(buf, gopacket.SerializeOptions{FixLengths: true}); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// unreachable is IP[ICMP type/code or ICMPv6 type6/code6[quote]] from b to
// a, quoting the packet q (the probe as b received it), as a kernel quotes
// it: whole, or its first n bytes when n > 0.
func unreachable(a, b netip.Addr, typ, code, typ6, code6 uint8, q stack, n int) stack {
	quote := serializeStack(q)
	if n > 0 {
		quote = quote[:n]
	}
	if a.Is4() {
		return stack{ipLayer(layers.IPProtocolICMPv4, b, a), &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, code)}, gopacket.Payload(quote)}
	}
	return stack{ipLayer(layers.IPProtocolICMPv6, b, a), &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(typ6, code6)},
		gopacket.Payload(append(make([]byte, 4), quote...))}
}

// serializeStack is s as bytes, lengths fixed.
func serializeStack(s stack) []byte {
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true}, s...); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// withCnt1At returns b with "cnt1" written at offset i.
func withCnt1At(b []byte, i int) []byte {
	b = append([]byte(nil), b...)
	binary.BigEndian.PutUint32(b[i:], testMagic)
	return b
}

var httpRequest = []byte("GET /index.html HTTP/1.1\r\nHost: web\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n")

// transportCases are the TCP and UDP probes, replies and ICMP errors, and
// the background traffic the filter must keep out.
func transportCases() []transportCase {
	syn := func(a, b netip.Addr) stack { return tcpPacket(a, b, tcpSYN(), nil) }
	udpProbe := func(a, b netip.Addr) stack { return udpPacket(a, b, 40002, 7, udpProbeData()) }
	dnsProbe := func(a, b netip.Addr) stack { return udpPacket(a, b, 40003, 53, dnsQuery(dnsProbeName)) }
	notProbe := func(a, b netip.Addr) stack {
		return udpPacket(a, b, 40004, 9, withCnt1At(append(make([]byte, 5), httpRequest...), 5))
	}
	portUnreach := func(q func(a, b netip.Addr) stack) func(a, b netip.Addr) stack {
		return func(a, b netip.Addr) stack { return unreachable(a, b, 3, 3, 1, 4, q(a, b), 0) }
	}
	tcpTok := Observation{Proto: ProtoTCP, SrcPort: 40001, DstPort: 80, TCPFlags: TCPFlagSYN, TCPSeq: tokISN, Token: tokenBytes}
	synAck := Observation{Proto: ProtoTCP, SrcPort: 80, DstPort: 40001, TCPFlags: TCPFlagSYN | TCPFlagACK, TCPSeq: 0x1badcafe, TCPAck: tokISN + 1}
	rstAck := Observation{Proto: ProtoTCP, SrcPort: 80, DstPort: 40001, TCPFlags: TCPFlagRST | TCPFlagACK, TCPSeq: 0x1badcafe, TCPAck: tokISN + 1}
	udpTok := Observation{Proto: ProtoUDP, SrcPort: 40002, DstPort: 7, Token: tokenBytes}
	udpEcho := Observation{Proto: ProtoUDP, SrcPort: 7, DstPort: 40002, Token: tokenBytes}
	dnsQ := Observation{Proto: ProtoUDP, SrcPort: 40003, DstPort: 53, DNS: true, Token: tokenBytes}
	dnsA := Observation{Proto: ProtoUDP, SrcPort: 53, DstPort: 40003, DNS: true, DNSResponse: true, Token: tokenBytes}
	unreachUDP := Observation{Proto: ProtoUnreachable, ICMPType: 3, ICMPCode: 3, SrcPort: 40002, DstPort: 7, Token: tokenBytes}
	unreachDNS := Observation{Proto: ProtoUnreachable, ICMPType: 3, ICMPCode: 3, SrcPort: 40003, DstPort: 53, DNS: true, Token: tokenBytes}
	prohibited := Observation{Proto: ProtoUnreachable, ICMPType: 3, ICMPCode: 13, SrcPort: 40002, DstPort: 7, Token: tokenBytes}
	unreachTCP := Observation{Proto: ProtoUnreachable, ICMPType: 3, ICMPCode: 3, SrcPort: 40001, DstPort: 80, TCPSeq: tokISN, Token: tokenBytes}
	unreachTCPShort := unreachTCP
	unreachTCPShort.Token = nil // the quote ends before the token option does
	rejectTCP := unreachTCP
	rejectTCP.ICMPCode = 13
	quoteTCP := func(n int) func(a, b netip.Addr) stack { // a SYN probe's IP header and n bytes of its TCP header
		return func(a, b netip.Addr) stack {
			ipLen := 20
			if a.Is6() {
				ipLen = 40
			}
			return unreachable(a, b, 3, 3, 1, 4, syn(a, b), ipLen+n)
		}
	}
	return []transportCase{
		// IP[TCP SYN, options 254(token) MSS NOP NOP]
		{name: "tcp syn probe", pkt: syn, accept: true, want: tcpTok},
		// IP[TCP SYN-ACK, ack ISN+1], IP[TCP RST-ACK, ack ISN+1]
		{name: "tcp syn-ack", pkt: func(a, b netip.Addr) stack { return tcpPacket(b, a, tcpReply(true, false, tokISN+1), nil) }, accept: true, reply: true, want: synAck},
		{name: "tcp rst-ack", pkt: func(a, b netip.Addr) stack { return tcpPacket(b, a, tcpReply(false, true, tokISN+1), nil) }, accept: true, reply: true, want: rstAck},
		// IP[TCP SYN, options MSS SACK-permitted timestamps NOP window-scale]: a connect()
		{name: "ordinary syn", pkt: ordinarySYN(tokISN)},
		// IP[TCP SYN, no options[0xfe 0x12 "cnt1"...]]: the option's bytes as data, past a 20-byte header
		{name: "syn with the option's bytes as data", pkt: func(a, b netip.Addr) stack {
			t := &layers.TCP{SrcPort: 51234, DstPort: 80, Seq: 1, SYN: true, Window: 64240}
			return tcpPacket(a, b, t, append([]byte{tcpTokenKind, tcpTokenOptLen}, tokenBytes...))
		}},
		// IP[TCP SYN, options MSS 254(token)]: the token option is not first
		{name: "syn with the token option second", pkt: func(a, b netip.Addr) stack {
			t := tcpSYN()
			t.Options[0], t.Options[1] = t.Options[1], t.Options[0]
			return tcpPacket(a, b, t, nil)
		}},
		// IP[TCP SYN-ACK, ack 0x1234abcd], IP[TCP SYN-ACK, ack 0x636e0010], IP[TCP ACK, ack ISN+1]
		{name: "syn-ack with a random ack", reply: true, pkt: func(a, b netip.Addr) stack { return tcpPacket(b, a, tcpReply(true, false, 0x1234abcd), nil) }},
		{name: "syn-ack with an even ack", reply: true, pkt: func(a, b netip.Addr) stack { return tcpPacket(b, a, tcpReply(true, false, tokISN+2), nil) }},
		{name: "bare ack of a probe's isn", reply: true, pkt: func(a, b netip.Addr) stack { return tcpPacket(b, a, tcpReply(false, false, tokISN+1), nil) }},
		// IP[TCP PSH-ACK["GET ... cnt1 ..."]], with "cnt1" 2 bytes in (TCP offset 22) and further in
		{name: "http segment with cnt1 at tcp offset 22", pkt: func(a, b netip.Addr) stack {
			return tcpPacket(a, b, &layers.TCP{SrcPort: 51234, DstPort: 80, Seq: 1, Ack: tokISN + 1, ACK: true, PSH: true, Window: 502}, withCnt1At(httpRequest, 2))
		}},
		{name: "http segment with cnt1 at offset 37", pkt: func(a, b netip.Addr) stack {
			return tcpPacket(a, b, &layers.TCP{SrcPort: 51234, DstPort: 80, Seq: 1, Ack: 2, ACK: true, PSH: true, Window: 502}, withCnt1At(httpRequest, 37))
		}},
		// IP[UDP:7[token...]] and its echo IP[UDP 7->40002[token...]]
		{name: "udp probe", pkt: udpProbe, accept: true, want: udpTok},
		{name: "udp echo", pkt: func(a, b netip.Addr) stack { return udpPacket(b, a, 7, 40002, udpProbeData()) }, accept: true, reply: true, want: udpEcho},
		// IP[UDP:53[DNS query cnt1<run><seq>.probe.cnitrace.test A]] and its answer
		{name: "dns probe", pkt: dnsProbe, accept: true, want: dnsQ},
		{name: "dns answer", pkt: func(a, b netip.Addr) stack { return udpPacket(b, a, 53, 40003, dnsAnswer(dnsProbeName)) }, accept: true, reply: true, want: dnsA},
		// IP[UDP:53[DNS answer CnT1<run, mixed-case hex><seq>...]]: the case
		// changed by the server, and the same in a query (from a resolver
		// that sends 0x20-encoded questions)
		{name: "dns answer in mixed case", pkt: func(a, b netip.Addr) stack { return udpPacket(b, a, 53, 40003, dnsAnswer(dnsProbeNameMixed)) }, accept: true, reply: true, want: dnsA},
		{name: "dns query in mixed case", pkt: func(a, b netip.Addr) stack { return udpPacket(a, b, 40003, 53, dnsQuery(dnsProbeNameMixed)) }, accept: true, want: dnsQ},
		// IP[UDP:53[DNS query CnT2..., cnt\x11...]]: mixed-case names that are
		// no probe's: the digit is compared as it is, whatever its 0x20 bit
		{name: "dns query for a mixed-case name that is no probe's", pkt: func(a, b netip.Addr) stack {
			return udpPacket(a, b, 40005, 53, dnsQuery("CnT2"+dnsProbeNameMixed[4:]))
		}},
		{name: "dns query with cnt1's digit 0x20 off", pkt: func(a, b netip.Addr) stack {
			return udpPacket(a, b, 40005, 53, dnsQuery("CNT\x11"+dnsProbeNameMixed[4:]))
		}},
		// IP[UDP:53[DNS query for another name]]: one that ends in a probe's label too
		{name: "dns query for another name", pkt: func(a, b netip.Addr) stack {
			return udpPacket(a, b, 40005, 53, dnsQuery("kubernetes.default.svc.cluster.local"))
		}},
		{name: "dns query with cnt1 in a later label", pkt: func(a, b netip.Addr) stack { return udpPacket(a, b, 40005, 53, dnsQuery("x."+dnsProbeName)) }},
		// IP[UDP[5 bytes, token...]]
		{name: "udp with cnt1 at offset 5", pkt: notProbe},
		// IP[UDP:4789[token...]]: a tunnel port is looked into as a tunnel only
		// (inside a tunnel, no port is a tunnel's: there it is a probe)
		{name: "udp probe to a tunnel port", plain: true, pkt: func(a, b netip.Addr) stack { return udpPacket(a, b, 40002, PortVXLAN, udpProbeData()) }},
		// IP[UDP 4789->40002[token...]] and IP[ICMP 3/3[IP[UDP:4789[token...]]]]:
		// its answers are matched, everywhere: the echo goes to the prober's
		// port, and a quote is never looked into as a tunnel
		{name: "udp echo from a tunnel port", reply: true, accept: true, pkt: func(a, b netip.Addr) stack {
			return udpPacket(b, a, PortVXLAN, 40002, udpProbeData())
		}, want: Observation{Proto: ProtoUDP, SrcPort: PortVXLAN, DstPort: 40002, Token: tokenBytes}},
		{name: "port unreachable quoting a udp probe to a tunnel port", reply: true, accept: true, pkt: portUnreach(func(a, b netip.Addr) stack {
			return udpPacket(a, b, 40002, PortVXLAN, udpProbeData())
		}), want: Observation{Proto: ProtoUnreachable, ICMPType: 3, ICMPCode: 3, SrcPort: 40002, DstPort: PortVXLAN, Token: tokenBytes}},
		// IP[ICMP 3/3 or ICMPv6 1/4[IP[UDP[token...]]]] from b, and the same quoting the DNS probe
		{name: "port unreachable quoting a udp probe", pkt: portUnreach(udpProbe), accept: true, reply: true, want: unreachUDP},
		{name: "port unreachable quoting a dns probe", pkt: portUnreach(dnsProbe), accept: true, reply: true, want: unreachDNS},
		// IP[ICMP 3/13 or ICMPv6 1/1[IP[UDP[token...]]]]: a policy's REJECT, any code passes
		{name: "admin prohibited quoting a udp probe", reply: true, accept: true, want: prohibited, pkt: func(a, b netip.Addr) stack {
			return unreachable(a, b, 3, 13, 1, 1, udpProbe(a, b), 0)
		}},
		// IPv4[ICMP 3/3[IPv4(IHL 7)[UDP[token...]]]]: the quoted header's length is read
		{name: "port unreachable quoting ip options", v4: true, reply: true, accept: true, want: unreachUDP, pkt: func(a, b netip.Addr) stack {
			return unreachable(a, b, 3, 3, 1, 4, withOptions(udpProbe(a, b), 7), 0)
		}},
		// IP[ICMP 3/3[IP[UDP[5 bytes, token...]]]]
		{name: "port unreachable quoting a non-probe", reply: true, pkt: portUnreach(notProbe)},
		// IP[ICMP 3/3 or ICMPv6 1/4[IP[TCP SYN probe]]] (iptables' REJECT, as
		// kube-proxy's for a Service without endpoints), and 3/13 or 1/1
		// (--reject-with icmp-admin-prohibited, a NetworkPolicy)
		{name: "port unreachable quoting a tcp probe", reply: true, accept: true, want: unreachTCP, pkt: portUnreach(syn)},
		{name: "admin prohibited quoting a tcp probe", reply: true, accept: true, want: rejectTCP, pkt: func(a, b netip.Addr) stack {
			return unreachable(a, b, 3, 13, 1, 1, syn(a, b), 0)
		}},
		// IPv4[ICMP 3/3[IPv4(IHL 7)[TCP SYN probe]]]
		{name: "port unreachable quoting a tcp probe with ip options", v4: true, reply: true, accept: true, want: unreachTCP, pkt: func(a, b netip.Addr) stack {
			return unreachable(a, b, 3, 3, 1, 4, withOptions(syn(a, b), 7), 0)
		}},
		// IP[ICMP 3/3[IP[TCP ports and sequence]]]: RFC 792's minimum quote, as
		// a router sends it, gives the ports and the ISN but no token; one
		// that stops inside the token option gives no token either
		{name: "port unreachable quoting 8 bytes of a tcp probe", reply: true, accept: true, want: unreachTCPShort, pkt: quoteTCP(8)},
		{name: "port unreachable quoting 30 bytes of a tcp probe", reply: true, accept: true, want: unreachTCPShort, pkt: quoteTCP(30)},
		// IP[ICMP 3/3[IP[TCP SYN, a connect()'s random ISN]]], and the pod's RST
		// to a probe's SYN-ACK (sequence ISN+1, low bit set)
		{name: "port unreachable quoting an ordinary syn", reply: true, pkt: portUnreach(ordinarySYN(0x5eed1234))},
		{name: "port unreachable quoting the rst to a syn-ack", reply: true, pkt: portUnreach(func(a, b netip.Addr) stack {
			return tcpPacket(a, b, &layers.TCP{SrcPort: 40001, DstPort: 80, Seq: tokISN + 1, RST: true}, nil)
		})},
		// IP[ICMP 3/3[IP[TCP SYN of a connect() whose ISN looks like a probe's]]]:
		// 1 in 2^17 of them passes, as the filter reads only the sequence; the
		// decoder finds no token in the whole header, and the ports tie it to
		// no probe
		{name: "port unreachable quoting an ordinary syn with a probe's isn", reply: true, accept: true, pkt: portUnreach(ordinarySYN(tokISN)),
			want: Observation{Proto: ProtoUnreachable, ICMPType: 3, ICMPCode: 3, SrcPort: 51234, DstPort: 80, TCPSeq: tokISN}},
		// IP[ICMP 11/0 or ICMPv6 3/0[IP[TCP SYN probe]]]
		{name: "time exceeded quoting a tcp probe", reply: true, pkt: func(a, b netip.Addr) stack {
			return unreachable(a, b, 11, 0, 3, 0, syn(a, b), 0)
		}},
		// IP[ICMP 11/0 or ICMPv6 3/0[IP[UDP[token...]]]]: time exceeded is not a probe's answer
		{name: "time exceeded quoting a udp probe", reply: true, pkt: func(a, b netip.Addr) stack {
			return unreachable(a, b, 11, 0, 3, 0, udpProbe(a, b), 0)
		}},
		// IP[ICMP 3/3[IP[UDP header only]]]: RFC 792's minimum quote holds no token
		{name: "port unreachable quoting 8 bytes of udp", reply: true, pkt: func(a, b netip.Addr) stack {
			n := 20 + 8
			if a.Is6() {
				n = 40 + 8
			}
			return unreachable(a, b, 3, 3, 1, 4, udpProbe(a, b), n)
		}},
	}
}

// transportEncap puts an IP packet from x to y on the path: plain, or
// encapsulated between the underlay addresses (reversed for replies).
type transportEncap struct {
	name   string
	tunnel string
	under  [2]netip.Addr // request direction; zero when plain
	wrap   func(src, dst netip.Addr, inner stack) stack
	v4Only bool // IPIP carries IPv4 only
}

func transportEncaps() []transportEncap {
	return []transportEncap{
		{name: "plain", wrap: func(_, _ netip.Addr, s stack) stack { return s }},
		{name: "vxlan 8472", tunnel: TunnelVXLAN, under: [2]netip.Addr{underA, underB}, wrap: func(x, y netip.Addr, s stack) stack { return overVXLAN(8472, x, y, s) }},
		{name: "vxlan 4789", tunnel: TunnelVXLAN, under: [2]netip.Addr{underA, underB}, wrap: func(x, y netip.Addr, s stack) stack { return overVXLAN(4789, x, y, s) }},
		{name: "vxlan 4789 v6 underlay", tunnel: TunnelVXLAN, under: [2]netip.Addr{under6A, under6B}, wrap: func(x, y netip.Addr, s stack) stack { return overVXLAN(4789, x, y, s) }},
		{name: "geneve", tunnel: TunnelGeneve, under: [2]netip.Addr{underA, underB}, wrap: func(x, y netip.Addr, s stack) stack { return overGeneve(6081, 8, x, y, s) }},
		{name: "geneve v6 underlay", tunnel: TunnelGeneve, under: [2]netip.Addr{under6A, under6B}, wrap: func(x, y netip.Addr, s stack) stack { return overGeneve(6081, 4, x, y, s) }},
		{name: "ipip", tunnel: TunnelIPIP, under: [2]netip.Addr{underA, underB}, v4Only: true, wrap: func(x, y netip.Addr, s stack) stack {
			return append(stack{ipLayer(layers.IPProtocolIPv4, x, y)}, s...)
		}},
	}
}

// transportFrame is one case in one encapsulation, over one IP version.
type transportFrame struct {
	name               string
	stack              func() stack
	tc                 transportCase
	tunnel             string
	outerSrc, outerDst netip.Addr
	src, dst           netip.Addr
	a, b               netip.Addr // the probe's source and target
}

// transportFrames is every case in every encapsulation over IPv4 and IPv6.
func transportFrames() []transportFrame {
	var frames []transportFrame
	for _, e := range transportEncaps() {
		for _, fam := range [][2]netip.Addr{{overlA, overlB}, {overl6A, overl6B}} {
			if e.v4Only && fam[0].Is6() {
				continue
			}
			for _, tc := range transportCases() {
				if (tc.v4 && fam[0].Is6()) || (tc.plain && e.tunnel != "") {
					continue
				}
				f := transportFrame{name: fmt.Sprintf("%s/v%d/%s", e.name, map[bool]int{true: 4, false: 6}[fam[0].Is4()], tc.name),
					tc: tc, tunnel: e.tunnel, outerSrc: e.under[0], outerDst: e.under[1], a: fam[0], b: fam[1], src: fam[0], dst: fam[1]}
				if tc.reply {
					f.outerSrc, f.outerDst, f.src, f.dst = f.outerDst, f.outerSrc, f.dst, f.src
				}
				f.stack = func() stack { return e.wrap(f.outerSrc, f.outerDst, tc.pkt(f.a, f.b)) }
				frames = append(frames, f)
			}
		}
	}
	return frames
}

// want is the Observation Decode must return for f, but for Point, Link
// and the fields Decode leaves zero. A case's ICMP type and code are
// IPv4's; over IPv6 they are ICMPv6's.
func (f transportFrame) want() Observation {
	w := f.tc.want
	w.Tunnel, w.OuterSrc, w.OuterDst, w.Src, w.Dst = f.tunnel, f.outerSrc, f.outerDst, f.src, f.dst
	if w.Proto == ProtoUnreachable && f.a.Is6() {
		w.ICMPType = 1
		w.ICMPCode = map[uint8]uint8{3: 4, 13: 1}[w.ICMPCode] // port unreachable, administratively prohibited
	}
	return w
}
