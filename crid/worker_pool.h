/* crid/worker_pool: the threads that run RPC handlers.  The pool grows
 * when every worker is busy (a pull may block one for minutes); a second
 * after the last job of a burst the workers above the minimum end (with
 * them the blocks malloc caches per thread) and the memory malloc keeps
 * free goes back to the system, so bursts do not ratchet up the daemon's
 * size.  Workers idle for 30 s while another job runs end as well. */
#ifndef CRID_WORKER_POOL_H
#define CRID_WORKER_POOL_H

#include <stddef.h>

struct worker_pool;

typedef void (*worker_job)(void *arg);

struct worker_pool *worker_pool_new(size_t min_threads, size_t max_threads);
/* Queues fn(arg); never blocks on a busy pool. */
void worker_pool_submit(struct worker_pool *pool, worker_job fn, void *arg);
/* Waits until the queue is empty and no job runs. */
void worker_pool_wait_idle(struct worker_pool *pool);
/* Waits for idle, then stops and joins every thread. */
void worker_pool_free(struct worker_pool *pool);

#endif
