#include "crid/worker_pool.h"
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#define WORKER_IDLE_EXIT_SECONDS 30
/* How long the pool stays without jobs before it gives freed memory back:
 * long enough that a busy daemon never trims between two calls. */
#define TRIM_AFTER_IDLE_SECONDS 1
#define WORKER_STACK_SIZE (1024 * 1024)

struct job
{
  struct job *next;
  worker_job fn;
  void *arg;
};

/* A worker that left at a trim, joined by the worker that trims. */
struct left_worker
{
  struct left_worker *next;
  pthread_t thread;
};

struct worker_pool
{
  pthread_mutex_t lock;
  pthread_cond_t work_ready;
  pthread_cond_t changed;
  struct job *head, *tail;
  size_t threads, idle, running_jobs;
  size_t min_threads, max_threads;
  bool stopping;
  /* Jobs ran since the last trim: free memory may sit in malloc's arenas
   * and in the per-thread caches (tcache) of the workers. */
  bool trim_due;
  /* When the trim is due: TRIM_AFTER_IDLE_SECONDS after the last job. */
  struct timespec trim_at;
  struct left_worker *left;
};

static struct job *
take_job(struct worker_pool *pool)
{
  struct job *job = pool->head;
  pool->head = job->next;
  if (pool->head == NULL)
    pool->tail = NULL;
  return job;
}

static bool
time_reached(const struct timespec *at)
{
  struct timespec now;

  clock_gettime(CLOCK_REALTIME, &now);
  return now.tv_sec > at->tv_sec || (now.tv_sec == at->tv_sec && now.tv_nsec >= at->tv_nsec);
}

/* Joins the workers that left at this trim: glibc hands a thread's tcache
 * back to its arena only as the thread ends, after its start routine has
 * returned, so the trim must wait for that. */
static void
join_left_workers_locked(struct worker_pool *pool)
{
  struct left_worker *left = pool->left;

  pool->left = NULL;
  pthread_mutex_unlock(&pool->lock);
  while (left)
    {
      struct left_worker *next = left->next;
      pthread_join(left->thread, NULL);
      free(left);
      left = next;
    }
  pthread_mutex_lock(&pool->lock);
}

/* After a burst of calls, glibc keeps the freed memory of its arenas
 * (only the top of the main heap shrinks by itself), and every worker
 * keeps up to 7 freed chunks of each small size in its tcache, which no
 * trim reaches: with 30 workers kept for the next burst, those caches
 * filled a little more at every burst and the resident size of an idle
 * daemon ratcheted up.  So the workers above the minimum leave at the
 * trim (their tcaches go back to the arena as they end) and the last one
 * joins them, then trims. */
static void
trim_locked(struct worker_pool *pool)
{
  pool->trim_due = false;
  join_left_workers_locked(pool);
  pthread_mutex_unlock(&pool->lock);
  malloc_trim(0);
  pthread_mutex_lock(&pool->lock);
}

/* Called by a worker that leaves the pool; the lock is held. */
static void
leave_locked(struct worker_pool *pool, bool joined_by_trim)
{
  struct left_worker *left;

  pool->threads--;
  pthread_cond_broadcast(&pool->changed);
  if (!joined_by_trim)
    {
      pthread_detach(pthread_self());
      return;
    }
  left = xmalloc(sizeof *left);
  left->thread = pthread_self();
  left->next = pool->left;
  pool->left = left;
  /* The next idle worker leaves as well, or trims when it is the last. */
  pthread_cond_signal(&pool->work_ready);
}

