package pdf

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
)

var disableConfigDir sync.Once

// newConfig returns a pdfcpu configuration. The first call switches pdfcpu's
// config directory off: otherwise pdfcpu writes a config folder (and fonts,
// certificates) under the home directory of whoever runs the server.
func newConfig() *model.Configuration {
	disableConfigDir.Do(api.DisableConfigDir)
	conf := model.NewDefaultConfiguration()
	conf.ValidationMode = model.ValidationRelaxed
	// Re-reading a freshly written booklet should not need decoding every
	// stream; we never inspect image data.
	conf.DecodeAllStreams = false
	return conf
}

// writeContext serialises ctx into a new byte slice.
func writeContext(ctx *model.Context) ([]byte, error) {
	var buf bytes.Buffer
	if err := api.WriteContext(ctx, &buf); err != nil {
		return nil, fmt.Errorf("write pdf: %w", err)
	}
	return buf.Bytes(), nil
}
