package verify

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// writeReport prints the results: JSON lines with --json, else a table followed by the
// differing keys and the failed checks.
func writeReport(w io.Writer, rs []*Result, cfg Config) error {
	if cfg.JSON {
		enc := json.NewEncoder(w)
		for _, r := range rs {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tMODE\tRESULT\tSOURCE ROWS\tTARGET ROWS\tDETAILS")
	for _, r := range rs {
		status := r.Status
		if status != StatusSame {
			status = strings.ToUpper(strings.ReplaceAll(status, "_", " ")) // NOT COMPARABLE
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Table, r.Mode, status, num(r.SourceRows), num(r.TargetRows), details(r))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range rs {
		if (r.Mode == "quick" && r.Checks != nil) || (r.Mode != "quick" && failedCheck(r)) {
			cw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintf(cw, "\n%s (%s checks)\n", r.Table, checksTitle(r.Mode))
			fmt.Fprintln(cw, "  CHECK\tSOURCE\tTARGET\tOK\tNOTE")
			for _, c := range r.Checks {
				ok := "ok"
				if !c.OK {
					ok = "FAIL"
				}
				fmt.Fprintf(cw, "  %s\t%s\t%s\t%s\t%s\n", c.Name, c.Source, c.Target, ok, c.Note)
			}
			if err := cw.Flush(); err != nil {
				return err
			}
		}
		for _, d := range r.Diffs {
			line := fmt.Sprintf("%s: %s key %s", r.Table, d.Kind, keyString(r.pair, d))
			if d.Row != nil {
				line = fmt.Sprintf("%s: %s %d x %s", r.Table, d.Kind, d.Count, rowString(r.pair, d))
			}
			if d.Kind == "changed" {
				line += ": columns " + strings.Join(d.Columns, ", ")
			}
			if _, err := fmt.Fprintln(w, line); err != nil {
				return err
			}
		}
		if r.Truncated {
			what := "keys"
			if r.pair != nil && r.pair.NoKey {
				what = "rows"
			}
			fmt.Fprintf(w, "%s: more differing %s than --max-diffs %d; raise it to see them all\n", r.Table, what, cfg.MaxDiffs)
		}
	}
	return nil
}

func num(p *int64) string {
	if p == nil {
		return "-"
	}
	return strconv.FormatInt(*p, 10)
}

// checksTitle labels a table's checks in the report.
func checksTitle(mode string) string {
	if mode == "quick" {
		return "quick checks, not a proof: use --mode hash"
	}
	return "sanity checks of --mode changes"
}

func failedCheck(r *Result) bool {
	for _, c := range r.Checks {
		if !c.OK {
			return true
		}
	}
	return false
}

func details(r *Result) string {
	s := statusDetails(r)
	if r.ChangedKeys != nil && r.Note == "" {
		s = strings.TrimPrefix(s+fmt.Sprintf("; %d key(s) changed since the proof", *r.ChangedKeys), "; ")
	}
	if r.Note != "" {
		s = strings.TrimPrefix(s+"; "+r.Note, "; ")
	}
	return s
}

func statusDetails(r *Result) string {
	switch r.Status {
	case StatusDiffer:
		if r.Mode == "hash" || r.Mode == "changes" {
			if r.Reason != "" {
				return r.Reason
			}
			s := fmt.Sprintf("%d missing, %d extra, %d changed", r.Missing, r.Extra, r.Changed)
			if r.pair != nil && r.pair.NoKey {
				s = fmt.Sprintf("%d rows missing, %d extra (no key: compared as a multiset of rows)", r.Missing, r.Extra)
			}
			if r.Duplicate > 0 {
				s += fmt.Sprintf(", %d duplicate", r.Duplicate)
			}
			if r.Truncated {
				s += " (at least)"
			}
			if r.Rechecked {
				s += " after re-check"
			}
			return s
		}
		return r.Reason
	case StatusNotComparable:
		return r.Reason
	}
	return ""
}

// showValue quotes a value that could be misread: empty, NULL, or holding a separator.
func showValue(v string) string {
	if v == "" || v == "NULL" || strings.ContainsAny(v, " \t\n\"\\,()=") {
		return strconv.Quote(v)
	}
	return v
}

// rowString shows a row of a table without a key as (value, ...) in column order, NULL unquoted.
func rowString(p *pair, d Diff) string {
	if p == nil {
		return fmt.Sprint(d.Row)
	}
	parts := make([]string, len(p.Cols))
	for i, c := range p.Cols {
		parts[i] = "NULL"
		if v := d.Row[c.Name]; v != nil {
			parts[i] = showValue(*v)
		}
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// keyString shows a key as col=value, in key order.
func keyString(p *pair, d Diff) string {
	if p == nil {
		return fmt.Sprint(d.Key)
	}
	parts := make([]string, len(p.Key))
	for i, k := range p.Key {
		parts[i] = k.Name + "=" + showValue(d.Key[k.Name])
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return "(" + strings.Join(parts, ", ") + ")"
}
