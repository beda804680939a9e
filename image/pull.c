/* image/pull: reference -> manifest -> config -> layers, with downloads
 * shared between concurrent pulls and layers unpacked while they stream.
 *
 * Work that may be shared is a job: fetching a blob into the store (the
 * config), or fetching and unpacking a layer.  Jobs live in the puller's
 * in-flight table while they run, keyed by registry and digest or chain id;
 * a pull that needs one already there waits for it instead of starting
 * another.  (Per registry, because a job fetches from the registry of the
 * pull that started it: a pull from elsewhere must not depend on that.)  Each
 * job runs on its own thread, which first waits for a download slot.
 * Waiting pulls log the progress of their jobs, so the log lines carry the
 * RPC context of the pull they belong to. */
#include "image/pull.h"
#include "common/cleanup.h"
#include "common/failpoint.h"
#include "common/log.h"
#include "common/util.h"
#include "image/layer.h"
#include "image/pull_plugin.h"
#include "image/reference.h"
#include "image/registry.h"
#include "image/store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_MAX_DOWNLOADS 3
#define CONFIG_MAX_SIZE (16 * 1024 * 1024)
#define WAIT_TICK_NS (250 * 1000 * 1000)
#define PROGRESS_LOG_NS (5LL * 1000 * 1000 * 1000)
/* How long a failed pull waits for its abandoned downloads to stop. */
#define ABANDON_WAIT_NS (30LL * 1000 * 1000 * 1000)

enum job_kind
{
  JOB_BLOB,  /* the blob into the store */
  JOB_LAYER, /* the blob into the store and unpacked as a layer */
};

/* Credentials copied out of the request that started a job: the job may
 * outlive that request when other pulls still wait for it. */
struct auth_copy
{
  char *username, *password, *auth, *identity_token, *registry_token;
  struct registry_auth view;
};

struct job
{
  struct image_puller *puller;
  enum job_kind kind;
  char *key;      /* "<registry> <digest>" (blob) or "<registry> <chain id>" (layer) */
  const char *id; /* the digest or chain id part of key */
  struct image_reference ref;
  struct auth_copy auth;
  bool anonymous;
  char *digest;
  int64_t size;
  enum layer_compression compression;
  char *chain_id;
  char *diff_id;

  atomic_uint_fast64_t received;
  int64_t started_ns;

  /* Guarded by the puller's lock. */
  unsigned refs;       /* the thread and every waiting pull */
  unsigned interested; /* waiting pulls that still want the result */
  bool abandoned;      /* nobody wanted it any more: stopping */
  bool waiting;        /* for a download slot: from its creation on */
  bool running;        /* got its download slot */
  bool has_slot;       /* holds it still */
  bool done;
  struct error err;
};

struct image_puller
{
  struct image_store *store;
  struct registry_client *registry;
  /* Read by every transfer as it starts; a reload may change it. */
  atomic_int_fast64_t progress_timeout;

  pthread_mutex_t lock;
  pthread_cond_t changed;
  int max_downloads; /* a reload may change it */
  int active_downloads;
  struct job **jobs; /* in flight */
  size_t n_jobs;
  size_t n_threads;
};

/* ---- Jobs --------------------------------------------------------------- */

static char *
dup_or_null(const char *s)
{
  return s && s[0] ? xstrdup(s) : NULL;
}

static void
auth_copy_init(struct auth_copy *copy, const struct registry_auth *auth)
{
  memset(copy, 0, sizeof *copy);
  if (auth == NULL)
    return;
  copy->username = dup_or_null(auth->username);
  copy->password = dup_or_null(auth->password);
  copy->auth = dup_or_null(auth->auth);
  copy->identity_token = dup_or_null(auth->identity_token);
  copy->registry_token = dup_or_null(auth->registry_token);
  copy->view.username = copy->username;
  copy->view.password = copy->password;
  copy->view.auth = copy->auth;
  copy->view.identity_token = copy->identity_token;
  copy->view.registry_token = copy->registry_token;
}

/* Overwritten before being freed: credentials should not linger in freed
 * heap memory. */
static void
secret_free(char *s)
{
  if (s)
    {
      explicit_bzero(s, strlen(s));
      free(s);
    }
}

static void
auth_copy_clear(struct auth_copy *copy)
{
  secret_free(copy->username);
  secret_free(copy->password);
  secret_free(copy->auth);
  secret_free(copy->identity_token);
  secret_free(copy->registry_token);
  memset(copy, 0, sizeof *copy);
}

static void
job_free(struct job *job)
{
  free(job->key);
  free(job->ref.domain);
  free(job->ref.path);
  auth_copy_clear(&job->auth);
  free(job->digest);
  free(job->chain_id);
  free(job->diff_id);
  error_clear(&job->err);
  free(job);
}

