#!/usr/bin/env bash
# bench/run.sh BUILD_DIR: run every benchmark against an already built tree (`make bench` builds
# first) and print a compact report with ratios. About a minute; unix sockets only; every server
# it starts is killed on exit, and its temporary directory removed.
#
# Knobs (environment, defaults in brackets): ROUNDS [9] and ROUND_MS [1200] for the 64-deep
# socket rounds, W1_ROUNDS [4] and W1_MS [1000] for the window-1 rounds, PING_ROUNDS [5] and
# PING_ROUND_MS [300] for bench_ping, BENCH_CALLGRIND=0 to skip the instruction counts,
# SANDBOX_ROUNDS [9] and SANDBOX_TENANTS [2000] for bench_sandbox, FS_ROUNDS [15] for bench_fs,
# FSOCK_ROUNDS [5] and FSOCK_MS [1000] for the fs.read socket rounds, NET_ROUNDS [5] for bench_net,
# TOOL_ROUNDS [5] for bench_tool, TENANTS_N [1000] (the issue's figure: 10000, several minutes to
# load) and TENANTS_SECS [2] for bench_tenants, NODE (the node binary).
# See bench/README.md.
set -euo pipefail

BUILD=${1:-build}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD=$(cd "$BUILD" && pwd)
NODE=${NODE:-$(command -v node || echo /usr/bin/node)}
ROUNDS=${ROUNDS:-9}
ROUND_MS=${ROUND_MS:-1200}
W1_ROUNDS=${W1_ROUNDS:-4}
W1_MS=${W1_MS:-1000}
PING_ROUNDS=${PING_ROUNDS:-5}
PING_ROUND_MS=${PING_ROUND_MS:-300}
FSOCK_ROUNDS=${FSOCK_ROUNDS:-5}
FSOCK_MS=${FSOCK_MS:-1000}

for b in hostcall bench_ping bench_socket bench_sleep bench_sandbox bench_fs bench_net bench_tool bench_tenants; do
  [ -x "$BUILD/$b" ] || { echo "bench: $BUILD/$b is missing: build first (make bench)" >&2; exit 2; }
done
[ -x "$NODE" ] || { echo "bench: node not found (set NODE=...)" >&2; exit 2; }
for f in node_echo.js node_fs.js; do
  [ -f "$HERE/$f" ] || { echo "bench: $HERE/$f is missing" >&2; exit 2; }
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/hc-bench.XXXXXX")
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Run private copies: a rebuild of BUILD_DIR during the run (the tree is shared) must not swap a
# binary between rounds.
mkdir "$TMP/bin"
for b in hostcall bench_ping bench_socket bench_sleep bench_sandbox bench_fs bench_net bench_tool bench_tenants; do cp "$BUILD/$b" "$TMP/bin/$b"; done
BIN=$TMP/bin

POLICY=$TMP/policy.lua
echo 'return { methods = { "sys.*" } }' >"$POLICY"

