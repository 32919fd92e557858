# lib.sh: helpers the bench scripts share (sourced, never run). The caller
# sets BUILD, CONFIG and (for die) nothing else: messages carry its name;
# run_wrk also reads SERVER_CPU, CLIENT_CPU, CONNS and TMP, and sets WRK_PID
# while wrk runs (for the caller's cleanup).

die() { echo "$(basename "$0"): $*" >&2; exit 1; }

# cpu_ticks N: "total idle" jiffies of core N so far (/proc/stat).
cpu_ticks() {
    awk -v c="cpu$1" '$1 == c { t = 0; for (i = 2; i <= NF; i++) t += $i; print t, $5 + $6 }' /proc/stat
}

# busy_pct T0 T1: how busy a core was (percent) between two cpu_ticks.
busy_pct() { echo "$1 $2" | awk '{ t = $3 - $1; printf "%.0f", (t > 0) ? 100 * (t - ($4 - $2)) / t : 0 }'; }

# kv KEY FILE: the value of a KEY=VALUE line of FILE.
kv() { awk -F= -v k="$1" '$1 == k { print $2 }' "$2"; }

# wrk's latency figure ("1.23ms", "850.00us", "1.02s") in milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.3f", n }'
}

# run_wrk SCRIPT URL SECONDS LOGFILE: wrk (-t1, CONNS connections, the Lua
# SCRIPT) on the client core; fails on errors and non-2xx answers. Sets
# CLIENT_PCT, wrk's CPU use in percent of its core (from bash's `time`),
# and SERVER_PCT, how busy the server core was (by anything) meanwhile.
run_wrk() {
    local s0 s1
    s0=$(cpu_ticks "$SERVER_CPU")
    # in the background, so that a signal to the script is handled at once
    taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d"$3"s --latency -s "$1" "$2" >"$4" 2>&1 &
    WRK_PID=$!
    local TIMEFORMAT='%U %S %R' rc=0
    { time wait "$WRK_PID" || rc=$?; } 2>"$TMP/wrk-time"
    WRK_PID=
    s1=$(cpu_ticks "$SERVER_CPU")
    [ "$rc" = 0 ] || { cat "$4" >&2; die "wrk failed"; }
    SERVER_PCT=$(busy_pct "$s0" "$s1")
    CLIENT_PCT=$(awk '{ printf "%.0f", ($3 > 0) ? 100 * ($1 + $2) / $3 : 0 }' "$TMP/wrk-time")
    if grep -q "Non-2xx" "$4"; then
        cat "$4" >&2
        die "wrk saw non-2xx responses from $2"
    fi
}

# wait_file PATH PID: until PATH exists, the process dies or 60 s pass.
wait_file() {
    for _ in $(seq 1 1200); do
        [ -s "$1" ] && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# stop_pid VAR [SIGNAL]: signal (TERM) the process whose id is in $VAR, wait
# for it, clear VAR. Nothing when VAR is empty or the process is gone.
stop_pid() {
    local p=${!1}
    if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
        kill -"${2:-TERM}" "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    fi
    printf -v "$1" ''
}

# rm_db PATH: a SQLite database and its WAL files.
rm_db() { rm -f "$1" "$1-wal" "$1-shm"; }

# start_nginx VAR BODY [PIN...]: a private nginx (1 worker, in $TMP/nginx) on
# a free loopback port, answering every request with 200 and BODY, started
# under the PIN command (e.g. taskset -c 0). Sets VAR to its pid and
# NGINX_URL to http://127.0.0.1:PORT.
start_nginx() {
    local var=$1 body=$2 port ok=
    shift 2
    mkdir -p "$TMP/nginx/logs"
    for _ in $(seq 1 20); do
        port=$((20000 + RANDOM % 40000))
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue   # in use
        cat >"$TMP/nginx/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    default_type application/json;
    keepalive_requests 1000000;
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    server {
        listen 127.0.0.1:$port;
        location / { return 200 '$body'; }
    }
}
EOF
        "$@" nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/logs/error.log" \
            >"$TMP/nginx.log" 2>&1 &
        printf -v "$var" '%s' $!
        for _ in $(seq 1 100); do
            kill -0 "${!var}" 2>/dev/null || break
            if curl -s -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null; then ok=1; break; fi
            sleep 0.05
        done
        [ -n "$ok" ] && break
        stop_pid "$var"   # most likely lost a race for the port: try another
    done
    [ -n "$ok" ] || { cat "$TMP/nginx.log" "$TMP/nginx/logs/error.log" >&2 2>/dev/null; die "nginx did not start"; }
    NGINX_URL=http://127.0.0.1:$port
}

# demo_db PATH ACCOUNTS: a `headroom demo-data --users 1` database, made once
# and kept (PATH.ok marks a complete one); BENCH_FRESH=1 makes it again.
demo_db() {
    if [ "${BENCH_FRESH:-0}" = 1 ] || [ ! -f "$1.ok" ]; then
        rm -f "$1" "$1-wal" "$1-shm" "$1.ok"
        echo "generating $2 accounts into $1 ..."
        "$BUILD/headroom" demo-data --accounts "$2" --users 1 --db "$1" --config "$CONFIG" >/dev/null ||
            die "headroom demo-data failed"
        touch "$1.ok"
    fi
}
