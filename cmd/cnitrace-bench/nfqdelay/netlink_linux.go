package nfqdelay

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// nfnetlink_queue message types and attributes (linux/netfilter/nfnetlink_queue.h).
const (
	msgPacket  = 0 // NFQNL_MSG_PACKET
	msgVerdict = 1 // NFQNL_MSG_VERDICT
	msgConfig  = 2 // NFQNL_MSG_CONFIG

	attrCfgCmd     = 1  // NFQA_CFG_CMD
	attrCfgParams  = 2  // NFQA_CFG_PARAMS
	attrPacketHdr  = 1  // NFQA_PACKET_HDR
	attrVerdictHdr = 2  // NFQA_VERDICT_HDR
	attrTimestamp  = 4  // NFQA_TIMESTAMP: the skb's stamp, s and us (be64 each), when it has one
	attrPayload    = 10 // NFQA_PAYLOAD

	cmdBind    = 1 // NFQNL_CFG_CMD_BIND
	copyPacket = 2 // NFQNL_COPY_PACKET: the id and the packet's first copyRange bytes

	// copyRange is how much of each packet is copied to user space: the
	// IPv4 header (with options), the ICMP header and the probe token.
	copyRange = 60 + 8 + 24

	verdictDrop   = 0 // NF_DROP
	verdictAccept = 1 // NF_ACCEPT

	nlaTypeMask   = 0x3fff // NLA_TYPE_MASK
	nfgenmsgLen   = 4
	nlmsgHdrLen   = unix.SizeofNlMsghdr
	maxPacketMsgs = 64 << 10
)

// message builds one nfnetlink_queue request: nlmsghdr, nfgenmsg, attributes.
func message(typ uint16, flags uint16, queue uint16, attrs ...[]byte) []byte {
	b := make([]byte, nlmsgHdrLen+nfgenmsgLen)
	binary.NativeEndian.PutUint16(b[4:6], unix.NFNL_SUBSYS_QUEUE<<8|typ)
	binary.NativeEndian.PutUint16(b[6:8], unix.NLM_F_REQUEST|flags)
	b[16] = unix.AF_UNSPEC
	b[17] = unix.NFNETLINK_V0
	binary.BigEndian.PutUint16(b[18:20], queue)
	for _, a := range attrs {
		b = append(b, a...)
	}
	binary.NativeEndian.PutUint32(b[0:4], uint32(len(b)))
	return b
}

// attr encodes one netlink attribute, padded to 4 bytes.
func attr(typ uint16, data []byte) []byte {
	n := 4 + len(data)
	b := make([]byte, (n+3)&^3)
	binary.NativeEndian.PutUint16(b[0:2], uint16(n))
	binary.NativeEndian.PutUint16(b[2:4], typ)
	copy(b[4:], data)
	return b
}

// bindMessage binds the socket to queue for IPv4.
func bindMessage(queue uint16) []byte {
	cmd := []byte{cmdBind, 0, 0, unix.AF_INET}
	return message(msgConfig, unix.NLM_F_ACK, queue, attr(attrCfgCmd, cmd))
}

// copyPacketMessage asks for the packet id and the first copyRange bytes
// of the packet, enough to find a probe's token.
func copyPacketMessage(queue uint16) []byte {
	params := []byte{0, 0, 0, copyRange, copyPacket} // copy_range (be32), copy_mode
	return message(msgConfig, unix.NLM_F_ACK, queue, attr(attrCfgParams, params))
}

// verdictMessage gives packet id its verdict.
func verdictMessage(queue uint16, id uint32, verdict uint32) []byte {
	v := make([]byte, 8)
	binary.BigEndian.PutUint32(v[0:4], verdict)
	binary.BigEndian.PutUint32(v[4:8], id)
	return message(msgVerdict, 0, queue, attr(attrVerdictHdr, v))
}

// errShort is returned for a netlink message cut short.
var errShort = errors.New("truncated netlink message")

// queued is one packet the kernel queued: its id and the start of the
// packet (nil when the message had none), which aliases the read buffer.
type queued struct {
	id      uint32
	payload []byte
	stamp   time.Time // the skb's own stamp, to the us; zero when it had none
}

// parseMessages walks a buffer of netlink messages and returns the queued
// packets; an NLMSG_ERROR with a nonzero code is returned as error.
func parseMessages(b []byte) ([]queued, error) {
	var ids []queued
	for len(b) >= nlmsgHdrLen {
		n := int(binary.NativeEndian.Uint32(b[0:4]))
		typ := binary.NativeEndian.Uint16(b[4:6])
		if n < nlmsgHdrLen || n > len(b) {
			return ids, errShort
		}
		body := b[nlmsgHdrLen:n]
		switch {
		case typ == unix.NLMSG_ERROR:
			if len(body) < 4 {
				return ids, errShort
			}
			if code := int32(binary.NativeEndian.Uint32(body[0:4])); code != 0 {
				return ids, fmt.Errorf("netlink: %w", unix.Errno(-code))
			}
		case typ == unix.NFNL_SUBSYS_QUEUE<<8|msgPacket:
			if q, ok := packetOf(body); ok {
				ids = append(ids, q)
			}
		}
		b = b[min((n+3)&^3, len(b)):]
	}
	return ids, nil
}

// packetOf finds NFQA_PACKET_HDR in a packet message, and NFQA_PAYLOAD
// if there is one, and returns the packet's id and payload.
func packetOf(body []byte) (q queued, ok bool) {
	if len(body) < nfgenmsgLen {
		return q, false
	}
	for a := body[nfgenmsgLen:]; len(a) >= 4; {
		n := int(binary.NativeEndian.Uint16(a[0:2]))
		typ := binary.NativeEndian.Uint16(a[2:4]) & nlaTypeMask
		if n < 4 || n > len(a) {
			break
		}
		switch {
		case typ == attrPacketHdr && n >= 8:
			q.id, ok = binary.BigEndian.Uint32(a[4:8]), true
		case typ == attrPayload:
			q.payload = a[4:n]
		case typ == attrTimestamp && n >= 20:
			sec, usec := binary.BigEndian.Uint64(a[4:12]), binary.BigEndian.Uint64(a[12:20])
			q.stamp = time.Unix(int64(sec), int64(usec)*1000)
		}
		a = a[min((n+3)&^3, len(a)):]
	}
	return q, ok
}
