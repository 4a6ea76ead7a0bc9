package verify

import (
	"context"
	"errors"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/catalog"
	"github.com/pgferry/pgferry/internal/dbconn"
	"github.com/pgferry/pgferry/internal/lobj"
)

// largeObjects compares the large objects of both sides, reported as a table named
// pg_largeobject keyed by oid: the set of oids, and per object its owner, ACL and md5 (computed
// by each server in 1 MB pieces). In count and quick modes only the numbers of objects are
// compared. nil when neither side has any, or with --no-large-objects.
func largeObjects(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.NoLargeObjects {
		return nil, nil
	}
	lc := lobj.Config{Source: loConnector(cfg.SourceURL, dbconn.Source), Target: loConnector(cfg.TargetURL, dbconn.Target), Workers: cfg.Jobs}
	var n [2]int64
	for i, open := range []func(context.Context) (*pgx.Conn, error){lc.Source, lc.Target} {
		c, err := open(ctx)
		if err != nil {
			return nil, err
		}
		n[i], err = lobj.Count(ctx, c)
		c.Close(context.Background())
		if err != nil {
			return nil, err
		}
	}
	if n[0] == 0 && n[1] == 0 {
		return nil, nil
	}
	r := &Result{Table: lobj.Table, Mode: cfg.Mode, SourceRows: &n[0], TargetRows: &n[1], Status: StatusSame,
		pair: &pair{Name: lobj.Table, Key: []catalog.Column{{Name: "oid", Type: "oid"}}}}
	if cfg.Mode == "count" || cfg.Mode == "quick" {
		if n[0] != n[1] {
			r.Status, r.Reason = StatusDiffer, "numbers of large objects differ"
		}
		return r, nil
	}
	if cfg.Mode == "changes" {
		r.Note = "large objects are not captured: compared in full"
	}
	cmp, err := lobj.Compare(ctx, lc)
	var ue *lobj.UnreadableError
	if errors.As(err, &ue) {
		r.Status, r.Reason = StatusError, ue.Error()+"; "+ue.Remedy()
		return r, nil
	}
	if err != nil {
		return nil, err
	}
	var ds []Diff
	for _, d := range cmp.Diffs {
		if len(ds) == cfg.MaxDiffs {
			r.Truncated = true
			break
		}
		ds = append(ds, Diff{Kind: d.Kind, Key: map[string]string{"oid": strconv.FormatUint(uint64(d.OID), 10)}, Columns: d.What})
	}
	r.setDiffs(ds)
	return r, nil
}

func loConnector(url string, r dbconn.Role) func(context.Context) (*pgx.Conn, error) {
	return func(ctx context.Context) (*pgx.Conn, error) {
		return dbconn.Connect(ctx, url, r, dbconn.Options{AppName: "pgferry-pgverify"})
	}
}