# wait_sock PATH PID: until the server listens (5 s at most).
wait_sock() {
  for _ in $(seq 100); do
    [ -S "$1" ] && return 0
    kill -0 "$2" 2>/dev/null || { echo "bench: server for $1 died; its log:" >&2; cat "$TMP"/*.err >&2; exit 1; }
    sleep 0.05
  done
  echo "bench: no socket at $1 after 5 s" >&2
  exit 1
}

# median of the numbers on stdin
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
minmax() { sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s-%s", lo, hi }'; }
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p"; }   # value of key=value in a line
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
k() { awk -v x="$1" 'BEGIN { printf "%.1fk", x / 1000 }'; }

REV=$(git -C "$HERE" rev-parse --short HEAD 2>/dev/null || echo "?")
echo "== hostcall benchmarks  $(date -u +%Y-%m-%dT%H:%MZ)  commit $REV  nproc=$(nproc)  kernel=$(uname -r)"
echo "   load average: $(cut -d' ' -f1-3 /proc/loadavg)  (the machine is shared: compare ratios, not absolutes)"
echo

# {===== 1. in-process: hc_call sys.ping against the cjson floor =====
echo "-- 1. in-process sys.ping (bench_ping: ${PING_ROUNDS} interleaved rounds of ${PING_ROUND_MS} ms)"
"$BIN/bench_ping" --rounds "$PING_ROUNDS" --round-ms "$PING_ROUND_MS" >"$TMP/ping.out" 2>"$TMP/ping.err" || {
  cat "$TMP/ping.err" >&2; exit 1; }
grep -v '^RESULT' "$TMP/ping.out" | sed 's/^/   /'
PING=$(grep '^RESULT' "$TMP/ping.out")

# The same three, counted in instructions (callgrind, collecting inside the timed loop only):
# immune to the machine's noise, so the ratio here is the one to track from commit to commit.
IR_RATIO=""
if [ "${BENCH_CALLGRIND:-1}" != 0 ] && command -v valgrind >/dev/null 2>&1; then
  ir() {   # ir WORKLOAD ITERS OPS_PER_ITER -> instructions per op
    local n
    n=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "--toggle-collect=run_$1*" \
          "$BIN/bench_ping" --only "$1" --iters "$2" 2>&1 >/dev/null | sed -n 's/.*Collected : \([0-9]*\).*/\1/p')
    [ -n "$n" ] || return 1
    awk -v n="$n" -v i="$2" -v k="$3" 'BEGIN { printf "%.0f", n / (i * k) }'
  }
  if IR_PING=$(ir ping 5000 1) && IR_FLOOR=$(ir floor 5000 1) && IR_BATCH=$(ir batch 500 10); then
    IR_RATIO=$(ratio "$IR_PING" "$IR_FLOOR")
    printf '   instructions (callgrind): ping %s, floor %s, ratio %s; batch %s per ping\n' \
      "$IR_PING" "$IR_FLOOR" "$IR_RATIO" "$IR_BATCH"
  else
    echo "   instructions (callgrind): a valgrind run failed; skipped"
  fi
fi
echo
# }=====

# {===== 2. socket throughput: hostcall serve against node_echo.js =====
HC_SOCK=$TMP/hc.sock
HCF_SOCK=$TMP/hcf.sock
NODE_SOCK=$TMP/node.sock
AUDIT_FILE=$TMP/audit.log
"$BIN/hostcall" serve --policy "$POLICY" --listen "unix:$HC_SOCK" --audit /dev/null 2>"$TMP/hc.err" &
HC_PID=$!; PIDS+=("$HC_PID"); wait_sock "$HC_SOCK" "$HC_PID"
"$BIN/hostcall" serve --policy "$POLICY" --listen "unix:$HCF_SOCK" --audit "$AUDIT_FILE" 2>"$TMP/hcf.err" &
HCF_PID=$!; PIDS+=("$HCF_PID"); wait_sock "$HCF_SOCK" "$HCF_PID"
"$NODE" "$HERE/node_echo.js" "$NODE_SOCK" 2>"$TMP/node.err" &
NODE_PID=$!; PIDS+=("$NODE_PID"); wait_sock "$NODE_SOCK" "$NODE_PID"

TCK=$(getconf CLK_TCK)
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }   # utime+stime, all threads

# sock NAME PATH PID WINDOW MS [BENCH_SOCKET_OPTIONS...]: one bench_socket run; appends its req/s
# to $TMP/NAME.rps and the server's CPU time per request (user+sys, every thread of the server,
# warm-up included) to $TMP/NAME.cpu, and echoes the req/s.
sock() {
  local out c0 c1 total rps
  c0=$(cpu_ticks "$3")
  out=$("$BIN/bench_socket" "$2" --window "$4" --duration-ms "$5" --warmup-ms 300 "${@:6}") || {
    echo "bench: bench_socket $2 failed" >&2; exit 1; }
  c1=$(cpu_ticks "$3")
  rps=$(echo "$out" | field rps); total=$(echo "$out" | field total)
  echo "$rps" >>"$TMP/$1.rps"
  awk -v d=$((c1 - c0)) -v t="$TCK" -v n="$total" 'BEGIN { printf "%.3f\n", d / t * 1e6 / n }' >>"$TMP/$1.cpu"
  echo "$rps"
}
last() { tail -n 1 "$TMP/$1.cpu" | awk '{ printf "%.2f", $1 }'; }
us() { median <"$TMP/$1.cpu" | awk '{ printf "%.2f", $1 }'; }

