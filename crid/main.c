/* crid: the daemon's entry point and its few subcommands. */
#include "crid/daemon.h"
#include "crid/metrics.h"
#include "crid/server.h"
#include "crid/stream/stream_server.h"
#include "common/children.h"
#include "pod/pod_manager.h"
#include "netcni/cni_watch.h"
#include "image/pull.h"
#include "image/registry.h"
#include "image/store.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/sd_notify.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grpc/grpc.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#define SHUTDOWN_GRACE_SECONDS 10

const char *crid_runtime_version(void);
int image_cli_main(struct daemon *daemon, int argc, char **argv);

static void
usage(FILE *out)
{
  fprintf(out, "usage: crid [OPTIONS] [COMMAND]\n"
               "\n"
               "Kubernetes CRI runtime.  Without a command, runs the daemon.\n"
               "\n"
               "commands:\n"
               "  config            print the effective configuration as TOML\n"
               "  image import FILE import an OCI layout or docker archive tarball\n"
               "                    (refused while crid runs: the image store is locked)\n"
               "  image list        print the images of the store\n"
               "  version           print the version\n"
               "\n"
               "options:\n"
               "  --config FILE       main config file (default " CONFIG_DEFAULT_FILE ")\n"
               "  --config-dir DIR    drop-in directory (default " CONFIG_DEFAULT_DIR ")\n"
               "  --listen PATH       gRPC unix socket (alias --socket)\n"
               "  --root DIR          persistent state (images, containers)\n"
               "  --state-dir DIR     runtime state (namespaces, exits, lock)\n"
               "  --log-level LEVEL   fatal, error, warn, info, debug or trace\n"
               "  --version           print the version\n"
               "  -h, --help          this text\n");
}

