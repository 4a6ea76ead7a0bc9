//go:build !linux

package stream

import "os"

// GrowPipe enlarges the kernel buffer of a pipe where the system allows it (Linux only).
func GrowPipe(f *os.File) {}
