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