/* Waits for a job; false when this worker left the pool. */
static bool
wait_for_job(struct worker_pool *pool)
{
  while (pool->head == NULL)
    {
      bool trim = pool->trim_due && pool->running_jobs == 0;
      struct timespec until;
      int rc;

      if (pool->stopping)
        {
          leave_locked(pool, false);
          return false;
        }
      if (trim && time_reached(&pool->trim_at))
        {
          if (pool->threads > pool->min_threads)
            {
              leave_locked(pool, true);
              return false;
            }
          trim_locked(pool);
          continue;
        }
      clock_gettime(CLOCK_REALTIME, &until);
      until.tv_sec += WORKER_IDLE_EXIT_SECONDS;
      if (trim)
        until = pool->trim_at;
      pool->idle++;
      rc = pthread_cond_timedwait(&pool->work_ready, &pool->lock, &until);
      pool->idle--;
      if (rc == ETIMEDOUT && !trim && pool->head == NULL && pool->threads > pool->min_threads)
        {
          leave_locked(pool, false);
          return false;
        }
    }
  return true;
}

static void *
worker_main(void *arg)
{
  struct worker_pool *pool = arg;

  pthread_mutex_lock(&pool->lock);
  while (wait_for_job(pool))
    {
      struct job *job = take_job(pool);
      pool->running_jobs++;
      pthread_mutex_unlock(&pool->lock);
      job->fn(job->arg);
      free(job);
      pthread_mutex_lock(&pool->lock);
      pool->running_jobs--;
      pool->trim_due = true;
      clock_gettime(CLOCK_REALTIME, &pool->trim_at);
      pool->trim_at.tv_sec += TRIM_AFTER_IDLE_SECONDS;
      pthread_cond_broadcast(&pool->changed);
    }
  pthread_mutex_unlock(&pool->lock);
  return NULL;
}

static void
spawn_worker_locked(struct worker_pool *pool)
{
  pthread_t thread;
  pthread_attr_t attr;

  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, WORKER_STACK_SIZE);
  if (pthread_create(&thread, &attr, worker_main, pool) == 0)
    pool->threads++;
  else
    log_error("worker pool: cannot create a thread (%zu running)", pool->threads);
  pthread_attr_destroy(&attr);
}

struct worker_pool *
worker_pool_new(size_t min_threads, size_t max_threads)
{
  struct worker_pool *pool = xcalloc(1, sizeof *pool);
  pthread_mutex_init(&pool->lock, NULL);
  pthread_cond_init(&pool->work_ready, NULL);
  pthread_cond_init(&pool->changed, NULL);
  pool->min_threads = min_threads;
  pool->max_threads = max_threads;
  pthread_mutex_lock(&pool->lock);
  for (size_t i = 0; i < min_threads; i++)
    spawn_worker_locked(pool);
  pthread_mutex_unlock(&pool->lock);
  return pool;
}

void
worker_pool_submit(struct worker_pool *pool, worker_job fn, void *arg)
{
  struct job *job = xmalloc(sizeof *job);
  job->fn = fn;
  job->arg = arg;
  job->next = NULL;

  pthread_mutex_lock(&pool->lock);
  if (pool->tail)
    pool->tail->next = job;
  else
    pool->head = job;
  pool->tail = job;
  if (pool->idle == 0 && pool->threads < pool->max_threads)
    spawn_worker_locked(pool);
  pthread_cond_signal(&pool->work_ready);
  pthread_mutex_unlock(&pool->lock);
}

void
worker_pool_wait_idle(struct worker_pool *pool)
{
  pthread_mutex_lock(&pool->lock);
  while (pool->head || pool->running_jobs > 0)
    pthread_cond_wait(&pool->changed, &pool->lock);
  pthread_mutex_unlock(&pool->lock);
}

void
worker_pool_free(struct worker_pool *pool)
{
  worker_pool_wait_idle(pool);
  pthread_mutex_lock(&pool->lock);
  pool->stopping = true;
  pthread_cond_broadcast(&pool->work_ready);
  while (pool->threads > 0)
    pthread_cond_wait(&pool->changed, &pool->lock);
  join_left_workers_locked(pool);
  pthread_mutex_unlock(&pool->lock);
  pthread_mutex_destroy(&pool->lock);
  pthread_cond_destroy(&pool->work_ready);
  pthread_cond_destroy(&pool->changed);
  free(pool);
}
