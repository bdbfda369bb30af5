package graph

import (
	"go.uber.org/zap"

	"github.com/korrigo/korrigo/auth"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/exams"
	"github.com/korrigo/korrigo/grading"
	"github.com/korrigo/korrigo/realtime"
)

// Services are the domain services the resolvers call.
type Services struct {
	Client  *ent.Client
	Auth    *auth.Service
	Exams   *exams.Service
	Grading *grading.Service
	// Realtime serves the subscriptions (DESIGN.md §10).
	Realtime *realtime.Service
	Logger   *zap.Logger
}
