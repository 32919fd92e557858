/* playbooks.c: signals, scores, tasks and the webhooks they send.
 *
 * One evaluation looks at one account under the engine's read lock
 * (hr_engine_with_rules / hr_engine_sweep): every enabled playbook's signal,
 * and for a rising edge outside the cooldown everything a firing needs (the
 * value, the evidence, the message, the task's owner, the webhook bodies),
 * copied out. The firings are then written in one store transaction (signal
 * state, fired signal, task, outbox rows) and only then applied in memory,
 * so what the inbox shows is always on disk. A signal that becomes true
 * inside its cooldown stays "not yet fired" and fires as soon as the
 * cooldown has passed if it still holds. Only the module's own thread acts
 * (ingested accounts and the sweep); the API reads the inbox and moves
 * tasks. */
#include "playbooks.h"

#include <math.h>
#include <stdarg.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "catalog/catalog.h"
#include "err.h"
#include "intern.h"
#include "map.h"
#include "rules/rules.h"
#include "template.h"
#include "timeutil.h"

#define EVAL_SLICE 2000      /* accounts per transaction of a sweep's writes */
#define LOCK_SLICE 500       /* accounts per hold of the engine's read lock (~1 ms) */
#define QUEUE_MAX 100000     /* accounts waiting for evaluation */

/* What the playbooks keep per account: its score, and its signal states
 * for the playbooks whose signal ever held for it (most accounts have
 * none). One record, so that evaluating an account is one map lookup. */
typedef struct sigst {
    const char *playbook; /* interned: compared with hr_playbook.ikey by address */
    int active;
    int64_t last_fired_ms;
} sigst;

typedef struct acctsig {
    uint32_t n, cap;
    sigst *e;
    double score;
    int has_score;
    char account[];
} acctsig;

typedef struct task {
    char id[40];
    char *account, *playbook, *owner, *message, *evidence;
    const char *status; /* static strings */
    double score;
    int64_t created_ms, updated_ms, snooze_ms;
} task;

struct hr_playbooks {
    hr_engine *e;
    hr_store *store;
    void (*kick)(void *ud);
    void *kick_ud;
    pthread_mutex_t mu;  /* everything below */
    pthread_mutex_t smu; /* the store connection */
    hr_map *sig, *task_ix, *queued, *rr; /* sig: account -> acctsig */
    task **tasks;
    size_t ntasks, captasks;
    char **queue;
    size_t nqueue;
    pthread_t th;
    pthread_cond_t cv;
    int started, stop, sweep_now;
    hr_playbooks_stats stats; /* under mu */
    int64_t sweep_ms;
};

static const char *const ST_OPEN = "open", *const ST_CLAIMED = "claimed",
                         *const ST_SNOOZED = "snoozed", *const ST_COMPLETED = "completed",
                         *const ST_DISMISSED = "dismissed";

static const char *status_of(const char *s) {
    const char *all[] = {ST_OPEN, ST_CLAIMED, ST_SNOOZED, ST_COMPLETED, ST_DISMISSED};
    for (int i = 0; s && i < 5; i++)
        if (!strcmp(s, all[i])) return all[i];
    return NULL;
}

static void random_id(const char *prefix, char *out, size_t n) {
    unsigned char b[10];
    if (RAND_bytes(b, sizeof b) != 1) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        memcpy(b, &ts, sizeof b < sizeof ts ? sizeof b : sizeof ts);
    }
    int off = snprintf(out, n, "%s", prefix);
    for (size_t i = 0; i < sizeof b && off + 2 < (int)n; i++) off += snprintf(out + off, n - (size_t)off, "%02x", b[i]);
}

/* ---- memory state (mu held) ---------------------------------------------- */

static acctsig *acct_get(hr_playbooks *p, const char *account, int create) {
    acctsig *as = hr_map_get(p->sig, account);
    if (as || !create) return as;
    size_t n = strlen(account);
    if (!(as = calloc(1, sizeof *as + n + 1))) return NULL;
    memcpy(as->account, account, n + 1);
    int err = 0;
    hr_map_put(p->sig, as->account, as, &err);
    if (err) {
        free(as);
        return NULL;
    }
    return as;
}

static sigst *sig_get(hr_playbooks *p, const char *account, const char *playbook, int create) {
    acctsig *as = acct_get(p, account, create);
    for (uint32_t i = 0; as && i < as->n; i++)
        if (!strcmp(as->e[i].playbook, playbook)) return &as->e[i];
    if (!as) return NULL;
    const char *ip = hr_intern(playbook);
    if (!ip) return NULL;
    if (as->n == as->cap) {
        uint32_t cap = as->cap ? as->cap * 2 : 2;
        sigst *e = realloc(as->e, cap * sizeof *e);
        if (!e) return NULL;
        as->e = e;
        as->cap = cap;
    }
    as->e[as->n] = (sigst){ip, 0, 0};
    return &as->e[as->n++];
}

static void score_set(hr_playbooks *p, const char *account, double v) {
    acctsig *as = acct_get(p, account, 1);
    if (as) as->score = v, as->has_score = 1;
}

static void task_free(task *t) {
    if (!t) return;
    free(t->account);
    free(t->playbook);
    free(t->owner);
    free(t->message);
    free(t->evidence);
    free(t);
}

static int task_add(hr_playbooks *p, task *t) {
    if (p->ntasks == p->captasks) {
        size_t cap = p->captasks ? p->captasks * 2 : 64;
        task **n = realloc(p->tasks, cap * sizeof *n);
        if (!n) return -1;
        p->tasks = n;
        p->captasks = cap;
    }
    int err = 0;
    hr_map_put(p->task_ix, t->id, t, &err);
    if (err) return -1;
    p->tasks[p->ntasks++] = t;
    return 0;
}

/* ---- one evaluation ------------------------------------------------------ */

/* A firing, everything copied out of the engine's lock. */
typedef struct firing {
    int pb;
    double value;
    int has_value;
    char *value_text, *evidence, *message, *owner;
    char task_id[40];
    char **bodies; /* per webhook action, NULL for tasks */
    int need_members;
} firing;

typedef struct change {
    int pb;
    int active;
} change;

typedef struct evalres {
    hr_playbooks *p;
    const char *account;
    int64_t now_ms;
    int act;            /* 0: dry run */
    int only;           /* dry run: one playbook, else -1 */
    const unsigned char *mask; /* sweep: which playbooks (NULL: all); no score then */
    double score;
    int has_score;
    firing *f;
    int nf;
    change *ch;
    int nch;
    /* dry run output */
    hr_buf *dry;
    int ndry, limit;
    int oom;
} evalres;

/* Template lookups from inside the evaluation: facts through the env. */
typedef struct lookctx {
    const hr_catalog *cat;
    const hr_rule_env *env;
    void *ctx;
    const hr_playbook *pb;
    const firing *f;
    double score;
    char scratch[16][256];
    int next;
} lookctx;

static const char *scratch(lookctx *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const char *scratch(lookctx *l, const char *fmt, ...) {
    char *b = l->scratch[l->next++ % 16];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, 256, fmt, ap);
    va_end(ap);
    return b;
}

static const char *rval_text(lookctx *l, const hr_rval *v) {
    switch (v->type) {
    case HR_RV_NULL: return NULL;
    case HR_RV_BOOL: return v->b ? "true" : "false";
    case HR_RV_NUM: return scratch(l, "%.15g", v->n);
    case HR_RV_STR: return scratch(l, "%.*s", (int)(v->len > 255 ? 255 : v->len), v->s);
    }
    return NULL;
}

