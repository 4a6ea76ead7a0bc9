package lobj

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
)

// copyBig moves one object bigger than Chunk piece by piece: the source is read in one
// REPEATABLE READ transaction (every piece from the same snapshot) and the target written in
// one transaction, so only one piece is in memory and the target never holds half an object.
func (s *syncer) copyBig(ctx context.Context, c *conns, d Difference) error {
	src, err := c.src.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("read large object %d on the source: %w", d.OID, err)
	}
	defer src.Rollback(context.Background())
	var exists bool
	if err := src.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_largeobject_metadata WHERE oid = $1)", d.OID).Scan(&exists); err != nil {
		return fmt.Errorf("read large object %d on the source: %w", d.OID, err)
	}
	what := fmt.Sprintf("large object %d", d.OID)
	if !exists { // unlinked on the source since it was listed
		b := &pgx.Batch{}
		b.Queue(unlinkSQL, d.OID)
		if err := s.write(ctx, c.dst, what, b); err != nil {
			return err
		}
		if d.dst != nil {
			s.count(0, 0, 1, 0, 0, 1)
		}
		return nil
	}
	var bytes int64
	err = pgx.BeginFunc(ctx, c.dst, func(dst pgx.Tx) error {
		if _, err := dst.Exec(ctx, unlinkSQL, d.OID); err != nil {
			return err
		}
		if _, err := dst.Exec(ctx, "SELECT lo_create($1)", d.OID); err != nil {
			return err
		}
		for off := int64(0); ; off += Chunk {
			var piece []byte
			if err := src.QueryRow(ctx, "SELECT lo_get($1, $2, $3)", d.OID, off, Chunk).Scan(&piece); err != nil {
				return fmt.Errorf("read on the source at offset %d: %w", off, err)
			}
			if len(piece) > 0 {
				if _, err := dst.Exec(ctx, "SELECT lo_put($1, $2, $3)", d.OID, off, piece); err != nil {
					return err
				}
				bytes += int64(len(piece))
				if p := s.cfg.Progress; p != nil {
					p.Add(Table, 0, int64(len(piece)))
				}
			}
			if len(piece) < Chunk {
				break
			}
		}
		for _, q := range s.metaSQL(d.src, nil) {
			if _, err := dst.Exec(ctx, q); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return targetError(what, err)
	}
	if d.dst != nil {
		s.count(0, 1, 0, 0, 0, 1)
	} else {
		s.count(1, 0, 0, 0, 0, 1)
	}
	atomic.AddInt64(&s.sum.Bytes, bytes) // the progress counted each piece as it went
	return nil
}