/* With the puller's lock held. */
static void
job_unref_locked(struct job *job)
{
  if (--job->refs == 0)
    job_free(job);
}

/* The registry's cancellation poll: stop once no pull wants the result. */
static bool
job_cancelled(void *arg)
{
  struct job *job = arg;
  bool abandoned;

  pthread_mutex_lock(&job->puller->lock);
  if (job->interested == 0)
    job->abandoned = true;
  abandoned = job->abandoned;
  pthread_mutex_unlock(&job->puller->lock);
  return abandoned;
}

static struct registry_request
job_request(struct job *job)
{
  struct registry_request request = {
    .auth = job->anonymous ? NULL : &job->auth.view,
    .cancelled = job_cancelled,
    .cancel_arg = job,
    .progress_timeout_seconds = atomic_load(&job->puller->progress_timeout),
  };
  return request;
}

/* ---- A blob into the store ---------------------------------------------- */

struct blob_sink
{
  struct job *job;
  struct blob_writer *writer;
  struct layer_unpacker *unpacker; /* NULL: a blob that is not unpacked */
  bool unpack_failed;
};

static int
blob_sink_write(void *arg, const void *data, size_t len, struct error *err)
{
  struct blob_sink *sink = arg;

  if (blob_writer_write(sink->writer, data, len, err) < 0)
    return -1;
  if (sink->unpacker && !pull_plugin_unpacker_write(sink->unpacker, data, len))
    {
      /* the unpacker's own error is the one that counts */
      sink->unpack_failed = true;
      return error_set(err, ECANCELED, "unpacking stopped");
    }
  atomic_fetch_add(&sink->job->received, len);
  return 0;
}

static int
run_blob_job(struct job *job, struct error *err)
{
  struct image_puller *puller = job->puller;
  struct registry_request request = job_request(job);
  struct blob_sink sink = { .job = job };

  if (image_store_has_blob(puller->store, job->digest))
    return 0;
  /* registry_fetch_blob hashes the bytes and fails on a mismatch, before
   * the commit: the writer need not hash them again. */
  sink.writer = image_store_blob_create_verified(puller->store, err);
  if (sink.writer == NULL)
    return -1;
  if (registry_fetch_blob(puller->registry, &job->ref, job->digest, job->size, &request,
                          blob_sink_write, &sink, err)
      < 0)
    {
      blob_writer_abort(sink.writer);
      return -1;
    }
  if (blob_writer_commit(sink.writer, job->digest, job->size, err) < 0)
    return -1;
  failpoint("image.pull-after-config");
  return 0;
}

/* ---- A layer, unpacked while it downloads ------------------------------- */

static void
release_slot_locked(struct job *job)
{
  if (!job->has_slot)
    return;
  job->has_slot = false;
  job->puller->active_downloads--;
  pthread_cond_broadcast(&job->puller->changed);
}

/* Gives the download slot back once the layer is down and unpacked: what
 * is left (syncing it to the disk, publishing it) waits on the disk while
 * the next layer downloads and unpacks. */
static void
release_slot(struct job *job)
{
  pthread_mutex_lock(&job->puller->lock);
  release_slot_locked(job);
  pthread_mutex_unlock(&job->puller->lock);
}

static int
check_diff_id(const char *actual, const char *expected, struct error *err)
{
  if (strcmp(actual, expected) != 0)
    return error_set(err, EIO, "diff id mismatch: the config says %s, the content hashes to %s",
                     expected, actual);
  return 0;
}

/* Downloads the layer and unpacks it as its bytes arrive, in this
 * thread (decompression, hashing) and the unpacker's (extraction). */
static int
stream_layer(struct job *job, const char *diff_dir, struct blob_writer *writer, struct error *err)
{
  struct image_puller *puller = job->puller;
  struct registry_request request = job_request(job);
  struct blob_sink sink = { .job = job, .writer = writer };
  struct error download_err = ERROR_INIT;
  char diff_id[72];

  sink.unpacker
      = pull_plugin_unpacker_start(diff_dir, job->compression, LAYER_DEFAULT_MAX_SIZE, err);
  if (sink.unpacker == NULL)
    return -1;
  if (registry_fetch_blob(puller->registry, &job->ref, job->digest, job->size, &request,
                          blob_sink_write, &sink, &download_err)
          < 0
      && !sink.unpack_failed)
    {
      pull_plugin_unpacker_abort(sink.unpacker);
      error_move(err, &download_err);
      return -1;
    }
  /* With the download complete, or stopped by the unpacker: the unpacker
   * says how it ended. */
  error_clear(&download_err);
  if (pull_plugin_unpacker_finish(sink.unpacker, diff_id, err) < 0)
    return error_wrap(err, "unpack");
  return check_diff_id(diff_id, job->diff_id, err);
}