echo "-- 2. unix socket, 1 connection, sys.ping pipelined 64 deep (bench_socket: ${ROUNDS} alternating rounds of ${ROUND_MS} ms)"
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then
    a=$(sock hc64 "$HC_SOCK" "$HC_PID" 64 "$ROUND_MS"); b=$(sock node64 "$NODE_SOCK" "$NODE_PID" 64 "$ROUND_MS")
  else
    b=$(sock node64 "$NODE_SOCK" "$NODE_PID" 64 "$ROUND_MS"); a=$(sock hc64 "$HC_SOCK" "$HC_PID" 64 "$ROUND_MS")
  fi
  f=$(sock hcf64 "$HCF_SOCK" "$HCF_PID" 64 "$ROUND_MS")
  : >"$AUDIT_FILE"   # keep the disk out of it: a round writes tens of MB of audit
  ratio "$a" "$b" >>"$TMP/pair64"; echo >>"$TMP/pair64"
  printf '   round %d: hostcall %s (%s us/req)  node %s (%s us/req)  hostcall+audit file %s (%s us/req)\n' \
    "$r" "$(k "$a")" "$(last hc64)" "$(k "$b")" "$(last node64)" "$(k "$f")" "$(last hcf64)"
done
HC64=$(median <"$TMP/hc64.rps"); NODE64=$(median <"$TMP/node64.rps"); HCF64=$(median <"$TMP/hcf64.rps")
R64=$(ratio "$HC64" "$NODE64"); P64=$(median <"$TMP/pair64")
CPU_R64=$(ratio "$(us node64)" "$(us hc64)")
printf '   %-28s %9s  %-20s %s\n' "" "req/s" "(range)" "server CPU per request"
printf '   %-28s %9s  %-20s %s us\n' "hostcall (audit /dev/null)" "$(k "$HC64")" "($(minmax <"$TMP/hc64.rps"))" "$(us hc64)"
printf '   %-28s %9s  %-20s %s us\n' "node_echo.js" "$(k "$NODE64")" "($(minmax <"$TMP/node64.rps"))" "$(us node64)"
printf '   %-28s %9s  %-20s %s us\n' "hostcall (audit to a file)" "$(k "$HCF64")" "($(minmax <"$TMP/hcf64.rps"))" "$(us hcf64)"
printf '   ratio hostcall/node: throughput %s (median of pairs %s; target >= 1.5, goal 2.0)\n' "$R64" "$P64"
printf '                        CPU per request %s (node us / hostcall us: the noise-resistant one)\n' "$CPU_R64"
echo

