package graph

import (
	"context"
	"fmt"
	"io"

	"github.com/99designs/gqlgen/graphql"

	"github.com/korrigo/korrigo/auth/viewer"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/examcopy"
	"github.com/korrigo/korrigo/jobs"
)

// readUpload reads a multipart file (the transport already holds it in
// memory), refusing more than the upload limit.
func readUpload(f graphql.Upload) (jobs.Upload, error) {
	if f.Size > jobs.MaxUploadBytes {
		return jobs.Upload{}, jobs.TooLarge()
	}
	data, err := io.ReadAll(io.LimitReader(f.File, jobs.MaxUploadBytes+1))
	if err != nil {
		return jobs.Upload{}, fmt.Errorf("read upload: %w", err)
	}
	if len(data) > jobs.MaxUploadBytes {
		return jobs.Upload{}, jobs.TooLarge()
	}
	return jobs.Upload{Data: data, Filename: f.Filename}, nil
}

// fileURL is a signed link to a copy's file for the caller, or null when
// there is no such file. The copy was read through the caller's privacy
// rules, so they may read it; the file route checks again.
func (r *copyResolver) fileURL(ctx context.Context, c *ent.ExamCopy, kind string) (*string, error) {
	v := viewer.FromContext(ctx)
	if v == nil || r.Files == nil {
		return nil, nil
	}
	switch kind {
	case "pages":
		if c.SourceBlobID == nil || v.IsStudent() {
			return nil, nil
		}
	case "final":
		if c.FinalBlobID == nil || c.Status != examcopy.StatusGRADED {
			return nil, nil
		}
	}
	u := r.Files.URL(c.ID, kind, v.UserID)
	return &u, nil
}
