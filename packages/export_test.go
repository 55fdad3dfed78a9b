package packages

// BuildDebianLayer exposes buildDebianLayer to the black-box tests, which
// build .debs locally instead of downloading them.
var BuildDebianLayer = buildDebianLayer
