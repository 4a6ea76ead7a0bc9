package catalog

import (
	"strings"

	"github.com/pgferry/pgferry/internal/pgver"
)

// identityTypeOIDs are the built-in types whose = holds exactly when two values print the same
// text (bool, bytea, "char", name, int8, int2, int4, text, oid, money, varchar, date, time,
// timestamp, timestamptz, bit, varbit, uuid). Not numeric (1.0 = 1.00), float (0 = -0), interval
// ('1 day' = '24:00:00'), jsonb (numbers inside), bpchar (trailing blanks), arrays or composites.
// OIDs below 10000 are fixed by PostgreSQL itself.
const identityTypeOIDs = "16, 17, 18, 19, 20, 21, 23, 25, 26, 790, 1043, 1082, 1083, 1114, 1184, 1560, 1562, 2950"

// IdentitySQL is a boolean SQL expression over the pg_attribute row alias: the column's = holds
// exactly when the values' text forms are equal (its type, or a domain's base type, is one of
// identityTypeOIDs or an enum, under a deterministic collation). Comparing such a column with =
// is comparing its text, only cheaper and by index; rows of tables without a key are matched so.
func IdentitySQL(v pgver.Version, alias string) string {
	det := "true"
	if v.Major() >= 12 { // nondeterministic collations exist from 12 on
		det = "NOT EXISTS (SELECT 1 FROM pg_catalog.pg_collation co WHERE co.oid = {a}.attcollation AND NOT co.collisdeterministic)"
	}
	return strings.ReplaceAll(`(coalesce((WITH RECURSIVE b(oid, typtype, typbasetype) AS (
    SELECT ty.oid, ty.typtype, ty.typbasetype FROM pg_catalog.pg_type ty WHERE ty.oid = {a}.atttypid
    UNION ALL SELECT ty.oid, ty.typtype, ty.typbasetype FROM b JOIN pg_catalog.pg_type ty ON ty.oid = b.typbasetype WHERE b.typtype = 'd')
  SELECT b.typtype = 'e' OR b.oid IN (`+identityTypeOIDs+`) FROM b WHERE b.typtype <> 'd'), false) AND `+det+`)`, "{a}", alias)
}
