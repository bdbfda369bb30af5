package servertest

import (
	"context"
	"time"

	"github.com/korrigo/korrigo/jobs"
)

// StartJobs runs the server's job workers in the test process, polling fast,
// until the test ends. configure adjusts the test defaults (one worker, 100 ms
// polls) before the workers start.
func (e *Env) StartJobs(configure ...func(*jobs.Config)) {
	e.T.Helper()
	js := e.App.Services.Jobs
	err := js.Reconfigure(func(c *jobs.Config) {
		c.Workers = 1
		c.PollInterval = 100 * time.Millisecond
		for _, f := range configure {
			f(c)
		}
	})
	if err != nil {
		e.T.Fatal(err)
	}
	if err := js.Start(context.Background()); err != nil {
		e.T.Fatal(err)
	}
	e.T.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := js.Stop(ctx); err != nil {
			e.T.Logf("stop job workers: %v", err)
		}
	})
}
