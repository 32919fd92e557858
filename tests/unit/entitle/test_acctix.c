/* test_acctix.c: the account index (acctix.h) against a plain array of
 * what it should hold: inserts, replacements, deletions (backward shift),
 * growth, the sorted bulk insert, iteration, and ids of every length class
 * (two words, kept in the slot, compared through the account, past the
 * tag's 255). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "entitle/acctix.h"
#include "entitle/entitle_int.h"
#include "map.h"

static hr_account *acct(const char *id) {
    size_t n = strlen(id);
    hr_account *a = calloc(1, sizeof *a + n + 1);
    assert_non_null(a);
    memcpy(a->id, id, n + 1);
    return a;
}

/* Ids of lengths 1 to 300, cycling, all distinct: "k<i>" padded with 'x'. */
static char *make_id(int i) {
    static const int lens[] = {1, 3, 4, 8, 11, 16, 17, 36, 40, 41, 128, 254, 255, 300};
    size_t len = (size_t)lens[i % (int)(sizeof lens / sizeof *lens)];
    char head[32];
    int hn = snprintf(head, sizeof head, "%x", i);
    if (len < (size_t)hn) len = (size_t)hn; /* short lengths: the number itself */
    char *s = malloc(len + 1);
    assert_non_null(s);
    memset(s, 'x', len);
    memcpy(s + len - (size_t)hn, head, (size_t)hn); /* the number at the end: tails differ */
    s[len] = 0;
    return s;
}

static const hr_acct_slot *find(const hr_acctix *ix, const char *id) {
    hr_acctix_key k;
    hr_acctix_key_of(id, &k);
    return hr_acctix_find(ix, &k);
}

static void insert_find_delete(void **state) {
    (void)state;
    enum { N = 20000 };
    hr_acctix *ix = hr_acctix_new(4); /* grows many times */
    assert_non_null(ix);
    char **ids = calloc(N, sizeof *ids);
    hr_account **as = calloc(N, sizeof *as);
    assert_non_null(ids);
    assert_non_null(as);
    for (int i = 0; i < N; i++) {
        ids[i] = make_id(i);
        as[i] = acct(ids[i]);
        int err = 1;
        assert_null(hr_acctix_put(ix, as[i], &err));
        assert_int_equal(err, 0);
    }
    assert_int_equal(hr_acctix_count(ix), N);
    /* a summary written through hr_acctix_sum is the one find returns */
    for (int i = 0; i < N; i++) {
        hr_acct_sum *s = hr_acctix_sum(ix, ids[i]);
        assert_non_null(s);
        assert_int_equal(s->plain, 0);
        s->uval[1] = i;
    }
    for (int i = 0; i < N; i++) {
        const hr_acct_slot *s = find(ix, ids[i]);
        assert_non_null(s);
        assert_ptr_equal(s->acct, as[i]);
        assert_int_equal(s->sum.uval[1], i);
        assert_ptr_equal(hr_acctix_get(ix, ids[i]), as[i]);
    }
    /* ids that differ from stored ones only in length or last byte */
    assert_null(hr_acctix_get(ix, "nope"));
    char near[400];
    snprintf(near, sizeof near, "%sx", ids[N - 1]);
    assert_null(hr_acctix_get(ix, near));
    snprintf(near, sizeof near, "%s", ids[N - 2]);
    near[strlen(near) - 1] ^= 1;
    assert_null(hr_acctix_get(ix, near));
    /* deleting every third: the rest stay found, with their summaries */
    for (int i = 0; i < N; i += 3) assert_ptr_equal(hr_acctix_del(ix, ids[i]), as[i]);
    assert_null(hr_acctix_del(ix, ids[0]));
    for (int i = 0; i < N; i++) {
        const hr_acct_slot *s = find(ix, ids[i]);
        if (i % 3 == 0) {
            assert_null(s);
            continue;
        }
        assert_non_null(s);
        assert_ptr_equal(s->acct, as[i]);
        assert_int_equal(s->sum.uval[1], i);
    }
    /* iteration sees each remaining account once */
    size_t pos = 0, seen = 0;
    hr_acct_slot *s;
    while (hr_acctix_next(ix, &pos, &s)) {
        assert_ptr_equal(hr_acctix_get(ix, s->acct->id), s->acct);
        seen++;
    }
    assert_int_equal(seen, hr_acctix_count(ix));
    assert_int_equal(seen, N - (N + 2) / 3);
    /* replacing an account clears its summary */
    hr_account *fresh = acct(ids[1]);
    assert_ptr_equal(hr_acctix_put(ix, fresh, NULL), as[1]);
    assert_ptr_equal(find(ix, ids[1])->acct, fresh);
    assert_int_equal(find(ix, ids[1])->sum.uval[1], 0);
    assert_int_equal(find(ix, ids[1])->sum.addon_ix, -1);
    free(fresh);
    hr_acctix_free(ix);
    for (int i = 0; i < N; i++) free(ids[i]), free(as[i]);
    free(ids);
    free(as);
}

static void put_many_sorted(void **state) {
    (void)state;
    enum { N = 5000 };
    hr_acctix *ix = hr_acctix_new(16);
    hr_account **as = calloc(N, sizeof *as);
    assert_non_null(as);
    for (int i = 0; i < N; i++) {
        char *id = make_id(i + 7);
        as[i] = acct(id);
        free(id);
    }
    assert_null(hr_acctix_put(ix, as[0], NULL)); /* one there already */
    assert_int_equal(hr_acctix_put_many(ix, as + 1, N - 1), 0);
    assert_int_equal(hr_acctix_count(ix), N);
    for (int i = 0; i < N; i++) {
        const hr_acct_slot *s = find(ix, as[i]->id);
        assert_non_null(s);
        assert_ptr_equal(s->acct, as[i]);
        assert_int_equal(s->sum.plain, 0);
    }
    hr_acctix_free(ix);
    for (int i = 0; i < N; i++) free(as[i]);
    free(as);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(insert_find_delete),
                                       cmocka_unit_test(put_many_sorted)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
