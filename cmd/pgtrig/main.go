// Command pgtrig installs, inspects and removes change capture on the source database.
package main

import (
	"os"

	"github.com/pgferry/pgferry/internal/trig"
)

func main() { os.Exit(trig.Main(os.Args)) }
