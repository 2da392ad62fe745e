package capture

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/cnitrace/cnitrace/topology"
)

// corpusFrame is a frame of the package's test corpora and the link it is
// on.
type corpusFrame struct {
	name  string
	frame []byte
	link  LinkType
}

// decodeCorpus is every frame the decoder's tests and fuzz seeds use: the
// hand-built frames, the tunnel and transport cases on both link types,
// the benchmark's frames, and the recordings in testdata.
func decodeCorpus(t testing.TB) []corpusFrame {
	t.Helper()
	var out []corpusFrame
	eth := func(name string, f []byte) { out = append(out, corpusFrame{name, f, LinkEthernet}) }
	eth("plain request", plainRequest())
	eth("plain reply", ether(0x0800, ip4(1, 5, 0, overlB, overlA, icmpEcho(0, 7, 1, probeHi))))
	eth("plain with IP options", ether(0x0800, ip4(1, 7, 0, overlA, overlB, icmpEcho(8, 7, 1, probeHi))))
	eth("ethernet padding", append(ether(0x0800, ip4(1, 5, 0, overlA, overlB, icmpEcho(8, 7, 1, probeHi[:4]))), make([]byte, 8)...))
	eth("echo without data", ether(0x0800, ip4(1, 5, 0, overlA, overlB, icmpEcho(8, 7, 1, nil))))
	eth("first fragment", ether(0x0800, ip4(1, 5, 0x2000, overlA, overlB, icmpEcho(8, 7, 1, probeHi))))
	eth("later fragment", ether(0x0800, ip4(1, 5, 185, overlA, overlB, probeHi)))
	eth("arp", ether(0x0806, make([]byte, 28)))
	eth("gre", ether(0x0800, ip4(47, 5, 0, overlA, overlB, make([]byte, 20))))
	eth("time exceeded", ether(0x0800, ip4(1, 5, 0, overlA, overlB, icmpEcho(11, 0, 0, probeHi))))
	for _, p := range []uint16{PortVXLAN, PortVXLANLinux, 9472, 53, PortGeneve} {
		for _, ihl := range [][2]int{{5, 5}, {6, 5}, {5, 7}} {
			eth(fmt.Sprintf("vxlan %d ihl %v", p, ihl), vxlanRequest(p, ihl[0], ihl[1]))
		}
	}
	eth("vxlan inner udp", ether(0x0800, ip4(17, 5, 0, underA, underB, udp(1, 8472, vxlan(1,
		ether(0x0800, ip4(17, 5, 0, overlA, overlB, udp(1, 2, nil))))))))
	eth("vxlan header only", ether(0x0800, ip4(17, 5, 0, underA, underB, udp(1, 8472, vxlan(1, nil)))))
	for _, link := range []LinkType{LinkEthernet, LinkRawIP} {
		for _, tc := range tunnelCases() {
			out = append(out, corpusFrame{"tunnel " + tc.name, onLink(t, link, tc.stack()), link})
		}
		for _, tf := range transportFrames() {
			out = append(out, corpusFrame{"transport " + tf.name, onLink(t, link, tf.stack()), link})
		}
	}
	if b, ok := t.(*testing.B); ok {
		for _, bf := range benchFrames(b) {
			eth("bench "+bf.name, bf.frame)
		}
	}
	for _, name := range append([]string{recordedVXLAN}, handBuiltRecordings()...) {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatalf("read corpus: %v", err)
		}
		obs, err := ReadPcapNG(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("read corpus %s: %v", name, err)
		}
		for i, o := range obs {
			out = append(out, corpusFrame{fmt.Sprintf("%s #%d", name, i), o.Frame, o.Link})
		}
	}
	return out
}

// corpusDecoders are the decoders the corpus is decoded with, one per link.
func corpusDecoders() map[LinkType]*Decoder {
	return map[LinkType]*Decoder{LinkEthernet: NewDecoderFor(LinkEthernet, []uint16{9472}), LinkRawIP: NewDecoderFor(LinkRawIP, []uint16{9472})}
}

// agree fails t unless Decode (fast path first) and decodeLayers give the
// same observation, or the same error, for frame, named by name and args
// (formatted only on failure); it reports whether the fast path took the
// frame.
func agree(t *testing.T, d *Decoder, frame []byte, name string, args ...any) bool {
	t.Helper()
	m := Meta{Point: "p1", At: time.Unix(1700000000, 5), Stamp: StampSKB, Dir: topology.RX}
	fast := Observation{Point: m.Point, At: m.At, Stamp: m.Stamp, Dir: m.Dir, Link: d.link}
	took := d.decodeFast(&fast, frame)
	got, gerr := d.Decode(frame, m)
	want, werr := d.decodeLayers(frame, m)
	switch {
	case (gerr == nil) != (werr == nil) || gerr != nil && gerr.Error() != werr.Error():
		t.Fatalf("%s: Decode says %v, decodeLayers %v; frame % x", fmt.Sprintf(name, args...), gerr, werr, frame)
	case !sameObservation(got, want):
		t.Fatalf("%s: Decode gives\n%+v\ndecodeLayers\n%+v\nframe % x", fmt.Sprintf(name, args...), got, want, frame)
	case took && (werr != nil || !sameObservation(fast, want)):
		t.Fatalf("%s: decodeFast took a frame decodeLayers makes\n%+v (%v)\nof, and made\n%+v\nframe % x", fmt.Sprintf(name, args...), want, werr, fast, frame)
	}
	return took
}