echo "-- 3. the same, window 1 (latency-bound: one round trip at a time; for information)"
for r in $(seq "$W1_ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then
    sock hc1 "$HC_SOCK" "$HC_PID" 1 "$W1_MS" >/dev/null; sock node1 "$NODE_SOCK" "$NODE_PID" 1 "$W1_MS" >/dev/null
  else
    sock node1 "$NODE_SOCK" "$NODE_PID" 1 "$W1_MS" >/dev/null; sock hc1 "$HC_SOCK" "$HC_PID" 1 "$W1_MS" >/dev/null
  fi
done
HC1=$(median <"$TMP/hc1.rps"); NODE1=$(median <"$TMP/node1.rps")
printf '   hostcall %s req/s (%s, %s us CPU/req)  node %s req/s (%s, %s us CPU/req)  ratio %s\n' \
  "$(k "$HC1")" "$(minmax <"$TMP/hc1.rps")" "$(us hc1)" "$(k "$NODE1")" "$(minmax <"$TMP/node1.rps")" \
  "$(us node1)" "$(ratio "$HC1" "$NODE1")"
echo
# }=====

# {===== 4. waiting calls do not hold up the others =====
echo "-- 4. 100 x sys.sleep {ms:100} then sys.ping on one connection (bench_sleep, 3 runs)"
: >"$TMP/sleep"
for _ in 1 2 3; do
  out=$("$BIN/bench_sleep" "$HC_SOCK") || { echo "bench: bench_sleep failed" >&2; exit 1; }
  echo "   $out"
  echo "$out" >>"$TMP/sleep"
done
SLEEP_MS=$(field sleeps_ms <"$TMP/sleep" | median)
SLEEP_PING=$(field ping_ms <"$TMP/sleep" | median)
SLEEP_FIRST=$(field ping_first <"$TMP/sleep" | sort | uniq -c | awk '{ printf "%s%s x%s", sep, $2, $1; sep = ", " }')
echo
# }=====

# {===== 5. the tenant sandbox: metering on vs off, idle tenants =====
echo "-- 5. sandbox metering on a CPU-bound handler, and idle tenants (bench_sandbox)"
SANDBOX=$("$BIN/bench_sandbox" "${SANDBOX_ROUNDS:-9}" "${SANDBOX_TENANTS:-2000}") ||
  { echo "bench: bench_sandbox failed" >&2; exit 1; }
echo "$SANDBOX" | sed -n '2,$p'
echo
# }=====

# {===== 6. the filesystem through the C API vs the raw syscall loop =====
"$BIN/bench_fs" "${FS_ROUNDS:-15}" >"$TMP/fs.out" || { echo "bench: bench_fs failed" >&2; exit 1; }
grep -v '^RESULT' "$TMP/fs.out"
FSR=$(grep '^RESULT' "$TMP/fs.out")
echo
# }=====

# {===== 7. fs.read 4 KiB over a unix socket: hostcall serve against node_fs.js =====
# One 4 KiB file, FSROOT/input/file4k. hostcall mounts FSROOT/input read-only at /input; node_fs.js
# gets FSROOT as its one root, so the same request line `{"path":"/input/file4k"}` reads the same
# host file from both. Every answer must carry the whole file (bytes_read, eof, the base64's
# start), so a server that answers errors or nothing cannot look fast.
FSROOT=$TMP/fsroot
mkdir -p "$FSROOT/input/list" "$FSROOT/output"
awk 'BEGIN { for (i = 0; i < 4096; i++) printf "%c", 97 + i % 26 }' >"$FSROOT/input/file4k"
for i in $(seq -w 0 15); do : >"$FSROOT/input/list/entry-$i"; done
printf hello >"$FSROOT/output/w"
FS_POLICY=$TMP/fs-policy.lua
printf 'return { methods = { "fs.*" }, mounts = { ["/input"] = { path = "%s", perms = "ro" }, ["/output"] = { path = "%s", perms = "rw" } } }\n' \
  "$FSROOT/input" "$FSROOT/output" >"$FS_POLICY"
HCFS_SOCK=$TMP/hcfs.sock
NODEFS_SOCK=$TMP/nodefs.sock
"$BIN/hostcall" serve --policy "$FS_POLICY" --listen "unix:$HCFS_SOCK" --audit /dev/null 2>"$TMP/hcfs.err" &
HCFS_PID=$!; PIDS+=("$HCFS_PID"); wait_sock "$HCFS_SOCK" "$HCFS_PID"
"$NODE" "$HERE/node_fs.js" "$NODEFS_SOCK" "$FSROOT" 2>"$TMP/nodefs.err" &
NODEFS_PID=$!; PIDS+=("$NODEFS_PID"); wait_sock "$NODEFS_SOCK" "$NODEFS_PID"
FSREQ=(--request '{"jsonrpc":"2.0","id":0,"method":"fs.read","params":{"path":"/input/file4k"}}'
       --expect-substring '"bytes_read":4096' --expect-substring '"eof":true'
       --expect-substring '"data":"YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXph')

echo "-- 7. fs.read 4 KiB over a unix socket, 64 deep: hostcall serve vs node_fs.js (${FSOCK_ROUNDS} alternating rounds of ${FSOCK_MS} ms)"
for r in $(seq "$FSOCK_ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then
    a=$(sock hcfs "$HCFS_SOCK" "$HCFS_PID" 64 "$FSOCK_MS" "${FSREQ[@]}")
    b=$(sock nodefs "$NODEFS_SOCK" "$NODEFS_PID" 64 "$FSOCK_MS" "${FSREQ[@]}")
  else
    b=$(sock nodefs "$NODEFS_SOCK" "$NODEFS_PID" 64 "$FSOCK_MS" "${FSREQ[@]}")
    a=$(sock hcfs "$HCFS_SOCK" "$HCFS_PID" 64 "$FSOCK_MS" "${FSREQ[@]}")
  fi
  ratio "$a" "$b" >>"$TMP/pairfs"; echo >>"$TMP/pairfs"
  printf '   round %d: hostcall %s (%s us/req)  node %s (%s us/req)\n' \
    "$r" "$(k "$a")" "$(last hcfs)" "$(k "$b")" "$(last nodefs)"
done
HCFS=$(median <"$TMP/hcfs.rps"); NODEFS=$(median <"$TMP/nodefs.rps")
RFS=$(ratio "$HCFS" "$NODEFS"); PFS=$(median <"$TMP/pairfs")
CPU_RFS=$(ratio "$(us nodefs)" "$(us hcfs)")
printf '   %-28s %9s  %-20s %s\n' "" "req/s" "(range)" "server CPU per request"
printf '   %-28s %9s  %-20s %s us\n' "hostcall (audit /dev/null)" "$(k "$HCFS")" "($(minmax <"$TMP/hcfs.rps"))" "$(us hcfs)"
printf '   %-28s %9s  %-20s %s us\n' "node_fs.js (realpath+prefix)" "$(k "$NODEFS")" "($(minmax <"$TMP/nodefs.rps"))" "$(us nodefs)"
printf '   ratio hostcall/node: throughput %s (median of pairs %s; target >= 3.0)\n' "$RFS" "$PFS"
printf '                        CPU per request %s (node us / hostcall us)\n' "$CPU_RFS"
# The other methods over the same server, beside their raw C loops from section 6 (in-process,
# no socket: the floor each call stands on).
echo "   the other methods over the same socket, 64 deep (${FSOCK_ROUNDS} rounds each; raw loop in calls/s from section 6)"
for m in stat write list; do
  case $m in
    stat) REQ=(--request '{"jsonrpc":"2.0","id":0,"method":"fs.stat","params":{"path":"/input/file4k"}}'
               --expect-substring '"size":4096'); RAWUS=$(echo "$FSR" | field raw_stat_us) ;;
    write) REQ=(--request '{"jsonrpc":"2.0","id":0,"method":"fs.write","params":{"path":"/output/w","data":"aGVsbG8=","offset":0}}'
                --expect-substring '"bytes_written":5'); RAWUS=$(echo "$FSR" | field raw_write_us) ;;
    list) REQ=(--request '{"jsonrpc":"2.0","id":0,"method":"fs.list","params":{"path":"/input/list"}}'
               --expect-substring 'entry-15'); RAWUS=$(echo "$FSR" | field raw_list_us) ;;
  esac
  for _ in $(seq "$FSOCK_ROUNDS"); do sock "hc$m" "$HCFS_SOCK" "$HCFS_PID" 64 "$FSOCK_MS" "${REQ[@]}" >/dev/null; done
  printf '   fs.%-8s hostcall %9s req/s  server CPU %s us/req   raw loop %s calls/s\n' "$m" \
    "$(k "$(median <"$TMP/hc$m.rps")")" "$(us "hc$m")" "$(k "$(awk -v u="$RAWUS" 'BEGIN { if (u > 0) printf "%.0f", 1e6 / u; else print 0 }')")"
