/* sqlite.c: the SQLite backend of hr_store_ops.
 *
 * One connection in WAL mode; the schema is a numbered list of migrations
 * (the table below) applied in order at open, each in its own transaction,
 * and a database stamped by a newer binary is refused rather than guessed
 * at. The key design decision: every write statement is prepared once at
 * open and kept in the store (reset and rebound per call), because put_usage
 * and put_account sit on the hot write path and the 1M-account demo load
 * goes through them; load streams rows straight out of sqlite3_column_text
 * (borrowed, never copied) so a cold start of 1M accounts stays well under
 * the 3 s startup budget. No foreign keys: rows are owned by an account by
 * key prefix and delete_account removes them explicitly, which keeps inserts
 * free of FK checks and lets the engine write in any order. Ingested events
 * go to an append-only log that delete_account leaves alone (it is history);
 * the account's meter values and its event history (per-day counts and
 * first/last seen, which the rule language reads) go with it. */
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zstd.h>

#include "err.h"
#include "map.h"
#include "store/store.h"
#include "timeutil.h"

/* ---- schema, as data ---------------------------------------------------- */

typedef struct migration {
    int version;
    const char *sql;
} migration;

/* Append only: a shipped migration is never edited, a change is a new row. */
static const migration migrations[] = {
    {1,
     "CREATE TABLE accounts ("
     "  id TEXT PRIMARY KEY NOT NULL,"
     "  name TEXT, plan TEXT, owner TEXT,"
     "  plan_version INTEGER NOT NULL DEFAULT 0,"
     "  interval TEXT,"
     "  created_at INTEGER NOT NULL DEFAULT 0,"
     "  updated_at INTEGER NOT NULL DEFAULT 0,"
     "  renews_at INTEGER NOT NULL DEFAULT 0,"
     "  traits_json TEXT, addons_json TEXT, trial_plan TEXT,"
     "  trial_started_at INTEGER NOT NULL DEFAULT 0,"
     "  trial_ends_at INTEGER NOT NULL DEFAULT 0,"
     "  plan_trial_used INTEGER NOT NULL DEFAULT 0);"
     /* Child tables are keyed by account first so the cascade in
      * delete_account is a prefix range scan; WITHOUT ROWID avoids a second
      * b-tree for the composite key. */
     "CREATE TABLE users ("
     "  account TEXT NOT NULL, id TEXT NOT NULL,"
     "  role TEXT, seat_type TEXT, traits_json TEXT,"
     "  created_at INTEGER NOT NULL DEFAULT 0,"
     "  updated_at INTEGER NOT NULL DEFAULT 0,"
     "  PRIMARY KEY (account, id)) WITHOUT ROWID;"
     "CREATE TABLE usage ("
     "  account TEXT NOT NULL, feature TEXT NOT NULL,"
     "  value INTEGER NOT NULL DEFAULT 0,"
     "  period_start INTEGER NOT NULL DEFAULT 0,"
     "  updated_at INTEGER NOT NULL DEFAULT 0,"
     "  PRIMARY KEY (account, feature)) WITHOUT ROWID;"
     "CREATE TABLE overrides ("
     "  account TEXT NOT NULL, feature TEXT NOT NULL,"
     "  value INTEGER NOT NULL DEFAULT 0,"
     "  expires_at INTEGER NOT NULL DEFAULT 0,"
     "  created_at INTEGER NOT NULL DEFAULT 0,"
     "  PRIMARY KEY (account, feature)) WITHOUT ROWID;"
     "CREATE TABLE feature_trials ("
     "  account TEXT NOT NULL, feature TEXT NOT NULL,"
     "  started_at INTEGER NOT NULL DEFAULT 0,"
     "  ends_at INTEGER NOT NULL DEFAULT 0,"
     "  PRIMARY KEY (account, feature)) WITHOUT ROWID;"
     /* request_hash is a uint64 stored bit-for-bit as a signed INTEGER. */
     "CREATE TABLE idempotency ("
     "  key TEXT PRIMARY KEY NOT NULL,"
     "  request_hash INTEGER NOT NULL,"
     "  status INTEGER NOT NULL,"
     "  body TEXT,"
     "  created_at INTEGER NOT NULL DEFAULT 0);"
     "CREATE INDEX idempotency_created ON idempotency (created_at);"
     /* History is kept (an audit of catalog changes); the newest id wins. */
     "CREATE TABLE catalog ("
     "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
     "  text TEXT NOT NULL,"
     "  at INTEGER NOT NULL);"},
    {2,
     /* The event log is append-only: seq is the rowid, so an insert is an
      * append at the right edge of the b-tree. recent_events walks
      * (account, seq) backwards. */
     "CREATE TABLE events ("
     "  seq INTEGER PRIMARY KEY,"
     "  message_id TEXT, account TEXT, user_id TEXT, anonymous_id TEXT,"
     "  type TEXT NOT NULL, event TEXT,"
     "  ts_ms INTEGER NOT NULL, received_ms INTEGER NOT NULL,"
     "  body TEXT NOT NULL);"
     "CREATE INDEX events_account ON events (account, seq);"
     /* Message ids inside the dedup window; pruned by received_ms. */
     "CREATE TABLE seen ("
     "  message_id TEXT PRIMARY KEY,"
     "  received_ms INTEGER NOT NULL) WITHOUT ROWID;"
     "CREATE INDEX seen_received ON seen (received_ms);"
     /* uniq: the value hashes of a unique meter, little-endian uint64s. */
     "CREATE TABLE meter_values ("
     "  account TEXT NOT NULL, meter TEXT NOT NULL,"
     "  period_start INTEGER NOT NULL,"
     "  value REAL NOT NULL,"
     "  latest_ms INTEGER NOT NULL DEFAULT 0,"
     "  uniq BLOB,"
     "  PRIMARY KEY (account, meter, period_start)) WITHOUT ROWID;"},
    {3,
     /* Event history for rules. user is '' for account-level rows (not
      * NULL: NULLs are distinct in a primary key, so the upsert would never
      * conflict). Keyed by account first like the other child tables; the
      * day index serves prune_edays, which cuts across accounts. */
     "CREATE TABLE event_days ("
     "  account TEXT NOT NULL, user TEXT NOT NULL, event TEXT NOT NULL,"
     "  day INTEGER NOT NULL,"
     "  count INTEGER NOT NULL,"
     "  PRIMARY KEY (account, user, event, day)) WITHOUT ROWID;"
     "CREATE INDEX event_days_day ON event_days (day);"
     "CREATE TABLE event_stats ("
     "  account TEXT NOT NULL, user TEXT NOT NULL, event TEXT NOT NULL,"
     "  first_ms INTEGER NOT NULL,"
     "  last_ms INTEGER NOT NULL,"
     "  PRIMARY KEY (account, user, event)) WITHOUT ROWID;"},
    {4,
     /* Message ids for dedup come from the event log itself (it keeps at
      * least the dedup window): a second B-tree keyed by random ids cost a
      * random page write per event, the bulk of ingestion's I/O. */
     "DROP INDEX IF EXISTS seen_received;"
     "DROP TABLE IF EXISTS seen;"},
    {5,
     /* Campaigns: per (campaign, kind, key) state (kind 0: a user's shows,
      * dismissal and answer; 1: an experiment unit's variant, exposure and
      * conversion; 2: a user's shows across campaigns, campaign ''), and
      * the log of prompt events the SDK reports. */
     "CREATE TABLE prompt_state ("
     "  campaign TEXT NOT NULL, kind INTEGER NOT NULL, key TEXT NOT NULL,"
     "  variant TEXT, account TEXT,"
     "  first_ms INTEGER NOT NULL DEFAULT 0, dismissed_ms INTEGER NOT NULL DEFAULT 0,"
     "  answered_ms INTEGER NOT NULL DEFAULT 0, converted_ms INTEGER NOT NULL DEFAULT 0,"
     "  shows TEXT NOT NULL DEFAULT '',"
     "  PRIMARY KEY (campaign, kind, key)) WITHOUT ROWID;"
     "CREATE TABLE prompt_events ("
     "  id INTEGER PRIMARY KEY,"
     "  campaign TEXT NOT NULL, variant TEXT NOT NULL, type TEXT NOT NULL,"
     "  user TEXT, account TEXT, at_ms INTEGER NOT NULL);"
     "CREATE INDEX prompt_events_campaign ON prompt_events (campaign, variant, type);"},
    {6,
     /* Playbooks: the edge state of each (account, playbook) signal, the
      * history of fired signals with their evidence, the reps' tasks, and
      * the webhook outbox with its delivery log. */
     "CREATE TABLE signal_state ("
     "  account TEXT NOT NULL, playbook TEXT NOT NULL,"
     "  active INTEGER NOT NULL, last_fired_ms INTEGER NOT NULL DEFAULT 0,"
     "  PRIMARY KEY (account, playbook)) WITHOUT ROWID;"
     "CREATE TABLE fired_signals ("
     "  id INTEGER PRIMARY KEY, account TEXT NOT NULL, playbook TEXT NOT NULL,"
     "  at_ms INTEGER NOT NULL, value REAL, evidence TEXT NOT NULL);"
     "CREATE INDEX fired_signals_account ON fired_signals (account, at_ms);"
     "CREATE TABLE tasks ("
     "  id TEXT PRIMARY KEY, account TEXT NOT NULL, playbook TEXT NOT NULL,"
     "  owner TEXT, status TEXT NOT NULL, message TEXT NOT NULL, evidence TEXT NOT NULL,"
     "  score REAL NOT NULL, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,"
     "  snooze_until_ms INTEGER NOT NULL DEFAULT 0);"
     "CREATE TABLE outbox ("
     "  id TEXT PRIMARY KEY, url TEXT NOT NULL, secrets TEXT, body TEXT NOT NULL,"
     "  playbook TEXT, account TEXT, status INTEGER NOT NULL, attempts INTEGER NOT NULL,"
     "  created_ms INTEGER NOT NULL, next_at_ms INTEGER NOT NULL,"
     "  last_code INTEGER NOT NULL DEFAULT 0, last_latency_ms INTEGER NOT NULL DEFAULT 0,"
     "  last_error TEXT);"
     "CREATE INDEX outbox_due ON outbox (status, next_at_ms);"
     "CREATE TABLE deliveries ("
     "  id INTEGER PRIMARY KEY, msg_id TEXT NOT NULL, attempt INTEGER NOT NULL,"
     "  at_ms INTEGER NOT NULL, code INTEGER NOT NULL, latency_ms INTEGER NOT NULL, error TEXT);"
     "CREATE INDEX deliveries_msg ON deliveries (msg_id, id);"},
    {7,
     /* The event log is the truth for meters and history: their tables are
      * written a second or so behind it, and folded_seq says which events
      * they include, so start-up replays only the log after it. Every event
      * of an older database was folded when it was written. */
     "CREATE TABLE ingest_state ("
     "  key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
     "INSERT INTO ingest_state (key, value)"
     "  SELECT 'folded_seq', coalesce(max(seq), 0) FROM events;"
     /* An account's events are found by walking back from its newest one
      * (account_log) through prev_seq. The (account, seq) index this
      * replaces cost each commit one random leaf per account it touched,
      * which halved ingestion. */
     "ALTER TABLE events ADD COLUMN prev_seq INTEGER;"
     "CREATE TABLE account_log ("
     "  account TEXT PRIMARY KEY, last_seq INTEGER NOT NULL) WITHOUT ROWID;"
     "INSERT INTO account_log (account, last_seq)"
     "  SELECT account, max(seq) FROM events WHERE account IS NOT NULL GROUP BY account;"
     "UPDATE events SET prev_seq = (SELECT max(p.seq) FROM events p"
     "  WHERE p.account = events.account AND p.seq < events.seq)"
     "  WHERE account IS NOT NULL;"
     "DROP INDEX events_account;"},
    {8,
     /* The day index (for a table-wide prune) cost each history row one
      * insert at a random place, which slowed an import of a year of
      * events by a third. */
     "DROP INDEX IF EXISTS event_days_day;"},
    {9,
     /* History as one row per (account, user, event) holding all its days
      * (text, history.c's format: "DAY:COUNT,GAP:COUNT,..."), written
      * whole from memory: a row per day cost a year of imported events a
      * b-tree insert per event and day. Days past the horizon are dropped
      * whenever a row is rewritten and skipped on load. A rowid table with
      * the key in an index, not WITHOUT ROWID: a row of a long history
      * (1 KB of text) then stays in its leaf instead of spilling to
      * overflow pages, and rewriting it costs 23 us instead of 57. */
     "CREATE TABLE event_hist ("
     "  account TEXT NOT NULL, user TEXT NOT NULL, event TEXT NOT NULL,"
     "  first_ms INTEGER NOT NULL, last_ms INTEGER NOT NULL, days TEXT NOT NULL,"
     "  UNIQUE (account, user, event));"
     "INSERT INTO event_hist (account, user, event, first_ms, last_ms, days)"
     "  SELECT k.account, k.user, k.event, coalesce(s.first_ms, 0), coalesce(s.last_ms, 0), k.days"
     "  FROM (SELECT account, user, event, group_concat(d || ':' || count, ',') AS days"
     "        FROM (SELECT account, user, event, count,"
     "                     day - lag(day, 1, 0) OVER (PARTITION BY account, user, event"
     "                                                ORDER BY day) AS d"
     "              FROM event_days ORDER BY account, user, event, day)"
     "        GROUP BY account, user, event) k"
     "  LEFT JOIN event_stats s USING (account, user, event);"
     "INSERT INTO event_hist (account, user, event, first_ms, last_ms, days)"
     "  SELECT account, user, event, first_ms, last_ms, '' FROM event_stats s"
     "  WHERE NOT EXISTS (SELECT 1 FROM event_hist h WHERE h.account = s.account"
     "                    AND h.user = s.user AND h.event = s.event);"
     "DROP TABLE event_days;"
     "DROP TABLE event_stats;"},
    {10,
     /* A row may hold several events (n) of one account from one commit:
      * the first in the columns, the others packed in `more` (sqlite.c's
      * format, see pack_event), and seq is the last one's (their seqs run
      * on from seq - n + 1). A row per event cost an import half of its
      * log's time in SQLite's per-row work. */
     "ALTER TABLE events ADD COLUMN n INTEGER NOT NULL DEFAULT 1;"
     "ALTER TABLE events ADD COLUMN more BLOB;"},
    {11,
     /* more_zstd = 1: `more` is one zstd frame of the packed events. A
      * run of one account's JSON shrinks about tenfold, and the bytes
      * SQLite wrote twice (to the WAL, then the checkpoint) were a
      * quarter of an import's server CPU. */
     "ALTER TABLE events ADD COLUMN more_zstd INTEGER NOT NULL DEFAULT 0;"},
};
#define NMIGRATIONS (int)(sizeof migrations / sizeof migrations[0])
#define LATEST_VERSION (migrations[NMIGRATIONS - 1].version)

