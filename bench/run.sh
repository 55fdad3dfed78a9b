#!/usr/bin/env bash
# bench/run.sh: envreg side by side with the reference registry and the physical limit.
#
# What it does (issue 8), on 127.0.0.1 only, in about 7 minutes on 2 cores
# (plus about 2 minutes the first time, to build the reference registry, and
# up to 3.5 minutes of waiting while other processes keep the CPU busy):
#
#   1. Builds envreg (go build ./cmd/envreg), the reference registry CNCF
#      Distribution v3.1.2 from the Go module proxy (go install
#      github.com/distribution/distribution/v3/cmd/registry@v3.1.2, cached in
#      bench/.work/bin), and bench/cmd/benchtool, whose "static" command is the
#      limit: a bare Go server answering the same files with http.ServeContent
#      (sendfile); for blobs also "limit-copy", the same server without sendfile.
#      envreg runs with its default --sendfile auto, which copies blob bodies
#      to loopback clients (all of them here); a second envreg process on the
#      same data with --sendfile always ("envreg-sendfile") serves the blob
#      tests and pulls too.
#   2. Requires wrk (Debian package "wrk"; installed with apt-get when missing
#      and running as root) and crane (go install …/cmd/crane@v0.22.1 when
#      missing). Every load run is bounded: wrk -d $BENCH_DURATION.
#   3. Publishes the test fixtures (test/fixtures: base, php, nodejs,
#      graphicsmagick), a "bulk" package holding one incompressible 50 MB file,
#      and synthetic packages p0..p50 into a fresh envreg data directory with
#      "envreg publish --from-dir", serves it, and copies the composed image
#      env:php-8.2_node-20_gm_bulk (a 2-platform OCI index) into the reference
#      with "crane copy", as a plain image under the same name and tag. Both
#      then answer the same index, byte for byte (checked).
#   4. Measures, interleaved (envreg, reference, limit; test after test; the
#      whole sequence repeated $BENCH_ROUNDS times, medians reported):
#        manifest GET by tag and by digest, c=1 and c=32 (req/s, p50, p99,
#          server CPU per request), Accept: application/vnd.oci.image.index.v1+json
#          so that all three answer the same OCI index;
#        blob GET of the 50 MB layer, c=1 and c=8 (MB/s = 10^6 bytes/s);
#        1 MiB range GET of that layer, c=8 (server CPU per request);
#      then peak RSS during 64 concurrent GETs of the 50 MB layer, a full
#      "crane pull" (linux/amd64, $BENCH_PULLS times each, interleaved,
#      median wall time, written to /dev/null). At the start of each round,
#      the first GET of a share of 51 never-composed tags php-8.2_p0 …
#      php-8.2_p50 on envreg (resolve + synthesize + persist), one at a time
#      on one connection, then the same tags warm.
#      Each run also records the server's CPU time and the CPU other
#      processes used meanwhile (a shared machine disturbs the numbers).
#   5. Prints the ratios (envreg / reference, envreg / limit) and the issue's
#      targets with pass/fail, and writes them with the machine description
#      to docs/benchmarks.md, followed by bench/analysis.md (hand-written:
#      why the missed targets are missed) when it exists.
#   6. Stops every process it started, by PID, on exit.
#
# Usage:  bash bench/run.sh
#
# Environment (defaults in brackets):
#   BENCH_WORK [bench/.work]   binaries (kept between runs) and run data (replaced)
#   BENCH_DURATION [5s]        length of each wrk run
#   BENCH_ROUNDS [3]           interleaved repetitions of the wrk sequence
#   BENCH_PULLS [10]           crane pulls per registry
#   BENCH_QUIET_WAIT [120]     seconds to wait, before measuring, for other processes to leave
#                              the CPU idle (< 15% busy); up to 30 s more before each round
#   BENCH_WRK_THREADS [1]      wrk threads (the load tool shares the 2 cores with the server)
#   BENCH_OUT [docs/benchmarks.md]
#
# The reference runs with the upstream sample configuration (filesystem
# storage, in-memory blob descriptor cache), its access log off, log level
# warn and OTEL_TRACES_EXPORTER=none (its documented way to stop exporting
# traces to localhost:4318); envreg runs with its defaults.
set -euo pipefail
export LC_ALL=C

cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=${BENCH_WORK:-$ROOT/bench/.work}
DURATION=${BENCH_DURATION:-5s}
ROUNDS=${BENCH_ROUNDS:-3}
PULLS=${BENCH_PULLS:-10}
THREADS=${BENCH_WRK_THREADS:-1}
QUIET_WAIT=${BENCH_QUIET_WAIT:-120}
OUT=${BENCH_OUT:-$ROOT/docs/benchmarks.md}
BULK_MB=50
NEW_TAGS_PER_ROUND=$(((50 + ROUNDS - 1) / ROUNDS)) # about 50 first GETs in all
NEW_TAGS=$((NEW_TAGS_PER_ROUND * ROUNDS))
TAG=php-8.2_node-20_gm_bulk
REGISTRY_VERSION=v3.1.2
CRANE_VERSION=v0.22.1
ACCEPT=application/vnd.oci.image.index.v1+json

BIN=$WORK/bin
RUN=$WORK/run
RESULTS=$RUN/results.jsonl
START=$(date +%s)

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- cleanup: every process this script starts is recorded here ------------
PIDS=()
cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1/2. tools ---------------------------------------------------------------
mkdir -p "$BIN"
if ! command -v wrk >/dev/null; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		log "installing wrk (apt-get install -y wrk)"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
	else
		die "wrk is required: apt-get install wrk"
	fi
fi
CRANE=$(command -v crane || true)
[ -n "$CRANE" ] || CRANE=$(go env GOPATH)/bin/crane
if [ ! -x "$CRANE" ]; then
	log "installing crane $CRANE_VERSION"
	GOBIN=$BIN GOFLAGS= go install "github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION"
	CRANE=$BIN/crane
fi
if ! "$BIN/registry" --version 2>/dev/null | grep -q "$REGISTRY_VERSION"; then
	log "building CNCF Distribution $REGISTRY_VERSION from the Go module proxy (once; cached in $BIN)"
	GOBIN=$BIN GOFLAGS= go install "github.com/distribution/distribution/v3/cmd/registry@$REGISTRY_VERSION"
fi
log "building envreg and benchtool"
go build -o "$BIN/envreg" ./cmd/envreg
go build -o "$BIN/benchtool" ./bench/cmd/benchtool

# --- 3. content -----------------------------------------------------------------
rm -rf "$RUN"
mkdir -p "$RUN"
DATA=$RUN/envreg-data
log "publishing fixtures, bulk (${BULK_MB} MB) and p0..p$((NEW_TAGS - 1)) into envreg"
"$BIN/benchtool" publish -envreg "$BIN/envreg" -data "$DATA" -work "$RUN/trees" \
	-bulk-mb "$BULK_MB" -synthetic "$NEW_TAGS"
rm -rf "$RUN/trees"

wait_file() { # wait_file FILE PID: until FILE is non-empty, or PID dies
	local i
	for i in $(seq 300); do
		[ -s "$1" ] && return 0
		kill -0 "$2" 2>/dev/null || die "process $2 exited before writing $1"
		sleep 0.1
	done
	die "timed out waiting for $1"
}

"$BIN/envreg" serve --data "$DATA" --addr 127.0.0.1:0 --addr-file "$RUN/envreg.addr" \
	2>"$RUN/envreg.log" &
ENVREG_PID=$!
PIDS+=("$ENVREG_PID")
wait_file "$RUN/envreg.addr" "$ENVREG_PID"
E=$(cat "$RUN/envreg.addr")
# The same data served by a second envreg process with --sendfile always:
# envreg's default (auto) copies blob bodies to loopback clients such as
# wrk and crane, so this one shows its sendfile path, which remote clients
# get, against the sendfile limit (blob tests and pulls only).
"$BIN/envreg" serve --data "$DATA" --addr 127.0.0.1:0 --addr-file "$RUN/envreg-sendfile.addr" --sendfile always \
	2>"$RUN/envreg-sendfile.log" &
