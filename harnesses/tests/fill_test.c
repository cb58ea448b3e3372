/* fill_test.c - fz_fill (fuzz_util.h): byte i of a fill is byte i % 8 (little-endian) of the
 * (i / 8)-th output of the splitmix64 stream of its seed, for every length and alignment, and
 * nothing past the end is written. The targets' payloads, and so the reproducers under corpora/,
 * depend on these exact bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fuzz_util.h"

static void test_fill_is_the_splitmix_stream(void **state)
{
    (void)state;
    static const uint64_t seeds[] = {0, 1, 0xc4c4, 0xffffffffffffffffull};
    uint8_t buf[64 + 8 + 16];
    for (size_t si = 0; si < sizeof(seeds) / sizeof(seeds[0]); si++) {
        for (size_t align = 0; align < 8; align++) {
            for (size_t len = 0; len <= 64; len++) {
                memset(buf, 0xa5, sizeof(buf));
                fz_fill(buf + align, len, seeds[si]);
                uint64_t s = seeds[si], word = 0;
                for (size_t i = 0; i < len; i++) {
                    if (i % 8 == 0) word = splitmix64_next(&s);
                    assert_int_equal(buf[align + i], (uint8_t)(word >> (8 * (i % 8))));
                }
                for (size_t i = 0; i < sizeof(buf); i++)
                    if (i < align || i >= align + len) assert_int_equal(buf[i], 0xa5);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_fill_is_the_splitmix_stream)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
