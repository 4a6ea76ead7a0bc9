package capture

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/ident"
	"github.com/pgferry/pgferry/internal/pgver"
)

// ownObject matches the names of the objects pgtrig creates inside the capture schema.
// targets and prune_horizon are pgdelta's registry of the targets following the source.
var ownObject = regexp.MustCompile(`^(capture_tables|capture_selections|truncates|marks|fence|targets|prune_horizon|capture_truncate|d_[0-9]+|f_[0-9]+(_[iudk])?)$`)

// Remove drops every trigger that calls a function of the capture schema (one table per
// transaction, lock-safely, like Install), then pgtrig's own objects and the schema itself.
// It never drops anything it did not create: an application object left in the schema, or one
// that depends on a capture object, stops it with an error instead.
func Remove(ctx context.Context, conn *pgx.Conn, schema string, opt RemoveOptions) error {
	opt.defaults()
	if schema == "" {
		schema = DefaultSchema
	}
	var present bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema).Scan(&present); err != nil {
		return fmt.Errorf("look for capture schema: %w", err)
	}
	if !present {
		fmt.Fprintf(opt.Progress, "pgtrig: no capture schema %s: nothing to remove\n", schema)
		return nil
	}
	if err := removeTriggers(ctx, conn, schema, opt); err != nil {
		return err
	}
	return removeSchema(ctx, conn, schema, opt)
}

// tabTrig is a table and the capture triggers on it.
type tabTrig struct {
	oid          uint32
	quoted, name string
	triggers     []string
}

// removeTriggers drops the capture triggers of each table with its registry row, one table per
// transaction. Cloned triggers on partitions go with their parent's trigger.
func removeTriggers(ctx context.Context, conn *pgx.Conn, schema string, opt RemoveOptions) error {
	own := pgver.Of(conn).UserTrigger("t")
	rows, err := conn.Query(ctx, `SELECT c.oid, format('%I.%I', n.nspname, c.relname), n.nspname || '.' || c.relname, array_agg(t.tgname::text ORDER BY t.tgname)
FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_namespace pn ON pn.oid = p.pronamespace
JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE pn.nspname = $1 AND `+own+`
GROUP BY 1, 2, 3 ORDER BY 3`, schema)
	if err != nil {
		return fmt.Errorf("list capture triggers: %w", err)
	}
	var todo []tabTrig
	var tt tabTrig
	if _, err := pgx.ForEachRow(rows, []any{&tt.oid, &tt.quoted, &tt.name, &tt.triggers}, func() error { todo = append(todo, tt); return nil }); err != nil {
		return fmt.Errorf("list capture triggers: %w", err)
	}
	hasRegistry, err := SchemaExists(ctx, conn, schema)
	if err != nil {
		return err
	}
	for i, t := range todo {
		var b strings.Builder
		b.WriteString(lockTimeoutSQL(opt.LockTimeout))
		for _, g := range t.triggers {
			fmt.Fprintf(&b, "DROP TRIGGER IF EXISTS %s ON %s;\n", ident.Quote(g), t.quoted)
		}
		// The registry row goes in the same transaction: a row never outlives its capture.
		if hasRegistry {
			fmt.Fprintf(&b, "DELETE FROM %s.capture_tables WHERE relid = %d;\n", ident.Quote(schema), t.oid)
		}
		if err := runTable(ctx, conn, opt.DryRun, opt.Progress, t.name, b.String(), opt.LockTimeout, opt.Retries, opt.RetryBase); err != nil {
			return err
		}
		if opt.DryRun == nil {
			fmt.Fprintf(opt.Progress, "pgtrig: [%d/%d] %s: capture triggers dropped\n", i+1, len(todo), t.name)
		}
	}
	return nil
}

// removeSchema drops pgtrig's own objects, then the schema (RESTRICT: anything else in it
// stops it).
func removeSchema(ctx context.Context, conn *pgx.Conn, schema string, opt RemoveOptions) error {
	rows, err := conn.Query(ctx, `SELECT c.relname::text, CASE c.relkind WHEN 'S' THEN 'sequence' ELSE 'table' END
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = $1 AND c.relkind IN ('r','p','S')
UNION ALL
SELECT p.proname::text, 'function' FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
  WHERE n.nspname = $1 AND p.pronargs = 0 AND p.prorettype = 'trigger'::regtype
ORDER BY 2, 1`, schema)
	if err != nil {
		return fmt.Errorf("list capture objects: %w", err)
	}
	var objs [][2]string
	var o [2]string
	if _, err := pgx.ForEachRow(rows, []any{&o[0], &o[1]}, func() error {
		if ownObject.MatchString(o[0]) {
			objs = append(objs, o)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("list capture objects: %w", err)
	}
	qs := ident.Quote(schema)
	var b strings.Builder
	b.WriteString(lockTimeoutSQL(opt.LockTimeout))
	for _, o := range objs {
		if o[1] == "table" || o[1] == "sequence" {
			fmt.Fprintf(&b, "DROP %s IF EXISTS %s.%s;\n", strings.ToUpper(o[1]), qs, ident.Quote(o[0]))
		}
	}
	for _, o := range objs {
		if o[1] == "function" {
			fmt.Fprintf(&b, "DROP FUNCTION IF EXISTS %s.%s();\n", qs, ident.Quote(o[0]))
		}
	}
	fmt.Fprintf(&b, "DROP SCHEMA %s;\n", qs)
	if err := runTable(ctx, conn, opt.DryRun, opt.Progress, "schema "+schema, b.String(), opt.LockTimeout, opt.Retries, opt.RetryBase); err != nil {
		return cliutil.WithHint(cliutil.ExitFailure, fmt.Errorf("remove capture schema %s: %w", schema, err),
			"the schema holds objects pgtrig did not create, or an application object depends on a capture table; move or drop those, then re-run")
	}
	if opt.DryRun == nil {
		fmt.Fprintf(opt.Progress, "pgtrig: capture schema %s removed\n", schema)
	}
	return nil
}
