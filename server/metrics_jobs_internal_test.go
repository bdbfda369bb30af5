package server

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"entgo.io/ent/dialect"

	"github.com/korrigo/korrigo/db/dbtest"
)

// A failing jobs query drops the jobs series from the scrape (and logs), it
// neither hangs nor fails the whole scrape.
func TestJobsCollectorErrorKeepsOtherSeries(t *testing.T) {
	d := dbtest.Open(t, dialect.SQLite)
	m := newMetrics(d.SQL)
	var logged strings.Builder
	m.errLog = printer{&logged}
	m.reg.MustRegister(newJobsCollector(d))
	if err := d.SQL.Close(); err != nil { // every query now fails
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	m.handler("").ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	if rec.Code != http.StatusOK || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("/metrics with a broken database: %d\n%s", rec.Code, body)
	}
	if strings.Contains(body, "korrigo_jobs{") || strings.Contains(body, "korrigo_job_queue_depth ") {
		t.Fatalf("jobs series served without a database:\n%s", body)
	}
	if !strings.Contains(logged.String(), "count jobs") {
		t.Fatalf("scrape error not logged: %q", logged.String())
	}
}

type printer struct{ b *strings.Builder }

func (p printer) Println(v ...any) { fmt.Fprintln(p.b, v...) }
