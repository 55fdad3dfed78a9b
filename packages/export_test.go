package packages

// BuildDebianLayer exposes buildDebianLayer to the black-box tests, which
// build .debs locally instead of downloading them.
var BuildDebianLayer = buildDebianLayer

// IngestorPolicy exposes the policy an Ingestor checks layers with.
func IngestorPolicy(in *Ingestor) Policy { return in.policy() }
