package dbconn

import (
	"errors"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgferry/pgferry/internal/pgver"
)

// serverVersions remembers, by host:port, the version of the server last connected to there. A
// later connection sends versionedSettings as startup parameters, which take effect before the
// server first waits for a command: a role's 20 ms idle_session_timeout (or transaction_timeout)
// cannot end the session then, as it can before the SETs sent once connected arrive when the
// host is loaded.
var serverVersions sync.Map // string -> pgver.Version

func serverKey(cfg *pgconn.Config) string { return cfg.Host + ":" + strconv.Itoa(int(cfg.Port)) }

// pinAtStartup makes cfg's startup parameters carry the versionedSettings the server last seen
// at its address knows (and none it does not), except those Options.Extra sets; it reports
// whether any is sent.
func pinAtStartup(cfg *pgx.ConnConfig, extra map[string]string) bool {
	known, _ := serverVersions.Load(serverKey(&cfg.Config))
	v, _ := known.(pgver.Version)
	sent := false
	for _, s := range versionedSettings {
		if _, set := extra[s.name]; set {
			continue
		}
		if known != nil && s.since(v) {
			cfg.RuntimeParams[s.name] = s.value
			sent = true
		} else {
			delete(cfg.RuntimeParams, s.name)
		}
	}
	return sent
}

// lostPinRace reports a connection the server ended, by the role's idle_session_timeout or
// transaction_timeout, before the settings pinned after connecting arrived: connecting again
// sends them at startup (the first attempt learnt the server's version).
func lostPinRace(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "57P05" || pe.Code == "25P04")
}

// unknownSetting reports a server that refused a versionedSetting at connection start: one older
// than the server last seen at that address.
func unknownSetting(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "42704" {
		return false
	}
	for _, s := range versionedSettings {
		if strings.Contains(pe.Message, `"`+s.name+`"`) {
			return true
		}
	}
	return false
}