static int
run_layer_job(struct job *job, struct error *err)
{
  struct image_store *store = job->puller->store;
  cleanup_free char *work_dir = NULL;
  cleanup_free char *diff_dir = NULL;
  struct blob_writer *writer;

  if (image_store_has_layer(store, job->chain_id))
    return 0;
  if (image_store_has_blob(store, job->digest))
    {
      cleanup_free char *path = image_store_blob_path(store, job->digest);
      return image_layer_from_file(store, path, job->compression, job->chain_id, job->diff_id, err);
    }
  /* verified by registry_fetch_blob, as in run_blob_job */
  writer = image_store_blob_create_verified(store, err);
  if (writer == NULL)
    return -1;
  if (image_store_layer_create(store, &work_dir, &diff_dir, err) < 0)
    {
      blob_writer_abort(writer);
      return -1;
    }
  if (stream_layer(job, diff_dir, writer, err) < 0)
    {
      blob_writer_abort(writer);
      image_store_layer_abort(store, work_dir);
      return -1;
    }
  release_slot(job);
  failpoint("image.pull-after-layer-unpacked");
  if (blob_writer_commit(writer, job->digest, job->size, err) < 0)
    {
      image_store_layer_abort(store, work_dir);
      return -1;
    }
  failpoint("image.pull-after-layer-blob");
  if (image_store_layer_commit(store, work_dir, job->chain_id, job->diff_id, err) < 0)
    return -1;
  failpoint("image.pull-after-layer-commit");
  return 0;
}

/* ---- Job threads -------------------------------------------------------- */

/* Whether a larger job than job waits for a slot (and is still wanted).
 * Slots go to the largest first: the layers that take longest start
 * earliest, so a pull does not end with its largest layer unpacking alone
 * while the other cores have nothing left to do. */
static bool
larger_one_waits(const struct image_puller *puller, const struct job *job)
{
  for (size_t i = 0; i < puller->n_jobs; i++)
    {
      const struct job *other = puller->jobs[i];
      if (other != job && other->waiting && other->interested > 0 && other->size > job->size)
        return true;
    }
  return false;
}

/* Waits for a download slot; false when the job was abandoned meanwhile. */
static bool
acquire_slot(struct job *job)
{
  struct image_puller *puller = job->puller;
  bool got;

  pthread_mutex_lock(&puller->lock);
  while ((puller->active_downloads >= puller->max_downloads || larger_one_waits(puller, job))
         && job->interested > 0)
    pthread_cond_wait(&puller->changed, &puller->lock);
  job->waiting = false;
  /* smaller jobs that let this one go first look again */
  pthread_cond_broadcast(&puller->changed);
  got = job->interested > 0;
  if (got)
    {
      puller->active_downloads++;
      job->running = true;
      job->has_slot = true;
      job->started_ns = time_monotonic_ns();
    }
  else
    job->abandoned = true;
  pthread_mutex_unlock(&puller->lock);
  return got;
}

static void
remove_from_table(struct image_puller *puller, struct job *job)
{
  for (size_t i = 0; i < puller->n_jobs; i++)
    if (puller->jobs[i] == job)
      {
        puller->jobs[i] = puller->jobs[--puller->n_jobs];
        return;
      }
}

static void *
job_thread(void *arg)
{
  struct job *job = arg;
  struct image_puller *puller = job->puller;
  struct error err = ERROR_INIT;
  bool ran = acquire_slot(job);
  int ret;

  if (!ran)
    ret = error_set(&err, ECANCELED, "cancelled");
  else if (job->kind == JOB_BLOB)
    ret = run_blob_job(job, &err);
  else
    ret = run_layer_job(job, &err);
  if (ret < 0)
    log_debug("%s %s: %s", job->kind == JOB_BLOB ? "blob" : "layer", job->id, error_message(&err));

  pthread_mutex_lock(&puller->lock);
  release_slot_locked(job);
  job->running = false;
  job->done = true;
  if (ret < 0)
    error_move(&job->err, &err);
  remove_from_table(puller, job);
  puller->n_threads--;
  pthread_cond_broadcast(&puller->changed);
  job_unref_locked(job);
  pthread_mutex_unlock(&puller->lock);
  return NULL;
}

struct job_spec
{
  enum job_kind kind;
  const struct image_reference *ref;
  const struct registry_auth *auth;
  const char *digest;
  int64_t size;
  enum layer_compression compression;
  const char *chain_id;
  const char *diff_id;
};

