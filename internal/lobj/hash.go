package lobj

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// hashBatch is how many objects one hashing statement covers.
const hashBatch = 256

// Digest is the size and content hash of one large object, computed on its server.
type Digest struct {
	Size int64
	MD5  string // md5 of the data up to Chunk bytes; beyond, "c:" + md5 of the md5s of its Chunk-sized pieces
}

// digestSQL sizes (and with $2 hashes) the objects of $1 that exist. The existence check,
// lo_open and lo_get share the statement's snapshot, so an object unlinked meanwhile is simply
// absent from the result rather than an error; the check guards lo_open inside the LATERAL
// (a filter outside it may run after lo_open).
const digestSQL = `SELECT o, s.size, CASE WHEN $2 AND s.size <= $3 THEN md5(lo_get(o)) END
FROM unnest($1::oid[]) o, LATERAL (SELECT lo_lseek64(lo_open(o, $4), 0, 2) AS size
  WHERE EXISTS (SELECT 1 FROM pg_largeobject_metadata m WHERE m.oid = o)) s`

// chunkedSQL hashes one object piece by piece, so a multi-GB object never sits in memory whole.
const chunkedSQL = `SELECT max(s.size), 'c:' || md5(string_agg(md5(lo_get($1, off, $2::int)), '' ORDER BY off))
FROM (SELECT lo_lseek64(lo_open($1, $3), 0, 2) AS size
      WHERE EXISTS (SELECT 1 FROM pg_largeobject_metadata m WHERE m.oid = $1)) s,
  generate_series(0::bigint, s.size - 1, $4::bigint) off`

// digests returns the size (and with hash the content hash) of each object of oids that still
// exists, in one transaction (lo_open's descriptors live until it ends).
func digests(ctx context.Context, conn *pgx.Conn, oids []uint32, hash bool) (map[uint32]Digest, error) {
	out := make(map[uint32]Digest, len(oids))
	err := pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, digestSQL, oids, hash, Chunk, invRead)
		if err != nil {
			return err
		}
		var big []uint32
		for rows.Next() {
			var oid uint32
			var d Digest
			var sum *string
			if err := rows.Scan(&oid, &d.Size, &sum); err != nil {
				rows.Close()
				return err
			}
			if sum != nil {
				d.MD5 = *sum
			} else if hash {
				big = append(big, oid)
			}
			out[oid] = d
		}
		if err := rows.Err(); err != nil {
			return err
		}
		for _, oid := range big {
			var size *int64
			var sum *string
			if err := tx.QueryRow(ctx, chunkedSQL, oid, Chunk, invRead, int64(Chunk)).Scan(&size, &sum); err != nil {
				return fmt.Errorf("object %d: %w", oid, err)
			}
			if size == nil || sum == nil {
				delete(out, oid) // unlinked since the first statement
				continue
			}
			out[oid] = Digest{Size: *size, MD5: *sum}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("hash large objects: %w", err)
	}
	return out, nil
}
