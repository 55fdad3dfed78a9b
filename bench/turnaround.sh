#!/usr/bin/env bash
# bench/turnaround.sh: the time between "the customer changed php 8.2.X to
# 8.2.Y" and "the new environment runs", the classic way against envreg
# (issue 21). Not part of CI (about 25 minutes on 2 cores); run it by hand:
#
#   bash bench/turnaround.sh
#
# What it does, in one run, on a Docker engine of its own:
#
#   1. Tools: debootstrap (apt-get install when missing and running as
#      root), jq, curl, dockerd and the docker CLI. Builds envreg.
#   2. A bookworm base made with "debootstrap --variant=minbase" (kept as a
#      tar in $TURNAROUND_WORK between runs).
#   3. envreg: a fresh data directory seeded with the bundled recipes
#      (envreg serve --seed bundled --seed-wait; the Debian download cache is kept), and
#      one stack per lever besides "env" (gzip, the default): "envtar"
#      (layerCompression: none) and "envsplit" (php split in two packages,
#      see B-split below). The two php versions are the two newest
#      8.2 patches the catalog has (derived from /api/v1/packages/php, and
#      their Debian versions from the io.envreg.debian.version label), so
#      the script follows the archive when it moves.
#   4. A second dockerd with its own --data-root, --exec-root, --pidfile,
#      socket and (empty) --config-file, a bridge of its own (not
#      --bridge none: see below), --iptables=false and
#      the storage driver the machine's engine uses, logging at debug level
#      (run/dockerd.log: when each layer was downloaded and applied, to
#      read against the start_ns of each pull); the machine's engine,
#      its images and its docker0 are never touched. Stopped by PID at exit.
#   5. Cold runs (the engine holds nothing): way A is docker import of the
#      base tar + docker build --network host of bench/Dockerfile.turnaround
#      + docker run; way B is docker pull of the tag + docker run, once per
#      layer form.
#   6. $TURNAROUND_CHANGES changes in each direction, alternating (PREV→NEW,
#      NEW→PREV, …), each measured for every way, interleaved:
#        A        docker build --no-cache --network host --build-arg
#                 PHP_VERSION=… then docker run (the build cache would make
#                 the way back free; a customer's change has no cache);
#        B        docker pull 127.0.0.1:PORT/env:php-8.2.Y_node-18_gm, then
#                 the same docker run;
#        B-tar    the same from stack envtar (layers served uncompressed);
#        B-split  the same from stack envsplit, whose php is published as
#                 two packages: "phpdeps", the libraries php depends on
#                 that do not change with a php patch (libicu72, libxml2,
#                 …, from the php release's io.envreg.debian.packages
#                 label), and "phpslim", the php8.2-* packages on top (the
#                 recipes are written by this script, linux/amd64 only, and
#                 published into the same store); the same files, but a
#                 change downloads only the php8.2-* layer;
#        B-pre    prefetched: the platform pinned the new environment with
#                 the provisioning API (POST /api/v1/stacks/env/resolve with
#                 "from") and pulled env@sha256:… ahead of time (not timed);
#                 the switch is the docker run alone.
#      Before each B-way change the engine holds the old environment only
#      (the new image of every B way is removed, so no way finds the new
#      php layer from another), and before each A change the new A image
#      is removed. Every docker run must print the expected version.
#   7. Bytes a node downloads per change: for A the changed layer (the RUN
#      layer, from docker save) gzipped (gzip -6); for B the delta of the
#      registry's envreg_http_response_bytes_total counter (the routes a
#      pull uses: blob, manifest, base; route="blob" separately). Image
#      sizes from docker image inspect.
#   8. Where each pull spent its time (bench/turnaround-phases.sh, from
#      the dockerd debug log). Writes the tables and the ratios, then
#      bench/turnaround-analysis.md, into the turnaround section of
#      $TURNAROUND_OUT (docs/benchmarks.md), replacing the previous one
#      (bench/turnaround-report.sh; bench/run.sh's report keeps it).
#
# Environment (defaults in brackets):
#   TURNAROUND_WORK [bench/.work/turnaround]  base tar, download cache, binaries (kept) and run data (replaced)
#   TURNAROUND_CHANGES [3]                    changes in each direction
#   TURNAROUND_WAYS ["A B B-tar B-split B-pre"] the ways measured
#   TURNAROUND_OUT [docs/benchmarks.md]
set -euo pipefail
export LC_ALL=C

cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=${TURNAROUND_WORK:-$ROOT/bench/.work/turnaround}
CHANGES=${TURNAROUND_CHANGES:-3}
read -r -a WAYS <<<"${TURNAROUND_WAYS:-A B B-tar B-split B-pre}"
OUT=${TURNAROUND_OUT:-$ROOT/docs/benchmarks.md}
BIN=$WORK/bin
RUN=$WORK/run
RESULTS=$RUN/results.jsonl
BASE_TAR=$WORK/base-bookworm.tar
BASE_IMAGE=envreg-turnaround/base:bookworm
A_IMAGE=envreg-turnaround/php
START=$(date +%s)

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}
has_way() { [[ " ${WAYS[*]} " == *" $1 "* ]]; }

# --- cleanup: every process this script starts is recorded here ------------
PIDS=()
DOCKERD_PID=
BRIDGE=
EXEC_ROOT=
cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	if [ -n "$DOCKERD_PID" ]; then
		kill "$DOCKERD_PID" 2>/dev/null || true
		for _ in $(seq 300); do
			kill -0 "$DOCKERD_PID" 2>/dev/null || break
			sleep 0.1
		done
	fi
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if [ -n "$BRIDGE" ]; then
		ip link del "$BRIDGE" 2>/dev/null || true
	fi
	# dockerd leaves its network namespace mounted under the exec root,
	# which is ours: unmount what is mounted there, then remove it.
	if [ -n "$EXEC_ROOT" ]; then
		findmnt -rn -o TARGET | grep "^$EXEC_ROOT/" | sort -r | xargs -r -n1 umount 2>/dev/null || true
		rm -rf "$EXEC_ROOT"
	fi
	return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. tools -----------------------------------------------------------------
for t in jq curl dockerd docker gzip; do
	command -v "$t" >/dev/null || die "$t is required"
done
if ! command -v debootstrap >/dev/null; then
	[ "$(id -u)" = 0 ] || die "debootstrap is required: apt-get install debootstrap"
	log "installing debootstrap (apt-get install -y debootstrap)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
mkdir -p "$BIN"
log "building envreg"
go build -o "$BIN/envreg" ./cmd/envreg
ENVREG=$BIN/envreg

# --- 2. the debootstrapped base -------------------------------------------------
if [ ! -s "$BASE_TAR" ]; then
	log "debootstrap --variant=minbase bookworm (once; kept in $BASE_TAR)"
	rm -rf "$WORK/rootfs"
	debootstrap --variant=minbase bookworm "$WORK/rootfs" http://deb.debian.org/debian >"$WORK/debootstrap.log" 2>&1 ||
		die "debootstrap failed: $(tail -5 "$WORK/debootstrap.log")"
	tar --numeric-owner -C "$WORK/rootfs" -cf "$BASE_TAR.tmp" .
	rm -rf "$WORK/rootfs"
	mv "$BASE_TAR.tmp" "$BASE_TAR"
fi

# --- 3. envreg -------------------------------------------------------------------
rm -rf "$RUN"
mkdir -p "$RUN"
DATA=$RUN/envreg-data
wait_file() { # wait_file FILE PID [SECONDS]: until FILE is non-empty, or PID dies (default 300 s)
	local i
	for i in $(seq $((${3:-300} * 10))); do
		[ -s "$1" ] && return 0
		kill -0 "$2" 2>/dev/null || die "process $2 exited before writing $1"
		sleep 0.1
	done
	die "timed out waiting for $1"
}
STACKS=(env)
if has_way B-tar; then
	cat >"$RUN/envtar.yaml" <<'EOF'
