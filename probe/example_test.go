package probe_test

import (
	"fmt"
	"time"

	"github.com/cnitrace/cnitrace/probe"
)

func ExamplePayload_Marshal() {
	b := probe.Payload{RunID: 0x1122334455667788, Seq: 3, SentAt: time.Unix(0, 0)}.Marshal(56)
	fmt.Printf("%d bytes, token % x\n", len(b), b[:16])
	p, err := probe.ParsePayload(b)
	fmt.Println(p.Token(), err)
	// Output:
	// 56 bytes, token 63 6e 74 31 11 22 33 44 55 66 77 88 00 00 00 03
	// {1234605616436508552 3} <nil>
}

func ExampleProbe_KernelSentAt() {
	sent := time.Date(2026, 11, 25, 4, 0, 0, 0, time.UTC)
	p := probe.Probe{
		Seq:        0,
		SentAt:     sent,                             // user space, just before sendto
		SchedAt:    sent.Add(27 * time.Microsecond),  // SCM_TSTAMP_SCHED: entering the pod eth0 queue
		SoftwareAt: sent.Add(33 * time.Microsecond),  // SCM_TSTAMP_SND: handed to the veth driver
		ReceivedAt: sent.Add(180 * time.Microsecond), // user space, just after the reply was read
	}
	at, clock := p.KernelSentAt()
	fmt.Printf("send time from %s; RTT %v from the kernel, %v from user space\n", clock, p.ReceivedAt.Sub(at), p.RTT())

	p.SchedAt, p.SoftwareAt = time.Time{}, time.Time{} // a socket without TX timestamps
	_, clock = p.KernelSentAt()
	fmt.Println("without stamps:", clock)
	// Output:
	// send time from kernel-sched; RTT 153µs from the kernel, 180µs from user space
	// without stamps: user
}
