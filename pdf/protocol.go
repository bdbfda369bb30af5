package pdf

import "encoding/json"

// Operations a Runner can ask the child process to perform.
const (
	OpValidate = "validate"
	OpSplit    = "split"
	OpImport   = "import"
	OpBurn     = "burn"
	OpSanitize = "sanitize"
	OpMask     = "mask"
)

// The parent and the child exchange files in a private directory that the
// parent creates and removes: the request is input.pdf and params.json, the
// reply result.json plus the output files it names. Files rather than pipes
// keep tens of megabytes cheap in both directions and let a crash leave
// nothing half-read.
const (
	inputName  = "input.pdf"
	paramsName = "params.json"
	resultName = "result.json"
	tmpName    = "tmp" // the child's TMPDIR, so even its temp files die with the directory
)

// progressPrefix marks progress lines on the child's stdout.
const progressPrefix = "korrigo-pdf-progress "

// Environment read by the child.
const (
	envMemoryLimit = "KORRIGO_PDF_MEMORY_LIMIT" // bytes; hard address-space headroom
)

type childResult struct {
	Meta  json.RawMessage `json:"meta,omitempty"`
	Files []string        `json:"files,omitempty"`
	Error *childError     `json:"error,omitempty"`
}

// childError carries an operation's failure across the process boundary.
// An *InvalidPDFError travels whole so callers can still switch on Reason.
type childError struct {
	Invalid *InvalidPDFError `json:"invalid,omitempty"`
	Message string           `json:"message"`
}

type validateParams struct {
	MaxPages int `json:"maxPages"`
}

type splitParams struct {
	PagesPerBooklet int `json:"pagesPerBooklet"`
}

type burnParams struct {
	Marks   []PageMarks `json:"marks"`
	Summary Summary     `json:"summary"`
}

type maskParams struct {
	PagesPerBooklet int `json:"pagesPerBooklet"`
}
