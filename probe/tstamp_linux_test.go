package probe

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// cmsg lays out one control message as the kernel does: struct cmsghdr
// (native size_t length, level, type), data, padding to the word size.
func cmsg(level, typ int32, data []byte) []byte {
	b := make([]byte, unix.CmsgSpace(len(data)))
	if unix.SizeofPtr == 8 {
		binary.NativeEndian.PutUint64(b, uint64(unix.CmsgLen(len(data))))
	} else {
		binary.NativeEndian.PutUint32(b, uint32(unix.CmsgLen(len(data))))
	}
	binary.NativeEndian.PutUint32(b[unix.SizeofPtr:], uint32(level))
	binary.NativeEndian.PutUint32(b[unix.SizeofPtr+4:], uint32(typ))
	copy(b[cmsgHdrLen:], data)
	return b
}

// scmTimestamping is struct scm_timestamping with ts[0] = sw and ts[2] = hw
// (zero times are left zero).
func scmTimestamping(sw, hw time.Time) []byte {
	b := make([]byte, scmTSLen)
	for i, at := range map[int]time.Time{0: sw, 2: hw} {
		if at.IsZero() {
			continue
		}
		off := i * 2 * unix.SizeofLong
		putLong(b[off:], at.Unix())
		putLong(b[off+unix.SizeofLong:], int64(at.Nanosecond()))
	}
	return b
}

func putLong(b []byte, v int64) {
	if unix.SizeofLong == 8 {
		binary.NativeEndian.PutUint64(b, uint64(v))
	} else {
		binary.NativeEndian.PutUint32(b, uint32(v))
	}
}

// extErr is struct sock_extended_err followed by the 16-byte offender
// address, as IP_RECVERR carries it.
func extErr(origin uint8, info, key uint32) []byte {
	b := make([]byte, 32)
	binary.NativeEndian.PutUint32(b[0:], uint32(unix.ENOMSG))
	b[4] = origin
	binary.NativeEndian.PutUint32(b[8:], info)
	binary.NativeEndian.PutUint32(b[12:], key)
	return b
}

// stampOOB is the control data of one TX timestamp from a raw IPv4
// socket's error queue, in the kernel's order.
// info is its ee_info, unix.SCM_TSTAMP_SCHED or another kind.
func stampOOB(info uint32, key uint32, at time.Time) []byte {
	return append(cmsg(unix.SOL_SOCKET, unix.SO_TIMESTAMPING, scmTimestamping(at, time.Time{})),
		cmsg(unix.SOL_IP, unix.IP_RECVERR, extErr(unix.SO_EE_ORIGIN_TIMESTAMPING, info, key))...)
}