static const char *lookup(void *ud, const char *path) {
    lookctx *l = ud;
    if (!strcmp(path, "playbook") || !strcmp(path, "signal.playbook")) return l->pb->key;
    if (!strcmp(path, "playbook.name")) return l->pb->name ? l->pb->name : l->pb->key;
    if (!strcmp(path, "score")) return scratch(l, "%.0f", l->score);
    if (!strcmp(path, "signal.value")) return l->f ? l->f->value_text : NULL;
    if (!strcmp(path, "message")) return l->f ? l->f->message : NULL;
    if (!strcmp(path, "rep")) return l->f ? l->f->owner : NULL;
    if (!strcmp(path, "task_id")) return l->f ? l->f->task_id : NULL;
    if (strncmp(path, "account.", 8)) return NULL; /* user.*: no user in an account signal */
    const char *rest = path + 8;
    static const struct { const char *name; hr_attr_id id; } attrs[] = {
        {"id", HR_ATTR_ID},       {"name", HR_ATTR_NAME},         {"plan", HR_ATTR_PLAN},
        {"owner", HR_ATTR_OWNER}, {"interval", HR_ATTR_INTERVAL}, {"renews_at", HR_ATTR_RENEWS_AT},
    };
    hr_fact_call c = {.fact = HR_FACT_ATTR, .scope = HR_SCOPE_ACCOUNT, .attr = HR_ATTR_TRAIT,
                      .feature = -1, .meter = -1, .addon = -1};
    for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++)
        if (!strcmp(rest, attrs[i].name)) c.attr = attrs[i].id;
    if (c.attr == HR_ATTR_TRAIT) {
        if (!strncmp(rest, "traits.", 7)) rest += 7;
        c.path = rest;
        c.path_hash = hr_rule_hash(rest, strlen(rest));
    }
    hr_rval v = {0};
    if (l->env->fact(l->ctx, &c, &v)) return NULL;
    return rval_text(l, &v);
}

static char *render(const char *text, hr_escape esc, lookctx *l) {
    hr_template *t = NULL;
    hr_err err;
    hr_buf b;
    if (!text || hr_template_compile(text, strlen(text), &t, &err)) return NULL;
    hr_buf_init(&b);
    hr_template_render(t, esc, lookup, l, &b);
    hr_template_free(t);
    if (hr_buf_failed(&b)) {
        hr_buf_dispose(&b);
        return NULL;
    }
    return hr_buf_steal(&b, NULL);
}

static void account_obj(hr_buf *b, lookctx *l) {
    hr_buf_puts(b, "{\"id\":");
    hr_buf_json_str(b, lookup(l, "account.id"));
    hr_buf_puts(b, ",\"name\":");
    hr_buf_json_str(b, lookup(l, "account.name"));
    hr_buf_puts(b, ",\"plan\":");
    hr_buf_json_str(b, lookup(l, "account.plan"));
    hr_buf_puts(b, ",\"owner\":");
    hr_buf_json_str(b, lookup(l, "account.owner"));
    hr_buf_putc(b, '}');
}

/* The body of webhook action ac: its template, else its preset's shape. A
 * sequence enrollment's "users" is filled in after the lock (see fire()). */
static char *webhook_body(const hr_pb_action *ac, lookctx *l, int64_t now_ms, int *need_members) {
    hr_buf b;
    hr_buf_init(&b);
    const firing *f = l->f;
    if (ac->body) {
        hr_err err;
        if (hr_template_render_json_body(ac->body, lookup, l, &b, &err)) {
            hr_buf_dispose(&b);
            return NULL;
        }
    } else if (ac->preset == HR_PRESET_SLACK) {
        char *m = render(l->pb->message, HR_ESC_SLACK, l);
        hr_buf_puts(&b, "{\"text\":");
        hr_buf_json_str(&b, m ? m : "");
        hr_buf_putc(&b, '}');
        free(m);
    } else {
        const char *type = ac->preset == HR_PRESET_CRM_OPPORTUNITY ? "opportunity"
                           : ac->preset == HR_PRESET_SEQUENCE      ? "sequence_enrollment"
                                                                    : "playbook.fired";
        hr_buf_puts(&b, "{\"type\":");
        hr_buf_json_str(&b, type);
        if (ac->preset == HR_PRESET_CRM_OPPORTUNITY) {
            char name[300];
            snprintf(name, sizeof name, "%s: %s", l->pb->name ? l->pb->name : l->pb->key,
                     lookup(l, "account.name") ? lookup(l, "account.name") : lookup(l, "account.id"));
            hr_buf_puts(&b, ",\"name\":");
            hr_buf_json_str(&b, name);
            hr_buf_puts(&b, ",\"stage\":\"qualification\"");
        }
        if (ac->preset == HR_PRESET_SEQUENCE) {
            hr_buf_puts(&b, ",\"sequence\":");
            hr_buf_json_str(&b, l->pb->key);
            hr_buf_puts(&b, ",\"users\":@USERS@");
            *need_members = 1;
        }
        hr_buf_puts(&b, ",\"playbook\":");
        hr_buf_json_str(&b, l->pb->key);
        hr_buf_puts(&b, ",\"account\":");
        account_obj(&b, l);
        hr_buf_puts(&b, ",\"message\":");
        hr_buf_json_str(&b, f->message);
        hr_buf_printf(&b, ",\"score\":%.0f,\"signal\":{\"value\":", l->score);
        if (f->has_value)
            hr_buf_printf(&b, "%.15g", f->value);
        else
            hr_buf_json_str(&b, f->value_text);
        hr_buf_puts(&b, ",\"evidence\":");
        hr_buf_puts(&b, f->evidence ? f->evidence : "{}");
        hr_buf_puts(&b, "},\"task_id\":");
        hr_buf_json_str(&b, f->task_id[0] ? f->task_id : NULL);
        hr_buf_puts(&b, ",\"created_at\":");
        hr_buf_json_time(&b, now_ms / 1000);
        hr_buf_putc(&b, '}');
    }
    if (hr_buf_failed(&b)) {
        hr_buf_dispose(&b);
        return NULL;
    }
    return hr_buf_steal(&b, NULL);
}

/* The score's term as a number in [0, 1] (null counts as 0). */
static double term(const hr_catalog *cat, const hr_score_term *t, const hr_rule_env *env,
                   void *ctx, int64_t now_ms) {
    hr_rval v = {0};
    hr_fact_call c = {.scope = HR_SCOPE_ACCOUNT, .feature = -1, .meter = -1, .addon = -1};
    double x = 0;
    switch (t->kind) {
    case HR_SCORE_RULE:
        if (hr_rule_eval(t->rule, env, ctx, now_ms, &v)) return 0;
        x = v.type == HR_RV_BOOL ? v.b : v.type == HR_RV_NUM ? v.n : 0;
        break;
    case HR_SCORE_USAGE_GROWTH_30D: /* doubling the product's use in 30 days is the top */
        c.fact = HR_FACT_GROWTH, c.event = "*", c.days = 30;
        if (!env->fact(ctx, &c, &v) && v.type == HR_RV_NUM) x = v.n;
        break;
    case HR_SCORE_ACTIVE_USERS_7D: {
        double users = 0;
        c.fact = HR_FACT_USERS;
        if (!env->fact(ctx, &c, &v) && v.type == HR_RV_NUM) users = v.n;
        c.fact = HR_FACT_ACTIVE_USERS, c.days = 7;
        if (users > 0 && !env->fact(ctx, &c, &v) && v.type == HR_RV_NUM) x = v.n / users;
        break;
    }
    case HR_SCORE_LIMIT_PRESSURE: /* the fullest limit or meter */
        c.fact = HR_FACT_USAGE_PCT;
        for (int i = 0; i < cat->nfeatures; i++) {
            if (cat->features[i].type == HR_FEAT_BOOLEAN) continue;
            c.feature = i;
            if (!env->fact(ctx, &c, &v) && v.type == HR_RV_NUM && v.n > x) x = v.n;
        }
        break;
    case HR_SCORE_DECISION_MAKER_ACTIVE:
        c.fact = HR_FACT_ROLE_ACTIVE_DAYS, c.event = "decision_maker", c.days = 7;
        if (!env->fact(ctx, &c, &v) && v.type == HR_RV_NUM) x = v.n >= 1;
        break;
    }
    if (!(x > 0)) return 0;
    return x > 1 ? 1 : x;
}

