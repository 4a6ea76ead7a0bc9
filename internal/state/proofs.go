package state

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Proof is where pgverify proved a table of the target equal to the source: every key not
// captured after Position holds the same row on both sides for as long as only pgdelta writes
// the target (docs/verify.md, "Changes since the proof").
type Proof struct {
	Table      string
	Position   string  // snapshot text: the meet of the source's read snapshot and the target's applied position
	AgeSeconds float64 // target clock: now() - verified_at
}

// proofsDDL: verify_proofs holds one row per table, replaced by each verify that finds it equal
// and deleted by one that finds it different.
const proofsDDL = `CREATE TABLE IF NOT EXISTS %s.verify_proofs (
  table_name  text        PRIMARY KEY,  -- unquoted schema.table
  position    text        NOT NULL,     -- txid snapshot text on the source's txid axis
  verified_at timestamptz NOT NULL DEFAULT now()
)`

// WriteProofs records, in one transaction, a proof at pos for the tables in same and removes the
// proofs of the tables in differ. It creates the state schema and table if missing.
func WriteProofs(ctx context.Context, conn *pgx.Conn, schema, pos string, same, differ []string) error {
	if err := Ensure(ctx, conn, schema); err != nil {
		return err
	}
	qs := quoteSchema(schema)
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, fmt.Sprintf(proofsDDL, qs)); err != nil {
			return fmt.Errorf("create %s.verify_proofs: %w", schema, err)
		}
		if _, err := tx.Exec(ctx, fmt.Sprintf(`INSERT INTO %s.verify_proofs AS p (table_name, position)
SELECT unnest($1::text[]), $2 ON CONFLICT (table_name) DO UPDATE SET position = EXCLUDED.position, verified_at = now()`, qs), same, pos); err != nil {
			return fmt.Errorf("record verify proofs: %w", err)
		}
		if _, err := tx.Exec(ctx, fmt.Sprintf(`DELETE FROM %s.verify_proofs WHERE table_name = ANY($1::text[])`, qs), differ); err != nil {
			return fmt.Errorf("remove verify proofs: %w", err)
		}
		return nil
	})
}

// ProofReader is what ReadProofs needs: a *pgx.Conn or a pgx.Tx.
type ProofReader interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// ReadProofs returns the recorded proofs by table name (none when the table does not exist).
func ReadProofs(ctx context.Context, q ProofReader, schema string) (map[string]Proof, error) {
	var exists bool
	if err := q.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", quoteSchema(schema)+".verify_proofs").Scan(&exists); err != nil {
		return nil, fmt.Errorf("read verify proofs: %w", err)
	}
	out := map[string]Proof{}
	if !exists {
		return out, nil
	}
	rows, err := q.Query(ctx, fmt.Sprintf(`SELECT table_name, position, extract(epoch FROM now() - verified_at)::float8
FROM %s.verify_proofs`, quoteSchema(schema)))
	if err != nil {
		return nil, fmt.Errorf("read verify proofs: %w", err)
	}
	var p Proof
	_, err = pgx.ForEachRow(rows, []any{&p.Table, &p.Position, &p.AgeSeconds}, func() error {
		out[p.Table] = p
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read verify proofs: %w", err)
	}
	return out, nil
}
