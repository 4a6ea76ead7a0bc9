package schema

import (
	"bytes"
	"errors"
	"regexp"
	"strings"

	"github.com/pgferry/pgferry/internal/sqllex"
	"github.com/pgferry/pgferry/internal/sqlstmt"
)

// Header is pg_dump's per-object comment: "-- Name: x; Type: TABLE; Schema: public; Owner: app".
type Header struct {
	Name, Type, Schema, Owner string
	Line                      int
}

// Chunk is one statement or meta-command with the whitespace and comments that follow it.
type Chunk struct {
	Piece sqllex.Piece
	Trail string
	Stmt  sqlstmt.Stmt
}

// Global reports whether the chunk is a session setting or a psql meta-command, which every
// section keeps so that its statements run under the settings pg_dump chose.
func (c *Chunk) Global() bool { return c.Piece.Kind == sqllex.Meta || c.Stmt.Kind == sqlstmt.KSet }

// Text is the chunk's statement (or meta-command) text with what follows it.
func (c *Chunk) Text() string { return c.Piece.Text + c.Trail }

// Entry is one pg_dump object: its header comment and the statements up to the next header.
// The entry before the first header (the prologue) has no header.
type Entry struct {
	Header    Header
	HasHeader bool
	Lead      string // the header comment block, or leading whitespace of the prologue
	Chunks    []*Chunk
}

// Script is a parsed dump.
type Script struct {
	Entries []*Entry
}

var headerRE = regexp.MustCompile(`^-- (?:Data for )?Name: (.*); Type: ([A-Z][A-Z ]*); Schema: (.*?)(?:; Owner: (.*?))?(?:; Tablespace: .*)?$`)

// ErrEmpty is returned for input holding no SQL statements.
var ErrEmpty = errors.New("no SQL statements in the input")

// Parse splits and classifies a dump. Lexical errors carry the line number.
func Parse(src []byte) (*Script, error) {
	if err := sqlstmt.CheckText(src); err != nil {
		return nil, err
	}
	pieces, err := sqllex.Split(string(src))
	if err != nil {
		return nil, errorf(FixIncomplete, "read dump: %w", err)
	}
	sc := &Script{}
	cur := &Entry{}
	sc.Entries = append(sc.Entries, cur)
	statements := 0
	for _, p := range pieces {
		switch p.Kind {
		case sqllex.Space:
			before, hdr, rest, ok := findHeader(p)
			if !ok {
				addTrail(cur, p.Text)
				continue
			}
			addTrail(cur, before)
			cur = &Entry{Header: hdr, HasHeader: true, Lead: rest}
			sc.Entries = append(sc.Entries, cur)
		case sqllex.Statement:
			if p.Unterminated {
				return nil, errorf(FixTruncated, "read dump: line %d: the last statement has no terminating ';'", p.Line)
			}
			statements++
			cur.Chunks = append(cur.Chunks, &Chunk{Piece: p, Stmt: sqlstmt.Parse(p.Text)})
		default:
			cur.Chunks = append(cur.Chunks, &Chunk{Piece: p})
		}
	}
	if statements == 0 {
		return nil, errorf(FixEmpty, "read dump: %w (%d lines)", ErrEmpty, bytes.Count(src, []byte("\n")))
	}
	return sc, nil
}

func addTrail(e *Entry, s string) {
	if len(e.Chunks) == 0 {
		e.Lead += s
		return
	}
	e.Chunks[len(e.Chunks)-1].Trail += s
}

// findHeader finds a pg_dump header block in a whitespace piece: the run of "--" lines holding
// a "-- Name: " line. It returns the text before the block and the block with what follows.
func findHeader(p sqllex.Piece) (before string, h Header, rest string, ok bool) {
	text := p.Text
	off, line := 0, p.Line
	blockStart := -1
	for off < len(text) {
		end := strings.IndexByte(text[off:], '\n')
		next := len(text)
		if end >= 0 {
			next = off + end + 1
		}
		ln := strings.TrimRight(text[off:next], "\r\n")
		if strings.HasPrefix(ln, "--") {
			if blockStart < 0 {
				blockStart = off
			}
			if m := headerRE.FindStringSubmatch(ln); m != nil {
				return text[:blockStart], Header{Name: m[1], Type: m[2], Schema: m[3], Owner: m[4], Line: line}, text[blockStart:], true
			}
		} else {
			blockStart = -1
		}
		off = next
		line++
	}
	return "", Header{}, "", false
}

// DropOwner removes "ALTER <typ> <name> OWNER TO <owner>" from the entry of that object. pgschema
// dump uses it for the public schema of a source older than 15, owned by the bootstrap
// superuser: the target's public schema exists already, and a non-superuser cannot hand it to
// a superuser (pg_dump 15 writes the statement only because such a source's default differs).
func (sc *Script) DropOwner(typ, name, owner string) {
	for _, e := range sc.Entries {
		if !e.HasHeader || e.Header.Type != typ || e.Header.Name != name || e.Header.Owner != owner {
			continue
		}
		kept := e.Chunks[:0]
		for _, c := range e.Chunks {
			if c.Stmt.Kind != sqlstmt.KOwner {
				kept = append(kept, c)
			}
		}
		e.Chunks = kept
	}
}
