package pdf

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
)

func TestScratch(t *testing.T) {
	api.DisableConfigDir()
	files, _ := filepath.Glob("/work/shared/testdata/*.pdf")
	for _, f := range files {
		b, _ := os.ReadFile(f)
		func() {
			defer func() {
				if r := recover(); r != nil {
					fmt.Println(f, "PANIC", r)
				}
			}()
			ctx, err := api.ReadContext(bytes.NewReader(b), model.NewDefaultConfiguration())
			if err != nil {
				fmt.Printf("%s read err: %v (%T)\n", filepath.Base(f), err, err)
				return
			}
			err = api.ValidateContext(ctx)
			fmt.Printf("%s pages=%d enc=%v validate=%v\n", filepath.Base(f), ctx.PageCount, ctx.Encrypt, err)
		}()
	}
}
