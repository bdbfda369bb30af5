package main

import (
	"testing"
	"time"
)

func TestPercentileNearestRank(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	cases := []struct {
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 50, 0},
		{ms(7), 99, 7 * time.Millisecond},
		{ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{ms(1, 2, 3, 4), 51, 3 * time.Millisecond},
		{ms(1, 2, 3, 4), 100, 4 * time.Millisecond},
		{ms(15, 20, 35, 40, 50), 30, 20 * time.Millisecond}, // the textbook nearest-rank example
		{ms(15, 20, 35, 40, 50), 40, 20 * time.Millisecond},
		{ms(15, 20, 35, 40, 50), 50, 35 * time.Millisecond},
	}
	for _, c := range cases {
		if got := Percentile(c.in, c.p); got != c.want {
			t.Errorf("Percentile(%v, %v) = %v, want %v", c.in, c.p, got, c.want)
		}
	}
	var hundred []time.Duration
	for i := 1; i <= 100; i++ {
		hundred = append(hundred, time.Duration(i)*time.Millisecond)
	}
	if got := Percentile(hundred, 99); got != 99*time.Millisecond {
		t.Errorf("p99 of 1..100 ms = %v", got)
	}
}

func TestRecorderSummaryCountsUnexpectedErrors(t *testing.T) {
	r := NewRecorder("x", "LOCKED")
	r.Add(time.Millisecond, "")
	r.Add(2*time.Millisecond, "LOCKED")
	r.Add(3*time.Millisecond, "INTERNAL_SERVER_ERROR")
	s := r.Summary()
	if s.Ops != 3 || s.OK != 1 || s.Unexpected != 1 || s.Errors["LOCKED"] != 1 {
		t.Fatalf("summary %+v", s)
	}
	if s.P50ms != 2 || s.MaxMs != 3 {
		t.Fatalf("latencies %+v", s)
	}
}

func TestCheckSubscribers(t *testing.T) {
	at := time.Date(2026, 11, 30, 1, 0, 0, 0, time.UTC)
	a1 := LockEvent{Kind: "ACQUIRED", CopyID: "c1", At: at}
	r1 := LockEvent{Kind: "RELEASED", CopyID: "c1", At: at.Add(time.Second)}
	a2 := LockEvent{Kind: "ACQUIRED", CopyID: "c2", At: at}
	must := []LockKey{{CopyID: "c1", Kind: "ACQUIRED"}, {CopyID: "c2", Kind: "ACQUIRED"}}

	if c := CheckSubscribers(must, [][]LockEvent{{a1, a2, r1}, {a2, a1, r1}}); !c.OK {
		t.Fatalf("complete subscribers refused: %+v", c)
	}
	if c := CheckSubscribers(must, [][]LockEvent{{a1, a2, r1}, {a1, a2}}); c.OK {
		t.Fatal("a subscriber that missed RELEASED passed")
	}
	if c := CheckSubscribers(must, [][]LockEvent{{a1}, {a1}}); c.OK {
		t.Fatal("nobody saw c2's ACQUIRED, yet the check passed")
	}
	if c := CheckSubscribers(must, [][]LockEvent{{a2, r1, a1}}); c.OK {
		t.Fatal("RELEASED before ACQUIRED of the same copy passed")
	}
}

func TestCheckDrafts(t *testing.T) {
	ok := []DraftOutcome{{CopyID: "a", Saved: 10, LastSeq: 10, GotVersion: 10, GotSeq: 10}, {CopyID: "b"}}
	if c := CheckDrafts(ok); !c.OK {
		t.Fatalf("%+v", c)
	}
	lost := []DraftOutcome{{CopyID: "a", Saved: 10, LastSeq: 10, GotVersion: 9, GotSeq: 9}}
	if c := CheckDrafts(lost); c.OK {
		t.Fatal("a lost version passed")
	}
	stale := []DraftOutcome{{CopyID: "a", Saved: 10, LastSeq: 10, GotVersion: 10, GotSeq: 8}}
	if c := CheckDrafts(stale); c.OK {
		t.Fatal("a stale payload passed")
	}
}

func TestCheckSameJobAndFinalized(t *testing.T) {
	if c := CheckSameJob([]string{"j1", "", "j1"}); !c.OK {
		t.Fatalf("%+v", c)
	}
	if c := CheckSameJob([]string{"j1", "j2"}); c.OK {
		t.Fatal("two jobs passed")
	}
	if c := CheckSameJob(nil); c.OK {
		t.Fatal("no successful call passed")
	}
	good := []CopyOutcome{{ID: "c", Status: "GRADED", FinalPDF: true, FinalizeJob: 1}}
	for _, c := range CheckFinalized(good) {
		if !c.OK {
			t.Fatalf("%+v", c)
		}
	}
	for _, bad := range []CopyOutcome{
		{ID: "c", Status: "GRADING_IN_PROGRESS", FinalizeJob: 1},
		{ID: "c", Status: "GRADED", FinalPDF: false, FinalizeJob: 1},
		{ID: "c", Status: "GRADED", FinalPDF: true, FinalizeJob: 2},
	} {
		failed := false
		for _, c := range CheckFinalized([]CopyOutcome{bad}) {
			failed = failed || !c.OK
		}
		if !failed {
			t.Fatalf("%+v passed", bad)
		}
	}
}