name: envtar
base: [base]
aliases: {node: nodejs, gm: graphicsmagick}
image: {cmd: [/bin/sh]}
layerCompression: none
EOF
	"$ENVREG" stack --data "$DATA" "$RUN/envtar.yaml" >/dev/null || die "envreg does not take stack $RUN/envtar.yaml"
	STACKS+=(envtar)
fi
log "seeding envreg with the bundled recipes (envreg serve --seed bundled)"
SEED_START=$(date +%s)
"$ENVREG" serve --data "$DATA" --seed bundled --seed-wait --uncompressed-layers --cache-dir "$WORK/cache" --addr 127.0.0.1:0 \
	--addr-file "$RUN/envreg.addr" --compose-budget 0 2>"$RUN/envreg.log" &
ENVREG_PID=$!
PIDS+=("$ENVREG_PID")
wait_file "$RUN/envreg.addr" "$ENVREG_PID" 3600 # --seed-wait: listens once everything is published
E=$(cat "$RUN/envreg.addr")
log "envreg serves on $E (seeding took $(($(date +%s) - SEED_START)) s)"

# The two newest php 8.2 patches of the catalog, and their Debian versions.
curl -fsS "http://$E/api/v1/packages/php" >"$RUN/php.json"
mapfile -t PHP < <(jq -r '[.versions[] | select(.yanked | not) | .version | select(startswith("8.2."))] |
	sort_by(split("+")[0] | split(".") | map(tonumber)) | .[-2:][]' "$RUN/php.json")
[ "${#PHP[@]}" = 2 ] || die "the catalog has fewer than two php 8.2 versions: $(cat "$RUN/php.json")"
declare -A SEMVER DEBVER
for v in "${PHP[@]}"; do
	SEMVER[$v]=${v%%+*}
	DEBVER[$v]=$(jq -r --arg v "$v" '.versions[] | select(.version == $v) | .labels["io.envreg.debian.version"] // empty' "$RUN/php.json")
	[ -n "${DEBVER[$v]}" ] || die "php $v has no io.envreg.debian.version label"
done
PREV=${PHP[0]}
NEW=${PHP[1]}
log "php $PREV (Debian ${DEBVER[$PREV]}) ↔ $NEW (Debian ${DEBVER[$NEW]})"
tag() { echo "php-${SEMVER[$1]}_node-18_gm"; } # tag VERSION

# The split php of B-split: phpdeps (what php8.2-cli needs besides the
# php8.2-* packages, as the newest php release's label lists it) and
# phpslim (one recipe per php version, the bundled recipe's symlinks) on
# top of it; stack envsplit maps php to phpslim.
if has_way B-split; then
	R=$RUN/recipes
	mkdir -p "$R/base" "$R/phpdeps" "$R/phpslim"
	cp "$ROOT/packages/base/recipe.yaml" "$R/base/recipe.yaml"
	# libxml2 first: the main package, whose version phpdeps takes. A
	# package the label qualifies with an architecture (its version differs
	# between them) is taken for amd64.
	deps=$(jq -r --arg v "$NEW" '.versions[] | select(.version == $v) | .labels["io.envreg.debian.packages"]' "$RUN/php.json" |
		tr ' ' '\n' | grep -v '^php8\.2-' |
		awk -F= '{ split($1, n, ":") } n[2] == "" { print; next } n[2] == "amd64" { print n[1] "=" substr($0, length($1) + 2) }' |
		sort | awk '/^libxml2=/ {print; next} {rest = rest $0 "\n"} END {printf "%s", rest}' |
		paste -sd, -)
	base_major=$(sed -n 's/^version: \([0-9]*\)\..*/\1/p' "$R/base/recipe.yaml")
	deps_major=$(tr ',' '\n' <<<"$deps" | sed -n 's/^libxml2=\([0-9]*\)\..*/\1/p')
	[ -n "$deps_major" ] && [ -n "$base_major" ] || die "php $NEW does not depend on libxml2, or base has no version: $deps"
	printf 'name: phpdeps\nplatforms: [linux/amd64]\nsource:\n  debian:\n    packages: [%s]\n    base: ../base/recipe.yaml\nrequires: ["base ^%s"]\n' \
		"$deps" "$base_major" >"$R/phpdeps/recipe.yaml"
	# The bundled php 8.2 recipe names a range; each phpslim version pins
	# php8.2-cli to the Debian version the catalog has (the rest of
	# src:php8.2 follows it).
	bundled="$ROOT/packages/php/8.2.yaml"
	grep -q '^      - php8.2-cli$' "$bundled" || die "$bundled does not list php8.2-cli unpinned"
	for v in "${PHP[@]}"; do
		sed -e 's/^name: php$/name: phpslim/' -e 's/^platforms: .*/platforms: [linux\/amd64]/' \
			-e "s/^      - php8.2-cli\$/      - php8.2-cli=${DEBVER[$v]}/" -e '/^    versions: /d' -e '/^    keep: /d' \
			-e 's|base: ../base/recipe.yaml|base: ../phpdeps/recipe.yaml|' \
			-e "s/^requires: .*/requires: [\"phpdeps ^$deps_major\"]/" "$bundled" >"$R/phpslim/${SEMVER[$v]}.yaml"
	done
	printf 'name: envsplit\nbase: [base]\naliases: {php: phpslim, node: nodejs, gm: graphicsmagick}\nimage: {cmd: [/bin/sh]}\n' \
		>"$RUN/envsplit.yaml"
	log "publishing the split php (phpdeps + phpslim, linux/amd64) and stack envsplit"
	"$ENVREG" publish --data "$DATA" --uncompressed-layers --cache-dir "$WORK/cache" "$R" >"$RUN/publish-split.log" 2>&1 ||
		die "publishing the split php failed: $(tail -5 "$RUN/publish-split.log")"
	"$ENVREG" stack --data "$DATA" "$RUN/envsplit.yaml" >/dev/null
	for _ in $(seq 300); do # the server sees the new generation within a second
		curl -fs -o /dev/null "http://$E/v2/envsplit/manifests/$(tag "$NEW")" && break
		sleep 0.1
	done
	curl -fsS -o /dev/null "http://$E/v2/envsplit/manifests/$(tag "$NEW")" || die "envsplit:$(tag "$NEW") does not resolve"
fi

# --- 4. an engine of our own --------------------------------------------------------
DRIVER=$(docker info --format '{{.Driver}}' 2>/dev/null || true)
[ -n "$DRIVER" ] || die "cannot read the machine engine's storage driver (docker info)"
EXEC_ROOT=$(mktemp -d /tmp/envreg-ta.XXXXXX) # short: it holds unix sockets
echo '{}' >"$EXEC_ROOT/daemon.json"
SOCK=$EXEC_ROOT/docker.sock
# A bridge of its own, never --bridge none: a dockerd started with
# --bridge none removes the interface named docker0 of its network
# namespace (moby/moby#26989, "get rid of the docker0 bridge if present"),
# and that is the machine engine's bridge. Ours has no route out and no
# iptables rules: containers run with --network none, builds with
# --network host. Removed at exit.
BRIDGE=envta$$
BRIDGE=${BRIDGE:0:15}
ip link add "$BRIDGE" type bridge || die "cannot create the bridge $BRIDGE (needs root and iproute2)"
ip addr add 10.214.254.1/24 dev "$BRIDGE"
ip link set "$BRIDGE" up
log "starting a dockerd of our own (storage driver $DRIVER, socket $SOCK, bridge $BRIDGE)"
dockerd --config-file "$EXEC_ROOT/daemon.json" --data-root "$WORK/docker" --exec-root "$EXEC_ROOT/exec" \
	--pidfile "$EXEC_ROOT/docker.pid" --host "unix://$SOCK" --bridge "$BRIDGE" --iptables=false --ip-masq=false \
	--storage-driver "$DRIVER" --debug >"$RUN/dockerd.log" 2>&1 &
DOCKERD_PID=$!
export DOCKER_HOST=unix://$SOCK DOCKER_CONFIG=$EXEC_ROOT/cli DOCKER_BUILDKIT=0
for i in $(seq 600); do
	docker version >/dev/null 2>&1 && break
	kill -0 "$DOCKERD_PID" 2>/dev/null || die "dockerd exited: $(tail -5 "$RUN/dockerd.log")"
	sleep 0.1
done
docker version >/dev/null || die "dockerd did not answer on $SOCK"
ENGINE=$(docker version --format '{{.Server.Version}}')

# Start from an engine that holds nothing (a previous run's data root may
# hold images).
reset_engine() {
	docker ps -aq | xargs -r docker rm -f >/dev/null
	docker images -q | sort -u | xargs -r docker rmi -f >/dev/null 2>&1 || true
	docker image prune -af >/dev/null
}
reset_engine

# --- measuring helpers -------------------------------------------------------------
now() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", (b - a) / 1e9}'; }
# served_bytes [ROUTE]: the registry's served-bytes counter, summed over
# its series (one route, or all that a pull uses: not "ops", which counts
# the /metrics answers this script reads, nor "api").
served_bytes() {
	curl -fsS "http://$E/metrics" | awk -v route="${1:-}" '
		/^envreg_http_response_bytes_total[{ ]/ && !/route="(ops|api)"/ && (route == "" || index($0, "route=\"" route "\"")) {s += $NF}
		END {printf "%.0f", s}'
}
record() { jq -cn "$@" | tee -a "$RESULTS" >&2; }
# run_php IMAGE VERSION: docker run, checking the answer.
run_php() {
	local got
	got=$(docker run --rm --network none "$1" php -r 'echo PHP_VERSION;')
	[ "$got" = "${SEMVER[$2]}" ] || die "$1 answered php $got, want ${SEMVER[$2]}"
}
image_size() { docker image inspect --format '{{.Size}}' "$1"; }

# changed_gz IMAGE: the gzipped size of IMAGE's top layer (the RUN layer).
declare -A A_GZ
changed_gz() {
	local dir=$RUN/save
	rm -rf "$dir" && mkdir -p "$dir"
	docker save "$1" | tar -x -C "$dir"
	gzip -6 -c "$dir/$(jq -r '.[0].Layers[-1]' "$dir/manifest.json")" | wc -c
	rm -rf "$dir"
}

# build_a VERSION: docker build of way A; prints seconds.
build_a() {
	local t0 t1
	t0=$(now)
	docker build -q --no-cache --network host --build-arg "PHP_VERSION=${DEBVER[$1]}" \
		-t "$A_IMAGE:${SEMVER[$1]}" -f "$ROOT/bench/Dockerfile.turnaround" "$RUN/ctx" >"$RUN/build.log" 2>&1 ||
		die "docker build of php ${DEBVER[$1]} failed: $(tail -20 "$RUN/build.log")"
	t1=$(now)
	secs "$t0" "$t1"
}

# ref WAY VERSION: the reference a B way pulls.
declare -A PINNED
ref() {
	case $1 in
	B) echo "$E/env:$(tag "$2")" ;;
	B-tar) echo "$E/envtar:$(tag "$2")" ;;
	B-split) echo "$E/envsplit:$(tag "$2")" ;;
	B-pre) echo "$E/env@${PINNED[$2]}" ;;
	esac
}