static double score_of(const hr_catalog *cat, const hr_rule_env *env, void *ctx, int64_t now_ms,
                       int *has) {
    double sum = 0, wsum = 0;
    for (int i = 0; i < cat->nscore; i++) {
        sum += cat->score[i].weight * term(cat, &cat->score[i], env, ctx, now_ms);
        wsum += cat->score[i].weight;
    }
    *has = wsum > 0;
    return wsum > 0 ? 100.0 * sum / wsum : 0;
}

/* The task's owner for a task action. */
static char *assignee(hr_playbooks *p, const hr_catalog *cat, const hr_pb_action *ac, lookctx *l) {
    const char *a = ac->assign ? ac->assign : "owner";
    if (!strcmp(a, "owner")) {
        const char *o = lookup(l, "account.owner");
        return o ? strdup(o) : NULL;
    }
    if (strncmp(a, "team:", 5)) return strdup(a);
    for (int t = 0; t < cat->nteams; t++) {
        const hr_team *tm = &cat->teams[t];
        if (strcmp(tm->key, a + 5) || !tm->nreps) continue;
        int *n = hr_map_get(p->rr, tm->key); /* round robin, in memory */
        if (!n) {
            char *k = strdup(tm->key);
            n = calloc(1, sizeof *n);
            int err = 0;
            if (k && n) hr_map_put(p->rr, k, n, &err);
            if (!k || !n || err) {
                free(k);
                free(n);
                return strdup(tm->reps[0]);
            }
            /* the key lives as long as the map: freed with it */
        }
        return strdup(tm->reps[(*n)++ % tm->nreps]);
    }
    return NULL;
}

static int evaluate(void *ud, const hr_catalog *cat, const hr_rule_env *env, void *ctx) {
    evalres *r = ud;
    hr_playbooks *p = r->p;
    int has = 0;
    if (!r->mask) {
        r->score = score_of(cat, env, ctx, r->now_ms, &has);
        r->has_score = has;
    }
    /* the account's states, copied once (most accounts have none) */
    sigst mine[32];
    uint32_t nmine = 0;
    pthread_mutex_lock(&p->mu);
    acctsig *as = acct_get(p, r->account, r->has_score);
    if (as && r->has_score) /* the score is kept here, in the same lookup */
        as->score = r->score, as->has_score = 1, r->has_score = 0;
    for (uint32_t k = 0; as && k < as->n && nmine < 32; k++) mine[nmine++] = as->e[k];
    int overflow = as && as->n > 32;
    pthread_mutex_unlock(&p->mu);
    /* clauses the signals share run once for this account */
    uint8_t memo_buf[512], *memo = cat->signal_slots <= (int)sizeof memo_buf ? memo_buf : NULL;
    if (memo) memset(memo, 0, (size_t)cat->signal_slots);
    for (int i = 0; i < cat->nplaybooks; i++) {
        const hr_playbook *pb = &cat->playbooks[i];
        if (r->only >= 0 && i != r->only) continue;
        if (r->mask && !r->mask[i]) continue;
        if (!pb->enabled || !pb->signal) continue;
        int truth = hr_rule_test_memo(pb->signal, env, ctx, r->now_ms, memo);
        int active = 0;
        int64_t last = 0;
        const sigst *s = NULL;
        for (uint32_t k = 0; k < nmine && !s; k++)
            if (mine[k].playbook == pb->ikey) s = &mine[k];
        if (!s && overflow) { /* an account with very many: look it up */
            pthread_mutex_lock(&p->mu);
            const sigst *g = sig_get(p, r->account, pb->key, 0);
            if (g) active = g->active, last = g->last_fired_ms;
            pthread_mutex_unlock(&p->mu);
        } else if (s) {
            active = s->active;
            last = s->last_fired_ms;
        }
        int cool = !last || r->now_ms - last >= pb->cooldown * 1000;
        int fire = truth && !active && cool;
        if (!r->act) {
            if (!truth || r->ndry >= r->limit) continue;
            hr_rval v = {0};
            lookctx l = {cat, env, ctx, pb, NULL, r->score, {{0}}, 0};
            if (r->ndry++) hr_buf_putc(r->dry, ',');
            hr_buf_puts(r->dry, "{\"account\":");
            hr_buf_json_str(r->dry, r->account);
            hr_buf_puts(r->dry, ",\"value\":");
            if (pb->value && !hr_rule_eval(pb->value, env, ctx, r->now_ms, &v) && v.type == HR_RV_NUM)
                hr_buf_printf(r->dry, "%.15g", v.n);
            else
                hr_buf_json_str(r->dry, pb->value ? rval_text(&l, &v) : NULL);
            hr_buf_printf(r->dry, ",\"would_fire\":%s,\"evidence\":", fire ? "true" : "false");
            hr_rule_explain(pb->signal, env, ctx, r->now_ms, r->dry);
            hr_buf_putc(r->dry, '}');
            continue;
        }
        int changes = truth != active && !(truth && !cool);
        /* the arrays are made the first time something changes (rarely) */
        if ((changes || fire) && !r->f &&
            (!(r->f = calloc((size_t)cat->nplaybooks + 1, sizeof *r->f)) ||
             !(r->ch = calloc((size_t)cat->nplaybooks + 1, sizeof *r->ch)))) {
            r->oom = 1;
            return 0;
        }
        if (changes) r->ch[r->nch++] = (change){i, truth};
        if (!fire) continue;
        firing *f = &r->f[r->nf++];
        f->pb = i;
        lookctx *l = calloc(1, sizeof *l);
        if (!l) {
            r->oom = 1;
            return 0;
        }
        *l = (lookctx){cat, env, ctx, pb, f, r->score, {{0}}, 0};
        hr_rval v = {0};
        if (pb->value && !hr_rule_eval(pb->value, env, ctx, r->now_ms, &v)) {
            if (v.type == HR_RV_NUM) f->value = v.n, f->has_value = 1;
            const char *t = rval_text(l, &v);
            f->value_text = t ? strdup(t) : NULL;
        }
        hr_buf ev;
        hr_buf_init(&ev);
        hr_rule_explain(pb->signal, env, ctx, r->now_ms, &ev);
        f->evidence = hr_buf_failed(&ev) ? NULL : hr_buf_steal(&ev, NULL);
        hr_buf_dispose(&ev);
        f->message = render(pb->message, HR_ESC_TEXT, l);
        for (int a = 0; a < pb->nactions; a++)
            if (pb->actions[a].kind == HR_ACT_TASK && !f->task_id[0]) {
                random_id("task_", f->task_id, sizeof f->task_id);
                pthread_mutex_lock(&p->mu);
                f->owner = assignee(p, cat, &pb->actions[a], l);
                pthread_mutex_unlock(&p->mu);
            }
        f->bodies = calloc((size_t)pb->nactions + 1, sizeof *f->bodies);
        for (int a = 0; f->bodies && a < pb->nactions; a++)
            if (pb->actions[a].kind == HR_ACT_WEBHOOK)
                f->bodies[a] = webhook_body(&pb->actions[a], l, r->now_ms, &f->need_members);
        if (!f->message || !f->bodies) r->oom = 1;
        free(l);
    }
    return 0;
}

