package delta

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/pgferry/pgferry/internal/deltarec"
)

// ErrNoInput is the error of ApplyInput on an input without a single record.
var ErrNoInput = errors.New("no input: stdin held no delta records")

// ApplyInput reads JSON-lines records from r and applies them batch by batch. A bad line stops it
// with a *deltarec.LineError naming the line and table; the open batch is rolled back. An input
// without any record is ErrNoInput: its producer failed before writing anything.
func ApplyInput(ctx context.Context, a *Applier, r io.Reader) error {
	rd := deltarec.NewReader(r)
	for records := 0; ; records++ {
		rec, err := rd.Scan()
		if err == io.EOF && records == 0 {
			return ErrNoInput
		}
		if err == io.EOF {
			if a.InBatch() {
				a.Abort(ctx)
				return fmt.Errorf("input ended inside the batch to %s (line %d): nothing of that batch was committed; restart the stream from 'pgdelta position'", a.to, rd.Line())
			}
			return nil
		}
		if err != nil {
			a.Abort(ctx)
			return err
		}
		switch rec.Op {
		case deltarec.OpBegin:
			err = a.Begin(ctx, rec.From, rec.To, rec.At)
		case deltarec.OpUpsert:
			err = a.Upsert(ctx, rec.Table, rec.Cols, rec.Vals)
		case deltarec.OpDelete:
			err = a.Delete(ctx, rec.Table, rec.Cols, rec.Vals)
		case deltarec.OpRows:
			err = a.SetRows(ctx, rec.Table, rec.Cols, rec.Vals, rec.Count)
		case deltarec.OpTruncate:
			err = a.Truncate(ctx, rec.Table)
		case deltarec.OpDetachPartition, deltarec.OpDropPartition:
			err = a.RemovePartition(ctx, rec.Table, rec.Partition, rec.Op == deltarec.OpDropPartition)
		case deltarec.OpFlush:
			err = a.FlushPoint(ctx)
		case deltarec.OpCommit:
			rows := int64(-1)
			if rec.HasRows {
				rows = rec.Rows
			}
			err = a.Commit(ctx, rec.To, rows)
		}
		if err != nil {
			a.Abort(ctx)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			le := &deltarec.LineError{Line: rd.Line(), Table: rec.Table, Err: err}
			var de *DriftError
			if errors.As(err, &de) {
				le.Table, le.Err = de.Table, de.Err
			}
			return le
		}
	}
}
