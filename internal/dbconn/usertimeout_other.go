//go:build !linux

package dbconn

import "time"

// setUserTimeout does nothing where TCP_USER_TIMEOUT does not exist: the watchdog still bounds
// a silent server.
func setUserTimeout(uintptr, time.Duration) error { return nil }