static char *
job_key(const struct job_spec *spec)
{
  return xasprintf("%s %s", spec->ref->domain,
                   spec->kind == JOB_LAYER ? spec->chain_id : spec->digest);
}

static struct job *
job_new(struct image_puller *puller, const struct job_spec *spec)
{
  struct job *job = xcalloc(1, sizeof *job);

  job->puller = puller;
  job->kind = spec->kind;
  job->key = job_key(spec);
  job->id = strchr(job->key, ' ') + 1;
  job->ref.domain = xstrdup(spec->ref->domain);
  job->ref.path = xstrdup(spec->ref->path);
  auth_copy_init(&job->auth, spec->auth);
  job->anonymous = spec->auth == NULL;
  job->digest = xstrdup(spec->digest);
  job->size = spec->size;
  job->compression = spec->compression;
  job->chain_id = spec->chain_id ? xstrdup(spec->chain_id) : NULL;
  job->diff_id = spec->diff_id ? xstrdup(spec->diff_id) : NULL;
  /* before its thread runs: a smaller job created later, whose thread
   * may run first, must still let it go first */
  job->waiting = true;
  atomic_init(&job->received, 0);
  error_clear(&job->err);
  return job;
}

/* The in-flight job for spec, joined, or a new one started.  The caller
 * holds a reference and is counted as interested. */
static struct job *
job_get(struct image_puller *puller, const struct job_spec *spec, struct error *err)
{
  cleanup_free char *key = job_key(spec);
  pthread_attr_t attr;
  pthread_t thread;
  struct job *job;

  pthread_mutex_lock(&puller->lock);
  for (size_t i = 0; i < puller->n_jobs; i++)
    {
      job = puller->jobs[i];
      if (job->kind == spec->kind && !job->abandoned && strcmp(job->key, key) == 0)
        {
          job->refs++;
          job->interested++;
          pthread_mutex_unlock(&puller->lock);
          log_debug("%s %s: joining the download already under way",
                    spec->kind == JOB_BLOB ? "blob" : "layer", job->id);
          return job;
        }
    }
  job = job_new(puller, spec);
  job->refs = 2;
  job->interested = 1;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  if (pthread_create(&thread, &attr, job_thread, job) != 0)
    {
      pthread_attr_destroy(&attr);
      pthread_mutex_unlock(&puller->lock);
      job_free(job);
      error_set(err, EAGAIN, "cannot start a download thread");
      return NULL;
    }
  pthread_attr_destroy(&attr);
  puller->jobs = xrealloc(puller->jobs, (puller->n_jobs + 1) * sizeof *puller->jobs);
  puller->jobs[puller->n_jobs++] = job;
  puller->n_threads++;
  pthread_mutex_unlock(&puller->lock);
  return job;
}

/* ---- The puller --------------------------------------------------------- */

struct image_puller *
image_puller_new(const struct image_puller_options *options)
{
  struct image_puller *puller = xcalloc(1, sizeof *puller);

  puller->store = options->store;
  puller->registry = options->registry;
  pthread_mutex_init(&puller->lock, NULL);
  pthread_cond_init(&puller->changed, NULL);
  image_puller_set_limits(puller, options->max_concurrent_downloads,
                          options->progress_timeout_seconds);
  return puller;
}

void
image_puller_set_limits(struct image_puller *puller, int max_concurrent_downloads,
                        int64_t progress_timeout_seconds)
{
  atomic_store(&puller->progress_timeout, progress_timeout_seconds);
  pthread_mutex_lock(&puller->lock);
  puller->max_downloads
      = max_concurrent_downloads > 0 ? max_concurrent_downloads : DEFAULT_MAX_DOWNLOADS;
  /* Jobs waiting for a slot take the ones a raised limit made free. */
  pthread_cond_broadcast(&puller->changed);
  pthread_mutex_unlock(&puller->lock);
}

void
image_puller_free(struct image_puller *puller)
{
  if (puller == NULL)
    return;
  /* Every pull returned, so every job left is abandoned and stops at its
   * next cancellation poll. */
  pthread_mutex_lock(&puller->lock);
  for (size_t i = 0; i < puller->n_jobs; i++)
    puller->jobs[i]->interested = 0;
  pthread_cond_broadcast(&puller->changed);
  while (puller->n_threads > 0)
    pthread_cond_wait(&puller->changed, &puller->lock);
  pthread_mutex_unlock(&puller->lock);
  pthread_mutex_destroy(&puller->lock);
  pthread_cond_destroy(&puller->changed);
  free(puller->jobs);
  free(puller);
}

/* ---- One pull ----------------------------------------------------------- */

