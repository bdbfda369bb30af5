package pdf

import (
	"errors"
	"fmt"
)

// Reasons an uploaded file is refused. They are stable: the API layer maps
// them to INVALID_PDF details and clients may switch on them.
const (
	ReasonEmpty        = "empty"
	ReasonNotPDF       = "not_a_pdf"
	ReasonTruncated    = "truncated"
	ReasonUnparsable   = "unparsable"
	ReasonEncrypted    = "encrypted"
	ReasonTooManyPages = "too_many_pages"
	ReasonNoPages      = "no_pages"
)

// InvalidPDFError reports a file that Korrigo refuses to process. Message is
// meant for the person who uploaded the file; Detail is the parser's own
// wording, for logs only.
type InvalidPDFError struct {
	Reason  string `json:"reason"`
	Message string `json:"message"`
	Detail  string `json:"detail,omitempty"`
}

func (e *InvalidPDFError) Error() string {
	if e.Detail == "" {
		return "invalid PDF: " + e.Message
	}
	return fmt.Sprintf("invalid PDF: %s (%s)", e.Message, e.Detail)
}

func invalid(reason string, detail error) *InvalidPDFError {
	e := &InvalidPDFError{Reason: reason, Message: reasonMessage(reason)}
	if detail != nil {
		e.Detail = detail.Error()
	}
	return e
}

func tooManyPages(pages, maxPages int) *InvalidPDFError {
	return &InvalidPDFError{
		Reason:  ReasonTooManyPages,
		Message: fmt.Sprintf("The PDF has %d pages; at most %d are allowed.", pages, maxPages),
	}
}

func reasonMessage(reason string) string {
	switch reason {
	case ReasonEmpty:
		return "The file is empty."
	case ReasonNotPDF:
		return "The file is not a PDF document."
	case ReasonTruncated:
		return "The PDF file is incomplete (truncated); please upload it again."
	case ReasonUnparsable:
		return "The PDF file is damaged and cannot be read."
	case ReasonEncrypted:
		return "The PDF is encrypted or password-protected; please upload an unprotected file."
	case ReasonTooManyPages:
		return "The PDF has too many pages."
	case ReasonNoPages:
		return "The PDF has no pages."
	}
	return "The PDF file cannot be processed."
}

// asInvalid finds an *InvalidPDFError in err's chain.
func asInvalid(err error) (*InvalidPDFError, bool) {
	var ipe *InvalidPDFError
	ok := errors.As(err, &ipe)
	return ipe, ok
}
