package packages

import "io"

// BuildDebianLayer exposes buildDebianLayer to the black-box tests, which
// build .debs locally instead of downloading them.
var BuildDebianLayer = buildDebianLayer

// AptWriter exposes where a Publisher lets apt print its progress.
func AptWriter(p *Publisher) io.Writer { return p.aptOutput() }
