// Package lobj lists, hashes, compares and copies large objects (pg_largeobject) between two servers, keeping their oids, owners and ACLs.
package lobj

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Chunk is the unit large object data is hashed and moved in: a bigger object is never held in
// memory whole, on either server or here. Both sides of a comparison must use the same value.
const Chunk = 1 << 20

// invRead is INV_READ for lo_open: a read-only descriptor, which reads in the statement's snapshot.
const invRead = 0x40000

// Object is one large object's metadata.
type Object struct {
	OID      uint32
	Owner    string
	ACL      []string // sorted "grantee=PRIVILEGE" ("*" appended: with grant option); grantee "public" is PUBLIC; a NULL ACL is spelled out as the owner's default
	Readable bool     // the connected role may read its data
}

// ACLText is the object's ACL as one string, for messages and comparisons.
func (o Object) ACLText() string { return strings.Join(o.ACL, ",") }

// DefaultACL reports whether the object's ACL is what a new object owned by its owner gets.
func (o Object) DefaultACL() bool {
	return o.ACLText() == o.Owner+"=SELECT,"+o.Owner+"=UPDATE"
}

// listSQL reads every large object's metadata. pg_largeobject_metadata is readable by any role;
// readability follows the server's own rule (superuser, lo_compat_privileges, or SELECT granted
// to PUBLIC or to a role the current user has the privileges of).
const listSQL = `SELECT m.oid, pg_get_userbyid(m.lomowner),
  coalesce((SELECT array_agg(CASE WHEN a.grantee = 0 THEN 'public' ELSE pg_get_userbyid(a.grantee) END
      || '=' || a.privilege_type || CASE WHEN a.is_grantable THEN '*' ELSE '' END)
    FROM aclexplode(coalesce(m.lomacl, acldefault('L', m.lomowner))) a), '{}'::text[]),
  s.su OR s.compat OR EXISTS (SELECT 1 FROM aclexplode(coalesce(m.lomacl, acldefault('L', m.lomowner))) a
    WHERE a.privilege_type = 'SELECT' AND (a.grantee = 0 OR pg_has_role(a.grantee, 'USAGE')))
FROM pg_largeobject_metadata m,
  (SELECT coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = current_user), false) AS su,
          current_setting('lo_compat_privileges')::bool AS compat) s
ORDER BY m.oid`

// List returns the metadata of every large object of the database conn is connected to, by oid.
func List(ctx context.Context, conn *pgx.Conn) ([]Object, error) {
	rows, err := conn.Query(ctx, listSQL)
	if err != nil {
		return nil, fmt.Errorf("list large objects: %w", err)
	}
	var out []Object
	for rows.Next() {
		var o Object
		if err := rows.Scan(&o.OID, &o.Owner, &o.ACL, &o.Readable); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list large objects: %w", err)
		}
		sort.Strings(o.ACL)
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list large objects: %w", err)
	}
	return out, nil
}

// Count returns how many large objects the database holds (cheap: metadata only).
func Count(ctx context.Context, conn *pgx.Conn) (int64, error) {
	var n int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_largeobject_metadata").Scan(&n); err != nil {
		return 0, fmt.Errorf("count large objects: %w", err)
	}
	return n, nil
}

// Stats is what a preflight reports about a database's large objects.
type Stats struct {
	Objects    int64    `json:"objects"`
	Bytes      int64    `json:"bytes"`                // of the readable ones
	Unreadable []Object `json:"unreadable,omitempty"` // objects the role cannot read (at most 20)
	Unread     int      `json:"unreadable_count"`
}

// ReadStats counts the large objects and sums the sizes of those the role can read.
func ReadStats(ctx context.Context, conn *pgx.Conn) (Stats, error) {
	var st Stats
	objs, err := List(ctx, conn)
	if err != nil {
		return st, err
	}
	st.Objects = int64(len(objs))
	var oids []uint32
	for _, o := range objs {
		if !o.Readable {
			st.Unread++
			if len(st.Unreadable) < 20 {
				st.Unreadable = append(st.Unreadable, o)
			}
			continue
		}
		oids = append(oids, o.OID)
	}
	for len(oids) > 0 {
		n := min(len(oids), hashBatch)
		ds, err := digests(ctx, conn, oids[:n], false)
		if err != nil {
			return st, err
		}
		for _, d := range ds {
			st.Bytes += d.Size
		}
		oids = oids[n:]
	}
	return st, nil
}

// UnreadableError says the connected role cannot read some large objects of the source.
type UnreadableError struct {
	Role    string
	Objects []Object // the first few
	Count   int
}

func (e *UnreadableError) Error() string {
	if e.Count == 1 {
		o := e.Objects[0]
		return fmt.Sprintf("role %s cannot read large object %d owned by %s", e.Role, o.OID, o.Owner)
	}
	var list []string
	for _, o := range e.Objects[:min(len(e.Objects), 5)] {
		list = append(list, fmt.Sprintf("%d owned by %s", o.OID, o.Owner))
	}
	more := ""
	if e.Count > len(list) {
		more = fmt.Sprintf(", and %d more", e.Count-len(list))
	}
	return fmt.Sprintf("role %s cannot read %d large objects: %s%s", e.Role, e.Count, strings.Join(list, ", "), more)
}

// Remedy tells the operator how to make the objects readable.
func (e *UnreadableError) Remedy() string {
	o := e.Objects[0]
	each := ""
	if e.Count > 1 {
		each = " (and so for each)"
	}
	return fmt.Sprintf("on the source, as the owner or a superuser: GRANT SELECT ON LARGE OBJECT %d TO %s%s; or run as the owner (%s) or a superuser",
		o.OID, e.Role, each, o.Owner)
}

// checkReadable returns an UnreadableError when role cannot read some of objs.
func checkReadable(role string, objs []Object) error {
	var e UnreadableError
	for _, o := range objs {
		if !o.Readable {
			e.Count++
			if len(e.Objects) < 20 {
				e.Objects = append(e.Objects, o)
			}
		}
	}
	if e.Count == 0 {
		return nil
	}
	e.Role = role
	return &e
}

// Summary says how many large objects there are and how they reach the target.
func (st Stats) Summary() string {
	return fmt.Sprintf("%d large object(s), %.1f MB: not captured by triggers; pgdelta lo-sync copies them after the copy (migrate.sh) and again in the cutover window, where pgverify re-checks them",
		st.Objects, float64(st.Bytes)/1e6)
}

// UnreadableError is the error for the objects the role cannot read, nil when it reads all.
func (st Stats) UnreadableError(role string) *UnreadableError {
	if st.Unread == 0 {
		return nil
	}
	return &UnreadableError{Role: role, Objects: st.Unreadable, Count: st.Unread}
}