static void firing_dispose(firing *f, int nactions) {
    free(f->value_text);
    free(f->evidence);
    free(f->message);
    free(f->owner);
    for (int a = 0; f->bodies && a < nactions; a++) free(f->bodies[a]);
    free(f->bodies);
}

/* Replaces the @USERS@ slot of a sequence body with the new members. */
static char *with_members(hr_playbooks *p, const char *account, const char *body, int64_t now_ms) {
    const char *at = strstr(body, "@USERS@");
    if (!at) return strdup(body);
    hr_buf m, b;
    hr_buf_init(&m);
    hr_buf_init(&b);
    if (hr_engine_new_members(p->e, account, 7, now_ms, &m)) hr_buf_puts(&m, "[]");
    hr_buf_append(&b, body, (size_t)(at - body));
    hr_buf_append(&b, m.data, m.len);
    hr_buf_puts(&b, at + 7);
    hr_buf_dispose(&m);
    if (hr_buf_failed(&b)) {
        hr_buf_dispose(&b);
        return NULL;
    }
    return hr_buf_steal(&b, NULL);
}

/* Writes the evaluation's changes and firings, then applies them. */
/* The rows one account's evaluation writes, made ready outside any lock. */
typedef struct pending {
    evalres *r;
    hr_signal_rec *sig;
    hr_fired_rec *fr;
    hr_task_rec *tr;
    hr_outbox_rec *ob;
    char **ids, **bodies;
    int nt, nout;
    size_t maxout;
} pending;

static void pending_dispose(pending *w) {
    for (size_t i = 0; w->ids && i < w->maxout; i++) free(w->ids[i]);
    for (size_t i = 0; w->bodies && i < w->maxout; i++) free(w->bodies[i]);
    free(w->ids);
    free(w->bodies);
    free(w->sig);
    free(w->fr);
    free(w->tr);
    free(w->ob);
    memset(w, 0, sizeof *w);
}

static int prepare(hr_playbooks *p, const hr_catalog *cat, evalres *r, pending *w, hr_err *err) {
    memset(w, 0, sizeof *w);
    w->r = r;
    for (int i = 0; i < r->nf; i++) w->maxout += (size_t)cat->playbooks[r->f[i].pb].nactions;
    w->sig = calloc((size_t)r->nch + 1, sizeof *w->sig);
    w->fr = calloc((size_t)r->nf + 1, sizeof *w->fr);
    w->tr = calloc((size_t)r->nf + 1, sizeof *w->tr);
    w->ob = calloc(w->maxout + 1, sizeof *w->ob);
    w->ids = calloc(w->maxout + 1, sizeof *w->ids);
    w->bodies = calloc(w->maxout + 1, sizeof *w->bodies);
    if (!w->sig || !w->fr || !w->tr || !w->ob || !w->ids || !w->bodies) goto oom;
    for (int i = 0; i < r->nch; i++) {
        const hr_playbook *pb = &cat->playbooks[r->ch[i].pb];
        int firing_now = 0;
        for (int k = 0; k < r->nf; k++) firing_now |= r->f[k].pb == r->ch[i].pb;
        pthread_mutex_lock(&p->mu);
        sigst *s = sig_get(p, r->account, pb->key, 0);
        int64_t last = s ? s->last_fired_ms : 0;
        pthread_mutex_unlock(&p->mu);
        w->sig[i] = (hr_signal_rec){r->account, pb->key, r->ch[i].active, firing_now ? r->now_ms : last};
    }
    for (int i = 0; i < r->nf; i++) {
        firing *f = &r->f[i];
        const hr_playbook *pb = &cat->playbooks[f->pb];
        w->fr[i] = (hr_fired_rec){r->account, pb->key, r->now_ms, f->value, f->has_value, f->evidence};
        if (f->task_id[0])
            w->tr[w->nt++] = (hr_task_rec){f->task_id, r->account, pb->key, f->owner, ST_OPEN,
                                           f->message, f->evidence, r->score, r->now_ms,
                                           r->now_ms, 0};
        for (int a = 0; a < pb->nactions; a++) {
            if (pb->actions[a].kind != HR_ACT_WEBHOOK || !f->bodies[a]) continue;
            int o = w->nout;
            if (!(w->ids[o] = malloc(40))) goto oom;
            random_id("msg_", w->ids[o], 40); /* the stable webhook-id */
            w->bodies[o] = f->need_members ? with_members(p, r->account, f->bodies[a], r->now_ms)
                                           : strdup(f->bodies[a]);
            if (!w->bodies[o]) goto oom;
            w->ob[o] = (hr_outbox_rec){w->ids[o], pb->actions[a].url, pb->actions[a].secrets,
                                       w->bodies[o], pb->key, r->account, HR_OUTBOX_PENDING, 0,
                                       r->now_ms, r->now_ms, 0, 0, NULL};
            w->nout++;
        }
    }
    return 0;
oom:
    pending_dispose(w);
    return hr_err_set(err, HR_ENOMEM, "out of memory");
}

/* Writes n accounts' rows in one transaction (smu held). */
static int write_all(hr_store *s, pending *w, int n, hr_err *err) {
    int rc = s->ops->begin(s, err);
    for (int i = 0; i < n && !rc; i++) {
        evalres *r = w[i].r;
        rc = s->ops->signal_put(s, w[i].sig, r->nch, err);
        if (!rc) rc = s->ops->fired_put(s, w[i].fr, r->nf, err);
        if (!rc) rc = s->ops->task_put(s, w[i].tr, w[i].nt, err);
        if (!rc) rc = s->ops->outbox_put(s, w[i].ob, w[i].nout, err);
    }
    if (!rc)
        rc = s->ops->commit(s, err);
    else
        s->ops->rollback(s);
    return rc;
}

/* Once on disk: the states and tasks in memory. */
static void apply_mem(hr_playbooks *p, pending *w, int *fired) {
    evalres *r = w->r;
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < r->nch; i++) {
        sigst *s = sig_get(p, r->account, w->sig[i].playbook, 1);
        if (s) s->active = w->sig[i].active, s->last_fired_ms = w->sig[i].last_fired_ms;
    }
    for (int i = 0; i < w->nt; i++) {
        const hr_task_rec *tr = &w->tr[i];
        task *t = calloc(1, sizeof *t);
        if (!t) break;
        snprintf(t->id, sizeof t->id, "%s", tr->id);
        t->account = strdup(tr->account);
        t->playbook = strdup(tr->playbook);
        t->owner = tr->owner ? strdup(tr->owner) : NULL;
        t->message = strdup(tr->message ? tr->message : "");
        t->evidence = strdup(tr->evidence ? tr->evidence : "{}");
        t->status = ST_OPEN;
        t->score = tr->score;
        t->created_ms = t->updated_ms = tr->created_ms;
        if (!t->account || !t->playbook || !t->message || !t->evidence || task_add(p, t)) task_free(t);
    }
    p->stats.fired += r->nf;
    pthread_mutex_unlock(&p->mu);
    if (fired) *fired += r->nf;
}

