package server

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/korrigo/korrigo/apperr"
)

// metrics are the Prometheus series of one serve process, on a registry of
// its own (tests run many apps in one process). Labels are bounded: routes
// are the mux patterns, operations are the schema's root field names (never
// the client's operation name), outcomes are the contract's error codes.
type metrics struct {
	reg *prometheus.Registry

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	operations   *prometheus.CounterVec
	opDuration   *prometheus.HistogramVec
	wsConns      prometheus.Gauge
	subs         prometheus.Gauge
	renders      *prometheus.CounterVec
	conflicts    *prometheus.CounterVec
	jobDuration  *prometheus.HistogramVec
	pdfDuration  *prometheus.HistogramVec
	// labelCache maps *ast.OperationDefinition to its *operationLabels.
	labelCache sync.Map
	labelCount atomic.Int64
	// errLog receives scrape errors (nil: not logged).
	errLog promhttp.Logger
}

func newMetrics(db *sql.DB) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "korrigo_http_requests_total", Help: "HTTP requests by route, method and status.",
	}, []string{"route", "method", "status"})
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "korrigo_http_request_duration_seconds", Help: "HTTP request duration by route and method (WebSocket excluded).",
		Buckets: prometheus.DefBuckets,
	}, []string{"route", "method"})
	m.operations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "korrigo_graphql_operations_total",
		Help: "GraphQL operations (HTTP and WebSocket) by root field, type and outcome (ok or the error code); subscription events count too.",
	}, []string{"operation", "type", "outcome"})
	m.opDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "korrigo_graphql_operation_duration_seconds", Help: "GraphQL query and mutation duration by root field and type.",
		Buckets: prometheus.DefBuckets,
	}, []string{"operation", "type"})
	m.wsConns = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "korrigo_websocket_connections", Help: "Open, initialized GraphQL WebSocket connections.",
	})
	m.subs = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "korrigo_graphql_subscriptions", Help: "Active GraphQL subscriptions.",
	})
	m.renders = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "korrigo_graphql_subscription_renders_total",
		Help: "Subscription events sent, by render: own (executed for that subscriber) or shared (the bytes rendered for another subscriber of the same event, operation and viewer class).",
	}, []string{"render"})
	m.conflicts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "korrigo_lock_conflicts_total",
		Help: "Grading conflicts answered by the API, by kind (LOCKED, LOCK_REQUIRED, VERSION_CONFLICT).",
	}, []string{"kind"})
	m.jobDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "korrigo_job_duration_seconds",
		Help:    "Job attempt duration by kind and outcome (succeeded, or failed: may be retried), for attempts run in this process.",
		Buckets: []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
	}, []string{"kind", "outcome"})
	m.pdfDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "korrigo_pdf_render_duration_seconds",
		Help:    "PDF child process duration by operation (validate, split, import, burn, ...), for children run by this process.",
		Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"operation"})
	m.reg.MustRegister(m.httpRequests, m.httpDuration, m.operations, m.opDuration, m.wsConns, m.subs, m.renders, m.conflicts,
		m.jobDuration, m.pdfDuration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if db != nil {
		m.reg.MustRegister(collectors.NewDBStatsCollector(db, "korrigo"))
	}
	return m
}

// instrument counts and times requests by their mux pattern; it wraps the mux
// itself, which sets r.Pattern on the request it routes.
func (m *metrics) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		if i := strings.IndexByte(route, ' '); i >= 0 {
			route = route[i+1:] // "GET /healthz" → "/healthz"
		}
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		m.httpRequests.WithLabelValues(route, r.Method, strconv.Itoa(status)).Inc()
		if status != http.StatusSwitchingProtocols {
			m.httpDuration.WithLabelValues(route, r.Method).Observe(time.Since(start).Seconds())
		}
	})
}

// handler serves /metrics; with a token configured (required in production)
// it wants `Authorization: Bearer <token>`.
func (m *metrics) handler(token string) http.Handler {
	// A failing collector (the jobs query timing out) drops its own series
	// and logs; the others are still served.
	h := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError, ErrorLog: m.errLog})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if token != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
				writeError(w, http.StatusUnauthorized, apperr.Unauthenticated, "metrics need the metrics token")
				return
			}
		}
		w.Header().Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

// operatorRoutes are what every process with a listener serves to its
// operators, serve and `korrigo worker` alike: /metrics (token rule above)
// and /healthz.
func (a *App) operatorRoutes(mux *http.ServeMux) {
	mux.Handle("GET /metrics", a.metrics.handler(a.Config.MetricsToken))
	mux.HandleFunc("GET /healthz", healthz)
}

