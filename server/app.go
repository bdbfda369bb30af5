package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/korrigo/korrigo/auth"
	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/exams"
	"github.com/korrigo/korrigo/grading"
	"github.com/korrigo/korrigo/graph"
	"github.com/korrigo/korrigo/office"
	"github.com/korrigo/korrigo/pubsub"
	"github.com/korrigo/korrigo/realtime"
	"github.com/korrigo/korrigo/server/filesign"
	"github.com/korrigo/korrigo/server/httpctx"
	"github.com/korrigo/korrigo/server/wsgorilla"
)

// App is one `korrigo serve` process: database, services and HTTP server.
type App struct {
	Config   Config
	Log      *zap.Logger
	DB       *db.DB
	Services graph.Services
	Handler  http.Handler
	// Broker carries realtime events: Redis when KORRIGO_REDIS_URL is set.
	Broker pubsub.Broker

	rate           *rateLimiter
	sockets        *socketAuth
	metrics        *metrics
	reporter       *reporter
	stopBackground context.CancelFunc
	background     chan struct{}
}

// NewApp opens the database, applies migrations and wires the services.
func NewApp(ctx context.Context, cfg Config, log *zap.Logger) (*App, error) {
	d, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	if err := d.Migrate(ctx); err != nil {
		d.Close()
		return nil, err
	}
	log.Info("database ready", zap.String("dialect", d.Dialect))
	a, err := NewAppWithDB(cfg, log, d)
	if err != nil {
		d.Close()
	}
	return a, err
}

// NewAppWithDB wires the services over an open, migrated database.
func NewAppWithDB(cfg Config, log *zap.Logger, d *db.DB) (*App, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", cfg.DataDir, err)
	}
	bctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	broker, err := pubsub.Open(bctx, cfg.RedisURL, log.Named("pubsub"))
	if err != nil {
		return nil, err
	}
	m := newMetrics(d.SQL)
	m.errLog = zap.NewStdLog(log.Named("metrics"))
	m.reg.MustRegister(newJobsCollector(d))
	js, err := newJobs(cfg, log, d, realtime.NewPublisher(broker, log.Named("realtime")), m)
	if err != nil {
		return nil, errors.Join(err, broker.Close())
	}
	// Logouts and revocations tell every replica's open sockets (socketAuth).
	authn := auth.NewService(d.Client, log.Named("auth"), auth.Options{
		CredentialsChanged: publishCredentialsChanged(broker, log.Named("websocket")),
	})
	services := graph.Services{
		Client:   d.Client,
		Auth:     authn,
		Exams:    exams.NewService(d.Client, log.Named("exams")),
		Grading:  grading.NewService(d, log.Named("grading"), realtime.NewPublisher(broker, log.Named("realtime")), grading.WithJobEnqueuer(js)),
		Jobs:     js,
		Files:    filesign.New(cfg.FileURLSecret, 0),
		Realtime: realtime.NewService(d.Client, broker, log.Named("realtime")),
		Logger:   log,
	}
	js.SetGrading(services.Grading)
	services.Office = office.NewService(d, log.Named("office"), realtime.NewPublisher(broker, log.Named("realtime")), services.Auth)
	services.Office.SetJobs(js)
	services.Office.SetAccounts(services.Auth)
	js.SetExporter(services.Office)
	a := &App{Config: cfg, Log: log, DB: d, Services: services, Broker: broker, metrics: m}
	a.sockets = newSocketAuth(services.Auth, log.Named("websocket"), cfg.WSAuthInterval, cfg.WSInitTimeout)
	if err := a.sockets.listen(broker); err != nil {
		return nil, errors.Join(err, broker.Close())
	}
	if a.rate, err = newRateLimiter(cfg, log.Named("ratelimit")); err != nil {
		return nil, errors.Join(err, broker.Close())
	}
	if a.reporter, err = newReporter(cfg, log.Named("sentry")); err != nil {
		return nil, errors.Join(err, broker.Close(), a.rate.close())
	}
	a.Handler = a.routes()
	return a, nil
}