struct pull
{
  struct image_puller *puller;
  const struct image_pull_options *options;
  struct image_reference ref;
  char *name; /* the normalised reference, for messages */
  struct registry_request request;
  char **holds;
  size_t n_holds;
};

static bool
pull_cancelled(void *arg)
{
  struct pull *pull = arg;
  const struct image_pull_options *o = pull->options;

  return o && o->cancelled && o->cancelled(o->cancel_arg);
}

static int
cancel_error(struct pull *pull, struct error *err)
{
  const struct image_pull_options *o = pull->options;

  if (o && o->deadline_passed && o->deadline_passed(o->cancel_arg))
    return error_set(err, ETIMEDOUT, "deadline exceeded");
  return error_set(err, ECANCELED, "cancelled by the client");
}

static void
pull_hold(struct pull *pull, const char *key)
{
  image_store_hold(pull->puller->store, key);
  pull->holds = xrealloc(pull->holds, (pull->n_holds + 1) * sizeof *pull->holds);
  pull->holds[pull->n_holds++] = xstrdup(key);
}

static void
pull_release(struct pull *pull)
{
  for (size_t i = 0; i < pull->n_holds; i++)
    {
      image_store_release(pull->puller->store, pull->holds[i]);
      free(pull->holds[i]);
    }
  free(pull->holds);
  pull->holds = NULL;
  pull->n_holds = 0;
}

static char *
short_digest(const char *digest)
{
  return xstrndup(digest, strlen("sha256:") + 12);
}

/* With the puller's lock held. */
static void
log_progress(struct pull *pull, struct job *job)
{
  cleanup_free char *id = short_digest(job->id);
  uint64_t got = atomic_load(&job->received);

  if (!job->running)
    log_info("pull %s: layer %s: waiting for a download slot", pull->name, id);
  else if (job->size > 0)
    log_info("pull %s: layer %s: %.1f of %.1f MB (%d%%)", pull->name, id, got / 1e6,
             job->size / 1e6, (int)(got * 100 / (uint64_t)job->size));
  else
    log_info("pull %s: layer %s: %.1f MB", pull->name, id, got / 1e6);
}

static void
log_job_done(struct pull *pull, struct job *job)
{
  cleanup_free char *id = short_digest(job->id);

  if (job->err.message)
    log_warn("pull %s: %s %s failed: %s", pull->name, job->kind == JOB_LAYER ? "layer" : "blob", id,
             error_message(&job->err));
  else if (job->kind == JOB_LAYER)
    log_info("pull %s: layer %s done (%.1f MB)", pull->name, id, atomic_load(&job->received) / 1e6);
}

static struct timespec deadline_in(int64_t ns);

/* True while a job nobody wants any more has not stopped yet. */
static bool
abandoned_running(struct job **jobs, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (jobs[i] && !jobs[i]->done && jobs[i]->interested == 0)
      return true;
  return false;
}

/* Lets go of the jobs; with the puller's lock held.  With wait_abandoned,
 * first waits (bounded) for the jobs this pull was the last to want to
 * stop, so that what they leave in the store can be collected. */
static void
detach_jobs_locked(struct image_puller *puller, struct job **jobs, size_t n, bool wait_abandoned)
{
  int64_t give_up = time_monotonic_ns() + ABANDON_WAIT_NS;

  for (size_t i = 0; i < n; i++)
    if (jobs[i] && !jobs[i]->done && --jobs[i]->interested == 0)
      pthread_cond_broadcast(&puller->changed);
  while (wait_abandoned && abandoned_running(jobs, n) && time_monotonic_ns() < give_up)
    {
      struct timespec until = deadline_in(WAIT_TICK_NS);
      pthread_cond_timedwait(&puller->changed, &puller->lock, &until);
    }
  for (size_t i = 0; i < n; i++)
    if (jobs[i])
      {
        job_unref_locked(jobs[i]);
        jobs[i] = NULL;
      }
}

static struct timespec
deadline_in(int64_t ns)
{
  struct timespec ts;

  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_nsec += ns;
  ts.tv_sec += ts.tv_nsec / 1000000000;
  ts.tv_nsec %= 1000000000;
  return ts;
}

/* Waits for every job; the first failure (or a cancellation) stops the
 * wait and lets go of the rest.  Drops the caller's references. */
