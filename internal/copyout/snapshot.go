package copyout

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgferry/pgferry/internal/catalog"
	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/ident"
	"github.com/pgferry/pgferry/internal/pgver"
)

// coordinator holds the REPEATABLE READ transaction whose snapshot the workers import.
type coordinator struct {
	conn          *pgx.Conn
	snapshotID    string        // pg_export_snapshot()
	position      string        // txid_current_snapshot()::text
	serverVersion string        // server_version, for the stream header
	version       pgver.Version // the source's version, for the plan
	open          bool
}

// beginSnapshot opens the coordinator's transaction and exports its snapshot.
func beginSnapshot(ctx context.Context, conn *pgx.Conn) (*coordinator, error) {
	c := &coordinator{conn: conn, version: pgver.Of(conn)}
	if _, err := conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		return nil, fmt.Errorf("begin snapshot transaction: %w", err)
	}
	c.open = true
	err := conn.QueryRow(ctx, "SELECT pg_export_snapshot(), txid_current_snapshot()::text, current_setting('server_version')").
		Scan(&c.snapshotID, &c.position, &c.serverVersion)
	if err != nil {
		return nil, fmt.Errorf("export snapshot: %w", err)
	}
	return c, nil
}

// release ends the coordinator's transaction, so the snapshot no longer holds back vacuum.
func (c *coordinator) release(ctx context.Context) {
	if c != nil && c.open {
		c.open = false
		c.conn.Exec(ctx, "COMMIT")
	}
}

// captureName is the name a table is registered under in capture_tables: its partition root.
func captureName(t *catalog.Table) string {
	if t.Root != nil {
		return t.Root.Key()
	}
	return t.Key()
}

// checkCapture enforces invariant 1 inside the coordinator's snapshot: every table to copy must
// be registered in capture_tables, so its capture committed before the snapshot.
func checkCapture(ctx context.Context, conn *pgx.Conn, schema string, tables []*catalog.Table) error {
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", ident.Quote(schema)+".capture_tables").Scan(&exists); err != nil {
		return fmt.Errorf("check capture: %w", err)
	}
	registered := map[string]bool{}
	if exists {
		rows, err := conn.Query(ctx, "SELECT table_name FROM "+ident.Quote(schema)+".capture_tables")
		if err != nil {
			return fmt.Errorf("read %s.capture_tables: %w", schema, err)
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("read %s.capture_tables: %w", schema, err)
		}
		for _, n := range names {
			registered[n] = true
		}
	}
	seen := map[string]bool{}
	var missing []string
	for _, t := range tables {
		n := captureName(t)
		if !registered[n] && !seen[n] {
			seen[n] = true
			missing = append(missing, n)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	sort.Strings(missing)
	shown := missing
	if len(shown) > 10 {
		shown = shown[:10]
	}
	list := strings.Join(shown, ", ")
	if len(missing) > len(shown) {
		list += fmt.Sprintf(" and %d more", len(missing)-len(shown))
	}
	var err error
	if !exists {
		err = fmt.Errorf("capture is not installed (no %s.capture_tables in the source snapshot), so changes made during the copy would be lost: %s", schema, list)
	} else {
		err = fmt.Errorf("capture was not committed before the copy's snapshot for %d table(s): %s", len(missing), list)
	}
	return cliutil.WithHint(cliutil.ExitFailure, err,
		"run 'pgtrig install' (with the same table filters and --capture-schema) first, or pass --one-off for a copy with no catch-up")
}

// beginChunkTx starts a chunk's own transaction, importing the shared snapshot when id is set;
// it returns the snapshot the chunk reads under, as txid_current_snapshot() text.
func beginChunkTx(ctx context.Context, conn *pgx.Conn, snapshotID string) (string, error) {
	if _, err := conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		return "", fmt.Errorf("begin chunk transaction: %w", err)
	}
	if snapshotID != "" {
		if _, err := conn.Exec(ctx, "SET TRANSACTION SNAPSHOT "+ident.Literal(snapshotID)); err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Code == "22023" {
				return "", fmt.Errorf("import snapshot %s: %w (the coordinator connection holding it was lost; re-run, pgcopyin resumes)", snapshotID, err)
			}
			return "", fmt.Errorf("import snapshot %s: %w", snapshotID, err)
		}
	}
	var pos string
	if err := conn.QueryRow(ctx, "SELECT txid_current_snapshot()::text").Scan(&pos); err != nil {
		return "", fmt.Errorf("read chunk snapshot: %w", err)
	}
	return pos, nil
}
