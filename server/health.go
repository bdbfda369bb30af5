package server

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// Check is one readiness probe (database, Redis, data dir).
type Check struct {
	Name string
	Run  func(ctx context.Context) error
}

// healthz answers as long as the process serves HTTP.
func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"status":"ok"}`))
}

// readyz runs every check with a short timeout; any failure → 503 naming it
// (without the error text, which may hold hostnames).
func readyz(checks []Check, onFail func(name string, err error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		status := http.StatusOK
		result := map[string]string{}
		for _, c := range checks {
			if err := c.Run(ctx); err != nil {
				status = http.StatusServiceUnavailable
				result[c.Name] = "fail"
				onFail(c.Name, err)
				continue
			}
			result[c.Name] = "ok"
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"ready": status == http.StatusOK, "checks": result})
	}
}