static int
wait_jobs(struct pull *pull, struct job **jobs, size_t n, struct error *err)
{
  struct image_puller *puller = pull->puller;
  int64_t next_log = time_monotonic_ns() + PROGRESS_LOG_NS;
  bool *reported = xcalloc(n ? n : 1, sizeof *reported);
  size_t left = n;
  int ret = 0;

  pthread_mutex_lock(&puller->lock);
  while (left > 0)
    {
      struct timespec until;
      for (size_t i = 0; i < n; i++)
        if (jobs[i] && jobs[i]->done && !reported[i])
          {
            reported[i] = true;
            left--;
            log_job_done(pull, jobs[i]);
            if (jobs[i]->err.message && ret == 0)
              {
                error_set(err, jobs[i]->err.code, "fetch %s %s: %s",
                          jobs[i]->kind == JOB_LAYER ? "layer" : "config", jobs[i]->digest,
                          error_message(&jobs[i]->err));
                ret = -1;
              }
          }
      if (ret < 0 || left == 0)
        break;
      pthread_mutex_unlock(&puller->lock);
      if (pull_cancelled(pull))
        {
          ret = cancel_error(pull, err);
          pthread_mutex_lock(&puller->lock);
          break;
        }
      pthread_mutex_lock(&puller->lock);
      if (time_monotonic_ns() >= next_log)
        {
          for (size_t i = 0; i < n; i++)
            if (jobs[i] && !reported[i] && jobs[i]->kind == JOB_LAYER)
              log_progress(pull, jobs[i]);
          next_log = time_monotonic_ns() + PROGRESS_LOG_NS;
        }
      until = deadline_in(WAIT_TICK_NS);
      pthread_cond_timedwait(&puller->changed, &puller->lock, &until);
    }
  detach_jobs_locked(puller, jobs, n, ret < 0);
  pthread_mutex_unlock(&puller->lock);
  free(reported);
  return ret;
}

/* Fetches a manifest, stores it as a blob and parses it. */
static int
fetch_manifest(struct pull *pull, const char *tag_or_digest, struct manifest **manifest,
               char digest[72], struct error *err)
{
  struct image_puller *puller = pull->puller;
  cleanup_free char *bytes = NULL;
  cleanup_free char *content_type = NULL;
  size_t len;

  if (registry_fetch_manifest(puller->registry, &pull->ref, tag_or_digest, &pull->request, &bytes,
                              &len, &content_type, digest, err)
      < 0)
    return error_wrap(err, "fetch manifest %s", tag_or_digest);
  pull_hold(pull, digest);
  if (image_store_put_blob(puller->store, digest, bytes, len, err) < 0)
    return error_wrap(err, "store manifest %s", digest);
  failpoint("image.pull-after-manifest");
  if (manifest_parse(content_type, bytes, len, manifest, err) < 0)
    return error_wrap(err, "manifest %s", digest);
  return 0;
}

/* The image manifest for this host: the one fetched, or the platform's
 * entry of the index fetched. */
static int
resolve_manifest(struct pull *pull, struct manifest **out, char manifest_digest[72],
                 char top_digest[72], struct error *err)
{
  const char *os, *architecture, *variant;
  const struct descriptor *entry;
  struct manifest *top = NULL;
  int ret;

  if (fetch_manifest(pull, pull->ref.digest ? pull->ref.digest : pull->ref.tag, &top, top_digest,
                     err)
      < 0)
    return -1;
  if (top->kind == MANIFEST_KIND_IMAGE)
    {
      strcpy(manifest_digest, top_digest);
      *out = top;
      return 0;
    }
  platform_host(&os, &architecture, &variant);
  ret = manifest_select_platform(top, os, architecture, variant, &entry, err);
  if (ret == 0)
    {
      log_debug("pull %s: index %s: using %s for %s/%s", pull->name, top_digest, entry->digest, os,
                architecture);
      ret = fetch_manifest(pull, entry->digest, out, manifest_digest, err);
    }
  manifest_free(top);
  if (ret == 0 && (*out)->kind != MANIFEST_KIND_IMAGE)
    {
      manifest_free(*out);
      *out = NULL;
      ret = error_set(err, EINVAL, "manifest %s: an index inside an index", manifest_digest);
    }
  return ret;
}

static struct job_spec
spec_for(struct pull *pull, enum job_kind kind, const struct descriptor *d)
{
  struct job_spec spec = {
    .kind = kind,
    .ref = &pull->ref,
    .auth = pull->options ? pull->options->auth : NULL,
    .digest = d->digest,
    .size = d->size,
  };
  return spec;
}

static int
fetch_config(struct pull *pull, const struct descriptor *config, struct image_config **out,
             struct error *err)
{
  struct image_store *store = pull->puller->store;
  struct job_spec spec = spec_for(pull, JOB_BLOB, config);
  cleanup_free char *bytes = NULL;
  struct job *job;
  size_t len;