done
echo
# }=====

# {===== 8. sockets: echo round trips through net.connect + io.write + io.read =====
"$BIN/bench_net" "${NET_ROUNDS:-5}" >"$TMP/net.out" || { echo "bench: bench_net failed" >&2; exit 1; }
grep -v '^RESULT' "$TMP/net.out"
NETR=$(grep '^RESULT' "$TMP/net.out")
echo
# }=====

# {===== 9. tools and tenants =====
"$BIN/bench_tool" "${TOOL_ROUNDS:-5}" >"$TMP/tool.out" || { echo "bench: bench_tool failed" >&2; exit 1; }
grep -v '^RESULT' "$TMP/tool.out"
TOOLR=$(grep '^RESULT' "$TMP/tool.out")
echo
"$BIN/bench_tenants" "$BIN/hostcall" "${TENANTS_N:-1000}" "${TENANTS_SECS:-2}" >"$TMP/tenants.out" ||
  { echo "bench: bench_tenants failed" >&2; exit 1; }
grep -v '^RESULT' "$TMP/tenants.out"
TENR=$(grep '^RESULT' "$TMP/tenants.out")
echo
# }=====

echo "== summary"
printf '   in-process ping  %6s ns  floor %6s ns  ratio %s (target <= 2.0)  batch-of-10 %s ns/ping\n' \
  "$(echo "$PING" | field ping_ns)" "$(echo "$PING" | field floor_ns)" \
  "$(awk -v r="$(echo "$PING" | field ratio)" 'BEGIN { printf "%.2f", r }')" "$(echo "$PING" | field batch_ns)"
