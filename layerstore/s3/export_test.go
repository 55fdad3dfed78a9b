package s3

// SetMaxCopySize lowers the size above which Put commits with ComposeObject
// instead of CopyObject, so that a test reaches that path without a 5 GiB
// blob.
func SetMaxCopySize(s *Store, n int64) { s.maxCopySize = n }
