// Command pause is the lab's sandbox ("pause") process: it holds a pod
// sandbox's namespaces open, reaps the children it inherits as the
// sandbox's init, and exits 0 on SIGTERM or SIGINT. The containerd harness
// builds it static (CGO_ENABLED=0) into the image it imports.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
