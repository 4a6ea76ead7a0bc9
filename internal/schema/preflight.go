package schema

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/ident"
	"github.com/pgferry/pgferry/internal/pgver"
)

// Finding is one object of the source that the target cannot take as the source has it.
type Finding struct {
	Severity string `json:"severity"` // "error": the schema cannot be applied; "warning": it can, without this object
	Kind     string `json:"kind"`     // extension, event_trigger, publication, subscription
	Object   string `json:"object"`
	Message  string `json:"message"`
	Remedy   string `json:"remedy"`
}

// String is the finding as one line: "kind object: message; hint: remedy".
func (f Finding) String() string {
	return fmt.Sprintf("%s %s: %s; hint: %s", strings.ReplaceAll(f.Kind, "_", " "), f.Object, f.Message, f.Remedy)
}

// PreflightOptions tune Preflight.
type PreflightOptions struct {
	ExcludeTypes []string // pg_dump object types the schema leaves out (--exclude-type), not checked
}

// adminRoles are the roles managed services give their customers' administrators instead of
// superuser; a member may create any extension the service lists as available.
var adminRoles = []string{"rds_superuser", "azure_pg_admin", "cloudsqlsuperuser", "alloydbsuperuser"}

// targetRights is what the target's role may create.
type targetRights struct {
	role      string
	super     bool
	admin     string // the managed-service administrator role it belongs to, if any
	createDB  bool   // CREATE on the database: trusted extensions need it
	installed map[string]bool
	available map[string]bool
	trusted   map[string]bool // PostgreSQL 13+
}

// Preflight lists what the source's schema holds that the target's role cannot create, before
// anything is changed on either side: extensions neither installed on the target nor creatable
// by its role (superuser, a managed service's administrator role, or trusted with CREATE on the
// database), event triggers (superuser only), publications of all tables or of schemas
// (superuser only), and subscriptions (warnings: pg_dump leaves them out for a non-superuser).
func Preflight(ctx context.Context, src, dst *pgx.Conn, opt PreflightOptions) ([]Finding, error) {
	rights, err := readTargetRights(ctx, dst)
	if err != nil {
		return nil, err
	}
	excluded := func(typ string) bool {
		return slices.ContainsFunc(opt.ExcludeTypes, func(t string) bool { return strings.EqualFold(strings.TrimSpace(t), typ) })
	}
	var out []Finding
	if !excluded("EXTENSION") {
		f, err := extensionFindings(ctx, src, rights)
		if err != nil {
			return nil, err
		}
		out = append(out, f...)
	}
	if !excluded("EVENT TRIGGER") && !rights.super {
		names, err := queryStrings(ctx, src, "SELECT evtname FROM pg_catalog.pg_event_trigger ORDER BY 1")
		if err != nil {
			return nil, fmt.Errorf("list the source's event triggers: %w", err)
		}
		for _, n := range names {
			out = append(out, Finding{Severity: "error", Kind: "event_trigger", Object: quoteName(n),
				Message: fmt.Sprintf("only a superuser can create it, and %s is none", rights.role),
				Remedy:  "export PGFERRY_EXCLUDE_TYPE='EVENT TRIGGER' (pgschema leaves event triggers out) and have an administrator create it on the target after the cutover"})
		}
	}
	if !excluded("PUBLICATION") && !rights.super {
		f, err := publicationFindings(ctx, src, rights)
		if err != nil {
			return nil, err
		}
		out = append(out, f...)
	}
	f, err := subscriptionFindings(ctx, src)
	if err != nil {
		return nil, err
	}
	return append(out, f...), nil
}

// readTargetRights reads the target role's rights and the target server's extensions.
func readTargetRights(ctx context.Context, dst *pgx.Conn) (*targetRights, error) {
	r := &targetRights{}
	err := dst.QueryRow(ctx, `SELECT current_user, r.rolsuper, pg_catalog.has_database_privilege(current_database(), 'CREATE'),
  coalesce((SELECT a.rolname FROM pg_catalog.pg_roles a WHERE a.rolname = ANY($1) AND pg_catalog.pg_has_role(current_user, a.oid, 'MEMBER') ORDER BY 1 LIMIT 1), '')
FROM pg_catalog.pg_roles r WHERE r.rolname = current_user`, adminRoles).Scan(&r.role, &r.super, &r.createDB, &r.admin)
	if err != nil {
		return nil, fmt.Errorf("read the target role's rights: %w", err)
	}
	sets := []struct {
		m   *map[string]bool
		sql string
	}{
		{&r.installed, "SELECT extname FROM pg_catalog.pg_extension"},
		{&r.available, "SELECT name FROM pg_catalog.pg_available_extensions"},
	}
	if pgver.Of(dst) >= 130000 { // pg_available_extension_versions.trusted is new in 13
		sets = append(sets, struct {
			m   *map[string]bool
			sql string
		}{&r.trusted, "SELECT DISTINCT name FROM pg_catalog.pg_available_extension_versions WHERE trusted"})
	}
	for _, s := range sets {
		names, err := queryStrings(ctx, dst, s.sql)
		if err != nil {
			return nil, fmt.Errorf("list the target's extensions: %w", err)
		}
		*s.m = map[string]bool{}
		for _, n := range names {
			(*s.m)[n] = true
		}
	}
	return r, nil
}

