package delta

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/dbconn"
	"github.com/pgferry/pgferry/internal/deltarec"
)

// peekSource reads r up to its first record and returns the source identity that record names
// (a begin from pgdelta stream; "" for none) and a reader yielding all of r from its start.
func peekSource(r io.Reader) (string, io.Reader) {
	br := bufio.NewReaderSize(r, 256<<10)
	var seen bytes.Buffer
	var line []byte
	for {
		l, err := br.ReadBytes('\n')
		seen.Write(l)
		line = l
		if err != nil || len(bytes.TrimSpace(l)) > 0 {
			break
		}
	}
	rest := io.MultiReader(&seen, br)
	rec, err := deltarec.NewReader(bytes.NewReader(line)).Next()
	if err != nil || rec.Op != deltarec.OpBegin {
		return "", rest // apply reports a bad first line with its number
	}
	return rec.Source, rest
}

// refuseStreamSource refuses (exit 2) when the stream's source, named by token, is dst itself.
func refuseStreamSource(ctx context.Context, dst *pgx.Conn, token, targetURL string) error {
	if token == "" {
		return nil
	}
	src, err := dbconn.ParseToken(token)
	if err != nil {
		return fmt.Errorf("read stream source: %w", err)
	}
	self, err := dbconn.Identify(ctx, dst, targetURL)
	if err != nil {
		return fmt.Errorf("identify target: %w", err)
	}
	return dbconn.RefuseSame(src, self)
}
