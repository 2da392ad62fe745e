package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/topology"
)

// ringPacket describes one packet of a synthetic ring block.
type ringPacket struct {
	status  uint32
	pkttype uint8
	frame   []byte
	at      time.Time
}

// ringBlock lays out packets as the kernel does in a TPACKET_V3 block: a
// 48-byte block descriptor, then per packet a tpacket3_hdr, a sockaddr_ll
// at 48 and the frame at tp_mac, each packet 16-byte aligned.
func ringBlock(pkts []ringPacket) []byte {
	ne := binary.NativeEndian
	blk := make([]byte, 4096)
	ne.PutUint32(blk[blkStatus:], unix.TP_STATUS_USER)
	ne.PutUint32(blk[blkNumPkts:], uint32(len(pkts)))
	ne.PutUint32(blk[blkFirstPkt:], 48)
	off := 48
	for i, p := range pkts {
		h := blk[off:]
		const mac = 82 // as for Ethernet: 16-aligned network header at 96
		next := (mac + len(p.frame) + 15) &^ 15
		if i == len(pkts)-1 {
			next = 0
		}
		ne.PutUint32(h[pktNext:], uint32(next))
		ne.PutUint32(h[pktSec:], uint32(p.at.Unix()))
		ne.PutUint32(h[pktNsec:], uint32(p.at.Nanosecond()))
		ne.PutUint32(h[pktSnaplen:], uint32(len(p.frame)))
		ne.PutUint32(h[pktStatus:], p.status)
		ne.PutUint16(h[pktMac:], mac)
		h[pktSockaddr+sllPkttype] = p.pkttype
		copy(h[mac:], p.frame)
		off += next
	}
	return blk
}

func TestWalkBlock(t *testing.T) {
	at := time.Unix(1700000000, 999999999)
	want := []ringPacket{
		{unix.TP_STATUS_USER | unix.TP_STATUS_TS_SOFTWARE | unix.TP_STATUS_CSUMNOTREADY, unix.PACKET_OUTGOING, plainRequest(), at},
		{unix.TP_STATUS_USER, unix.PACKET_HOST, vxlanRequest(8472, 5, 5), at.Add(time.Microsecond)},
		{unix.TP_STATUS_USER | unix.TP_STATUS_TS_SOFTWARE, unix.PACKET_OTHERHOST, plainRequest()[:20], at.Add(time.Second)},
	}
	blk := ringBlock(want)
	var got []packet
	n, err := walkBlock(blk, func(p packet) { got = append(got, p) })
	if err != nil {
		t.Fatal(err)
	}
	if n != len(want) || len(got) != len(want) {
		t.Fatalf("got %d packets (%d counted), want %d", len(got), n, len(want))
	}
	wantMeta := []struct {
		stamp StampSource
		dir   topology.Dir
	}{{StampSKB, topology.TX}, {StampCopy, topology.RX}, {StampSKB, topology.RX}}
	for i, p := range got {
		if !bytes.Equal(p.frame, want[i].frame) || !p.at.Equal(want[i].at) {
			t.Errorf("packet %d: got %d bytes at %v, want %d at %v", i, len(p.frame), p.at, len(want[i].frame), want[i].at)
		}
		if p.stamp != wantMeta[i].stamp || p.dir != wantMeta[i].dir {
			t.Errorf("packet %d: got %s %s, want %s %s", i, p.stamp, p.dir, wantMeta[i].stamp, wantMeta[i].dir)
		}
	}
	if &got[0].frame[0] != &blk[48+82] { // read in place, where ringBlock put it (first packet at 48, its frame 82 on): no copy per packet
		t.Errorf("frame is not read in place in the block")
	}
}

// TestAddKeepsNoRingMemory: what a handle keeps of a packet, the
// observation's Payload, Token and (for the pcapng) Frame, survives the
// block going back to the kernel (cleared here).
func TestAddKeepsNoRingMemory(t *testing.T) {
	frame := plainRequest()
	ring := append([]byte(nil), frame...) // stands in for the frame in a block
	h := &handle{point: topology.Point{ID: "p0"}, dec: NewDecoderFor(LinkEthernet, nil), keep: true}
	h.add(packet{frame: ring, at: time.Unix(1, 0)})
	clear(ring)
	if len(h.obs) != 1 {
		t.Fatalf("got %d observations (%d undecodable), want 1", len(h.obs), h.undecodable)
	}
	o := h.obs[0]
	if !bytes.Equal(o.Frame, frame) || len(o.Payload) == 0 || !bytes.Equal(o.Payload, frame[len(frame)-len(o.Payload):]) || len(o.Token) != TokenLen {
		t.Errorf("observation lost its frame, payload or token with the block: frame %x, payload %x, token %x", o.Frame, o.Payload, o.Token)
	}
}

func TestWalkBlockCorrupt(t *testing.T) {
	ne := binary.NativeEndian
	pkts := []ringPacket{{unix.TP_STATUS_USER, unix.PACKET_HOST, plainRequest(), time.Unix(1, 0)}}
	tests := []struct {
		name    string
		corrupt func(blk []byte)
		wantErr string
	}{
		{"first packet out of bounds", func(b []byte) { ne.PutUint32(b[blkFirstPkt:], 4090) }, "out of bounds"},
		{"frame out of bounds", func(b []byte) { ne.PutUint32(b[48+pktSnaplen:], 5000) }, "out of bounds"},
		{"more packets than links", func(b []byte) { ne.PutUint32(b[blkNumPkts:], 2) }, "no successor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			blk := ringBlock(pkts)
			tt.corrupt(blk)
			_, err := walkBlock(blk, func(packet) {})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestOpenRingNeedsCapNetRaw runs only without CAP_NET_RAW (not as root):
// the error must say which capability is missing.
func TestOpenRingNeedsCapNetRaw(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("skipping: root has CAP_NET_RAW; this checks the hint without it")
	}
	_, err := openRing("lo", 0, nil, geometryFor(Rate{}, 4096))
	var capErr *topology.CapabilityError
	if !errors.As(err, &capErr) || capErr.Capability != "CAP_NET_RAW" {
		t.Errorf("got error %v, want a *topology.CapabilityError naming CAP_NET_RAW", err)
	}
}

// BenchmarkWalkBlockAdd is the reader's work per packet: a block walked,
// each frame decoded where it lies (an ICMP echo and one in VXLAN) and
// handed to a sink.
func BenchmarkWalkBlockAdd(b *testing.B) {
	at := time.Unix(1700000000, 0)
	blk := ringBlock([]ringPacket{
		{unix.TP_STATUS_USER, unix.PACKET_OUTGOING, plainRequest(), at},
		{unix.TP_STATUS_USER, unix.PACKET_HOST, vxlanRequest(8472, 5, 5), at},
	})
	var n int
	h := &handle{point: topology.Point{ID: "p0"}, dec: NewDecoderFor(LinkEthernet, []uint16{8472}), sink: func(Observation) { n++ }}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := walkBlock(blk, h.add); err != nil {
			b.Fatal(err)
		}
	}
	if h.undecodable != 0 {
		b.Fatalf("%d undecodable", h.undecodable)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/packet")
}
