package capture

import (
	"fmt"
	"testing"
	"time"
)

// TestGeometryFor: the rings' blocks and the reader's scan gap chosen for
// a run. A block is the smallest power of two, at least a page, that holds
// ringRetire's worth of the run's packets at a point (each with room for
// an encapsulation) and one frame in the largest encapsulation; the gap
// is the time a ring takes to gather scanBatch packets, 20 ms to 250 ms.
// A rate not known keeps 16 KiB and 20 ms.
func TestGeometryFor(t *testing.T) {
	const icmp4 = 14 + 20 + 8 + 56     // an ICMP echo of 56 bytes over IPv4
	const tcp4 = 14 + 20 + 8 + 20 + 60 // an ICMP error quoting a TCP SYN with 40 bytes of options
	unknown := geometry{16 << 10, 20 * time.Millisecond}
	for _, tc := range []struct {
		name string
		rate Rate
		page int
		want geometry
	}{
		{"unknown", Rate{}, 4096, unknown},
		{"no packets said", Rate{Interval: 10 * time.Millisecond, Frame: icmp4}, 4096, unknown},
		{"no frame said", Rate{Interval: 10 * time.Millisecond, Packets: 2}, 4096, unknown},
		// 200 packets a second: 2 a retire period, one page; 128 take 640 ms.
		{"ICMP at 10 ms", Rate{10 * time.Millisecond, 2, icmp4}, 4096, geometry{4 << 10, 250 * time.Millisecond}},
		{"ICMP at 100 ms", Rate{100 * time.Millisecond, 2, icmp4}, 4096, geometry{4 << 10, 250 * time.Millisecond}},
		{"ICMP at 5 ms", Rate{5 * time.Millisecond, 2, icmp4}, 4096, geometry{4 << 10, 250 * time.Millisecond}},
		// 2,000 a second: 16 a retire period, 4,400 bytes; 128 take 64 ms.
		{"ICMP at 1 ms", Rate{time.Millisecond, 2, icmp4}, 4096, geometry{8 << 10, 64 * time.Millisecond}},
		{"ICMP at 0.5 ms", Rate{500 * time.Microsecond, 2, icmp4}, 4096, geometry{16 << 10, 32 * time.Millisecond}},
		// 20,000 a second: 160 a retire period, 43,568 bytes.
		{"ICMP at 0.1 ms", Rate{100 * time.Microsecond, 2, icmp4}, 4096, geometry{64 << 10, 20 * time.Millisecond}},
		{"TCP at 10 ms", Rate{10 * time.Millisecond, 3, tcp4}, 4096, geometry{4 << 10, 250 * time.Millisecond}},
		// 60,000 a second from two sources: 480 of 288 bytes a retire period.
		{"TCP from two sources at 0.1 ms", Rate{100 * time.Microsecond, 6, tcp4}, 4096, geometry{256 << 10, 20 * time.Millisecond}},
		{"rate beyond any run", Rate{time.Nanosecond, 2, icmp4}, 4096, geometry{maxBlockSize, 20 * time.Millisecond}},
		// One 9,000-byte frame in Geneve with options takes 9,424 bytes.
		{"jumbo frames at 1 s", Rate{time.Second, 2, 9000}, 4096, geometry{16 << 10, 250 * time.Millisecond}},
		{"64 KiB pages", Rate{10 * time.Millisecond, 2, icmp4}, 64 << 10, geometry{64 << 10, 250 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := geometryFor(tc.rate, tc.page)
			if got != tc.want {
				t.Fatalf("got blocks of %d bytes and a scan gap of %v, want %d and %v", got.blockSize, got.scanGap, tc.want.blockSize, tc.want.scanGap)
			}
			if tc.rate == (Rate{}) || tc.rate.Packets == 0 || tc.rate.Frame == 0 {
				return
			}
			perRetire := float64(tc.rate.Packets) * float64(ringRetire) / float64(tc.rate.Interval)
			if fit := (got.blockSize - blockHeader) / slot(tc.rate.Frame+encapHeadroom); float64(fit) < perRetire && got.blockSize < maxBlockSize {
				t.Errorf("a block holds %d packets, want at least the %.1f of a retire period", fit, perRetire)
			}
			if got.blockSize-blockHeader < slot(tc.rate.Frame+maxEncapHeadroom) {
				t.Errorf("a block of %d bytes does not hold a frame of %d bytes in the largest encapsulation", got.blockSize, tc.rate.Frame)
			}
			if half := got.blockSize / 2; half >= tc.page && half-blockHeader >= max(int(perRetire+0.999), 1)*slot(tc.rate.Frame+encapHeadroom) && half-blockHeader >= slot(tc.rate.Frame+maxEncapHeadroom) {
				t.Errorf("blocks of %d bytes would do: %d is not the smallest", half, got.blockSize)
			}
		})
	}
}

// TestGeometryHoldsTheRun: whatever the rate, from the fastest a run may
// probe (100 us) to one probe a second, the ring holds at least a second
// of the run's packets at a point, at least four of the reader's scan
// gaps (the rest of the second is for a loaded machine keeping the reader
// off the CPU), and at the fastest rate at least the 2 MiB a ring mapped
// before it was sized to the run.
func TestGeometryHoldsTheRun(t *testing.T) {
	const frame = 14 + 20 + 8 + 56
	for _, interval := range []time.Duration{100 * time.Microsecond, 200 * time.Microsecond, 500 * time.Microsecond, time.Millisecond, 3 * time.Millisecond, 10 * time.Millisecond, 100 * time.Millisecond, time.Second} {
		for _, packets := range []int{2, 3, 4, 6} {
			t.Run(fmt.Sprintf("%v x%d", interval, packets), func(t *testing.T) {
				g := geometryFor(Rate{interval, packets, frame}, 4096)
				perSecond := float64(packets) * float64(time.Second) / float64(interval)
				fit := ringBlocks * ((g.blockSize - blockHeader) / slot(frame+encapHeadroom))
				// A block holds its packets for a retire period at least,
				// or until it is full.
				held := time.Duration(min(float64(fit)/perSecond, float64(ringBlocks)*ringRetire.Seconds()) * float64(time.Second))
				if held < time.Second {
					t.Errorf("the ring holds %v of packets (%d of them in blocks of %d bytes), want at least 1s", held, fit, g.blockSize)
				}
				if held < 4*g.scanGap {
					t.Errorf("the ring holds %v of packets, want at least four scan gaps of %v", held, g.scanGap)
				}
				if interval == 100*time.Microsecond && g.ringBytes() < 2<<20 {
					t.Errorf("at the fastest rate a ring maps %d bytes, want at least the 2 MiB of before", g.ringBytes())
				}
			})
		}
	}
}
