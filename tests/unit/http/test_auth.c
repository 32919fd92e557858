/* test_auth.c: identity hashes against an independent HMAC (Python's hmac
 * module computed the vector), the time window, rotation and key checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "headroom.h"
#include "http/auth.h"

/* python3: hmac.new(b'idsecret', b'u1.acme.1700000000', hashlib.sha256).hexdigest() */
static const char *vector = "b235246ee9300779e59844b534b79a5461642bae635c5f8c9474d60b2072e7c4";

static hr_auth_cfg cfg(void) {
    hr_auth_cfg c = {"sk_test_123456", "pk_test_1", {"idsecret", NULL}, 86400};
    return c;
}

static void hash_matches_reference(void **state) {
    char out[65];
    hr_identity_hash("idsecret", "u1", "acme", 1700000000, out);
    assert_string_equal(out, vector);
}

static void verify_within_window(void **state) {
    hr_auth_cfg c = cfg();
    const char *why = NULL;
    assert_int_equal(hr_identity_verify(&c, "u1", "acme", "1700000000", vector, 1700000000 + 3600, &why), 0);
    /* upper-case hex is the same hash */
    char up[65];
    for (int i = 0; i < 65; i++) up[i] = (char)(vector[i] >= 'a' && vector[i] <= 'f' ? vector[i] - 32 : vector[i]);
    assert_int_equal(hr_identity_verify(&c, "u1", "acme", "1700000000", up, 1700000000, &why), 0);
}

static void expired_and_future_refused(void **state) {
    hr_auth_cfg c = cfg();
    const char *why = NULL;
    assert_int_equal(hr_identity_verify(&c, "u1", "acme", "1700000000", vector, 1700000000 + 86401, &why), HR_EAUTH);
    assert_non_null(why);
    assert_int_equal(hr_identity_verify(&c, "u1", "acme", "1700000000", vector, 1700000000 - 301, &why), HR_EAUTH);
}

static void binding_to_user_and_account(void **state) {
    hr_auth_cfg c = cfg();
    assert_int_equal(hr_identity_verify(&c, "u2", "acme", "1700000000", vector, 1700000000, NULL), HR_EAUTH);
    assert_int_equal(hr_identity_verify(&c, "u1", "globex", "1700000000", vector, 1700000000, NULL), HR_EAUTH);
    assert_int_equal(hr_identity_verify(&c, "u1", "acme", "1700000001", vector, 1700000000, NULL), HR_EAUTH);
    assert_int_equal(hr_identity_verify(&c, "u1", "acme", "17000x0000", vector, 1700000000, NULL), HR_EAUTH);
    assert_int_equal(hr_identity_verify(&c, "u1", "acme", "1700000000", "abc", 1700000000, NULL), HR_EAUTH);
    assert_int_equal(hr_identity_verify(&c, NULL, "acme", "1700000000", vector, 1700000000, NULL), HR_EAUTH);
}

static void rotation_accepts_both_secrets(void **state) {
    hr_auth_cfg c = cfg();
    c.identity_secrets[0] = "new_secret";
    assert_int_equal(hr_identity_verify(&c, "u1", "acme", "1700000000", vector, 1700000000, NULL), HR_EAUTH);
    c.identity_secrets[1] = "idsecret";
    assert_int_equal(hr_identity_verify(&c, "u1", "acme", "1700000000", vector, 1700000000, NULL), 0);
    char h[65];
    hr_identity_hash("new_secret", "u1", "acme", 1700000000, h);
    assert_int_equal(hr_identity_verify(&c, "u1", "acme", "1700000000", h, 1700000000, NULL), 0);
}

static void key_equality(void **state) {
    assert_true(hr_key_equal("sk_abc", "sk_abc"));
    assert_false(hr_key_equal("sk_abd", "sk_abc"));
    assert_false(hr_key_equal("sk_ab", "sk_abc"));
    assert_false(hr_key_equal("", ""));
    assert_false(hr_key_equal("sk_abc", NULL));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hash_matches_reference),  cmocka_unit_test(verify_within_window),
        cmocka_unit_test(expired_and_future_refused), cmocka_unit_test(binding_to_user_and_account),
        cmocka_unit_test(rotation_accepts_both_secrets), cmocka_unit_test(key_equality),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
