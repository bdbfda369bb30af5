package main

import (
	"math"
	"slices"
	"sort"
	"sync"
	"time"
)

// Recorder collects the latency and outcome of every operation of one
// measurement: successes, and failures by GraphQL extensions.code (or a
// transport pseudo-code such as TRANSPORT or HTTP_502).
type Recorder struct {
	Name string
	// Expected are the error codes the scenario provokes on purpose (LOCKED,
	// VERSION_CONFLICT): they are reported but are not failures.
	Expected []string

	mu     sync.Mutex
	lat    []time.Duration
	errs   map[string]int
	ok     int
	start  time.Time
	finish time.Time
}

// NewRecorder starts a measurement now.
func NewRecorder(name string, expected ...string) *Recorder {
	return &Recorder{Name: name, Expected: expected, errs: map[string]int{}, start: time.Now()}
}

// Add records one operation: code "" is a success.
func (r *Recorder) Add(d time.Duration, code string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lat = append(r.lat, d)
	if code == "" {
		r.ok++
	} else {
		r.errs[code]++
	}
}

// Restart resets the clock (after a setup phase), keeping nothing.
func (r *Recorder) Restart() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lat, r.errs, r.ok, r.start = nil, map[string]int{}, 0, time.Now()
}

// Stop fixes the end of the measurement window (Summary calls it if needed).
func (r *Recorder) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finish.IsZero() {
		r.finish = time.Now()
	}
}

// Summary is what the report shows of a Recorder.
type Summary struct {
	Name       string         `json:"name"`
	Ops        int            `json:"ops"`
	OK         int            `json:"ok"`
	Seconds    float64        `json:"seconds"`
	Throughput float64        `json:"throughput_per_s"`
	P50ms      float64        `json:"p50_ms"`
	P95ms      float64        `json:"p95_ms"`
	P99ms      float64        `json:"p99_ms"`
	MaxMs      float64        `json:"max_ms"`
	Errors     map[string]int `json:"errors_by_code"`
	// Unexpected counts errors whose code is not in Expected.
	Unexpected int `json:"unexpected_errors"`
}

// Summary computes throughput (operations per second of the window) and
// latency percentiles.
func (r *Recorder) Summary() Summary {
	r.Stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Summary{Name: r.Name, Ops: len(r.lat), OK: r.ok, Errors: map[string]int{}}
	s.Seconds = r.finish.Sub(r.start).Seconds()
	if s.Seconds > 0 {
		s.Throughput = float64(s.Ops) / s.Seconds
	}
	sorted := slices.Clone(r.lat)
	slices.Sort(sorted)
	s.P50ms, s.P95ms, s.P99ms = ms(Percentile(sorted, 50)), ms(Percentile(sorted, 95)), ms(Percentile(sorted, 99))
	if len(sorted) > 0 {
		s.MaxMs = ms(sorted[len(sorted)-1])
	}
	for code, n := range r.errs {
		s.Errors[code] = n
		if !slices.Contains(r.Expected, code) {
			s.Unexpected += n
		}
	}
	return s
}

// Percentile is the nearest-rank percentile p (0 < p ≤ 100) of sorted
// durations: the smallest value such that at least p% of the values are ≤ it.
// Zero for no values.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	rank = max(1, min(n, rank))
	return sorted[rank-1]
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e4) / 100 }

// sortedCodes lists error codes in a stable order for printing.
func sortedCodes(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