# pull_b WAY VERSION KIND ROUND FROM: docker pull (or, for B-pre, the
# prefetch first, untimed) then docker run; one result line.
pull_b() {
	local way=$1 v=$2 kind=$3 round=$4 from=$5 r t0 t1 t2 b0 b1 bb0 bb1 pre=0 p0 p1
	r=$(ref "$way" "$v")
	local listed=0 listed_n=0 pb0 pb1 pre_bytes=0
	if [ "$way" = B-pre ]; then
		# What the provisioning API tells the platform to prefetch (the
		# "from" answer), then the prefetch: a pull by digest.
		[ "$(pin "$v" "${PINNED[$from]}")" = "${PINNED[$v]}" ] || die "the pin of $v moved"
		listed=$(jq '[.platforms[] | select(.platform == "linux/amd64") | .download.prefetch[].size] | add // 0' "$RUN/pin.json")
		listed_n=$(jq '[.platforms[] | select(.platform == "linux/amd64") | .download.prefetch[]] | length' "$RUN/pin.json")
		pb0=$(served_bytes blob)
		p0=$(now)
		docker pull -q "$r" >/dev/null
		p1=$(now)
		pb1=$(served_bytes blob)
		pre=$(secs "$p0" "$p1")
		pre_bytes=$((pb1 - pb0))
	fi
	b0=$(served_bytes)
	bb0=$(served_bytes blob)
	t0=$(now)
	[ "$way" = B-pre ] || docker pull -q "$r" >/dev/null
	t1=$(now)
	b1=$(served_bytes)
	bb1=$(served_bytes blob)
	run_php "$r" "$v"
	t2=$(now)
	record --arg way "$way" --arg kind "$kind" --argjson round "$round" --arg from "$from" --arg to "$v" \
		--argjson pull "$(secs "$t0" "$t1")" --argjson run "$(secs "$t1" "$t2")" --argjson total "$(secs "$t0" "$t2")" \
		--argjson prefetch "$pre" --argjson listed "$listed" --argjson listed_n "$listed_n" --argjson pre_bytes "$pre_bytes" --argjson bytes "$((b1 - b0))" --argjson blob_bytes "$((bb1 - bb0))" \
		--argjson image "$(image_size "$r")" --argjson start "$t0" \
		'{kind:$kind, way:$way, round:$round, from:$from, to:$to, start_ns:$start, pull_s:$pull, run_s:$run, total_s:$total,
		  prefetch_s:$prefetch, prefetch_listed_bytes:$listed, prefetch_listed_blobs:$listed_n, prefetch_blob_bytes:$pre_bytes, bytes:$bytes, blob_bytes:$blob_bytes, image_bytes:$image}'
}