[ -n "$IR_RATIO" ] &&
  printf '   instructions     ping %s  floor %s  ratio %s  batch-of-10 %s per ping\n' \
    "$IR_PING" "$IR_FLOOR" "$IR_RATIO" "$IR_BATCH"
printf '   socket, 64 deep  hostcall %s  node %s  ratio %s (target >= 1.5, goal 2.0)  audit-to-file %s\n' \
  "$(k "$HC64")" "$(k "$NODE64")" "$R64" "$(k "$HCF64")"
printf '                    server CPU/request: hostcall %s us  node %s us  ratio %s\n' \
  "$(us hc64)" "$(us node64)" "$CPU_R64"
printf '   socket, 1 deep   hostcall %s  node %s  ratio %s\n' "$(k "$HC1")" "$(k "$NODE1")" "$(ratio "$HC1" "$NODE1")"
printf '   sleeps           100 x 100 ms answered in %s ms; ping answered in %s ms; ping first: %s\n' \
  "$SLEEP_MS" "$SLEEP_PING" "$SLEEP_FIRST"
printf '   fs.read in-proc  %s of the raw openat2+read+close loop (target >= 0.40; fastest rounds %s)\n' \
  "$(echo "$FSR" | field read_ratio)" "$(echo "$FSR" | field read_best)"
printf '   fs.read 4 KiB    hostcall %s  node %s  ratio %s (target >= 3.0)  pairs %s\n' \
  "$(k "$HCFS")" "$(k "$NODEFS")" "$RFS" "$PFS"
printf '    over a socket   server CPU/request: hostcall %s us  node %s us  ratio %s\n' \
  "$(us hcfs)" "$(us nodefs)" "$CPU_RFS"
printf '   echo, 64 bytes   runtime %s us  direct C %s us  ratio %s (target >= 0.30)\n' \
  "$(echo "$NETR" | field runtime_us)" "$(echo "$NETR" | field direct_us)" "$(echo "$NETR" | field ratio)"
printf '   tool round trip  tool.call %s us  plain fork/exec %s us  ratio %s\n' \
  "$(echo "$TOOLR" | field tool_us)" "$(echo "$TOOLR" | field plain_us)" "$(echo "$TOOLR" | field ratio)"
printf '   tenants          %s loaded: RSS %s MiB, pings/s %s of one tenant'"'"'s (target >= 0.80)\n' \
  "$(echo "$TENR" | field tenants)" "$(echo "$TENR" | field rss_mib)" "$(echo "$TENR" | field ratio)"
