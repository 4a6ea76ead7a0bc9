// Package stream encodes and decodes the framed copy stream between pgcopyout and pgcopyin.
package stream

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"time"

	"github.com/pgferry/pgferry/internal/dbconn"
)

// Version is the stream format version this package writes and reads.
const Version = 1

// magicPrefix starts every stream and every chunk file; the byte after it is the version.
const magicPrefix = "PGFCOPY"

// Limits that keep a corrupt length field from allocating unbounded memory.
const (
	MaxFrameSize  = 16 << 20 // largest uncompressed payload of one frame
	MaxHeaderSize = 64 << 20 // largest JSON header
	frameHdrLen   = 32
)

// FrameKind says what a frame carries.
type FrameKind uint8

// Frame kinds.
const (
	KindData     FrameKind = 1 // COPY text bytes of a chunk
	KindChunkEnd FrameKind = 2 // JSON ChunkSummary: the chunk is complete
	KindEnd      FrameKind = 3 // JSON Totals: the stream is complete
)

func (k FrameKind) String() string {
	switch k {
	case KindData:
		return "data"
	case KindChunkEnd:
		return "chunk-end"
	case KindEnd:
		return "end"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Header describes the stream: where it came from and the plan of every table.
type Header struct {
	Version       int       `json:"version"`
	ServerVersion string    `json:"server_version"` // source server_version
	Position      string    `json:"position"`       // txid_current_snapshot() text of the shared snapshot
	SnapshotMode  string    `json:"snapshot_mode"`  // "shared" | "per-chunk"
	Codec         string    `json:"codec"`          // "lz4" | "zstd[:N]" | "gzip[:N]" | "none"
	Jobs          int       `json:"jobs"`           // most chunks open at once in this stream
	Tables        []Table   `json:"tables"`
	CreatedAt     time.Time `json:"created_at"`
	// Source fingerprints the database the stream was read from, so pgcopyin can refuse to load
	// it back into that database. Absent in streams of releases before it (not checked then).
	Source *dbconn.Identity `json:"source,omitempty"`
}

// Table is one copied table and its chunk plan; frames refer to it by its index in Header.Tables.
type Table struct {
	Name     string   `json:"name"`             // unquoted "schema.table" (the leaf for partitions)
	Columns  []string `json:"columns"`          // column order of the COPY data
	Format   string   `json:"format,omitempty"` // COPY format of its data frames: "text" (also "") or "binary"
	Key      []string `json:"key,omitempty"`
	EstRows  int64    `json:"est_rows"`
	EstBytes int64    `json:"est_bytes"`
	Chunks   []Chunk  `json:"chunks"` // the whole plan, including chunks skipped as already done
	// Restart: the target holds part of this table from an earlier run that cannot be finished
	// (ctid chunks read under another snapshot); pgcopyin empties it and its state rows, in the
	// transaction that stores the new plan, before loading it whole.
	Restart bool `json:"restart,omitempty"`
}

// COPY formats of a table's data frames.
const (
	FormatText   = "text"
	FormatBinary = "binary" // each chunk's frames together are one complete binary COPY stream
)

// Binary reports whether the table's frames carry binary COPY data.
func (t *Table) Binary() bool { return t.Format == FormatBinary }

// Chunk is one unit of copy and of load: a key range, a ctid range, or the whole table.
type Chunk struct {
	ID    int     `json:"id"`
	Kind  string  `json:"kind"`            // "all" | "key" | "ctid"
	Lower *string `json:"lower,omitempty"` // inclusive lower bound, nil = unbounded
	Upper *string `json:"upper,omitempty"` // exclusive upper bound, nil = unbounded
	Skip  bool    `json:"skip,omitempty"`  // already on the target: no frames follow for it
}

// ChunkSummary is the payload of a ChunkEnd frame.
type ChunkSummary struct {
	Rows     int64  `json:"rows"`     // rows in the chunk's COPY data (pgcopyin checks COPY's count)
	Bytes    int64  `json:"bytes"`    // uncompressed bytes of its data frames
	Frames   int64  `json:"frames"`   // number of its data frames
	Snapshot string `json:"snapshot"` // position the chunk was read under
}

// Totals is the payload of the End frame.
type Totals struct {
	Chunks int64 `json:"chunks"` // chunks ended in this stream
	Rows   int64 `json:"rows"`
	Bytes  int64 `json:"bytes"`
	Frames int64 `json:"frames"` // data frames
}

// TableIndex returns the index of the table called name, or -1.
func (h *Header) TableIndex(name string) int {
	for i := range h.Tables {
		if h.Tables[i].Name == name {
			return i
		}
	}
	return -1
}

// Chunk returns the chunk with the given id of table index ti, or nil.
func (h *Header) Chunk(ti, id int) *Chunk {
	if ti < 0 || ti >= len(h.Tables) {
		return nil
	}
	for i := range h.Tables[ti].Chunks {
		if h.Tables[ti].Chunks[i].ID == id {
			return &h.Tables[ti].Chunks[i]
		}
	}
	return nil
}

// Validate checks the header is complete and consistent; both the writer and the reader call it.
func (h *Header) Validate() error {
	if h.Version != Version {
		return fmt.Errorf("%w: header version %d, this build reads version %d", ErrVersion, h.Version, Version)
	}
	if _, err := ParseCodec(h.Codec); err != nil {
		return fmt.Errorf("bad header: %w", err)
	}
	if h.Jobs < 1 {
		return fmt.Errorf("bad header: jobs %d, want at least 1", h.Jobs)
	}
	switch h.SnapshotMode {
	case "shared", "per-chunk":
	default:
		return fmt.Errorf("bad header: snapshot_mode %q, want shared or per-chunk", h.SnapshotMode)
	}
	if h.Source != nil && h.Source.DatabaseOID == 0 {
		return fmt.Errorf("bad header: source has no database_oid")
	}
	if h.Position != "" && !validSnapshot(h.Position) {
		return fmt.Errorf("bad header: position %q is not a txid snapshot (xmin:xmax:xip,...)", h.Position)
	}
	names := map[string]bool{}
	for i := range h.Tables {
		t := &h.Tables[i]
		if t.Name == "" || !strings.Contains(t.Name, ".") {
			return fmt.Errorf("bad header: table %d has name %q, want schema.table", i, t.Name)
		}
		if names[t.Name] {
			return fmt.Errorf("bad header: table %s listed twice", t.Name)
		}
		names[t.Name] = true
		if len(t.Columns) == 0 {
			return fmt.Errorf("bad header: table %s has no columns", t.Name)
		}
		cols := map[string]bool{}
		for _, c := range t.Columns {
			if c == "" || cols[c] {
				return fmt.Errorf("bad header: table %s: empty or repeated column %q", t.Name, c)
			}
			cols[c] = true
		}
		switch t.Format {
		case "", FormatText, FormatBinary:
		default:
			return fmt.Errorf("bad header: table %s: format %q, want text or binary", t.Name, t.Format)
		}
		ids := map[int]bool{}
		for _, c := range t.Chunks {
			if c.ID < 0 || ids[c.ID] {
				return fmt.Errorf("bad header: table %s: negative or repeated chunk id %d", t.Name, c.ID)
			}
			ids[c.ID] = true
			switch c.Kind {
			case "all", "key", "ctid":
			default:
				return fmt.Errorf("bad header: table %s chunk %d: kind %q, want all, key or ctid", t.Name, c.ID, c.Kind)
			}
		}
	}
	return nil
}

// validSnapshot reports whether s looks like txid_current_snapshot() text.
func validSnapshot(s string) bool {
	parts := strings.Split(s, ":")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return false
	}
	digits := func(x string, commas bool) bool {
		for _, r := range x {
			if !(r >= '0' && r <= '9') && !(commas && r == ',') {
				return false
			}
		}
		return true
	}
	return digits(parts[0], false) && digits(parts[1], false) && digits(parts[2], true)
}

// Sentinel errors, matched with errors.Is.
var (
	ErrBadMagic  = errors.New("not a pgferry copy stream (bad magic)")
	ErrVersion   = errors.New("unsupported stream version")
	ErrCorrupt   = errors.New("corrupt stream")
	ErrTruncated = errors.New("truncated stream")
)

// Error is a decoding error located in the stream: which table and chunk, and where.
type Error struct {
	Table  string // "" when not known
	Chunk  int    // -1 when not known
	Offset int64  // byte offset of the frame in the stream or file
	Err    error
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Table != "" {
		fmt.Fprintf(&b, "table %s", e.Table)
		if e.Chunk >= 0 {
			fmt.Fprintf(&b, " chunk %d", e.Chunk)
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	fmt.Fprintf(&b, " (at byte %d)", e.Offset)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checksum is CRC-32C.
func checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// frameHeader is the fixed 32-byte frame header, little-endian:
//
//	kind u8 | codec u8 | reserved u16 | table u32 | chunk u32 | seq u32 |
//	raw length u32 | stored length u32 | CRC-32C of raw bytes u32 | CRC-32C of the 28 bytes before u32
type frameHeader struct {
	Kind   FrameKind
	Codec  CodecKind
	Table  uint32
	Chunk  uint32
	Seq    uint32
	RawLen uint32
	Len    uint32
	CRC    uint32
}

func (f *frameHeader) put(b []byte) {
	b[0] = byte(f.Kind)
	b[1] = byte(f.Codec)
	b[2], b[3] = 0, 0
	binary.LittleEndian.PutUint32(b[4:], f.Table)
	binary.LittleEndian.PutUint32(b[8:], f.Chunk)
	binary.LittleEndian.PutUint32(b[12:], f.Seq)
	binary.LittleEndian.PutUint32(b[16:], f.RawLen)
	binary.LittleEndian.PutUint32(b[20:], f.Len)
	binary.LittleEndian.PutUint32(b[24:], f.CRC)
	binary.LittleEndian.PutUint32(b[28:], checksum(b[:28]))
}

// parse reads b into f, checking the header's own checksum and bounds.
func (f *frameHeader) parse(b []byte) error {
	if binary.LittleEndian.Uint32(b[28:]) != checksum(b[:28]) {
		return fmt.Errorf("%w: frame header checksum mismatch", ErrCorrupt)
	}
	f.Kind = FrameKind(b[0])
	f.Codec = CodecKind(b[1])
	f.Table = binary.LittleEndian.Uint32(b[4:])
	f.Chunk = binary.LittleEndian.Uint32(b[8:])
	f.Seq = binary.LittleEndian.Uint32(b[12:])
	f.RawLen = binary.LittleEndian.Uint32(b[16:])
	f.Len = binary.LittleEndian.Uint32(b[20:])
	f.CRC = binary.LittleEndian.Uint32(b[24:])
	if b[2] != 0 || b[3] != 0 {
		return fmt.Errorf("%w: reserved frame header bytes set", ErrCorrupt)
	}
	if f.Kind < KindData || f.Kind > KindEnd {
		return fmt.Errorf("%w: unknown frame kind %d", ErrCorrupt, f.Kind)
	}
	if f.Codec > CodecGzip {
		return fmt.Errorf("%w: unknown codec byte %d", ErrCorrupt, f.Codec)
	}
	if f.RawLen > MaxFrameSize || f.Len > maxStored(MaxFrameSize) {
		return fmt.Errorf("%w: frame length %d/%d over the %d limit", ErrCorrupt, f.RawLen, f.Len, MaxFrameSize)
	}
	if f.Kind != KindData && f.Codec != CodecNone {
		return fmt.Errorf("%w: %s frame must not be compressed", ErrCorrupt, f.Kind)
	}
	return nil
}

// maxStored bounds the stored size of a frame of n raw bytes under any codec.
func maxStored(n int) uint32 { return uint32(n + n/8 + 1024) }

// magic returns the 8-byte magic of version v.
func magic(v int) []byte { return append([]byte(magicPrefix), byte(v)) }

// checkMagic validates the 8 magic bytes.
func checkMagic(b []byte) error {
	if string(b[:7]) != magicPrefix {
		return ErrBadMagic
	}
	if int(b[7]) != Version {
		return fmt.Errorf("%w %d (this build reads version %d): use pgcopyout and pgcopyin of the same release", ErrVersion, b[7], Version)
	}
	return nil
}

func marshalJSON(v any) ([]byte, error) { return json.Marshal(v) }
