/* The FIFO event pool: events keep their bytes until released in order,
 * chunks are reused, big events get their own chunk. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../plugins/logs/evpool.h"

#define N 5000

static size_t size_of(unsigned i)
{
    /* Mostly log lines, now and then one bigger than a chunk. */
    if (i % 997 == 5)
        return sizeof(struct ev) + EVPOOL_CHUNK + i;
    return sizeof(struct ev) + 1 + (i * 37) % 300;
}

static void fill(struct ev *e, unsigned i, size_t size)
{
    e->len = (uint32_t)(size - sizeof(*e));
    memset(e->msg, (int)(i & 0xff), e->len);
}

static void check(const struct ev *e, unsigned i)
{
    for (uint32_t k = 0; k < e->len; k++)
        assert_int_equal((unsigned char)e->msg[k], i & 0xff);
}

static void test_fifo(void **state)
{
    struct ev_pool pool = {0};
    static struct ev *evs[N];
    unsigned head = 0;
    for (unsigned i = 0; i < N; i++) {
        size_t size = size_of(i);
        evs[i] = evpool_alloc(&pool, size);
        assert_non_null(evs[i]);
        assert_int_equal((uintptr_t)evs[i] % _Alignof(struct ev), 0);
        fill(evs[i], i, size);
        /* Release in bursts, as acknowledgements do, keeping a backlog. */
        if (i % 50 == 49)
            for (; head + 120 < i; head++) {
                check(evs[head], head);
                evpool_release(&pool, evs[head]);
            }
    }
    for (; head < N; head++) {
        check(evs[head], head);
        evpool_release(&pool, evs[head]);
    }
    /* Empty now: it starts over and still works. */
    struct ev *e = evpool_alloc(&pool, 100);
    assert_non_null(e);
    evpool_release(&pool, e);
    e = evpool_alloc(&pool, sizeof(struct ev) + 2 * EVPOOL_CHUNK);
    assert_non_null(e);
    fill(e, 9, sizeof(struct ev) + 2 * EVPOOL_CHUNK);
    struct ev *f = evpool_alloc(&pool, 100);
    assert_non_null(f);
    evpool_release(&pool, e);
    evpool_release(&pool, f);
    evpool_free(&pool);
}

static void test_shrink(void **state)
{
    struct ev_pool pool = {0};
    struct ev *a = evpool_alloc(&pool, sizeof(struct ev) + 300);
    assert_non_null(a);
    evpool_shrink_last(&pool, a, sizeof(struct ev) + 300, sizeof(struct ev) + 10);
    struct ev *b = evpool_alloc(&pool, sizeof(struct ev) + 10);
    /* b follows a's shrunk end directly. */
    assert_true((char *)b <= (char *)a + sizeof(struct ev) + 16);
    assert_true((char *)b >= (char *)a + sizeof(struct ev) + 10);
    evpool_release(&pool, a);
    evpool_release(&pool, b);
    evpool_free(&pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo),
        cmocka_unit_test(test_shrink),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