ENVREG_SF_PID=$!
PIDS+=("$ENVREG_SF_PID")
wait_file "$RUN/envreg-sendfile.addr" "$ENVREG_SF_PID"
ESF=$(cat "$RUN/envreg-sendfile.addr")

REF_PORT=$("$BIN/benchtool" freeport)
cat >"$RUN/registry.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: $RUN/registry-data
  tag:
    concurrencylimit: 8
http:
  addr: 127.0.0.1:$REF_PORT
  headers:
    X-Content-Type-Options: [nosniff]
EOF
OTEL_TRACES_EXPORTER=none "$BIN/registry" serve "$RUN/registry.yml" >"$RUN/registry.log" 2>&1 &
REF_PID=$!
PIDS+=("$REF_PID")
R=127.0.0.1:$REF_PORT
for i in $(seq 300); do
	curl -fs -o /dev/null "http://$R/v2/" && break
	kill -0 "$REF_PID" 2>/dev/null || die "the reference registry exited: $(cat "$RUN/registry.log")"
	sleep 0.1
done

log "copying env:$TAG from envreg ($E) into the reference ($R)"
"$CRANE" copy --insecure "$E/env:$TAG" "$R/env:$TAG" 2>"$RUN/crane-copy.log"
DIGEST=$("$CRANE" digest --insecure "$E/env:$TAG")
REF_DIGEST=$("$CRANE" digest --insecure "$R/env:$TAG")
[ "$DIGEST" = "$REF_DIGEST" ] || die "digests differ: envreg $DIGEST, reference $REF_DIGEST"
AMD64=$(curl -fsS -H "Accept: $ACCEPT" "http://$E/v2/env/manifests/$TAG" |
	jq -r '.manifests[] | select(.platform.architecture == "amd64") | .digest')
LAYER=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$E/v2/env/manifests/$AMD64" |
	jq -r '.layers | max_by(.size) | .digest')
