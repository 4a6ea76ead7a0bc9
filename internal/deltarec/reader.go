package deltarec

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// MaxLine bounds one record's size (a row with very large values).
const MaxLine = 1 << 30

// LineError says which input line is bad and why.
type LineError struct {
	Line  int64
	Table string
	Err   error
}

func (e *LineError) Error() string {
	if e.Table != "" {
		return fmt.Sprintf("line %d (table %s): %v", e.Line, e.Table, e.Err)
	}
	return fmt.Sprintf("line %d: %v", e.Line, e.Err)
}
func (e *LineError) Unwrap() error { return e.Err }

// Reader reads and validates delta records line by line.
type Reader struct {
	r    *bufio.Reader
	line int64
	raw  Raw
}

// NewReader returns a Reader over r.
func NewReader(r io.Reader) *Reader { return &Reader{r: bufio.NewReaderSize(r, 256<<10)} }

// Line returns the number of the last line read (1-based).
func (r *Reader) Line() int64 { return r.line }

// Next returns the next record, io.EOF at a clean end, or a *LineError.
func (r *Reader) Next() (*Record, error) {
	raw, err := r.Scan()
	if err != nil {
		return nil, err
	}
	return raw.Record(), nil
}

// Scan decodes and validates the next record without maps, io.EOF at a clean end, or a
// *LineError. The Raw and its values stay valid only until the next call.
func (r *Reader) Scan() (*Raw, error) {
	for {
		b, err := r.readLine()
		if err != nil {
			return nil, err
		}
		b = bytes.TrimSpace(b)
		if len(b) == 0 {
			continue
		}
		if err := decode(b, &r.raw); err != nil {
			return nil, &LineError{Line: r.line, Err: fmt.Errorf("malformed record: %v", err)}
		}
		if err := ValidateRaw(&r.raw); err != nil {
			return nil, &LineError{Line: r.line, Table: r.raw.Table, Err: err}
		}
		return &r.raw, nil
	}
}

func (r *Reader) readLine() ([]byte, error) {
	var long []byte
	for {
		chunk, err := r.r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long = append(long, chunk...)
			if len(long) > MaxLine {
				return nil, &LineError{Line: r.line + 1, Err: fmt.Errorf("line longer than %d bytes", MaxLine)}
			}
			continue
		}
		if err == io.EOF {
			if len(chunk) == 0 && len(long) == 0 {
				return nil, io.EOF
			}
			r.line++
			return nil, &LineError{Line: r.line, Err: errors.New("truncated input: last line has no newline")}
		}
		if err != nil {
			return nil, err
		}
		r.line++
		if long != nil {
			return append(long, chunk...), nil
		}
		return chunk, nil
	}
}

// validatePartition checks the fields of detach_partition and drop_partition ("table" and
// "partition", other says another field was given), and that no other op takes "partition". A nil
// error with a partition given means the record is valid.
func validatePartition(op, table, partition string, other bool) error {
	removal := op == OpDetachPartition || op == OpDropPartition
	switch {
	case partition != "" && !removal:
		return errors.New(`only detach_partition and drop_partition take "partition"`)
	case removal && (table == "" || partition == "" || other):
		return fmt.Errorf(`%s needs "table" and "partition" only`, op)
	}
	return nil
}

// Validate checks that a record has the fields its op needs and no others.
func Validate(rec *Record) error {
	if rec.Count != nil && rec.Op != OpRows {
		return errors.New(`only rows takes "count"`)
	}
	if rec.Source != "" && rec.Op != OpBegin {
		return errors.New(`only begin takes "source"`)
	}
	other := rec.Row != nil || rec.Key != nil || rec.From != "" || rec.To != "" || rec.Rows != nil
	if err := validatePartition(rec.Op, rec.Table, rec.Partition, other); err != nil || rec.Partition != "" {
		return err
	}
	switch rec.Op {
	case OpRows:
		if rec.Table == "" || len(rec.Row) == 0 || rec.Key != nil || rec.Count == nil || *rec.Count < 0 {
			return errors.New(`rows needs "table", a non-empty "row" and a "count" of 0 or more`)
		}
	case OpBegin:
		if rec.To == "" || rec.Table != "" || rec.Row != nil || rec.Key != nil {
			return errors.New(`begin needs "from" and "to" and nothing else`)
		}
	case OpCommit:
		if rec.To == "" || rec.Table != "" || rec.Row != nil || rec.Key != nil {
			return errors.New(`commit needs "to" and nothing else`)
		}
	case OpUpsert:
		if rec.Table == "" || len(rec.Row) == 0 || rec.Key != nil {
			return errors.New(`upsert needs "table" and a non-empty "row"`)
		}
	case OpDelete:
		if rec.Table == "" || len(rec.Key) == 0 || rec.Row != nil {
			return errors.New(`delete needs "table" and a non-empty "key"`)
		}
		for k, v := range rec.Key {
			if v == nil {
				return fmt.Errorf("delete key column %q is null", k)
			}
		}
	case OpTruncate:
		if rec.Table == "" || rec.Row != nil || rec.Key != nil {
			return errors.New(`truncate needs "table" only`)
		}
	case OpFlush:
		if rec.Table != "" || rec.Row != nil || rec.Key != nil || rec.To != "" {
			return errors.New(`flush takes no fields`)
		}
	case "":
		return errors.New(`missing "op"`)
	default:
		return fmt.Errorf("unknown op %q", rec.Op)
	}
	return nil
}
