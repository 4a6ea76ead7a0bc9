// Package pgver tells which PostgreSQL features a server has, by its version, for each side separately.
package pgver

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Version is a server_version_num, e.g. 110022 for 11.22 or 170010 for 17.10.
type Version int

// Oldest and Newest are the versions pgferry supports (docs/versions.md).
const (
	Oldest Version = 110000
	Newest Version = 179999
)

// Of returns the version of the server conn talks to, from the server_version parameter the
// server reports at connection start (no query); when a proxy did not pass it on, it asks the
// server. It is 0 when neither answers.
func Of(conn *pgx.Conn) Version {
	if v, err := Parse(conn.PgConn().ParameterStatus("server_version")); err == nil {
		return v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n int
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&n); err != nil {
		return 0
	}
	return Version(n)
}

// Parse reads a server_version text ("11.22", "17.10 (Debian 17.10-1)", "18beta1") as a Version.
func Parse(s string) (Version, error) {
	s = strings.TrimSpace(s)
	end := 0
	for end < len(s) && (s[end] == '.' || (s[end] >= '0' && s[end] <= '9')) {
		end++
	}
	parts := strings.Split(s[:end], ".")
	major, err := strconv.Atoi(parts[0])
	if err != nil || major < 10 {
		return 0, fmt.Errorf("parse server version %q: want 10 or later", s)
	}
	minor := 0
	if len(parts) > 1 && parts[1] != "" {
		minor, _ = strconv.Atoi(parts[1])
	}
	return Version(major*10000 + minor), nil
}

// Major is the major version: 11, 15, 17, ...
func (v Version) Major() int { return int(v) / 10000 }

func (v Version) String() string { return fmt.Sprintf("%d.%d", v.Major(), int(v)%10000) }

// Supported reports whether pgferry is tested on this version.
func (v Version) Supported() bool { return v >= Oldest && v <= Newest }

// GeneratedColumns: pg_attribute.attgenerated and GENERATED ALWAYS AS ... STORED (12+).
func (v Version) GeneratedColumns() bool { return v >= 120000 }

// SnapshotType: pg_snapshot, pg_current_snapshot() and pg_current_xact_id() (13+); before, the
// txid_* functions, which every supported version has, are what pgferry uses everywhere.
func (v Version) SnapshotType() bool { return v >= 130000 }

// DropDatabaseForce: DROP DATABASE ... WITH (FORCE) (13+).
func (v Version) DropDatabaseForce() bool { return v >= 130000 }

// TIDRangeScan: a ctid range condition is read as a TID range scan (14+); before, it is a
// sequential scan of the whole table with a filter.
func (v Version) TIDRangeScan() bool { return v >= 140000 }

// IdleSessionTimeout: the idle_session_timeout setting (14+).
func (v Version) IdleSessionTimeout() bool { return v >= 140000 }

// Merge: the MERGE statement (15+).
func (v Version) Merge() bool { return v >= 150000 }

// TransactionTimeout: the transaction_timeout setting (17+).
func (v Version) TransactionTimeout() bool { return v >= 170000 }

// ParallelIndexBuild: max_parallel_maintenance_workers (11+).
func (v Version) ParallelIndexBuild() bool { return v >= 110000 }

// StoredColumn is the condition that keeps only stored columns of pg_attribute alias (not
// dropped is checked separately): on 12+ it excludes generated columns, before it is true.
func (v Version) StoredColumn(alias string) string {
	if v.GeneratedColumns() {
		return alias + ".attgenerated = ''"
	}
	return "true"
}

// GeneratedColumn is the condition that keeps only generated columns of pg_attribute alias
// (false before 12, where there are none).
func (v Version) GeneratedColumn(alias string) string {
	if v.GeneratedColumns() {
		return alias + ".attgenerated <> ''"
	}
	return "false"
}

// PartitionedRowTriggers: FOR EACH ROW triggers on a partitioned table, cloned to every partition
// (11+).
func (v Version) PartitionedRowTriggers() bool { return v >= 110000 }

// EnableClonedTriggers: ALTER TABLE ... ENABLE/DISABLE TRIGGER on a partitioned table reaches the
// triggers cloned to its partitions for the tables' owner (13+); before, the clones are system
// triggers that only a superuser may alter, so an owner can change the parent's alone (ONLY).
func (v Version) EnableClonedTriggers() bool { return v >= 130000 }

// UserTrigger is the condition that keeps only the triggers created on the table itself, in
// pg_trigger alias: neither internal nor cloned from a partitioned parent. Clones carry
// tgparentid from 13 and are internal before 15, so before 13 NOT tgisinternal is the whole test.
func (v Version) UserTrigger(alias string) string {
	if v >= 130000 {
		return "NOT " + alias + ".tgisinternal AND " + alias + ".tgparentid = 0"
	}
	return "NOT " + alias + ".tgisinternal"
}

// TriggerDefExecuteFunction: pg_get_triggerdef writes EXECUTE FUNCTION (12+); before, it writes
// EXECUTE PROCEDURE for the same trigger (both spellings are accepted from 11).
func (v Version) TriggerDefExecuteFunction() bool { return v >= 120000 }

// UnqualifiedViewColumns: pg_get_viewdef leaves the columns of a single-table view unqualified
// (16+, where a view's rule has no OLD and NEW range table entries); before, it writes
// table.column for the same view.
func (v Version) UnqualifiedViewColumns() bool { return v >= 160000 }
