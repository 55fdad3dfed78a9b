package ingest

import "github.com/envreg/envreg/packages/layer"

// IngestorPolicy exposes the policy an Ingestor checks layers with.
func IngestorPolicy(in *Ingestor) layer.Policy { return in.policy() }
