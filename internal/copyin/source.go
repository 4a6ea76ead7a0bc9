package copyin

import (
	"context"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/dbconn"
	"github.com/pgferry/pgferry/internal/stream"
)

// refuseSource refuses (exit 2), before anything is written, a target that is the database the
// stream was read from. A stream of an older pgcopyout names no source: that is only reported.
func refuseSource(ctx context.Context, conn *pgx.Conn, h *stream.Header, targetURL string, stderr io.Writer) error {
	if h.Source == nil {
		fmt.Fprintf(stderr, "pgcopyin: the stream does not name its source database (an older pgcopyout wrote it): cannot check that the target is not the source\n")
		return nil
	}
	self, err := dbconn.Identify(ctx, conn, targetURL)
	if err != nil {
		return fmt.Errorf("identify target: %w", err)
	}
	if same, why := dbconn.SameDatabase(*h.Source, self); same {
		return cliutil.WithHint(cliutil.ExitUsage, &dbconn.SameDatabaseError{Source: *h.Source, Target: self, Evidence: why},
			"the stream was read from this database: point pgcopyin --target (PGFERRY_TARGET) at the new database; "+
				"with only DATABASE_URL set, pgcopyout and pgcopyin both resolve to it. Nothing was written")
	}
	return nil
}
