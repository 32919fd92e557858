/* headroomd: the catalog, the accounts and the decision over HTTP.
 *
 * Startup: load the catalog (file, or the newer one set over the API), open
 * the store, load every account into memory, listen. The main thread then
 * only waits for signals: SIGHUP reloads the catalog file, SIGTERM/SIGINT
 * stop accepting, finish requests in flight, close the store and exit 0. */
#include <errno.h>
#include <getopt.h>
#include <libfyaml.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/app.h"
#include "campaigns/campaigns.h"
#include "playbooks/playbooks.h"
#include "webhooks/webhooks.h"
#include "err.h"
#include "http/server.h"
#include "log.h"
#include "timeutil.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: headroomd [options]\n"
            "  --config FILE       catalog file (default headroom.yaml)\n"
            "  --db PATH           SQLite database (default ./headroom.db)\n"
            "  --listen HOST:PORT  address to serve on (default 127.0.0.1:8080; port 0 = any free)\n"
            "  --threads N         HTTP worker threads (default: 8 per core, at least 16;\n"
            "                      event requests wait for their group commit on them)\n"
            "  --durability MODE   full (fsync every commit) or normal (survives a crash of\n"
            "                      headroomd, not of the machine); default: the config's\n"
            "                      server.durability, else full\n"
            "  --ready-file PATH   write the URL there once listening (for scripts and tests)\n"
            "  --sweep-seconds N   evaluate every playbook for every account every N seconds\n"
            "                      (default 60; 0: only when an account's events arrive)\n"
            "  --demo-app DIR      serve the demo host app in DIR at /demo/ with a demo-only\n"
            "                      identity signer (never in production)\n"
            "  --log-level LEVEL   debug, info, warn or error (default info)\n"
            "  --max-body BYTES    largest accepted request body (default 1048576)\n"
            "  --retention-days N  keep raw events N days (default 90; 0 = forever); meters stay\n"
            "  --dedup-days N      remember messageIds N days to count retries once (default 7)\n"
            "  --dedup-memory MB   memory for those ids (default 128: ~2.9M ids; 0 = no bound);\n"
            "                      when full the oldest go first, which shortens the window\n"
            "                      (logged, and in /metrics as headroom_dedup_window_seconds)\n"
            "  --help, --version\n"
            "Keys (required; from the environment, else the config's `keys:` section):\n"
            "  HEADROOM_SECRET_KEY        sk_... for server-side calls (all endpoints)\n"
            "  HEADROOM_PUBLISHABLE_KEY   pk_... for browsers (check/entitlements/OFREP with a user_hash)\n"
            "  HEADROOM_IDENTITY_SECRET   HMAC secret for user_hash; HEADROOM_IDENTITY_SECRET_OLD during rotation\n"
            "  HEADROOM_IDENTITY_WINDOW   seconds a user_hash stays valid (default 86400)\n"
            "  HEADROOM_WRITE_KEY         Segment write key for /v1/track, /v1/batch ... (keys.write)\n"

            "  HEADROOM_OFREP_ACCOUNT_FIELD  OFREP context field with the account id (default accountId)\n");
}

/* keys: {secret: .., publishable: .., identity_secrets: [..], identity_window: ..} */
static char *config_key(const char *path, const char *ypath) {
    struct fy_parse_cfg cfg = {.flags = FYPCF_QUIET};
    struct fy_document *d = fy_document_build_from_file(&cfg, path);
    char *out = NULL;
    if (!d) return NULL;
    struct fy_node *n = fy_node_by_path(fy_document_root(d), ypath, FY_NT, FYNWF_DONT_FOLLOW);
    size_t len;
    const char *s = n && fy_node_is_scalar(n) ? fy_node_get_scalar(n, &len) : NULL;
    if (s) out = strndup(s, len);
    fy_document_destroy(d);
    return out;
}

static char *key_from(const char *env, const char *config, const char *ypath) {
    const char *v = getenv(env);
    if (v && *v) return strdup(v);
    return config_key(config, ypath);
}

static int write_ready(const char *path, const char *host, int port) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return -1;
    fprintf(f, "http://%s:%d\n", host, port);
    if (fclose(f)) return -1;
    return rename(tmp, path);
}

/* playbooks wake the webhook sender after writing outbox rows */
static void kick_webhooks(void *w) { hr_webhooks_kick(w); }

