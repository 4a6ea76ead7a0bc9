package capture

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/ident"
)

// TableStatus is the capture state of one table.
type TableStatus struct {
	Table          string    `json:"table"`
	DeltaTable     string    `json:"delta_table"`
	Key            []string  `json:"key_columns"`
	Rows           int64     `json:"rows_waiting"`
	OldestTxid     *int64    `json:"oldest_txid"`     // txid of the oldest waiting change, null when none waits
	OldestAge      int64     `json:"oldest_age_xids"` // transactions since then
	Bytes          int64     `json:"bytes"`           // delta table with its index
	InstalledAt    time.Time `json:"installed_at"`
	TriggerMissing bool      `json:"trigger_missing"` // the row trigger was dropped: re-run install
	TableMissing   bool      `json:"table_missing"`   // the table was dropped or re-created
	// PartitionsWithoutTruncate counts partitions created since install: their rows are
	// captured, but a TRUNCATE naming them is not until install is run again.
	PartitionsWithoutTruncate int `json:"partitions_without_truncate_trigger"`
}

// Status is the capture state of the source.
type Status struct {
	Schema      string        `json:"schema"`
	Installed   bool          `json:"installed"`
	Position    string        `json:"position,omitempty"`
	CurrentTxid int64         `json:"current_txid"`
	Tables      []TableStatus `json:"tables"`
	Rows        int64         `json:"rows_waiting"`
	Bytes       int64         `json:"bytes"`
	Truncates   int64         `json:"truncates"`
	LastMark    string        `json:"last_mark,omitempty"`
	// Drifts are the schema changes capture cannot follow (drift.go), one per table and change.
	Drifts []Drift `json:"schema_changes"`
}

// GetStatus reads the capture state: tables captured, rows waiting, oldest waiting change, sizes.
func GetStatus(ctx context.Context, conn *pgx.Conn, schema string) (*Status, error) {
	if schema == "" {
		schema = DefaultSchema
	}
	st := &Status{Schema: schema, Tables: []TableStatus{}}
	var err error
	if st.Installed, err = SchemaExists(ctx, conn, schema); err != nil || !st.Installed {
		return st, err
	}
	if err := conn.QueryRow(ctx, "SELECT txid_snapshot_xmax(txid_current_snapshot())").Scan(&st.CurrentTxid); err != nil {
		return nil, fmt.Errorf("read current txid: %w", err)
	}
	reg, err := LoadRegistry(ctx, conn, schema)
	if err != nil {
		return nil, err
	}
	if st.Position, err = Position(ctx, conn, schema); err != nil {
		return nil, err
	}
	if st.Drifts, err = DetectDrift(ctx, conn, schema); err != nil {
		return nil, err
	}
	if st.Drifts == nil {
		st.Drifts = []Drift{}
	}
	qs := ident.Quote(schema)
	for _, c := range reg {
		ts := TableStatus{Table: c.Table.Key(), DeltaTable: c.DeltaTable, Key: c.KeyColumns, InstalledAt: c.InstalledAt}
		d := qs + "." + ident.Quote(c.DeltaTable)
		stmt := captureTriggerNames(schema)[1:] // the statement design's triggers; without a key, no _key
		if c.Keyless {
			stmt = stmt[:3]
		}
		err := conn.QueryRow(ctx, fmt.Sprintf(`SELECT count(*), min(txid), pg_total_relation_size(%[1]s::regclass),
  NOT ((EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = %[2]d AND tgname = %[3]s)
        OR (SELECT count(*) FROM pg_trigger WHERE tgrelid = %[2]d AND tgname = ANY(%[4]s::text[])) = %[9]d)
       AND EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = %[2]d AND tgname = %[5]s)),
  NOT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = %[2]d AND n.nspname = %[6]s AND c.relname = %[7]s)
FROM %[8]s`, ident.Literal(d), c.Relid, ident.Literal(TriggerName(schema)),
			ident.Literal("{"+strings.Join(quoteArrayElems(stmt), ",")+"}"), ident.Literal(TruncateTriggerName(schema)),
			ident.Literal(c.Table.Schema), ident.Literal(c.Table.Name), d, len(stmt))).
			Scan(&ts.Rows, &ts.OldestTxid, &ts.Bytes, &ts.TriggerMissing, &ts.TableMissing)
		if err != nil {
			return nil, fmt.Errorf("read delta table of %s: %w", c.Table.Key(), err)
		}
		if err := conn.QueryRow(ctx, `WITH RECURSIVE p(relid) AS (
  SELECT inhrelid FROM pg_inherits WHERE inhparent = $1
  UNION ALL SELECT i.inhrelid FROM pg_inherits i JOIN p ON i.inhparent = p.relid)
SELECT count(*) FROM p JOIN pg_class c ON c.oid = p.relid
WHERE c.relispartition AND c.relkind IN ('r','p') AND NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = p.relid AND t.tgname = $2)`,
			c.Relid, TruncateTriggerName(schema)).Scan(&ts.PartitionsWithoutTruncate); err != nil {
			return nil, fmt.Errorf("check partitions of %s: %w", c.Table.Key(), err)
		}
		if ts.OldestTxid != nil {
			ts.OldestAge = st.CurrentTxid - *ts.OldestTxid
		}
		st.Rows += ts.Rows
		st.Bytes += ts.Bytes
		st.Tables = append(st.Tables, ts)
	}
	var mark *string
	if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT (SELECT count(*) FROM %[1]s.truncates), (SELECT snapshot FROM %[1]s.marks ORDER BY id DESC LIMIT 1)", qs)).
		Scan(&st.Truncates, &mark); err != nil {
		return nil, fmt.Errorf("read capture status: %w", err)
	}
	if mark != nil {
		st.LastMark = *mark
	}
	return st, nil
}

// quoteArrayElems double-quotes elements for an array literal.
func quoteArrayElems(v []string) []string {
	out := make([]string, len(v))
	for i, x := range v {
		out[i] = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(x) + `"`
	}
	return out
}
