package schema

import (
	"strings"

	"github.com/pgferry/pgferry/internal/catalog"
	"github.com/pgferry/pgferry/internal/ident"
)

// objScope is where a catalog object belongs: its schema ("" for an extension) and the table (or
// view) it is part of, if any: a column's, index's, constraint's or trigger's relation, a
// sequence's owner.
type objScope struct {
	schema string
	table  ident.Table
}

// scopes maps object kind -> object name -> its scope, as Catalog does for definitions.
type scopes map[string]map[string]objScope

// snap is what diff reads from one side.
type snap struct {
	cat    Catalog
	scopes scopes
	tables []*catalog.Table
}

// filterSnaps keeps in both catalogs the objects f selects, as 'pgschema dump' with f would
// write them: the patterns are checked against the tables of both sides (catalog.Filter.Resolve);
// an object of a table follows the table (a partition's, its root), any other its schema. Each
// name is decided by its source scope when the source has it, so an object the source ties to an
// excluded table (a sequence it owns) is left out on both sides.
func filterSnaps(f catalog.Filter, src, dst *snap) error {
	both := append(src.tables[:len(src.tables):len(src.tables)], dst.tables...)
	f, err := f.Resolve(both)
	if err != nil {
		return err
	}
	roots := map[ident.Table]ident.Table{}
	for _, t := range both {
		if t.Root != nil {
			roots[t.Table] = *t.Root
		}
	}
	keep := func(sc objScope) bool {
		switch {
		case sc.table.Name != "":
			t, ok := roots[sc.table]
			if !ok {
				t = sc.table
			}
			return f.MatchName(t.Schema, t.Name)
		case sc.schema != "":
			return f.MatchSchema(sc.schema)
		}
		return true
	}
	for kind := range src.cat {
		for name := range src.cat[kind] {
			if !keep(src.scopes[kind][name]) {
				delete(src.cat[kind], name)
				delete(dst.cat[kind], name)
			}
		}
	}
	for kind := range dst.cat {
		for name := range dst.cat[kind] {
			if _, ok := src.scopes[kind][name]; !ok && !keep(dst.scopes[kind][name]) {
				delete(dst.cat[kind], name)
			}
		}
	}
	return nil
}

// preDataOnly leaves out of cat what pg_dump writes after the data: indexes, triggers, and the
// PRIMARY KEY, UNIQUE, EXCLUDE and FOREIGN KEY constraints (CHECK and NOT NULL stay).
func preDataOnly(cat Catalog) {
	delete(cat, "index")
	delete(cat, "trigger")
	for name, def := range cat["constraint"] {
		for _, p := range []string{"PRIMARY KEY", "UNIQUE", "EXCLUDE", "FOREIGN KEY"} {
			if strings.HasPrefix(def, p) {
				delete(cat["constraint"], name)
			}
		}
	}
}