int main(int argc, char **argv) {
    const char *config = "headroom.yaml", *db = "./headroom.db", *listen = "127.0.0.1:8080";
    const char *ready = NULL, *durability = NULL, *demo_dir = NULL;
    hr_store *cstore = NULL, *pbstore = NULL, *whstore = NULL, *apistore = NULL, *logstore = NULL;
    long sweep_s = 60;
    /* Event requests hold their thread while they wait for the group commit,
     * and a commit takes every request waiting then: more threads than
     * cores let a commit carry more requests (measured: 16 threads carry
     * 1.5x the events/s of 2 on 2 cores). Decisions do not need them. */
    long cores = sysconf(_SC_NPROCESSORS_ONLN), threads = cores * 8 < 16 ? 16 : cores * 8;
    size_t max_body = 1 << 20;
    static struct option opts[] = {
        {"config", 1, 0, 'c'}, {"db", 1, 0, 'd'},         {"listen", 1, 0, 'l'},
        {"threads", 1, 0, 't'}, {"log-level", 1, 0, 'L'}, {"ready-file", 1, 0, 'r'},
        {"durability", 1, 0, 'D'}, {"max-body", 1, 0, 'm'}, {"help", 0, 0, 'h'},
        {"version", 0, 0, 'v'}, {"retention-days", 1, 0, 'R'}, {"dedup-days", 1, 0, 'U'}, {"demo-app", 1, 0, 'A'},
        {"sweep-seconds", 1, 0, 'S'}, {"dedup-memory", 1, 0, 'M'},
        {0, 0, 0, 0}};
    int ch;
    long retention = 90, dedup = 7, dedup_mb = 128;
    while ((ch = getopt_long(argc, argv, "c:d:l:t:L:r:D:m:hvR:U:A:S:M:", opts, NULL)) != -1) {
        switch (ch) {
        case 'c': config = optarg; break;
        case 'd': db = optarg; break;
        case 'l': listen = optarg; break;
        case 't': threads = strtol(optarg, NULL, 10); break;
        case 'r': ready = optarg; break;
        case 'D': durability = optarg; break;
        case 'A': demo_dir = optarg; break;
        case 'S': sweep_s = strtol(optarg, NULL, 10); break;
        case 'm': max_body = (size_t)strtoull(optarg, NULL, 10); break;
        case 'R': retention = strtol(optarg, NULL, 10); break;
        case 'U': dedup = strtol(optarg, NULL, 10); break;
        case 'M': dedup_mb = strtol(optarg, NULL, 10); break;
        case 'L':
            if (hr_log_level_parse(optarg) < 0) {
                fprintf(stderr, "headroomd: unknown log level '%s'\n", optarg);
                return 2;
            }
            hr_log_set_level(hr_log_level_parse(optarg));
            break;
        case 'h': usage(stdout); return 0;
        case 'v': printf("headroomd %s\n", HR_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    char *cfg_durability = durability ? NULL : config_key(config, "/server/durability");
    if (!durability) durability = cfg_durability ? cfg_durability : "full";
    if (strcmp(durability, "full") && strcmp(durability, "normal")) {
        fprintf(stderr, "headroomd: durability must be full or normal, not '%s'\n", durability);
        free(cfg_durability);
        return 2;
    }
    char host[256];
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen || (size_t)(colon - listen) >= sizeof host) {
        fprintf(stderr, "headroomd: --listen must be HOST:PORT\n");
        return 2;
    }
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = 0;
    int port = atoi(colon + 1);

    int rc = 1;
    hr_err err = {0};
    hr_catalog *cat = NULL;
    hr_store *store = NULL;
    hr_server *srv = NULL;
    hr_app app;
    memset(&app, 0, sizeof app);
    pthread_mutex_init(&app.reload_mu, NULL);
    pthread_mutex_init(&app.pstore_mu, NULL);
    char *sk = key_from("HEADROOM_SECRET_KEY", config, "/keys/secret");
    char *pk = key_from("HEADROOM_PUBLISHABLE_KEY", config, "/keys/publishable");
    char *id1 = key_from("HEADROOM_IDENTITY_SECRET", config, "/keys/identity_secrets/0");
    char *id2 = key_from("HEADROOM_IDENTITY_SECRET_OLD", config, "/keys/identity_secrets/1");
    char *win = key_from("HEADROOM_IDENTITY_WINDOW", config, "/keys/identity_window");
    char *wk = key_from("HEADROOM_WRITE_KEY", config, "/keys/write");
    const char *acct_field = getenv("HEADROOM_OFREP_ACCOUNT_FIELD");
    if (!sk || strncmp(sk, "sk_", 3) || strlen(sk) < 12) {
        hr_log(HR_LOG_ERROR, "a secret key is required: set HEADROOM_SECRET_KEY=sk_... "
                             "(at least 12 characters) or keys.secret in %s", config);
        goto out;
    }
    if (pk && strncmp(pk, "pk_", 3)) {
        hr_log(HR_LOG_ERROR, "the publishable key must start with pk_");
        goto out;
    }
    if (pk && !id1) {
        hr_log(HR_LOG_ERROR, "a publishable key needs HEADROOM_IDENTITY_SECRET to verify user_hash");
        goto out;
    }

    /* Catalog: the file (refused before anything is created), unless the
     * API set a newer one. */
    if (hr_catalog_load_file(config, &cat, &err)) {
        char msg[1200];
        hr_err_fmt(&err, msg, sizeof msg);
        hr_log(HR_LOG_ERROR, "%s", msg);
        goto out;
    }
    if (hr_store_sqlite_open(db, !strcmp(durability, "full"), &store, &err)) {
        hr_log(HR_LOG_ERROR, "cannot open database %s: %s", db, err.message);
        goto out;
    }
    /* the group commit's connection never copies the log into the database */
    if (hr_store_sqlite_background_checkpoints(store, 0, &err))
        hr_log(HR_LOG_WARN, "checkpoints stay on the writer: %s", err.message);
    if (hr_app_prefer_api_catalog(config, store, &cat)) hr_log(HR_LOG_INFO, "using the catalog set over the API (newer than %s)", config);
    memset(&err, 0, sizeof err);
    app.engine = hr_engine_new(cat);
    app.store = store;
    app.config_path = config;
    app.auth.secret_key = sk;
    app.auth.publishable_key = pk;
    app.auth.identity_secrets[0] = id1;
    app.auth.identity_secrets[1] = id2;
    app.auth.window = win ? strtoll(win, NULL, 10) : 86400;
    if (app.auth.window <= 0) app.auth.window = 86400;
    app.ofrep_account_field = acct_field && *acct_field ? acct_field : "accountId";
    app.write_key = wk;
    app.cors_origins = getenv("HEADROOM_CORS_ORIGINS");
    app.ofrep_poll_ms = 30000;
    app.max_body = max_body;
    app.started_at = hr_time_now();
    if (!app.engine) goto out;
    hr_engine_set_dedup_window(app.engine, (int)(dedup < 1 ? 1 : dedup));
    hr_engine_set_dedup_memory(app.engine, dedup_mb > 0 ? (size_t)dedup_mb << 20 : 0);
    hr_engine_set_retention(app.engine, (int)(retention < 0 ? 0 : retention));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (hr_engine_attach_store(app.engine, store, &err)) {
        hr_log(HR_LOG_ERROR, "cannot load state from %s: %s", db, err.message);
        goto out;
    }
    /* the event log has a connection of its own: a group commit's log
     * write overlaps the next one's fold (pipelined group commit) */
    if (hr_store_sqlite_open(db, !strcmp(durability, "full"), &logstore, &err)) {
        hr_log(HR_LOG_ERROR, "cannot open database %s: %s", db, err.message);
        goto out;
    }
    hr_engine_set_log_store(app.engine, logstore);
    /* campaign state has a connection of its own: its flushes run beside
     * ingestion's group commits */
    if (hr_store_sqlite_open(db, !strcmp(durability, "full"), &cstore, &err) ||
        hr_campaigns_new(app.engine, cstore, &app.campaigns, &err)) {
        hr_log(HR_LOG_ERROR, "cannot load campaign state from %s: %s", db, err.message);
        goto out;
    }
    app.demo_dir = demo_dir;
    /* webhooks and playbooks: connections of their own (their writes run
     * beside ingestion's); one more for the webhook API's reads */
    {
        hr_webhook_policy pol;
        hr_catalog *cur = hr_engine_catalog(app.engine);
        hr_app_webhook_policy(cur, &pol);
        hr_catalog_release(cur);
        int dur = !strcmp(durability, "full");
        if (hr_store_sqlite_open(db, dur, &whstore, &err) ||
            hr_store_sqlite_open(db, dur, &pbstore, &err) ||
            hr_store_sqlite_open(db, dur, &apistore, &err) ||
            hr_webhooks_new(whstore, &pol, &app.webhooks, &err) ||
            hr_playbooks_new(app.engine, pbstore, kick_webhooks, app.webhooks,
                             &app.playbooks, &err)) {
            hr_log(HR_LOG_ERROR, "cannot load playbooks and webhooks from %s: %s", db, err.message);
            goto out;
        }
        app.pstore = apistore;
        /* their commits leave checkpoints to the group commit's thread */
        hr_store *others[] = {logstore, cstore, whstore, pbstore, apistore};
        for (size_t i = 0; i < sizeof others / sizeof *others; i++)
            if (hr_store_sqlite_share_checkpoints(others[i], store, &err))
                hr_log(HR_LOG_WARN, "a connection checkpoints itself: %s", err.message);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    hr_log(HR_LOG_INFO, "loaded %zu accounts from %s in %.0f ms",
           hr_engine_account_count(app.engine), db,
           (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);

    /* Block the signals before any thread starts, so only sigwait sees them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (hr_server_start(&app, host, port, (int)threads, &srv, &err)) {
        hr_log(HR_LOG_ERROR, "%s", err.message);
        goto out;
    }
    if (hr_campaigns_start(app.campaigns, &err) || hr_webhooks_start(app.webhooks, &err) ||
        hr_playbooks_start(app.playbooks, sweep_s > 0 ? sweep_s * 1000 : 0, &err)) {
        hr_log(HR_LOG_ERROR, "%s", err.message);
        goto out;
    }
    hr_log(HR_LOG_INFO, "headroomd %s listening on http://%s:%d (%ld threads, durability %s)",
           HR_VERSION, host, hr_server_port(srv), threads, durability);
    if (ready && write_ready(ready, host, hr_server_port(srv))) {
        hr_log(HR_LOG_ERROR, "cannot write %s", ready);
        goto out;
    }
    for (;;) {
        /* once a second: denials noted on the decision path go to the event
         * stream here, off the requests' time */
        struct timespec tick = {1, 0};
        int sig = sigtimedwait(&set, NULL, &tick);
        if (sig < 0) {
            hr_err e2 = {0};
            if (hr_engine_flush_internal(app.engine, &e2))
                hr_log(HR_LOG_WARN, "recording feature denials: %s", e2.message);
            if (hr_engine_flush_derived(app.engine, 1000, &e2))
                hr_log(HR_LOG_WARN, "writing meters and history: %s", e2.message);
            continue;
        }
        if (sig == SIGHUP) {
            hr_err e2 = {0};
            if (hr_app_reload_file(&app, &e2)) {
                char msg[1200];
                hr_err_fmt(&e2, msg, sizeof msg);
                hr_log(HR_LOG_ERROR, "reload failed, keeping the current catalog: %s", msg);
            } else {
                hr_log(HR_LOG_INFO, "catalog reloaded from %s", config);
            }
            continue;
        }
        hr_log(HR_LOG_INFO, "signal %d: finishing requests in flight and stopping", sig);
        break;
    }
    rc = 0;
out:
    hr_server_stop(srv);
    if (app.engine && rc == 0) {
        hr_err e3 = {0};
        hr_engine_flush_internal(app.engine, &e3); /* the last second's denials */
        if (hr_engine_flush_derived(app.engine, 0, &e3))
            hr_log(HR_LOG_WARN, "writing meters and history: %s", e3.message);
    }
    hr_campaigns_free(app.campaigns);
    hr_playbooks_free(app.playbooks);
    hr_webhooks_free(app.webhooks);
    hr_engine_free(app.engine);
    hr_store_close(cstore);
    hr_store_close(pbstore);
    hr_store_close(whstore);
    hr_store_close(apistore);
    hr_store_close(logstore);
    hr_store_close(store);
    if (cat) hr_catalog_release(cat);
    free(sk), free(pk), free(id1), free(id2), free(win), free(wk), free(cfg_durability);
    if (rc == 0) hr_log(HR_LOG_INFO, "stopped");
    return rc;
}