static int
parse_arguments(int argc, char **argv, struct daemon *daemon, const char **command)
{
  static const struct option options[] = {
    { "config", required_argument, NULL, 'c' },
    { "config-dir", required_argument, NULL, 'd' },
    { "listen", required_argument, NULL, 'l' },
    { "socket", required_argument, NULL, 'l' },
    { "root", required_argument, NULL, 'r' },
    { "state-dir", required_argument, NULL, 's' },
    { "log-level", required_argument, NULL, 'L' },
    { "version", no_argument, NULL, 'V' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  int opt;

  daemon->config_file = CONFIG_DEFAULT_FILE;
  daemon->config_dir = CONFIG_DEFAULT_DIR;
  while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1)
    switch (opt)
      {
      case 'c':
        daemon->config_file = optarg;
        daemon->config_file_given = true;
        break;
      case 'd':
        daemon->config_dir = optarg;
        break;
      case 'l':
        daemon->overrides.listen = optarg;
        break;
      case 'r':
        daemon->overrides.root = optarg;
        break;
      case 's':
        daemon->overrides.state_dir = optarg;
        break;
      case 'L':
        daemon->overrides.log_level = optarg;
        break;
      case 'V':
        *command = "version";
        return 0;
      case 'h':
        usage(stdout);
        exit(0);
      default:
        usage(stderr);
        return -1;
      }
  *command = optind < argc ? argv[optind] : "run";
  if (optind + 1 < argc && strcmp(*command, "image") != 0)
    {
      fprintf(stderr, "crid: unexpected argument '%s'\n", argv[optind + 1]);
      return -1;
    }
  return 0;
}

static int
take_state_lock(struct daemon *daemon, struct error *err)
{
  const char *state_dir = daemon->config.state_dir;
  cleanup_free char *path = xasprintf("%s/crid.lock", state_dir);
  cleanup_close int fd = -1;

  if (mkdir_p(state_dir, 0711, err) < 0)
    return error_wrap(err, "create state dir");
  fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    return error_set_errno(err, errno, "open lock file %s", path);
  if (flock(fd, LOCK_EX | LOCK_NB) < 0)
    {
      if (errno == EWOULDBLOCK)
        return error_set(err, EBUSY,
                         "another crid is already running with state dir %s (%s is locked)",
                         state_dir, path);
      return error_set_errno(err, errno, "lock %s", path);
    }
  daemon->lock_fd = steal_fd(&fd);
  return 0;
}

struct signal_thread_args
{
  struct daemon *daemon;
  struct server *server;
  sigset_t signals;
};

/* All signals the daemon acts on arrive here, never in other threads. */
static void *
signal_thread(void *arg)
{
  struct signal_thread_args *args = arg;

  for (;;)
    {
      int signo;
      if (sigwait(&args->signals, &signo) != 0)
        continue;
      if (signo == SIGCHLD)
        {
          children_reap_orphans();
          continue;
        }
      if (signo == SIGHUP)
        {
          log_info("SIGHUP: reloading the configuration");
          daemon_reload_config(args->daemon);
          continue;
        }
      log_info("%s received", signo == SIGTERM ? "SIGTERM" : "SIGINT");
      sd_notifyf(&args->daemon->notifier, "STOPPING=1\nSTATUS=stopping");
      server_shutdown(args->server, SHUTDOWN_GRACE_SECONDS);
      return NULL;
    }
}

/* The handler runs its binary from a read-only bind mount under the
 * state dir (pod/oci_runtime.h says why); without one it runs it as it
 * is, which only costs time. */
static void
pin_runtime_binary(struct pod_runtime_handler *handler, const char *state_dir)
{
  cleanup_free char *dir = xasprintf("%s/runtime-bin", state_dir);
  struct error err = ERROR_INIT;
  char *pinned = NULL;

  if (oci_runtime_pin_binary(handler->path, dir, handler->name, &pinned, &err) < 0)
    {
      log_warn("runtime handler %s: %s; running %s as it is", handler->name, error_message(&err),
               handler->path);
      error_clear(&err);
      return;
    }
  free(handler->path);
  handler->path = pinned;
}

/* paths: the handlers' binaries; those pinned under state_dir go. */
static void
unpin_runtime_binaries(const char *state_dir, char *const *paths)
{
  cleanup_free char *dir = xasprintf("%s/runtime-bin/", state_dir);

  for (size_t i = 0; paths && paths[i]; i++)
    if (str_has_prefix(paths[i], dir))
      oci_runtime_unpin_binary(paths[i]);
  rmdir(dir);
}

static char **
handler_paths(const struct pod_manager_options *options)
{
  char **paths = xcalloc(options->n_handlers + 1, sizeof(char *));

  for (size_t i = 0; i < options->n_handlers; i++)
    paths[i] = xstrdup(options->handlers[i].path);
  return paths;
}

/* A runtime whose features cannot be read gets none: a feature it has
 * goes unused, which is safe. */
static void
probe_runtime_features(struct pod_runtime_handler *handler)
{
  struct error err = ERROR_INIT;

  if (oci_runtime_features(handler->path, &handler->features, &err) < 0)
    {
      log_warn("runtime handler %s: %s", handler->name, error_message(&err));
      error_clear(&err);
    }
}

/* A node without a watchable CNI dir still serves: Status then reads it. */
static void
watch_network(struct daemon *daemon)
{
  struct error err = ERROR_INIT;

  if (cni_watch_start(daemon->config.network_dir, &daemon->network_watch, &err) < 0)
    {
      log_warn("%s", error_message(&err));
      error_clear(&err);
    }
}

static struct pod_manager *
pods_open(struct daemon *daemon, struct error *err)
{
  const struct crid_config *c = &daemon->config;
  struct error ignored = ERROR_INIT;
  cleanup_free char *bin_dir = exe_directory(&ignored);
  struct pod_manager_options options = { 0 };
  cleanup_strv char **pinned = NULL;
  struct pod_manager *manager;

  if (bin_dir == NULL)
    {
      error_clear(&ignored);
      bin_dir = xstrdup("/usr/local/bin");
    }

  options.root = xstrdup(c->root);
  options.state_dir = xstrdup(c->state_dir);
  options.conmon_path = xstrdup(c->conmon_path);
  options.pause_path = xasprintf("%s/crid-pause", bin_dir);
  options.pause_image = xstrdup(c->pause_image);
  options.systemd_cgroup = strcmp(c->cgroup_manager, "systemd") == 0;
  options.shm_size = c->shm_size;
  options.seccomp_use_default_when_empty = c->seccomp_use_default_when_empty;
  options.default_handler = xstrdup(c->default_runtime);
  options.handlers = xcalloc(c->n_runtimes + 1, sizeof *options.handlers);
  options.n_handlers = c->n_runtimes;
  for (size_t i = 0; i < c->n_runtimes; i++)
    {
      options.handlers[i].name = xstrdup(c->runtimes[i].name);
      options.handlers[i].path = xstrdup(c->runtimes[i].runtime_path);
      options.handlers[i].root = xstrdup(c->runtimes[i].runtime_root);
      options.handlers[i].precompiled_seccomp
          = config_runtime_takes_compiled_seccomp(&c->runtimes[i]);
      pin_runtime_binary(&options.handlers[i], c->state_dir);
      probe_runtime_features(&options.handlers[i]);
    }
  options.cni_config_dir = xstrdup(c->network_dir);
  options.cni_plugin_dirs = xcalloc(strv_length(c->plugin_dirs) + 1, sizeof(char *));
  for (size_t i = 0; c->plugin_dirs && c->plugin_dirs[i]; i++)
    options.cni_plugin_dirs[i] = xstrdup(c->plugin_dirs[i]);
  options.cni_timeout_seconds = 60;
  options.stats_period_seconds = c->collection_period;
  options.cdi_spec_dirs = strv_copy(c->cdi_spec_dirs);
  options.images = daemon->images;
  options.puller = daemon->puller;
  pinned = handler_paths(&options);
  manager = pod_manager_new(&options, err);
  /* A start that fails here leaves no pinned binary mounted. */
  if (manager == NULL)
    unpin_runtime_binaries(c->state_dir, pinned);
  return manager;
}

static int
prepare_directories(struct daemon *daemon, struct error *err)
{
  if (mkdir_p(daemon->config.root, 0711, err) < 0)
    return error_wrap(err, "create root dir");
  return take_state_lock(daemon, err);
}

static int
images_open(struct daemon *daemon, struct error *err)
{
  const struct crid_config *c = &daemon->config;
  struct image_puller_options options = { 0 };

  daemon->images = image_store_open(c->root, 0, err);
  if (daemon->images == NULL)
    return -1;
  daemon->registry = registry_client_new(c->registries, c->n_registries);
  options.store = daemon->images;
  options.registry = daemon->registry;
  options.max_concurrent_downloads = (int)c->max_concurrent_downloads;
  options.progress_timeout_seconds = c->pull_progress_timeout;
  daemon->puller = image_puller_new(&options);
  return 0;
}

/* After the server stopped: no pull is running any more. */
static void
images_close(struct daemon *daemon)
{
  image_puller_free(daemon->puller);
  registry_client_free(daemon->registry);
  image_store_free(daemon->images);
  daemon->puller = NULL;
  daemon->registry = NULL;
  daemon->images = NULL;
}

/* Every client connection, exec session and pull costs descriptors; the
 * soft limit of 1024 is not what a node's runtime should run out at. */
static void
raise_fd_limit(void)
{
  struct rlimit limit;

  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max)
    {
      limit.rlim_cur = limit.rlim_max;
      if (setrlimit(RLIMIT_NOFILE, &limit) < 0)
        log_warn("raise the open files limit: %s", strerror(errno));
    }
}