/* ---- prepared statements, as data --------------------------------------- */

#define STMTS(X)                                                                       \
    X(BEGIN, "BEGIN IMMEDIATE")                                                        \
    X(COMMIT, "COMMIT")                                                                \
    X(ROLLBACK, "ROLLBACK")                                                            \
    X(PUT_ACCOUNT,                                                                     \
      "INSERT INTO accounts (id, name, plan, owner, plan_version, interval,"           \
      " created_at, updated_at, renews_at, traits_json, addons_json, trial_plan,"     \
      " trial_started_at, trial_ends_at, plan_trial_used)"                            \
      " VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15)"                  \
      " ON CONFLICT (id) DO UPDATE SET name=excluded.name, plan=excluded.plan,"       \
      " owner=excluded.owner, plan_version=excluded.plan_version,"                    \
      " interval=excluded.interval, created_at=excluded.created_at,"                  \
      " updated_at=excluded.updated_at, renews_at=excluded.renews_at,"                \
      " traits_json=excluded.traits_json, addons_json=excluded.addons_json,"          \
      " trial_plan=excluded.trial_plan, trial_started_at=excluded.trial_started_at,"  \
      " trial_ends_at=excluded.trial_ends_at,"                                        \
      " plan_trial_used=excluded.plan_trial_used")                                    \
    X(DEL_ACCOUNT, "DELETE FROM accounts WHERE id = ?1")                               \
    X(DEL_ACCOUNT_USERS, "DELETE FROM users WHERE account = ?1")                       \
    X(DEL_ACCOUNT_USAGE, "DELETE FROM usage WHERE account = ?1")                       \
    X(DEL_ACCOUNT_OVERRIDES, "DELETE FROM overrides WHERE account = ?1")               \
    X(DEL_ACCOUNT_FTRIALS, "DELETE FROM feature_trials WHERE account = ?1")            \
    X(DEL_ACCOUNT_METERS, "DELETE FROM meter_values WHERE account = ?1")               \
    X(DEL_ACCOUNT_HIST, "DELETE FROM event_hist WHERE account = ?1")                   \
    X(PUT_USER,                                                                        \
      "INSERT INTO users (account, id, role, seat_type, traits_json, created_at,"      \
      " updated_at) VALUES (?1,?2,?3,?4,?5,?6,?7)"                                     \
      " ON CONFLICT (account, id) DO UPDATE SET role=excluded.role,"                   \
      " seat_type=excluded.seat_type, traits_json=excluded.traits_json,"               \
      " created_at=excluded.created_at, updated_at=excluded.updated_at")               \
    X(DEL_USER, "DELETE FROM users WHERE account = ?1 AND id = ?2")                    \
    X(PUT_USAGE,                                                                       \
      "INSERT INTO usage (account, feature, value, period_start, updated_at)"          \
      " VALUES (?1,?2,?3,?4,?5)"                                                       \
      " ON CONFLICT (account, feature) DO UPDATE SET value=excluded.value,"            \
      " period_start=excluded.period_start, updated_at=excluded.updated_at")           \
    X(PUT_OVERRIDE,                                                                    \
      "INSERT INTO overrides (account, feature, value, expires_at, created_at)"        \
      " VALUES (?1,?2,?3,?4,?5)"                                                       \
      " ON CONFLICT (account, feature) DO UPDATE SET value=excluded.value,"            \
      " expires_at=excluded.expires_at, created_at=excluded.created_at")               \
    X(DEL_OVERRIDE, "DELETE FROM overrides WHERE account = ?1 AND feature = ?2")       \
    X(PUT_FTRIAL,                                                                      \
      "INSERT INTO feature_trials (account, feature, started_at, ends_at)"             \
      " VALUES (?1,?2,?3,?4)"                                                          \
      " ON CONFLICT (account, feature) DO UPDATE SET started_at=excluded.started_at,"  \
      " ends_at=excluded.ends_at")                                                     \
    X(DEL_ACCOUNT_IDEM,                                                                \
      "DELETE FROM idempotency WHERE key >= ?1 || char(31) AND key < ?1 || char(32)")  \
    X(IDEM_PRUNE, "DELETE FROM idempotency WHERE created_at < ?1")                     \
    X(IDEM_GET, "SELECT request_hash, status, body FROM idempotency WHERE key = ?1")   \
    X(IDEM_PUT,                                                                        \
      "INSERT INTO idempotency (key, request_hash, status, body, created_at)"           \
      " VALUES (?1,?2,?3,?4,?5)"                                                       \
      " ON CONFLICT (key) DO UPDATE SET request_hash=excluded.request_hash,"           \
      " status=excluded.status, body=excluded.body, created_at=excluded.created_at")   \
    X(PUT_CATALOG, "INSERT INTO catalog (text, at) VALUES (?1, ?2)")                   \
    X(GET_CATALOG, "SELECT text, at FROM catalog ORDER BY id DESC LIMIT 1")            \
    X(PUT_EVENT,                                                                       \
      "INSERT INTO events (message_id, account, user_id, anonymous_id, type, event,"   \
      " ts_ms, received_ms, body, prev_seq, seq, n, more, more_zstd)"                 \
      " VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)")                      \
    X(PUT_ACCOUNT_LOG,                                                                 \
      "INSERT INTO account_log (account, last_seq) VALUES (?1, ?2)"                    \
      " ON CONFLICT (account) DO UPDATE SET last_seq=excluded.last_seq")               \
    X(GET_ACCOUNT_LOG, "SELECT last_seq FROM account_log WHERE account = ?1")          \
    X(EVENT_AT,                                                                        \
      "SELECT message_id, account, user_id, anonymous_id, type, event, ts_ms,"         \
      " received_ms, body, prev_seq, n, more, more_zstd FROM events WHERE seq = ?1")   \
    X(FIRST_SEQ_AT, "SELECT seq, received_ms FROM events WHERE seq >= ?1 ORDER BY seq LIMIT 1") \
    X(LAST_SEQ, "SELECT coalesce(max(seq), 0) FROM events")                             \
    X(GET_FOLDED, "SELECT value FROM ingest_state WHERE key = 'folded_seq'")           \
    X(PUT_FOLDED,                                                                      \
      "INSERT INTO ingest_state (key, value) VALUES ('folded_seq', ?1)"                \
      " ON CONFLICT (key) DO UPDATE SET value=excluded.value")                         \
    X(EVENTS_PRUNE,                                                                    \
      "DELETE FROM events WHERE seq IN (SELECT seq FROM events ORDER BY seq LIMIT ?2)"  \
      " AND received_ms < ?1"                                                          \
      " AND seq <= (SELECT value FROM ingest_state WHERE key = 'folded_seq')"          \
      " AND seq < (SELECT max(seq) FROM events)"                                       \
      " RETURNING n")                                                                  \
    X(PUT_METER,                                                                       \
      "INSERT INTO meter_values (account, meter, period_start, value, latest_ms, uniq)" \
      " VALUES (?1,?2,?3,?4,?5,?6)"                                                    \
      " ON CONFLICT (account, meter, period_start) DO UPDATE SET value=excluded.value,"\
      " latest_ms=excluded.latest_ms, uniq=excluded.uniq")                             \
    X(METER_SERIES,                                                                    \
      "SELECT account, meter, period_start, value, latest_ms, uniq FROM meter_values"  \
      " WHERE account = ?1 AND meter = ?2 AND period_start >= ?3 AND period_start < ?4"\
      " ORDER BY period_start")                                                        \
    X(PUT_HIST,                                                                        \
      "INSERT INTO event_hist (account, user, event, first_ms, last_ms, days)"          \
      " VALUES (?1,?2,?3,?4,?5,?6) ON CONFLICT (account, user, event) DO UPDATE SET"   \
      " first_ms=excluded.first_ms, last_ms=excluded.last_ms, days=excluded.days")     \
    X(PUT_PROMPT,                                                                      \
      "INSERT INTO prompt_state (campaign, kind, key, variant, account, first_ms,"     \
      " dismissed_ms, answered_ms, converted_ms, shows) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)" \
      " ON CONFLICT (campaign, kind, key) DO UPDATE SET variant=excluded.variant,"     \
      " account=excluded.account, first_ms=excluded.first_ms,"                         \
      " dismissed_ms=excluded.dismissed_ms, answered_ms=excluded.answered_ms,"         \
      " converted_ms=excluded.converted_ms, shows=excluded.shows")                     \
    X(LOAD_PROMPTS,                                                                    \
      "SELECT campaign, kind, key, variant, account, first_ms, dismissed_ms,"          \
      " answered_ms, converted_ms, shows FROM prompt_state")                           \
    X(PUT_PROMPT_EVENT,                                                                \
      "INSERT INTO prompt_events (campaign, variant, type, user, account, at_ms)"      \
      " VALUES (?1,?2,?3,?4,?5,?6)")                                                   \
    X(SIGNAL_PUT,                                                                      \
      "INSERT INTO signal_state (account, playbook, active, last_fired_ms) VALUES (?1,?2,?3,?4)" \
      " ON CONFLICT (account, playbook) DO UPDATE SET active=excluded.active,"         \
      " last_fired_ms=excluded.last_fired_ms")                                         \
    X(SIGNAL_LOAD, "SELECT account, playbook, active, last_fired_ms FROM signal_state") \
    X(FIRED_PUT,                                                                       \
      "INSERT INTO fired_signals (account, playbook, at_ms, value, evidence)"           \
      " VALUES (?1,?2,?3,?4,?5)")                                                      \
    X(FIRED_LIST,                                                                      \
      "SELECT account, playbook, at_ms, value, evidence FROM fired_signals"            \
      " WHERE account = ?1 ORDER BY id DESC LIMIT ?2")                                 \
    X(TASK_PUT,                                                                        \
      "INSERT INTO tasks (id, account, playbook, owner, status, message, evidence,"    \
      " score, created_ms, updated_ms, snooze_until_ms) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)" \
      " ON CONFLICT (id) DO UPDATE SET owner=excluded.owner, status=excluded.status,"  \
      " message=excluded.message, evidence=excluded.evidence, score=excluded.score,"   \
      " updated_ms=excluded.updated_ms, snooze_until_ms=excluded.snooze_until_ms")     \
    X(TASK_LOAD,                                                                       \
      "SELECT id, account, playbook, owner, status, message, evidence, score,"         \
      " created_ms, updated_ms, snooze_until_ms FROM tasks ORDER BY created_ms")       \
    X(OUTBOX_PUT,                                                                      \
      "INSERT INTO outbox (id, url, secrets, body, playbook, account, status, attempts,"\
      " created_ms, next_at_ms, last_code, last_latency_ms, last_error)"               \
      " VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)"                           \
      " ON CONFLICT (id) DO UPDATE SET url=excluded.url, secrets=excluded.secrets,"    \
      " body=excluded.body, status=excluded.status, attempts=excluded.attempts,"       \
      " next_at_ms=excluded.next_at_ms, last_code=excluded.last_code,"                 \
      " last_latency_ms=excluded.last_latency_ms, last_error=excluded.last_error")     \
    X(OUTBOX_DUE,                                                                      \
      "SELECT " OUTBOX_COLS " FROM outbox WHERE status = 0 AND next_at_ms <= ?1"       \
      " ORDER BY next_at_ms LIMIT ?2")                                                 \
    X(OUTBOX_GET, "SELECT " OUTBOX_COLS " FROM outbox WHERE id = ?1")                  \
    X(OUTBOX_LIST,                                                                     \
      "SELECT " OUTBOX_COLS " FROM outbox WHERE (?1 < 0 OR status = ?1)"               \
      " ORDER BY created_ms DESC LIMIT ?2")                                            \
    X(DELIVERY_PUT,                                                                    \
      "INSERT INTO deliveries (msg_id, attempt, at_ms, code, latency_ms, error)"       \
      " VALUES (?1,?2,?3,?4,?5,?6)")                                                   \
    X(DELIVERY_LIST,                                                                   \
      "SELECT msg_id, attempt, at_ms, code, latency_ms, error FROM deliveries"         \
      " WHERE (?1 IS NULL OR msg_id = ?1) ORDER BY id DESC LIMIT ?2")                  \
    X(PROMPT_EVENT_COUNTS,                                                             \
      "SELECT campaign, variant, type, count(*) FROM prompt_events"                    \
      " GROUP BY campaign, variant, type")

