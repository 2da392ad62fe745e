package capture

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/capture/tsharktest"
)

// TestPcapNGTshark has tshark (Debian package tshark) read what
// PcapNGWriter encodes itself, packet and statistics blocks: the packets
// with their interface, name, description, comment and direction, and
// each statistics block's counters as Wireshark's pcapng file dissector
// decodes them.
func TestPcapNGTshark(t *testing.T) {
	tshark := tsharktest.Look(t)
	file := filepath.Join(t.TempDir(), "hops.pcapng")
	var buf bytes.Buffer
	pw, err := NewPcapNGWriter(&buf, testIfaces())
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range testObservations(t) {
		if err := pw.WritePacket(o, ProbeLabel(0x00c0ffee00c0ffee, 1)); err != nil {
			t.Fatal(err)
		}
	}
	stats := []PointStats{{Point: "p0", Packets: 5, Drops: 3}, {Point: "p1", Packets: 2}}
	if err := pw.WriteStats(stats, map[string]uint64{"p0": 1}, time.Unix(1700000000, 0), time.Unix(1700000001, 0)); err != nil {
		t.Fatal(err)
	}
	if err := pw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	out := tsharktest.Run(t, tshark, "-r", file, "-T", "fields", "-E", "separator=|",
		"-e", "frame.interface_id", "-e", "frame.interface_name", "-e", "frame.interface_description",
		"-e", "frame.comment", "-e", "frame.packet_flags_direction", "-e", "frame.time_epoch", "-e", "icmp.type")
	p0 := "0|eth0 (net:[4026532301])|point=p0 kind=pod ifindex=2 netns=net:[4026532301] request_dir=tx|"
	p1 := "1|tunl0 (net:[4026531840])|point=p1 kind=ipip ifindex=7 netns=net:[4026531840] request_dir=tx|"
	want := []string{
		p0 + "probe seq=1 run=00c0ffee00c0ffee point=p0 request dir=tx stamp=copy|0x00000002|1700000000.123456789|8",
		p1 + "probe seq=1 run=00c0ffee00c0ffee point=p1 request dir=tx stamp=copy|0x00000002|1700000000.123463789|8",
		p1 + "probe seq=1 run=00c0ffee00c0ffee point=p1 reply dir=rx stamp=skb|0x00000001|1700000000.123546789|0",
		p0 + "probe seq=1 run=00c0ffee00c0ffee point=p0 reply dir=rx stamp=skb|0x00000001|1700000000.123551790|0",
	}
	if got := strings.Split(strings.TrimSpace(out), "\n"); !slices.Equal(got, want) {
		t.Errorf("tshark read\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	isbs := tsharktest.Statistics(t, tshark, file)
	wantISB := []tsharktest.ISB{
		{Interface: "0", Received: "5", Dropped: "3", Delivered: "2", Comment: "cnitrace point=p0 packets=5 drops=3 freezes=0 undecodable=0 written=2 left_out=1"},
		{Interface: "1", Received: "2", Dropped: "0", Delivered: "2", Comment: "cnitrace point=p1 packets=2 drops=0 freezes=0 undecodable=0 written=2 left_out=0"},
	}
	if !slices.Equal(isbs, wantISB) {
		t.Errorf("tshark read the statistics blocks\n%+v\nwant\n%+v", isbs, wantISB)
	}
}