// extensionFindings: the source's extensions the target neither has nor lets its role create.
func extensionFindings(ctx context.Context, src *pgx.Conn, r *targetRights) ([]Finding, error) {
	names, err := queryStrings(ctx, src, "SELECT extname FROM pg_catalog.pg_extension WHERE extname <> 'plpgsql' ORDER BY 1")
	if err != nil {
		return nil, fmt.Errorf("list the source's extensions: %w", err)
	}
	var out []Finding
	for _, e := range names {
		switch {
		case r.installed[e]:
		case !r.available[e]:
			out = append(out, Finding{Severity: "error", Kind: "extension", Object: e, Message: "not available on the target server",
				Remedy: "have it installed there (ask the provider), or drop it on the source if nothing uses it"})
		case r.super || r.admin != "" || r.trusted[e] && r.createDB:
		case r.trusted[e]:
			out = append(out, Finding{Severity: "error", Kind: "extension", Object: e,
				Message: fmt.Sprintf("a trusted extension, but %s has no CREATE privilege on the target database", r.role),
				Remedy:  fmt.Sprintf("GRANT CREATE ON DATABASE to %s (or have the database owner run CREATE EXTENSION %s), then re-run", quoteName(r.role), quoteName(e))})
		default:
			out = append(out, Finding{Severity: "error", Kind: "extension", Object: e, Message: "only a superuser can create it (not a trusted extension)",
				Remedy: fmt.Sprintf("have an administrator run CREATE EXTENSION %s in the target database, then re-run", quoteName(e))})
		}
	}
	return out, nil
}

// publicationFindings: publications of all tables (and, on 15+, of whole schemas) need a
// superuser to create; the others only need the tables' owner.
func publicationFindings(ctx context.Context, src *pgx.Conn, r *targetRights) ([]Finding, error) {
	q := "SELECT pubname FROM pg_catalog.pg_publication WHERE puballtables ORDER BY 1"
	if pgver.Of(src) >= 150000 {
		q = `SELECT pubname FROM pg_catalog.pg_publication p WHERE puballtables
  OR EXISTS (SELECT FROM pg_catalog.pg_publication_namespace n WHERE n.pnpubid = p.oid) ORDER BY 1`
	}
	names, err := queryStrings(ctx, src, q)
	if err != nil {
		return nil, fmt.Errorf("list the source's publications: %w", err)
	}
	var out []Finding
	for _, n := range names {
		out = append(out, Finding{Severity: "error", Kind: "publication", Object: quoteName(n),
			Message: fmt.Sprintf("it publishes all tables or whole schemas, which only a superuser can create, and %s is none", r.role),
			Remedy:  "export PGFERRY_EXCLUDE_TYPE=PUBLICATION (pgschema leaves publications out) and have an administrator create it on the target after the cutover"})
	}
	return out, nil
}

// subscriptionFindings: the source database's subscriptions, which a migration does not carry
// (pg_dump leaves them out for a non-superuser, and a copy would subscribe twice).
func subscriptionFindings(ctx context.Context, src *pgx.Conn) ([]Finding, error) {
	names, err := queryStrings(ctx, src, `SELECT subname FROM pg_catalog.pg_subscription
  WHERE subdbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()) ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("list the source's subscriptions: %w", err)
	}
	var out []Finding
	for _, n := range names {
		out = append(out, Finding{Severity: "warning", Kind: "subscription", Object: quoteName(n),
			Message: "not migrated: the rows it received are copied, the subscription itself is not",
			Remedy:  "after the cutover, disable it on the source and create it on the target (CREATE SUBSCRIPTION ... WITH (copy_data = false)) if the target must keep receiving"})
	}
	return out, nil
}

// queryStrings runs a query of one text column.
func queryStrings(ctx context.Context, conn *pgx.Conn, sql string, args ...any) ([]string, error) {
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// quoteName quotes a name as quote_ident does for the common case: plain lower-case names stay
// bare (messages read better), anything else is quoted.
func quoteName(n string) string {
	for i, r := range n {
		if !(r >= 'a' && r <= 'z' || r == '_' || i > 0 && (r >= '0' && r <= '9' || r == '$')) {
			return ident.Quote(n)
		}
	}
	if n == "" {
		return ident.Quote(n)
	}
	return n
}
