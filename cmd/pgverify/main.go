// Command pgverify proves source and target hold the same rows, table by table.
package main

import (
	"os"

	"github.com/pgferry/pgferry/internal/verify"
)

func main() { os.Exit(verify.Main(os.Args)) }
