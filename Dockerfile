# envreg as a container image: the static binary, nothing else.
#
#   CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o envreg ./cmd/envreg
#   docker build -t envreg .
#   docker run -d -v envreg-data:/data -p 5000:5000 envreg
#
# The binary is built first, on the host (no base image can be pulled where
# envreg is built and tested, and none is needed): it is static (no cgo),
# carries its own CA roots for TLS to Redis and S3
# (golang.org/x/crypto/x509roots/fallback, used only when the image has
# none), and resolves host names with Go's own resolver. It runs as an
# unprivileged user. The image has no apt: it serves, pushes, gc's and
# verifies, but does not build Debian-based packages (serve --seed and
# publishing from Debian recipes need apt and dpkg-deb). Publish those with
# the envreg CLI on a machine that has them, into the same stores the
# container uses (the data volume, or Redis and S3), or push them to the
# running registry (envreg publish --registry, or packages/<name>:<version>
# with any OCI client). The README's "Container image" section says more.
FROM scratch
COPY envreg /envreg
USER 65532:65532
VOLUME /data
EXPOSE 5000
ENTRYPOINT ["/envreg"]
CMD ["serve", "--data", "/data", "--addr", ":5000"]
