package lab

import (
	"encoding/binary"
	"testing"
)

// vxlanFrame is what the wire carries for an echo between the pods:
// Ethernet, IPv4, UDP to port, VXLAN, then the inner Ethernet frame.
func vxlanFrame(inner []byte) []byte {
	f := make([]byte, etherLen+20+udpLen+vxlanLen)
	binary.BigEndian.PutUint16(f[12:14], etherTypeIPv4)
	f[etherLen], f[etherLen+9] = 0x45, protoUDP
	binary.BigEndian.PutUint16(f[etherLen+22:], 8472)
	f[etherLen+20+udpLen] = 0x08
	return append(f, inner...)
}

// echoFrame is an Ethernet frame of an ICMP (v4) or ICMPv6 echo of type
// typ carrying data.
func echoFrame(v6 bool, typ byte, data []byte) []byte {
	if v6 {
		f := make([]byte, etherLen+ipv6Len+icmpLen)
		binary.BigEndian.PutUint16(f[12:14], etherTypeIPv6)
		f[etherLen], f[etherLen+6] = 0x60, protoICMPv6
		f[etherLen+ipv6Len] = typ
		return append(f, data...)
	}
	f := make([]byte, etherLen+20+icmpLen)
	binary.BigEndian.PutUint16(f[12:14], etherTypeIPv4)
	f[etherLen], f[etherLen+9] = 0x45, protoICMP
	f[etherLen+20] = typ
	return append(f, data...)
}

// token is a probe payload's first bytes: magic, run id, sequence, time.
func token(runID uint64, seq uint32) []byte {
	b := make([]byte, 40)
	binary.BigEndian.PutUint32(b[0:], probeMagic)
	binary.BigEndian.PutUint64(b[4:], runID)
	binary.BigEndian.PutUint32(b[12:], seq)
	return b
}

func TestProbeToken(t *testing.T) {
	tok := token(0xdeadbeef01020304, 77)
	for _, c := range []struct {
		name         string
		f            []byte
		probe, reply bool
	}{
		{"vxlan request", vxlanFrame(echoFrame(false, 8, tok)), true, false},
		{"vxlan reply", vxlanFrame(echoFrame(false, 0, tok)), true, true},
		{"vxlan v6 request", vxlanFrame(echoFrame(true, 128, tok)), true, false},
		{"vxlan v6 reply", vxlanFrame(echoFrame(true, 129, tok)), true, true},
		{"plain request", echoFrame(false, 8, tok), true, false},
		{"ping's echo", vxlanFrame(echoFrame(false, 8, make([]byte, 40))), false, false},
		{"not an echo", vxlanFrame(echoFrame(false, 3, tok)), false, false},
		{"cut short", vxlanFrame(echoFrame(false, 8, tok))[:60], false, false},
		{"empty", nil, false, false},
	} {
		runID, seq, reply, ok := probeToken(c.f)
		if ok != c.probe || reply != c.reply || (ok && (runID != 0xdeadbeef01020304 || seq != 77)) {
			t.Errorf("%s: got %x/%d reply %v probe %v; want probe %v reply %v", c.name, runID, seq, reply, ok, c.probe, c.reply)
		}
	}
}

func FuzzProbeToken(f *testing.F) {
	f.Add(vxlanFrame(echoFrame(false, 8, token(1, 2))))
	f.Add(vxlanFrame(echoFrame(true, 129, token(1, 2))))
	f.Fuzz(func(t *testing.T, b []byte) {
		probeToken(b) // must not panic on any input
	})
}
