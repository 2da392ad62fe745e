package nfqdelay

import (
	"encoding/binary"
	"errors"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/probe"
)

// packetMessage builds what the kernel sends for a queued packet:
// nlmsghdr, nfgenmsg, NFQA_PACKET_HDR{id, hw_protocol, hook}.
func packetMessage(id uint32) []byte {
	hdr := make([]byte, 7)
	binary.BigEndian.PutUint32(hdr[0:4], id)
	binary.BigEndian.PutUint16(hdr[4:6], unix.ETH_P_IP)
	hdr[6] = 2 // NF_INET_FORWARD
	return message(msgPacket, 0, 7, attr(attrPacketHdr, hdr))
}

// packetWithPayload is packetMessage with an NFQA_PAYLOAD attribute.
func packetWithPayload(id uint32, payload []byte) []byte {
	hdr := make([]byte, 7)
	binary.BigEndian.PutUint32(hdr[0:4], id)
	binary.BigEndian.PutUint16(hdr[4:6], unix.ETH_P_IP)
	hdr[6] = 2
	return message(msgPacket, 0, 7, attr(attrPacketHdr, hdr), attr(attrPayload, payload))
}

// echoPacket is an IPv4 ICMP echo (type typ) carrying payload.
func echoPacket(typ byte, payload []byte) []byte {
	p := make([]byte, 28, 28+len(payload))
	p[0], p[9] = 0x45, 1
	p[20] = typ
	return append(p, payload...)
}

func TestPayloadToken(t *testing.T) {
	tok := probe.Payload{RunID: 0x1122334455667788, Seq: 9}.Marshal(56)
	msgs := append(packetWithPayload(5, echoPacket(8, tok)), packetWithPayload(6, echoPacket(0, tok))...)
	msgs = append(msgs, packetWithPayload(7, echoPacket(8, make([]byte, 56)))...) // ping's, no magic
	pkts, err := parseMessages(msgs)
	if err != nil || len(pkts) != 3 {
		t.Fatalf("got %v, %v; want 3 packets", pkts, err)
	}
	want := probe.Token{RunID: 0x1122334455667788, Seq: 9}
	for i, w := range []struct{ probe, reply bool }{{true, false}, {true, true}, {false, false}} {
		got, reply, ok := probeToken(pkts[i].payload)
		if ok != w.probe || reply != w.reply || (ok && got != want) {
			t.Errorf("packet %d: got %+v reply %v probe %v; want probe %v reply %v", pkts[i].id, got, reply, ok, w.probe, w.reply)
		}
	}
	for _, p := range [][]byte{nil, echoPacket(8, tok)[:30], append([]byte{0x46}, echoPacket(8, tok)[1:]...)} {
		if _, _, ok := probeToken(p); ok {
			t.Errorf("%x: a token in a short or misaligned packet", p)
		}
	}
}

func errorMessage(code int32) []byte {
	b := make([]byte, nlmsgHdrLen+4+nlmsgHdrLen)
	binary.NativeEndian.PutUint32(b[0:4], uint32(len(b)))
	binary.NativeEndian.PutUint16(b[4:6], unix.NLMSG_ERROR)
	binary.NativeEndian.PutUint32(b[16:20], uint32(code))
	return b
}

func TestParseMessages(t *testing.T) {
	two := append(packetMessage(41), packetMessage(42)...)
	ids, err := parseMessages(two)
	if err != nil || len(ids) != 2 || ids[0].id != 41 || ids[1].id != 42 || ids[0].payload != nil {
		t.Errorf("two packets: got %v, %v; want 41 and 42, no payload", ids, err)
	}
	if ids, err := parseMessages(errorMessage(0)); err != nil || len(ids) != 0 {
		t.Errorf("ack: got %v, %v; want nothing", ids, err)
	}
	if _, err := parseMessages(errorMessage(-int32(unix.EPERM))); !errors.Is(err, unix.EPERM) {
		t.Errorf("error message: got %v, want EPERM", err)
	}
	if _, err := parseMessages(packetMessage(1)[:10]); err != nil {
		t.Errorf("a partial header is ignored: got %v", err)
	}
	cut := packetMessage(1)
	binary.NativeEndian.PutUint32(cut[0:4], 999) // longer than the buffer
	if _, err := parseMessages(cut); !errors.Is(err, errShort) {
		t.Errorf("length past the buffer: got %v, want errShort", err)
	}
}

func TestVerdictMessage(t *testing.T) {
	m := verdictMessage(7, 0xabcd, verdictAccept)
	if got := binary.NativeEndian.Uint32(m[0:4]); int(got) != len(m) {
		t.Errorf("length field %d, message %d bytes", got, len(m))
	}
	if typ := binary.NativeEndian.Uint16(m[4:6]); typ != unix.NFNL_SUBSYS_QUEUE<<8|msgVerdict {
		t.Errorf("type %#x, want verdict", typ)
	}
	if q := binary.BigEndian.Uint16(m[18:20]); q != 7 {
		t.Errorf("queue %d, want 7", q)
	}
	// attribute: len, type, verdict (be32), id (be32)
	if v, id := binary.BigEndian.Uint32(m[24:28]), binary.BigEndian.Uint32(m[28:32]); v != verdictAccept || id != 0xabcd {
		t.Errorf("verdict %d id %#x, want accept for 0xabcd", v, id)
	}
}

func FuzzParseMessages(f *testing.F) {
	f.Add(packetMessage(5))
	f.Add(errorMessage(-1))
	f.Add([]byte{})
	f.Add(packetWithPayload(5, echoPacket(8, probe.Payload{}.Marshal(24))))
	f.Fuzz(func(t *testing.T, b []byte) {
		pkts, _ := parseMessages(b) // must not panic on any input
		for _, p := range pkts {
			probeToken(p.payload)
		}
	})
}
