/* demo_data.c: `headroom demo-data`: a reproducible population of accounts
 * (plan mix, add-ons, users with roles, usage near and at the limits) written
 * straight into a database, for `make demo` and the benchmarks. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "cli.h"
#include "err.h"
#include "store/store.h"
#include "timeutil.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void) { /* xorshift64*: reproducible across runs */
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 2685821657736338717ull;
}
static int64_t pick(int64_t n) { return n > 0 ? (int64_t)(next() % (uint64_t)n) : 0; }

static const char *companies[] = {"Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark",
                                  "Wayne", "Wonka", "Tyrell", "Cyberdyne", "Soylent", "Aperture"};
static const char *suffix[] = {"Inc", "Labs", "GmbH", "Ltd", "Studio", "Co"};
static const char *roles[] = {"admin", "member", "member", "member", "decision_maker", "viewer"};

static long long demo_events;

/* A year of one account's product use: busier plans use more, use grows
 * over the year and dips at weekends, and some free accounts run into the
 * limits (API calls, boards). Deterministic from the seed. */
static void write_events(FILE *f, const char *id, long nusers, int plan, int64_t now, long days) {
    static const double per_day[] = {0.05, 0.15, 0.3, 0.5}; /* by plan tier */
    static const char *names[] = {"API Called", "API Called", "API Called", "Board Opened",
                                  "Board Opened", "Board Created", "Export Finished"};
    if (nusers < 1) return;
    int heavy = pick(20) == 0; /* one in twenty pushes its limits */
    long n = 0;
    for (long d = days - 1; d >= 0; d--) {
        int64_t day = hr_time_day_start(now) - d * 86400;
        int64_t dow = ((day / 86400) % 7 + 7 + 3) % 7; /* Monday 0 */
        double growth = 0.5 + (double)(days - d) / (double)days; /* 0.5x .. 1.5x */
        double mean = per_day[plan < 4 ? plan : 3] * growth * (dow >= 5 ? 0.3 : 1);
        /* rounding by chance keeps small rates from vanishing */
        double want = mean * (0.5 + (double)pick(1000) / 1000.0);
        long today = (long)want + ((double)pick(1000) / 1000.0 < want - (long)want);
        /* a heavy account calls the API hard in the last month: on the free
         * plan that crosses its 1,000 calls */
        long surge = heavy && d < 30 ? 35 + pick(10) : 0;
        for (long k = 0; k < today + surge; k++) {
            int64_t ts = day + pick(86400);
            if (ts > now) ts = now - pick(3600);
            const char *name = k < today ? names[pick(7)] : "API Called";
            char when[40];
            hr_time_format(ts, when, sizeof when);
            fprintf(f, "{\"type\":\"track\",\"messageId\":\"demo-%s-%ld\",\"userId\":\"%s_u%lld\","
                       "\"event\":\"%s\",\"timestamp\":\"%s\",\"context\":{\"groupId\":\"%s\"}",
                    id, n++, id, (long long)pick(nusers) + 1, name, when, id);
            if (!strcmp(name, "Export Finished"))
                fprintf(f, ",\"properties\":{\"rows\":%lld}", (long long)(10 + pick(3000)));
            fputs("}\n", f);
            demo_events++;
        }
    }
}

