package graph

import (
	"go.uber.org/zap"

	"github.com/korrigo/korrigo/auth"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/exams"
	"github.com/korrigo/korrigo/grading"
	"github.com/korrigo/korrigo/jobs"
	"github.com/korrigo/korrigo/office"
	"github.com/korrigo/korrigo/realtime"
	"github.com/korrigo/korrigo/server/filesign"
)

// Services are the domain services the resolvers call.
type Services struct {
	Client  *ent.Client
	Auth    *auth.Service
	Exams   *exams.Service
	Grading *grading.Service
	Office  *office.Service  // students, identification, dispatch, results (issue 6)
	Jobs    *jobs.Service    // scans, imports, finalization (DESIGN.md §8–9)
	Files   *filesign.Signer // signed file URLs
	// Realtime serves the subscriptions (DESIGN.md §10).
	Realtime *realtime.Service
	Logger   *zap.Logger
}