// operationLabel names an operation by its root fields (schema names only).
func operationLabel(oc *graphql.OperationContext) (name, typ string) {
	if oc == nil || oc.Operation == nil {
		return "unknown", "unknown"
	}
	var fields []string
	for _, sel := range oc.Operation.SelectionSet {
		if f, ok := sel.(*ast.Field); ok && !strings.HasPrefix(f.Name, "__") {
			fields = append(fields, f.Name)
		}
	}
	if len(fields) == 0 {
		fields = []string{"__introspection"}
	}
	if len(fields) > 3 {
		fields = append(fields[:3], "…")
	}
	return strings.Join(fields, ","), string(oc.Operation.Operation)
}

// aroundResponses records every GraphQL response, including operations
// refused before execution (limits, rate limits), and the conflicts.
func (m *metrics) aroundResponses(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	if resp == nil {
		return resp
	}
	var oc *graphql.OperationContext
	if graphql.HasOperationContext(ctx) {
		oc = graphql.GetOperationContext(ctx)
	}
	l := m.labels(oc)
	name, typ := l.name, l.typ
	outcome := "ok"
	for i, e := range resp.Errors {
		code, _ := e.Extensions["code"].(string)
		if code == "" {
			code = "ERROR"
		}
		if i == 0 {
			outcome = code
		}
		switch apperr.Code(code) {
		case apperr.Locked, apperr.LockRequired, apperr.VersionConflict:
			m.conflicts.WithLabelValues(code).Inc()
		}
	}
	if outcome == "ok" {
		l.ok.Inc()
	} else {
		m.operations.WithLabelValues(name, typ, outcome).Inc()
	}
	if oc != nil && typ != string(ast.Subscription) && !oc.Stats.OperationStart.IsZero() {
		m.opDuration.WithLabelValues(name, typ).Observe(time.Since(oc.Stats.OperationStart).Seconds())
	}
	return resp
}

// operationLabels is an operation's labels and its "ok" counter, computed
// once per operation document: a subscription passes through aroundResponses
// once per event, on every one of its subscribers.
type operationLabels struct {
	name, typ string
	ok        prometheus.Counter
}

// maxLabelCache bounds labelCache; it is emptied when full. Documents come
// from gqlgen's query cache (1000 entries), so subscribers of one query share
// one *ast.OperationDefinition.
const maxLabelCache = 2000

func (m *metrics) labels(oc *graphql.OperationContext) *operationLabels {
	var op *ast.OperationDefinition
	if oc != nil && oc.Operation != nil {
		op = oc.Operation
		if l, ok := m.labelCache.Load(op); ok {
			return l.(*operationLabels)
		}
	}
	name, typ := operationLabel(oc)
	l := &operationLabels{name: name, typ: typ, ok: m.operations.WithLabelValues(name, typ, "ok")}
	if op != nil {
		if m.labelCount.Add(1) > maxLabelCache {
			m.labelCache.Clear()
			m.labelCount.Store(1)
		}
		m.labelCache.Store(op, l) // holding op: its address is not reused while cached
	}
	return l
}

// aroundOperations keeps the active subscriptions gauge: subscriptions over a
// WebSocket (over HTTP, gqlgen answers a subscription with its first event and
// ends). The WebSocket transport calls a subscription's response handler until
// it returns nil, which it does once the stream ended or the subscription's
// context was cancelled (client stop, socket closed, shutdown); a panic ends
// it too. No context.AfterFunc: it would keep one more context per
// subscription in memory.
func (m *metrics) aroundOperations(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	oc := graphql.GetOperationContext(ctx)
	if oc == nil || oc.Operation == nil || oc.Operation.Operation != ast.Subscription || !overWebSocket(ctx) {
		return next(ctx)
	}
	h := next(ctx)
	m.subs.Inc()
	ended := false // only the subscription's goroutine calls the handler
	return func(ctx context.Context) (r *graphql.Response) {
		if ended {
			return h(ctx)
		}
		defer func() {
			if r == nil { // also when h panics: the subscription is over
				ended = true
				m.subs.Dec()
			}
		}()
		return h(ctx)
	}
}

// websocket wraps the transport's init and close to count connections.
func (m *metrics) websocket(ws transport.Websocket) transport.Websocket {
	init, closeFn := ws.InitFunc, ws.CloseFunc
	ws.InitFunc = func(ctx context.Context, p transport.InitPayload) (context.Context, *transport.InitPayload, error) {
		if init != nil {
			c, ack, err := init(ctx, p)
			if err != nil {
				return c, ack, err
			}
			ctx, p2 := c, ack
			m.wsConns.Inc()
			return context.WithValue(ctx, wsCountedKey{}, true), p2, nil
		}
		m.wsConns.Inc()
		return context.WithValue(ctx, wsCountedKey{}, true), nil, nil
	}
	ws.CloseFunc = func(ctx context.Context, code int) {
		if counted, _ := ctx.Value(wsCountedKey{}).(bool); counted {
			m.wsConns.Dec()
		}
		if closeFn != nil {
			closeFn(ctx, code)
		}
	}
	return ws
}

type wsCountedKey struct{}
