package schema

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/ident"
)

// Role is a role the schema references.
type Role struct {
	Name                                                    string
	Login, Inherit, CreateDB, CreateRole, Super, Repl, BRLS bool
	ConnLimit                                               int
	ValidUntil                                              *string
}

// referencedRolesSQL lists the oids of roles that own objects or appear in ACLs, outside the capture schema.
const referencedRolesSQL = `
WITH acl AS (
  SELECT relowner AS owner, relacl AS acl, relnamespace AS nsp FROM pg_class
  UNION ALL SELECT nspowner, nspacl, oid FROM pg_namespace
  UNION ALL SELECT proowner, proacl, pronamespace FROM pg_proc
  UNION ALL SELECT typowner, typacl, typnamespace FROM pg_type
  UNION ALL SELECT collowner, NULL, collnamespace FROM pg_collation
  UNION ALL SELECT conowner, NULL, connamespace FROM pg_conversion
  UNION ALL SELECT oprowner, NULL, oprnamespace FROM pg_operator
  UNION ALL SELECT opcowner, NULL, opcnamespace FROM pg_opclass
  UNION ALL SELECT opfowner, NULL, opfnamespace FROM pg_opfamily
  UNION ALL SELECT cfgowner, NULL, cfgnamespace FROM pg_ts_config
  UNION ALL SELECT dictowner, NULL, dictnamespace FROM pg_ts_dict
  UNION ALL SELECT evtowner, NULL, NULL FROM pg_event_trigger
  UNION ALL SELECT fdwowner, fdwacl, NULL FROM pg_foreign_data_wrapper
  UNION ALL SELECT srvowner, srvacl, NULL FROM pg_foreign_server
  UNION ALL SELECT lanowner, lanacl, NULL FROM pg_language WHERE lanispl
  UNION ALL SELECT defaclrole, defaclacl, defaclnamespace FROM pg_default_acl
  UNION ALL SELECT c.relowner, a.attacl, c.relnamespace FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid WHERE a.attacl IS NOT NULL
  UNION ALL SELECT umuser, NULL, NULL FROM pg_user_mappings WHERE umuser <> 0
  UNION ALL SELECT lomowner, lomacl, NULL FROM pg_largeobject_metadata
  %s
), filtered AS (
  SELECT * FROM acl WHERE nsp IS NULL OR nsp NOT IN (SELECT oid FROM pg_namespace WHERE nspname = $1 OR nspname IN ('pg_catalog', 'information_schema') OR nspname LIKE 'pg\_toast%%' OR nspname LIKE 'pg\_temp\_%%')
), ids AS (
  SELECT owner AS id FROM filtered
  UNION SELECT (aclexplode(acl)).grantee FROM filtered WHERE acl IS NOT NULL
  UNION SELECT (aclexplode(acl)).grantor FROM filtered WHERE acl IS NOT NULL
)
SELECT r.rolname, r.rolcanlogin, r.rolinherit, r.rolcreatedb, r.rolcreaterole, r.rolsuper, r.rolreplication, %s,
       r.rolconnlimit, r.rolvaliduntil::text
FROM pg_roles r JOIN ids ON ids.id = r.oid
WHERE r.rolname !~ '^pg_'
ORDER BY r.rolname`