#define OUTBOX_COLS                                                                   \
    "id, url, secrets, body, playbook, account, status, attempts, created_ms,"         \
    " next_at_ms, last_code, last_latency_ms, last_error"

enum {
#define X(name, sql) ST_##name,
    STMTS(X)
#undef X
    NSTMTS
};

static const char *const stmt_sql[NSTMTS] = {
#define X(name, sql) sql,
    STMTS(X)
#undef X
};

/* An account's newest logged event, as account_log holds it. */
typedef struct sq_last {
    int64_t seq;
    struct sq_last *next_touched; /* in the put_events call under way */
    int touched;
    char account[];
} sq_last;

typedef struct sq_store {
    hr_store base; /* first: hr_store * and sq_store * convert both ways */
    sqlite3 *db;
    int version;
    sqlite3_stmt *st[NSTMTS];
    /* account_log in memory, read on the first put_events and dropped on
     * a rollback (it may hold what was rolled back) */
    hr_map *last;
    unsigned char *pack; /* put_events' packed events, reused */
    size_t pack_cap;
    ZSTD_CCtx *zc;       /* put_events' compressor, made on first use */
    unsigned char *zout; /* its output, reused */
    size_t zout_cap;
    ZSTD_DCtx *zd;       /* the readers' decompressor, made on first use */
    unsigned char *unz;  /* a row's packed events, decompressed; reused */
    size_t unz_cap;
    int durable_full;
    /* background checkpoints (hr_store_sqlite_background_checkpoints) */
    sqlite3 *ckdb;     /* the checkpointer's connection; NULL: none */
    pthread_t ckthread;
    pthread_mutex_t ckmu;
    pthread_cond_t ckcv;
    int ckwant, ckstop;
    int ckframes;      /* log pages that wake it */
} sq_store;

/* ---- helpers ------------------------------------------------------------ */

static int fail_rc(sqlite3 *db, int rc, hr_err *err, const char *what) {
    int code = (rc == SQLITE_NOMEM) ? HR_ENOMEM : HR_ESTORE;
    return hr_err_set(err, code, "sqlite %s: %s", what,
                      db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

static void done(sqlite3_stmt *st) {
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Steps a write statement to completion and readies it for the next call.
 * bad is non-zero when a bind failed (the message is in the connection). */
static int exec_stmt(sq_store *q, int idx, int bad, hr_err *err, const char *what) {
    sqlite3_stmt *st = q->st[idx];
    int ret = 0;
    if (bad) {
        ret = fail_rc(q->db, sqlite3_errcode(q->db), err, what);
        goto out;
    }
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) ret = fail_rc(q->db, rc, err, what);
out:
    done(st);
    return ret;
}

/* SQLITE_STATIC: the record's strings outlive the step; NULL binds SQL NULL. */
static int btext(sqlite3_stmt *st, int i, const char *s) {
    return sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC) != SQLITE_OK;
}

static int bint(sqlite3_stmt *st, int i, int64_t v) {
    return sqlite3_bind_int64(st, i, (sqlite3_int64)v) != SQLITE_OK;
}

static const char *ctext(sqlite3_stmt *st, int i) {
    return (const char *)sqlite3_column_text(st, i);
}

static char *ccopy(sqlite3_stmt *st, int i) {
    const unsigned char *t = sqlite3_column_text(st, i);
    size_t n = t ? (size_t)sqlite3_column_bytes(st, i) : 0;
    char *p = malloc(n + 1);
    if (!p) return NULL;
    if (n) memcpy(p, t, n);
    p[n] = '\0';
    return p;
}

/* uniq blobs are little-endian on disk whatever the host; on a
 * little-endian host that is the in-memory layout, so no conversion. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HOST_LE 1
#else
#define HOST_LE 0
#endif

/* Binds a uniq array as a blob; n == 0 binds NULL. On a little-endian host
 * the record's own array is bound (it outlives the step). */
static int buniq(sqlite3_stmt *st, int i, const uint64_t *u, uint32_t n) {
    if (!n || !u) return sqlite3_bind_null(st, i) != SQLITE_OK;
    sqlite3_uint64 bytes = (sqlite3_uint64)n * 8;
#if HOST_LE
    return sqlite3_bind_blob64(st, i, u, bytes, SQLITE_STATIC) != SQLITE_OK;
#else
    unsigned char *b = malloc(bytes);
    if (!b) return 1;
    for (uint32_t k = 0; k < n; k++)
        for (int j = 0; j < 8; j++) b[k * 8 + j] = (unsigned char)(u[k] >> (8 * j));
    return sqlite3_bind_blob64(st, i, b, bytes, free) != SQLITE_OK;
#endif
}

/* Copies a uniq blob into a fresh uint64 array (caller frees): the blob
 * SQLite hands out has no alignment promise. SQL NULL gives NULL/0; bytes
 * past the last whole uint64 are ignored. */
static int cuniq(sqlite3_stmt *st, int i, uint64_t **out, uint32_t *n) {
    const unsigned char *b = sqlite3_column_blob(st, i);
    size_t cnt = b ? (size_t)sqlite3_column_bytes(st, i) / 8 : 0;
    *out = NULL;
    *n = 0;
    if (!cnt) return 0;
    if (cnt > UINT32_MAX) cnt = UINT32_MAX;
    uint64_t *u = malloc(cnt * sizeof *u);
    if (!u) return HR_ENOMEM;
#if HOST_LE
    memcpy(u, b, cnt * sizeof *u);
#else
    for (size_t k = 0; k < cnt; k++) {
        uint64_t v = 0;
        for (int j = 7; j >= 0; j--) v = (v << 8) | b[k * 8 + j];
        u[k] = v;
    }
#endif
    *out = u;
    *n = (uint32_t)cnt;
    return 0;
}

/* Calls fn with the meter row at st (columns: account, meter, period_start,
 * value, latest_ms, uniq); the uniq copy lives for the call only. */
static int meter_row(sqlite3_stmt *st, int (*fn)(void *ud, const hr_meter_rec *r), void *ud,
                     hr_err *err) {
    uint64_t *u = NULL;
    uint32_t nu = 0;
    if (cuniq(st, 5, &u, &nu)) return hr_err_set(err, HR_ENOMEM, "out of memory");
    hr_meter_rec r = {
        .account = ctext(st, 0),
        .meter = ctext(st, 1),
        .period_start = sqlite3_column_int64(st, 2),
        .value = sqlite3_column_double(st, 3),
        .latest_ms = sqlite3_column_int64(st, 4),
        .uniq = u,
        .nuniq = nu,
    };
    int ret = fn(ud, &r);
    free(u);
    return ret;
}

static int exec_sql(sqlite3 *db, const char *sql, hr_err *err, const char *what) {
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : fail_rc(db, rc, err, what);
}

/* Sets a pragma that answers with a value, returning that value's first
 * character in *first (journal_mode answers with the mode it got). */
static int pragma(sqlite3 *db, const char *sql, char *first, hr_err *err) {
    sqlite3_stmt *st = NULL;
    int ret = 0, rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        ret = fail_rc(db, rc, err, sql);
        goto out;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (first) {
            const char *v = ctext(st, 0);
            *first = v ? v[0] : '\0';
        }
    if (rc != SQLITE_DONE) ret = fail_rc(db, rc, err, sql);
out:
    sqlite3_finalize(st);
    return ret;
}

/* ---- migrations --------------------------------------------------------- */

static int current_version(sqlite3 *db, int *v, hr_err *err) {
    sqlite3_stmt *st = NULL;
    int ret = 0,
        rc = sqlite3_prepare_v2(db, "SELECT coalesce(max(version), 0) FROM schema_migrations",
                                -1, &st, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        ret = fail_rc(db, rc, err, "reading schema version");
        goto out;
    }
    *v = sqlite3_column_int(st, 0);
out:
    sqlite3_finalize(st);
    return ret;
}

static int record_version(sqlite3 *db, int version, hr_err *err) {
    sqlite3_stmt *st = NULL;
    int ret = 0,
        rc = sqlite3_prepare_v2(db,
                                "INSERT INTO schema_migrations (version, applied_at)"
                                " VALUES (?1, CAST(strftime('%s','now') AS INTEGER))",
                                -1, &st, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int(st, 1, version);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) ret = fail_rc(db, rc, err, "recording migration");
    sqlite3_finalize(st);
    return ret;
}

/* Each migration runs in its own IMMEDIATE transaction that re-reads the
 * version, so two processes opening a fresh file at once do not both apply
 * it; a failed migration leaves the database at the previous version. */
static int migrate(sqlite3 *db, int *version, hr_err *err) {
    int ret = exec_sql(db,
                       "CREATE TABLE IF NOT EXISTS schema_migrations ("
                       " version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
                       err, "creating schema_migrations");
    if (ret) return ret;
    int v = 0;
    if ((ret = current_version(db, &v, err))) return ret;
    if (v > LATEST_VERSION)
        goto too_new;
    for (int i = 0; i < NMIGRATIONS; i++) {
        const migration *m = &migrations[i];
        if (m->version <= v) continue;
        if ((ret = exec_sql(db, "BEGIN IMMEDIATE", err, "starting migration"))) return ret;
        if ((ret = current_version(db, &v, err))) goto undo;
        if (v > LATEST_VERSION) {
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            goto too_new;
        }
        if (v < m->version) {
            char what[64];
            snprintf(what, sizeof what, "migration %d", m->version);
            if ((ret = exec_sql(db, m->sql, err, what))) goto undo;
            if ((ret = record_version(db, m->version, err))) goto undo;
            v = m->version;
        }
        if ((ret = exec_sql(db, "COMMIT", err, "committing migration"))) goto undo;
    }
    *version = v;
    return 0;
undo:
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return ret;
too_new:
    return hr_err_set(err, HR_ESTORE,
                      "database schema version %d is newer than this headroom supports "
                      "(%d): upgrade headroom, or restore a backup made by this version",
                      v, LATEST_VERSION);
}

/* ---- ops ---------------------------------------------------------------- */

static void drop_last(sq_store *q);

static void ckpt_stop(sq_store *q);

static void sq_close(hr_store *s) {
    sq_store *q = (sq_store *)s;
    ckpt_stop(q);
    drop_last(q);
    free(q->pack);
    ZSTD_freeCCtx(q->zc);
    ZSTD_freeDCtx(q->zd);
    free(q->zout);
    free(q->unz);
    for (int i = 0; i < NSTMTS; i++) sqlite3_finalize(q->st[i]);
    /* Closing the last connection checkpoints and removes the WAL file;
     * an open transaction is rolled back. */
    sqlite3_close(q->db);
    free(q);
}

static int in_tx(sq_store *q) {
    return !sqlite3_get_autocommit(q->db);
}

static int sq_begin(hr_store *s, hr_err *err) {
    sq_store *q = (sq_store *)s;
    if (in_tx(q)) return hr_err_set(err, HR_ESTORE, "sqlite begin: a transaction is already open");
    return exec_stmt(q, ST_BEGIN, 0, err, "begin");
}

static int sq_commit(hr_store *s, hr_err *err) {
    sq_store *q = (sq_store *)s;
    if (!in_tx(q)) return hr_err_set(err, HR_ESTORE, "sqlite commit: no transaction is open");
    return exec_stmt(q, ST_COMMIT, 0, err, "commit");
}

static void drop_last(sq_store *q) {
    size_t pos = 0;
    void *v;
    while (q->last && hr_map_next(q->last, &pos, NULL, &v)) free(v);
    hr_map_free(q->last);
    q->last = NULL;
}

static void sq_rollback(hr_store *s) {
    sq_store *q = (sq_store *)s;
    /* SQLite may already have rolled back on its own (e.g. after SQLITE_FULL). */
    if (in_tx(q)) exec_stmt(q, ST_ROLLBACK, 0, NULL, "rollback");
    drop_last(q);
}

static int sq_put_account(hr_store *s, const hr_account_rec *r, hr_err *err) {
    sq_store *q = (sq_store *)s;
    sqlite3_stmt *st = q->st[ST_PUT_ACCOUNT];
    int bad = btext(st, 1, r->id) | btext(st, 2, r->name) | btext(st, 3, r->plan) |
              btext(st, 4, r->owner) | bint(st, 5, r->plan_version) |
              btext(st, 6, r->interval) | bint(st, 7, r->created_at) |
              bint(st, 8, r->updated_at) | bint(st, 9, r->renews_at) |
              btext(st, 10, r->traits_json) | btext(st, 11, r->addons_json) |
              btext(st, 12, r->trial_plan) | bint(st, 13, r->trial_started_at) |
              bint(st, 14, r->trial_ends_at) | bint(st, 15, r->plan_trial_used ? 1 : 0);
    return exec_stmt(q, ST_PUT_ACCOUNT, bad, err, "put_account");
}

static int sq_delete_account(hr_store *s, const char *id, hr_err *err) {
    static const int dels[] = {ST_DEL_ACCOUNT_USERS, ST_DEL_ACCOUNT_USAGE,
                               ST_DEL_ACCOUNT_OVERRIDES, ST_DEL_ACCOUNT_FTRIALS,
                               ST_DEL_ACCOUNT_METERS, ST_DEL_ACCOUNT_HIST,
                               ST_DEL_ACCOUNT_IDEM,
                               ST_DEL_ACCOUNT};
    sq_store *q = (sq_store *)s;
    /* Outside the caller's transaction the deletes need one of their
     * own; inside it, a failure is undone by the caller's rollback. */
    int own = !in_tx(q), ret = 0;
    if (own && (ret = exec_stmt(q, ST_BEGIN, 0, err, "delete_account"))) return ret;
    for (size_t i = 0; i < sizeof dels / sizeof dels[0]; i++) {
        int bad = btext(q->st[dels[i]], 1, id);
        if ((ret = exec_stmt(q, dels[i], bad, err, "delete_account"))) goto out;
    }
    if (own) ret = exec_stmt(q, ST_COMMIT, 0, err, "delete_account");
out:
    if (ret && own) sq_rollback(s);
    return ret;
}

static int sq_put_user(hr_store *s, const hr_user_rec *r, hr_err *err) {
    sq_store *q = (sq_store *)s;
    sqlite3_stmt *st = q->st[ST_PUT_USER];
    int bad = btext(st, 1, r->account) | btext(st, 2, r->id) | btext(st, 3, r->role) |
              btext(st, 4, r->seat_type) | btext(st, 5, r->traits_json) |
              bint(st, 6, r->created_at) | bint(st, 7, r->updated_at);
    return exec_stmt(q, ST_PUT_USER, bad, err, "put_user");
}

static int sq_delete_user(hr_store *s, const char *account, const char *id, hr_err *err) {
    sq_store *q = (sq_store *)s;
    sqlite3_stmt *st = q->st[ST_DEL_USER];
    int bad = btext(st, 1, account) | btext(st, 2, id);
    return exec_stmt(q, ST_DEL_USER, bad, err, "delete_user");
}

static int sq_put_usage(hr_store *s, const hr_usage_rec *r, hr_err *err) {
    sq_store *q = (sq_store *)s;
    sqlite3_stmt *st = q->st[ST_PUT_USAGE];
    int bad = btext(st, 1, r->account) | btext(st, 2, r->feature) | bint(st, 3, r->value) |
              bint(st, 4, r->period_start) | bint(st, 5, r->updated_at);
    return exec_stmt(q, ST_PUT_USAGE, bad, err, "put_usage");
}

static int sq_put_override(hr_store *s, const hr_override_rec *r, hr_err *err) {
    sq_store *q = (sq_store *)s;
    sqlite3_stmt *st = q->st[ST_PUT_OVERRIDE];
    int bad = btext(st, 1, r->account) | btext(st, 2, r->feature) | bint(st, 3, r->value) |
              bint(st, 4, r->expires_at) | bint(st, 5, r->created_at);
    return exec_stmt(q, ST_PUT_OVERRIDE, bad, err, "put_override");
}

static int sq_delete_override(hr_store *s, const char *account, const char *feature,
                              hr_err *err) {
    sq_store *q = (sq_store *)s;
    sqlite3_stmt *st = q->st[ST_DEL_OVERRIDE];
    int bad = btext(st, 1, account) | btext(st, 2, feature);
    return exec_stmt(q, ST_DEL_OVERRIDE, bad, err, "delete_override");
}

static int sq_put_ftrial(hr_store *s, const hr_ftrial_rec *r, hr_err *err) {
    sq_store *q = (sq_store *)s;
    sqlite3_stmt *st = q->st[ST_PUT_FTRIAL];
    int bad = btext(st, 1, r->account) | btext(st, 2, r->feature) |
              bint(st, 3, r->started_at) | bint(st, 4, r->ends_at);
    return exec_stmt(q, ST_PUT_FTRIAL, bad, err, "put_ftrial");
}

static int sq_idem_get(hr_store *s, const char *key, uint64_t *request_hash, int *status,
                       char **body, hr_err *err) {
    sq_store *q = (sq_store *)s;
    sqlite3_stmt *st = q->st[ST_IDEM_GET];
    int ret = 0;
    if (btext(st, 1, key)) {
        ret = fail_rc(q->db, sqlite3_errcode(q->db), err, "idem_get");
        goto out;
    }
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        ret = hr_err_set(err, HR_ENOTFOUND, "idempotency key not found");
        goto out;
    }
    if (rc != SQLITE_ROW) {
        ret = fail_rc(q->db, rc, err, "idem_get");
        goto out;
    }
    if (body) {
        /* A NULL body comes back as "" so callers always get a string. */
        if (!(*body = ccopy(st, 2))) {
            ret = hr_err_set(err, HR_ENOMEM, "out of memory");
            goto out;
        }
    }
    if (request_hash) *request_hash = (uint64_t)sqlite3_column_int64(st, 0);
    if (status) *status = sqlite3_column_int(st, 1);
out:
    done(st);
    return ret;
}