int hr_cmd_demo_data(int argc, char **argv) {
    const char *db = "./headroom.db", *config = "headroom.yaml";
    long accounts = 1000, users = 3, days = 365;
    const char *events_out = NULL;
    static struct option opts[] = {{"accounts", 1, 0, 'a'}, {"db", 1, 0, 'd'},
                                   {"config", 1, 0, 'c'}, {"users", 1, 0, 'u'},
                                   {"seed", 1, 0, 's'}, {"events", 1, 0, 'e'},
                                   {"days", 1, 0, 'n'}, {0, 0, 0, 0}};
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "a:d:c:u:s:e:n:", opts, NULL)) != -1) {
        switch (ch) {
        case 'a': accounts = strtol(optarg, NULL, 10); break;
        case 'd': db = optarg; break;
        case 'c': config = optarg; break;
        case 'u': users = strtol(optarg, NULL, 10); break;
        case 's': rng = strtoull(optarg, NULL, 10) | 1; break;
        case 'e': events_out = optarg; break;
        case 'n': days = strtol(optarg, NULL, 10); break;
        default:
            fprintf(stderr, "usage: headroom demo-data [--accounts N] [--users PER_ACCOUNT] "
                            "[--db PATH] [--config FILE] [--seed N]\n"
                            "                          [--events FILE.jsonl [--days N]]\n"
                            "  --events also writes N days (default 365) of product events for the\n"
                            "  accounts, in Segment's format, for `headroom import`\n");
            return 2;
        }
    }
    FILE *ev = NULL;
    if (events_out && !(ev = fopen(events_out, "w"))) {
        perror(events_out);
        return 1;
    }
    if (accounts < 0 || users < 0 || days < 1) {
        fprintf(stderr, "headroom: --accounts and --users must be >= 0\n");
        return 2;
    }
    hr_catalog *c = NULL;
    hr_store *s = NULL;
    hr_err err = {0};
    int rc = 1, intx = 0;
    if (hr_cli_open(config, db, &c, &s)) goto out;
    int64_t now = hr_time_now();
    for (long i = 0; i < accounts; i++) {
        if (!intx) {
            if (s->ops->begin(s, &err)) goto fail;
            intx = 1;
        }
        char id[32], name[96], owner[64], addons[96] = "{}";
        snprintf(id, sizeof id, "acct_%06ld", i + 1);
        snprintf(name, sizeof name, "%s %s %ld", companies[pick(12)], suffix[pick(6)], i + 1);
        snprintf(owner, sizeof owner, "rep%lld@sales.example", (long long)pick(8) + 1);
        /* plan mix: most free, a long tail of paid tiers */
        int64_t r = pick(100);
        int pi = r < 60 ? 0 : r < 85 ? 1 : r < 97 ? 2 : 3;
        if (pi >= c->nplans) pi = c->nplans - 1;
        const hr_plan *p = &c->plans[pi];
        const hr_plan_version *pv = &p->versions[p->nversions - 1];
        /* a few accounts on an older (grandfathered) version */
        if (p->nversions > 1 && pick(10) == 0) pv = &p->versions[0];
        for (int a = 0; a < c->naddons && pick(8) == 0; a++) {
            if (!c->addons[a].plans[pi]) continue;
            snprintf(addons, sizeof addons, "{\"%s\":%lld}", c->addons[a].key, (long long)pick(2) + 1);
            break;
        }
        int64_t created = now - 86400 * (30 + pick(700));
        char traits[160];
        snprintf(traits, sizeof traits, "{\"industry\":\"%s\",\"employees\":%lld}",
                 pick(2) ? "software" : "services", (long long)(5 + pick(500)));
        hr_account_rec ar = {.id = id, .name = name, .plan = p->key, .owner = owner,
                             .plan_version = pv->version, .interval = pick(5) ? "month" : "year",
                             .created_at = created, .updated_at = now,
                             .renews_at = hr_time_add_months(hr_time_month_start(now), 1) +
                                          86400 * pick(28),
                             .traits_json = traits, .addons_json = addons};
        if (s->ops->put_account(s, &ar, &err)) goto fail;
        long nu = users ? 1 + pick(users * 2) : 0;
        for (long u = 0; u < nu; u++) {
            char uid[96];
            snprintf(uid, sizeof uid, "%s_u%ld", id, u + 1);
            hr_user_rec ur = {id, uid, u == 0 ? "admin" : roles[pick(6)], "full", "{}", created,
                              now};
            if (s->ops->put_user(s, &ur, &err)) goto fail;
        }
        if (ev) write_events(ev, id, nu, pi, now, days);
        /* usage: a spread up to (and sometimes at) each limit */
        for (int f = 0; f < c->nfeatures; f++) {
            const hr_feature *ft = &c->features[f];
            if (ft->type == HR_FEAT_BOOLEAN) continue;
            int64_t lim = pv->ent[f];
            if (lim == HR_ENT_NONE) continue;
            int64_t cap = lim == HR_UNLIMITED ? 200 : lim;
            int64_t v = pick(4) == 0 ? cap : pick(cap + 1);
            if (!strcmp(ft->key, "seats")) v = nu < cap ? nu : cap;
            hr_usage_rec ur = {id, ft->key, v,
                               ft->type == HR_FEAT_METERED ? hr_time_month_start(now) : 0, now};
            if (ft->type == HR_FEAT_METERED && ft->period != HR_PERIOD_MONTH) continue;
            if (s->ops->put_usage(s, &ur, &err)) goto fail;
        }
        if ((i + 1) % 10000 == 0) {
            if (s->ops->commit(s, &err)) goto fail;
            intx = 0;
        }
    }
    if (intx && s->ops->commit(s, &err)) goto fail;
    intx = 0;
    printf("wrote %ld accounts to %s\n", accounts, db);
    if (ev) printf("wrote %lld events to %s\n", demo_events, events_out);
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "headroom: %s: %s\n", db, err.message);
out:
    if (intx) s->ops->rollback(s);
    hr_store_close(s);
    if (c) hr_catalog_release(c);
    if (ev && fclose(ev) && !rc) {
        perror(events_out);
        rc = 1;
    }
    return rc;
}
