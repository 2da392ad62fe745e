package probe

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/bpf"
)

var (
	tcpSrc4    = netip.MustParseAddr("10.244.1.5")
	tcpTarget4 = netip.MustParseAddr("10.96.0.10")
	tcpTarget6 = netip.MustParseAddr("fd00::a")
	testBlock  = portBlock{base: 40000, size: 128}
)

func testTCPCodec(target netip.Addr) *tcpCodec {
	c := newTCPCodec(Config{Target: target, Proto: TCP, Port: 443, RunID: 0x1122334455667788}, testBlock, nil)
	c.src = tcpSrc4
	return c
}

// TestTCPRequestLayout checks probe 5's SYN byte by byte against
// docs/probe.md's table, and its checksum.
func TestTCPRequestLayout(t *testing.T) {
	c := testTCPCodec(tcpTarget4)
	b, err := c.request(5, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	sport := c.sport(5)
	// TCP: sport 01bb | 636e000a | 00000000 | b0 02 faf0 | csum 0000 |
	// fe 12 636e 7431 1122334455667788 00000005 | 02 04 05b4 | 01 01
	want := []byte{
		byte(sport >> 8), byte(sport), 0x01, 0xbb, 0x63, 0x6e, 0x00, 0x0a, 0, 0, 0, 0, 0xb0, 0x02, 0xfa, 0xf0, 0, 0, 0, 0,
		0xfe, 0x12, 0x63, 0x6e, 0x74, 0x31, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0, 0, 0, 5,
		0x02, 0x04, 0x05, 0xb4, 0x01, 0x01,
	}
	got := append([]byte(nil), b...)
	got[16], got[17] = 0, 0
	if string(got) != string(want) {
		t.Errorf("SYN\n got %x\nwant %x", got, want)
	}
	if m := binary.BigEndian.Uint32(b[tcpTokenOff:]); m != Magic {
		t.Errorf("magic at TCP offset %d: %#x, want %#x", tcpTokenOff, m, Magic)
	}
	if sum := tcpChecksum(tcpSrc4, tcpTarget4, b); sum != 0 {
		t.Errorf("checksum does not verify: %#04x over the segment, want 0", sum)
	}
	if !testBlock.contains(sport) {
		t.Errorf("source port %d outside the block %+v", sport, testBlock)
	}
	c6 := testTCPCodec(tcpTarget6)
	b6, _ := c6.request(5, time.Time{})
	if b6[16] != 0 || b6[17] != 0 || binary.BigEndian.Uint16(b6[40:]) != 1440 {
		t.Errorf("IPv6 SYN: checksum %x (want 0: the kernel fills it), MSS %d (want 1440)", b6[16:18], binary.BigEndian.Uint16(b6[40:]))
	}
}

func TestTCPISN(t *testing.T) {
	for _, seq := range []uint32{0, 1, 5, 32767, 32768, 65541, 1<<32 - 1} {
		isn := tcpISN(seq)
		if isn>>16 != tcpISNMagic || isn&1 != 0 {
			t.Errorf("ISN of %d: %#x, want 0x636e.... and even", seq, isn)
		}
		if low, ok := tcpLow(isn + 1); !ok || low != seq&lowMask {
			t.Errorf("tcpLow(ISN(%d)+1) = %d, %v; want %d", seq, low, ok, seq&lowMask)
		}
	}
	for _, ack := range []uint32{0, 0x636e0000, 0x636f0001, 0x636e0002} {
		if _, ok := tcpLow(ack); ok {
			t.Errorf("tcpLow(%#x) matched, want not a probe's", ack)
		}
	}
}

// tcpAnswer is the answer to syn (a request of c) with flags, as a raw
// socket reads it: IPv4 behind a 20-byte header from the target, IPv6 bare.
func tcpAnswer(c *tcpCodec, syn []byte, flags byte) []byte {
	seg := make([]byte, 20)
	copy(seg[0:2], syn[2:4])
	copy(seg[2:4], syn[0:2])
	binary.BigEndian.PutUint32(seg[8:], binary.BigEndian.Uint32(syn[4:])+1)
	seg[12], seg[13] = 5<<4, flags
	if c.v6 {
		return seg
	}
	// IP[TCP]: 45 00 <len> 0000 4000 40 06 0000 <target> <src>
	ip := []byte{0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0}
	ip = append(append(ip, c.target.Addr().AsSlice()...), tcpSrc4.AsSlice()...)
	return append(ip, seg...)
}

func TestTCPMatch(t *testing.T) {
	for _, target := range []netip.Addr{tcpTarget4, tcpTarget6} {
		c := testTCPCodec(target)
		syn, _ := c.request(40000, time.Time{})
		good := func() []byte { return tcpAnswer(c, syn, tcpSYN|tcpACK) }
		off := 0
		if !c.v6 {
			off = 20
		}
		for _, tc := range []struct {
			name string
			msg  []byte
			from netip.Addr
			want Reply
		}{
			{"syn-ack", good(), target, SynAck},
			{"rst-ack", tcpAnswer(c, syn, tcpRST|tcpACK), target, Reset},
			{"syn and rst", tcpAnswer(c, syn, tcpSYN|tcpRST|tcpACK), target, NoReply},
			{"ack only", tcpAnswer(c, syn, tcpACK), target, NoReply},
			{"rst without ack", tcpAnswer(c, syn, tcpRST), target, NoReply},
			{"other source port", func() []byte { b := good(); b[off+1]++; return b }(), target, NoReply},
			{"other destination port", func() []byte { b := good(); b[off+3]++; return b }(), target, NoReply},
			{"not our ISN", func() []byte { b := good(); b[off+8] = 0x11; return b }(), target, NoReply},
			{"other sender", good(), netip.MustParseAddr("fd00::b"), NoReply},
			{"short", good()[:off+19], target, NoReply},
			{"empty", nil, target, NoReply},
		} {
			r, ok := c.match(tc.msg, tc.from)
			if !c.v6 && tc.name == "other sender" {
				continue // IPv4 takes the sender from the IP header
			}
			if got := map[bool]Reply{true: r.kind}[ok]; got != tc.want {
				t.Errorf("%v %s: got %v, want %v", target, tc.name, got, tc.want)
			}
			if ok && (!r.low || r.seq != 40000&lowMask || r.from != target) {
				t.Errorf("%v %s: got %+v, want low sequence %d from %v", target, tc.name, r, 40000&lowMask, target)
			}
		}
	}
}

func TestTCPMatchErr(t *testing.T) {
	c := testTCPCodec(tcpTarget4)
	syn, _ := c.request(70000, time.Time{})
	router := netip.MustParseAddr("10.244.1.1")
	for _, tc := range []struct {
		name     string
		e        icmpErr
		ok, full bool
	}{
		{"whole SYN quoted", icmpErr{typ: 3, code: 3, from: tcpTarget4, dst: netip.AddrPortFrom(tcpTarget4, 0), data: syn}, true, true},
		{"8 bytes quoted", icmpErr{typ: 3, code: 13, from: router, data: syn[:8]}, true, false},
		{"time exceeded", icmpErr{typ: 11, data: syn}, false, false},
		{"ICMPv6 on IPv4", icmpErr{v6: true, typ: 1, data: syn}, false, false},
		{"other destination", icmpErr{typ: 3, dst: netip.AddrPortFrom(router, 0), data: syn}, false, false},
		{"other run", icmpErr{typ: 3, data: func() []byte { b := append([]byte(nil), syn...); b[30]++; return b }()}, false, false},
		{"7 bytes", icmpErr{typ: 3, data: syn[:7]}, false, false},
	} {
		r, ok := c.matchErr(tc.e)
		if ok != tc.ok {
			t.Errorf("%s: matched %v, want %v", tc.name, ok, tc.ok)
			continue
		}
		if !ok {
			continue
		}
		wantSeq := uint32(70000)
		if !tc.full {
			wantSeq &= lowMask
		}
		if r.kind != Unreachable || r.seq != wantSeq || r.low == tc.full || r.from != tc.e.from || r.code != tc.e.code {
			t.Errorf("%s: got %+v, want Unreachable seq %d (low %v) from %v code %d", tc.name, r, wantSeq, !tc.full, tc.e.from, tc.e.code)
		}
	}
}

func TestTCPPorts(t *testing.T) {
	base := Config{Target: tcpTarget4, Proto: TCP, Port: 80, Count: 200, Interval: 10 * time.Millisecond, Timeout: time.Second}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want int
	}{
		{"200 at 10ms, 1s", func(*Config) {}, 256},
		{"no count", func(c *Config) { c.Count = 0 }, 512},
		{"one probe", func(c *Config) { c.Count = 1 }, 1},
		{"10 probes", func(c *Config) { c.Count = 10 }, 128}, // still every one the timeout can hold
		{"1ms, 1s", func(c *Config) { c.Interval, c.Count = time.Millisecond, 0 }, 1024},
		{"100us, 100ms", func(c *Config) { c.Interval, c.Timeout, c.Count = MinInterval, 100*time.Millisecond, 0 }, 1024},
	} {
		c := base
		tc.mod(&c)
		got, err := tcpPorts(c)
		if err != nil || got != tc.want {
			t.Errorf("%s: got %d, %v; want %d", tc.name, got, err, tc.want)
		}
		if got&(got-1) != 0 {
			t.Errorf("%s: %d ports, want a power of two", tc.name, got)
		}
	}
	c := base
	c.Interval, c.Count = MinInterval, 0
	_, err := tcpPorts(c)
	if err == nil || !strings.Contains(err.Error(), "source port") {
		t.Errorf("100us, 1s: got %v, want too many ports", err)
	}
	if err := c.Validate(); err == nil {
		t.Error("Validate accepted a TCP run needing more than MaxTCPPorts ports")
	}
}

