package capture

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

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