MANIFEST_FILE=$DATA/documents/sha256/${DIGEST#sha256:}
BLOB_FILE=$DATA/blobs/sha256/${LAYER#sha256:}
[ -f "$MANIFEST_FILE" ] && [ -f "$BLOB_FILE" ] || die "cannot find $MANIFEST_FILE or $BLOB_FILE"

"$BIN/benchtool" static -addr-file "$RUN/static.addr" -manifest "$MANIFEST_FILE" -blob "$BLOB_FILE" \
	2>"$RUN/static.log" &
STATIC_PID=$!
PIDS+=("$STATIC_PID")
wait_file "$RUN/static.addr" "$STATIC_PID"
L=$(cat "$RUN/static.addr")
"$BIN/benchtool" static -no-sendfile -addr-file "$RUN/static-copy.addr" -manifest "$MANIFEST_FILE" -blob "$BLOB_FILE" \
	2>"$RUN/static-copy.log" &
COPY_PID=$!
PIDS+=("$COPY_PID")
wait_file "$RUN/static-copy.addr" "$COPY_PID"
LC=$(cat "$RUN/static-copy.addr")

declare -A HOST=([envreg]=$E [reference]=$R [limit]=$L [limit-copy]=$LC [envreg-sendfile]=$ESF)
declare -A PID=([envreg]=$ENVREG_PID [reference]=$REF_PID [limit]=$STATIC_PID [limit-copy]=$COPY_PID [envreg-sendfile]=$ENVREG_SF_PID)
SERVERS=(envreg reference limit)
# For blobs only: limit-copy, the limit without sendfile, and
# envreg-sendfile, envreg with --sendfile always.
BLOB_SERVERS=(envreg reference limit limit-copy envreg-sendfile)

# Every server must answer the same bytes for every URL measured.
for path in "/v2/env/manifests/$TAG" "/v2/env/manifests/$DIGEST" "/v2/env/blobs/$LAYER"; do
	sums=""
	for s in "${BLOB_SERVERS[@]}"; do
		sums+="$(curl -fsS -H "Accept: $ACCEPT" "http://${HOST[$s]}$path" | sha256sum | cut -c1-64) "
	done
	[ "$(tr ' ' '\n' <<<"$sums" | sort -u | grep -c .)" = 1 ] || die "servers differ on $path: $sums"
done
MANIFEST_BYTES=$(stat -c %s "$MANIFEST_FILE")
BLOB_BYTES=$(stat -c %s "$BLOB_FILE")
log "index $DIGEST ($MANIFEST_BYTES bytes), layer $LAYER ($BLOB_BYTES bytes)"

CLK_TCK=$(getconf CLK_TCK)
jq -cn --arg tag "$TAG" --arg digest "$DIGEST" --arg layer "$LAYER" \
	--argjson manifest_bytes "$MANIFEST_BYTES" --argjson blob_bytes "$BLOB_BYTES" \
	--arg duration "$DURATION" --argjson rounds "$ROUNDS" --argjson pulls "$PULLS" --argjson threads "$THREADS" \
	--arg wrk "$(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)" \
	--arg crane "$("$CRANE" version 2>/dev/null)" \
	--arg registry "$("$BIN/registry" --version | awk '{sub(/\+unknown$/, "", $NF); print $NF}')" \
	--arg envreg "$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)" \
	--arg fs "$(findmnt -no FSTYPE,SOURCE -T "$RUN" 2>/dev/null | head -1 | tr -s " " || true)" \
	--arg date "$(date -u '+%Y-%m-%d %H:%M UTC')" \
	'{kind:"meta", date:$date, tag:$tag, digest:$digest, layer:$layer, manifest_bytes:$manifest_bytes,
	  blob_bytes:$blob_bytes, duration:$duration, rounds:$rounds, pulls:$pulls, wrk_threads:$threads,
	  tools:{wrk:$wrk, crane:$crane, registry:$registry, envreg:$envreg}, data_fs:$fs}' >"$RESULTS"

# --- 4. measurements --------------------------------------------------------
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# busy_pct: how much of the CPU other processes use while this script's
# servers are idle (a 1 s sample of /proc/stat).
busy_pct() {
	local a b
	a=($(awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $5+$6}' /proc/stat))
	sleep 1
	b=($(awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $5+$6}' /proc/stat))
	local busy=$((b[0] - a[0])) idle=$((b[1] - a[1]))
	echo $((100 * busy / (busy + idle + 1)))
}

# background LABEL: record busy_pct and the load average in the results.
background() {
	jq -cn --arg when "$1" --argjson busy "$(busy_pct)" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
		'{kind:"background", when:$when, loadavg:$load, busy_pct:$busy}' | tee -a "$RESULTS" >&2
}

# cpu_total: jiffies of the whole machine spent in tasks (user, nice,
# system, steal), idle (idle, iowait) and interrupts (irq, softirq; with IRQ
# time accounting the loopback traffic's softirq work lands here, not in
# the tasks that cause it).
cpu_total() { awk '/^cpu / {print $2+$3+$4+$9, $5+$6, $7+$8}' /proc/stat; }

# run_wrk ROUND SERVER TEST CONC PATH [HEADER]: one bounded wrk run, one
# result line. Besides wrk's numbers it records the server's CPU time and
# the share of the machine's CPU that neither the server nor wrk used
# (other_cpu_pct: other tenants disturbing the run).
run_wrk() {
	local round=$1 server=$2 test=$3 conc=$4 path=$5 header=${6:-}
	local pid=${PID[$server]} threads=$((THREADS < conc ? THREADS : conc))
	local args=(-t"$threads" -c"$conc" -d"$DURATION" --timeout 30s -s "$ROOT/bench/wrk-report.lua" -H "Accept: $ACCEPT")
	[ -n "$header" ] && args+=(-H "$header")
	local a b t0 t1 line wrk_ticks TIMEFORMAT='%U %S'
	a=($(cpu_total))
	t0=$(cpu_ticks "$pid")
	{ time wrk "${args[@]}" "http://${HOST[$server]}$path" >"$RUN/wrk.out" 2>"$RUN/wrk.err"; } 2>"$RUN/wrk.time"
	t1=$(cpu_ticks "$pid")
	b=($(cpu_total))
	line=$(grep '^{"requests"' "$RUN/wrk.out") || die "no wrk result for $server $test c=$conc: $(cat "$RUN/wrk.out" "$RUN/wrk.err")"
	[ "$round" = 0 ] && return 0 # warm-up
	wrk_ticks=$(awk -v hz="$CLK_TCK" '{printf "%d", ($1 + $2) * hz}' "$RUN/wrk.time")
	jq -c --arg s "$server" --arg t "$test" --argjson c "$conc" --argjson r "$round" \
		--argjson cpu "$((t1 - t0))" --argjson hz "$CLK_TCK" \
		--argjson other "$((b[0] - a[0] - (t1 - t0) - wrk_ticks))" --argjson all "$((b[0] - a[0] + b[1] - a[1] + b[2] - a[2]))" \
		'{kind:"wrk", server:$s, test:$t, conc:$c, round:$r, cpu_s:($cpu / $hz),
		  other_cpu_pct:([0, 100 * $other / ($all + 1e-9)] | max | floor)} + .' <<<"$line" | tee -a "$RESULTS" |
		jq -r '"  \(.server) \(.test) c=\(.conc): \(.requests * 1e6 / .duration_us | floor) req/s, \(.bytes / .duration_us | . * 10 | floor / 10) MB/s, p50 \(.p50_us) µs, p99 \(.p99_us) µs, errors \(.errors + .status_errors), other processes \(.other_cpu_pct)% CPU"' >&2
}

TESTS=(
	"manifest-tag 1 /v2/env/manifests/$TAG"
	"manifest-tag 32 /v2/env/manifests/$TAG"
	"manifest-digest 1 /v2/env/manifests/$DIGEST"
	"manifest-digest 32 /v2/env/manifests/$DIGEST"
	"blob 1 /v2/env/blobs/$LAYER"
	"blob 8 /v2/env/blobs/$LAYER"
	"range-1MiB 8 /v2/env/blobs/$LAYER"
)

# Other tenants of the machine (a test suite, apt-get) distort every number:
# wait_quiet SECONDS waits up to SECONDS for them to use < 15% of the CPU.
wait_quiet() {
	local i busy
	for i in $(seq $(($1 / 5))); do
		busy=$(busy_pct)
		[ "$busy" -lt 15 ] && return 0
		log "the machine is ${busy}% busy with other processes; waiting (up to $1 s)"
		sleep 4
	done
}
wait_quiet "$QUIET_WAIT"
background "before measuring"
# run_firstget ROUND: the first GET of this round's share of the new tags
# php-8.2_pN on envreg, with the share of the CPU other processes used.
run_firstget() {
	local round=$1 start=$((($1 - 1) * NEW_TAGS_PER_ROUND)) a b t0 t1 own TIMEFORMAT='%U %S'
	log "first GET of new combinations php-8.2_p$start … php-8.2_p$((start + NEW_TAGS_PER_ROUND - 1)) on envreg"
	a=($(cpu_total))
	t0=$(cpu_ticks "$ENVREG_PID")
	{ time "$BIN/benchtool" firstget -base "http://$E/v2/env/manifests/" -prefix php-8.2_p \
		-start "$start" -n "$NEW_TAGS_PER_ROUND" -accept "$ACCEPT" >"$RUN/firstget.out"; } 2>"$RUN/firstget.time"
	t1=$(cpu_ticks "$ENVREG_PID")
	b=($(cpu_total))
	own=$(awk -v hz="$CLK_TCK" '{printf "%d", ($1 + $2) * hz}' "$RUN/firstget.time")
	jq -c --argjson r "$round" --argjson other "$((b[0] - a[0] - (t1 - t0) - own))" \
		--argjson all "$((b[0] - a[0] + b[1] - a[1] + b[2] - a[2]))" \
		'{round:$r, other_cpu_pct:([0, 100 * $other / ($all + 1e-9)] | max | floor)} + .' "$RUN/firstget.out" |
		tee -a "$RESULTS" | jq -r '"  first GET p50 \(.first_us | sort | .[length / 2 | floor] | floor) µs, warm p50 \(.warm_us | sort | .[length / 2 | floor] | floor) µs, other processes \(.other_cpu_pct)% CPU"' >&2
}

log "warm-up (1s per server and test, discarded)"
SAVED=$DURATION
DURATION=1s
for s in "${SERVERS[@]}"; do
	run_wrk 0 "$s" warm 32 "/v2/env/manifests/$TAG"
	run_wrk 0 "$s" warm 8 "/v2/env/blobs/$LAYER"
done
DURATION=$SAVED

for round in $(seq "$ROUNDS"); do
	log "round $round/$ROUNDS (wrk -d $DURATION per run)"
	wait_quiet 30
	background "before round $round"
	run_firstget "$round"
	for t in "${TESTS[@]}"; do
		read -r test conc path <<<"$t"
		header=""
		[ "$test" = range-1MiB ] && header="Range: bytes=0-1048575"
		servers=("${SERVERS[@]}")
		[[ $test == blob || $test == range-1MiB ]] && servers=("${BLOB_SERVERS[@]}")
		for s in "${servers[@]}"; do
			run_wrk "$round" "$s" "$test" "$conc" "$path" "$header"
		done
	done
done

log "peak RSS while serving 64 concurrent GETs of the ${BULK_MB} MB layer"
for s in "${SERVERS[@]}"; do
	pid=${PID[$s]}
	wrk -t"$THREADS" -c64 -d"$DURATION" --timeout 60s -s "$ROOT/bench/wrk-report.lua" \
		"http://${HOST[$s]}/v2/env/blobs/$LAYER" >"$RUN/wrk64-$s.out" &
	WRK_PID=$!
	PIDS+=("$WRK_PID")
	peak=0
	while kill -0 "$WRK_PID" 2>/dev/null; do
		rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
		[ "$rss" -gt "$peak" ] && peak=$rss
		sleep 0.2
	done
	wait "$WRK_PID" || die "wrk failed against $s"
	line=$(grep '^{"requests"' "$RUN/wrk64-$s.out")
	jq -c --arg s "$s" --argjson kb "$peak" '{kind:"rss", server:$s, conc:64, peak_rss_kb:$kb} + .' <<<"$line" |
		tee -a "$RESULTS" | jq -r '"  \(.server): peak RSS \(.peak_rss_kb / 1024 | floor) MiB, \(.bytes / .duration_us | floor) MB/s"' >&2
done

log "full pulls: crane pull --platform linux/amd64, $PULLS times each, interleaved"
for i in $(seq "$PULLS"); do
	for s in envreg reference envreg-sendfile; do
		t0=$(date +%s%N)
		"$CRANE" pull --insecure --platform linux/amd64 "${HOST[$s]}/env:$TAG" /dev/null
		t1=$(date +%s%N)
		jq -cn --arg s "$s" --argjson r "$i" --argjson ns "$((t1 - t0))" \
			'{kind:"pull", server:$s, round:$r, seconds:($ns / 1e9)}' | tee -a "$RESULTS" >&2
	done
done

grep -q . "$RUN/envreg.log" && log "envreg logged:" && head -20 "$RUN/envreg.log" >&2

# --- 5. report ------------------------------------------------------------------
mkdir -p "$(dirname "$OUT")"
ANALYSIS=()
[ -f "$ROOT/bench/analysis.md" ] && ANALYSIS=(-analysis "$ROOT/bench/analysis.md")
"$BIN/benchtool" report -results "$RESULTS" -out "$OUT" "${ANALYSIS[@]}"
log "wrote $OUT; results in $RESULTS; took $(($(date +%s) - START))s"
