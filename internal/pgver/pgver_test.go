package pgver

import "testing"

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Version
	}{
		{"11.22", 110022}, {"15.18 (Debian 15.18-0+deb12u1)", 150018}, {"17.10", 170010}, {"18beta1", 180000}, {"13", 130000},
	} {
		got, err := Parse(c.in)
		if err != nil || got != c.want {
			t.Errorf("Parse(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "9.6.24", "abc"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q): want an error", bad)
		}
	}
}

func TestFeatures(t *testing.T) {
	v11, v12, v13, v14, v17 := Version(110022), Version(120022), Version(130023), Version(140023), Version(170010)
	if v11.GeneratedColumns() || !v12.GeneratedColumns() {
		t.Error("generated columns start at 12")
	}
	if v12.SnapshotType() || !v13.SnapshotType() || v12.DropDatabaseForce() || !v13.DropDatabaseForce() {
		t.Error("pg_snapshot and DROP DATABASE WITH (FORCE) start at 13")
	}
	if v13.TIDRangeScan() || !v14.TIDRangeScan() || v13.IdleSessionTimeout() || !v14.IdleSessionTimeout() {
		t.Error("TID range scans and idle_session_timeout start at 14")
	}
	if v14.Merge() || !Version(150000).Merge() || Version(160004).TransactionTimeout() || !v17.TransactionTimeout() {
		t.Error("MERGE starts at 15, transaction_timeout at 17")
	}
	if got := v11.StoredColumn("a"); got != "true" {
		t.Errorf("11: StoredColumn = %q", got)
	}
	if got := v12.StoredColumn("a"); got != "a.attgenerated = ''" {
		t.Errorf("12: StoredColumn = %q", got)
	}
	if !v11.Supported() || Version(100023).Supported() || Version(180000).Supported() {
		t.Error("supported: 11 to 17")
	}
}

func TestTriggerFeatures(t *testing.T) {
	v10, v11, v12, v13 := Version(100023), Version(110022), Version(120022), Version(130023)
	if v10.PartitionedRowTriggers() || !v11.PartitionedRowTriggers() {
		t.Error("row triggers on partitioned tables start at 11")
	}
	if v12.EnableClonedTriggers() || !v13.EnableClonedTriggers() {
		t.Error("an owner may enable cloned triggers from 13")
	}
	if got := v12.UserTrigger("t"); got != "NOT t.tgisinternal" {
		t.Errorf("12: UserTrigger = %q", got)
	}
	if got := v13.UserTrigger("t"); got != "NOT t.tgisinternal AND t.tgparentid = 0" {
		t.Errorf("13: UserTrigger = %q", got)
	}
}

func TestTriggerDefFeatures(t *testing.T) {
	if Version(110022).TriggerDefExecuteFunction() || !Version(120022).TriggerDefExecuteFunction() {
		t.Error("pg_get_triggerdef writes EXECUTE FUNCTION from 12")
	}
	if Version(150010).UnqualifiedViewColumns() || !Version(160006).UnqualifiedViewColumns() {
		t.Error("pg_get_viewdef leaves a single table's columns unqualified from 16")
	}
}
