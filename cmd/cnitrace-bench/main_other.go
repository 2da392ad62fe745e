//go:build !linux

package main

import (
	"fmt"
	"os"
	"runtime"
)

func main() {
	fmt.Fprintf(os.Stderr, "cnitrace-bench: the lab benchmark needs Linux network namespaces, not %s\n", runtime.GOOS)
	os.Exit(1)
}
