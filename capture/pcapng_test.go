package capture

import (
	"bytes"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/cnitrace/cnitrace/topology"
)

func TestPcapNGRoundTrip(t *testing.T) {
	points := []topology.Point{
		{ID: "p0", Interface: "vx0", NetNS: "net:[4026532301]", Kind: topology.KindVXLAN, RequestDir: topology.TX, TunnelPort: 8472},
		{ID: "p1", Interface: "ul0", NetNS: "net:[4026532301]", Kind: topology.KindUplink, RequestDir: topology.TX},
		{ID: "p2", Interface: "gn0", NetNS: "net:[4026532302]", Kind: topology.KindOther, RequestDir: topology.RX, TunnelPort: 9472},
	}
	at := time.Unix(1700000000, 123456789)
	frames := []struct {
		meta  Meta
		frame []byte
	}{
		// Ethernet[IPv4[ICMP]]
		{Meta{"p0", at, StampCopy, topology.TX}, plainRequest()},
		// Ethernet[IPv4[UDP:8472[VXLAN[Ethernet[IPv4[ICMP]]]]]]
		{Meta{"p1", at.Add(13 * time.Microsecond), StampCopy, topology.TX}, vxlanRequest(8472, 5, 5)},
		// Ethernet[IPv4[UDP:9472[VXLAN[Ethernet[IPv4(IHL 6)[ICMP]]]]]]: a port known only from p2's TunnelPort
		{Meta{"p2", at.Add(time.Millisecond + 1), StampSKB, topology.RX}, vxlanRequest(9472, 5, 6)},
		// Ethernet[IPv4[ICMP echo reply]]
		{Meta{"p0", at.Add(2 * time.Millisecond), StampSKB, topology.RX},
			ether(0x0800, ip4(1, 5, 0, overlB, overlA, icmpEcho(0, 7, 1, probeHi)))},
	}
	dec := NewDecoderFor(LinkEthernet, []uint16{9472})
	var want []Observation
	for _, f := range frames {
		o, err := dec.Decode(f.frame, f.meta)
		if err != nil {
			t.Fatal(err)
		}
		o.Frame = f.frame
		want = append(want, o)
	}
	frameless := Observation{Point: "p1", At: at, Payload: probeHi} // skipped: no Frame

	var buf bytes.Buffer
	if err := WritePcapNG(&buf, points, append(want, frameless)); err != nil {
		t.Fatal(err)
	}
	got, err := ReadPcapNG(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d observations, want %d", len(got), len(want))
	}
	for i := range want {
		if !got[i].At.Equal(want[i].At) {
			t.Errorf("observation %d: got time %v, want %v", i, got[i].At, want[i].At)
		}
		got[i].At = want[i].At // time.Time locations differ
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("observation %d:\ngot  %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

func TestWritePcapNGErrors(t *testing.T) {
	pt := topology.Point{ID: "p0", Interface: "eth0", NetNS: "net:[1]"}
	obs := []Observation{{Point: "p9", Frame: plainRequest()}}
	tests := []struct {
		name    string
		points  []topology.Point
		obs     []Observation
		wantErr string
	}{
		{"no points", nil, nil, "no capture points"},
		{"duplicate point", []topology.Point{pt, pt}, nil, "used twice"},
		{"unknown point", []topology.Point{pt}, obs, `unknown capture point "p9"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := WritePcapNG(&bytes.Buffer{}, tt.points, tt.obs)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestReadPcapNGErrors(t *testing.T) {
	pt := topology.Point{ID: "p0", Interface: "eth0", NetNS: "net:[1]"}
	// Ethernet[ARP]: written fine, but not an observation.
	var buf bytes.Buffer
	if err := WritePcapNG(&buf, []topology.Point{pt}, []Observation{{Point: "p0", Frame: ether(0x0806, make([]byte, 28))}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadPcapNG(&buf); err == nil || !strings.Contains(err.Error(), "packet 0") {
		t.Errorf("got error %v, want one naming packet 0", err)
	}
	if _, err := ReadPcapNG(strings.NewReader("not a pcapng file")); err == nil {
		t.Errorf("read garbage: got no error")
	}
}

// testIfaces are two points as Start would report them: an Ethernet veth
// in the pod netns and a raw-IP tunnel device in the node's.
func testIfaces() []Interface {
	return []Interface{
		{Point: topology.Point{ID: "p0", Interface: "eth0", Ifindex: 2, NetNS: "net:[4026532301]", Kind: topology.KindPod, RequestDir: topology.TX}, Link: LinkEthernet},
		{Point: topology.Point{ID: "p1", Interface: "tunl0", Ifindex: 7, NetNS: "net:[4026531840]", Kind: topology.KindIPIP, RequestDir: topology.TX}, Link: LinkRawIP},
	}
}

// testObservations are a request and its reply at both points of
// testIfaces, decoded from hand-built frames.
func testObservations(t testing.TB) []Observation {
	t.Helper()
	at := time.Unix(1700000000, 123456789)
	frames := []struct {
		meta  Meta
		link  LinkType
		frame []byte
	}{
		// Ethernet[IPv4[ICMP echo request]]
		{Meta{"p0", at, StampCopy, topology.TX}, LinkEthernet, plainRequest()},
		// IPv4[ICMP echo request] on the raw-IP link
		{Meta{"p1", at.Add(7 * time.Microsecond), StampCopy, topology.TX}, LinkRawIP, ip4(1, 5, 0, overlA, overlB, icmpEcho(8, 7, 1, probeHi))},
		// IPv4[ICMP echo reply]
		{Meta{"p1", at.Add(90 * time.Microsecond), StampSKB, topology.RX}, LinkRawIP, ip4(1, 5, 0, overlB, overlA, icmpEcho(0, 7, 1, probeHi))},
		// Ethernet[IPv4[ICMP echo reply]]
		{Meta{"p0", at.Add(95*time.Microsecond + 1), StampSKB, topology.RX}, LinkEthernet, ether(0x0800, ip4(1, 5, 0, overlB, overlA, icmpEcho(0, 7, 1, probeHi)))},
	}
	var obs []Observation
	for _, f := range frames {
		o, err := NewDecoderFor(f.link, nil).Decode(f.frame, f.meta)
		if err != nil {
			t.Fatal(err)
		}
		o.Frame = f.frame
		obs = append(obs, o)
	}
	return obs
}

// TestPcapNGWriterLayout writes packets with labels and statistics and
// reads the blocks back with pcapgo's reader: interface names and
// descriptions, nanosecond resolution, link types, every packet's
// timestamp, flags and comment, and the statistics at the end.
func TestPcapNGWriterLayout(t *testing.T) {
	var buf bytes.Buffer
	pw, err := NewPcapNGWriter(&buf, testIfaces())
	if err != nil {
		t.Fatal(err)
	}
	obs := testObservations(t)
	for i, o := range obs {
		if err := pw.WritePacket(o, fmt.Sprintf("probe seq=%d run=00000000c0ffee00", i/4)); err != nil {
			t.Fatal(err)
		}
	}
	stats := []PointStats{
		{Point: "p0", Packets: 3, Drops: 1, Undecodable: 0},
		{Point: "p1", Packets: 2, Freezes: 1, Undecodable: 0},
	}
	start, end := time.Unix(1700000000, 0), time.Unix(1700000001, 5)
	if err := pw.WriteStats(stats, map[string]uint64{"p1": 4}, start, end); err != nil {
		t.Fatal(err)
	}
	if err := pw.Flush(); err != nil {
		t.Fatal(err)
	}

	isbs := map[int]pcapgo.NgInterfaceStatistics{}
	nr, err := pcapgo.NewNgReader(bytes.NewReader(buf.Bytes()), pcapgo.NgReaderOptions{
		WantMixedLinkType:  true,
		StatisticsCallback: func(id int, s pcapgo.NgInterfaceStatistics) { isbs[id] = s },
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := nr.SectionInfo(); got.Application != "cnitrace" || got.Comment != "cnitrace tunnel_ports=4789,8472" {
		t.Errorf("got section %+v, want application cnitrace and the tunnel ports", got)
	}
	wantComments := []string{
		"probe seq=0 run=00000000c0ffee00 point=p0 request dir=tx stamp=copy",
		"probe seq=0 run=00000000c0ffee00 point=p1 request dir=tx stamp=copy",
		"probe seq=0 run=00000000c0ffee00 point=p1 reply dir=rx stamp=skb",
		"probe seq=0 run=00000000c0ffee00 point=p0 reply dir=rx stamp=skb",
	}
	for i, want := range wantComments {
		data, ci, opts, err := nr.ReadPacketDataWithOptions()
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		o := obs[i]
		if id := map[string]int{"p0": 0, "p1": 1}[o.Point]; ci.InterfaceIndex != id {
			t.Errorf("packet %d: interface %d, want %d", i, ci.InterfaceIndex, id)
		}
		if !ci.Timestamp.Equal(o.At) || !bytes.Equal(data, o.Frame) {
			t.Errorf("packet %d: got time %v and %d bytes, want %v and %d", i, ci.Timestamp, len(data), o.At, len(o.Frame))
		}
		if len(opts.Comments) != 1 || opts.Comments[0] != want {
			t.Errorf("packet %d: got comments %q, want %q", i, opts.Comments, want)
		}
		if wantDir := epbDirection(o.Dir); opts.Flags == nil || opts.Flags.Direction != wantDir {
			t.Errorf("packet %d: got flags %+v, want direction %v", i, opts.Flags, wantDir)
		}
	}
	if _, _, err := nr.ReadPacketData(); err != io.EOF {
		t.Fatalf("after the packets: got %v, want EOF", err)
	}
	wantIfaces := []struct {
		name, desc string
		link       layers.LinkType
	}{
		{"eth0 (net:[4026532301])", "point=p0 kind=pod ifindex=2 netns=net:[4026532301] request_dir=tx", layers.LinkTypeEthernet},
		{"tunl0 (net:[4026531840])", "point=p1 kind=ipip ifindex=7 netns=net:[4026531840] request_dir=tx", layers.LinkTypeRaw},
	}
	if nr.NInterfaces() != len(wantIfaces) {
		t.Fatalf("got %d interfaces, want %d", nr.NInterfaces(), len(wantIfaces))
	}
	for i, want := range wantIfaces {
		iface, _ := nr.Interface(i)
		if iface.Name != want.name || iface.Description != want.desc || iface.LinkType != want.link || iface.TimestampResolution != 9 {
			t.Errorf("interface %d: got %q %q %s resolution %d, want %q %q %s resolution 9",
				i, iface.Name, iface.Description, iface.LinkType, iface.TimestampResolution, want.name, want.desc, want.link)
		}
	}
	wantISB := []struct {
		recv, drop uint64
		comment    string
	}{
		{3, 1, "cnitrace point=p0 packets=3 drops=1 freezes=0 undecodable=0 written=2 left_out=0"},
		{2, 0, "cnitrace point=p1 packets=2 drops=0 freezes=1 undecodable=0 written=2 left_out=4"},
	}
	for i, want := range wantISB {
		got, ok := isbs[i]
		if !ok {
			t.Errorf("interface %d: no statistics block", i)
			continue
		}
		if got.PacketsReceived != want.recv || got.PacketsDropped != want.drop || got.Comment != want.comment ||
			!got.StartTime.Equal(start) || !got.EndTime.Equal(end) || !got.LastUpdate.Equal(end) {
			t.Errorf("interface %d: got statistics %+v, want received %d, dropped %d, comment %q, %v to %v", i, got, want.recv, want.drop, want.comment, start, end)
		}
	}
	back, err := ReadPcapNG(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	for i := range back {
		back[i].At = obs[i].At // time.Time locations differ
	}
	if !reflect.DeepEqual(back, obs) {
		t.Errorf("read back:\ngot  %+v\nwant %+v", back, obs)
	}
}

// TestInterfaceStatsBlock checks the hand-encoded statistics block byte
// by byte (pcapng section 4.6, little-endian): a 4-byte comment, start and
// end time, isb_ifrecv, isb_ifdrop, isb_usrdeliv.
func TestInterfaceStatsBlock(t *testing.T) {
	end := time.Unix(0, 0x0000000100000002)
	got := interfaceStats{iface: 3, start: time.Unix(0, 0x0a), end: end, recv: 5, drop: 6, delivered: 4, comment: "abcde"}.block()
	want := []byte{
		5, 0, 0, 0, 100, 0, 0, 0, // block type 5 (ISB), total length 100
		3, 0, 0, 0, // interface 3
		1, 0, 0, 0, 2, 0, 0, 0, // timestamp (high, low): the end
		1, 0, 5, 0, 'a', 'b', 'c', 'd', 'e', 0, 0, 0, // opt_comment, padded
		2, 0, 8, 0, 0, 0, 0, 0, 0x0a, 0, 0, 0, // isb_starttime
		3, 0, 8, 0, 1, 0, 0, 0, 2, 0, 0, 0, // isb_endtime
		4, 0, 8, 0, 5, 0, 0, 0, 0, 0, 0, 0, // isb_ifrecv
		5, 0, 8, 0, 6, 0, 0, 0, 0, 0, 0, 0, // isb_ifdrop
		8, 0, 8, 0, 4, 0, 0, 0, 0, 0, 0, 0, // isb_usrdeliv
		0, 0, 0, 0, // opt_endofopt
		100, 0, 0, 0, // total length again
	}
	if !bytes.Equal(got, want) {
		t.Errorf("got block\n% x\nwant\n% x", got, want)
	}
}

func TestPcapNGWriterErrors(t *testing.T) {
	ifaces := testIfaces()
	if _, err := NewPcapNGWriter(io.Discard, nil); err == nil || !strings.Contains(err.Error(), "no capture points") {
		t.Errorf("no interfaces: got error %v", err)
	}
	if _, err := NewPcapNGWriter(io.Discard, []Interface{ifaces[0], ifaces[0]}); err == nil || !strings.Contains(err.Error(), "used twice") {
		t.Errorf("a point twice: got error %v", err)
	}
	pw, err := NewPcapNGWriter(io.Discard, ifaces)
	if err != nil {
		t.Fatal(err)
	}
	o := testObservations(t)[0]
	frameless, unknown, wrongLink := o, o, o
	frameless.Frame = nil
	unknown.Point = "p9"
	wrongLink.Link = LinkRawIP
	tests := []struct {
		name    string
		o       Observation
		wantErr string
	}{
		{"no frame", frameless, "has no frame"},
		{"unknown point", unknown, `unknown capture point "p9"`},
		{"wrong link type", wrongLink, "has link type raw-ip, its interface ethernet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := pw.WritePacket(tt.o, ""); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
	if err := pw.WriteStats([]PointStats{{Point: "p9"}}, nil, time.Time{}, time.Time{}); err == nil || !strings.Contains(err.Error(), `"p9"`) {
		t.Errorf("statistics of an unknown point: got error %v", err)
	}
}

// TestReadPcapNGEarlierLayout reads what earlier versions wrote: the
// description is the bare point ID and the comment "p1 rx stamp=skb".
func TestReadPcapNGEarlierLayout(t *testing.T) {
	var buf bytes.Buffer
	nw, err := pcapgo.NewNgWriterInterface(&buf, pcapgo.NgInterface{Name: "eth0@net:[1]", Description: "p1", LinkType: layers.LinkTypeEthernet, TimestampResolution: 9}, pcapgo.NgWriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(1700000000, 1)
	ci := gopacket.CaptureInfo{Timestamp: at, CaptureLength: len(plainRequest()), Length: len(plainRequest())}
	// Flags say outbound, the comment rx: the comment wins.
	opts := pcapgo.NgPacketOptions{Comments: []string{"p1 rx stamp=skb"}, Flags: &pcapgo.NgEpbFlags{Direction: pcapgo.NgEpbFlagDirectionOutbound}}
	if err := nw.WritePacketWithOptions(ci, plainRequest(), opts); err != nil {
		t.Fatal(err)
	}
	if err := nw.Flush(); err != nil {
		t.Fatal(err)
	}
	obs, err := ReadPcapNG(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(obs) != 1 || obs[0].Point != "p1" || obs[0].Dir != topology.RX || obs[0].Stamp != StampSKB || !obs[0].At.Equal(at) {
		t.Errorf("got %+v, want one observation of p1, rx, stamp skb at %v", obs, at)
	}
}

func TestProbeLabel(t *testing.T) {
	for _, tt := range []struct {
		run  uint64
		seq  uint32
		want string
	}{
		{0x00c0ffee00c0ffee, 3, "probe seq=3 run=00c0ffee00c0ffee"},
		{1, 0, "probe seq=0 run=0000000000000001"},
		{^uint64(0), ^uint32(0), "probe seq=4294967295 run=ffffffffffffffff"},
	} {
		if got := ProbeLabel(tt.run, tt.seq); got != tt.want {
			t.Errorf("ProbeLabel(%#x, %d) = %q, want %q", tt.run, tt.seq, got, tt.want)
		}
	}
}
