package report

import (
	"errors"
	"io"
)

// renderMarkdown writes the report as GitHub-flavoured Markdown.
func renderMarkdown(w io.Writer, r *Result) error {
	return errors.New("render report as markdown: not written yet")
}
