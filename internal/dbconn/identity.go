package dbconn

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgferry/pgferry/internal/cliutil"
)

// Identity fingerprints one database of one PostgreSQL server, whatever connection string
// reached it (URL or key=value, socket or TCP, a pooler, another host name), so a tool can
// refuse to use one database as both source and target. See SameDatabase for how two are compared.
type Identity struct {
	// SystemID is pg_control_system().system_identifier: chosen at random by initdb and shared
	// only by physical copies of the cluster (standbys, forks, restored base backups). Empty
	// where the role may not execute pg_control_system() (a managed service may revoke it).
	SystemID string `json:"system_identifier,omitempty"`
	// StartedAt is pg_postmaster_start_time() in UTC to the microsecond: the fallback, which
	// tells server processes apart but changes when the server restarts.
	StartedAt   string `json:"started_at,omitempty"`
	DatabaseOID uint32 `json:"database_oid"`
	Database    string `json:"database"`
	// Where is the connection string that reached it, without password; for messages only.
	Where string `json:"where,omitempty"`
}

// identifySQL reads the database's oid and name, the server's start time, and whether this role
// may execute pg_control_system() (PUBLIC may on PostgreSQL 9.6..17 unless revoked).
const identifySQL = `SELECT d.oid, d.datname::text,
  to_char(pg_postmaster_start_time() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
  coalesce(has_function_privilege(to_regprocedure('pg_catalog.pg_control_system()'), 'EXECUTE'), false)
FROM pg_catalog.pg_database d WHERE d.datname = current_database()`

// Identify fingerprints the database conn is connected to; where (a connection string) is kept,
// without its password, for messages. It only reads. Inside a transaction the system identifier
// is read under a savepoint, so a server that refuses it does not abort the transaction.
func Identify(ctx context.Context, conn *pgx.Conn, where string) (Identity, error) {
	id := Identity{Where: Describe(where)}
	var sysOK bool
	if err := conn.QueryRow(ctx, identifySQL).Scan(&id.DatabaseOID, &id.Database, &id.StartedAt, &sysOK); err != nil {
		return id, fmt.Errorf("identify database: %w", err)
	}
	if !sysOK {
		return id, nil
	}
	inTx := conn.PgConn().TxStatus() != 'I'
	if inTx {
		if _, err := conn.Exec(ctx, "SAVEPOINT pgferry_identify"); err != nil {
			return id, fmt.Errorf("identify database: %w", err)
		}
	}
	var sys string
	err := conn.QueryRow(ctx, "SELECT system_identifier::text FROM pg_catalog.pg_control_system()").Scan(&sys)
	if inTx {
		undo := "RELEASE SAVEPOINT pgferry_identify"
		if err != nil {
			undo = "ROLLBACK TO SAVEPOINT pgferry_identify"
		}
		if _, uerr := conn.Exec(ctx, undo); uerr != nil {
			return id, fmt.Errorf("identify database: %w", uerr)
		}
	}
	if err == nil && sys != "0" {
		id.SystemID = sys
	} else if ctx.Err() != nil {
		return id, ctx.Err()
	}
	return id, nil
}

// SameDatabase reports whether a and b are the same database and, when they are, on what
// evidence. Different database oids are different databases. Where both system identifiers are
// known they decide: equal means the same cluster or a physical copy of it (a standby of the
// source, a fork, a restored backup), which is refused too, since writing into a standby's
// primary writes into the source. Otherwise equal server start times decide (one server process).
// With neither known on both sides nothing can be proven, and the answer is false.
func SameDatabase(a, b Identity) (bool, string) {
	if a.DatabaseOID == 0 || a.DatabaseOID != b.DatabaseOID {
		return false, ""
	}
	if a.SystemID != "" && b.SystemID != "" {
		if a.SystemID != b.SystemID {
			return false, ""
		}
		return true, fmt.Sprintf("same system identifier %s and database oid %d", a.SystemID, a.DatabaseOID)
	}
	if a.StartedAt != "" && a.StartedAt == b.StartedAt {
		return true, fmt.Sprintf("same server (started at %s) and database oid %d", a.StartedAt, a.DatabaseOID)
	}
	return false, ""
}

