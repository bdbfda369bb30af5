package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/korrigo/korrigo/server"
)

// startPprof serves net/http/pprof on KORRIGO_PPROF_ADDR, a loopback address,
// for profiling in development (tools/loadtest collects CPU profiles from it).
// Unset (the default) serves nothing; production refuses to start with it set.
// It is a separate listener: the pprof handlers are never on the public port.
func startPprof(ctx context.Context, cfg server.Config, log *zap.Logger) error {
	addr := strings.TrimSpace(os.Getenv("KORRIGO_PPROF_ADDR"))
	if addr == "" {
		return nil
	}
	if cfg.Production() {
		return errors.New("config: KORRIGO_PPROF_ADDR is for development only; unset it in production")
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("config: KORRIGO_PPROF_ADDR: %w", err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("config: KORRIGO_PPROF_ADDR must be a loopback address, got %q", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("pprof: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("pprof server stopped", zap.Error(err))
		}
	}()
	log.Warn("pprof enabled (development only)", zap.String("addr", ln.Addr().String()))
	return nil
}
