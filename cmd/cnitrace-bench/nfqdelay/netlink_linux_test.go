package nfqdelay

import (
	"encoding/binary"
	"errors"
	"testing"

	"golang.org/x/sys/unix"
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
	if err != nil || len(ids) != 2 || ids[0] != 41 || ids[1] != 42 {
		t.Errorf("two packets: got %v, %v; want [41 42]", ids, err)
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
	f.Fuzz(func(t *testing.T, b []byte) {
		parseMessages(b) // must not panic on any input
	})
}