/* Writes the changes and firings of n evaluations (one transaction), then
 * applies them; wakes the webhook sender when outbox rows were written. */
static int apply_many(hr_playbooks *p, const hr_catalog *cat, evalres **rs, int n, int *fired,
                      hr_err *err) {
    pending *w = calloc((size_t)n + 1, sizeof *w);
    int rc = 0, np = 0, nout = 0;
    if (!w) return hr_err_set(err, HR_ENOMEM, "out of memory");
    for (int i = 0; i < n && !rc; i++) {
        rc = prepare(p, cat, rs[i], &w[np], err);
        if (!rc) nout += w[np++].nout;
    }
    if (!rc && p->store && np) {
        pthread_mutex_lock(&p->smu);
        rc = write_all(p->store, w, np, err);
        pthread_mutex_unlock(&p->smu);
    }
    for (int i = 0; i < np; i++) {
        if (!rc) apply_mem(p, &w[i], fired);
        pending_dispose(&w[i]);
    }
    free(w);
    if (!rc && nout && p->kick) p->kick(p->kick_ud);
    return rc;
}

static void evalres_dispose(evalres *r, const hr_catalog *cat) {
    for (int i = 0; i < r->nf; i++) firing_dispose(&r->f[i], cat->playbooks[r->f[i].pb].nactions);
    free(r->f);
    free(r->ch);
}

/* Records the score of an evaluation; 1 when it has something to write. */
static int settle(hr_playbooks *p, evalres *r) {
    if (r->oom) return 0;
    if (r->has_score) {
        pthread_mutex_lock(&p->mu);
        score_set(p, r->account, r->score);
        pthread_mutex_unlock(&p->mu);
    }
    return r->act && (r->nch || r->nf);
}

/* Acts on n evaluations (one transaction for all) and frees them. */
static int finish_many(hr_playbooks *p, evalres *rs, int n, int *fired, hr_err *err) {
    hr_catalog *cat = hr_engine_catalog(p->e);
    evalres **act = calloc((size_t)n + 1, sizeof *act);
    int na = 0, rc = 0;
    for (int i = 0; i < n; i++) {
        if (rs[i].oom && !rc) rc = hr_err_set(err, HR_ENOMEM, "out of memory evaluating playbooks");
        if (settle(p, &rs[i]) && act) act[na++] = &rs[i];
    }
    if (!act)
        rc = hr_err_set(err, HR_ENOMEM, "out of memory");
    else if (na) {
        int r2 = apply_many(p, cat, act, na, fired, err);
        if (r2) rc = r2;
    }
    for (int i = 0; i < n; i++) evalres_dispose(&rs[i], cat);
    free(act);
    hr_catalog_release(cat);
    return rc;
}

/* Evaluates one account into *r (to be finished); HR_ENOTFOUND when it is
 * gone (r then holds nothing). */
static int eval_into(hr_playbooks *p, const char *account, int64_t now_ms, evalres *r) {
    *r = (evalres){.p = p, .account = account, .now_ms = now_ms, .act = 1, .only = -1};
    int rc = hr_engine_with_rules(p->e, account, NULL, now_ms, evaluate, r);
    if (rc == HR_ENOTFOUND) {
        evalres_dispose(r, NULL);
        /* deleted: it leaves the ranking (GET /v1/accounts?sort=score) */
        pthread_mutex_lock(&p->mu);
        acctsig *as = acct_get(p, account, 0);
        if (as) as->has_score = 0;
        pthread_mutex_unlock(&p->mu);
    }
    return rc;
}

int hr_playbooks_eval_account(hr_playbooks *p, const char *account, int64_t now_ms, int *fired,
                              hr_err *err) {
    evalres r;
    if (eval_into(p, account, now_ms ? now_ms : hr_time_now_ms(), &r) == HR_ENOTFOUND)
        return hr_err_set(err, HR_ENOTFOUND, "no account '%s'", account);
    return finish_many(p, &r, 1, fired, err);
}

/* The queued accounts, a group at a time, each group's writes in one
 * transaction: an import moves thousands of accounts a second, and a
 * commit for each took the database's one write lock from ingestion as
 * often. Frees the ids. */
#define QUEUE_GROUP 256
/* Rounds of fewer accounts start at least this long after the previous
 * one: a burst's accounts, each queued again by every batch that moves it,
 * are evaluated together (a commit writes every page it touched, whole,
 * and holds the database's one writer, which ingestion's log waits for),
 * and a busy account once a round instead of once a batch. A signal is
 * for a sales rep: a second is nothing to them (10M import: +4% against
 * 250 ms, three runs each, alternating). */
#define QUEUE_GAP_NS 1000000000LL

static void eval_queued(hr_playbooks *p, char **ids, size_t n) {
    evalres *rs = calloc(QUEUE_GROUP, sizeof *rs);
    int64_t since = hr_time_mono_ns();
    for (size_t i = 0, from = 0; i < n; from = i) {
        int k = 0;
        int64_t now = hr_time_now_ms();
        for (; i < n && (k < QUEUE_GROUP || !rs); i++) {
            if (p->stop) continue;
            if (!rs) { /* out of memory: one at a time */
                hr_err err = {0};
                hr_playbooks_eval_account(p, ids[i], now, NULL, &err);
            } else if (eval_into(p, ids[i], now, &rs[k]) != HR_ENOTFOUND) {
                k++;
            }
            hr_time_pace(&since, 500000); /* requests first, as in a sweep */
        }
        hr_err err = {0};
        if (k) finish_many(p, rs, k, NULL, &err);
        for (size_t j = from; j < i; j++) free(ids[j]);
    }
    free(rs);
}

/* A sweep evaluates under the engine's lock a slice at a time; the
 * results wait in a list until the slice's lock is released. */
typedef struct sweepctx {
    hr_playbooks *p;
    int64_t now_ms;
    const unsigned char *mask;
    evalres *rs;
    char **ids;
    int n, cap;
    int act, only, limit;
    hr_buf *dry;
    int ndry, evaluated;
} sweepctx;

static int sweep_one(void *ud, const char *account, const hr_catalog *cat,
                     const hr_rule_env *env, void *ctx) {
    sweepctx *s = ud;
    if (s->n == s->cap) return 0;
    evalres *r = &s->rs[s->n];
    /* the id is borrowed while the engine's lock is held: most accounts
     * change nothing, and copying a million ids cost more than their rules */
    *r = (evalres){.p = s->p, .account = account, .now_ms = s->now_ms, .act = s->act,
                   .only = s->only, .mask = s->mask, .dry = s->dry, .ndry = s->ndry,
                   .limit = s->limit};
    s->evaluated++;
    evaluate(r, cat, env, ctx);
    s->ndry = r->ndry;
    if (r->has_score && !r->oom) {
        pthread_mutex_lock(&s->p->mu);
        score_set(s->p, account, r->score);
        pthread_mutex_unlock(&s->p->mu);
        r->has_score = 0;
    }
    if (!r->oom && !(r->act && (r->nch || r->nf))) {
        evalres_dispose(r, cat); /* nothing to write */
        return 0;
    }
    char *id = strdup(account); /* kept for the writes after the lock */
    if (!id) {
        evalres_dispose(r, cat);
        return HR_ENOMEM;
    }
    r->account = id;
    s->ids[s->n++] = id;
    return 0;
}

