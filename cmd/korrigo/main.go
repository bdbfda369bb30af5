// Command korrigo is the Korrigo server and its operator tools.
//
//	korrigo [serve]                 the GraphQL server (default)
//	korrigo migrate up|down|status  database migrations
//	korrigo createadmin -email … -name …
//	korrigo worker                  job workers only
//	korrigo recover                 reset what a crash left
//	korrigo pdf <op>                internal: the isolated PDF subprocess
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"

	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/migrations"
	"github.com/korrigo/korrigo/pdf"
	"github.com/korrigo/korrigo/server"
)

const usage = `usage: korrigo [command]

commands:
  serve                    run the GraphQL server (default)
  migrate up|down|status   apply, roll back (one step) or list database migrations
  createadmin              create an admin account (-email, -name; password from
                           KORRIGO_ADMIN_PASSWORD or generated and printed once)
  worker                   run background jobs only (scans, finalization, sweeps)
  recover [-workers-stopped] [-temp-age 1h]
                           reset what a crash left: interrupted jobs, copies stuck
                           in GRADING_IN_PROGRESS, temp files, orphan blobs

configuration: KORRIGO_* environment variables, see README.md
`

func main() {
	args := os.Args[1:]
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	if cmd == "pdf" { // before any logger or config: the child speaks a binary protocol
		os.Exit(pdf.Main(args))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch cmd {
	case "serve":
		err = serve(ctx)
	case "migrate":
		err = migrate(ctx, args)
	case "createadmin":
		err = createAdmin(ctx, args)
	case "worker":
		err = worker(ctx)
	case "recover":
		err = recoverCmd(ctx, args)
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "korrigo: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "korrigo %s: %v\n", cmd, err)
		os.Exit(1)
	}
}

func setup() (server.Config, *zap.Logger, error) {
	cfg, err := server.LoadConfig(os.Getenv)
	if err != nil {
		return cfg, nil, err
	}
	log, err := server.NewLogger(cfg)
	return cfg, log, err
}

func serve(ctx context.Context) error {
	cfg, log, err := setup()
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	app, err := server.NewApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer app.Close()
	if err := app.EnsureFirstAdmin(ctx); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	if err := startPprof(ctx, cfg, log); err != nil {
		_ = ln.Close()
		return err
	}
	app.StartBackground(ctx)
	return app.Serve(ctx, ln)
}

func migrate(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return errors.New("want one of: up, down, status")
	}
	cfg, err := server.LoadConfig(os.Getenv)
	if err != nil {
		return err
	}
	d, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer d.Close()
	switch args[0] {
	case "up":
		res, err := migrations.Up(ctx, d.SQL, d.Dialect)
		for _, r := range res {
			fmt.Printf("applied %d %s (%s)\n", r.Source.Version, r.Source.Path, r.Duration)
		}
		if err == nil && len(res) == 0 {
			fmt.Println("no pending migration")
		}
		return err
	case "down":
		r, err := migrations.Down(ctx, d.SQL, d.Dialect)
		if r != nil {
			fmt.Printf("rolled back %d %s\n", r.Source.Version, r.Source.Path)
		}
		return err
	case "status":
		st, err := migrations.Status(ctx, d.SQL, d.Dialect)
		for _, s := range st {
			fmt.Printf("%-10s %d %s\n", s.State, s.Source.Version, s.Source.Path)
		}
		return err
	}
	return fmt.Errorf("unknown migrate command %q", args[0])
}

func createAdmin(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("createadmin", flag.ContinueOnError)
	email := fs.String("email", "", "email of the new admin (required)")
	name := fs.String("name", "Administrator", "display name")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *email == "" {
		return errors.New("-email is required")
	}
	cfg, log, err := setup()
	if err != nil {
		return err
	}
	app, err := server.NewApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer app.Close()
	_, password, err := app.Services.Auth.CreateAdmin(ctx, *email, *name, cfg.AdminPassword)
	if err != nil {
		return err
	}
	if cfg.AdminPassword == "" {
		fmt.Printf("admin %s created; temporary password (shown once): %s\n", *email, password)
	} else {
		fmt.Printf("admin %s created\n", *email)
	}
	return nil
}
