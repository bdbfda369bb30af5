package model

import (
	"time"

	"github.com/korrigo/korrigo/ent"
)

// Session is the result of login: the secret is returned once, never stored.
type Session struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expiresAt"`
	User      *ent.User `json:"user"`
}
