package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/pgferry/pgferry/internal/pgtest"
)

// TestScripts runs testdata/*.txtar. Each script gets a fresh source and target database in
// $SRC and $DST (superuser URLs), the tools on PATH, and $REPO pointing at the repository.
func TestScripts(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.txtar")
	if len(files) == 0 {
		t.Skip("no scripts yet")
	}
	testscript.Run(t, testscript.Params{
		Dir: "testdata",
		Setup: func(env *testscript.Env) error {
			for _, side := range []struct{ cluster, env string }{{"source", "SRC"}, {"target", "DST"}} {
				c, err := pgtest.SharedCluster(side.cluster)
				if err != nil {
					if pgtest.Required() {
						return err
					}
					env.T().Skip("no PostgreSQL server: " + err.Error())
				}
				name, err := c.CreateDB(context.Background(), filepath.Base(env.WorkDir))
				if err != nil {
					return err
				}
				env.Defer(func() { c.DropDB(name) })
				env.Setenv(side.env, c.URL(name))
				env.Setenv(side.env+"_CLUSTER_SOCK", c.SockDir)
			}
			env.Setenv("REPO", repoRoot)
			env.Setenv("PATH", os.Getenv("PATH"))
			env.Setenv("HOME", env.WorkDir)
			return nil
		},
	})
}
