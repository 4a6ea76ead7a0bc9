package stream

import (
	"os"
	"syscall"
)

// GrowPipe enlarges the kernel buffer of f when it is a pipe (best effort, no error): with 1 MiB
// frames, the default 64 KiB pipe makes writer and reader switch places 16 times per frame.
func GrowPipe(f *os.File) {
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		return
	}
	const fSetPipeSz = 1031                        // F_SETPIPE_SZ
	for _, size := range []int{4 << 20, 1 << 20} { // above /proc/sys/fs/pipe-max-size needs privilege
		if _, _, e := syscall.Syscall(syscall.SYS_FCNTL, f.Fd(), fSetPipeSz, uintptr(size)); e == 0 {
			return
		}
	}
}
