package packages

import "github.com/envreg/envreg/packages/layer"

// BuildDebianLayer exposes buildDebianLayer to the black-box tests, which
// build .debs locally instead of downloading them.
var BuildDebianLayer = buildDebianLayer

// IngestorPolicy exposes the policy an Ingestor checks layers with.
func IngestorPolicy(in *Ingestor) layer.Policy { return in.policy() }
