package nfqdelay

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// nfnetlink_queue message types and attributes (linux/netfilter/nfnetlink_queue.h).
const (
	msgPacket  = 0 // NFQNL_MSG_PACKET
	msgVerdict = 1 // NFQNL_MSG_VERDICT
	msgConfig  = 2 // NFQNL_MSG_CONFIG

	attrCfgCmd     = 1 // NFQA_CFG_CMD
	attrCfgParams  = 2 // NFQA_CFG_PARAMS
	attrPacketHdr  = 1 // NFQA_PACKET_HDR
	attrVerdictHdr = 2 // NFQA_VERDICT_HDR

	cmdBind  = 1 // NFQNL_CFG_CMD_BIND
	copyMeta = 1 // NFQNL_COPY_META: the packet id is all we need

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

// copyMetaMessage asks for metadata only, no packet bytes.
func copyMetaMessage(queue uint16) []byte {
	params := []byte{0, 0, 0, 0, copyMeta} // copy_range (be32), copy_mode
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

// parseMessages walks a buffer of netlink messages and returns the ids of
// queued packets; an NLMSG_ERROR with a nonzero code is returned as error.
func parseMessages(b []byte) ([]uint32, error) {
	var ids []uint32
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
			if id, ok := packetID(body); ok {
				ids = append(ids, id)
			}
		}
		b = b[min((n+3)&^3, len(b)):]
	}
	return ids, nil
}

// packetID finds NFQA_PACKET_HDR in a packet message and returns its id.
func packetID(body []byte) (uint32, bool) {
	if len(body) < nfgenmsgLen {
		return 0, false
	}
	for a := body[nfgenmsgLen:]; len(a) >= 4; {
		n := int(binary.NativeEndian.Uint16(a[0:2]))
		typ := binary.NativeEndian.Uint16(a[2:4]) & nlaTypeMask
		if n < 4 || n > len(a) {
			return 0, false
		}
		if typ == attrPacketHdr && n >= 8 {
			return binary.BigEndian.Uint32(a[4:8]), true
		}
		a = a[min((n+3)&^3, len(a)):]
	}
	return 0, false
}
