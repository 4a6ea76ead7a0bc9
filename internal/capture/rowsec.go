package capture

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/catalog"
	"github.com/pgferry/pgferry/internal/ident"
)

// checkRowSecurity reports each selected table (partitions included: the copy reads them
// directly) whose row-level security policies apply to the connecting role: row security is
// enabled, the role is neither superuser nor BYPASSRLS, and the table is FORCEd or not the
// role's own. pgferry reads with row_security = off, so PostgreSQL refuses such a read ("query
// would be affected by row-level security policy") instead of hiding rows: the copy, the
// catch-up and the verify would fail, so it blocks install.
func checkRowSecurity(ctx context.Context, conn *pgx.Conn, all []*catalog.Table, f catalog.Filter, rep *CheckReport) error {
	var oids []uint32
	for _, t := range all {
		if f.Match(t) {
			oids = append(oids, t.OID)
		}
	}
	rows, err := conn.Query(ctx, `SELECT n.nspname, c.relname, c.relforcerowsecurity
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = ANY($1) AND c.relrowsecurity
  AND NOT (SELECT r.rolsuper OR r.rolbypassrls FROM pg_roles r WHERE r.rolname = current_user)
  AND (c.relforcerowsecurity OR NOT pg_has_role(c.relowner, 'USAGE'))
ORDER BY 1, 2`, oids)
	if err != nil {
		return fmt.Errorf("check row-level security: %w", err)
	}
	var t ident.Table
	var forced bool
	_, err = pgx.ForEachRow(rows, []any{&t.Schema, &t.Name, &forced}, func() error {
		p := Problem{Severity: "error", Kind: "row_security", Table: t.Key(),
			Message: fmt.Sprintf("row-level security applies to role %s here (it does not own the table), so reading it fails under pgferry's row_security = off", rep.Role),
			Remedy:  fmt.Sprintf("ALTER ROLE %s BYPASSRLS (as a superuser), or run as the table's owner", ident.Quote(rep.Role))}
		if forced {
			p.Message = fmt.Sprintf("FORCE ROW LEVEL SECURITY applies its policies to role %s, so reading it fails under pgferry's row_security = off instead of losing rows", rep.Role)
			p.Remedy = fmt.Sprintf("ALTER ROLE %s BYPASSRLS (as a superuser), or ALTER TABLE %s NO FORCE ROW LEVEL SECURITY for the migration (FORCE it again after the cutover)",
				ident.Quote(rep.Role), t.String())
		}
		rep.add(p)
		return nil
	})
	if err != nil {
		return fmt.Errorf("check row-level security: %w", err)
	}
	return nil
}
