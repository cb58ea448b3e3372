/* chunk_test.c - the chunk reassembler: messages split at every chunk size come back whole;
 * each lie of a chunk stream (no FIRST, a second FIRST, a foreign sequence number or total,
 * more bytes than the total, LAST too early, unknown flags) is refused with IPCP_E_FRAGMENT;
 * a total above the maximum is refused with nothing allocated. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "atomics.h"
#include "ipcproof/chunk.h"
#include "ipcproof/err.h"
#include "testutil.h"

static void test_every_chunk_size(void **s)
{
    (void)s;
    struct ipcp_reasm r;
    assert_int_equal(ipcp_reasm_init(&r, 4096), 0);
    uint8_t msg[1000];
    for (size_t len = 0; len <= sizeof(msg); len += (len < 20 ? 1 : 97)) {
        tu_fill(msg, len, len);
        for (size_t chunk = 1; chunk <= len + 1; chunk += (chunk < 10 ? 1 : 61)) {
            size_t off = 0;
            int rc = 0;
            do {
                size_t n = len - off < chunk ? len - off : chunk;
                unsigned fl =
                    (off == 0 ? IPCP_CHUNK_FIRST : 0) | (off + n == len ? IPCP_CHUNK_LAST : 0);
                rc = ipcp_reasm_feed(&r, fl, len, len, msg + off, n);
                assert_true(ipcp_reasm_valid(&r));
                off += n;
                if (off < len) assert_int_equal(rc, 0);
            } while (off < len);
            assert_int_equal(rc, 1);
            size_t got;
            uint64_t seq;
            const void *m = ipcp_reasm_message(&r, &got, &seq);
            assert_int_equal(got, len);
            assert_int_equal(seq, len);
            assert_true(tu_check(m, got, len));
        }
    }
    ipcp_reasm_fini(&r);
}

struct lie {
    const char *what;
    unsigned fl[3];
    uint64_t seq[3], total[3];
    size_t len[3];
    int n;
    int want_last;
};

static void test_each_lie_refused(void **s)
{
    (void)s;
    const unsigned F = IPCP_CHUNK_FIRST, L = IPCP_CHUNK_LAST;
    const struct lie lies[] = {
        {"no FIRST", {0}, {1}, {10}, {5}, 1, -IPCP_E_FRAGMENT},
        {"LAST without FIRST", {L}, {1}, {10}, {10}, 1, -IPCP_E_FRAGMENT},
        {"foreign seq", {F, 0}, {1, 2}, {10, 10}, {5, 3}, 2, -IPCP_E_FRAGMENT},
        {"total changes", {F, L}, {1, 1}, {10, 11}, {5, 5}, 2, -IPCP_E_FRAGMENT},
        {"more than total", {F, 0}, {1, 1}, {10, 10}, {5, 6}, 2, -IPCP_E_FRAGMENT},
        {"LAST too early", {F, L}, {1, 1}, {10, 10}, {5, 4}, 2, -IPCP_E_FRAGMENT},
        {"whole with short len", {F | L}, {1}, {10}, {9}, 1, -IPCP_E_FRAGMENT},
        {"unknown flag", {0x4 | F}, {1}, {10}, {5}, 1, -IPCP_E_FRAGMENT},
        {"total over max", {F}, {1}, {1u << 30}, {5}, 1, -IPCP_E_TOOBIG},
    };
    uint8_t data[16] = {0};
    for (size_t i = 0; i < IPCP_ARRAY_SIZE(lies); i++) {
        struct ipcp_reasm r;
        assert_int_equal(ipcp_reasm_init(&r, 1000), 0);
        int rc = 0;
        for (int k = 0; k < lies[i].n; k++)
            rc = ipcp_reasm_feed(&r, lies[i].fl[k], lies[i].seq[k], lies[i].total[k], data,
                                 lies[i].len[k]);
        if (rc != lies[i].want_last)
            fail_msg("%s: got %s want %s", lies[i].what, ipcp_errname(rc),
                     ipcp_errname(lies[i].want_last));
        if (rc == -IPCP_E_TOOBIG) assert_null(r.buf);
        assert_true(ipcp_reasm_valid(&r));
        assert_null(ipcp_reasm_message(&r, NULL, NULL));
        /* After the error a new message goes through. */
        assert_int_equal(ipcp_reasm_feed(&r, F | L, 7, 3, "abc", 3), 1);
        ipcp_reasm_fini(&r);
    }
    struct ipcp_reasm r;
    assert_int_equal(ipcp_reasm_init(&r, 0), -EINVAL);
    /* A second FIRST abandons the partial message (counted) and starts the new one. */
    assert_int_equal(ipcp_reasm_init(&r, 100), 0);
    assert_int_equal(ipcp_reasm_feed(&r, F, 1, 10, data, 5), 0);
    assert_int_equal(ipcp_reasm_feed(&r, F, 2, 4, "wxyz", 2), 0);
    assert_int_equal(r.abandoned, 1);
    assert_int_equal(ipcp_reasm_feed(&r, L, 2, 4, "yz", 2), 1);
    size_t len;
    uint64_t seq;
    const char *m = ipcp_reasm_message(&r, &len, &seq);
    assert_int_equal(len, 4);
    assert_int_equal(seq, 2);
    assert_memory_equal(m, "wxyz", 4);
    ipcp_reasm_fini(&r);
}

/* ipcp_reasm_next: where the next chunk goes; a chunk received there is taken without a copy
 * and the message comes out whole; nothing is in progress before a FIRST or after the LAST. */
static void test_next_in_place(void **s)
{
    (void)s;
    struct ipcp_reasm r;
    assert_int_equal(ipcp_reasm_init(&r, 100000), 0);
    size_t n;
    assert_null(ipcp_reasm_next(&r, &n));
    assert_int_equal(n, 0);
    uint8_t msg[10000];
    tu_fill(msg, sizeof(msg), 4);
    assert_int_equal(ipcp_reasm_feed(&r, IPCP_CHUNK_FIRST, 9, sizeof(msg), msg, 4000), 0);
    for (size_t off = 4000; off < sizeof(msg); off += 3000) {
        uint8_t *at = ipcp_reasm_next(&r, &n);
        assert_non_null(at);
        assert_int_equal(n, sizeof(msg) - off);
        size_t len = n < 3000 ? n : 3000;
        memcpy(at, msg + off, len); /* as a receive straight into place would */
        int rc = ipcp_reasm_feed(&r, off + len == sizeof(msg) ? IPCP_CHUNK_LAST : 0, 9, sizeof(msg),
                                 at, len);
        assert_int_equal(rc, off + len == sizeof(msg) ? 1 : 0);
    }
    size_t len;
    uint64_t seq;
    const void *m = ipcp_reasm_message(&r, &len, &seq);
    assert_int_equal(len, sizeof(msg));
    assert_memory_equal(m, msg, sizeof(msg));
    assert_null(ipcp_reasm_next(&r, &n));
    ipcp_reasm_fini(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_chunk_size),
        cmocka_unit_test(test_each_lie_refused),
        cmocka_unit_test(test_next_in_place),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