// Roles writes idempotent CREATE ROLE statements for the roles the source's schema references;
// with join, also the grants that make the role running the script a member of each.
func Roles(ctx context.Context, conn *pgx.Conn, capture string, join bool, w io.Writer) error {
	// Publications, extended statistics, policies (roles named in CREATE POLICY ... TO role; 0 is
	// PUBLIC) and BYPASSRLS exist on every supported version (11+).
	extra := "UNION ALL SELECT pubowner, NULL, NULL FROM pg_publication UNION ALL SELECT stxowner, NULL, stxnamespace FROM pg_statistic_ext" +
		" UNION ALL SELECT r, NULL, c.relnamespace FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid, unnest(p.polroles) r WHERE r <> 0"
	// default ACL rows whose namespace is 0 mean "all schemas"
	q := fmt.Sprintf(referencedRolesSQL, extra, "r.rolbypassrls")
	q = strings.Replace(q, "defaclnamespace FROM pg_default_acl", "NULLIF(defaclnamespace, 0) FROM pg_default_acl", 1)
	rows, err := conn.Query(ctx, q, capture)
	if err != nil {
		return fmt.Errorf("list referenced roles: %w", err)
	}
	roles, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Role, error) {
		var x Role
		err := r.Scan(&x.Name, &x.Login, &x.Inherit, &x.CreateDB, &x.CreateRole, &x.Super, &x.Repl, &x.BRLS, &x.ConnLimit, &x.ValidUntil)
		return x, err
	})
	if err != nil {
		return fmt.Errorf("list referenced roles: %w", err)
	}
	names := map[string]bool{}
	for _, r := range roles {
		names[r.Name] = true
	}
	// From PostgreSQL 16 a membership may be granted by several grantors: one GRANT each is enough.
	rows, err = conn.Query(ctx, `SELECT g.rolname, m.rolname, bool_or(am.admin_option) FROM pg_auth_members am
		JOIN pg_roles g ON g.oid = am.roleid JOIN pg_roles m ON m.oid = am.member GROUP BY 1, 2 ORDER BY 1, 2`)
	if err != nil {
		return fmt.Errorf("list role memberships: %w", err)
	}
	type member struct {
		Role, Member string
		Admin        bool
	}
	members, err := pgx.CollectRows(rows, pgx.RowToStructByPos[member])
	if err != nil {
		return fmt.Errorf("list role memberships: %w", err)
	}
	var b strings.Builder
	b.WriteString("--\n-- pgschema roles: roles referenced by the schema (no passwords; safe to re-run)\n--\n\n")
	for _, r := range roles {
		b.WriteString(createRoleSQL(r))
	}
	for _, m := range members {
		if names[m.Role] && names[m.Member] {
			opt := ""
			if m.Admin {
				opt = " WITH ADMIN OPTION"
			}
			fmt.Fprintf(&b, "GRANT %s TO %s%s;\n", ident.Quote(m.Role), ident.Quote(m.Member), opt)
		}
	}
	if join {
		b.WriteString("\n-- the role running this script joins each role, to hand objects to it (ALTER ... OWNER TO)\n")
		for _, r := range roles {
			b.WriteString(joinRoleSQL(r.Name))
		}
	}
	_, err = io.WriteString(w, b.String())
	return err
}

// createRoleSQL is a DO block creating r unless a role of that name exists.
func createRoleSQL(r Role) string {
	attrs := []string{"NOLOGIN"}
	if r.Login {
		attrs[0] = "LOGIN"
	}
	if !r.Inherit {
		attrs = append(attrs, "NOINHERIT")
	}
	if r.CreateDB {
		attrs = append(attrs, "CREATEDB")
	}
	if r.CreateRole {
		attrs = append(attrs, "CREATEROLE")
	}
	if r.ConnLimit >= 0 {
		attrs = append(attrs, fmt.Sprintf("CONNECTION LIMIT %d", r.ConnLimit))
	}
	if r.ValidUntil != nil {
		attrs = append(attrs, "VALID UNTIL "+ident.Literal(*r.ValidUntil))
	}
	var notes []string
	if r.Super {
		notes = append(notes, "SUPERUSER")
	}
	if r.Repl {
		notes = append(notes, "REPLICATION")
	}
	if r.BRLS {
		notes = append(notes, "BYPASSRLS")
	}
	stmt := "CREATE ROLE " + ident.Quote(r.Name) + " " + strings.Join(attrs, " ")
	tag := "$pgferry$"
	for i := 0; strings.Contains(stmt, tag); i++ {
		tag = fmt.Sprintf("$pgferry%d$", i)
	}
	var b strings.Builder
	if len(notes) > 0 {
		fmt.Fprintf(&b, "-- role %s has %s on the source; grant it by hand if the target needs it\n", r.Name, strings.Join(notes, ", "))
	}
	fmt.Fprintf(&b, "DO %s\nBEGIN\n  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = %s) THEN\n    %s;\n  END IF;\nEND\n%s;\n\n",
		tag, ident.Literal(r.Name), stmt, tag)
	return b.String()
}

// joinRoleSQL is a DO block, evaluated on the target, that grants role name to the current user
// unless it is a superuser, already may act as name (PostgreSQL 16+: SET; before: membership), or
// name is a superuser. A grant it may not make is a warning, not an error.
func joinRoleSQL(name string) string {
	lit := ident.Literal(name)
	return fmt.Sprintf(`DO $pgferry$
DECLARE
  can_act boolean;
BEGIN
  IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user)
     OR NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = %[1]s AND NOT rolsuper) THEN
    RETURN;
  END IF;
  IF current_setting('server_version_num')::int >= 160000 THEN
    can_act := pg_catalog.pg_has_role(current_user, %[1]s, 'SET');
  ELSE
    can_act := pg_catalog.pg_has_role(current_user, %[1]s, 'MEMBER');
  END IF;
  IF NOT can_act THEN
    EXECUTE 'GRANT ' || quote_ident(%[1]s) || ' TO CURRENT_USER';
  END IF;
EXCEPTION WHEN insufficient_privilege OR invalid_grant_operation THEN
  RAISE WARNING 'pgschema roles: cannot join role %%: %%', %[1]s, SQLERRM;
END
$pgferry$;
`, lit)
}
