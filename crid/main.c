/* crid: the daemon's entry point and its few subcommands. */
#include "crid/daemon.h"
#include "crid/server.h"
#include "common/cleanup.h"
#include "common/log.h"
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
#include <unistd.h>

#define SHUTDOWN_GRACE_SECONDS 10

const char *crid_runtime_version(void);

static void
usage(FILE *out)
{
  fprintf(out, "usage: crid [OPTIONS] [COMMAND]\n"
               "\n"
               "Kubernetes CRI runtime.  Without a command, runs the daemon.\n"
               "\n"
               "commands:\n"
               "  config            print the effective configuration as TOML\n"
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
  if (optind + 1 < argc)
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
      if (signo == SIGHUP)
        {
          log_info("SIGHUP: reloading the configuration");
          daemon_reload_config(args->daemon);
          continue;
        }
      log_info("%s received", signo == SIGTERM ? "SIGTERM" : "SIGINT");
      server_shutdown(args->server, SHUTDOWN_GRACE_SECONDS);
      return NULL;
    }
}

static int
prepare_directories(struct daemon *daemon, struct error *err)
{
  if (mkdir_p(daemon->config.root, 0711, err) < 0)
    return error_wrap(err, "create root dir");
  return take_state_lock(daemon, err);
}

static int
run_daemon(struct daemon *daemon)
{
  struct error err = ERROR_INIT;
  struct signal_thread_args args = { .daemon = daemon };
  struct server *server;
  pthread_t signals;

  sigemptyset(&args.signals);
  sigaddset(&args.signals, SIGTERM);
  sigaddset(&args.signals, SIGINT);
  sigaddset(&args.signals, SIGHUP);
  /* Blocked before any thread exists, so every thread inherits the mask. */
  pthread_sigmask(SIG_BLOCK, &args.signals, NULL);
  signal(SIGPIPE, SIG_IGN);
  /* Few malloc arenas: most threads are short-lived RPC workers, and every
   * arena they would create stays resident. */
  mallopt(M_ARENA_MAX, 2);
  /* Orphaned children (runtime helpers, monitors' leftovers) are reaped by
   * us rather than by a slow init. */
  prctl(PR_SET_CHILD_SUBREAPER, 1);

  log_info("crid %s starting (root %s, state dir %s)", crid_runtime_version(), daemon->config.root,
           daemon->config.state_dir);
  if (prepare_directories(daemon, &err) < 0)
    goto fail;
  grpc_init();
  server = server_start(daemon, &err);
  if (server == NULL)
    {
      grpc_shutdown();
      goto fail;
    }
  args.server = server;
  pthread_create(&signals, NULL, signal_thread, &args);
  atomic_store(&daemon->ready, true);
  server_run(server);
  pthread_join(signals, NULL);
  server_free(server);
  grpc_shutdown();
  log_info("crid stopped");
  return 0;

fail:
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
  if (strcmp(command, "run") != 0)
    {
      fprintf(stderr, "crid: unknown command '%s'\n", command);
      usage(stderr);
      return 2;
    }
  log_set_level(log_level_parse(daemon.config.log_level));
  ret = run_daemon(&daemon);
  config_free(&daemon.config);
  free(daemon.pod_cidr);
  return ret;
}