// TestTCPFilter runs the socket filter in x/net/bpf's VM: it passes the
// answers to the block's SYNs and drops other TCP.
func TestTCPFilter(t *testing.T) {
	for _, target := range []netip.Addr{tcpTarget4, tcpTarget6} {
		c := testTCPCodec(target)
		prog, err := tcpFilter(testBlock, c.v6)
		if err != nil {
			t.Fatal(err)
		}
		vm := filterVM(t, prog)
		syn, _ := c.request(9, time.Time{})
		off := map[bool]int{false: 20, true: 0}[c.v6]
		for _, tc := range []struct {
			name string
			msg  []byte
			pass bool
		}{
			{"syn-ack", tcpAnswer(c, syn, tcpSYN|tcpACK), true},
			{"rst-ack", tcpAnswer(c, syn, tcpRST|tcpACK), true},
			{"ack", tcpAnswer(c, syn, tcpACK), false},
			{"syn without ack", tcpAnswer(c, syn, tcpSYN), false},
			{"below the block", func() []byte {
				b := tcpAnswer(c, syn, tcpSYN|tcpACK)
				binary.BigEndian.PutUint16(b[off+2:], 39999)
				return b
			}(), false},
			{"above the block", func() []byte {
				b := tcpAnswer(c, syn, tcpSYN|tcpACK)
				binary.BigEndian.PutUint16(b[off+2:], 40128)
				return b
			}(), false},
			{"last port", func() []byte {
				b := tcpAnswer(c, syn, tcpSYN|tcpACK)
				binary.BigEndian.PutUint16(b[off+2:], 40127)
				return b
			}(), true},
			{"other ack", func() []byte { b := tcpAnswer(c, syn, tcpSYN|tcpACK); b[off+8] = 1; return b }(), false},
			{"short", tcpAnswer(c, syn, tcpSYN|tcpACK)[:off+10], false},
		} {
			n, err := vm.Run(tc.msg)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if (n > 0) != tc.pass {
				t.Errorf("%v %s: filter returned %d, want pass %v", target, tc.name, n, tc.pass)
			}
		}
	}
	if _, err := tcpFilter(portBlock{}, false); err == nil {
		t.Error("tcpFilter of an empty block: no error")
	}
}

