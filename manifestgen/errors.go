package manifestgen

import (
	"errors"
	"fmt"
)

// ErrInvalidResolution is wrapped by the errors Generate returns for input
// that no resolver should produce: no releases, no platforms, a release
// without a layer for a listed platform, a duplicate package.
var ErrInvalidResolution = errors.New("invalid resolution")

// TooManyLayersError reports a resolution with more layers (one per release)
// than the stack allows.
type TooManyLayersError struct {
	Stack string // the stack's name
	Count int    // layers the image would have
	Limit int    // the stack's effective maxLayers
}

func (e *TooManyLayersError) Error() string {
	return fmt.Sprintf("image would have %d layers, more than the %d allowed by stack %s (maxLayers; overlay storage drivers fail near 127 layers)",
		e.Count, e.Limit, e.Stack)
}
