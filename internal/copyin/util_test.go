package copyin

import (
	"bytes"
	"strconv"
)

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
func fmtInt(i int) string                { return strconv.Itoa(i) }
