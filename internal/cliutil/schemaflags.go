package cliutil

import (
	"github.com/urfave/cli/v2"

	"github.com/pgferry/pgferry/internal/ident"
)

// CaptureSchemaFlag is --capture-schema (PGFERRY_CAPTURE_SCHEMA): pgferry's capture schema on the
// source; usage says what the tool does with it.
func CaptureSchemaFlag(usage string) *cli.StringFlag {
	return &cli.StringFlag{Name: "capture-schema", Value: ident.DefaultSchema, EnvVars: []string{"PGFERRY_CAPTURE_SCHEMA"}, Usage: usage}
}

// StateSchemaFlag is --state-schema (PGFERRY_STATE_SCHEMA): pgferry's state schema on the target;
// usage says what the tool does with it.
func StateSchemaFlag(usage string) *cli.StringFlag {
	return &cli.StringFlag{Name: "state-schema", Value: ident.DefaultSchema, EnvVars: []string{"PGFERRY_STATE_SCHEMA"}, Usage: usage}
}
