package catchup

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/ident"
	"github.com/pgferry/pgferry/internal/state"
)

// Position is where catch-up stands and where that fact comes from.
type Position struct {
	Position string `json:"position"`
	Origin   string `json:"origin"` // "apply", "copy", "mark", "capture" or "" when unknown
}

// ErrNoPosition means the target records neither an applied batch nor a copy.
var ErrNoPosition = errors.New("the target records no applied batch and no copy")

// TargetPosition returns the target's apply position, else the copy's (the meet of every chunk's
// snapshot), else an empty Position.
func TargetPosition(ctx context.Context, q state.Queryer, stateSchema string) (Position, error) {
	a, ok, err := state.ReadApply(ctx, q, stateSchema)
	if err != nil {
		return Position{}, err
	}
	if ok {
		return Position{Position: a.Position, Origin: "apply"}, nil
	}
	pos, err := CopyPosition(ctx, q, stateSchema)
	if err != nil || pos == "" {
		return Position{}, err
	}
	return Position{Position: pos, Origin: "copy"}, nil
}

// CopyPosition returns the meet of the snapshots the copy's chunks were read under ("" when none).
func CopyPosition(ctx context.Context, q state.Queryer, stateSchema string) (string, error) {
	var snaps []string
	var exists bool
	if err := q.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", ident.Quote(OrDefault(stateSchema))+".copy_chunks").Scan(&exists); err != nil {
		return "", fmt.Errorf("read copy position: %w", err)
	}
	if !exists {
		return "", nil
	}
	if err := q.QueryRow(ctx, fmt.Sprintf(`SELECT coalesce(array_agg(DISTINCT snapshot), '{}') FROM %s.copy_chunks`, ident.Quote(OrDefault(stateSchema)))).Scan(&snaps); err != nil {
		return "", fmt.Errorf("read copy position: %w", err)
	}
	if len(snaps) == 0 {
		return "", nil
	}
	var ss []Snapshot
	for _, s := range snaps {
		p, err := ParseSnapshot(s)
		if err != nil {
			return "", fmt.Errorf("copy_chunks: %w", err)
		}
		ss = append(ss, p)
	}
	return Meet(ss...).String(), nil
}

// ForkPosition returns the newest mark in the fork's capture schema, else the capture start
// (the meet of every table's install snapshot).
func ForkPosition(ctx context.Context, fork *pgx.Conn, captureSchema string) (Position, error) {
	cs := ident.Quote(OrDefault(captureSchema))
	var hasMarks, hasTables bool
	if err := fork.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL, to_regclass($2) IS NOT NULL", cs+".marks", cs+".capture_tables").Scan(&hasMarks, &hasTables); err != nil {
		return Position{}, fmt.Errorf("read capture schema: %w", err)
	}
	if hasMarks {
		var snap string
		err := fork.QueryRow(ctx, "SELECT snapshot FROM "+cs+".marks ORDER BY id DESC LIMIT 1").Scan(&snap)
		if err == nil {
			if _, err := ParseSnapshot(snap); err != nil {
				return Position{}, fmt.Errorf("mark: %w", err)
			}
			return Position{Position: snap, Origin: "mark"}, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return Position{}, fmt.Errorf("read marks: %w", err)
		}
	}
	if !hasTables {
		return Position{}, fmt.Errorf("no capture schema %s on the fork: install capture (pgtrig install) on the primary before forking", OrDefault(captureSchema))
	}
	var snaps []string
	if err := fork.QueryRow(ctx, "SELECT coalesce(array_agg(DISTINCT installed_snapshot), '{}') FROM "+cs+".capture_tables").Scan(&snaps); err != nil {
		return Position{}, fmt.Errorf("read capture start: %w", err)
	}
	if len(snaps) == 0 {
		return Position{}, errors.New("capture schema on the fork lists no tables")
	}
	var ss []Snapshot
	for _, s := range snaps {
		p, err := ParseSnapshot(s)
		if err != nil {
			return Position{}, fmt.Errorf("capture_tables: %w", err)
		}
		ss = append(ss, p)
	}
	return Position{Position: Meet(ss...).String(), Origin: "capture"}, nil
}

// OrDefault is the schema name s, or pgferry's default when s is empty.
func OrDefault(s string) string {
	if s == "" {
		return state.DefaultSchema
	}
	return s
}
