package lobj

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Summary is what one sync did (the --json summary of pgdelta lo-sync).
type Summary struct {
	Objects   int      `json:"objects"`   // on the source
	Created   int64    `json:"created"`   // copied, absent from the target before
	Rewritten int64    `json:"rewritten"` // copied again, their data differed
	Removed   int64    `json:"removed"`   // unlinked on the target, the source has them no more
	Metadata  int64    `json:"metadata"`  // owner or ACL set, data the same
	Bytes     int64    `json:"bytes"`     // of data copied
	ElapsedS  float64  `json:"elapsed_s"`
	Warnings  []string `json:"warnings,omitempty"`
}

// Batches of small objects share one target transaction; bigger ones have one each.
const (
	batchObjects = 100
	batchBytes   = 8 << 20
	removeBatch  = 1000
)

type syncer struct {
	cfg   Config
	cmp   *Comparison
	notes roleNotes
	sum   Summary
}

// Sync makes the target's large objects equal to the source's: same oids, data, owners and ACLs.
// Each object (or batch of small ones) is copied in one target transaction, so an interrupted
// sync leaves whole objects and re-running converges.
func Sync(ctx context.Context, cfg Config) (Summary, error) {
	start := time.Now()
	cmp, err := Compare(ctx, cfg)
	if err != nil {
		return Summary{}, err
	}
	s := &syncer{cfg: cfg, cmp: cmp}
	s.sum.Objects = cmp.SourceObjects
	jobs := s.plan()
	var total int64
	for _, j := range jobs {
		total += j.bytes
	}
	if p := cfg.Progress; p != nil && len(jobs) > 0 {
		p.AddTable(Table, int64(len(cmp.Diffs)), total)
	}
	err = cfg.parallel(ctx, len(jobs), func(ctx context.Context, c *conns, i int) error {
		return s.run(ctx, c, jobs[i])
	})
	if p := cfg.Progress; p != nil && len(jobs) > 0 && err == nil {
		p.TableDone(Table)
	}
	s.sum.Warnings = s.notes.warnings(cmp.targetUser)
	if cfg.Warnings != nil {
		for _, w := range s.sum.Warnings {
			fmt.Fprintf(cfg.Warnings, "warning: %s\n", w)
		}
	}
	s.sum.ElapsedS = time.Since(start).Seconds()
	return s.sum, err
}

// job is one unit of work, done in one target transaction.
type job struct {
	copies  []Difference // missing or data changed: copied whole
	big     bool         // one object bigger than Chunk, moved piece by piece
	metas   []Difference // owner or ACL only
	removes []uint32
	bytes   int64
}

// plan groups the differences into jobs, big objects first so they start early.
func (s *syncer) plan() []job {
	var big, small, out []job
	var cur job
	var metas []Difference
	var removes []uint32
	flush := func() {
		if len(cur.copies) > 0 {
			small = append(small, cur)
		}
		cur = job{}
	}
	for _, d := range s.cmp.Diffs {
		switch {
		case d.Kind == "extra":
			removes = append(removes, d.OID)
		case d.Kind == "changed" && !hasData(d):
			metas = append(metas, d)
		case d.size > Chunk:
			big = append(big, job{copies: []Difference{d}, big: true, bytes: d.size})
		default:
			if len(cur.copies) >= batchObjects || cur.bytes+d.size > batchBytes {
				flush()
			}
			cur.copies = append(cur.copies, d)
			cur.bytes += d.size
		}
	}
	flush()
	out = append(big, small...)
	for len(metas) > 0 {
		n := min(len(metas), batchObjects)
		out = append(out, job{metas: metas[:n]})
		metas = metas[n:]
	}
	for len(removes) > 0 {
		n := min(len(removes), removeBatch)
		out = append(out, job{removes: removes[:n]})
		removes = removes[n:]
	}
	return out
}

func hasData(d Difference) bool {
	for _, w := range d.What {
		if w == "data" {
			return true
		}
	}
	return false
}

// run does one job and counts it.
func (s *syncer) run(ctx context.Context, c *conns, j job) error {
	if p := s.cfg.Progress; p != nil {
		p.Begin(Table)
		defer p.End(Table)
	}
	var err error
	switch {
	case j.big:
		err = s.copyBig(ctx, c, j.copies[0])
	case len(j.copies) > 0:
		err = s.copySmall(ctx, c, j.copies)
	case len(j.metas) > 0:
		err = s.fixMeta(ctx, c, j.metas)
	default:
		err = s.remove(ctx, c, j.removes)
	}
	return err
}

