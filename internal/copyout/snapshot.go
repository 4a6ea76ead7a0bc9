package copyout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgferry/pgferry/internal/catalog"
	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/dbconn"
	"github.com/pgferry/pgferry/internal/ident"
	"github.com/pgferry/pgferry/internal/pgver"
	"github.com/pgferry/pgferry/internal/retry"
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

// errSnapshotLost marks a chunk that could not import the shared snapshot because the
// connection exporting it is gone.
var errSnapshotLost = errors.New("the shared snapshot is gone (the connection holding it was lost)")

// beginChunkTx starts a chunk's own transaction, importing the shared snapshot when id is set;
// it returns the snapshot the chunk reads under, as txid_current_snapshot() text.
func beginChunkTx(ctx context.Context, conn *pgx.Conn, snapshotID string) (string, error) {
	if _, err := conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		return "", fmt.Errorf("begin chunk transaction: %w", err)
	}
	if snapshotID != "" {
		if _, err := conn.Exec(ctx, "SET TRANSACTION SNAPSHOT "+ident.Literal(snapshotID)); err != nil {
			var pe *pgconn.PgError
			// 22023 (before 17: "invalid snapshot identifier") and 42704 (17+: "snapshot does
			// not exist"): its holder's transaction ended; 55000: its holder's process is not
			// running any more.
			if errors.As(err, &pe) && (pe.Code == "22023" || pe.Code == "42704" || pe.Code == "55000") {
				return "", fmt.Errorf("import snapshot %s: %w: %w", snapshotID, errSnapshotLost, err)
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

// inSnapshot runs fn on a connection of its own, in a transaction that imports the exported
// snapshot id, and ends that transaction: reading the catalog and sampling take AccessShareLock
// on the tables they touch, and a lock taken by the snapshot's holder would last the whole copy
// and queue the application's ALTER TABLE (and its traffic behind it) for hours.
func inSnapshot(ctx context.Context, url, id string, fn func(conn *pgx.Conn) error) error {
	conn, err := dbconn.Connect(ctx, url, dbconn.Source, dbconn.Options{AppName: "pgferry-pgcopyout"})
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := beginChunkTx(ctx, conn, id); err != nil {
		return err
	}
	if err := fn(conn); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("end planning transaction: %w", err)
	}
	return nil
}

// sharedSnapshot is the exported snapshot the shared chunks import, and its holder. When the
// holder's connection is lost mid-copy, renew exports a new one (invariant 1 checked again in
// it); the chunks read under each record their own snapshot, so catch-up starts at the oldest,
// as for a resumed copy.
type sharedSnapshot struct {
	mu       sync.Mutex
	coord    *coordinator
	url      string
	oneOff   bool
	schema   string // capture schema
	tables   []*catalog.Table
	stderr   io.Writer
	retry    retry.Policy
	ctidSnap map[string]string // table split in several ctid ranges -> the snapshot they read under
	renewed  int
}

// current is the snapshot id shared chunks import now.
func (s *sharedSnapshot) current() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.coord.snapshotID
}

// release ends the holder's transaction, so the snapshot no longer holds back vacuum.
func (s *sharedSnapshot) release(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.coord.release(ctx)
	if s.renewed > 0 { // a holder renew opened (Run closes the first)
		s.coord.conn.Close(ctx)
	}
}

// renew replaces the snapshot lost (unless another worker already did) and returns the new id.
func (s *sharedSnapshot) renew(ctx context.Context, lost string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.coord.snapshotID != lost {
		return s.coord.snapshotID, nil
	}
	if s.oneOff {
		return "", cliutil.WithHint(cliutil.ExitFailure,
			fmt.Errorf("lost the connection holding the shared snapshot %s: a --one-off copy has no catch-up to make chunks read under a second snapshot consistent", lost),
			"re-run the copy into an emptied target (pgcopyin --truncate), or install capture (pgtrig install) and copy without --one-off")
	}
	var next *coordinator
	err := s.retry.Do(ctx, func(ctx context.Context) error {
		conn, err := dbconn.Connect(ctx, s.url, dbconn.Source, dbconn.Options{AppName: "pgferry-pgcopyout"})
		if err != nil {
			return err
		}
		c, err := beginSnapshot(ctx, conn)
		if err == nil {
			err = inSnapshot(ctx, s.url, c.snapshotID, func(pc *pgx.Conn) error { return checkCapture(ctx, pc, s.schema, s.tables) })
		}
		if err != nil {
			conn.Close(context.Background())
			return err
		}
		next = c
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("export a new snapshot after losing %s: %w", lost, err)
	}
	s.coord.conn.Close(context.Background())
	s.coord = next
	s.renewed++
	fmt.Fprintf(s.stderr, "pgcopyout: lost the connection holding the shared snapshot %s: the unfinished chunks go on under a new snapshot %s (%s); catch-up starts at the oldest chunk's snapshot, as for a resumed copy\n",
		lost, next.snapshotID, next.position)
	return next.snapshotID, nil
}

// checkCtid refuses a range of a table split by ctid when another of its ranges was read under
// another snapshot (an UPDATE moves a row between ranges): at a chunk's start against the ranges
// completed, and at its end, when it also records the snapshot its table's ranges use.
func (s *sharedSnapshot) checkCtid(j *job, id string, end bool) error {
	if j.c.Kind != KindCtid || len(j.tp.Chunks) < 2 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	first, ok := s.ctidSnap[j.tp.Key()]
	if !ok || first == id {
		if end {
			s.ctidSnap[j.tp.Key()] = id
		}
		return nil
	}
	return cliutil.WithHint(cliutil.ExitFailure,
		fmt.Errorf("table %s is split by ctid ranges and part of it was read under the lost snapshot %s: its other ranges cannot be read under a new one (an UPDATE moves rows between ranges)", j.tp.Key(), first),
		"re-run the copy with pgcopyout --target (scripts/migrate.sh does): the loaded chunks of the other tables are kept and this table is copied again whole")
}
