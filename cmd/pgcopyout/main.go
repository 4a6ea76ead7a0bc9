// Command pgcopyout copies a live PostgreSQL database, consistently and in parallel, into a framed stream.
package main

import (
	"os"

	"github.com/pgferry/pgferry/internal/copyout"
)

func main() { os.Exit(copyout.Main(os.Args)) }