// filterVM returns x/net/bpf's VM running the socket filter prog.
func filterVM(t *testing.T, prog []bpf.RawInstruction) *bpf.VM {
	t.Helper()
	ins := make([]bpf.Instruction, len(prog))
	for i, r := range prog {
		ins[i] = r.Disassemble()
	}
	vm, err := bpf.NewVM(ins)
	if err != nil {
		t.Fatal(err)
	}
	return vm
}

// TestCollectorResolvesLowSequences: a TCP answer names its probe's
// sequence modulo 32768; the collector takes the newest probe sent with
// those bits.
func TestCollectorResolvesLowSequences(t *testing.T) {
	c := &collector{res: &Result{}}
	for _, tc := range []struct {
		sent    int
		low     uint32
		want    uint32
		wantOK  bool
		comment string
	}{
		{0, 0, 0, false, "nothing sent"},
		{1, 0, 0, true, ""},
		{1, 1, 0, false, "not sent yet"},
		{40000, 5, 32773, true, "the second time round"},
		{40000, 7231, 39999, true, "the newest with these bits"},
		{40000, 7232, 7232, true, "the one sent before 40000 came round"},
		{70000, 4464, 70000 - 1 - (69999-4464)%32768, true, ""},
	} {
		c.res.Sent = tc.sent
		got, ok := c.resolve(tc.low)
		if ok != tc.wantOK || (ok && got != tc.want) {
			t.Errorf("sent %d, low %d: got %d, %v; want %d, %v %s", tc.sent, tc.low, got, ok, tc.want, tc.wantOK, tc.comment)
		}
		if ok && got&lowMask != tc.low {
			t.Errorf("sent %d, low %d: resolved to %d, other low bits", tc.sent, tc.low, got)
		}
	}
}

// FuzzTCPMatch: no input panics the TCP codec's parsers, and what they
// accept names a probe's low sequence.
func FuzzTCPMatch(f *testing.F) {
	c := testTCPCodec(tcpTarget4)
	syn, _ := c.request(3, time.Time{})
	f.Add(tcpAnswer(c, syn, tcpSYN|tcpACK))
	f.Add(syn)
	f.Add([]byte{0x4f, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, ok := c.match(b, tcpTarget4); ok && (r.seq > lowMask || !r.low) {
			t.Errorf("match: %+v", r)
		}
		if r, ok := c.matchErr(icmpErr{typ: 3, data: b}); ok && !r.low && r.seq&lowMask != (binary.BigEndian.Uint32(b[4:])&0xffff)>>1 {
			t.Errorf("matchErr: %+v", r)
		}
		c6 := testTCPCodec(tcpTarget6)
		c6.match(b, tcpTarget6)
	})
}
