package schema

import (
	"context"

	"github.com/urfave/cli/v2"

	"github.com/pgferry/pgferry/internal/dbconn"
)

func rolesCommand() *cli.Command {
	return &cli.Command{
		Name:      "roles",
		Usage:     "write CREATE ROLE statements for every role the source's schema references",
		UsageText: "pgschema roles --source URL > roles.sql",
		Description: `Finds the owners of the database's objects and the grantees and grantors in their
privileges (and default privileges), and writes, for each, a DO block that creates the role
only when pg_roles lacks it, so the script can be re-run. Passwords are not copied (they are
not readable without superuser): set them on the target afterwards. Attributes that need
superuser on the target (SUPERUSER, REPLICATION, BYPASSRLS) are written as comments.
Memberships between these roles are granted too. Roles of pgferry's capture schema objects
and predefined pg_* roles are left out.

Example:
   pgschema roles --source $SRC | psql $DST`,
		Flags: []cli.Flag{dbconn.Flag(dbconn.Source), captureFlag(),
			&cli.BoolFlag{Name: "join", EnvVars: []string{"PGFERRY_ROLES_JOIN"}, Usage: "also make the role running the script a member of each role (where it may grant it: CREATEROLE, RDS's admin), so it can hand objects to them with ALTER ... OWNER TO; on PostgreSQL 16+ with SET, which owning needs"}},
		Action: func(c *cli.Context) error {
			conn, err := connectFlag(c, dbconn.Source)
			if err != nil {
				return err
			}
			defer conn.Close(context.Background())
			return Roles(c.Context, conn, c.String("capture-schema"), c.Bool("join"), c.App.Writer)
		},
	}
}