static int sweep(hr_playbooks *p, int64_t now_ms, const unsigned char *mask, int act, int only,
                 int limit, hr_buf *dry, int *fired, int *evaluated, hr_err *err) {
    sweepctx s = {p, now_ms, mask, NULL, NULL, 0, EVAL_SLICE, act, only, limit, dry, 0, 0};
    size_t pos = 0;
    int more = 1, rc = 0;
    int64_t since = hr_time_mono_ns();
    if (!(s.rs = calloc(EVAL_SLICE, sizeof *s.rs)) || !(s.ids = calloc(EVAL_SLICE, sizeof *s.ids))) {
        free(s.rs);
        return hr_err_set(err, HR_ENOMEM, "out of memory");
    }
    while (more > 0 && !rc) {
        s.n = 0;
        /* a quarter slice per lock hold, and a pause between them: the
         * sweep shares the request threads' cores (hr_time_pace) */
        for (int got = 0; more > 0 && got < EVAL_SLICE; got += LOCK_SLICE) {
            more = hr_engine_sweep(p->e, &pos, LOCK_SLICE, now_ms, sweep_one, &s);
            hr_time_pace(&since, 500000);
        }
        if (more < 0) rc = hr_err_set(err, more, "sweep failed");
        /* the slice's firings in one transaction: one commit (one fsync)
         * per slice, not per account */
        hr_err e2 = {0};
        int r2 = finish_many(p, s.rs, s.n, fired, &e2);
        if (r2 && !rc) rc = r2, *err = e2;
        for (int i = 0; i < s.n; i++) free(s.ids[i]);
        if (p->stop) break;
    }
    if (evaluated) *evaluated = s.evaluated;
    free(s.rs);
    free(s.ids);
    return rc;
}

/* A sweep: every playbook (full), or those whose signal reads the clock;
 * the latter skip the walk when there are none. */
static int sweep_kind(hr_playbooks *p, int64_t now_ms, int full, int *fired, hr_err *err) {
    int64_t t0 = hr_time_now_ms();
    int n = 0, evaluated = 0, rc = 0;
    unsigned char *mask = NULL;
    if (!now_ms) now_ms = t0;
    if (!full) {
        hr_catalog *cat = hr_engine_catalog(p->e);
        int any = 0;
        if ((mask = calloc((size_t)cat->nplaybooks + 1, 1)))
            for (int i = 0; i < cat->nplaybooks; i++)
                any |= mask[i] = hr_rule_clock_of(cat->playbooks[i].signal) == HR_CLOCK_CONTINUOUS;
        hr_catalog_release(cat);
        if (!mask) return hr_err_set(err, HR_ENOMEM, "out of memory");
        if (!any) {
            free(mask);
            return 0;
        }
    }
    rc = sweep(p, now_ms, mask, 1, -1, 0, NULL, &n, &evaluated, err);
    free(mask);
    pthread_mutex_lock(&p->mu);
    p->stats.sweeps++;
    p->stats.last_sweep_ms = hr_time_now_ms() - t0;
    p->stats.last_sweep_accounts = evaluated;
    pthread_mutex_unlock(&p->mu);
    if (fired) *fired += n;
    return rc;
}

int hr_playbooks_sweep(hr_playbooks *p, int64_t now_ms, int *fired, hr_err *err) {
    return sweep_kind(p, now_ms, 1, fired, err);
}

void hr_playbooks_get_stats(hr_playbooks *p, hr_playbooks_stats *out) {
    pthread_mutex_lock(&p->mu);
    *out = p->stats;
    pthread_mutex_unlock(&p->mu);
}

int hr_playbooks_dry_run(hr_playbooks *p, const char *playbook, int limit, int64_t now_ms,
                         hr_buf *out, hr_err *err) {
    hr_catalog *cat = hr_engine_catalog(p->e);
    int pi = hr_catalog_playbook(cat, playbook), evaluated = 0, rc = 0;
    hr_catalog_release(cat);
    if (pi < 0) return hr_err_set(err, HR_ENOTFOUND, "no playbook '%s'", playbook);
    hr_buf_puts(out, "{\"playbook\":");
    hr_buf_json_str(out, playbook);
    hr_buf_puts(out, ",\"matches\":[");
    rc = sweep(p, now_ms ? now_ms : hr_time_now_ms(), NULL, 0, pi, limit > 0 ? limit : 100, out,
               NULL, &evaluated, err);
    hr_buf_printf(out, "],\"evaluated\":%d}", evaluated);
    return rc;
}

/* ---- the thread ----------------------------------------------------------- */

/* Queues an account for evaluation, once (mu held). */
static void enqueue(hr_playbooks *p, const char *account) {
    if (p->nqueue >= QUEUE_MAX || hr_map_get(p->queued, account)) return;
    char *id = strdup(account);
    int err = 0;
    if (!id) return;
    hr_map_put(p->queued, id, id, &err);
    if (err) {
        free(id);
        return;
    }
    p->queue[p->nqueue++] = id;
}

