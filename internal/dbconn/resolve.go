// Package dbconn resolves connection strings and opens pgx connections the way every pgferry tool needs them.
package dbconn

import (
	"errors"
	"os"

	"github.com/urfave/cli/v2"
)

// Role says which side of the migration a connection string is for.
type Role string

// The two sides.
const (
	Source Role = "source"
	Target Role = "target"
)

// EnvVar is the pgferry environment variable for the role.
func (r Role) EnvVar() string {
	if r == Source {
		return "PGFERRY_SOURCE"
	}
	return "PGFERRY_TARGET"
}

// Flag is the standard --source/--target flag, read from PGFERRY_SOURCE/PGFERRY_TARGET too.
func Flag(r Role) *cli.StringFlag {
	return &cli.StringFlag{
		Name:    string(r),
		Usage:   "connection URL or key=value string of the " + string(r) + " database (falls back to DATABASE_URL, then PG* variables)",
		EnvVars: []string{r.EnvVar()},
	}
}

// ErrNoConnection is returned when no connection string can be found.
var ErrNoConnection = errors.New("no connection string")

// Resolve returns the connection string for role: the flag value, else the role's
// PGFERRY_* variable, else DATABASE_URL, else "" which makes pgx use the PG* variables.
func Resolve(flagValue string, r Role) string {
	if flagValue != "" {
		return flagValue
	}
	if v := os.Getenv(r.EnvVar()); v != "" {
		return v
	}
	if v := os.Getenv("DATABASE_URL"); v != "" {
		return v
	}
	return ""
}