// sameObservation is reflect.DeepEqual for observations, at a fraction of
// its cost: the slices compared by their bytes and whether they are nil,
// every other field with == (TestObservationFields keeps the list whole).
func sameObservation(a, b Observation) bool {
	same := func(x, y []byte) bool { return (x == nil) == (y == nil) && bytes.Equal(x, y) }
	return same(a.Payload, b.Payload) && same(a.Token, b.Token) && same(a.Frame, b.Frame) && scalars(a) == scalars(b)
}

// observationScalars are the fields of an Observation but its slices.
type observationScalars struct {
	Point                             string
	At                                time.Time
	Stamp                             StampSource
	Dir                               topology.Dir
	Tunnel                            string
	OuterSrc, OuterDst, Src, Dst      netip.Addr
	Proto                             Proto
	ICMPType, ICMPCode                uint8
	ICMPID, ICMPSeq, SrcPort, DstPort uint16
	TCPFlags                          uint8
	TCPSeq, TCPAck                    uint32
	DNS, DNSResponse                  bool
	Link                              LinkType
}

func scalars(o Observation) observationScalars {
	return observationScalars{o.Point, o.At, o.Stamp, o.Dir, o.Tunnel, o.OuterSrc, o.OuterDst, o.Src, o.Dst, o.Proto,
		o.ICMPType, o.ICMPCode, o.ICMPID, o.ICMPSeq, o.SrcPort, o.DstPort, o.TCPFlags, o.TCPSeq, o.TCPAck, o.DNS, o.DNSResponse, o.Link}
}

// TestObservationFields checks that observationScalars and the three
// slices are all of an Observation's fields, so sameObservation compares
// every one of them.
func TestObservationFields(t *testing.T) {
	var got []string
	for f := range reflect.TypeFor[Observation]().Fields() {
		if f.Type.Kind() != reflect.Slice {
			got = append(got, f.Name+" "+f.Type.String())
		}
	}
	var want []string
	for f := range reflect.TypeFor[observationScalars]().Fields() {
		want = append(want, f.Name+" "+f.Type.String())
	}
	if !slices.Equal(got, want) {
		t.Errorf("Observation has the fields besides slices\n%v\nobservationScalars\n%v", got, want)
	}
	if n := reflect.TypeFor[Observation]().NumField() - len(got); n != 3 {
		t.Errorf("Observation has %d slices, sameObservation compares 3", n)
	}
}

// mutatedBytes is how much of each frame TestDecodeFastAgrees changes
// byte by byte: the headers of a probe in VXLAN and its token.
const mutatedBytes = 14 + 20 + 8 + 8 + 14 + 20 + 8 + TokenLen

// TestDecodeFastAgrees decodes every frame of the corpora, each cut at
// every length and with each of its first mutatedBytes changed in four ways, with the fast
// path and layer by layer: both must give the same observation or the
// same error. The fast path must take a good part of the corpus, or this
// proves little.
func TestDecodeFastAgrees(t *testing.T) {
	decs := corpusDecoders()
	taken, decoded := 0, 0
	for _, c := range decodeCorpus(t) {
		d := decs[c.link]
		if agree(t, d, c.frame, "%s", c.name) {
			taken++
		}
		if _, err := d.decodeLayers(c.frame, Meta{}); err == nil {
			decoded++
		}
		f := bytes.Clone(c.frame)
		for n := range len(f) {
			agree(t, d, f[:n], "%s cut at %d", c.name, n)
		}
		for i, b := range c.frame[:min(len(c.frame), mutatedBytes)] {
			for _, v := range []byte{0, 0xff, b ^ 0x01, b ^ 0x80} {
				f[i] = v
				agree(t, d, f, "%s byte %d = %#02x", c.name, i, v)
			}
			f[i] = b
		}
	}
	if taken*4 < decoded { // the corpus is mostly what the fast path leaves: IPv6, Geneve, IP options
		t.Errorf("the fast path took %d of the %d frames decoded, want at least a quarter", taken, decoded)
	}
}

