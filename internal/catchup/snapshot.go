// Package catchup holds what several tools know about catch-up: txid snapshots, the target's
// position, and the source's registry of targets (written by pgcopyout and pgdelta).
package catchup

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Snapshot is a parsed txid_snapshot text form "xmin:xmax:xip1,xip2": a position in the delta stream.
type Snapshot struct {
	Xmin, Xmax uint64
	Xip        []uint64 // sorted
}

// ParseSnapshot parses a txid_current_snapshot()::text value.
func ParseSnapshot(s string) (Snapshot, error) {
	parts := strings.Split(strings.TrimSpace(s), ":")
	if len(parts) != 3 {
		return Snapshot{}, fmt.Errorf("bad position %q: want xmin:xmax:xip-list as printed by txid_current_snapshot()", s)
	}
	var sn Snapshot
	var err error
	if sn.Xmin, err = strconv.ParseUint(parts[0], 10, 64); err != nil {
		return Snapshot{}, fmt.Errorf("bad position %q: xmin: %w", s, err)
	}
	if sn.Xmax, err = strconv.ParseUint(parts[1], 10, 64); err != nil {
		return Snapshot{}, fmt.Errorf("bad position %q: xmax: %w", s, err)
	}
	if sn.Xmin > sn.Xmax {
		return Snapshot{}, fmt.Errorf("bad position %q: xmin after xmax", s)
	}
	if parts[2] != "" {
		for _, x := range strings.Split(parts[2], ",") {
			v, err := strconv.ParseUint(x, 10, 64)
			if err != nil {
				return Snapshot{}, fmt.Errorf("bad position %q: in-progress list: %w", s, err)
			}
			if v < sn.Xmin || v >= sn.Xmax {
				return Snapshot{}, fmt.Errorf("bad position %q: in-progress txid %d outside [xmin, xmax)", s, v)
			}
			sn.Xip = append(sn.Xip, v)
		}
		sort.Slice(sn.Xip, func(i, j int) bool { return sn.Xip[i] < sn.Xip[j] })
	}
	return sn, nil
}

// String returns the snapshot's text form.
func (s Snapshot) String() string {
	var b strings.Builder
	b.WriteString(strconv.FormatUint(s.Xmin, 10))
	b.WriteByte(':')
	b.WriteString(strconv.FormatUint(s.Xmax, 10))
	b.WriteByte(':')
	for i, x := range s.Xip {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(x, 10))
	}
	return b.String()
}

// Visible reports whether transaction txid had committed (or aborted) as seen by the snapshot,
// as txid_visible_in_snapshot does.
func (s Snapshot) Visible(txid uint64) bool {
	if txid < s.Xmin {
		return true
	}
	if txid >= s.Xmax {
		return false
	}
	i := sort.Search(len(s.Xip), func(i int) bool { return s.Xip[i] >= txid })
	return !(i < len(s.Xip) && s.Xip[i] == txid)
}

// Covers reports whether every transaction visible in p is visible in s too: a target standing
// at s has everything a batch starting at p assumes.
func (s Snapshot) Covers(p Snapshot) bool {
	for _, x := range s.Xip {
		if p.Visible(x) {
			return false
		}
	}
	if p.Xmax <= s.Xmax {
		return true
	}
	// txids in [s.Xmax, p.Xmax) are invisible to s; all of them must be in progress in p.
	n := uint64(0)
	for _, x := range p.Xip {
		if x >= s.Xmax {
			n++
		}
	}
	return n == p.Xmax-max(s.Xmax, p.Xmin) && s.Xmax >= p.Xmin
}

// Equal reports whether two snapshots are the same.
func (s Snapshot) Equal(o Snapshot) bool { return s.String() == o.String() }

// Meet returns the newest snapshot whose visible transactions are visible in every one of ss:
// the safe starting position when chunks were copied under several snapshots.
func Meet(ss ...Snapshot) Snapshot {
	if len(ss) == 0 {
		return Snapshot{}
	}
	m := Snapshot{Xmin: ss[0].Xmin, Xmax: ss[0].Xmax}
	for _, s := range ss[1:] {
		m.Xmin = min(m.Xmin, s.Xmin)
		m.Xmax = min(m.Xmax, s.Xmax)
	}
	seen := map[uint64]bool{}
	for _, s := range ss {
		for _, x := range s.Xip {
			if x >= m.Xmin && x < m.Xmax && !seen[x] {
				seen[x] = true
				m.Xip = append(m.Xip, x)
			}
		}
	}
	// txids in [m.Xmin, s.Xmin) are visible in s; those in [s.Xmax, m.Xmax) cannot occur (m.Xmax <= s.Xmax).
	sortU64(m.Xip)
	return m
}

func sortU64(x []uint64) { sort.Slice(x, func(i, j int) bool { return x[i] < x[j] }) }
