/* ingest_ref.c: the reference for bench/ingest.sh: a plain C loop inserting
 * the rows headroomd would store for the same track events into SQLite.
 *
 *   build/bench/bench_ingest_ref DB [ROWS]
 *
 * DB is created afresh (any old file and its -wal/-shm are removed first);
 * ROWS defaults to $BENCH_EVENTS, else 2000000. The database is in WAL mode
 * with synchronous=NORMAL (headroomd's `--durability normal`), the table is
 * headroom's `events` table (seq INTEGER PRIMARY KEY, message_id, account,
 * user_id, anonymous_id, type, event, ts_ms, received_ms, body) with a
 * UNIQUE index on message_id, and the rows are inserted with one prepared
 * statement in transactions of 10,000 rows (BENCH_REF_TX). Each row is the
 * message bench/ingest_load.c sends (bench/ingest_msg.h: a random UUID-like
 * id, ~300 bytes of JSON as the body), formatted inside the timed loop (a
 * few hundred ns of the row's cost). BENCH_REF_ACCOUNT_INDEX=1 also creates
 * headroom's (account, seq) index. BENCH_ACCOUNTS (200) is the number of
 * accounts the rows are spread over.
 *
 * Prints "rows=N seconds=S rows_per_s=R us_per_row=U" on one line, and the
 * database size. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sqlite3.h>

#include "ingest_msg.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(sqlite3 *db, const char *what) {
    fprintf(stderr, "bench_ingest_ref: %s: %s\n", what, db ? sqlite3_errmsg(db) : "?");
    exit(1);
}

static void exec(sqlite3 *db, const char *sql) {
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "bench_ingest_ref: %s: %s\n", sql, msg ? msg : "?");
        exit(1);
    }
}

static long env_long(const char *name, long def) {
    const char *v = getenv(name);
    return v && *v ? strtol(v, NULL, 10) : def;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_ingest_ref DB [ROWS]\n");
        return 2;
    }
    const char *path = argv[1];
    long rows = argc > 2 ? strtol(argv[2], NULL, 10) : env_long("BENCH_EVENTS", 2000000);
    long tx = env_long("BENCH_REF_TX", 10000);
    int accounts = (int)env_long("BENCH_ACCOUNTS", 200);
    if (rows <= 0 || tx <= 0 || accounts <= 0) {
        fprintf(stderr, "bench_ingest_ref: ROWS, BENCH_REF_TX and BENCH_ACCOUNTS must be > 0\n");
        return 2;
    }
    char aux[4096];
    const char *sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(aux, sizeof aux, "%s%s", path, sfx[i]);
        unlink(aux);
    }
    sqlite3 *db = NULL;
    if (sqlite3_open(path, &db) != SQLITE_OK) die(db, "open");
    exec(db, "PRAGMA journal_mode = WAL");
    exec(db, "PRAGMA synchronous = NORMAL");
    exec(db, "PRAGMA cache_size = -65536"); /* as headroomd's store */
    exec(db, "CREATE TABLE events ("
             "  seq INTEGER PRIMARY KEY,"
             "  message_id TEXT, account TEXT, user_id TEXT, anonymous_id TEXT,"
             "  type TEXT NOT NULL, event TEXT,"
             "  ts_ms INTEGER NOT NULL, received_ms INTEGER NOT NULL,"
             "  body TEXT NOT NULL)");
    exec(db, "CREATE UNIQUE INDEX events_message_id ON events (message_id)");
    if (env_long("BENCH_REF_ACCOUNT_INDEX", 0)) exec(db, "CREATE INDEX events_account ON events (account, seq)");
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(db,
                           "INSERT INTO events (message_id, account, user_id, anonymous_id, type,"
                           " event, ts_ms, received_ms, body) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)",
                           -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
        die(db, "prepare");

    uint64_t seed = (uint64_t)time(NULL) * 0x100000001b3ull ^ (uint64_t)getpid();
    char ts[32], body[1024];
    int64_t now_ms = hb_now(ts);
    hb_msg m;
    double t0 = now_s();
    for (long i = 0; i < rows; i++) {
        if (i % tx == 0) exec(db, "BEGIN");
        hb_message(&seed, accounts, ts, body, sizeof body, &m);
        sqlite3_bind_text(st, 1, m.id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, m.account, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, m.user, -1, SQLITE_STATIC);
        sqlite3_bind_null(st, 4);
        sqlite3_bind_text(st, 5, "track", 5, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, "API Called", 10, SQLITE_STATIC);
        sqlite3_bind_int64(st, 7, now_ms);
        sqlite3_bind_int64(st, 8, now_ms);
        sqlite3_bind_text(st, 9, body, m.len, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE) die(db, "insert");
        sqlite3_reset(st);
        if ((i + 1) % tx == 0 || i + 1 == rows) exec(db, "COMMIT");
    }
    double secs = now_s() - t0;
    sqlite3_finalize(st);
    sqlite3_int64 n = 0;
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM events", -1, &q, NULL) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW)
        n = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    if (n != rows) {
        fprintf(stderr, "bench_ingest_ref: %lld rows in the table, expected %ld\n", (long long)n, rows);
        return 1;
    }
    if (sqlite3_close(db) != SQLITE_OK) die(db, "close");
    printf("rows=%ld seconds=%.3f rows_per_s=%.0f us_per_row=%.2f tx_rows=%ld account_index=%ld\n",
           rows, secs, rows / secs, secs * 1e6 / rows, tx, env_long("BENCH_REF_ACCOUNT_INDEX", 0));
    return 0;
}
