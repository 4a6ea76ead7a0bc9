// Package deltarec defines the JSON-lines delta records that pgdelta stream writes and pgdelta apply reads.
package deltarec

// Op values.
const (
	OpBegin    = "begin"
	OpUpsert   = "upsert"
	OpDelete   = "delete"
	OpTruncate = "truncate"
	OpCommit   = "commit"
	OpRows     = "rows" // keyless tables: how many copies of one row the source holds
	// A partition of table recorded at install left its tree on the source: detached (it still
	// exists as a table of its own) or dropped. Apply detaches it on the target (and drops it, by
	// --partition-removed) before the batch's rows of the table are applied.
	OpDetachPartition = "detach_partition"
	OpDropPartition   = "drop_partition"
)

// Record is one line of the delta stream. Column values are PostgreSQL's text output under the
// pinned session settings, or nil for NULL.
type Record struct {
	Op    string `json:"op"`
	From  string `json:"from,omitempty"`  // begin: position the batch starts after
	To    string `json:"to,omitempty"`    // begin, commit: position the batch ends at
	At    string `json:"at,omitempty"`    // begin: source clock when the batch's snapshot was taken (RFC 3339)
	Table string `json:"table,omitempty"` // upsert, delete, truncate, detach_partition, drop_partition: unquoted "schema.table"
	// Partition (detach_partition, drop_partition): the partition's unquoted "schema.table".
	Partition string             `json:"partition,omitempty"`
	Row       map[string]*string `json:"row,omitempty"`   // upsert: every stored column
	Key       map[string]*string `json:"key,omitempty"`   // delete: key columns
	Rows      *int64             `json:"rows,omitempty"`  // commit: records of the batch (upsert, delete, rows)
	Count     *int64             `json:"count,omitempty"` // rows: copies of row the source holds (0 or more)
	// Source (begin, optional) fingerprints the source database (dbconn.Identity.Token), so apply
	// can refuse a target that is the source itself.
	Source string `json:"source,omitempty"`
}
