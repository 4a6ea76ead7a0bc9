package catchup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgferry/pgferry/internal/dbconn"
	"github.com/pgferry/pgferry/internal/ident"
	"github.com/pgferry/pgferry/internal/state"
)

// The source's registry of targets (docs/delta-format.md, "Several targets"): every target that
// follows the source has a row with the position it has confirmed, and pruning deletes only the
// changes visible in the meet of those positions, so no target loses a change another one pruned.
// prune_horizon is the newest position pruning has reached: a reader whose position does not
// hold everything visible in it has lost changes and must stop. Both live in the capture schema.
const registryDDL = `CREATE TABLE IF NOT EXISTS %[1]s.targets (
  target_id     text        PRIMARY KEY,  -- random id kept in the target's state schema (target_id)
  target        text        NOT NULL,     -- where the target is, without password, for people
  position      text        NOT NULL,     -- confirmed position: pruning never removes what it lacks
  registered_at timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS %[1]s.prune_horizon (
  id         integer     PRIMARY KEY DEFAULT 1 CHECK (id = 1),
  position   text,                        -- everything visible in it may have been pruned
  updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO %[1]s.prune_horizon (id) VALUES (1) ON CONFLICT (id) DO NOTHING`

// Registration is one target's row in the source's registry.
type Registration struct {
	ID           string    `json:"target_id"`
	Where        string    `json:"target"`
	Position     string    `json:"position"`
	RegisteredAt time.Time `json:"registered_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// PrunedError says changes a reader needs were pruned: its position lacks transactions visible
// in the prune horizon (another target's pruning passed it before it was registered).
type PrunedError struct{ Position, Horizon string }

func (e *PrunedError) Error() string {
	return fmt.Sprintf("read changes after %s: the source's delta tables were already pruned up to %s (for another target), so changes in between are gone", e.Position, e.Horizon)
}

// PrunedHint says how to recover from a PrunedError.
const PrunedHint = "copy this target again: 'pgcopyout --target' registers it on the source before its snapshot, so pruning waits for it (see 'pgdelta targets')"

// ensureRegistry creates the registry tables in the capture schema if missing.
func ensureRegistry(ctx context.Context, src *pgx.Conn, captureSchema string) error {
	sql := fmt.Sprintf(registryDDL, ident.Quote(OrDefault(captureSchema)))
	var err error
	for i := 0; i < 3; i++ { // a concurrent CREATE ... IF NOT EXISTS may race us: the loser retries
		if _, err = src.Exec(ctx, sql); err == nil || !strings.Contains(err.Error(), "duplicate key") {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("create target registry in %s on source: %w", OrDefault(captureSchema), err)
	}
	return nil
}

// lockHorizon reads the prune horizon ("" when nothing was pruned yet) and locks it for tx.
func lockHorizon(ctx context.Context, tx pgx.Tx, cs string) (string, error) {
	var h *string
	if err := tx.QueryRow(ctx, "SELECT position FROM "+cs+".prune_horizon WHERE id = 1 FOR UPDATE").Scan(&h); err != nil {
		return "", fmt.Errorf("lock prune horizon: %w", err)
	}
	if h == nil {
		return "", nil
	}
	return *h, nil
}

// Holds returns a *PrunedError unless pos holds every change visible in horizon.
func Holds(pos, horizon string) error {
	if horizon == "" {
		return nil
	}
	p, err := ParseSnapshot(pos)
	if err != nil {
		return err
	}
	h, err := ParseSnapshot(horizon)
	if err != nil {
		return fmt.Errorf("prune horizon: %w", err)
	}
	if !p.Covers(h) {
		return &PrunedError{Position: pos, Horizon: horizon}
	}
	return nil
}

// RegisterTarget records reg's position in the registry, refusing (*PrunedError) a position
// that pruning has already passed.
func RegisterTarget(ctx context.Context, src *pgx.Conn, captureSchema string, reg Registration) error {
	if err := ensureRegistry(ctx, src, captureSchema); err != nil {
		return err
	}
	cs := ident.Quote(OrDefault(captureSchema))
	return pgx.BeginFunc(ctx, src, func(tx pgx.Tx) error {
		h, err := lockHorizon(ctx, tx, cs)
		if err != nil {
			return err
		}
		if err := Holds(reg.Position, h); err != nil {
			return err
		}
		return upsertTarget(ctx, tx, cs, reg)
	})
}

func upsertTarget(ctx context.Context, tx pgx.Tx, cs string, reg Registration) error {
	_, err := tx.Exec(ctx, `INSERT INTO `+cs+`.targets AS t (target_id, target, position) VALUES ($1, $2, $3)
ON CONFLICT (target_id) DO UPDATE SET target = EXCLUDED.target, position = EXCLUDED.position, updated_at = now()`, reg.ID, reg.Where, reg.Position)
	if err != nil {
		return fmt.Errorf("register target on source: %w", err)
	}
	return nil
}

// RegisterCopy registers a target whose copy is about to start, at the source's current
// position (taken under the horizon lock, so it holds everything pruned), unless it is
// registered already; it returns the registered position. Take the copy's snapshot after it.
func RegisterCopy(ctx context.Context, src *pgx.Conn, captureSchema, id, where string) (string, error) {
	if err := ensureRegistry(ctx, src, captureSchema); err != nil {
		return "", err
	}
	cs := ident.Quote(OrDefault(captureSchema))
	var pos string
	err := pgx.BeginFunc(ctx, src, func(tx pgx.Tx) error {
		if _, err := lockHorizon(ctx, tx, cs); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+cs+`.targets (target_id, target, position) VALUES ($1, $2, txid_current_snapshot()::text)
ON CONFLICT (target_id) DO NOTHING`, id, where); err != nil {
			return fmt.Errorf("register target on source: %w", err)
		}
		return tx.QueryRow(ctx, "SELECT position FROM "+cs+".targets WHERE target_id = $1", id).Scan(&pos)
	})
	return pos, err
}

// Advance moves reg's row to reg.Position and returns the position pruning may reach: the meet
// of every registered target's position, which becomes the new horizon.
func Advance(ctx context.Context, src *pgx.Conn, cs string, reg Registration) (string, error) {
	var meet string
	err := pgx.BeginFunc(ctx, src, func(tx pgx.Tx) error {
		h, err := lockHorizon(ctx, tx, cs)
		if err != nil {
			return err
		}
		if err := Holds(reg.Position, h); err != nil {
			return err
		}
		if err := upsertTarget(ctx, tx, cs, reg); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, "SELECT position FROM "+cs+".targets")
		if err != nil {
			return fmt.Errorf("read registered targets: %w", err)
		}
		positions, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("read registered targets: %w", err)
		}
		m, err := meetOf(positions)
		if err != nil {
			return err
		}
		meet = m.String()
		if Holds(meet, h) != nil {
			return nil // a target behind the horizon (it has lost changes): prune nothing new
		}
		_, err = tx.Exec(ctx, "UPDATE "+cs+".prune_horizon SET position = $1, updated_at = now() WHERE id = 1", meet)
		return err
	})
	if err != nil {
		return "", err
	}
	return meet, nil
}

func meetOf(positions []string) (Snapshot, error) {
	ss := make([]Snapshot, 0, len(positions))
	for _, p := range positions {
		s, err := ParseSnapshot(p)
		if err != nil {
			return Snapshot{}, fmt.Errorf("registered target: %w", err)
		}
		ss = append(ss, s)
	}
	return Meet(ss...), nil
}

func quotedCS(captureSchema string) string { return ident.Quote(OrDefault(captureSchema)) }

// ListTargets returns the registered targets (oldest registration first) and the prune horizon.
func ListTargets(ctx context.Context, src *pgx.Conn, captureSchema string) ([]Registration, string, error) {
	cs := ident.Quote(OrDefault(captureSchema))
	var exists bool
	if err := src.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", cs+".targets").Scan(&exists); err != nil || !exists {
		return nil, "", err
	}
	var horizon *string
	if err := src.QueryRow(ctx, "SELECT (SELECT position FROM "+cs+".prune_horizon WHERE id = 1)").Scan(&horizon); err != nil {
		return nil, "", fmt.Errorf("read prune horizon: %w", err)
	}
	rows, err := src.Query(ctx, "SELECT target_id, target, position, registered_at, updated_at FROM "+cs+".targets ORDER BY registered_at, target_id")
	if err != nil {
		return nil, "", fmt.Errorf("read registered targets: %w", err)
	}
	regs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Registration, error) {
		var g Registration
		err := r.Scan(&g.ID, &g.Where, &g.Position, &g.RegisteredAt, &g.UpdatedAt)
		return g, err
	})
	if err != nil {
		return nil, "", fmt.Errorf("read registered targets: %w", err)
	}
	if horizon == nil {
		return regs, "", nil
	}
	return regs, *horizon, nil
}

// ForgetTarget removes a target's registration, so pruning no longer waits for it; it reports
// whether there was one.
func ForgetTarget(ctx context.Context, src *pgx.Conn, captureSchema, id string) (bool, error) {
	cs := ident.Quote(OrDefault(captureSchema))
	var exists bool
	if err := src.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", cs+".targets").Scan(&exists); err != nil || !exists {
		return false, err
	}
	tag, err := src.Exec(ctx, "DELETE FROM "+cs+".targets WHERE target_id = $1", id)
	if err != nil {
		return false, fmt.Errorf("forget target: %w", err)
	}
	return tag.RowsAffected() > 0, nil
}

// CannotRegister reports whether err means the registry may not be written here (a read-only
// source or session, or too few privileges): pgdelta then runs without pruning.
func CannotRegister(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "25006" || pe.Code == "42501")
}

// RegisterCopyTarget registers the target dst on src before a copy's snapshot is taken (see
// RegisterCopy), when src has capture installed; a source that may not be written (a standby, a
// read-only role) is only reported on log as tool. It returns the registered position ("" when none).
func RegisterCopyTarget(ctx context.Context, src, dst *pgx.Conn, captureSchema, stateSchema, targetURL, tool string, log io.Writer) (string, error) {
	var captured bool
	if err := src.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", quotedCS(captureSchema)+".capture_tables").Scan(&captured); err != nil {
		return "", fmt.Errorf("look for capture on source: %w", err)
	}
	if !captured {
		return "", nil // the capture check refuses the copy
	}
	id, err := state.TargetID(ctx, dst, stateSchema)
	if err != nil {
		return "", err
	}
	pos, err := RegisterCopy(ctx, src, captureSchema, id, TargetWhere(targetURL, stateSchema))
	if CannotRegister(err) {
		fmt.Fprintf(log, "%s: cannot register the target on the source (%v): if another target prunes the source's delta tables meanwhile, this one's catch-up will stop and say so\n", tool, err)
		return "", nil
	}
	return pos, err
}

// TargetWhere describes a target for the registry: where it is and its state schema.
func TargetWhere(url, stateSchema string) string {
	return dbconn.Describe(url) + " (state schema " + OrDefault(stateSchema) + ")"
}
