package lobj

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/ident"
	"github.com/pgferry/pgferry/internal/pgver"
)

// targetRoles returns the target's current user, its roles, and whether the current user may
// give an object to each (ALTER ... OWNER TO needs membership; from 16 on, the SET option).
func targetRoles(ctx context.Context, conn *pgx.Conn) (string, map[string]bool, map[string]bool, error) {
	priv := "MEMBER"
	if pgver.Of(conn) >= 160000 {
		priv = "SET"
	}
	rows, err := conn.Query(ctx, "SELECT current_user, rolname::text, pg_has_role(oid, '"+priv+"') FROM pg_roles")
	if err != nil {
		return "", nil, nil, fmt.Errorf("read target roles: %w", err)
	}
	var me string
	exists, giveable := map[string]bool{}, map[string]bool{}
	for rows.Next() {
		var name string
		var ok bool
		if err := rows.Scan(&me, &name, &ok); err != nil {
			rows.Close()
			return "", nil, nil, fmt.Errorf("read target roles: %w", err)
		}
		exists[name], giveable[name] = true, ok
	}
	if err := rows.Err(); err != nil {
		return "", nil, nil, fmt.Errorf("read target roles: %w", err)
	}
	return me, exists, giveable, nil
}

// roleNotes collects, per role the target lacks or the target user may not give objects to, how
// many objects needed it.
type roleNotes struct {
	mu                sync.Mutex
	missing, notGiven map[string]int
}

func (m *roleNotes) add(set *map[string]int, role string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if *set == nil {
		*set = map[string]int{}
	}
	(*set)[role]++
}

// warnings are one line per role, sorted.
func (m *roleNotes) warnings(targetUser string) []string {
	var out []string
	for r, n := range m.missing {
		out = append(out, fmt.Sprintf("role %s does not exist on the target: %d large object(s) keep owner %s or lack its grants; create the role there (CREATE ROLE %s) and re-run pgdelta lo-sync",
			r, n, targetUser, ident.Quote(r)))
	}
	for r, n := range m.notGiven {
		out = append(out, fmt.Sprintf("role %s on the target cannot give objects to role %s: %d large object(s) keep owner %s; GRANT %s TO %s there (or run as a superuser) and re-run pgdelta lo-sync",
			targetUser, r, n, targetUser, ident.Quote(r), ident.Quote(targetUser)))
	}
	sort.Strings(out)
	return out
}

// metaSQL returns the statements that give object o on the target its source owner and ACL.
// cur is the target's metadata before (nil for an object just created by this role). When the
// owner role is missing on the target, the object keeps its target owner, which gets the
// owner's entries of the ACL.
func (s *syncer) metaSQL(o *Object, cur *Object) []string {
	var out []string
	owner := s.cmp.targetUser
	if cur != nil {
		owner = cur.Owner
	}
	switch {
	case o.Owner == owner:
	case s.cmp.giveable[o.Owner]:
		out = append(out, fmt.Sprintf("ALTER LARGE OBJECT %d OWNER TO %s", o.OID, ident.Quote(o.Owner)))
		owner = o.Owner
	case s.cmp.targetRoles[o.Owner]:
		s.notes.add(&s.notes.notGiven, o.Owner)
	default:
		s.notes.add(&s.notes.missing, o.Owner)
	}
	want := desiredACL(o, owner)
	if cur == nil && o.DefaultACL() {
		return out
	}
	if cur != nil && strings.Join(want, ",") == strings.Join(desiredACL(cur, owner), ",") {
		return out
	}
	revoke := map[string]bool{owner: true}
	if cur != nil {
		for _, e := range cur.ACL {
			if g, _, _ := splitACL(e); g != cur.Owner {
				revoke[g] = true // the old owner's entries moved to the new owner with ALTER ... OWNER
			}
		}
	}
	for _, g := range sortedKeys(revoke) {
		out = append(out, fmt.Sprintf("REVOKE ALL ON LARGE OBJECT %d FROM %s CASCADE", o.OID, grantee(g)))
	}
	return append(out, s.grants(o.OID, want)...)
}

// desiredACL is o's ACL with its owner's entries given to owner (the same unless o's owner is
// missing on the target, or o is the target's object before ALTER ... OWNER), sorted.
func desiredACL(o *Object, owner string) []string {
	out := make([]string, 0, len(o.ACL))
	for _, e := range o.ACL {
		if g, priv, opt := splitACL(e); g == o.Owner {
			e = owner + "=" + priv
			if opt {
				e += "*"
			}
		}
		out = append(out, e)
	}
	sort.Strings(out)
	return out
}

// grants are the GRANT statements of acl, skipping (and counting) grantees the target lacks.
func (s *syncer) grants(oid uint32, acl []string) []string {
	plain, option := map[string][]string{}, map[string][]string{}
	for _, e := range acl {
		g, priv, opt := splitACL(e)
		if g != "public" && !s.cmp.targetRoles[g] {
			s.notes.add(&s.notes.missing, g)
			continue
		}
		if opt {
			option[g] = append(option[g], priv)
		} else {
			plain[g] = append(plain[g], priv)
		}
	}
	var out []string
	for _, g := range sortedKeys(plain) {
		out = append(out, fmt.Sprintf("GRANT %s ON LARGE OBJECT %d TO %s", strings.Join(plain[g], ", "), oid, grantee(g)))
	}
	for _, g := range sortedKeys(option) {
		out = append(out, fmt.Sprintf("GRANT %s ON LARGE OBJECT %d TO %s WITH GRANT OPTION", strings.Join(option[g], ", "), oid, grantee(g)))
	}
	return out
}

// splitACL splits "grantee=PRIV*" (the last "=" separates: a role name may hold one).
func splitACL(e string) (grantee, priv string, grantOption bool) {
	i := strings.LastIndexByte(e, '=')
	grantee, priv = e[:i], e[i+1:]
	if strings.HasSuffix(priv, "*") {
		return grantee, strings.TrimSuffix(priv, "*"), true
	}
	return grantee, priv, false
}

func grantee(g string) string {
	if g == "public" {
		return "PUBLIC"
	}
	return ident.Quote(g)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