static int
streams_start(struct daemon *daemon, struct error *err)
{
  const struct crid_config *c = &daemon->config;
  struct stream_server_options options = { .address = c->stream_address,
                                           .port = (int)c->stream_port,
                                           .max_sessions = (unsigned)c->stream_max_sessions,
                                           .tls_cert = c->stream_tls_cert,
                                           .tls_key = c->stream_tls_key,
                                           .tls_ca = c->stream_tls_ca };

  config_parse_duration(c->stream_idle_timeout, &options.idle_timeout_s);
  daemon->streams = stream_server_start(daemon->pods, &options, err);
  if (daemon->streams == NULL)
    return error_wrap(err, "streaming server");
  return 0;
}

/* After recovery, as the streaming server: a scrape reads the pod tables. */
static int
metrics_start(struct daemon *daemon, struct error *err)
{
  if (!daemon->config.enable_metrics)
    return 0;
  daemon->metrics = metrics_server_start(daemon, err);
  return daemon->metrics ? 0 : -1;
}

/* Before any other thread exists (setenv is not thread-safe), after the
 * signals are blocked (the watchdog thread inherits the mask): the notify
 * variables leave the environment here, so no child inherits them.  The
 * watchdog pings from the start, as recovery may take longer than its
 * interval. */
static struct sd_watchdog *
notify_start(struct daemon *daemon)
{
  struct error err = ERROR_INIT;

  if (sd_notifier_from_environment(&daemon->notifier, &err) < 0)
    {
      log_warn("systemd notification: %s", error_message(&err));
      error_clear(&err);
    }
  return sd_watchdog_start(&daemon->notifier);
}

static void
notify_failure(const struct daemon *daemon, const struct error *err)
{
  sd_notifyf(&daemon->notifier, "STATUS=failed: %s", error_message(err));
}

