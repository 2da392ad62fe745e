package capture

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"

	"github.com/cnitrace/cnitrace/topology"
)

// recordedVXLAN is a real capture of 5 probes across a VXLAN (port 8472)
// between two network namespaces, taken at A's VXLAN device (p0) and at its
// underlay veth (p1) by TestPrivilegedCaptureVXLAN -record.
const recordedVXLAN = "../testdata/vxlan-8472.pcapng"

// probeCount is how many probes the recording (and the test that makes it)
// sends.
const probeCount = 5

// TestDecodeRecordedVXLAN8472 reads the recording back: the underlay point
// must show VXLAN on 8472 with the underlay addresses outside and the
// overlay addresses and the probe magic inside.
func TestDecodeRecordedVXLAN8472(t *testing.T) {
	f, err := os.ReadFile(recordedVXLAN)
	if err != nil {
		t.Fatal(err)
	}
	obs, err := ReadPcapNG(bytes.NewReader(f))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(obs), 4*probeCount; got != want {
		t.Fatalf("got %d observations, want %d", got, want)
	}
	under := map[string]string{"10.99.0.1": "10.99.0.2", "10.99.0.2": "10.99.0.1"}
	overlay := map[string]string{"10.98.0.1": "10.98.0.2", "10.98.0.2": "10.98.0.1"}
	var tunnelled int
	for i, o := range obs {
		if o.Point == "p1" {
			tunnelled++
			if o.Tunnel != TunnelVXLAN || under[o.OuterSrc.String()] != o.OuterDst.String() {
				t.Errorf("observation %d at p1: got tunnel %q outer %s > %s, want vxlan across 10.99.0.0/30", i, o.Tunnel, o.OuterSrc, o.OuterDst)
			}
			if udpDst := binary.BigEndian.Uint16(o.Frame[14+20+2:]); udpDst != PortVXLANLinux {
				t.Errorf("observation %d at p1: UDP port %d, want %d", i, udpDst, PortVXLANLinux)
			}
		} else if o.Tunnel != "" || o.OuterSrc.IsValid() {
			t.Errorf("observation %d at %s: got tunnel %q outer %s, want plain", i, o.Point, o.Tunnel, o.OuterSrc)
		}
		if overlay[o.Src.String()] != o.Dst.String() {
			t.Errorf("observation %d: got %s > %s, want across 10.98.0.0/24", i, o.Src, o.Dst)
		}
		if len(o.Payload) < 4 || binary.BigEndian.Uint32(o.Payload) != testMagic {
			t.Errorf("observation %d: payload does not open with the magic: % x", i, o.Payload[:min(8, len(o.Payload))])
		}
		wantDir := topology.TX
		if o.IsReply() {
			wantDir = topology.RX
		}
		if o.Dir != wantDir || (o.Stamp != StampSKB && o.Stamp != StampCopy) {
			t.Errorf("observation %d: got %s stamp=%q, want %s with a stamp source", i, o.Dir, o.Stamp, wantDir)
		}
	}
	if tunnelled != 2*probeCount {
		t.Errorf("got %d observations at p1, want %d", tunnelled, 2*probeCount)
	}
}
