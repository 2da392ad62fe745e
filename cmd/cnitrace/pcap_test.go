package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/capture"
	"github.com/cnitrace/cnitrace/probe"
	"github.com/cnitrace/cnitrace/topology"
)

// recorderPoints are two capture points as the capture arms them.
func recorderPoints() []capture.Interface {
	return []capture.Interface{
		{Point: topology.Point{ID: "p0", Interface: "eth0", Ifindex: 2, NetNS: "net:[4026532301]", Kind: topology.KindPod, RequestDir: topology.TX}},
		{Point: topology.Point{ID: "p1", Interface: "veth1", Ifindex: 5, NetNS: "net:[4026531840]", Kind: topology.KindVeth, RequestDir: topology.RX}},
	}
}

// echoFrame is Ethernet[IPv4[ICMP echo (request or reply)[probe token]]],
// checksums left zero as on captured TX packets.
func echoFrame(reply bool, seq uint32) []byte {
	data := probe.Payload{RunID: 0x00c0ffee00c0ffee, Seq: seq, SentAt: time.Unix(1700000000, 0)}.Marshal(56)
	f := make([]byte, 14+20+8, 14+20+8+len(data))
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:]
	ip[0], ip[8], ip[9] = 0x45, 64, 1
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(data)))
	copy(ip[12:], []byte{10, 244, 1, 2})
	copy(ip[16:], []byte{10, 244, 2, 2})
	if reply {
		copy(ip[12:], []byte{10, 244, 2, 2})
		copy(ip[16:], []byte{10, 244, 1, 2})
	} else {
		ip[20] = 8
	}
	return append(f, data...)
}

// recorderPackets are two probes at both points, decoded as the capture
// does.
func recorderPackets(t *testing.T) []capture.Observation {
	t.Helper()
	at := time.Unix(1700000000, 0)
	var obs []capture.Observation
	for seq := range uint32(2) {
		for i, s := range []struct {
			point string
			dir   topology.Dir
			reply bool
		}{{"p0", topology.TX, false}, {"p1", topology.RX, false}, {"p1", topology.TX, true}, {"p0", topology.RX, true}} {
			m := capture.Meta{Point: s.point, At: at.Add(time.Duration(seq)*time.Millisecond + time.Duration(i)*time.Microsecond), Stamp: capture.StampCopy, Dir: s.dir}
			frame := echoFrame(s.reply, seq)
			o, err := capture.NewDecoderFor(capture.LinkEthernet, nil).Decode(frame, m)
			if err != nil {
				t.Fatal(err)
			}
			o.Frame = frame
			obs = append(obs, o)
		}
	}
	return obs
}

// record runs p through a capture's life: armed, packets, drained.
func record(t *testing.T, p *pcapRecorder) {
	t.Helper()
	if err := p.start(recorderPoints()); err != nil {
		t.Fatal(err)
	}
	for _, o := range recorderPackets(t) {
		p.add(o)
	}
	var stderr bytes.Buffer
	if err := p.finish([]capture.PointStats{{Point: "p0", Packets: 4}, {Point: "p1", Packets: 4}}, &stderr); err != nil {
		t.Fatal(err)
	}
	if stderr.Len() > 0 {
		t.Errorf("finish warned: %s", stderr.String())
	}
}

// TestPcapRecorder: with --pcap and a bundle the recorder writes the file
// and hands the bundle the same bytes; with a bundle alone it writes only
// its unnamed temporary file. Nothing is left in the temporary directory.
func TestPcapRecorder(t *testing.T) {
	for _, withFile := range []bool{true, false} {
		t.Run(map[bool]string{true: "--pcap and --bundle", false: "--bundle only"}[withFile], func(t *testing.T) {
			tmp, dir := t.TempDir(), t.TempDir()
			t.Setenv("TMPDIR", tmp)
			path := ""
			if withFile {
				path = filepath.Join(dir, "hops.pcapng")
			}
			p, err := openPcap(path, true, os.Stdout)
			if err != nil {
				t.Fatal(err)
			}
			defer p.abort()
			if _, err := p.writeTo(&bytes.Buffer{}); err == nil {
				t.Error("writeTo before finish: got no error")
			}
			record(t, p)
			var bundled bytes.Buffer
			n, err := p.writeTo(&bundled)
			if err != nil || n != p.size() || n == 0 {
				t.Fatalf("writeTo: %d bytes, %v; size says %d", n, err, p.size())
			}
			obs, err := capture.ReadPcapNG(bytes.NewReader(bundled.Bytes()))
			if err != nil || len(obs) != 8 {
				t.Fatalf("the bundle's pcapng: %d packets, %v; want 8", len(obs), err)
			}
			if err := p.commit(); err != nil {
				t.Fatal(err)
			}
			if withFile {
				b, err := os.ReadFile(path)
				if err != nil || !bytes.Equal(b, bundled.Bytes()) {
					t.Errorf("--pcap holds %d bytes (%v), the bundle got %d: want the same", len(b), err, bundled.Len())
				}
			}
			if got := dirNames(t, tmp); len(got) != 0 {
				t.Errorf("the temporary directory holds %v", got)
			}
		})
	}
}

// TestPcapRecorderAbort: aborting a recorder that streams stops its
// writer and leaves no file; a commit without finish is an error and
// leaves none either.
func TestPcapRecorderAbort(t *testing.T) {
	dir := t.TempDir()
	goroutines := runtime.NumGoroutine()
	p, err := openPcap(filepath.Join(dir, "hops.pcapng"), false, os.Stdout)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.start(recorderPoints()); err != nil {
		t.Fatal(err)
	}
	p.add(recorderPackets(t)[0])
	p.abort()
	p.abort() // twice is fine
	if err := p.commit(); err != nil {
		t.Errorf("commit after abort: %v, want nothing done", err)
	}
	deadline := time.Now().Add(time.Second)
	for runtime.NumGoroutine() > goroutines && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := runtime.NumGoroutine(); got > goroutines {
		t.Errorf("%d goroutines after abort, %d before", got, goroutines)
	}

	q, err := openPcap(filepath.Join(dir, "hops.pcapng"), false, os.Stdout)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.commit(); err == nil || !strings.Contains(err.Error(), "not finished") {
		t.Errorf("commit before the capture: got %v, want not finished", err)
	}
	if got := dirNames(t, dir); len(got) != 0 {
		t.Errorf("the directory holds %v", got)
	}
	if p, err := openPcap("", false, os.Stdout); p != nil || err != nil {
		t.Errorf("no --pcap, no bundle: got %v, %v; want nil, nil", p, err)
	}
}
