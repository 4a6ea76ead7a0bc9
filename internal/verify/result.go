package verify

// Status values of a table's result.
const (
	StatusSame          = "same"
	StatusDiffer        = "differ"
	StatusNotComparable = "not_comparable"
	StatusError         = "error"
)

// Result is the verdict on one table; with --json it is printed as one line.
type Result struct {
	Table       string  `json:"table"`
	Mode        string  `json:"mode"`
	Status      string  `json:"status"`
	Reason      string  `json:"reason,omitempty"`
	SourceRows  *int64  `json:"source_rows"`
	TargetRows  *int64  `json:"target_rows"`
	Hash        string  `json:"hash,omitempty"`
	Missing     int     `json:"missing"`
	Extra       int     `json:"extra"`
	Changed     int     `json:"changed"`
	Duplicate   int     `json:"duplicate"`
	Truncated   bool    `json:"truncated"` // more differing keys than --max-diffs
	Rechecked   bool    `json:"rechecked"`
	Proof       string  `json:"proof,omitempty"`        // changes mode: the position of the table's proof
	ChangedKeys *int64  `json:"changed_keys,omitempty"` // changes mode: keys captured since the proof, compared
	Note        string  `json:"note,omitempty"`         // changes mode: why a table was compared in full
	Diffs       []Diff  `json:"diffs,omitempty"`
	Checks      []Check `json:"checks,omitempty"`
	pair        *pair
}

// Check is one labelled quick-mode check.
type Check struct {
	Name   string `json:"name"`
	Source string `json:"source,omitempty"`
	Target string `json:"target,omitempty"`
	OK     bool   `json:"ok"`
	Note   string `json:"note,omitempty"`
}

func (r *Result) setDiffs(ds []Diff) {
	r.Diffs, r.Missing, r.Extra, r.Changed, r.Duplicate = ds, 0, 0, 0, 0
	for _, d := range ds {
		n := 1 // rows: one per key, or the copies of a row of a table without a key
		if d.Count > 0 {
			n = int(d.Count)
		}
		switch d.Kind {
		case "missing":
			r.Missing += n
		case "extra":
			r.Extra += n
		case "changed":
			r.Changed += n
		case "duplicate":
			r.Duplicate += n
		}
	}
	if len(ds) == 0 && !r.Truncated {
		r.Status = StatusSame
	} else {
		r.Status = StatusDiffer
	}
}

// exitCode folds the results: any error 2, else any difference 1, else any not comparable 3, else 0.
func exitCode(rs []*Result) int {
	code := ExitSame
	rank := map[int]int{ExitSame: 0, ExitNotComparable: 1, ExitDiffer: 2, ExitError: 3}
	for _, r := range rs {
		c := ExitSame
		switch r.Status {
		case StatusError:
			c = ExitError
		case StatusDiffer:
			c = ExitDiffer
		case StatusNotComparable:
			c = ExitNotComparable
		}
		if rank[c] > rank[code] {
			code = c
		}
	}
	return code
}
