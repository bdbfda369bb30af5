package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"time"

	"github.com/korrigo/korrigo/jobs"
	"github.com/korrigo/korrigo/server"
)

// worker runs job workers only (no GraphQL server): `korrigo worker`. Several
// may run against one PostgreSQL database; KORRIGO_WORKERS sets how many jobs
// each runs at once (default 2); KORRIGO_WORKER_METRICS_ADDR, when set, is
// where it serves /metrics and /healthz.
func worker(ctx context.Context) error {
	cfg, log, err := setup()
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	app, err := server.NewWorker(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer app.Close()
	ln, err := app.ListenWorkerMetrics()
	if err != nil {
		return err
	}
	log.Info("job worker started")
	return app.RunWorker(ctx, ln)
}

// recoverCmd resets what a crash left: `korrigo recover`.
func recoverCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("recover", flag.ContinueOnError)
	stopped := fs.Bool("workers-stopped", false,
		"no worker or serve process is running: jobs still marked running were abandoned")
	age := fs.Duration("temp-age", time.Hour, "remove temp files and unreferenced blobs older than this")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, log, err := setup()
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	cfg.ServeWorkers = 0 // recover must not race live workers of its own
	app, err := server.NewApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer app.Close()
	rep, err := app.Services.Jobs.Recover(ctx, jobs.RecoverOptions{WorkersStopped: *stopped}, *age)
	out, _ := json.MarshalIndent(rep, "", "  ")
	fmt.Println(string(out))
	return err
}
