package probe

import "testing"

func TestIPv4Payload(t *testing.T) {
	icmp := []byte{0, 0, 0xde, 0xad, 0, 1, 0, 2}
	hdr := func(ihl byte) []byte { b := make([]byte, int(ihl)*4); b[0] = 0x40 | ihl; return b }
	for _, tc := range []struct {
		name string
		in   []byte
		want []byte
	}{
		{"plain header", append(hdr(5), icmp...), icmp},
		{"with options", append(hdr(6), icmp...), icmp},
		{"no header", icmp, icmp},
		{"header only", hdr(5), []byte{}},
		{"ihl beyond data", append([]byte{0x46}, make([]byte, 19)...), append([]byte{0x46}, make([]byte, 19)...)},
		{"ihl too small", append([]byte{0x44}, make([]byte, 19)...), append([]byte{0x44}, make([]byte, 19)...)},
	} {
		if got := ipv4Payload(tc.in); string(got) != string(tc.want) {
			t.Errorf("%s: got % x, want % x", tc.name, got, tc.want)
		}
	}
}

// TestICMPMessage: raw IPv6 reads carry no IP header, so nothing is
// stripped, even from bytes that would pass for an IPv4 header.
func TestICMPMessage(t *testing.T) {
	v4like := append([]byte{0x45}, make([]byte, 27)...)
	if got := icmpMessage(protoICMPv6, v4like); len(got) != len(v4like) {
		t.Errorf("ICMPv6: got %d bytes, want all %d", len(got), len(v4like))
	}
	if got := icmpMessage(protoICMP, v4like); len(got) != 8 {
		t.Errorf("ICMPv4: got %d bytes, want the 8 after the header", len(got))
	}
}