static int
run_daemon(struct daemon *daemon)
{
  struct error err = ERROR_INIT;
  struct signal_thread_args args = { .daemon = daemon };
  struct sd_watchdog *watchdog;
  struct server *server;
  pthread_t signals;
  int exit_code = 0;

  sigemptyset(&args.signals);

  sigaddset(&args.signals, SIGTERM);
  sigaddset(&args.signals, SIGINT);
  sigaddset(&args.signals, SIGHUP);
  sigaddset(&args.signals, SIGCHLD);
  /* Blocked before any thread exists, so every thread inherits the mask. */
  pthread_sigmask(SIG_BLOCK, &args.signals, NULL);
  signal(SIGPIPE, SIG_IGN);
  watchdog = notify_start(daemon);
  /* Few malloc arenas: most threads are short-lived RPC workers, and every
   * arena they would create stays resident. */
  mallopt(M_ARENA_MAX, 2);
  /* A fixed threshold: large buffers (layer unpacking) are mapped and given
   * back when freed, instead of raising the threshold and staying resident
   * in the heap after a pull. */
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);

  raise_fd_limit();
  /* Orphaned children (runtime helpers, monitors' leftovers) are reaped by
   * us rather than by a slow init. */
  prctl(PR_SET_CHILD_SUBREAPER, 1);

  log_info("crid %s starting (root %s, state dir %s)", crid_runtime_version(), daemon->config.root,
           daemon->config.state_dir);
  if (prepare_directories(daemon, &err) < 0)
    goto fail;
  watch_network(daemon);
  grpc_init();
  /* Image store recovery (leftovers of interrupted pulls) happens before
   * the socket exists; a locked store (an import running) stops us here. */
  sd_notifyf(&daemon->notifier, "STATUS=opening the image store");
  if (images_open(daemon, &err) < 0)
    goto fail;
  server = server_start(daemon, &err);
  if (server == NULL)
    {
      grpc_shutdown();
      goto fail;
    }
  args.server = server;
  pthread_create(&signals, NULL, signal_thread, &args);
  /* Serving already, answering UNAVAILABLE until recovery is done. */
  sd_notifyf(&daemon->notifier, "STATUS=recovering pod sandboxes and containers");
  daemon->pods = pods_open(daemon, &err);
  if (daemon->pods == NULL)
    {
      notify_failure(daemon, &err);
      log_error("%s", error_message(&err));
      error_clear(&err);
      exit_code = 1;
      kill(getpid(), SIGTERM);
    }
  else
    {
      /* RemoveImage refuses an image a container uses. */
      image_store_set_in_use_check(daemon->images, pod_manager_image_in_use, daemon->pods);
      if (streams_start(daemon, &err) < 0 || metrics_start(daemon, &err) < 0)
        {
          notify_failure(daemon, &err);
          log_error("%s", error_message(&err));
          error_clear(&err);
          exit_code = 1;
          kill(getpid(), SIGTERM);
        }
      else
        {
          atomic_store(&daemon->ready, true);
          /* The socket accepts already and recovery is done: what a
           * kubelet ordered after crid.service waits for. */
          daemon_notify_ready(daemon, NULL);
        }
    }
  server_run(server);
  pthread_join(signals, NULL);
  server_free(server);
  /* No RPC runs any more: end the sessions (their exec'd processes with
   * them) and the listener. */
  stream_server_stop(daemon->streams);
  daemon->streams = NULL;
  /* Before the pod manager goes: a scrape reads its tables. */
  metrics_server_stop(daemon->metrics);
  daemon->metrics = NULL;
  if (daemon->images)
    image_store_set_in_use_check(daemon->images, NULL, NULL);
  if (daemon->pods)
    {
      cleanup_strv char **paths = handler_paths(&daemon->pods->options);
      unpin_runtime_binaries(daemon->config.state_dir, paths);
    }
  pod_manager_free(daemon->pods);
  images_close(daemon);
  cni_watch_stop(daemon->network_watch);
  grpc_shutdown();
  sd_watchdog_stop(watchdog);
  log_info("crid stopped");
  return exit_code;

fail:
  notify_failure(daemon, &err);
  sd_watchdog_stop(watchdog);
  log_error("%s", error_message(&err));
  error_clear(&err);
  return 1;
}

int
main(int argc, char **argv)
{
  struct daemon daemon = { .lock_fd = -1 };
  struct error err = ERROR_INIT;
  const char *command = NULL;
  int ret;

  if (parse_arguments(argc, argv, &daemon, &command) < 0)
    return 2;
  if (strcmp(command, "version") == 0)
    {
      printf("crid version %s\nCRI API v1\n", crid_runtime_version());
      return 0;
    }
  pthread_mutex_init(&daemon.lock, NULL);
  config_init(&daemon.config);
  if (daemon_load_config(&daemon, &daemon.config, &err) < 0)
    {
      fprintf(stderr, "crid: %s\n", error_message(&err));
      return 1;
    }
  if (strcmp(command, "config") == 0)
    {
      cleanup_free char *text = config_to_toml(&daemon.config);
      fputs(text, stdout);
      return 0;
    }
  if (strcmp(command, "image") == 0)
    return image_cli_main(&daemon, argc - optind, argv + optind);
  if (strcmp(command, "run") != 0)
    {
      fprintf(stderr, "crid: unknown command '%s'\n", command);
      usage(stderr);
      return 2;
    }
  if (config_check_state_dir(&daemon.config, &err) < 0)
    {
      fprintf(stderr, "crid: %s\n", error_message(&err));
      error_clear(&err);
      return 1;
    }
  log_set_level(log_level_parse(daemon.config.log_level));
  ret = run_daemon(&daemon);
  config_free(&daemon.config);
  free(daemon.pod_cidr);
  return ret;
}
