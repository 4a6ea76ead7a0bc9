// Package capture installs, reads and removes the trigger-based change capture on the source.
package capture

import (
	"context"
	"io"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/catalog"
	"github.com/pgferry/pgferry/internal/ident"
)

// DefaultSchema is the source schema holding the capture registry and delta tables.
const DefaultSchema = ident.DefaultSchema

// DefaultLockTimeout bounds how long one try waits for a table lock.
const DefaultLockTimeout = 2 * time.Second

// DefaultRetries is how many times a table whose lock was not granted is tried again.
const DefaultRetries = 10

// Querier runs queries: a *pgx.Conn or a pgx.Tx.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Captured is one registry row: a table whose changes are recorded in its delta table.
type Captured struct {
	Table             ident.Table `json:"table"`
	Relid             uint32      `json:"relid"`
	DeltaTable        string      `json:"delta_table"` // name inside the capture schema, e.g. "d_16412"
	KeyColumns        []string    `json:"key_columns"`
	KeyTypes          []string    `json:"key_types"`
	Keyless           bool        `json:"keyless"` // no key: KeyColumns are every stored column, the delta holds whole rows
	InstalledTxid     int64       `json:"installed_txid"`
	InstalledSnapshot string      `json:"installed_snapshot"`
	InstalledAt       time.Time   `json:"installed_at"`
	// Columns are the table's columns at install, "name typeoid typmod" in attnum order, and
	// Partitions its partitions, "oid schema.table" (drift.go compares them with the catalog).
	// Both are nil in a registry written before they were recorded: those checks are skipped.
	Columns    []string `json:"columns,omitempty"`
	Partitions []string `json:"partitions,omitempty"`
}

// InstallOptions tune Install.
type InstallOptions struct {
	Schema      string         // capture schema, default "pgferry"
	Filter      catalog.Filter // tables to capture
	LockTimeout time.Duration  // per try, default 2s
	Retries     int            // extra tries per table after a lock timeout or deadlock, default 10
	RetryBase   time.Duration  // first backoff, default 1s
	DryRun      io.Writer      // when set, the SQL is written here and nothing is executed
	Progress    io.Writer      // progress lines, may be nil
	// Force re-captures a table whose capture no longer fits it (re-created, key or columns or
	// partitions changed) even when its delta table holds changes not yet applied: they are
	// dropped, so the table must be copied again (the message says how).
	Force bool
}

// InstallResult reports what Install did.
type InstallResult struct {
	Position  string     `json:"position"`  // capture position: catch-up from here covers every captured table
	Tables    []Captured `json:"tables"`    // every captured table after the install
	Installed []string   `json:"installed"` // tables newly installed (or repaired) by this run
}

// RemoveOptions tune Remove.
type RemoveOptions struct {
	LockTimeout time.Duration
	Retries     int
	RetryBase   time.Duration
	DryRun      io.Writer
	Progress    io.Writer
}

func (o *InstallOptions) defaults() {
	if o.Schema == "" {
		o.Schema = DefaultSchema
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	if o.Retries < 0 {
		o.Retries = 0
	} else if o.Retries == 0 {
		o.Retries = DefaultRetries
	}
	if o.RetryBase <= 0 {
		o.RetryBase = time.Second
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
}

func (o *RemoveOptions) defaults() {
	if o.LockTimeout <= 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	if o.Retries == 0 {
		o.Retries = DefaultRetries
	}
	if o.RetryBase <= 0 {
		o.RetryBase = time.Second
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
}