# change_a VERSION KIND ROUND FROM: docker build then docker run.
change_a() {
	local v=$1 kind=$2 round=$3 from=$4 build t0 t1 t2 imp=0 i0 i1
	if [ "$kind" = cold ]; then
		i0=$(now)
		docker import "$BASE_TAR" "$BASE_IMAGE" >/dev/null
		i1=$(now)
		imp=$(secs "$i0" "$i1")
	fi
	build=$(build_a "$v")
	t1=$(now)
	run_php "$A_IMAGE:${SEMVER[$v]}" "$v"
	t2=$(now)
	[ -n "${A_GZ[$v]:-}" ] || A_GZ[$v]=$(changed_gz "$A_IMAGE:${SEMVER[$v]}")
	record --arg kind "$kind" --argjson round "$round" --arg from "$from" --arg to "$v" \
		--argjson imp "$imp" --argjson build "$build" --argjson run "$(secs "$t1" "$t2")" \
		--argjson bytes "${A_GZ[$v]}" --argjson image "$(image_size "$A_IMAGE:${SEMVER[$v]}")" \
		'{kind:$kind, way:"A", round:$round, from:$from, to:$to, import_s:$imp, pull_s:($imp + $build),
		  build_s:$build, run_s:$run, total_s:($imp + $build + $run), bytes:$bytes, image_bytes:$image}'
}