  if (config->size > CONFIG_MAX_SIZE)
    return error_set(err, EFBIG, "config %s: %lld bytes is too large", config->digest,
                     (long long)config->size);
  pull_hold(pull, config->digest);
  if (!image_store_has_blob(store, config->digest))
    {
      job = job_get(pull->puller, &spec, err);
      if (job == NULL || wait_jobs(pull, &job, 1, err) < 0)
        return -1;
    }
  if (image_store_read_blob(store, config->digest, CONFIG_MAX_SIZE, &bytes, &len, err) < 0
      || image_config_parse(bytes, len, out, err) < 0)
    return error_wrap(err, "config %s", config->digest);
  return 0;
}

static void
layers_free(struct image_layer *layers, size_t n)
{
  for (size_t i = 0; i < n; i++)
    {
      free(layers[i].chain_id);
      free(layers[i].diff_id);
      free(layers[i].digest);
      free(layers[i].media_type);
    }
  free(layers);
}

/* The image's layers as the store records them; checks the manifest and
 * the config agree and every layer type is one we unpack. */
static int
plan_layers(const struct manifest *manifest, const struct image_config *config,
            struct image_layer **out, struct error *err)
{
  struct image_layer *layers;

  if (manifest->n_layers != config->n_diff_ids)
    return error_set(err, EINVAL, "the manifest has %zu layers but the config %zu diff ids",
                     manifest->n_layers, config->n_diff_ids);
  layers = xcalloc(manifest->n_layers ? manifest->n_layers : 1, sizeof *layers);
  for (size_t i = 0; i < manifest->n_layers; i++)
    {
      const struct descriptor *d = &manifest->layers[i];
      enum layer_compression compression;
      char chain_id[72];
      if (layer_media_type_compression(d->media_type, &compression, err) < 0)
        {
          layers_free(layers, i);
          return error_wrap(err, "layer %s", d->digest);
        }
      layer_chain_id(config->diff_ids, i + 1, chain_id);
      layers[i].chain_id = xstrdup(chain_id);
      layers[i].diff_id = xstrdup(config->diff_ids[i]);
      layers[i].digest = xstrdup(d->digest);
      layers[i].size = d->size;
      layers[i].media_type = xstrdup(d->media_type);
    }
  *out = layers;
  return 0;
}

static int
fetch_layers(struct pull *pull, const struct manifest *manifest, const struct image_layer *layers,
             struct error *err)
{
  struct image_store *store = pull->puller->store;
  struct job **jobs = xcalloc(manifest->n_layers ? manifest->n_layers : 1, sizeof *jobs);
  size_t n = 0, present = 0;
  int ret = 0;

  for (size_t i = 0; i < manifest->n_layers; i++)
    {
      struct job_spec spec = spec_for(pull, JOB_LAYER, &manifest->layers[i]);
      pull_hold(pull, layers[i].chain_id);
      pull_hold(pull, layers[i].digest);
      if (image_store_has_layer(store, layers[i].chain_id))
        {
          present++;
          continue;
        }
      layer_media_type_compression(layers[i].media_type, &spec.compression, err);
      spec.chain_id = layers[i].chain_id;
      spec.diff_id = layers[i].diff_id;
      jobs[n] = job_get(pull->puller, &spec, err);
      if (jobs[n] == NULL)
        {
          ret = -1;
          break;
        }
      n++;
    }
  log_info("pull %s: %zu layers, %zu already present, %zu to fetch", pull->name, manifest->n_layers,
           present, n);
  if (ret == 0)
    ret = wait_jobs(pull, jobs, n, err);
  else
    {
      pthread_mutex_lock(&pull->puller->lock);
      detach_jobs_locked(pull->puller, jobs, n, true);
      pthread_mutex_unlock(&pull->puller->lock);
    }
  free(jobs);
  return ret;
}

static int
record_image(struct pull *pull, const char *id, const char *manifest_digest, const char *top_digest,
             const char *user, const struct image_layer *layers, size_t n_layers,
             int64_t config_size, struct error *err)
{
  cleanup_free char *tag = pull->ref.digest ? NULL : image_reference_tagged(&pull->ref);
  cleanup_free char *name = image_reference_name(&pull->ref);
  cleanup_free char *repo_digest = xasprintf("%s@%s", name, top_digest);
  struct image_add add = {
    .id = id,
    .manifest_digest = manifest_digest,
    .index_digest = strcmp(top_digest, manifest_digest) != 0 ? top_digest : NULL,
    .tag = tag,
    .repo_digest = repo_digest,
    .user = user,
    .layers = layers,
    .n_layers = n_layers,
    .config_size = config_size,
  };

  if (image_store_add(pull->puller->store, &add, err) < 0)
    return -1;
  failpoint("image.pull-after-metadata");
  return 0;
}

