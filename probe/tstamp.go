package probe

import "time"

// stampKind says which point of the send path a TX timestamp marks. The
// values are the kernel's ee_info values (SCM_TSTAMP_*, linux/errqueue.h).
type stampKind uint32

const (
	stampSoftware stampKind = 0 // SCM_TSTAMP_SND: handed to the device driver
	stampSched    stampKind = 1 // SCM_TSTAMP_SCHED: entering the device's queue
)

// txStamp is one kernel TX timestamp read from a socket's error queue.
type txStamp struct {
	key  uint32 // SOF_TIMESTAMPING_OPT_ID: the packet's number on its socket, from 0
	kind stampKind
	at   time.Time // CLOCK_REALTIME
}
