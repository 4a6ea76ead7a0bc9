// Command pgdelta streams captured changes from the source and applies them to the target.
package main

import (
	"os"

	"github.com/pgferry/pgferry/internal/delta"
)

func main() { os.Exit(delta.Main(os.Args)) }