static int sq_idem_prune(hr_store *s, int64_t older_than, hr_err *err) {
    sq_store *q = (sq_store *)s;
    int bad = bint(q->st[ST_IDEM_PRUNE], 1, older_than);
    return exec_stmt(q, ST_IDEM_PRUNE, bad, err, "idem_prune");
}

static int sq_idem_put(hr_store *s, const hr_idem_rec *r, hr_err *err) {
    sq_store *q = (sq_store *)s;
    sqlite3_stmt *st = q->st[ST_IDEM_PUT];
    /* uint64 -> int64 is implementation-defined above INT64_MAX in C but
     * two's complement on every compiler we build with; get casts back. */
    int bad = btext(st, 1, r->key) | bint(st, 2, (int64_t)r->request_hash) |
              bint(st, 3, r->status) | btext(st, 4, r->body) | bint(st, 5, r->created_at);
    return exec_stmt(q, ST_IDEM_PUT, bad, err, "idem_put");
}

/* ---- events and meters -------------------------------------------------- */

static sq_last *last_put(sq_store *q, const char *account, int64_t seq) {
    size_t n = strlen(account);
    sq_last *l = calloc(1, sizeof *l + n + 1);
    if (!l) return NULL;
    memcpy(l->account, account, n + 1);
    l->seq = seq;
    int err = 0;
    hr_map_put(q->last, l->account, l, &err);
    if (err) {
        free(l);
        return NULL;
    }
    return l;
}

static int load_last(sq_store *q, hr_err *err) {
    if (q->last) return 0;
    sqlite3_stmt *st = NULL;
    int ret = 0, rc = sqlite3_prepare_v2(q->db, "SELECT account, last_seq FROM account_log", -1,
                                         &st, NULL);
    if (rc != SQLITE_OK) return fail_rc(q->db, rc, err, "put_events");
    if (!(q->last = hr_map_new(1024))) ret = hr_err_set(err, HR_ENOMEM, "out of memory");
    while (!ret && (rc = sqlite3_step(st)) == SQLITE_ROW)
        if (!last_put(q, ctext(st, 0), sqlite3_column_int64(st, 1)))
            ret = hr_err_set(err, HR_ENOMEM, "out of memory");
    if (!ret && rc != SQLITE_DONE) ret = fail_rc(q->db, rc, err, "put_events");
    sqlite3_finalize(st);
    if (ret) drop_last(q);
    return ret;
}

/* One integer from a statement without parameters (0 when it has no row). */
static int one_int(sq_store *q, int idx, int64_t *out, hr_err *err, const char *what) {
    sqlite3_stmt *st = q->st[idx];
    int rc = sqlite3_step(st), ret = 0;
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) ret = fail_rc(q->db, rc, err, what);
    done(st);
    return ret;
}

/* ---- packed events ------------------------------------------------------
 * An event after a row's first, in `more`: its ts_ms (zigzag varint), then
 * message_id, user_id, anonymous_id, type, event and body, each as a
 * varint of its length + 1 (0: NULL) and its bytes with their NUL, so a
 * reader hands out pointers into the blob as C strings. */

/* Consecutive events that share a row: one account's, of one commit, of
 * one type. headroom's own events keep a row each (rare, and found by
 * SQL on the type and event columns). */
#define PACK_MAX 1024
#define PACK_BYTES (256 * 1024)

static int internal_event(const hr_event_rec *e) {
    return e->event && !strncmp(e->event, "headroom.", 9);
}

/* A row may start at a: it has an account and a type, and is not headroom's. */
static int packs(const hr_event_rec *a) {
    return a->account && a->type && !internal_event(a);
}

/* b may join the row that a (packs) starts. */
static int packs_with(const hr_event_rec *a, const hr_event_rec *b) {
    return a->received_ms == b->received_ms && b->account && b->type && !internal_event(b) &&
           (a->account == b->account || !strcmp(a->account, b->account)) &&
           (a->type == b->type || !strcmp(a->type, b->type));
}

static size_t put_uvarint(unsigned char *p, uint64_t v) {
    size_t n = 0;
    while (v >= 0x80) p[n++] = (unsigned char)(v | 0x80), v >>= 7;
    p[n++] = (unsigned char)v;
    return n;
}

