# lib.sh: helpers the bench scripts share (sourced, never run). The caller
# sets BUILD, CONFIG and (for die) nothing else: messages carry its name.

die() { echo "$(basename "$0"): $*" >&2; exit 1; }

# cpu_ticks N: "total idle" jiffies of core N so far (/proc/stat).
cpu_ticks() {
    awk -v c="cpu$1" '$1 == c { t = 0; for (i = 2; i <= NF; i++) t += $i; print t, $5 + $6 }' /proc/stat
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