# remove_b VERSION: the images of every B way for VERSION leave the engine.
remove_b() {
	local w
	for w in B B-tar B-split B-pre; do
		has_way "$w" || continue
		docker rmi -f "$(ref "$w" "$1")" >/dev/null 2>&1 || true
	done
	docker image prune -f >/dev/null
}

# --- 5. cold runs ----------------------------------------------------------------------
mkdir -p "$RUN/ctx"
background() {
	record --arg when "$1" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" '{kind:"background", when:$when, loadavg:$load}'
}
jq -cn --arg prev "$PREV" --arg new "$NEW" --arg dprev "${DEBVER[$PREV]}" --arg dnew "${DEBVER[$NEW]}" \
	--arg engine "$ENGINE" --arg driver "$DRIVER" --argjson changes "$CHANGES" --arg ways "${WAYS[*]}" \
	--arg envreg "$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)" \
	--arg date "$(date -u '+%Y-%m-%d %H:%M UTC')" \
	'{kind:"meta", date:$date, prev:$prev, new:$new, debian_prev:$dprev, debian_new:$dnew, engine:$engine,
	  driver:$driver, changes:$changes, ways:($ways | split(" ")), envreg:$envreg}' >"$RESULTS"
background "before the cold runs"

# Pin both versions with the provisioning API (what a platform stores).
pin() { # pin VERSION [FROM_DIGEST]: prints the index digest
	local body
	body=$(jq -cn --arg v "${SEMVER[$1]}" --arg from "${2:-}" \
		'{requirements: {php: $v, nodejs: "18", graphicsmagick: "*"}} + (if $from == "" then {} else {from: $from} end)')
	curl -fsS -X POST -H 'Content-Type: application/json' -d "$body" "http://$E/api/v1/stacks/env/resolve" >"$RUN/pin.json"
	jq -r '.reference | sub(".*@"; "")' "$RUN/pin.json"
}
PINNED[$PREV]=$(pin "$PREV")
PINNED[$NEW]=$(pin "$NEW")