// TestDecodeFastTakes checks which frames the fast path reads: the probes
// of an IPv4 path, plain or in VXLAN or IPIP, but none with IP options,
// IPv6 or Geneve, which only decodeLayers reads.
func TestDecodeFastTakes(t *testing.T) {
	vx := func(s stack) stack { return overVXLAN(PortVXLANLinux, underA, underB, s) }
	tests := []struct {
		name  string
		link  LinkType
		frame []byte
		fast  bool
	}{
		// Ethernet[IPv4[ICMP echo request]]
		{"plain", LinkEthernet, plainRequest(), true},
		// Ethernet[IPv4[UDP:8472[VXLAN[Ethernet[IPv4[ICMP echo request]]]]]]
		{"vxlan", LinkEthernet, vxlanRequest(8472, 5, 5), true},
		// IPv4[ICMP echo reply]
		{"raw ip", LinkRawIP, onLink(t, LinkRawIP, echo(0, overlB, overlA, probeHi)), true},
		// IPv4[IPv4[ICMP echo request]]
		{"ipip", LinkRawIP, onLink(t, LinkRawIP, overIPIP(request4())), true},
		// Ethernet[IPv4[UDP[VXLAN[Ethernet[IPv4[TCP SYN]]]]]]
		{"vxlan tcp syn", LinkEthernet, onLink(t, LinkEthernet, vx(tcpPacket(overlA, overlB, tcpSYN(), nil))), true},
		// Ethernet[IPv4[UDP[VXLAN[Ethernet[IPv4[UDP:53[DNS answer]]]]]]]
		{"vxlan dns", LinkEthernet, onLink(t, LinkEthernet, vx(udpPacket(overlB, overlA, 53, 40003, dnsAnswer(dnsProbeName)))), true},
		// Ethernet[IPv4[UDP[VXLAN[Ethernet[IPv4[ICMP port unreachable[IPv4[UDP]]]]]]]]
		{"vxlan unreachable", LinkEthernet, onLink(t, LinkEthernet, vx(unreachable(overlA, overlB, 3, 3, 1, 4, udpPacket(overlA, overlB, 40003, 53, dnsQuery(dnsProbeName)), 0))), true},
		// Ethernet[IPv4(IHL 7)[ICMP echo request]]
		{"ip options", LinkEthernet, ether(0x0800, ip4(1, 7, 0, overlA, overlB, icmpEcho(8, 7, 1, probeHi))), false},
		// Ethernet[IPv6[ICMPv6 echo request]]
		{"ipv6", LinkEthernet, onLink(t, LinkEthernet, request6()), false},
		// Ethernet[IPv4[UDP:6081[Geneve[Ethernet[IPv4[ICMP echo request]]]]]]
		{"geneve", LinkEthernet, onLink(t, LinkEthernet, overGeneve(6081, 0, underA, underB, request4())), false},
		// Ethernet[IPv4[UDP:8472[VXLAN[Ethernet[IPv6[ICMPv6 echo request]]]]]]
		{"vxlan v6 inside", LinkEthernet, onLink(t, LinkEthernet, vx(request6())), false},
	}
	decs := corpusDecoders()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := agree(t, decs[tt.link], tt.frame, "%s", tt.name); got != tt.fast {
				t.Errorf("decodeFast took it: %v, want %v", got, tt.fast)
			}
		})
	}
}

// FuzzDecodeFastAgrees is TestDecodeFastAgrees's check on any frame, from
// the corpora's.
func FuzzDecodeFastAgrees(f *testing.F) {
	for _, c := range decodeCorpus(f) {
		f.Add(c.frame, c.link == LinkRawIP)
	}
	decs := corpusDecoders()
	f.Fuzz(func(t *testing.T, frame []byte, raw bool) {
		link := LinkEthernet
		if raw {
			link = LinkRawIP
		}
		agree(t, decs[link], frame, "fuzzed")
	})
}

// TestDecodeKeepsOwnBytes checks what keep hands out: each observation's
// bytes are its own, an append to one never reaches the next, and
// decoding probes allocates nothing per packet once a chunk is there.
func TestDecodeKeepsOwnBytes(t *testing.T) {
	d := NewDecoderFor(LinkEthernet, nil)
	a, err := d.Decode(plainRequest(), Meta{})
	if err != nil {
		t.Fatal(err)
	}
	reply := ether(0x0800, ip4(1, 5, 0, overlB, overlA, icmpEcho(layers.ICMPv4TypeEchoReply, 7, 1, probeData(testMagic, 56))))
	b, err := d.Decode(reply, Meta{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cap(a.Payload), len(a.Payload); got != want {
		t.Errorf("got a payload of capacity %d, want its length %d", got, want)
	}
	before := bytes.Clone(b.Payload)
	a.Payload = append(a.Payload, 0xee, 0xee, 0xee, 0xee)
	a.Payload[0] = 0xee
	if !bytes.Equal(b.Payload, before) {
		t.Errorf("writing one observation's payload changed the next one's: % x", b.Payload)
	}
	frame := vxlanRequest(8472, 5, 5)
	if n := testing.AllocsPerRun(100, func() {
		if _, err := d.Decode(frame, Meta{}); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("got %v allocations per decoded probe, want 0", n)
	}
	big := ether(0x0800, ip4(1, 5, 0, overlA, overlB, icmpEcho(8, 7, 1, probeData(testMagic, arenaMax+1))))
	o, err := d.Decode(big, Meta{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(o.Payload), arenaMax+1; got != want {
		t.Errorf("got %d bytes of a big payload, want %d", got, want)
	}
}