static int get_uvarint(const unsigned char **p, const unsigned char *end, uint64_t *v) {
    uint64_t x = 0;
    for (int sh = 0; *p < end && sh < 64; sh += 7) {
        unsigned char c = *(*p)++;
        x |= (uint64_t)(c & 0x7f) << sh;
        if (!(c & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

/* Room for `more` bytes in q->pack past `used`; -1 on OOM. */
static int pack_room(sq_store *q, size_t used, size_t more) {
    if (used + more <= q->pack_cap) return 0;
    size_t cap = q->pack_cap ? q->pack_cap : 4096;
    while (cap < used + more) cap *= 2;
    unsigned char *p = realloc(q->pack, cap);
    if (!p) return -1;
    q->pack = p, q->pack_cap = cap;
    return 0;
}

/* Appends e to q->pack at *used; -1 on OOM. */
static int pack_event(sq_store *q, size_t *used, const hr_event_rec *e) {
    const char *str[6] = {e->message_id, e->user_id, e->anonymous_id, e->type, e->event, e->body};
    size_t len[6], need = 10;
    for (int i = 0; i < 6; i++) {
        len[i] = !str[i] ? 0 : i == 5 && e->body_len ? e->body_len : strlen(str[i]);
        need += 10 + len[i] + 1;
    }
    if (pack_room(q, *used, need)) return -1;
    unsigned char *p = q->pack + *used;
    uint64_t ts = (uint64_t)e->ts_ms;
    p += put_uvarint(p, (ts << 1) ^ (uint64_t)(e->ts_ms >> 63)); /* zigzag */
    for (int i = 0; i < 6; i++) {
        p += put_uvarint(p, str[i] ? len[i] + 1 : 0);
        if (str[i]) memcpy(p, str[i], len[i]), p[len[i]] = 0, p += len[i] + 1;
    }
    *used = (size_t)(p - q->pack);
    return 0;
}

/* The next packed event into r (account and received_ms are the row's,
 * already in r); -1 if the blob is damaged. */
static int unpack_event(const unsigned char **p, const unsigned char *end, hr_event_rec *r) {
    uint64_t z, n;
    if (get_uvarint(p, end, &z)) return -1;
    r->ts_ms = (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
    const char **str[6] = {&r->message_id, &r->user_id, &r->anonymous_id,
                           &r->type,       &r->event,   &r->body};
    for (int i = 0; i < 6; i++) {
        if (get_uvarint(p, end, &n) || n > (uint64_t)(end - *p)) return -1;
        *str[i] = NULL;
        if (!n) continue;
        if ((*p)[n - 1]) return -1; /* its NUL */
        *str[i] = (const char *)*p;
        *p += n;
    }
    if (!r->type || !r->body) return -1;
    r->body_len = 0;
    return 0;
}

static int damaged(hr_err *err, const char *what, int64_t seq) {
    return hr_err_set(err, HR_ESTORE, "sqlite %s: the events packed in row %lld are damaged", what,
                      (long long)seq);
}

/* Packs from this size on are stored as a zstd frame (level 1: about
 * 1 GB/s a core here, and a run of JSON shrinks about tenfold); a smaller
 * one would gain little over the frame's header. */
#define ZPACK_MIN 256
/* A frame that claims more is damaged: it is not allocated. */
#define UNZ_MAX ((unsigned long long)64 << 20)

/* The first used bytes of q->pack compressed into q->zout: their length,
 * or 0 to store them as they are (short, incompressible, or no memory for
 * the compressor: plain is always readable). */
static size_t zpack(sq_store *q, size_t used) {
    if (used < ZPACK_MIN) return 0;
    size_t bound = ZSTD_compressBound(used);
    if (bound > q->zout_cap) {
        unsigned char *p = realloc(q->zout, bound);
        if (!p) return 0;
        q->zout = p, q->zout_cap = bound;
    }
    if (!q->zc) {
        if (!(q->zc = ZSTD_createCCtx())) return 0;
        /* the checksum makes a damaged blob an error, not wrong events */
        if (ZSTD_isError(ZSTD_CCtx_setParameter(q->zc, ZSTD_c_compressionLevel, 1)) ||
            ZSTD_isError(ZSTD_CCtx_setParameter(q->zc, ZSTD_c_checksumFlag, 1))) {
            ZSTD_freeCCtx(q->zc);
            q->zc = NULL;
            return 0;
        }
    }
    size_t n = ZSTD_compress2(q->zc, q->zout, q->zout_cap, q->pack, used);
    return ZSTD_isError(n) || n >= used ? 0 : n;
}

/* A row's packed events as [*p, *end) (empty if it has none): `more` at
 * column col, decompressed into q->unz when more_zstd (col + 1) says so;
 * the bytes live until the next call or the statement moves on. */
static int row_more(sq_store *q, sqlite3_stmt *st, int col, const unsigned char **p,
                    const unsigned char **end, hr_err *err, const char *what, int64_t seq) {
    static const unsigned char none[1];
    const unsigned char *b = sqlite3_column_blob(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    *p = *end = none;
    if (!b) return 0;
    if (!sqlite3_column_int(st, col + 1)) {
        *p = b, *end = b + n;
        return 0;
    }
    unsigned long long size = ZSTD_getFrameContentSize(b, n);
    if (size == ZSTD_CONTENTSIZE_UNKNOWN || size == ZSTD_CONTENTSIZE_ERROR || !size ||
        size > UNZ_MAX)
        return damaged(err, what, seq);
    if (size > q->unz_cap) {
        unsigned char *u = realloc(q->unz, (size_t)size);
        if (!u) return hr_err_set(err, HR_ENOMEM, "out of memory");
        q->unz = u, q->unz_cap = (size_t)size;
    }
    if (!q->zd && !(q->zd = ZSTD_createDCtx())) return hr_err_set(err, HR_ENOMEM, "out of memory");
    size_t got = ZSTD_decompressDCtx(q->zd, q->unz, (size_t)size, b, n);
    if (ZSTD_isError(got) || got != size) return damaged(err, what, seq);
    *p = q->unz, *end = q->unz + got;
    return 0;
}

/* Each row links to its account's previous one (prev_seq), and
 * account_log moves to the newest, in the same transaction. Runs of one
 * account's events share a row (packs_with). */
static int sq_put_events(hr_store *s, const hr_event_rec *r, int n, hr_err *err) {
    sq_store *q = (sq_store *)s;
    if (n <= 0) return 0;
    /* A batch is one transaction (group commit): one fsync, not n. */
    int own = !in_tx(q), ret = 0;
    if (own && (ret = exec_stmt(q, ST_BEGIN, 0, err, "put_events"))) return ret;
    sq_last *touched = NULL;
    int64_t seq = 0;
    if ((ret = load_last(q, err)) || (ret = one_int(q, ST_LAST_SEQ, &seq, err, "put_events")))
        goto out;
    for (int i = 0, j; i < n; i = j) {
        const hr_event_rec *e = &r[i];
        size_t used = 0;
        int pk = packs(e);
        for (j = i + 1; pk && j < n && j - i < PACK_MAX && used < PACK_BYTES && packs_with(e, &r[j]);
             j++)
            if (pack_event(q, &used, &r[j])) {
                ret = hr_err_set(err, HR_ENOMEM, "out of memory");
                goto out;
            }
        sq_last *l = NULL;
        if (e->account && !(l = hr_map_get(q->last, e->account)) && !(l = last_put(q, e->account, 0))) {
            ret = hr_err_set(err, HR_ENOMEM, "out of memory");
            goto out;
        }
        seq += j - i;
        sqlite3_stmt *st = q->st[ST_PUT_EVENT];
        int bad = btext(st, 1, e->message_id) | btext(st, 2, e->account) |
                  btext(st, 3, e->user_id) | btext(st, 4, e->anonymous_id) |
                  btext(st, 5, e->type) | btext(st, 6, e->event) | bint(st, 7, e->ts_ms) |
                  bint(st, 8, e->received_ms) |
                  (sqlite3_bind_text(st, 9, e->body, e->body_len ? (int)e->body_len : -1,
                                     SQLITE_STATIC) != SQLITE_OK) |
                  (l && l->seq ? bint(st, 10, l->seq) : 0) | bint(st, 11, seq) |
                  bint(st, 12, j - i);
        size_t z = zpack(q, used);
        if (used)
            bad |= sqlite3_bind_blob(st, 13, z ? q->zout : q->pack, (int)(z ? z : used),
                                     SQLITE_STATIC) != SQLITE_OK;
        bad |= bint(st, 14, z != 0);
        if ((ret = exec_stmt(q, ST_PUT_EVENT, bad, err, "put_events"))) goto out;
        if (l) {
            l->seq = seq;
            if (!l->touched) l->touched = 1, l->next_touched = touched, touched = l;
        }
    }
    for (sq_last *l = touched; l && !ret; l = l->next_touched) {
        sqlite3_stmt *st = q->st[ST_PUT_ACCOUNT_LOG];
        ret = exec_stmt(q, ST_PUT_ACCOUNT_LOG, btext(st, 1, l->account) | bint(st, 2, l->seq), err,
                        "put_events");
    }
    if (own && !ret) ret = exec_stmt(q, ST_COMMIT, 0, err, "put_events");
out:
    for (sq_last *l = touched; l; l = l->next_touched) l->touched = 0;
    if (ret) {
        if (own)
            sq_rollback(s);
        else
            drop_last(q); /* the caller rolls back */
    }
    return ret;
}

/* An event row selected as message_id, account, user_id, anonymous_id,
 * type, event, ts_ms, received_ms, body (then whatever the caller adds);
 * the strings live until the statement moves on. */
static hr_event_rec event_of(sqlite3_stmt *st) {
    return (hr_event_rec){
        .message_id = ctext(st, 0),
        .account = ctext(st, 1),
        .user_id = ctext(st, 2),
        .anonymous_id = ctext(st, 3),
        .type = ctext(st, 4),
        .event = ctext(st, 5),
        .ts_ms = sqlite3_column_int64(st, 6),
        .received_ms = sqlite3_column_int64(st, 7),
        .body = ctext(st, 8),
    };
}

/* Hands the row's events to fn in order, the i-th as seq first_seq + i,
 * skipping those at or before after_seq; st's columns: event_of's, then
 * n at ncol, more at ncol + 1 and more_zstd at ncol + 2. */
static int row_events(sq_store *q, sqlite3_stmt *st, int ncol, int64_t seq, int64_t after_seq,
                      int (*fn)(void *ud, const hr_event_rec *r), void *ud, hr_err *err,
                      const char *what) {
    int64_t n = sqlite3_column_int64(st, ncol), first = seq - (n > 0 ? n : 1) + 1;
    hr_event_rec r = event_of(st);
    r.seq = first;
    int ret = first > after_seq ? fn(ud, &r) : 0;
    if (ret || n <= 1 || seq <= after_seq) return ret;
    const unsigned char *p, *end;
    if ((ret = row_more(q, st, ncol + 1, &p, &end, err, what, seq))) return ret;
    for (int64_t i = 1; !ret && i < n; i++) {
        if (unpack_event(&p, end, &r)) return damaged(err, what, seq);
        r.seq = first + i;
        if (r.seq > after_seq) ret = fn(ud, &r);
    }
    return ret;
}

static int sq_last_seq(hr_store *s, int64_t *seq, hr_err *err) {
    return one_int((sq_store *)s, ST_LAST_SEQ, seq, err, "last_seq");
}

static int sq_put_folded_seq(hr_store *s, int64_t seq, hr_err *err) {
    sq_store *q = (sq_store *)s;
    return exec_stmt(q, ST_PUT_FOLDED, bint(q->st[ST_PUT_FOLDED], 1, seq), err, "put_folded_seq");
}

/* Events after after_seq in log order, for the start-up replay. Its own
 * statement, so fn may read meter values through the store meanwhile. */
static int sq_replay_events(hr_store *s, int64_t after_seq,
                            int (*fn)(void *ud, const hr_event_rec *r), void *ud, hr_err *err) {
    sq_store *q = (sq_store *)s;
    sqlite3_stmt *st = NULL;
    int ret = 0, rc = sqlite3_prepare_v2(
                     q->db,
                     "SELECT message_id, account, user_id, anonymous_id, type, event, ts_ms,"
                     " received_ms, body, seq, n, more, more_zstd FROM events WHERE seq > ?1"
                     " ORDER BY seq",
                     -1, &st, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 1, (sqlite3_int64)after_seq);
    if (rc != SQLITE_OK) {
        ret = fail_rc(q->db, rc, err, "replay_events");
        goto out;
    }
    /* a row's first events may be folded already (a chunk of the replay
     * before a flush can end inside a row) */
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if ((ret = row_events(q, st, 10, sqlite3_column_int64(st, 9), after_seq, fn, ud, err,
                              "replay_events")))
            goto out; /* the callback's own code */
    if (rc != SQLITE_DONE) ret = fail_rc(q->db, rc, err, "replay_events");
out:
    sqlite3_finalize(st);
    return ret;
}

/* The first seq received at or after since_ms: a binary search over seq
 * (received_ms grows with seq, the log being appended in commit order), so
 * start-up reads only the dedup window, not the whole log. */
static int first_seq_since(sq_store *q, int64_t since_ms, int64_t *out, hr_err *err) {
    sqlite3_stmt *st = q->st[ST_FIRST_SEQ_AT];
    int64_t lo = 0, hi = INT64_MAX, found = -1;
    for (int guard = 0; guard < 80 && lo <= hi; guard++) {
        int64_t mid = lo + (hi - lo) / 2;
        sqlite3_reset(st);
        if (bint(st, 1, mid)) return fail_rc(q->db, sqlite3_errcode(q->db), err, "load seen");
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) { /* nothing at or after mid */
            hi = mid - 1;
            continue;
        }
        if (rc != SQLITE_ROW) {
            sqlite3_reset(st);
            return fail_rc(q->db, rc, err, "load seen");
        }
        int64_t seq = sqlite3_column_int64(st, 0), at = sqlite3_column_int64(st, 1);
        if (at >= since_ms) {
            found = seq;
            hi = mid - 1;
        } else {
            lo = seq + 1;
        }
    }
    sqlite3_reset(st);
    *out = found < 0 ? INT64_MAX : found;
    return 0;
}

/* Only the oldest `limit` rows are looked at: received_ms grows with seq,
 * so what is old sits at the start of the log, and a log with nothing old
 * costs `limit` rows, not a scan of all of it (which, once a minute under
 * the writer mutex, held ingestion for 10 s at 32M events). A row goes
 * whole: its events share received_ms, and its seq is its last one's. The
 * newest row stays, however old: seqs go on from it (an empty log would
 * start again at 1, below folded_seq, and a restart would skip them). */
static int sq_prune_events(hr_store *s, int64_t older_than_ms, int limit, int *rows,
                           int64_t *events, hr_err *err) {
    sq_store *q = (sq_store *)s;
    sqlite3_stmt *st = q->st[ST_EVENTS_PRUNE];
    int ret = 0, rc, nrows = 0;
    int64_t nev = 0;
    if (bint(st, 1, older_than_ms) | bint(st, 2, limit > 0 ? limit : 1000)) {
        ret = fail_rc(q->db, sqlite3_errcode(q->db), err, "prune_events");
        goto out;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) nrows++, nev += sqlite3_column_int64(st, 0);
    if (rc != SQLITE_DONE) ret = fail_rc(q->db, rc, err, "prune_events");
out:
    done(st);
    if (rows) *rows = ret ? 0 : nrows;
    if (events) *events = ret ? 0 : nev;
    return ret;
}

static int sq_put_meter(hr_store *s, const hr_meter_rec *r, hr_err *err) {
    sq_store *q = (sq_store *)s;
    sqlite3_stmt *st = q->st[ST_PUT_METER];
    int bad = btext(st, 1, r->account) | btext(st, 2, r->meter) |
              bint(st, 3, r->period_start) |
              (sqlite3_bind_double(st, 4, r->value) != SQLITE_OK) |
              bint(st, 5, r->latest_ms) | buniq(st, 6, r->uniq, r->nuniq);
    return exec_stmt(q, ST_PUT_METER, bad, err, "put_meter");
}

/* The read statements below are shared: a callback that called the same op
 * again would reset the statement under the outer loop, so it is refused. */
static int sq_meter_series(hr_store *s, const char *account, const char *meter, int64_t from,
                           int64_t to, int (*fn)(void *ud, const hr_meter_rec *r), void *ud,
                           hr_err *err) {
    sq_store *q = (sq_store *)s;
    sqlite3_stmt *st = q->st[ST_METER_SERIES];
    if (sqlite3_stmt_busy(st))
        return hr_err_set(err, HR_ESTORE, "sqlite meter_series: called from its own callback");
    int ret = 0, rc;
    if (btext(st, 1, account) | btext(st, 2, meter) | bint(st, 3, from) | bint(st, 4, to)) {
        ret = fail_rc(q->db, sqlite3_errcode(q->db), err, "meter_series");
        goto out;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if ((ret = meter_row(st, fn, ud, err))) goto out; /* the callback's own code */
    if (rc != SQLITE_DONE) ret = fail_rc(q->db, rc, err, "meter_series");
out:
    done(st);
    return ret;
}

#define RECENT_EVENTS_MAX 1000

/* A row's events gathered into an array sized for them (n). */
typedef struct collect {
    hr_event_rec *evs;
    size_t n;
} collect;

static int collect_one(void *ud, const hr_event_rec *r) {
    collect *c = ud;
    c->evs[c->n++] = *r;
    return 0;
}

static int sq_recent_events(hr_store *s, const char *account, int limit,
                            int (*fn)(void *ud, const hr_event_rec *r), void *ud, hr_err *err) {
    sq_store *q = (sq_store *)s;
    sqlite3_stmt *st = q->st[ST_EVENT_AT];
    if (sqlite3_stmt_busy(st))
        return hr_err_set(err, HR_ESTORE, "sqlite recent_events: called from its own callback");
    if (limit <= 0) return 0;
    if (limit > RECENT_EVENTS_MAX) limit = RECENT_EVENTS_MAX;
    /* the newest: from memory when this connection writes the log */
    int64_t seq = 0;
    const sq_last *l = q->last ? hr_map_get(q->last, account) : NULL;
    int ret = 0, rc;
    if (l) {
        seq = l->seq;
    } else {
        sqlite3_stmt *g = q->st[ST_GET_ACCOUNT_LOG];
        if (btext(g, 1, account)) return fail_rc(q->db, sqlite3_errcode(q->db), err, "recent_events");
        rc = sqlite3_step(g);
        if (rc == SQLITE_ROW) seq = sqlite3_column_int64(g, 0);
        done(g);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) return fail_rc(q->db, rc, err, "recent_events");
    }
    /* back through prev_seq, each row's events newest first; a pruned
     * row ends the walk */
    hr_event_rec *evs = NULL;
    size_t cap = 0;
    for (int n = 0; seq > 0 && n < limit && !ret;) {
        if (bint(st, 1, seq)) {
            ret = fail_rc(q->db, sqlite3_errcode(q->db), err, "recent_events");
            break;
        }
        if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
            done(st);
            if (rc != SQLITE_DONE) ret = fail_rc(q->db, rc, err, "recent_events");
            break;
        }
        const char *acct = ctext(st, 1);
        if (!acct || strcmp(acct, account)) { /* not the chain's: stop */
            done(st);
            break;
        }
        int64_t prev = sqlite3_column_type(st, 9) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, 9);
        int64_t k = sqlite3_column_int64(st, 10);
        if (k < 1) k = 1;
        if ((size_t)k > cap) {
            hr_event_rec *p = realloc(evs, (size_t)k * sizeof *p);
            if (!p) {
                done(st);
                ret = hr_err_set(err, HR_ENOMEM, "out of memory");
                break;
            }
            evs = p, cap = (size_t)k;
        }
        collect c = {evs, 0};
        if ((ret = row_events(q, st, 10, seq, 0, collect_one, &c, err, "recent_events")) == 0)
            for (size_t i = c.n; i-- > 0 && n < limit && !ret; n++)
                ret = fn(ud, &evs[i]); /* the callback's own code */
        done(st);
        seq = prev;
    }
    free(evs);
    return ret;
}

/* ---- event history ------------------------------------------------------ */

/* A NULL user is the account itself, stored as '' (see migration 3). */
static const char *user_or_empty(const char *u) {
    return u ? u : "";
}

/* Binds record i of a put_hists batch to the statement. */
typedef int (*bind_fn)(sqlite3_stmt *st, const void *recs, int i);

static int bind_hist(sqlite3_stmt *st, const void *recs, int i) {
    const hr_hist_rec *r = (const hr_hist_rec *)recs + i;
    return btext(st, 1, r->account) | btext(st, 2, user_or_empty(r->user)) |
           btext(st, 3, r->event) | bint(st, 4, r->first_ms) | bint(st, 5, r->last_ms) |
           btext(st, 6, r->days ? r->days : "");
}

/* Runs statement idx once per record, all n in one transaction: the
 * caller's if one is open (a failure is then undone by its rollback), else
 * one of our own, so a flush of the history is one fsync and all or none. */
static int put_batch(sq_store *q, int idx, bind_fn bind, const void *recs, int n, hr_err *err,
                     const char *what) {
    if (n <= 0) return 0;
    int own = !in_tx(q), ret = 0;
    if (own && (ret = exec_stmt(q, ST_BEGIN, 0, err, what))) return ret;
    for (int i = 0; i < n; i++) {
        int bad = bind(q->st[idx], recs, i);
        if ((ret = exec_stmt(q, idx, bad, err, what))) goto out;
    }
    if (own) ret = exec_stmt(q, ST_COMMIT, 0, err, what);
out:
    if (ret && own) sq_rollback(&q->base);
    return ret;
}

static int sq_put_hists(hr_store *s, const hr_hist_rec *r, int n, hr_err *err) {
    return put_batch((sq_store *)s, ST_PUT_HIST, bind_hist, r, n, err, "put_hists");
}

/* ---- campaigns ---------------------------------------------------------- */

static int bind_prompt(sqlite3_stmt *st, const void *recs, int i) {
    const hr_prompt_rec *r = (const hr_prompt_rec *)recs + i;
    return btext(st, 1, r->campaign) | bint(st, 2, r->kind) | btext(st, 3, r->key) |
           btext(st, 4, r->variant) | btext(st, 5, r->account) | bint(st, 6, r->first_ms) |
           bint(st, 7, r->dismissed_ms) | bint(st, 8, r->answered_ms) |
           bint(st, 9, r->converted_ms) | btext(st, 10, r->shows ? r->shows : "");
}

static int bind_prompt_event(sqlite3_stmt *st, const void *recs, int i) {
    const hr_prompt_event_rec *r = (const hr_prompt_event_rec *)recs + i;
    return btext(st, 1, r->campaign) | btext(st, 2, r->variant) | btext(st, 3, r->type) |
           btext(st, 4, r->user) | btext(st, 5, r->account) | bint(st, 6, r->at_ms);
}

/* The campaign state is written by a background thread on the cores the
 * requests use, in bursts of tens of thousands of rows: ~200 us of work at
 * a time (hr_time_pace), checked between SQLite steps. */
static int pause_writer(void *ud) {
    hr_time_pace(ud, 200000);
    return 0;
}

static int sq_put_prompts(hr_store *s, const hr_prompt_rec *r, int n, hr_err *err) {
    sq_store *q = (sq_store *)s;
    int64_t since = hr_time_mono_ns();
    sqlite3_progress_handler(q->db, 500, pause_writer, &since);
    int rc = put_batch(q, ST_PUT_PROMPT, bind_prompt, r, n, err, "put_prompts");
    sqlite3_progress_handler(q->db, 0, NULL, NULL);
    return rc;
}

static int sq_put_prompt_events(hr_store *s, const hr_prompt_event_rec *r, int n, hr_err *err) {
    return put_batch((sq_store *)s, ST_PUT_PROMPT_EVENT, bind_prompt_event, r, n, err,
                     "put_prompt_events");
}

static int sq_load_prompts(hr_store *s, int (*state)(void *ud, const hr_prompt_rec *r),
                           int (*counts)(void *ud, const char *campaign, const char *variant,
                                         const char *type, int64_t n),
                           void *ud, hr_err *err) {
    sq_store *q = (sq_store *)s;
    sqlite3_stmt *st = q->st[ST_LOAD_PROMPTS];
    int ret = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        hr_prompt_rec r = {
            .campaign = ctext(st, 0), .kind = sqlite3_column_int(st, 1), .key = ctext(st, 2),
            .variant = ctext(st, 3), .account = ctext(st, 4),
            .first_ms = sqlite3_column_int64(st, 5), .dismissed_ms = sqlite3_column_int64(st, 6),
            .answered_ms = sqlite3_column_int64(st, 7), .converted_ms = sqlite3_column_int64(st, 8),
            .shows = ctext(st, 9),
        };
        if ((ret = state(ud, &r))) goto out;
    }
    if (rc != SQLITE_DONE) ret = fail_rc(q->db, rc, err, "load_prompts");
out:
    done(st);
    if (ret) return ret;
    st = q->st[ST_PROMPT_EVENT_COUNTS];
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((ret = counts(ud, ctext(st, 0), ctext(st, 1), ctext(st, 2), sqlite3_column_int64(st, 3))))
            break;
    }
    if (!ret && rc != SQLITE_DONE) ret = fail_rc(q->db, rc, err, "load_prompts");
    done(st);
    return ret;
}

/* ---- playbooks and webhooks --------------------------------------------- */

static int bind_signal(sqlite3_stmt *st, const void *recs, int i) {
    const hr_signal_rec *r = (const hr_signal_rec *)recs + i;
    return btext(st, 1, r->account) | btext(st, 2, r->playbook) | bint(st, 3, r->active) |
           bint(st, 4, r->last_fired_ms);
}

static int bind_fired(sqlite3_stmt *st, const void *recs, int i) {
    const hr_fired_rec *r = (const hr_fired_rec *)recs + i;
    int bad = btext(st, 1, r->account) | btext(st, 2, r->playbook) | bint(st, 3, r->at_ms) |
              btext(st, 5, r->evidence ? r->evidence : "{}");
    bad |= r->has_value ? sqlite3_bind_double(st, 4, r->value) != SQLITE_OK
                        : sqlite3_bind_null(st, 4) != SQLITE_OK;
    return bad;
}

static int bind_task(sqlite3_stmt *st, const void *recs, int i) {
    const hr_task_rec *r = (const hr_task_rec *)recs + i;
    return btext(st, 1, r->id) | btext(st, 2, r->account) | btext(st, 3, r->playbook) |
           btext(st, 4, r->owner) | btext(st, 5, r->status) | btext(st, 6, r->message) |
           btext(st, 7, r->evidence ? r->evidence : "{}") |
           (sqlite3_bind_double(st, 8, r->score) != SQLITE_OK) | bint(st, 9, r->created_ms) |
           bint(st, 10, r->updated_ms) | bint(st, 11, r->snooze_until_ms);
}

static int bind_outbox(sqlite3_stmt *st, const void *recs, int i) {
    const hr_outbox_rec *r = (const hr_outbox_rec *)recs + i;
    return btext(st, 1, r->id) | btext(st, 2, r->url) | btext(st, 3, r->secrets) |
           btext(st, 4, r->body) | btext(st, 5, r->playbook) | btext(st, 6, r->account) |
           bint(st, 7, r->status) | bint(st, 8, r->attempts) | bint(st, 9, r->created_ms) |
           bint(st, 10, r->next_at_ms) | bint(st, 11, r->last_code) |
           bint(st, 12, r->last_latency_ms) | btext(st, 13, r->last_error);
}

static int bind_delivery(sqlite3_stmt *st, const void *recs, int i) {
    const hr_delivery_rec *r = (const hr_delivery_rec *)recs + i;
    return btext(st, 1, r->msg_id) | bint(st, 2, r->attempt) | bint(st, 3, r->at_ms) |
           bint(st, 4, r->code) | bint(st, 5, r->latency_ms) | btext(st, 6, r->error);
}

static int sq_signal_put(hr_store *s, const hr_signal_rec *r, int n, hr_err *err) {
    return put_batch((sq_store *)s, ST_SIGNAL_PUT, bind_signal, r, n, err, "signal_put");
}
static int sq_fired_put(hr_store *s, const hr_fired_rec *r, int n, hr_err *err) {
    return put_batch((sq_store *)s, ST_FIRED_PUT, bind_fired, r, n, err, "fired_put");
}
static int sq_task_put(hr_store *s, const hr_task_rec *r, int n, hr_err *err) {
    return put_batch((sq_store *)s, ST_TASK_PUT, bind_task, r, n, err, "task_put");
}
static int sq_outbox_put(hr_store *s, const hr_outbox_rec *r, int n, hr_err *err) {
    return put_batch((sq_store *)s, ST_OUTBOX_PUT, bind_outbox, r, n, err, "outbox_put");
}
static int sq_delivery_put(hr_store *s, const hr_delivery_rec *r, int n, hr_err *err) {
    return put_batch((sq_store *)s, ST_DELIVERY_PUT, bind_delivery, r, n, err, "delivery_put");
}

/* Steps a bound read statement, handing each row to row(); the callback's
 * non-zero return stops it and is returned. */
typedef int (*read_row_fn)(sqlite3_stmt *st, void *fn, void *ud);

static int read_rows(sq_store *q, int idx, int bad, read_row_fn row, void *fn, void *ud, hr_err *err,
                     const char *what) {
    sqlite3_stmt *st = q->st[idx];
    int ret = 0, rc;
    if (bad) {
        ret = fail_rc(q->db, sqlite3_errcode(q->db), err, what);
        goto out;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if ((ret = row(st, fn, ud))) goto out;
    if (rc != SQLITE_DONE) ret = fail_rc(q->db, rc, err, what);
out:
    done(st);
    return ret;
}

static int row_signal(sqlite3_stmt *st, void *fn, void *ud) {
    hr_signal_rec r = {ctext(st, 0), ctext(st, 1), sqlite3_column_int(st, 2),
                       sqlite3_column_int64(st, 3)};
    return ((int (*)(void *, const hr_signal_rec *))fn)(ud, &r);
}

static int row_fired(sqlite3_stmt *st, void *fn, void *ud) {
    hr_fired_rec r = {ctext(st, 0), ctext(st, 1), sqlite3_column_int64(st, 2),
                      sqlite3_column_double(st, 3), sqlite3_column_type(st, 3) != SQLITE_NULL,
                      ctext(st, 4)};
    return ((int (*)(void *, const hr_fired_rec *))fn)(ud, &r);
}

static int row_task(sqlite3_stmt *st, void *fn, void *ud) {
    hr_task_rec r = {ctext(st, 0), ctext(st, 1), ctext(st, 2), ctext(st, 3), ctext(st, 4),
                     ctext(st, 5), ctext(st, 6), sqlite3_column_double(st, 7),
                     sqlite3_column_int64(st, 8), sqlite3_column_int64(st, 9),
                     sqlite3_column_int64(st, 10)};
    return ((int (*)(void *, const hr_task_rec *))fn)(ud, &r);
}

static int row_outbox(sqlite3_stmt *st, void *fn, void *ud) {
    hr_outbox_rec r = {ctext(st, 0), ctext(st, 1), ctext(st, 2), ctext(st, 3), ctext(st, 4),
                       ctext(st, 5), sqlite3_column_int(st, 6), sqlite3_column_int(st, 7),
                       sqlite3_column_int64(st, 8), sqlite3_column_int64(st, 9),
                       sqlite3_column_int(st, 10), sqlite3_column_int64(st, 11), ctext(st, 12)};
    return ((int (*)(void *, const hr_outbox_rec *))fn)(ud, &r);
}

static int row_delivery(sqlite3_stmt *st, void *fn, void *ud) {
    hr_delivery_rec r = {ctext(st, 0), sqlite3_column_int(st, 1), sqlite3_column_int64(st, 2),
                         sqlite3_column_int(st, 3), sqlite3_column_int64(st, 4), ctext(st, 5)};
    return ((int (*)(void *, const hr_delivery_rec *))fn)(ud, &r);
}

static int sq_signal_load(hr_store *s, int (*fn)(void *, const hr_signal_rec *), void *ud,
                          hr_err *err) {
    return read_rows((sq_store *)s, ST_SIGNAL_LOAD, 0, row_signal, (void *)fn, ud, err, "signal_load");
}

static int sq_fired_list(hr_store *s, const char *account, int limit,
                         int (*fn)(void *, const hr_fired_rec *), void *ud, hr_err *err) {
    sq_store *q = (sq_store *)s;
    int bad = btext(q->st[ST_FIRED_LIST], 1, account) | bint(q->st[ST_FIRED_LIST], 2, limit);
    return read_rows(q, ST_FIRED_LIST, bad, row_fired, (void *)fn, ud, err, "fired_list");
}

static int sq_task_load(hr_store *s, int (*fn)(void *, const hr_task_rec *), void *ud,
                        hr_err *err) {
    return read_rows((sq_store *)s, ST_TASK_LOAD, 0, row_task, (void *)fn, ud, err, "task_load");
}

static int sq_outbox_due(hr_store *s, int64_t now_ms, int limit,
                         int (*fn)(void *, const hr_outbox_rec *), void *ud, hr_err *err) {
    sq_store *q = (sq_store *)s;
    int bad = bint(q->st[ST_OUTBOX_DUE], 1, now_ms) | bint(q->st[ST_OUTBOX_DUE], 2, limit);
    return read_rows(q, ST_OUTBOX_DUE, bad, row_outbox, (void *)fn, ud, err, "outbox_due");
}

static int sq_outbox_get(hr_store *s, const char *id, int (*fn)(void *, const hr_outbox_rec *),
                         void *ud, hr_err *err) {
    sq_store *q = (sq_store *)s;
    int bad = btext(q->st[ST_OUTBOX_GET], 1, id);
    return read_rows(q, ST_OUTBOX_GET, bad, row_outbox, (void *)fn, ud, err, "outbox_get");
}

static int sq_outbox_list(hr_store *s, int status, int limit,
                          int (*fn)(void *, const hr_outbox_rec *), void *ud, hr_err *err) {
    sq_store *q = (sq_store *)s;
    int bad = bint(q->st[ST_OUTBOX_LIST], 1, status) | bint(q->st[ST_OUTBOX_LIST], 2, limit);
    return read_rows(q, ST_OUTBOX_LIST, bad, row_outbox, (void *)fn, ud, err, "outbox_list");
}

static int sq_delivery_list(hr_store *s, const char *msg_id, int limit,
                            int (*fn)(void *, const hr_delivery_rec *), void *ud, hr_err *err) {
    sq_store *q = (sq_store *)s;
    int bad = btext(q->st[ST_DELIVERY_LIST], 1, msg_id) | bint(q->st[ST_DELIVERY_LIST], 2, limit);
    return read_rows(q, ST_DELIVERY_LIST, bad, row_delivery, (void *)fn, ud, err, "delivery_list");
}

static int sq_put_catalog(hr_store *s, const char *text, int64_t at, hr_err *err) {
    sq_store *q = (sq_store *)s;
    sqlite3_stmt *st = q->st[ST_PUT_CATALOG];
    int bad = btext(st, 1, text ? text : "") | bint(st, 2, at);
    return exec_stmt(q, ST_PUT_CATALOG, bad, err, "put_catalog");
}

static int sq_get_catalog(hr_store *s, char **text, int64_t *at, hr_err *err) {
    sq_store *q = (sq_store *)s;
    sqlite3_stmt *st = q->st[ST_GET_CATALOG];
    int ret = 0, rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        ret = hr_err_set(err, HR_ENOTFOUND, "no catalog stored");
        goto out;
    }
    if (rc != SQLITE_ROW) {
        ret = fail_rc(q->db, rc, err, "get_catalog");
        goto out;
    }
    if (text && !(*text = ccopy(st, 0))) {
        ret = hr_err_set(err, HR_ENOMEM, "out of memory");
        goto out;
    }
    if (at) *at = sqlite3_column_int64(st, 1);
out:
    done(st);
    return ret;
}

/* ---- load --------------------------------------------------------------- */

/* One table scan: prepares sql, binds arg to ?1 if it has one, calls row()
 * for each result row. Load runs once per process, so these statements are
 * not worth caching. */
/* q for the rows that need the store's own state (row_seen's decompressor) */
typedef int (*row_fn)(sq_store *q, sqlite3_stmt *st, const hr_store_loader *l, hr_err *err);

static int scan(sq_store *q, const char *sql, int64_t arg, row_fn row,
                const hr_store_loader *l, hr_err *err, const char *what) {
    sqlite3_stmt *st = NULL;
    int ret = 0, rc = sqlite3_prepare_v2(q->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK && sqlite3_bind_parameter_count(st) > 0)
        rc = sqlite3_bind_int64(st, 1, (sqlite3_int64)arg);
    if (rc != SQLITE_OK) {
        ret = fail_rc(q->db, rc, err, what);
        goto out;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if ((ret = row(q, st, l, err))) goto out; /* the callback's own code */
    if (rc != SQLITE_DONE) ret = fail_rc(q->db, rc, err, what);
out:
    sqlite3_finalize(st);
    return ret;
}

static const char *json_or_empty(const char *s) {
    return s ? s : "{}";
}

static int row_account(sq_store *q, sqlite3_stmt *st, const hr_store_loader *l, hr_err *err) {
    hr_account_rec r = {
        .id = ctext(st, 0),
        .name = ctext(st, 1),
        .plan = ctext(st, 2),
        .owner = ctext(st, 3),
        .plan_version = sqlite3_column_int(st, 4),
        .interval = ctext(st, 5),
        .created_at = sqlite3_column_int64(st, 6),
        .updated_at = sqlite3_column_int64(st, 7),
        .renews_at = sqlite3_column_int64(st, 8),
        .traits_json = json_or_empty(ctext(st, 9)),
        .addons_json = json_or_empty(ctext(st, 10)),
        .trial_plan = ctext(st, 11),
        .trial_started_at = sqlite3_column_int64(st, 12),
        .trial_ends_at = sqlite3_column_int64(st, 13),
        .plan_trial_used = sqlite3_column_int(st, 14),
    };
    return l->account(l->ud, &r);
}

static int row_user(sq_store *q, sqlite3_stmt *st, const hr_store_loader *l, hr_err *err) {
    hr_user_rec r = {
        .account = ctext(st, 0),
        .id = ctext(st, 1),
        .role = ctext(st, 2),
        .seat_type = ctext(st, 3),
        .traits_json = json_or_empty(ctext(st, 4)),
        .created_at = sqlite3_column_int64(st, 5),
        .updated_at = sqlite3_column_int64(st, 6),
    };
    return l->user(l->ud, &r);
}

static int row_usage(sq_store *q, sqlite3_stmt *st, const hr_store_loader *l, hr_err *err) {
    hr_usage_rec r = {
        .account = ctext(st, 0),
        .feature = ctext(st, 1),
        .value = sqlite3_column_int64(st, 2),
        .period_start = sqlite3_column_int64(st, 3),
        .updated_at = sqlite3_column_int64(st, 4),
    };
    return l->usage(l->ud, &r);
}

static int row_override(sq_store *q, sqlite3_stmt *st, const hr_store_loader *l, hr_err *err) {
    hr_override_rec r = {
        .account = ctext(st, 0),
        .feature = ctext(st, 1),
        .value = sqlite3_column_int64(st, 2),
        .expires_at = sqlite3_column_int64(st, 3),
        .created_at = sqlite3_column_int64(st, 4),
    };
    return l->override(l->ud, &r);
}

static int row_ftrial(sq_store *q, sqlite3_stmt *st, const hr_store_loader *l, hr_err *err) {
    hr_ftrial_rec r = {
        .account = ctext(st, 0),
        .feature = ctext(st, 1),
        .started_at = sqlite3_column_int64(st, 2),
        .ends_at = sqlite3_column_int64(st, 3),
    };
    return l->ftrial(l->ud, &r);
}

static int row_meter(sq_store *q, sqlite3_stmt *st, const hr_store_loader *l, hr_err *err) {
    return meter_row(st, l->meter, l->ud, err);
}

/* message_id, received_ms, more, more_zstd, seq: every id of the row */
static int row_seen(sq_store *q, sqlite3_stmt *st, const hr_store_loader *l, hr_err *err) {
    int64_t at = sqlite3_column_int64(st, 1), seq = sqlite3_column_int64(st, 4);
    const char *id = ctext(st, 0);
    int ret = id ? l->seen(l->ud, id, at) : 0;
    const unsigned char *p, *end;
    if (ret || (ret = row_more(q, st, 2, &p, &end, err, "load seen", seq))) return ret;
    hr_event_rec r;
    while (!ret && p < end) {
        if (unpack_event(&p, end, &r)) return damaged(err, "load seen", seq);
        if (r.message_id) ret = l->seen(l->ud, r.message_id, at);
    }
    return ret;
}

static int row_hist(sq_store *q, sqlite3_stmt *st, const hr_store_loader *l, hr_err *err) {
    hr_hist_rec r = {
        .account = ctext(st, 0),
        .user = ctext(st, 1),
        .event = ctext(st, 2),
        .first_ms = sqlite3_column_int64(st, 3),
        .last_ms = sqlite3_column_int64(st, 4),
        .days = ctext(st, 5),
    };
    return l->hist(l->ud, &r);
}

static int sq_load(hr_store *s, const hr_store_loader *l, hr_err *err) {
    sq_store *q = (sq_store *)s;
    /* One read transaction so the scans see one consistent snapshot. */
    int own = !in_tx(q), ret = 0;
    if (own && (ret = exec_sql(q->db, "BEGIN", err, "load"))) return ret;
    if (l->expect) {
        /* max(rowid) is an O(log n) upper bound of the count, unlike count(*) */
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(q->db, "SELECT max(rowid) FROM accounts", -1, &st, NULL) ==
                SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            l->expect(l->ud, sqlite3_column_int64(st, 0));
        sqlite3_finalize(st);
    }
    if (l->account &&
        (ret = scan(q,
                    "SELECT id, name, plan, owner, plan_version, interval, created_at,"
                    " updated_at, renews_at, traits_json, addons_json, trial_plan,"
                    " trial_started_at, trial_ends_at, plan_trial_used FROM accounts",
                    0, row_account, l, err, "load accounts")))
        goto out;
    if (l->user &&
        (ret = scan(q,
                    "SELECT account, id, role, seat_type, traits_json, created_at,"
                    " updated_at FROM users",
                    0, row_user, l, err, "load users")))
        goto out;
    if (l->usage &&
        (ret = scan(q,
                    "SELECT account, feature, value, period_start, updated_at FROM usage",
                    0, row_usage, l, err, "load usage")))
        goto out;
    if (l->override &&
        (ret = scan(q,
                    "SELECT account, feature, value, expires_at, created_at FROM overrides",
                    0, row_override, l, err, "load overrides")))
        goto out;
    if (l->ftrial &&
        (ret = scan(q, "SELECT account, feature, started_at, ends_at FROM feature_trials",
                    0, row_ftrial, l, err, "load feature trials")))
        goto out;
    /* SQLite's bare-column rule: with max() the other columns come from the
     * row holding the maximum, so the latest period of every (account,
     * meter) is one ordered pass over the primary key, no sort and no
     * per-group subquery (about 0.4 s for 1M rows). */
    if (l->meter &&
        (ret = scan(q,
                    "SELECT account, meter, max(period_start), value, latest_ms, uniq"
                    " FROM meter_values GROUP BY account, meter ORDER BY account, meter",
                    0, row_meter, l, err, "load meters")))
        goto out;
    if (l->seen) {
        int64_t from = INT64_MAX;
        if ((ret = first_seq_since(q, l->seen_since, &from, err))) goto out;
        if ((ret = scan(q, "SELECT message_id, received_ms, more, more_zstd, seq FROM events"
                           " WHERE seq >= ?1"
                           " AND (message_id IS NOT NULL OR more IS NOT NULL)",
                        from, row_seen, l, err, "load seen")))
            goto out;
    }
    /* In rowid order (the order rows were first written): one pass over
     * the table; key order would visit it through the index, a random
     * page per row. */
    if (l->hist &&
        (ret = scan(q,
                    "SELECT account, user, event, first_ms, last_ms, days FROM event_hist",
                    0, row_hist, l, err, "load event history")))
        goto out;
    if (l->folded) {
        int64_t seq = 0;
        if ((ret = one_int(q, ST_GET_FOLDED, &seq, err, "load folded_seq")) ||
            (ret = l->folded(l->ud, seq)))
            goto out;
    }
out:
    /* Nothing was written: ending the read transaction cannot lose data. */
    if (own) sqlite3_exec(q->db, ret ? "ROLLBACK" : "COMMIT", NULL, NULL, NULL);
    return ret;
}

static const hr_store_ops sqlite_ops = {
    .name = "sqlite",
    .close = sq_close,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .load = sq_load,
    .put_account = sq_put_account,
    .delete_account = sq_delete_account,
    .put_user = sq_put_user,
    .delete_user = sq_delete_user,
    .put_usage = sq_put_usage,
    .put_override = sq_put_override,
    .delete_override = sq_delete_override,
    .put_ftrial = sq_put_ftrial,
    .idem_get = sq_idem_get,
    .idem_put = sq_idem_put,
    .idem_prune = sq_idem_prune,
    .put_events = sq_put_events,
    .put_meter = sq_put_meter,
    .last_seq = sq_last_seq,
    .put_folded_seq = sq_put_folded_seq,
    .replay_events = sq_replay_events,
    .meter_series = sq_meter_series,
    .recent_events = sq_recent_events,
    .put_hists = sq_put_hists,
    .put_prompts = sq_put_prompts,
    .put_prompt_events = sq_put_prompt_events,
    .load_prompts = sq_load_prompts,
    .signal_put = sq_signal_put,
    .signal_load = sq_signal_load,
    .fired_put = sq_fired_put,
    .fired_list = sq_fired_list,
    .task_put = sq_task_put,
    .task_load = sq_task_load,
    .outbox_put = sq_outbox_put,
    .outbox_due = sq_outbox_due,
    .outbox_get = sq_outbox_get,
    .outbox_list = sq_outbox_list,
    .delivery_put = sq_delivery_put,
    .delivery_list = sq_delivery_list,
    .prune_events = sq_prune_events,
    .put_catalog = sq_put_catalog,
    .get_catalog = sq_get_catalog,
};

/* ---- open --------------------------------------------------------------- */

int hr_store_sqlite_open(const char *path, int durable_full, hr_store **out, hr_err *err) {
    sq_store *q = NULL;
    int ret = 0, rc;
    char mode = 0;
    *out = NULL;
    if (!(q = calloc(1, sizeof *q))) return hr_err_set(err, HR_ENOMEM, "out of memory");
    q->base.ops = &sqlite_ops;
    q->durable_full = durable_full;
    /* NOMUTEX: the store is used by one thread at a time (store.h). */
    rc = sqlite3_open_v2(path, &q->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                         NULL);
    if (rc != SQLITE_OK) {
        ret = hr_err_set(err, rc == SQLITE_NOMEM ? HR_ENOMEM : HR_ESTORE,
                         "sqlite open %s: %s", path,
                         q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc));
        goto out;
    }
    sqlite3_extended_result_codes(q->db, 0);
    /* Set before anything touches the file, so a concurrent opener waits. */
    if ((ret = pragma(q->db, "PRAGMA busy_timeout = 5000", NULL, err))) goto out;
    /* 16 KiB pages for a new database (an existing one keeps its own): the
     * event log is appended a batch at a time, and a quarter of the pages
     * means a quarter of the log frames, checksums and write calls
     * (measured: imports 3-5% faster than with 4 KiB) */
    if ((ret = pragma(q->db, "PRAGMA page_size = 16384", NULL, err))) goto out;
    if ((ret = pragma(q->db, "PRAGMA journal_mode = WAL", &mode, err))) goto out;
    /* An in-memory database answers "memory"; anything else is a failure
     * to get WAL (e.g. a file system without shared memory). */
    if (mode != 'w' && mode != 'm') {
        ret = hr_err_set(err, HR_ESTORE, "sqlite open %s: could not enable WAL mode", path);
        goto out;
    }
    /* WAL + NORMAL survives a killed process; FULL also survives power loss. */
    if ((ret = pragma(q->db, durable_full ? "PRAGMA synchronous = FULL"
                                          : "PRAGMA synchronous = NORMAL",
                      NULL, err)))
        goto out;
    if ((ret = pragma(q->db, "PRAGMA foreign_keys = OFF", NULL, err))) goto out;
    /* Big batched writes (the demo loader) otherwise leave a WAL as large as
     * the biggest transaction on disk forever. */
    if ((ret = pragma(q->db, "PRAGMA journal_size_limit = 67108864", NULL, err))) goto out;
    /* checkpoint every ~40 MB of log, not every 4 MB: fewer, larger
     * checkpoints write a page changed by many commits once (ingestion) */
    if ((ret = pragma(q->db, "PRAGMA wal_autocheckpoint = 10000", NULL, err))) goto out;
    if ((ret = pragma(q->db, "PRAGMA cache_size = -65536", NULL, err))) goto out;
    if ((ret = migrate(q->db, &q->version, err))) goto out;
    for (int i = 0; i < NSTMTS; i++) {
        rc = sqlite3_prepare_v3(q->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &q->st[i],
                                NULL);
        if (rc != SQLITE_OK) {
            ret = fail_rc(q->db, rc, err, "prepare");
            goto out;
        }
    }
    *out = &q->base;
    q = NULL;
out:
    if (q) {
        for (int i = 0; i < NSTMTS; i++) sqlite3_finalize(q->st[i]);
        sqlite3_close(q->db);
        free(q);
    }
    return ret;
}

/* ---- background checkpoints ------------------------------------------- */

#define CKPT_FRAMES 10000 /* the default, as wal_autocheckpoint was: ~40 MB of log */

/* After each commit of the writer's connection: wakes the checkpointer once
 * the log is long enough. */
static int ckpt_hook(void *ud, sqlite3 *db, const char *name, int frames) {
    (void)db, (void)name;
    sq_store *q = ud;
    if (frames >= q->ckframes) {
        pthread_mutex_lock(&q->ckmu);
        q->ckwant = 1;
        pthread_cond_signal(&q->ckcv);
        pthread_mutex_unlock(&q->ckmu);
    }
    return SQLITE_OK;
}

static void *ckpt_main(void *ud) {
    sq_store *q = ud;
    pthread_mutex_lock(&q->ckmu);
    for (;;) {
        while (!q->ckwant && !q->ckstop) pthread_cond_wait(&q->ckcv, &q->ckmu);
        if (q->ckstop) break;
        q->ckwant = 0;
        pthread_mutex_unlock(&q->ckmu);
        /* PASSIVE: copies what no reader still needs, never blocks the
         * writer; the writer starts the log over once all of it is in */
        int nlog = 0, ndone = 0;
        sqlite3_wal_checkpoint_v2(q->ckdb, NULL, SQLITE_CHECKPOINT_PASSIVE, &nlog, &ndone);
        pthread_mutex_lock(&q->ckmu);
    }
    pthread_mutex_unlock(&q->ckmu);
    return NULL;
}

int hr_store_sqlite_background_checkpoints(hr_store *s, int frames, hr_err *err) {
    sq_store *q = (sq_store *)s;
    q->ckframes = frames > 0 ? frames : CKPT_FRAMES;
    const char *path = sqlite3_db_filename(q->db, "main");
    if (q->ckdb || !path || !*path) return 0; /* already, or in memory */
    sqlite3 *ck = NULL;
    int rc = sqlite3_open_v2(path, &ck, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL), ret;
    if (rc != SQLITE_OK) {
        ret = fail_rc(ck, rc, err, "open for checkpoints");
        goto fail;
    }
    /* the checkpoint's fsyncs follow the store's durability */
    if ((ret = pragma(ck, "PRAGMA busy_timeout = 5000", NULL, err)) ||
        (ret = pragma(ck, q->durable_full ? "PRAGMA synchronous = FULL"
                                          : "PRAGMA synchronous = NORMAL",
                      NULL, err)) ||
        (ret = pragma(q->db, "PRAGMA wal_autocheckpoint = 0", NULL, err)))
        goto fail;
    q->ckdb = ck;
    q->ckwant = q->ckstop = 0;
    pthread_mutex_init(&q->ckmu, NULL);
    pthread_cond_init(&q->ckcv, NULL);
    if (pthread_create(&q->ckthread, NULL, ckpt_main, q)) {
        pthread_mutex_destroy(&q->ckmu);
        pthread_cond_destroy(&q->ckcv);
        q->ckdb = NULL;
        ret = hr_err_set(err, HR_ESTORE, "cannot start the checkpoint thread");
        goto fail;
    }
    sqlite3_wal_hook(q->db, ckpt_hook, q);
    return 0;
fail:
    sqlite3_close(ck);
    pragma(q->db, "PRAGMA wal_autocheckpoint = 10000", NULL, NULL);
    return ret;
}

int hr_store_sqlite_share_checkpoints(hr_store *s, hr_store *owner, hr_err *err) {
    sq_store *q = (sq_store *)s, *o = (sq_store *)owner;
    if (!o->ckdb || q == o) return 0; /* the owner checkpoints on its commits */
    int ret = pragma(q->db, "PRAGMA wal_autocheckpoint = 0", NULL, err);
    if (!ret) sqlite3_wal_hook(q->db, ckpt_hook, o);
    return ret;
}

/* Stops the checkpointer (if any); the writer's connection checkpoints
 * itself again, and closing it checkpoints what is left. */
static void ckpt_stop(sq_store *q) {
    if (!q->ckdb) return;
    sqlite3_wal_hook(q->db, NULL, NULL);
    pthread_mutex_lock(&q->ckmu);
    q->ckstop = 1;
    pthread_cond_signal(&q->ckcv);
    pthread_mutex_unlock(&q->ckmu);
    pthread_join(q->ckthread, NULL);
    pthread_mutex_destroy(&q->ckmu);
    pthread_cond_destroy(&q->ckcv);
    sqlite3_close(q->ckdb);
    q->ckdb = NULL;
}

int hr_store_sqlite_schema_version(hr_store *s) {
    return s ? ((sq_store *)s)->version : 0;
}