func TestParseTxStamp(t *testing.T) {
	at := time.Unix(1795579585, 537342849)
	ts := cmsg(unix.SOL_SOCKET, unix.SO_TIMESTAMPING, scmTimestamping(at, time.Time{}))
	recverr := func(origin uint8, info uint32) []byte {
		return cmsg(unix.SOL_IP, unix.IP_RECVERR, extErr(origin, info, 41))
	}
	cat := func(parts ...[]byte) (b []byte) {
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	odd := make([]byte, 1, 1+len(stampOOB(unix.SCM_TSTAMP_SCHED, 41, at)))
	odd = append(odd, stampOOB(unix.SCM_TSTAMP_SCHED, 41, at)...)[1:] // not word-aligned in memory
	good := txStamp{key: 41, at: at}
	for _, tc := range []struct {
		name   string
		oob    []byte
		want   txStamp
		wantOK bool
	}{
		{"sched", stampOOB(unix.SCM_TSTAMP_SCHED, 41, at), good, true},
		{"snd stamp", stampOOB(unix.SCM_TSTAMP_SND, 41, at), txStamp{}, false}, // not asked for
		{"recverr first", cat(recverr(unix.SO_EE_ORIGIN_TIMESTAMPING, unix.SCM_TSTAMP_SCHED), ts), good, true},
		{"ipv6 recverr", cat(ts, cmsg(unix.SOL_IPV6, unix.IPV6_RECVERR, extErr(unix.SO_EE_ORIGIN_TIMESTAMPING, 1, 41))), good, true},
		{"unknown cmsg between", cat(ts, cmsg(unix.SOL_IP, unix.IP_PKTINFO, make([]byte, 12)), recverr(unix.SO_EE_ORIGIN_TIMESTAMPING, 1)), good, true},
		{"unaligned buffer", odd, good, true},
		{"icmp error", recverr(unix.SO_EE_ORIGIN_ICMP, 0), txStamp{}, false},
		{"ack stamp", cat(ts, recverr(unix.SO_EE_ORIGIN_TIMESTAMPING, unix.SCM_TSTAMP_ACK)), txStamp{}, false},
		{"hardware only", cat(cmsg(unix.SOL_SOCKET, unix.SO_TIMESTAMPING, scmTimestamping(time.Time{}, at)),
			recverr(unix.SO_EE_ORIGIN_TIMESTAMPING, 0)), txStamp{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := parseTxStamp(tc.oob)
			if err != nil || ok != tc.wantOK || got != tc.want {
				t.Errorf("got %+v, %v, %v; want %+v, %v, no error", got, ok, err, tc.want, tc.wantOK)
			}
		})
	}
}

func TestParseTxStampMalformed(t *testing.T) {
	at := time.Unix(1795579585, 537342849)
	full := stampOOB(unix.SCM_TSTAMP_SCHED, 41, at)
	badLen := func(n uint64) []byte {
		b := append([]byte(nil), full...)
		putLong(b, int64(n))
		return b
	}
	ts := cmsg(unix.SOL_SOCKET, unix.SO_TIMESTAMPING, scmTimestamping(at, time.Time{}))
	badNsec := scmTimestamping(at, time.Time{})
	putLong(badNsec[unix.SizeofLong:], int64(time.Second))
	for _, tc := range []struct {
		name string
		oob  []byte
	}{
		{"empty", nil},
		{"timestamp without recverr", ts},
		{"truncated header", full[:cmsgHdrLen-1]},
		{"truncated second header", full[:len(ts)+cmsgHdrLen-2]},
		{"truncated data", full[:len(full)-8]},
		{"cmsg_len below header", badLen(cmsgHdrLen - 1)},
		{"cmsg_len beyond buffer", badLen(uint64(len(full) + 1))},
		{"cmsg_len huge", badLen(1 << 62)},
		{"short recverr", append(ts, cmsg(unix.SOL_IP, unix.IP_RECVERR, make([]byte, extErrLen-1))...)},
		{"recverr without timestamp", cmsg(unix.SOL_IP, unix.IP_RECVERR, extErr(unix.SO_EE_ORIGIN_TIMESTAMPING, 1, 41))},
		{"nanoseconds out of range", append(cmsg(unix.SOL_SOCKET, unix.SO_TIMESTAMPING, badNsec),
			cmsg(unix.SOL_IP, unix.IP_RECVERR, extErr(unix.SO_EE_ORIGIN_TIMESTAMPING, 1, 41))...)},
		{"short timestamp", append(cmsg(unix.SOL_SOCKET, unix.SO_TIMESTAMPING, make([]byte, scmTSLen-1)),
			cmsg(unix.SOL_IP, unix.IP_RECVERR, extErr(unix.SO_EE_ORIGIN_TIMESTAMPING, 1, 41))...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := parseTxStamp(tc.oob)
			if !errors.Is(err, errBadCmsg) || ok {
				t.Errorf("got %+v, %v, %v; want an error wrapping %q", got, ok, err, errBadCmsg)
			}
		})
	}
}

func FuzzParseTxStamp(f *testing.F) {
	at := time.Unix(1795579585, 537342849)
	f.Add(stampOOB(unix.SCM_TSTAMP_SCHED, 0, at))
	f.Add(stampOOB(unix.SCM_TSTAMP_SND, 1<<31, at))
	f.Add(cmsg(unix.SOL_IP, unix.IP_RECVERR, extErr(unix.SO_EE_ORIGIN_ICMP, 0, 0)))
	f.Add(stampOOB(unix.SCM_TSTAMP_SCHED, 7, at)[:20])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		st, ok, err := parseTxStamp(b)
		switch {
		case err != nil:
			if ok || !errors.Is(err, errBadCmsg) {
				t.Fatalf("error %v with ok %v: want ok false and errBadCmsg", err, ok)
			}
		case ok:
			// A stamp must survive the round trip through the kernel's layout.
			again, ok, err := parseTxStamp(stampOOB(unix.SCM_TSTAMP_SCHED, st.key, st.at))
			if err != nil || !ok || again != st {
				t.Fatalf("round trip of %+v: got %+v, %v, %v", st, again, ok, err)
			}
		}
	})
}

// TestTxTimestampingAsksForSchedOnly: no RX stamps (they would turn on the
// host-wide RX timestamping key) and no SND stamp (its clone is made inside
// the egress segment the report times).
func TestTxTimestampingAsksForSchedOnly(t *testing.T) {
	for name, flag := range map[string]int{
		"SOF_TIMESTAMPING_RX_SOFTWARE": unix.SOF_TIMESTAMPING_RX_SOFTWARE,
		"SOF_TIMESTAMPING_RX_HARDWARE": unix.SOF_TIMESTAMPING_RX_HARDWARE,
		"SOF_TIMESTAMPING_TX_SOFTWARE": unix.SOF_TIMESTAMPING_TX_SOFTWARE,
	} {
		if txTimestamping&flag != 0 {
			t.Errorf("txTimestamping %#x has %s", txTimestamping, name)
		}
	}
	if txTimestamping&unix.SOF_TIMESTAMPING_TX_SCHED == 0 {
		t.Errorf("txTimestamping %#x has no SOF_TIMESTAMPING_TX_SCHED", txTimestamping)
	}
}
