package main

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Check is one invariant verified after a scenario.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

func check(name string, problems []string, okDetail string) Check {
	if len(problems) == 0 {
		return Check{Name: name, OK: true, Detail: okDetail}
	}
	detail := strings.Join(problems[:min(5, len(problems))], "; ")
	if len(problems) > 5 {
		detail += fmt.Sprintf("; … %d problems in all", len(problems))
	}
	return Check{Name: name, OK: false, Detail: detail}
}

// LockKey identifies one lock change of a copy.
type LockKey struct {
	CopyID, Kind string
	At           time.Time
}

// CheckSubscribers: every subscriber saw every lock change of its exam. The
// reference is the union of what all subscribers saw (a change is the same
// event for everyone: same copy, kind and commit time), which must include
// mustSee (the changes the load generator caused and knows of, matched on
// copy and kind). Each subscriber must hold the whole reference, and its
// events of one copy must come in commit order.
func CheckSubscribers(mustSee []LockKey, subs [][]LockEvent) Check {
	return CheckSubscribersResync(mustSee, subs, nil)
}

// CheckSubscribersResync is CheckSubscribers that also says how many of the
// incomplete subscribers got a resync SNAPSHOT (the server dropped changes for
// them and sent the state instead: allowed by the API, but a change not seen).
func CheckSubscribersResync(mustSee []LockKey, subs [][]LockEvent, resynced []bool) Check {
	union := map[LockKey]bool{}
	for _, evs := range subs {
		for _, e := range evs {
			union[LockKey{e.CopyID, e.Kind, e.At.UTC()}] = true
		}
	}
	var problems []string
	seen := map[[2]string]bool{}
	for k := range union {
		seen[[2]string{k.CopyID, k.Kind}] = true
	}
	for _, k := range mustSee {
		if !seen[[2]string{k.CopyID, k.Kind}] {
			problems = append(problems, fmt.Sprintf("no subscriber saw %s of %s", k.Kind, k.CopyID))
		}
	}
	incomplete, disordered, incompleteResynced := 0, 0, 0
	for i, evs := range subs {
		have := map[LockKey]bool{}
		last := map[string]time.Time{}
		ordered := true
		for _, e := range evs {
			have[LockKey{e.CopyID, e.Kind, e.At.UTC()}] = true
			if t, ok := last[e.CopyID]; ok && e.At.Before(t) {
				ordered = false
			}
			last[e.CopyID] = e.At
		}
		if missing := len(union) - countIn(union, have); missing > 0 {
			if incomplete < 3 {
				problems = append(problems, fmt.Sprintf("subscriber %d missed %d of %d changes", i, missing, len(union)))
			}
			incomplete++
			if i < len(resynced) && resynced[i] {
				incompleteResynced++
			}
		}
		if !ordered {
			if disordered < 3 {
				problems = append(problems, fmt.Sprintf("subscriber %d got a copy's changes out of order", i))
			}
			disordered++
		}
	}
	if incomplete > 3 || disordered > 3 || incompleteResynced > 0 {
		problems = append(problems, fmt.Sprintf("%d subscribers incomplete (%d of them got a resync SNAPSHOT instead), %d out of order",
			incomplete, incompleteResynced, disordered))
	}
	return check("every subscriber saw every lock change of its exam", problems,
		fmt.Sprintf("%d subscribers × %d changes", len(subs), len(union)))
}

func countIn(union, have map[LockKey]bool) int {
	n := 0
	for k := range union {
		if have[k] {
			n++
		}
	}
	return n
}

// DraftOutcome is one autosave client: what it saved and what the server kept.
type DraftOutcome struct {
	CopyID string
	// Saved is the number of successful saves; LastSeq the sequence number of
	// the last successful one.
	Saved, LastSeq int
	// GotVersion and GotSeq are read back from myDraft.
	GotVersion, GotSeq int
}

// CheckDrafts: no lost draft version. One tab saving n times in sequence must
// leave version n and the payload of its last successful save.
func CheckDrafts(out []DraftOutcome) Check {
	var problems []string
	for _, d := range out {
		if d.Saved == 0 {
			continue
		}
		if d.GotVersion != d.Saved || d.GotSeq != d.LastSeq {
			problems = append(problems, fmt.Sprintf("copy %s: %d saves (last #%d) but version %d with #%d",
				d.CopyID, d.Saved, d.LastSeq, d.GotVersion, d.GotSeq))
		}
	}
	return check("no lost draft version", problems, fmt.Sprintf("%d drafts", len(out)))
}

// CheckSameJob: concurrent finalizeCopy calls on one copy all return one job.
func CheckSameJob(jobIDs []string) Check {
	distinct := slices.Compact(slices.Sorted(slices.Values(nonEmpty(jobIDs))))
	var problems []string
	if len(distinct) != 1 {
		problems = append(problems, fmt.Sprintf("%d distinct jobs from %d successful calls", len(distinct), len(nonEmpty(jobIDs))))
	}
	return check("concurrent finalizeCopy of one copy → one job", problems, fmt.Sprintf("%d calls, 1 job", len(nonEmpty(jobIDs))))
}

func nonEmpty(s []string) []string {
	var out []string
	for _, x := range s {
		if x != "" {
			out = append(out, x)
		}
	}
	return out
}

// CopyOutcome is a finalized copy read back after its job.
type CopyOutcome struct {
	ID, Status  string
	FinalPDF    bool
	FinalizeJob int // FINALIZE_COPY jobs of the copy
}

// CheckFinalized: each finalized copy is GRADED with one final PDF and one
// FINALIZE_COPY job; none is left GRADING_IN_PROGRESS.
func CheckFinalized(copies []CopyOutcome) []Check {
	var stuck, pdf []string
	for _, c := range copies {
		if c.Status != "GRADED" {
			stuck = append(stuck, fmt.Sprintf("copy %s is %s", c.ID, c.Status))
		}
		if c.Status == "GRADED" && !c.FinalPDF {
			pdf = append(pdf, fmt.Sprintf("copy %s GRADED without final PDF", c.ID))
		}
		if c.FinalizeJob != 1 {
			pdf = append(pdf, fmt.Sprintf("copy %s has %d FINALIZE_COPY jobs", c.ID, c.FinalizeJob))
		}
	}
	return []Check{
		check("no copy stuck (all finalized copies GRADED)", stuck, fmt.Sprintf("%d copies GRADED", len(copies))),
		check("one final PDF (and one FINALIZE_COPY job) per graded copy", pdf, fmt.Sprintf("%d copies", len(copies))),
	}
}
