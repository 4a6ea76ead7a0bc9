// Command pgcopyin loads a pgcopyout stream into the target, one transaction per chunk, resumably.
package main

import (
	"os"

	"github.com/pgferry/pgferry/internal/copyin"
)

func main() { os.Exit(copyin.Main(os.Args)) }
