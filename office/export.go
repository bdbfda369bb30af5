package office

import (
	"context"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/ent"
)

// ExportGrades will queue an EXPORT_GRADES job (admins). Not built yet.
func (s *Service) ExportGrades(ctx context.Context, examID, format string, coefficient *float64) (*ent.Job, error) {
	if _, err := admin(ctx); err != nil {
		return nil, err
	}
	return nil, apperr.BadInputf("grade exports are not available yet")
}