// unlinkSQL unlinks an object on the target if it is there.
const unlinkSQL = "SELECT lo_unlink(m.oid) FROM pg_largeobject_metadata m WHERE m.oid = $1"

// copySmall copies objects of at most a few MB in all, read in one source statement and
// written in one target transaction.
func (s *syncer) copySmall(ctx context.Context, c *conns, ds []Difference) error {
	oids := make([]uint32, len(ds))
	for i, d := range ds {
		oids[i] = d.OID
	}
	rows, err := c.src.Query(ctx, `SELECT o, lo_get(o) FROM unnest($1::oid[]) o
WHERE EXISTS (SELECT 1 FROM pg_largeobject_metadata m WHERE m.oid = o)`, oids)
	if err != nil {
		return fmt.Errorf("read large objects %d..%d on the source: %w", oids[0], oids[len(oids)-1], err)
	}
	data := map[uint32][]byte{}
	for rows.Next() {
		var oid uint32
		var b []byte
		if err := rows.Scan(&oid, &b); err != nil {
			rows.Close()
			return fmt.Errorf("read large objects on the source: %w", err)
		}
		data[oid] = b
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read large objects %d..%d on the source: %w", oids[0], oids[len(oids)-1], err)
	}
	b := &pgx.Batch{}
	var created, rewritten, removed, bytes int64
	for _, d := range ds {
		b.Queue(unlinkSQL, d.OID)
		buf, ok := data[d.OID]
		switch {
		case !ok && d.dst != nil:
			removed++ // unlinked on the source since it was listed
			continue
		case !ok:
			continue
		case d.dst != nil:
			rewritten++
		default:
			created++
		}
		b.Queue("SELECT lo_from_bytea($1, $2)", d.OID, buf)
		for _, q := range s.metaSQL(d.src, nil) {
			b.Queue(q)
		}
		bytes += int64(len(buf))
	}
	if err := s.write(ctx, c.dst, fmt.Sprintf("large objects %d..%d", oids[0], oids[len(oids)-1]), b); err != nil {
		return err
	}
	s.count(created, rewritten, removed, 0, bytes, int64(len(ds)))
	return nil
}

// write runs b in one target transaction.
func (s *syncer) write(ctx context.Context, dst *pgx.Conn, what string, b *pgx.Batch) error {
	err := pgx.BeginFunc(ctx, dst, func(tx pgx.Tx) error { return tx.SendBatch(ctx, b).Close() })
	if err != nil {
		return targetError(what, err)
	}
	return nil
}

// targetError explains a write the target refused.
func targetError(what string, err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42501" {
		return fmt.Errorf("write %s on the target: %w (the target role must be a member of each owner role to give objects to it: GRANT <owner> TO <target role>, or run as a superuser)", what, err)
	}
	return fmt.Errorf("write %s on the target: %w", what, err)
}

func (s *syncer) count(created, rewritten, removed, meta, bytes, objects int64) {
	atomic.AddInt64(&s.sum.Created, created)
	atomic.AddInt64(&s.sum.Rewritten, rewritten)
	atomic.AddInt64(&s.sum.Removed, removed)
	atomic.AddInt64(&s.sum.Metadata, meta)
	atomic.AddInt64(&s.sum.Bytes, bytes)
	if p := s.cfg.Progress; p != nil && (objects > 0 || bytes > 0) {
		p.Add(Table, objects, bytes)
	}
}

// fixMeta sets owners and ACLs of objects whose data is already the same.
func (s *syncer) fixMeta(ctx context.Context, c *conns, ds []Difference) error {
	b := &pgx.Batch{}
	for _, d := range ds {
		for _, q := range s.metaSQL(d.src, d.dst) {
			b.Queue(q)
		}
	}
	if b.Len() > 0 {
		if err := s.write(ctx, c.dst, fmt.Sprintf("owners and ACLs of large objects %d..%d", ds[0].OID, ds[len(ds)-1].OID), b); err != nil {
			return err
		}
	}
	s.count(0, 0, 0, int64(len(ds)), 0, int64(len(ds)))
	return nil
}

// remove unlinks objects on the target that the source no longer has.
func (s *syncer) remove(ctx context.Context, c *conns, oids []uint32) error {
	var n int64
	err := pgx.BeginFunc(ctx, c.dst, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT count(lo_unlink(m.oid)) FROM pg_largeobject_metadata m WHERE m.oid = ANY($1::oid[])`, oids).Scan(&n)
	})
	if err != nil {
		return targetError(fmt.Sprintf("unlink of large objects %d..%d", oids[0], oids[len(oids)-1]), err)
	}
	s.count(0, 0, n, 0, 0, int64(len(oids)))
	return nil
}
