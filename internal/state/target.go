package state

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// targetIDDDL keeps the random id that names this target (this state schema of this database)
// in the source's registry of targets, whatever URL later reaches it.
const targetIDDDL = `CREATE SCHEMA IF NOT EXISTS %[1]s;
CREATE TABLE IF NOT EXISTS %[1]s.target_id (
  id         integer     PRIMARY KEY DEFAULT 1 CHECK (id = 1),
  target_id  text        NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
)`

// TargetID returns this target's id, creating it on first use.
func TargetID(ctx context.Context, conn *pgx.Conn, schema string) (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("make target id: %w", err)
	}
	var err error
	for i := 0; i < 3; i++ { // a concurrent CREATE ... IF NOT EXISTS may race us: the loser retries
		_, err = conn.Exec(ctx, fmt.Sprintf(targetIDDDL, quoteSchema(schema)))
		if err == nil || !strings.Contains(err.Error(), "duplicate key") {
			break
		}
	}
	if err != nil {
		return "", fmt.Errorf("create %s.target_id on target: %w", orDefault(schema), err)
	}
	_, err = conn.Exec(ctx, "INSERT INTO "+quoteSchema(schema)+".target_id (target_id) VALUES ($1) ON CONFLICT (id) DO NOTHING", hex.EncodeToString(b[:]))
	if err != nil {
		return "", fmt.Errorf("store target id: %w", err)
	}
	id, _, err := ReadTargetID(ctx, conn, schema)
	return id, err
}

// ReadTargetID returns this target's id without creating it; ok is false when it has none yet.
func ReadTargetID(ctx context.Context, q Queryer, schema string) (id string, ok bool, err error) {
	var exists bool
	if err := q.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", quoteSchema(schema)+".target_id").Scan(&exists); err != nil {
		return "", false, fmt.Errorf("read target id: %w", err)
	}
	if !exists {
		return "", false, nil
	}
	err = q.QueryRow(ctx, "SELECT target_id FROM "+quoteSchema(schema)+".target_id WHERE id = 1").Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read target id: %w", err)
	}
	return id, true, nil
}

func orDefault(s string) string {
	if s == "" {
		return DefaultSchema
	}
	return s
}
