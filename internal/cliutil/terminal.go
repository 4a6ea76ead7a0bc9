package cliutil

import (
	"errors"
	"io"
	"os"
	"syscall"
	"unsafe"
)

// IsTerminal reports whether w is an *os.File connected to a terminal (not merely a character
// device: /dev/null is one too, and writing a stream there is fine).
func IsTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	var t syscall.Termios
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), uintptr(syscall.TCGETS), uintptr(unsafe.Pointer(&t)))
	return errno == 0
}

// RefuseTerminal returns a usage error when binary output would go to a terminal.
func RefuseTerminal(w io.Writer, what string) error {
	if IsTerminal(w) {
		return WithHint(ExitUsage, errors.New("refusing to write "+what+" to a terminal"), "pipe it into the next tool or redirect it to a file")
	}
	return nil
}
