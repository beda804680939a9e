/* Unit tests of crid/worker_pool: every job runs, the pool grows to run a
 * burst of blocked jobs at once, and after the burst the workers above the
 * minimum leave (their malloc caches with them) while the pool keeps
 * serving. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "crid/worker_pool.h"
#include "tests/unit/proc_self.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BURST 20

struct burst
{
  pthread_mutex_t lock;
  pthread_cond_t all_running;
  int running, done;
};

/* Blocks until BURST jobs run at once; allocates and frees a little, as
 * an RPC handler does. */
static void
burst_job(void *arg)
{
  struct burst *b = arg;
  void *scratch[8];

  for (size_t i = 0; i < 8; i++)
    scratch[i] = malloc(64 * (i + 1));
  for (size_t i = 0; i < 8; i++)
    free(scratch[i]);
  pthread_mutex_lock(&b->lock);
  b->running++;
  pthread_cond_broadcast(&b->all_running);
  while (b->running < BURST)
    pthread_cond_wait(&b->all_running, &b->lock);
  b->done++;
  pthread_mutex_unlock(&b->lock);
}

static void
run_burst(struct worker_pool *pool, struct burst *b)
{
  memset(b, 0, sizeof *b);
  pthread_mutex_init(&b->lock, NULL);
  pthread_cond_init(&b->all_running, NULL);
  /* Each job is submitted once the one before runs: with every worker
   * busy, the pool starts one more. */
  for (int i = 0; i < BURST; i++)
    {
      worker_pool_submit(pool, burst_job, b);
      pthread_mutex_lock(&b->lock);
      while (b->running <= i)
        pthread_cond_wait(&b->all_running, &b->lock);
      pthread_mutex_unlock(&b->lock);
    }
  worker_pool_wait_idle(pool);
  assert_int_equal(b->done, BURST);
}

/* Polls (bounded) until the process is back to `expected` threads. */
static int
wait_threads(int expected)
{
  int n = proc_self_count("task");

  for (int i = 0; i < 200 && n != expected; i++)
    {
      usleep(50 * 1000);
      n = proc_self_count("task");
    }
  return n;
}

static void
test_burst_workers_leave_after_it(void **state)
{
  int before = proc_self_count("task");
  struct worker_pool *pool = worker_pool_new(1, 64);
  struct burst b;

  (void)state;
  assert_int_equal(wait_threads(before + 1), before + 1);
  run_burst(pool, &b);
  assert_true(proc_self_count("task") >= before + BURST);
  /* A second after the burst, the extra workers leave and the last one
   * trims: the minimum is what stays. */
  assert_int_equal(wait_threads(before + 1), before + 1);
  /* The pool grows again for the next burst. */
  run_burst(pool, &b);
  assert_int_equal(b.done, BURST);
  worker_pool_free(pool);
  assert_int_equal(wait_threads(before), before);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_burst_workers_leave_after_it),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
