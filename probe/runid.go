package probe

import (
	"crypto/rand"
	"encoding/binary"
)

// NewRunID returns a random, non-zero run id.
func NewRunID() uint64 {
	var b [8]byte
	for {
		rand.Read(b[:]) // never fails (crypto/rand documents it)
		if id := binary.BigEndian.Uint64(b[:]); id != 0 {
			return id
		}
	}
}
