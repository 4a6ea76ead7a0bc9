package lobj

import (
	"context"
	"fmt"
	"sort"
	"sync"
)

// Difference is one large object that is not the same on both sides.
type Difference struct {
	OID  uint32   `json:"oid"`
	Kind string   `json:"kind"`           // missing (on the source, not on the target), extra (on the target only), changed
	What []string `json:"what,omitempty"` // changed: data, owner and/or acl
	Note string   `json:"note,omitempty"` // e.g. "owner alice on the source, bob on the target"
	src  *Object
	dst  *Object
	size int64 // on the source (missing, changed data)
}

// Comparison is the state of the large objects of both sides.
type Comparison struct {
	SourceObjects int          `json:"source_objects"`
	TargetObjects int          `json:"target_objects"`
	SourceBytes   int64        `json:"source_bytes"`
	Diffs         []Difference `json:"diffs,omitempty"`
	targetUser    string
	targetRoles   map[string]bool // roles of the target
	giveable      map[string]bool // roles the target user may give objects to
}

// Same reports whether both sides hold the same large objects.
func (c *Comparison) Same() bool { return len(c.Diffs) == 0 }

// Compare lists the large objects of both sides and hashes, on each server, those both hold.
// It fails with an *UnreadableError, before anything else, when the source role cannot read some.
func Compare(ctx context.Context, cfg Config) (*Comparison, error) {
	c, err := cfg.open(ctx)
	if err != nil {
		return nil, err
	}
	defer c.close(ctx)
	var srcRole string
	if err := c.src.QueryRow(ctx, "SELECT current_user").Scan(&srcRole); err != nil {
		return nil, fmt.Errorf("read source role: %w", err)
	}
	src, err := List(ctx, c.src)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	if err := checkReadable(srcRole, src); err != nil {
		return nil, err
	}
	dst, err := List(ctx, c.dst)
	if err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	cmp := &Comparison{SourceObjects: len(src), TargetObjects: len(dst)}
	if cmp.targetUser, cmp.targetRoles, cmp.giveable, err = targetRoles(ctx, c.dst); err != nil {
		return nil, err
	}
	sd, dd, err := cfg.hashBoth(ctx, src, dst)
	if err != nil {
		return nil, err
	}
	cmp.diff(src, dst, sd, dd)
	sort.Slice(cmp.Diffs, func(i, j int) bool { return cmp.Diffs[i].OID < cmp.Diffs[j].OID })
	return cmp, nil
}

// hashBoth hashes the objects both sides hold, on both, and sizes those only the source holds.
func (cfg Config) hashBoth(ctx context.Context, src, dst []Object) (sd, dd map[uint32]Digest, err error) {
	onDst := make(map[uint32]bool, len(dst))
	for _, o := range dst {
		onDst[o.OID] = true
	}
	var both, only []uint32
	for _, o := range src {
		if onDst[o.OID] {
			both = append(both, o.OID)
		} else {
			only = append(only, o.OID)
		}
	}
	jobs := append(batches(both, hashBatch, true), batches(only, hashBatch, false)...)
	sd, dd = map[uint32]Digest{}, map[uint32]Digest{}
	var mu sync.Mutex
	err = cfg.parallel(ctx, len(jobs), func(ctx context.Context, c *conns, i int) error {
		j := jobs[i]
		s, err := digests(ctx, c.src, j.oids, j.hash)
		if err != nil {
			return fmt.Errorf("source: %w", err)
		}
		var d map[uint32]Digest
		if j.hash {
			if d, err = digests(ctx, c.dst, j.oids, true); err != nil {
				return fmt.Errorf("target: %w", err)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		for k, v := range s {
			sd[k] = v
		}
		for k, v := range d {
			dd[k] = v
		}
		return nil
	})
	return sd, dd, err
}

type hashJob struct {
	oids []uint32
	hash bool
}

func batches(oids []uint32, n int, hash bool) []hashJob {
	var out []hashJob
	for len(oids) > 0 {
		k := min(n, len(oids))
		out = append(out, hashJob{oids: oids[:k], hash: hash})
		oids = oids[k:]
	}
	return out
}

// diff fills c.Diffs from both lists and digests, by oid. An object unlinked while it was being
// hashed counts as absent from that side.
func (c *Comparison) diff(src, dst []Object, sd, dd map[uint32]Digest) {
	byOID := make(map[uint32]*Object, len(dst))
	for i := range dst {
		byOID[dst[i].OID] = &dst[i]
	}
	seen := map[uint32]bool{}
	for i := range src {
		s := &src[i]
		sdig, onSrc := sd[s.OID]
		if !onSrc {
			continue // unlinked on the source meanwhile: any target copy is extra, below
		}
		seen[s.OID] = true
		c.SourceBytes += sdig.Size
		t := byOID[s.OID]
		ddig, onDst := dd[s.OID]
		if t == nil || !onDst {
			c.Diffs = append(c.Diffs, Difference{OID: s.OID, Kind: "missing", src: s, size: sdig.Size})
			continue
		}
		if d, ok := changed(s, t, sdig, ddig); ok {
			c.Diffs = append(c.Diffs, d)
		}
	}
	for i := range dst {
		if t := &dst[i]; !seen[t.OID] {
			c.Diffs = append(c.Diffs, Difference{OID: t.OID, Kind: "extra", dst: t})
		}
	}
}

// changed compares one object held by both sides.
func changed(s, t *Object, sdig, ddig Digest) (Difference, bool) {
	d := Difference{OID: s.OID, Kind: "changed", src: s, dst: t, size: sdig.Size}
	var notes []string
	if sdig != ddig {
		d.What = append(d.What, "data")
		notes = append(notes, fmt.Sprintf("%d bytes on the source, %d on the target", sdig.Size, ddig.Size))
	}
	if s.Owner != t.Owner {
		d.What = append(d.What, "owner")
		notes = append(notes, fmt.Sprintf("owner %s on the source, %s on the target", s.Owner, t.Owner))
	}
	if s.ACLText() != t.ACLText() {
		d.What = append(d.What, "acl")
		notes = append(notes, fmt.Sprintf("acl {%s} on the source, {%s} on the target", s.ACLText(), t.ACLText()))
	}
	for i, n := range notes {
		if i > 0 {
			d.Note += "; "
		}
		d.Note += n
	}
	return d, len(d.What) > 0
}
