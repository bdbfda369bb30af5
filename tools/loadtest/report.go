package main

import (
	"fmt"
	"strings"
)

// AllChecksOK: every invariant holds and no unexpected error code was seen.
func (r *Report) AllChecksOK() bool {
	for _, res := range r.Results {
		for _, c := range res.Checks {
			if !c.OK {
				return false
			}
		}
		for _, s := range res.Summary {
			if s.Unexpected > 0 {
				return false
			}
		}
	}
	return true
}

func errorsCell(s Summary) string {
	if len(s.Errors) == 0 {
		return "0"
	}
	var parts []string
	for _, c := range sortedCodes(s.Errors) {
		parts = append(parts, fmt.Sprintf("%s×%d", c, s.Errors[c]))
	}
	return strings.Join(parts, " ")
}

func summaryRow(s Summary) string {
	return fmt.Sprintf("| %s | %d | %.1f | %.1f | %.2f | %.2f | %.2f | %s |\n",
		s.Name, s.Ops, s.Seconds, s.Throughput, s.P50ms, s.P95ms, s.P99ms, errorsCell(s))
}

const summaryHeader = "| measurement | ops | s | ops/s | p50 ms | p95 ms | p99 ms | errors by code |\n|---|---:|---:|---:|---:|---:|---:|---|\n"

// Markdown renders the report as tables.
func Markdown(r *Report) string {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "## Run `%s` — %s, %.0f s\n\n", r.Label, r.Started.Format("2006-01-02 15:04 UTC"), r.Seconds)
	fmt.Fprintf(&b, "Machine: %d × %s, %s RAM, %s, kernel %s", m.NProc, m.CPU, m.MemTotal, m.Go, m.Kernel)
	if m.Postgres != "" {
		fmt.Fprintf(&b, ", PostgreSQL %s", m.Postgres)
	}
	if m.Redis != "" {
		fmt.Fprintf(&b, ", Redis %s", m.Redis)
	}
	fmt.Fprintf(&b, "; load average at start: %s.\n\n", m.LoadAvg)
	if len(r.Baseline) > 0 {
		b.WriteString("### Against baselines (same machine, same run)\n\n| operation | korrigo /s | p99 ms | baseline | baseline /s | ratio | target | met | DB xacts/op (ours vs baseline) |\n|---|---:|---:|---|---:|---:|---:|---|---|\n")
		for _, x := range r.Baseline {
			target, met := "—", "—"
			if x.Target > 0 {
				target = fmt.Sprintf("≥ %.1f", x.Target)
			}
			if x.Met != nil {
				met = map[bool]string{true: "yes", false: "**no**"}[*x.Met]
			}
			base := "n/a"
			ratio := "n/a"
			if x.Base > 0 {
				base, ratio = fmt.Sprintf("%.0f", x.Base), fmt.Sprintf("%.2f", x.Ratio)
			}
			xacts := "—"
			if x.XactsPerOp > 0 {
				xacts = fmt.Sprintf("%.1f vs %.0f", x.XactsPerOp, x.BaseXactsPerOp)
			}
			fmt.Fprintf(&b, "| %s | %.0f | %.1f | %s | %s | %s | %s | %s | %s |\n", x.Operation, x.Ours, x.OursP99ms, x.Baseline, base, ratio, target, met, xacts)
		}
		b.WriteString("\n")
	}
	b.WriteString("### Scenarios\n\n")
	for _, res := range r.Results {
		fmt.Fprintf(&b, "#### %s\n\n%s", res.Name, summaryHeader)
		for _, s := range res.Summary {
			b.WriteString(summaryRow(s))
		}
		b.WriteString("\n")
		for _, c := range res.Checks {
			mark := "✅"
			if !c.OK {
				mark = "❌"
			}
			fmt.Fprintf(&b, "- %s %s — %s\n", mark, c.Name, c.Detail)
		}
		for _, n := range res.Notes {
			fmt.Fprintf(&b, "- note: %s\n", n)
		}
		for k, v := range res.Extra {
			fmt.Fprintf(&b, "- %s: %v\n", k, v)
		}
		b.WriteString("\n")
	}
	if len(r.Bench)+len(r.Seed) > 0 {
		fmt.Fprintf(&b, "### Closed-loop benchmarks and seeding\n\n%s", summaryHeader)
		for _, s := range append(append([]Summary{}, r.Seed...), r.Bench...) {
			if s.Name != "" {
				b.WriteString(summaryRow(s))
			}
		}
		b.WriteString("\n")
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	for _, p := range r.Profiles {
		fmt.Fprintf(&b, "- CPU profile: `%s`\n", p)
	}
	return b.String()
}