func (a *App) routes() http.Handler {
	mux := http.NewServeMux()
	gql := newGraphQLHandler(a.Services, a.Log.Named("graphql"), a.Config.Production(), a.reporter)
	m := a.metrics
	m.reg.MustRegister(a.rate.collectors...)
	gql.AddTransport(wsgorilla.Detach(m.websocket(a.websocketTransport()), wsgorilla.DetachOptions{
		OnPanic: a.socketPanicked,
		// As documented on Exchange: no writer and no request over WebSocket.
		// The net/http response behind them (and its connection state) and the
		// upgrade request can then be freed.
		Upgraded: func(ctx context.Context) {
			if x := httpctx.FromContext(ctx); x != nil {
				x.Writer, x.Request = nil, nil
			}
		},
	}))
	gql.Use(rateLimitExt{a.rate})
	gql.AroundOperations(m.aroundOperations)
	gql.AroundResponses(m.aroundResponses)
	gql.AroundResponses(operationLog(a.Log.Named("graphql"), a.Config.SlowRequest))
	// Last: its response interceptor must be the innermost, so that every
	// layer above still sees each subscriber's response.
	gql.Use(newSharedRenders(m.renders))
	mux.Handle("/graphql", guardCSRF(withIdentity(a.Services.Auth, a.Config.Production(), a.Log, a.reporter,
		withRateHeaders(guardUploads(limitBody(refuseBatches(wsgorilla.Closable(gql))))))))
	mux.Handle("GET "+filesign.Path, withIdentity(a.Services.Auth, a.Config.Production(), a.Log, a.reporter, a.files()))
	mux.Handle("GET "+filesign.ExportPath, withIdentity(a.Services.Auth, a.Config.Production(), a.Log, a.reporter, a.exportFiles()))
	mux.Handle("GET /graphiql", graphiql())
	mux.Handle("GET /graphiql/", graphiql())
	a.operatorRoutes(mux)
	mux.Handle("GET /readyz", readyz(a.checks(), func(name string, err error) {
		a.Log.Warn("readiness check failed", zap.String("check", name), zap.Error(err))
	}))
	return withDeadlines(a.Config.TransferTimeout, withSecurityHeaders(a.Config.Production(),
		withClientIP(a.Config.TrustedProxies, withRequestID(withAccessLog(a.Log.Named("http"), a.Config.SlowRequest, m.instrument(withRecover(a.Log.Named("http"), a.reporter, mux)))))))
}

// limitBody caps JSON request bodies; uploads get their own limit.
func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isMultipart(r) { // guardUploads has set its own limit
			next.ServeHTTP(w, r)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		next.ServeHTTP(w, r)
	})
}

func (a *App) checks() []Check {
	checks := []Check{
		{Name: "database", Run: a.DB.Ping},
		// The blob store's temp dir under KORRIGO_DATA_DIR is where every file is written first.
		{Name: "data_dir", Run: func(context.Context) error { return a.Services.Jobs.Store().CheckWritable() }},
	}
	if a.Config.RedisURL != "" {
		checks = append(checks, Check{Name: "redis", Run: a.Broker.Ping})
	}
	return checks
}

// StartBackground runs the periodic work of a serve process (lease sweeper).
func (a *App) StartBackground(ctx context.Context) {
	ctx, a.stopBackground = context.WithCancel(ctx)
	a.background = make(chan struct{})
	go func() {
		defer close(a.background)
		jobsDone := make(chan struct{})
		go func() {
			defer close(jobsDone)
			if err := a.RunJobs(ctx); err != nil {
				a.Log.Error("job workers", zap.Error(err))
			}
		}()
		a.Services.Grading.RunSweeper(ctx, 5*time.Second)
		<-jobsDone
	}()
}

// EnsureFirstAdmin creates the first admin on an empty database and prints its
// credentials once, on the console only (not in the logs).
func (a *App) EnsureFirstAdmin(ctx context.Context) error {
	created, email, password, err := a.Services.Auth.EnsureFirstAdmin(ctx, a.Config.AdminEmail, a.Config.AdminPassword)
	if err != nil {
		return fmt.Errorf("first admin: %w", err)
	}
	if !created {
		return nil
	}
	a.Log.Info("first admin account created", zap.String("email", email))
	if a.Config.AdminPassword == "" {
		fmt.Fprintf(os.Stdout, "\n  First admin account (shown once, change it at first login):\n    email:    %s\n    password: %s\n\n", email, password)
	}
	return nil
}

// Serve listens until ctx ends, then shuts down gracefully: stop accepting, cancel
// the root context (ends WebSocket subscriptions, which Shutdown does not track),
// wait for in-flight requests and background work.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	root, cancelRoot := context.WithCancel(context.Background())
	defer cancelRoot()
	// Marked so that cancelling it closes the WebSockets, which run detached
	// from their requests (wsgorilla.Detach).
	srv := a.newHTTPServer(wsgorilla.WithServerContext(root), a.Handler)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	a.Log.Info("serving", zap.String("addr", ln.Addr().String()), zap.String("env", a.Config.Env))
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	a.Log.Info("shutting down")
	cancelRoot()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), a.Config.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	if a.stopBackground != nil {
		a.stopBackground()
		<-a.background
	}
	return err
}

// Close releases the broker and the database.
func (a *App) Close() error {
	a.reporter.flush(5 * time.Second)
	return errors.Join(a.Broker.Close(), a.rate.close(), a.DB.Close())
}
