package schema

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"

	"github.com/pgferry/pgferry/internal/dbconn"
	"github.com/pgferry/pgferry/internal/pgver"
)

var versionRE = regexp.MustCompile(`\(PostgreSQL\) (\d+)(?:\.(\d+))?`)

// pgDumpMajor returns the major version of a pg_dump binary (10 and later: "17"; 9.6: 906).
func pgDumpMajor(ctx context.Context, bin string) (int, string, error) {
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		return 0, "", errorf(FixInstallPgDump, "run %s --version: %w", bin, err)
	}
	m := versionRE.FindStringSubmatch(string(out))
	if m == nil {
		return 0, "", fmt.Errorf("read pg_dump version: unexpected output %q", strings.TrimSpace(string(out)))
	}
	major, _ := strconv.Atoi(m[1])
	if major < 10 && m[2] != "" {
		minor, _ := strconv.Atoi(m[2])
		major = major*100 + minor
	} else {
		major *= 100
	}
	return major, strings.TrimSpace(string(out)), nil
}

// dumpSections are the pg_dump options that select what a pgschema section needs: the schema
// (--schema-only) for most; pg_dump's post-data section with data enabled but no large objects
// for "refresh", since pg_dump writes REFRESH MATERIALIZED VIEW only when it dumps data (only
// for the views populated on the source, ordered by their dependencies on each other).
func dumpSections(section string) []string {
	if section == "refresh" {
		return []string{"--section=post-data", "--no-blobs"}
	}
	return []string{"--schema-only"}
}

// PgDump runs pg_dump with the given section options (nil: --schema-only) against url after
// checking its version against the server's. It also returns the name of the bootstrap
// superuser when it owns the public schema (the default before PostgreSQL 15, where pg_dump 15
// then writes ALTER SCHEMA public OWNER TO it), else "".
func PgDump(ctx context.Context, bin, url string, sections ...string) ([]byte, string, error) {
	conn, err := dbconn.Connect(ctx, url, dbconn.Source, dbconn.Options{AppName: "pgferry-pgschema"})
	if err != nil {
		return nil, "", err
	}
	serverMajor := pgver.Of(conn).Major() * 100 // as pgDumpMajor counts
	var bootstrapPublic string
	err = conn.QueryRow(ctx, `SELECT coalesce((SELECT r.rolname FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner WHERE n.nspname = 'public' AND n.nspowner = 10), '')`).
		Scan(&bootstrapPublic)
	conn.Close(context.Background())
	if err != nil {
		return nil, "", fmt.Errorf("read owner of schema public: %w", err)
	}
	dumpMajor, dumpVersion, err := pgDumpMajor(ctx, bin)
	if err != nil {
		return nil, "", err
	}
	if dumpMajor < serverMajor {
		return nil, "", &Error{Fix: FixPgDumpTooOld, Need: majorString(serverMajor),
			Err: fmt.Errorf("pg_dump is too old for the source: %s, server is %s", dumpVersion, majorString(serverMajor))}
	}
	// UTF8 output whatever the database encoding: apply's connections speak UTF8.
	if len(sections) == 0 {
		sections = dumpSections("")
	}
	args := append([]string{"--no-password", "--encoding=UTF8"}, sections...)
	if url != "" {
		args = append(args, "--dbname="+url)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "PGAPPNAME=pgferry-pgschema")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, "", ctx.Err()
		}
		msg := strings.TrimSpace(stderr.String())
		return nil, "", errorf(FixPgDumpRights, "run pg_dump: %w: %s", err, msg)
	}
	return stdout.Bytes(), bootstrapPublic, nil
}

func majorString(m int) string {
	if m < 1000 {
		return fmt.Sprintf("%d.%d", m/100, m%100)
	}
	return strconv.Itoa(m / 100)
}