// SameDatabaseError says the target is the source.
type SameDatabaseError struct {
	Source, Target Identity
	Evidence       string
}

func (e *SameDatabaseError) Error() string {
	return fmt.Sprintf("refuse target %s: it is the same database as the source %s (%s)",
		orUnknown(e.Target.Where), orUnknown(e.Source.Where), e.Evidence)
}

func orUnknown(s string) string {
	if s == "" {
		return "(PG* variables)"
	}
	return s
}

// SameDatabaseHint tells the operator how to point the two sides at two databases.
const SameDatabaseHint = "point --target (PGFERRY_TARGET) at the new database and --source (PGFERRY_SOURCE) at the one being moved; " +
	"with only DATABASE_URL set both sides resolve to it. Nothing was written"

// RefuseSame returns an exit-2 error wrapping *SameDatabaseError when src and dst are the same
// database, else nil.
func RefuseSame(src, dst Identity) error {
	if same, why := SameDatabase(src, dst); same {
		return cliutil.WithHint(cliutil.ExitUsage, &SameDatabaseError{Source: src, Target: dst, Evidence: why}, SameDatabaseHint)
	}
	return nil
}

// CheckDistinct identifies both connections and refuses (RefuseSame) when they reach the same
// database; srcURL and dstURL are the connection strings, for the message.
func CheckDistinct(ctx context.Context, src, dst *pgx.Conn, srcURL, dstURL string) error {
	s, err := Identify(ctx, src, srcURL)
	if err != nil {
		return fmt.Errorf("identify source: %w", err)
	}
	d, err := Identify(ctx, dst, dstURL)
	if err != nil {
		return fmt.Errorf("identify target: %w", err)
	}
	return RefuseSame(s, d)
}

// CheckURLs connects to both sides (closing the connections again) and runs CheckDistinct.
func CheckURLs(ctx context.Context, srcURL, dstURL string, opt Options) error {
	src, err := Connect(ctx, srcURL, Source, opt)
	if err != nil {
		return err
	}
	defer src.Close(context.Background())
	dst, err := Connect(ctx, dstURL, Target, opt)
	if err != nil {
		return err
	}
	defer dst.Close(context.Background())
	return CheckDistinct(ctx, src, dst, srcURL, dstURL)
}

// Describe returns connString without secrets, as user@host:port/database ("" when it cannot be
// parsed); an empty connString describes what the PG* variables point at.
func Describe(connString string) string {
	cfg, err := pgconn.ParseConfig(connString)
	if err != nil {
		return ""
	}
	return cfg.User + "@" + cfg.Host + ":" + strconv.Itoa(int(cfg.Port)) + "/" + cfg.Database
}

// Token is the identity in one line (URL query form), as carried by delta begin records.
func (i Identity) Token() string {
	v := url.Values{}
	v.Set("database_oid", strconv.FormatUint(uint64(i.DatabaseOID), 10))
	v.Set("database", i.Database)
	for k, s := range map[string]string{"system_identifier": i.SystemID, "started_at": i.StartedAt, "where": i.Where} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v.Encode()
}

// ParseToken reads an identity written by Token.
func ParseToken(s string) (Identity, error) {
	v, err := url.ParseQuery(s)
	if err != nil {
		return Identity{}, fmt.Errorf("parse database identity: %w", err)
	}
	oid, err := strconv.ParseUint(v.Get("database_oid"), 10, 32)
	if err != nil || oid == 0 {
		return Identity{}, errors.New("parse database identity: no database_oid")
	}
	return Identity{SystemID: v.Get("system_identifier"), StartedAt: v.Get("started_at"), DatabaseOID: uint32(oid),
		Database: v.Get("database"), Where: v.Get("where")}, nil
}
