/* check.c: `headroom check ACCOUNT FEATURE [QTY]` against a running server
 * (over HTTP with libcurl) or straight from a database file (loads the
 * engine in-process: the same decision code headroomd runs). */
#include <curl/curl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "api/app.h"
#include "entitle/engine.h"
#include "err.h"

static size_t collect(char *p, size_t sz, size_t n, void *ud) {
    hr_buf_append(ud, p, sz * n);
    return sz * n;
}

static int over_http(const char *url, const char *key, const char *account, const char *feature,
                     long long qty) {
    hr_buf body, resp, u;
    hr_buf_init(&body);
    hr_buf_init(&resp);
    hr_buf_init(&u);
    int rc = 1;
    hr_buf_puts(&body, "{\"account\":");
    hr_buf_json_str(&body, account);
    hr_buf_puts(&body, ",\"feature\":");
    hr_buf_json_str(&body, feature);
    hr_buf_printf(&body, ",\"quantity\":%lld}", qty);
    hr_buf_printf(&u, "%s/v1/check", url);
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    char auth[600];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", key ? key : "");
    h = curl_slist_append(h, auth);
    h = curl_slist_append(h, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, u.data);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (cc != CURLE_OK) {
        fprintf(stderr, "headroom: %s: %s\n", u.data, curl_easy_strerror(cc));
    } else {
        printf("%s\n", resp.data ? resp.data : "");
        rc = status == 200 ? (strstr(resp.data ? resp.data : "", "\"allowed\":true") ? 0 : 3) : 1;
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    hr_buf_dispose(&body);
    hr_buf_dispose(&resp);
    hr_buf_dispose(&u);
    return rc;
}

static int from_db(const char *db, const char *config, const char *account, const char *feature,
                   long long qty) {
    hr_catalog *cat = NULL;
    hr_store *s = NULL;
    hr_engine *e = NULL;
    hr_err err = {0};
    char *json = NULL;
    int rc = 1;
    if (hr_cli_open(config, db, &cat, &s)) goto out;
    hr_app_prefer_api_catalog(config, s, &cat); /* the catalog headroomd would use */
    if (!(e = hr_engine_new(cat)) ||
        hr_engine_attach_store(e, s, &err)) {
        fprintf(stderr, "headroom: %s: %s\n", db, err.message);
        goto out;
    }
    if (hr_engine_check_json(e, account, feature, qty, 0, &json)) goto out;
    printf("%s\n", json);
    rc = strstr(json, "\"allowed\":true") ? 0 : 3;
out:
    free(json);
    hr_engine_free(e);
    hr_store_close(s);
    if (cat) hr_catalog_release(cat);
    return rc;
}

int hr_cmd_check(int argc, char **argv) {
    const char *url = getenv("HEADROOM_URL"), *key = getenv("HEADROOM_SECRET_KEY");
    const char *db = NULL, *config = "headroom.yaml";
    static struct option opts[] = {{"url", 1, 0, 'u'}, {"key", 1, 0, 'k'}, {"db", 1, 0, 'd'},
                                   {"config", 1, 0, 'c'}, {0, 0, 0, 0}};
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "u:k:d:c:", opts, NULL)) != -1) {
        switch (ch) {
        case 'u': url = optarg; break;
        case 'k': key = optarg; break;
        case 'd': db = optarg; break;
        case 'c': config = optarg; break;
        default: goto usage;
        }
    }
    if (argc - optind < 2 || argc - optind > 3) goto usage;
    const char *account = argv[optind], *feature = argv[optind + 1];
    long long qty = 1;
    if (argc - optind == 3) {
        char *end;
        qty = strtoll(argv[optind + 2], &end, 10);
        if (*end || qty < 0) goto usage;
    }
    if (db) return from_db(db, config, account, feature, qty);
    if (!url) url = "http://127.0.0.1:8080";
    return over_http(url, key, account, feature, qty);
usage:
    fprintf(stderr, "usage: headroom check [--url URL --key sk_... | --db PATH --config FILE] "
                    "ACCOUNT FEATURE [QTY]\n"
                    "exit status: 0 allowed, 3 not allowed, 1 error\n");
    return 2;
}