static void on_ingested(void *ud, const hr_ingested *evs, int n) {
    hr_playbooks *p = ud;
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < n; i++) /* a batch's events mostly follow their account */
        if (!i || strcmp(evs[i].account, evs[i - 1].account)) enqueue(p, evs[i].account);
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void hr_playbooks_touch(hr_playbooks *p, const char *account) {
    pthread_mutex_lock(&p->mu);
    enqueue(p, account);
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static void *run(void *arg) {
    hr_playbooks *p = arg;
    /* requests first: this thread yields the core to them (nice 10), and
     * its pauses (hr_time_pace) end on time */
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
    prctl(PR_SET_TIMERSLACK, 1000UL);
    int64_t next_sweep = hr_time_now_ms() + p->sweep_ms;
    int64_t full_day = -1; /* the UTC day of the last full sweep */
    int64_t last_round = 0;  /* hr_time_mono_ns of the last evaluation round */
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        /* an empty queue waits up to 100 ms; a short one until QUEUE_GAP
         * after the last round, gathering the accounts moving meanwhile */
        int64_t wait_ns = !p->nqueue ? 100000000LL
                          : p->nqueue < QUEUE_GROUP ? last_round + QUEUE_GAP_NS - hr_time_mono_ns()
                                                    : 0;
        if (wait_ns > 0) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += (long)wait_ns;
            while (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
            pthread_cond_timedwait(&p->cv, &p->mu, &ts);
            if (p->nqueue && p->nqueue < QUEUE_GROUP && !p->stop &&
                hr_time_mono_ns() < last_round + QUEUE_GAP_NS)
                continue; /* woken by an enqueue: keep gathering */
        }
        if (p->nqueue) last_round = hr_time_mono_ns();
        /* take the queue */
        size_t n = p->nqueue;
        char **batch = n ? malloc(n * sizeof *batch) : NULL;
        if (batch) {
            memcpy(batch, p->queue, n * sizeof *batch);
            for (size_t i = 0; i < n; i++) hr_map_del(p->queued, batch[i]);
            p->nqueue = 0;
        }
        pthread_mutex_unlock(&p->mu);
        if (batch) eval_queued(p, batch, n);
        free(batch);
        if (((p->sweep_ms > 0 && hr_time_now_ms() >= next_sweep) || p->sweep_now) && !p->stop) {
            hr_err err = {0};
            int64_t now = hr_time_now_ms(), day = now / 86400000LL;
            int full = p->sweep_now || day != full_day;
            p->sweep_now = 0;
            sweep_kind(p, now, full, NULL, &err);
            if (full) full_day = day;
            next_sweep = hr_time_now_ms() + p->sweep_ms;
        }
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

void hr_playbooks_request_sweep(hr_playbooks *p) {
    pthread_mutex_lock(&p->mu);
    p->sweep_now = 1;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

int hr_playbooks_start(hr_playbooks *p, int64_t sweep_ms, hr_err *err) {
    p->sweep_ms = sweep_ms;
    if (pthread_create(&p->th, NULL, run, p))
        return hr_err_set(err, HR_EINTERNAL, "cannot start the playbooks thread");
    p->started = 1;
    return 0;
}

/* ---- inbox ------------------------------------------------------------------ */

static void task_json(hr_buf *b, const task *t, double score, int64_t now_ms) {
    const char *st = t->status == ST_SNOOZED && now_ms >= t->snooze_ms ? ST_OPEN : t->status;
    hr_buf_puts(b, "{\"id\":");
    hr_buf_json_str(b, t->id);
    hr_buf_puts(b, ",\"account\":");
    hr_buf_json_str(b, t->account);
    hr_buf_puts(b, ",\"playbook\":");
    hr_buf_json_str(b, t->playbook);
    hr_buf_puts(b, ",\"owner\":");
    hr_buf_json_str(b, t->owner);
    hr_buf_puts(b, ",\"message\":");
    hr_buf_json_str(b, t->message);
    hr_buf_puts(b, ",\"evidence\":");
    hr_buf_puts(b, t->evidence);
    hr_buf_printf(b, ",\"score\":%.0f,\"status\":", score);
    hr_buf_json_str(b, st);
    hr_buf_puts(b, ",\"created_at\":");
    hr_buf_json_time(b, t->created_ms / 1000);
    hr_buf_puts(b, ",\"updated_at\":");
    hr_buf_json_time(b, t->updated_ms / 1000);
    hr_buf_puts(b, ",\"snoozed_until\":");
    if (st == ST_SNOOZED)
        hr_buf_json_time(b, t->snooze_ms / 1000);
    else
        hr_buf_puts(b, "null");
    hr_buf_putc(b, '}');
}

typedef struct ranked {
    task *t;
    double score;
} ranked;

static int by_score(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->t->created_ms > y->t->created_ms ? -1 : x->t->created_ms < y->t->created_ms;
}

static double current_score(hr_playbooks *p, const task *t) {
    acctsig *as = hr_map_get(p->sig, t->account);
    return as && as->has_score ? as->score : t->score;
}

int hr_playbooks_inbox(hr_playbooks *p, const char *owner, const char *status, int limit,
                       int64_t now_ms, hr_buf *out, hr_err *err) {
    const char *want = status ? status_of(status) : NULL;
    if (status && !want)
        return hr_err_set(err, HR_EINVAL, "status is open, claimed, snoozed, completed or dismissed");
    if (limit <= 0 || limit > 1000) limit = 100;
    if (!now_ms) now_ms = hr_time_now_ms();
    pthread_mutex_lock(&p->mu);
    ranked *rk = calloc(p->ntasks + 1, sizeof *rk);
    size_t n = 0;
    if (!rk) {
        pthread_mutex_unlock(&p->mu);
        return hr_err_set(err, HR_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < p->ntasks; i++) {
        task *t = p->tasks[i];
        const char *st = t->status == ST_SNOOZED && now_ms >= t->snooze_ms ? ST_OPEN : t->status;
        if (owner && (!t->owner || strcmp(owner, t->owner))) continue;
        if (want ? st != want : (st != ST_OPEN && st != ST_CLAIMED)) continue;
        rk[n++] = (ranked){t, current_score(p, t)};
    }
    qsort(rk, n, sizeof *rk, by_score);
    hr_buf_puts(out, "{\"tasks\":[");
    for (size_t i = 0; i < n && i < (size_t)limit; i++) {
        if (i) hr_buf_putc(out, ',');
        task_json(out, rk[i].t, rk[i].score, now_ms);
    }
    hr_buf_puts(out, "]}");
    pthread_mutex_unlock(&p->mu);
    free(rk);
    return 0;
}

int hr_playbooks_task_action(hr_playbooks *p, const char *id, const char *action,
                             const char *rep, int64_t until_ms, int64_t now_ms, hr_buf *out,
                             hr_err *err) {
    int rc = 0;
    if (!now_ms) now_ms = hr_time_now_ms();
    pthread_mutex_lock(&p->mu);
    task *t = hr_map_get(p->task_ix, id);
    if (!t) {
        pthread_mutex_unlock(&p->mu);
        return hr_err_set(err, HR_ENOTFOUND, "no task '%s'", id);
    }
    const char *st = t->status == ST_SNOOZED && now_ms >= t->snooze_ms ? ST_OPEN : t->status;
    const char *to = NULL;
    int64_t snooze = 0;
    char *owner = t->owner ? strdup(t->owner) : NULL;
    int done = st == ST_COMPLETED || st == ST_DISMISSED;
    if (!strcmp(action, "claim")) {
        if (done) rc = hr_err_set(err, HR_ECONFLICT, "task '%s' is %s", id, st);
        to = ST_CLAIMED;
        if (rep) free(owner), owner = strdup(rep);
    } else if (!strcmp(action, "complete")) {
        if (done) rc = hr_err_set(err, HR_ECONFLICT, "task '%s' is %s", id, st);
        to = ST_COMPLETED;
    } else if (!strcmp(action, "dismiss")) {
        if (done) rc = hr_err_set(err, HR_ECONFLICT, "task '%s' is %s", id, st);
        to = ST_DISMISSED;
    } else if (!strcmp(action, "snooze")) {
        if (done) rc = hr_err_set(err, HR_ECONFLICT, "task '%s' is %s", id, st);
        if (until_ms && until_ms <= now_ms) rc = hr_err_set(err, HR_EINVAL, "'until' is in the past");
        to = ST_SNOOZED;
        snooze = until_ms ? until_ms : now_ms + 86400000LL;
    } else if (!strcmp(action, "reopen")) {
        to = ST_OPEN;
    } else {
        rc = hr_err_set(err, HR_EINVAL, "action is claim, complete, snooze, dismiss or reopen");
    }
    hr_task_rec rec = {t->id, t->account, t->playbook, owner, to, t->message, t->evidence,
                       current_score(p, t), t->created_ms, now_ms, snooze};
    pthread_mutex_unlock(&p->mu);
    if (!rc && p->store) {
        pthread_mutex_lock(&p->smu);
        rc = p->store->ops->task_put(p->store, &rec, 1, err);
        pthread_mutex_unlock(&p->smu);
    }
    if (!rc) {
        pthread_mutex_lock(&p->mu);
        t->status = to;
        t->snooze_ms = snooze;
        t->updated_ms = now_ms;
        free(t->owner);
        t->owner = owner;
        owner = NULL;
        if (out) task_json(out, t, current_score(p, t), now_ms);
        pthread_mutex_unlock(&p->mu);
    }
    free(owner);
    return rc;
}

/* ---- reads ---------------------------------------------------------------- */

double hr_playbooks_score(hr_playbooks *p, const char *account) {
    pthread_mutex_lock(&p->mu);
    acctsig *as = hr_map_get(p->sig, account);
    double v = as && as->has_score ? as->score : -1;
    pthread_mutex_unlock(&p->mu);
    return v;
}

static int by_score_only(const void *a, const void *b) {
    const acctsig *const *x = a, *const *y = b;
    if ((*x)->score != (*y)->score) return (*x)->score > (*y)->score ? -1 : 1;
    return strcmp((*x)->account, (*y)->account);
}

int hr_playbooks_top(hr_playbooks *p, int limit, hr_buf *out) {
    if (limit <= 0 || limit > 1000) limit = 100;
    pthread_mutex_lock(&p->mu);
    size_t n = hr_map_count(p->sig), i = 0, pos = 0;
    acctsig **all = calloc(n + 1, sizeof *all);
    const char *k;
    void *v;
    while (all && hr_map_next(p->sig, &pos, &k, &v))
        if (((acctsig *)v)->has_score) all[i++] = v;
    if (all) qsort(all, i, sizeof *all, by_score_only);
    hr_buf_puts(out, "{\"accounts\":[");
    for (size_t j = 0; all && j < i && j < (size_t)limit; j++) {
        if (j) hr_buf_putc(out, ',');
        hr_buf_puts(out, "{\"id\":");
        hr_buf_json_str(out, all[j]->account);
        hr_buf_printf(out, ",\"score\":%.1f}", all[j]->score);
    }
    hr_buf_puts(out, "]}");
    pthread_mutex_unlock(&p->mu);
    free(all);
    return 0;
}

typedef struct histctx {
    hr_buf *out;
    int n;
} histctx;

static int hist_row(void *ud, const hr_fired_rec *r) {
    histctx *h = ud;
    if (h->n++) hr_buf_putc(h->out, ',');
    hr_buf_puts(h->out, "{\"playbook\":");
    hr_buf_json_str(h->out, r->playbook);
    hr_buf_puts(h->out, ",\"fired_at\":");
    hr_buf_json_time(h->out, r->at_ms / 1000);
    hr_buf_puts(h->out, ",\"value\":");
    if (r->has_value)
        hr_buf_printf(h->out, "%.15g", r->value);
    else
        hr_buf_puts(h->out, "null");
    hr_buf_puts(h->out, ",\"evidence\":");
    hr_buf_puts(h->out, r->evidence ? r->evidence : "{}");
    hr_buf_putc(h->out, '}');
    return 0;
}

int hr_playbooks_history(hr_playbooks *p, const char *account, int limit, hr_buf *out,
                         hr_err *err) {
    histctx h = {out, 0};
    int rc = 0;
    if (limit <= 0 || limit > 1000) limit = 100;
    hr_buf_puts(out, "{\"account\":");
    hr_buf_json_str(out, account);
    double sc = hr_playbooks_score(p, account);
    hr_buf_puts(out, ",\"score\":");
    if (sc >= 0)
        hr_buf_printf(out, "%.1f", sc);
    else
        hr_buf_puts(out, "null");
    hr_buf_puts(out, ",\"signals\":[");
    if (p->store) {
        pthread_mutex_lock(&p->smu);
        rc = p->store->ops->fired_list(p->store, account, limit, hist_row, &h, err);
        pthread_mutex_unlock(&p->smu);
    }
    hr_buf_puts(out, "]}");
    return rc;
}

/* ---- lifecycle -------------------------------------------------------------- */

static int load_sig(void *ud, const hr_signal_rec *r) {
    hr_playbooks *p = ud;
    sigst *s = sig_get(p, r->account, r->playbook, 1);
    if (!s) return HR_ENOMEM;
    s->active = r->active;
    s->last_fired_ms = r->last_fired_ms;
    return 0;
}

static int load_task(void *ud, const hr_task_rec *r) {
    hr_playbooks *p = ud;
    task *t = calloc(1, sizeof *t);
    if (!t) return HR_ENOMEM;
    snprintf(t->id, sizeof t->id, "%s", r->id);
    t->account = strdup(r->account);
    t->playbook = strdup(r->playbook);
    t->owner = r->owner ? strdup(r->owner) : NULL;
    t->message = strdup(r->message ? r->message : "");
    t->evidence = strdup(r->evidence ? r->evidence : "{}");
    t->status = status_of(r->status) ? status_of(r->status) : ST_OPEN;
    t->score = r->score;
    t->created_ms = r->created_ms;
    t->updated_ms = r->updated_ms;
    t->snooze_ms = r->snooze_until_ms;
    if (!t->account || !t->playbook || !t->message || !t->evidence || task_add(p, t)) {
        task_free(t);
        return HR_ENOMEM;
    }
    return 0;
}

int hr_playbooks_new(hr_engine *e, hr_store *store, void (*kick)(void *ud), void *kick_ud,
                     hr_playbooks **out, hr_err *err) {
    hr_playbooks *p = calloc(1, sizeof *p);
    int rc = 0;
    *out = NULL;
    if (p) {
        pthread_mutex_init(&p->mu, NULL);
        pthread_mutex_init(&p->smu, NULL);
        pthread_cond_init(&p->cv, NULL);
    }
    if (!p || !(p->sig = hr_map_new(1024)) ||
        !(p->task_ix = hr_map_new(256)) || !(p->queued = hr_map_new(256)) ||
        !(p->rr = hr_map_new(8)) || !(p->queue = calloc(QUEUE_MAX, sizeof *p->queue))) {
        hr_playbooks_free(p);
        return hr_err_set(err, HR_ENOMEM, "out of memory");
    }
    p->store = store;
    p->kick = kick;
    p->kick_ud = kick_ud;
    if (store && ((rc = store->ops->signal_load(store, load_sig, p, err)) ||
                  (rc = store->ops->task_load(store, load_task, p, err)))) {
        if (rc == HR_ENOMEM) hr_err_set(err, HR_ENOMEM, "out of memory loading playbook state");
        hr_playbooks_free(p);
        return rc;
    }
    if (hr_engine_add_ingest_hook(e, on_ingested, p)) {
        hr_playbooks_free(p);
        return hr_err_set(err, HR_ENOMEM, "too many ingest hooks");
    }
    p->e = e;
    *out = p;
    return 0;
}

void hr_playbooks_free(hr_playbooks *p) {
    if (!p) return;
    if (p->e) hr_engine_remove_ingest_hook(p->e, on_ingested, p);
    if (p->started) {
        pthread_mutex_lock(&p->mu);
        p->stop = 1;
        pthread_cond_signal(&p->cv);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->th, NULL);
    }
    size_t pos = 0;
    const char *k;
    void *v;
    while (p->sig && hr_map_next(p->sig, &pos, &k, &v)) {
        free(((acctsig *)v)->e);
        free(v);
    }
    pos = 0;
    while (p->rr && hr_map_next(p->rr, &pos, &k, &v)) {
        free((char *)k);
        free(v);
    }
    for (size_t i = 0; i < p->ntasks; i++) task_free(p->tasks[i]);
    for (size_t i = 0; p->queue && i < p->nqueue; i++) free(p->queue[i]);
    free(p->queue);
    free(p->tasks);
    hr_map_free(p->sig);
    hr_map_free(p->task_ix);
    hr_map_free(p->queued);
    hr_map_free(p->rr);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->smu);
    pthread_cond_destroy(&p->cv);
    free(p);
}
