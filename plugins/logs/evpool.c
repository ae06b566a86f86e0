/* FIFO event memory: chunks carved in order, released in order. */
#include <assert.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>

#include "evpool.h"

struct ev_chunk {
    struct ev_chunk *next;
    size_t used, cap;
    size_t live; /* events carved and not yet released */
    alignas(struct ev) unsigned char data[];
};

static size_t round_up(size_t n)
{
    return (n + alignof(struct ev) - 1) & ~(alignof(struct ev) - 1);
}

static struct ev_chunk *chunk_get(struct ev_pool *pool, size_t size)
{
    struct ev_chunk *c;
    if (size <= EVPOOL_CHUNK && pool->spare) {
        c = pool->spare;
        pool->spare = NULL;
    } else {
        /* A line longer than a chunk (up to max_line) gets a chunk of its own. */
        size_t cap = size > EVPOOL_CHUNK ? size : EVPOOL_CHUNK;
        c = malloc(sizeof(*c) + cap);
        if (!c)
            return NULL;
        c->cap = cap;
    }
    c->next = NULL;
    c->used = 0;
    c->live = 0;
    return c;
}

static void chunk_put(struct ev_pool *pool, struct ev_chunk *c)
{
    if (c->cap == EVPOOL_CHUNK && !pool->spare)
        pool->spare = c;
    else
        free(c);
}

struct ev *evpool_alloc(struct ev_pool *pool, size_t size)
{
    size = round_up(size);
    struct ev_chunk *c = pool->tail;
    if (!c || c->cap - c->used < size) {
        if (c && c->live == 0) {
            /* Empty, so also the head (release is in order): a big event
             * that does not fit replaces it rather than follow it. */
            pool->head = pool->tail = NULL;
            chunk_put(pool, c);
        }
        c = chunk_get(pool, size);
        if (!c)
            return NULL;
        if (pool->tail)
            pool->tail->next = c;
        else
            pool->head = c;
        pool->tail = c;
    }
    struct ev *e = (struct ev *)(void *)(c->data + c->used);
    c->used += size;
    c->live++;
    return e;
}

void evpool_shrink_last(struct ev_pool *pool, struct ev *e, size_t old_size, size_t size)
{
    struct ev_chunk *c = pool->tail;
    assert(c && (unsigned char *)e + round_up(old_size) == c->data + c->used);
    (void)e;
    c->used -= round_up(old_size) - round_up(size);
}

void evpool_release(struct ev_pool *pool, struct ev *e)
{
    struct ev_chunk *c = pool->head;
    assert(c && (unsigned char *)e >= c->data && (unsigned char *)e < c->data + c->used);
    (void)e;
    if (--c->live > 0)
        return;
    if (c == pool->tail) {
        /* Empty and still the one being carved: start it over. */
        c->used = 0;
        return;
    }
    pool->head = c->next;
    chunk_put(pool, c);
}

void evpool_free(struct ev_pool *pool)
{
    struct ev_chunk *c = pool->head;
    while (c) {
        struct ev_chunk *n = c->next;
        free(c);
        c = n;
    }
    free(pool->spare);
    pool->head = pool->tail = pool->spare = NULL;
}