static int
pull_run(struct pull *pull, char **image_id, struct error *err)
{
  struct manifest *manifest = NULL;
  struct image_config *config = NULL;
  struct image_layer *layers = NULL;
  char manifest_digest[72], top_digest[72];
  int64_t started = time_monotonic_ns();
  int ret = -1;

  log_info("pull %s: resolving", pull->name);
  if (resolve_manifest(pull, &manifest, manifest_digest, top_digest, err) < 0)
    goto out;
  if (fetch_config(pull, &manifest->config, &config, err) < 0
      || plan_layers(manifest, config, &layers, err) < 0)
    goto out;
  if (fetch_layers(pull, manifest, layers, err) < 0)
    goto out;
  if (record_image(pull, manifest->config.digest, manifest_digest, top_digest, config->user, layers,
                   manifest->n_layers, manifest->config.size, err)
      < 0)
    goto out;
  *image_id = xstrdup(manifest->config.digest);
  log_info("pull %s: done in %.1f s: image %s", pull->name, (time_monotonic_ns() - started) / 1e9,
           *image_id);
  ret = 0;
out:
  if (layers)
    layers_free(layers, manifest->n_layers);
  image_config_free(config);
  manifest_free(manifest);
  return ret;
}

int
image_pull(struct image_puller *puller, const char *reference,
           const struct image_pull_options *options, char **image_id, struct error *err)
{
  struct pull pull = { .puller = puller, .options = options };
  int ret;

  if (reference == NULL || reference[0] == '\0')
    return error_set(err, EINVAL, "no image reference given");
  if (image_reference_parse(reference, &pull.ref, err) < 0)
    return error_wrap(err, "pull %s", reference);
  pull.name = image_reference_string(&pull.ref);
  pull.request.auth = options ? options->auth : NULL;
  pull.request.cancelled = pull_cancelled;
  pull.request.cancel_arg = &pull;
  pull.request.progress_timeout_seconds = atomic_load(&puller->progress_timeout);
  ret = pull_run(&pull, image_id, err);
  if (ret < 0 && pull_cancelled(&pull) && err->code != ETIMEDOUT)
    {
      /* The registry says "cancelled"; say why. */
      struct error why = ERROR_INIT;
      cancel_error(&pull, &why);
      err->code = why.code;
      error_clear(&why);
    }
  if (ret < 0)
    error_wrap(err, "pull %s", pull.name);
  pull_release(&pull);
  /* A failed pull leaves nothing behind: what it stored and no image
   * references goes now (a retry fetches it again). */
  if (ret < 0)
    image_store_collect_garbage(puller->store);
  free(pull.name);
  image_reference_free(&pull.ref);
  return ret;
}

/* ---- Layers from files -------------------------------------------------- */

int
image_layer_from_file(struct image_store *store, const char *path,
                      enum layer_compression compression, const char *chain_id, const char *diff_id,
                      struct error *err)
{
  cleanup_free char *work_dir = NULL;
  cleanup_free char *diff_dir = NULL;
  cleanup_close int fd = -1;
  char actual[72];

  if (image_store_has_layer(store, chain_id))
    return 0;
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return error_set_errno(err, errno, "open %s", path);
  if (image_store_layer_create(store, &work_dir, &diff_dir, err) < 0)
    return -1;
  if (layer_unpack_fd(fd, diff_dir, compression, LAYER_DEFAULT_MAX_SIZE, actual, err) < 0)
    {
      image_store_layer_abort(store, work_dir);
      return error_wrap(err, "unpack %s", path);
    }
  if (check_diff_id(actual, diff_id, err) < 0)
    {
      image_store_layer_abort(store, work_dir);
      return error_wrap(err, "%s", path);
    }
  return image_store_layer_commit(store, work_dir, chain_id, diff_id, err);
}

int
layer_sniff_compression(const char *path, enum layer_compression *out, struct error *err)
{
  static const unsigned char gzip_magic[] = { 0x1f, 0x8b };
  static const unsigned char zstd_magic[] = { 0x28, 0xb5, 0x2f, 0xfd };
  cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
  unsigned char head[4] = { 0 };
  ssize_t n;

  if (fd < 0)
    return error_set_errno(err, errno, "open %s", path);
  n = read(fd, head, sizeof head);
  if (n < 0)
    return error_set_errno(err, errno, "read %s", path);
  if (n >= 2 && memcmp(head, gzip_magic, sizeof gzip_magic) == 0)
    *out = LAYER_COMPRESSION_GZIP;
  else if (n >= 4 && memcmp(head, zstd_magic, sizeof zstd_magic) == 0)
    *out = LAYER_COMPRESSION_ZSTD;
  else
    *out = LAYER_COMPRESSION_NONE;
  return 0;
}
