package preflight

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteTable prints the report for people: one line per check, then the numbered fixes.
func (r Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tTARGET\tRESULT\tDETAIL")
	for _, res := range r.Results {
		verdict := "ok"
		if !res.OK {
			verdict = "FAIL"
		}
		target := res.Target
		if res.Source != "" {
			target += " [" + res.Source + "]"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", res.Check, target, verdict, res.Detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	failed := r.Failed()
	if len(failed) == 0 {
		_, err := fmt.Fprintln(w, "\nAll checks passed.")
		return err
	}
	fmt.Fprintf(w, "\n%d check(s) failed. To fix:\n", len(failed))
	for i, res := range failed {
		fmt.Fprintf(w, "  %d. %s\n", i+1, res.Fix)
	}
	return nil
}

// WriteJSON prints the report for CI.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
