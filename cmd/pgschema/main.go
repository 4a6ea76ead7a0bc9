// Command pgschema dumps, filters, applies and compares PostgreSQL schemas for a pgferry migration.
package main

import (
	"os"

	"github.com/pgferry/pgferry/internal/schema"
)

func main() { os.Exit(schema.Main(os.Args)) }
