package server

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/korrigo/korrigo/auth/rules"
	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/job"
)

// jobScrapeTimeout bounds the queries a scrape runs: a slow database makes
// the scrape report an error for these series, never hang.
const jobScrapeTimeout = 2 * time.Second

// jobsCollector reads the job counts at scrape time: one GROUP BY over our
// jobs table (kind and state are enums: bounded labels) and one count of
// River's ready jobs.
type jobsCollector struct {
	d     *db.DB
	jobs  *prometheus.Desc
	queue *prometheus.Desc
}

func newJobsCollector(d *db.DB) *jobsCollector {
	return &jobsCollector{
		d: d,
		jobs: prometheus.NewDesc("korrigo_jobs",
			"Job rows by kind and state (our jobs table, all processes; terminal states accumulate).",
			[]string{"kind", "state"}, nil),
		queue: prometheus.NewDesc("korrigo_job_queue_depth",
			"Jobs ready to run and waiting for a free worker (River rows in state available; retries still in back-off are not counted).",
			nil, nil),
	}
}

func (c *jobsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.jobs
	ch <- c.queue
}

func (c *jobsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(rules.System(context.Background()), jobScrapeTimeout)
	defer cancel()
	var rows []struct {
		Kind  string `json:"kind"`
		State string `json:"state"`
		Count int    `json:"count"`
	}
	err := c.d.Client.Job.Query().GroupBy(job.FieldKind, job.FieldState).Aggregate(ent.Count()).Scan(ctx, &rows)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.jobs, fmt.Errorf("count jobs: %w", err))
	} else {
		for _, r := range rows {
			ch <- prometheus.MustNewConstMetric(c.jobs, prometheus.GaugeValue, float64(r.Count), r.Kind, r.State)
		}
	}
	var n int64
	if err := c.d.SQL.QueryRowContext(ctx, `SELECT count(*) FROM river_job WHERE state = 'available'`).Scan(&n); err != nil {
		ch <- prometheus.NewInvalidMetric(c.queue, fmt.Errorf("count queued river jobs: %w", err))
		return
	}
	ch <- prometheus.MustNewConstMetric(c.queue, prometheus.GaugeValue, float64(n))
}

// JobFinished implements jobs.Observer.
func (m *metrics) JobFinished(kind, outcome string, d time.Duration) {
	m.jobDuration.WithLabelValues(kind, outcome).Observe(d.Seconds())
}

// pdfRendered is pdf.Runner's Observe.
func (m *metrics) pdfRendered(op string, d time.Duration) {
	m.pdfDuration.WithLabelValues(op).Observe(d.Seconds())
}
