package capture

import (
	"bytes"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestPcapNGTshark has tshark (Debian package tshark) read what
// PcapNGWriter encodes itself, packet and statistics blocks: the packets
// with their interface, name, description, comment and direction, and
// each statistics block's counters as Wireshark's pcapng file dissector
// decodes them.
func TestPcapNGTshark(t *testing.T) {
	tshark := lookTshark(t)
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

	out := runTshark(t, tshark, "-r", file, "-T", "fields", "-E", "separator=|",
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

	isbs := tsharkStatistics(t, tshark, file)
	wantISB := []tsharkISB{
		{"0", "5", "3", "2", "cnitrace point=p0 packets=5 drops=3 freezes=0 undecodable=0 written=2 left_out=1"},
		{"1", "2", "0", "2", "cnitrace point=p1 packets=2 drops=0 freezes=0 undecodable=0 written=2 left_out=0"},
	}
	if !slices.Equal(isbs, wantISB) {
		t.Errorf("tshark read the statistics blocks\n%+v\nwant\n%+v", isbs, wantISB)
	}
}

// lookTshark finds tshark, or skips (fails when CI=true: CI has it).
func lookTshark(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("tshark")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("tshark is needed (apt-get install tshark): %v", err)
		}
		t.Skipf("skipping, no tshark (apt-get install tshark): %v", err)
	}
	return path
}

func runTshark(t *testing.T, tshark string, args ...string) string {
	t.Helper()
	cmd := exec.Command(tshark, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// tsharkISB is one interface statistics block as tshark decodes it.
type tsharkISB struct{ Interface, Received, Dropped, Delivered, Comment string }

// tsharkStatistics reads the statistics blocks of file with Wireshark's
// pcapng file-format dissector: opened as "MIME Files Format", the whole
// file is one frame whose tree holds every block (tshark has no -z
// statistic for them; Wireshark shows them in Capture File Properties).
func tsharkStatistics(t *testing.T, tshark, file string) []tsharkISB {
	t.Helper()
	out := runTshark(t, tshark, "-X", "read_format:MIME Files Format", "-r", file, "-T", "pdml")
	var doc struct {
		Packets []struct {
			Protos []pdmlField `xml:"proto"`
		} `xml:"packet"`
	}
	if err := xml.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("tshark's PDML: %v", err)
	}
	var isbs []tsharkISB
	var walk func(f pdmlField)
	walk = func(f pdmlField) {
		if f.Name == "pcapng.block" {
			if f.find("pcapng.block.type") == "0x00000005" {
				isbs = append(isbs, tsharkISB{
					f.find("pcapng.interface_id"),
					f.find("pcapng.options.option.data.interface.received"),
					f.find("pcapng.options.option.data.interface.dropped"),
					f.find("pcapng.options.option.data.interface.delivered_to_user"),
					f.find("pcapng.options.option.data.comment"),
				})
			}
			return
		}
		for _, c := range f.Fields {
			walk(c)
		}
	}
	for _, p := range doc.Packets {
		for _, proto := range p.Protos {
			walk(proto)
		}
	}
	return isbs
}

type pdmlField struct {
	Name   string      `xml:"name,attr"`
	Show   string      `xml:"show,attr"`
	Fields []pdmlField `xml:"field"`
}

// find returns the show value of the first field named name under f.
func (f pdmlField) find(name string) string {
	for _, c := range f.Fields {
		if c.Name == name {
			return c.Show
		}
		if v := c.find(name); v != "" {
			return v
		}
	}
	return ""
}
