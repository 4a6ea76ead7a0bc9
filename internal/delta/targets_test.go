package delta

import (
	"context"
	"errors"
	"testing"

	"github.com/pgferry/pgferry/internal/capture"
	"github.com/pgferry/pgferry/internal/catchup"
	"github.com/pgferry/pgferry/internal/pgtest"
)

// TestRegistryPrunesToMeet: pruning stops at the meet of every registered target's position and
// moves the horizon there; a position pruning has passed is refused (registration and readers);
// forgetting the slow target releases pruning; a copy registers at a position holding the horizon.
func TestRegistryPrunesToMeet(t *testing.T) {
	src := pgtest.Source(t)
	ctx := context.Background()
	conn := connect(t, src.URL)
	if err := capture.EnsureSchema(ctx, conn, "pgferry"); err != nil {
		t.Fatal(err)
	}
	snap := func() string {
		t.Helper()
		var s string
		if _, err := conn.Exec(ctx, "SELECT txid_current()"); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRow(ctx, "SELECT txid_current_snapshot()::text").Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	p1, p2, p3 := snap(), snap(), snap()
	for _, r := range []catchup.Registration{{ID: "a", Where: "A", Position: p1}, {ID: "b", Where: "B", Position: p2}} {
		if err := catchup.RegisterTarget(ctx, conn, "pgferry", r); err != nil {
			t.Fatal(err)
		}
	}
	if _, pruned, err := PruneFor(ctx, conn, "pgferry", catchup.Registration{ID: "a", Where: "A", Position: p3}); err != nil || pruned != p2 {
		t.Fatalf("prune with b at %s and a at %s: pruned to %q (%v), want b's position", p2, p3, pruned, err)
	}
	var pe *catchup.PrunedError
	if err := catchup.RegisterTarget(ctx, conn, "pgferry", catchup.Registration{ID: "c", Where: "C", Position: p1}); !errors.As(err, &pe) || pe.Horizon != p2 {
		_, h, _ := catchup.ListTargets(ctx, conn, "pgferry")
		t.Fatalf("registering at %s behind the horizon %s (%s, %s): %v", p1, h, p2, p3, err)
	}
	if err := CheckHorizon(ctx, conn, "pgferry", p1); !errors.As(err, &pe) {
		t.Fatalf("a reader at %s behind the horizon %s: %v", p1, p2, err)
	}
	if err := CheckHorizon(ctx, conn, "pgferry", p3); err != nil {
		t.Fatalf("a reader at %s: %v", p3, err)
	}
	regs, horizon, err := catchup.ListTargets(ctx, conn, "pgferry")
	if err != nil || len(regs) != 2 || horizon != p2 {
		t.Fatalf("list: %+v %q %v", regs, horizon, err)
	}
	if ok, err := catchup.ForgetTarget(ctx, conn, "pgferry", "b"); !ok || err != nil {
		t.Fatalf("forget b: %v %v", ok, err)
	}
	if _, pruned, err := PruneFor(ctx, conn, "pgferry", catchup.Registration{ID: "a", Where: "A", Position: p3}); err != nil || pruned != p3 {
		t.Fatalf("prune with a alone: pruned to %q (%v), want %s", pruned, err, p3)
	}
	pos, err := catchup.RegisterCopy(ctx, conn, "pgferry", "d", "D")
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckHorizon(ctx, conn, "pgferry", pos); err != nil {
		t.Fatalf("a copy registered at %s does not hold the horizon: %v", pos, err)
	}
	if again, err := catchup.RegisterCopy(ctx, conn, "pgferry", "d", "D"); err != nil || again != pos {
		t.Fatalf("registering a copy again moved it: %s -> %s (%v)", pos, again, err)
	}
}
