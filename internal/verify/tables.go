package verify

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/catalog"
)

// pair is one table to compare: its description on both sides, or why it cannot be compared.
type pair struct {
	Name      string         // unquoted schema.table
	Src, Dst  *catalog.Table // nil when missing on that side
	Cols      []catalog.Column
	Key       []catalog.Column
	Only      bool   // read with FROM ONLY (inheritance parent)
	Reason    string // not comparable: why
	EstRows   int64
	KeyIsInts bool // single integer key column: split by key range
	NoKey     bool // comparable only as a whole (a multiset of rows), not key by key
	Binary    bool // client hash: read with binary COPY (every column's binary form is server-independent)
}

// listPairs lists the selected tables of both sides and matches them by name.
// Partitions are skipped: their root covers them.
func listPairs(ctx context.Context, src, dst *pgx.Conn, cfg Config) ([]*pair, error) {
	st, err := catalog.ListTables(ctx, src, cfg.SkipSchemas...)
	if err != nil {
		return nil, fmt.Errorf("read source tables: %w", err)
	}
	dt, err := catalog.ListTables(ctx, dst, cfg.SkipSchemas...)
	if err != nil {
		return nil, fmt.Errorf("read target tables: %w", err)
	}
	// The patterns must match a table of either side; a partition named by -t selects its root.
	f, err := cfg.Filter.Resolve(append(st[:len(st):len(st)], dt...))
	if err != nil {
		return nil, err
	}
	by := map[string]*pair{}
	for _, t := range st {
		if t.Partition || !f.Match(t) {
			continue
		}
		by[t.Key()] = &pair{Name: t.Key(), Src: t}
	}
	for _, t := range dt {
		if t.Partition || !f.Match(t) {
			continue
		}
		p := by[t.Key()]
		if p == nil {
			p = &pair{Name: t.Key()}
			by[t.Key()] = p
		}
		p.Dst = t
	}
	var out []*pair
	for _, p := range by {
		p.check()
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// check fills in the columns and key, or the reason the table cannot be compared.
func (p *pair) check() {
	switch {
	case p.Src == nil:
		p.Reason = "table exists only on the target"
		return
	case p.Dst == nil:
		p.Reason = "table missing on the target"
		return
	}
	p.EstRows = max(p.Src.EstRows, p.Dst.EstRows, p.Src.Bytes/128, p.Dst.Bytes/128)
	p.Only = p.Src.Inherited || p.Dst.Inherited
	dcols := map[string]catalog.Column{}
	for _, c := range p.Dst.Columns {
		dcols[c.Name] = c
	}
	var problems []string
	scols := map[string]catalog.Column{}
	for _, c := range p.Src.Columns {
		scols[c.Name] = c
		d, ok := dcols[c.Name]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("column %q missing on the target", c.Name))
		case d.Type != c.Type:
			problems = append(problems, fmt.Sprintf("column %q is %s on the source but %s on the target", c.Name, c.Type, d.Type))
		}
	}
	for _, c := range p.Dst.Columns {
		if _, ok := scols[c.Name]; !ok {
			problems = append(problems, fmt.Sprintf("column %q exists only on the target", c.Name))
		}
	}
	if len(problems) > 0 {
		p.Reason = "schema mismatch: " + strings.Join(problems, "; ")
		return
	}
	p.Cols = p.Src.Columns
	if len(p.Src.KeyColumns) == 0 {
		p.NoKey = true // compared as a multiset of rows
		return
	}
	for _, k := range p.Src.KeyColumns {
		p.Key = append(p.Key, scols[k])
	}
	if len(p.Key) == 1 {
		switch p.Key[0].Type {
		case "integer", "bigint", "smallint":
			p.KeyIsInts = true
		}
	}
}

// from returns the FROM target for reading the table: ONLY for inheritance parents.
func (p *pair) from() string {
	if p.Only {
		return "ONLY " + p.Src.String()
	}
	return p.Src.String()
}

// fromAs is from with a table alias, for queries that must qualify the table's columns (a column
// may be named like any other name in the query).
func (p *pair) fromAs(alias string) string { return p.from() + " AS " + alias }

// table returns the side's description of the table (0 source, 1 target).
func (p *pair) table(si int) *catalog.Table {
	if si == 0 {
		return p.Src
	}
	return p.Dst
}
