package delta

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/capture"
	"github.com/pgferry/pgferry/internal/pgver"
)

// userTriggers lists the enabled user triggers on the target's tables as "table: trigger": they
// fire on every row pgdelta applies. pgferry's own capture triggers (of capture schema
// captureSchema) are left out, and so are the clones of a partitioned table's trigger on its
// partitions (the parent's entry stands for them).
func userTriggers(ctx context.Context, conn *pgx.Conn, captureSchema string) ([]string, error) {
	rows, err := conn.Query(ctx, `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) || ': ' || quote_ident(t.tgname)
		FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE `+pgver.Of(conn).UserTrigger("t")+` AND t.tgenabled <> 'D' AND NOT t.tgname = ANY($1)
		  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
		ORDER BY 1`, capture.TriggerNames(captureSchema))
	if err != nil {
		return nil, fmt.Errorf("list target triggers: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// warnTriggers writes a warning to w when the target has enabled user triggers: during catch-up
// they would run again on rows the source's own triggers already shaped (an updated_at stamp,
// an audit row), so the target would drift from the source.
func warnTriggers(ctx context.Context, conn *pgx.Conn, captureSchema string, w io.Writer) {
	list, err := userTriggers(ctx, conn, captureSchema)
	if err != nil || len(list) == 0 || w == nil {
		return
	}
	shown := list
	if len(shown) > 5 {
		shown = append(shown[:5:5], fmt.Sprintf("and %d more", len(list)-5))
	}
	fmt.Fprintf(w, "pgdelta: warning: %d user trigger(s) enabled on the target (%s): they fire on every row applied "+
		"and can change what the source sent; create user triggers at the cutover (scripts/cutover.sh does), "+
		"or ALTER TABLE ... DISABLE TRIGGER until then\n", len(list), strings.Join(shown, ", "))
}
