// Package auth authenticates and authorizes registry clients: it is the
// registry.Authorizer that envreg uses once authentication is configured,
// and the Docker token endpoint that goes with it. It is not a user
// database (users live in an htpasswd file written by the administrator)
// and it stores nothing: tokens are self-contained and signed, so every
// replica that shares the token secret accepts every other's tokens.
//
// # Model
//
// Identities come from an htpasswd file of bcrypt hashes (htpasswd -B);
// other hash formats are refused when the file is loaded, not at the first
// login. A client proves its identity in one of three ways:
//
//   - Anonymous: no Authorization header. Allowed only for pulls and the
//     catalog (/v2/_catalog), and only when Config.AnonymousPull is on.
//     The base endpoint GET /v2/ always answers 401 to a request without
//     an Authorization header, even then, because that is how `docker
//     login` discovers the token endpoint (an anonymous token is accepted
//     there, as distribution does; `docker login` still fails on a bad
//     password, at the token endpoint).
//
//   - Basic: `Authorization: Basic` with an htpasswd user and password,
//     checked with bcrypt on every request (successful checks are cached
//     for a minute, keyed by a keyed hash of user and password, so that a
//     client sending Basic on every blob request does not pay 50–100 ms
//     each time). Meant for curl and scripts.
//
//   - Bearer: a token from the token endpoint (TokenPath, see below). This
//     is what docker, containerd, podman, skopeo and crane use, because the
//     401 challenge the registry sends is a Bearer challenge:
//
//     Bearer realm="https://reg.example/auth/token",service="envreg",scope="repository:team/app:pull,push"
//
// What an identity may do is decided by the ACL (Config.ACL, a YAML file):
//
//	access:
//	  - user: ci
//	    repositories: ["packages/*", "team/**"]
//	    actions: [pull, push, delete]
//	  - user: "*"            # any authenticated user
//	    repositories: ["**"]
//	    actions: [pull]
//
// Writes need pull as well as push on the repository (Docker clients ask
// for both), so a rule that grants push should grant pull too.
//
// Rules only grant; an action is allowed when any rule whose user is the
// client's user (or "*") lists the action and has a repository pattern
// matching the repository name. Patterns are matched per path component:
// `*` matches exactly one component (with path.Match syntax inside it:
// `*`, `?`, `[a-z]`, so "pkg-*" matches "pkg-php"), `**` matches any
// number of components including none ("team/**" matches "team",
// "team/app" and "team/a/b"; "**" matches everything). The action "*" in
// a rule stands for pull, push and delete.
//
// WITHOUT an ACL file every authenticated user may pull, push and delete
// in every repository: the htpasswd file alone is then the access list.
// Anonymous clients are never governed by the ACL: they may pull anything
// when AnonymousPull is on, and nothing else. Listing the catalog
// (registry:catalog:*) is allowed to every authenticated user and, when
// AnonymousPull is on, to anonymous clients; it names repositories a user
// may not be able to pull.
//
// Credentials that are good but lack the permission get 403 DENIED with
// the user, repository and action named; missing or bad credentials get
// 401 UNAUTHORIZED with the Bearer challenge, so the client can log in.
//
// # Token endpoint
//
// TokenHandler implements the Docker token flow
// (https://distribution.github.io/distribution/spec/auth/token/) and its
// OAuth2 variant (https://distribution.github.io/distribution/spec/auth/oauth/):
//
//	GET  /auth/token?service=envreg&scope=repository:team/app:pull,push   (Basic credentials optional)
//	POST /auth/token   grant_type=password&username=…&password=…&scope=…&service=…&client_id=…
//	POST /auth/token   grant_type=refresh_token&refresh_token=…&scope=…
//
// The granted access is the requested access intersected with what the
// identity may do: a scope the user lacks is granted smaller (or not at
// all), never refused, as the spec says; the registry then answers 403.
// Anonymous GET requests get a token with only the anonymous pull access,
// or 401 when AnonymousPull is off. Bad credentials get 401.
//
// Access tokens are JWTs signed with HMAC-SHA256 (the registry and the
// token endpoint are the same program, so a shared secret suffices where
// distribution uses a certificate chain). Claims: iss "envreg", sub (the
// user, "" for anonymous), aud (Config.Service), iat, nbf, exp
// (Config.TokenTTL, default 5 minutes), jti, and access, the granted
// resources in the Docker format [{"type","name","actions"}]. Only alg
// HS256 is accepted; times are checked with 30 seconds of leeway.
//
// Refresh tokens (asked for with offline_token=true on GET or
// access_type=offline on POST; docker login does, and then stores the
// refresh token instead of the password) are issued only when a token
// secret is configured, since with a per-process secret they would stop
// working at the next restart. They carry the user and a fingerprint of
// the user's htpasswd hash and do not expire: changing the user's
// password, removing the user or changing the token secret revokes them.
// They are signed with a key derived separately from the access token
// key, so neither can stand in for the other.
//
// The token secret (Config.TokenSecret) must be shared by all replicas
// behind one name; without one each process makes a random secret, and a
// token issued by one replica is refused by another.
//
// # Without authentication
//
// When no htpasswd file is configured envreg uses LoopbackWrites instead:
// anyone may pull, and pushes and deletes are accepted only from this
// host: a loopback TCP peer that addresses the registry as localhost or a
// loopback address, and not a web page of another origin (peer.Local,
// peer.SameOrigin; the operator's browser is a loopback peer, and DNS
// rebinding or a CORS-simple POST would otherwise let any page it shows
// push and delete). Like api.LoopbackOnly it looks at r.RemoteAddr only,
// never at X-Forwarded-For, so a reverse proxy on the same host makes
// every client local: configure authentication before putting one in
// front of envreg.
//
// With authentication, the provisioning API (server/api) uses the same
// Auth: see api.Authorizer for the scopes it asks for. Its resolve pins
// what it composes for good, so it asks AuthorizeUser, which refuses
// clients without credentials (and tokens issued to them) even while
// anonymous pull is on.
//
// # Realm behind a proxy
//
// The challenge's realm is Config.Realm when set. Otherwise it is derived
// from the request (https when the connection is TLS, the Host header,
// TokenPath), which is wrong behind a TLS-terminating proxy: set Realm to
// the public URL of the token endpoint there.
package auth