if has_way A; then
	log "cold A: docker import of the base + docker build (php ${DEBVER[$PREV]}) + docker run"
	change_a "$PREV" cold 0 ""
fi
for w in B B-tar B-split; do
	has_way "$w" || continue
	log "cold $w: docker pull $(ref "$w" "$PREV") + docker run"
	pull_b "$w" "$PREV" cold 0 ""
	# The next cold pull finds nothing either.
	docker rmi -f "$(ref "$w" "$PREV")" >/dev/null
	docker image prune -f >/dev/null
done
# The old environment of every B way.
for w in B B-tar B-split B-pre; do
	has_way "$w" || continue
	docker pull -q "$(ref "$w" "$PREV")" >/dev/null
done

# --- 6. changes, alternating direction ------------------------------------------------
VERS=("$PREV" "$NEW")
for round in $(seq $((2 * CHANGES))); do
	from=${VERS[$(((round - 1) % 2))]}
	to=${VERS[$((round % 2))]}
	background "before change $round"
	if has_way A; then
		log "change $round, A: docker build php ${DEBVER[$to]} (from ${DEBVER[$from]}) + docker run"
		docker rmi -f "$A_IMAGE:${SEMVER[$to]}" >/dev/null 2>&1 || true
		change_a "$to" change "$round" "$from"
	fi
	for w in B B-tar B-split B-pre; do
		has_way "$w" || continue
		remove_b "$to"
		log "change $round, $w: $(ref "$w" "$to")"
		pull_b "$w" "$to" change "$round" "$from"
	done
	# Every B way holds the new environment again: the next change starts there.
	for w in B B-tar B-split B-pre; do
		has_way "$w" || continue
		docker pull -q "$(ref "$w" "$to")" >/dev/null
	done
done

grep -q . "$RUN/envreg.log" && grep -v 'level=INFO' "$RUN/envreg.log" | head -20 >&2 || true

# --- 8. report --------------------------------------------------------------------------
bash "$ROOT/bench/turnaround-phases.sh" "$RESULTS" "$RUN/dockerd.log"
bash "$ROOT/bench/turnaround-report.sh" "$RESULTS" "$OUT"
log "wrote $OUT; results in $RESULTS; took $(($(date +%s) - START))s"
