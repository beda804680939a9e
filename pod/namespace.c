#include "pod/namespace.h"
#include "pod/userns.h"

#include "common/cleanup.h"
#include "common/log.h"
#include "common/process.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const struct
{
  enum pod_namespace_kind kind;
  const char *name;
  int clone_flag;
} namespace_kinds[] = {
  { POD_NAMESPACE_NET, "net", CLONE_NEWNET },
  { POD_NAMESPACE_IPC, "ipc", CLONE_NEWIPC },
  { POD_NAMESPACE_UTS, "uts", CLONE_NEWUTS },
  /* Made by a child process, never by the thread (see below). */
  { POD_NAMESPACE_USER, "user", 0 },
};

#define N_KINDS (sizeof namespace_kinds / sizeof namespace_kinds[0])

const char *
pod_namespace_file_name(enum pod_namespace_kind kind)
{
  for (size_t i = 0; i < N_KINDS; i++)
    if (namespace_kinds[i].kind == kind)
      return namespace_kinds[i].name;
  return NULL;
}

int
sysctl_namespace_of(const char *key, enum pod_namespace_kind *kind, struct error *err)
{
  if (strstr(key, "..") || strchr(key, '/') || key[0] == '\0')
    return error_set(err, EINVAL, "invalid sysctl name \"%s\"", key);
  if (str_has_prefix(key, "net."))
    *kind = POD_NAMESPACE_NET;
  else if (str_has_prefix(key, "kernel.shm") || str_has_prefix(key, "kernel.msg")
           || strcmp(key, "kernel.sem") == 0 || str_has_prefix(key, "fs.mqueue."))
    *kind = POD_NAMESPACE_IPC;
  else
    return error_set(err, EINVAL, "sysctl \"%s\" is not namespaced and cannot be set in a pod",
                     key);
  return 0;
}

static int
loopback_up(void)
{
  struct ifreq request;
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  int ret;

  if (fd < 0)
    return -1;
  memset(&request, 0, sizeof request);
  strcpy(request.ifr_name, "lo");
  ret = ioctl(fd, SIOCGIFFLAGS, &request);
  if (ret == 0)
    {
      request.ifr_flags |= IFF_UP | IFF_RUNNING;
      ret = ioctl(fd, SIOCSIFFLAGS, &request);
    }
  close(fd);
  return ret;
}

/* Pins the namespace at source (/proc/<pid>/ns/<name>) at <dir>/<name>. */
static int
pin_namespace(const char *source, const char *dir, const char *name, struct error *err)
{
  cleanup_free char *target = xasprintf("%s/%s", dir, name);
  int fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);

  if (fd < 0)
    return error_set_errno(err, errno, "create %s", target);
  close(fd);
  if (mount(source, target, NULL, MS_BIND, NULL) < 0)
    {
      int saved = errno;
      unlink(target);
      return error_set_errno(err, saved, "pin %s namespace at %s", name, target);
    }
  return 0;
}

/* /proc/sys/<key with '.' as '/'>. */
static char *
sysctl_path(const char *key)
{
  char *path = xasprintf("/proc/sys/%s", key);

  for (char *p = path + strlen("/proc/sys/"); *p; p++)
    if (*p == '.')
      *p = '/';
  return path;
}

enum setup_step
{
  SETUP_USERNS = 1,
  SETUP_UNSHARE,
  SETUP_LOOPBACK,
  SETUP_HOSTNAME,
  SETUP_SYSCTL,
};

/* Where the setup stopped: the setup may run in a forked child, which
 * cannot build an error message, so the parent does from this. */
struct setup_failure
{
  int step; /* enum setup_step; 0 = none */
  int code; /* errno */
  size_t index;
};

struct namespace_job
{
  const struct pod_namespaces_request *request;
  int flags;
  const char *hostname;
  char **sysctl_paths; /* one per request->sysctls */
  struct setup_failure failure;
  /* The user namespace child: it reads from to_child, writes to
   * from_child. */
  int to_child[2];
  int from_child[2];
  /* The thread: */
  struct error err;
  int ret;
};

static int
setup_fail(struct setup_failure *failure, int step, size_t index)
{
  failure->step = step;
  failure->code = errno;
  failure->index = index;
  return -1;
}

/* Creates the namespaces in the calling thread (or child process), then
 * sets them up.  Only async-signal-safe calls: it runs in a forked child
 * for a pod with a user namespace. */
static int
namespace_setup(struct namespace_job *job)
{
  const struct pod_namespaces_request *request = job->request;

  if (job->flags && unshare(job->flags) < 0)
    return setup_fail(&job->failure, SETUP_UNSHARE, 0);
  if ((job->flags & CLONE_NEWNET) && loopback_up() < 0)
    return setup_fail(&job->failure, SETUP_LOOPBACK, 0);
  if (job->hostname && sethostname(job->hostname, strlen(job->hostname)) < 0)
    return setup_fail(&job->failure, SETUP_HOSTNAME, 0);
  /* /proc/sys/net and the IPC entries are those of the opening thread's
   * namespaces. */
  for (size_t i = 0; i < request->n_sysctls; i++)
    {
      const char *value = request->sysctls[i].value;
      int fd = open(job->sysctl_paths[i], O_WRONLY | O_CLOEXEC);
      ssize_t written = fd < 0 ? -1 : write(fd, value, strlen(value));
      int saved = errno;

      if (fd >= 0)
        close(fd);
      errno = saved;
      if (written != (ssize_t)strlen(value))
        return setup_fail(&job->failure, SETUP_SYSCTL, i);
    }
  return 0;
}

static int
setup_error(const struct namespace_job *job, struct error *err)
{
  const struct setup_failure *f = &job->failure;
  const struct sysctl_setting *sysctl = NULL;

  switch (f->step)
    {
    case SETUP_USERNS:
      return error_set_errno(err, f->code, "create the user namespace");
    case SETUP_UNSHARE:
      return error_set_errno(err, f->code, "create namespaces");
    case SETUP_LOOPBACK:
      return error_set_errno(err, f->code, "bring up loopback in the pod network namespace");
    case SETUP_HOSTNAME:
      return error_set_errno(err, f->code, "set hostname \"%s\"", job->hostname);
    case SETUP_SYSCTL:
      sysctl = &job->request->sysctls[f->index];
      return error_set_errno(err, f->code == ENOENT ? EINVAL : f->code, "set sysctl %s=%s",
                             sysctl->key, sysctl->value);
    default:
      return error_set(err, EIO, "namespace setup failed");
    }
}

static int
pin_all(const struct pod_namespaces_request *request, const char *proc_dir, bool user,
        struct error *err)
{
  for (size_t i = 0; i < N_KINDS; i++)
    {
      bool wanted = namespace_kinds[i].kind == POD_NAMESPACE_USER
                        ? user
                        : (request->kinds & namespace_kinds[i].kind) != 0;
      cleanup_free char *source = xasprintf("%s/%s", proc_dir, namespace_kinds[i].name);
      if (wanted && pin_namespace(source, request->dir, namespace_kinds[i].name, err) < 0)
        return -1;
    }
  return 0;
}

/* Runs in a thread of its own: unshare(2) of network, IPC and UTS
 * namespaces moves only the calling thread, which sets them up and pins
 * them; they then outlive it.  Cheaper than a forked helper, which copies
 * crid's page tables and has to be reaped. */
static void *
namespace_thread(void *object)
{
  struct namespace_job *job = object;

  job->ret = namespace_setup(job);
  if (job->ret < 0)
    setup_error(job, &job->err);
  else
    job->ret = pin_all(job->request, "/proc/thread-self/ns", false, &job->err);
  return NULL;
}

static void
report(int fd, const struct setup_failure *failure)
{
  ssize_t ignored = write(fd, failure, sizeof *failure);
  (void)ignored;
}

/* The child of a pod with a user namespace: enters a new one, waits
 * until the parent has written its maps (until then it holds no
 * capability in it), creates the other namespaces inside it, so the pod
 * owns them, reports, and stays until the parent has pinned them all. */
static int
userns_child(void *object)
{
  struct namespace_job *job = object;
  char byte;

  close(job->to_child[1]);
  close(job->from_child[0]);
  if (unshare(CLONE_NEWUSER) < 0)
    {
      setup_fail(&job->failure, SETUP_USERNS, 0);
      report(job->from_child[1], &job->failure);
      return 1;
    }
  report(job->from_child[1], &job->failure);
  if (read(job->to_child[0], &byte, 1) != 1)
    return 1;
  namespace_setup(job);
  report(job->from_child[1], &job->failure);
  /* EOF: pinned, or given up. */
  while (read(job->to_child[0], &byte, 1) > 0)
    ;
  return 0;
}

static bool
read_report(int fd, struct setup_failure *failure)
{
  return read(fd, failure, sizeof *failure) == (ssize_t)sizeof *failure;
}

static int
write_map(pid_t pid, const char *name, const struct pod_id_range *ranges, size_t n,
          struct error *err)
{
  cleanup_free char *path = xasprintf("/proc/%d/%s", (int)pid, name);
  cleanup_free char *text = pod_userns_map_text(ranges, n);
  cleanup_close int fd = open(path, O_WRONLY | O_CLOEXEC);

  if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
    return error_set_errno(err, errno, "write %s of the user namespace", name);
  return 0;
}

static int
userns_parent(struct namespace_job *job, pid_t child, struct error *err)
{
  const struct pod_userns *userns = job->request->userns;
  cleanup_free char *proc_dir = xasprintf("/proc/%d/ns", (int)child);

  if (!read_report(job->from_child[0], &job->failure))
    return error_set(err, EIO, "create the user namespace: the helper process ended");
  if (job->failure.step)
    return setup_error(job, err);
  if (write_map(child, "uid_map", userns->uids, userns->n_uids, err) < 0
      || write_map(child, "gid_map", userns->gids, userns->n_gids, err) < 0)
    return -1;
  if (write(job->to_child[1], "m", 1) != 1)
    return error_set_errno(err, errno, "create the user namespace: tell the helper");
  if (!read_report(job->from_child[0], &job->failure))
    return error_set(err, EIO, "create namespaces: the helper process ended");
  if (job->failure.step)
    return setup_error(job, err);
  return pin_all(job->request, proc_dir, true, err);
}

static void
close_fd(int *fd)
{
  if (*fd >= 0)
    close(*fd);
  *fd = -1;
}

/* The pod's namespaces inside a new user namespace: a forked child makes
 * them (a multi-threaded process cannot enter a user namespace), crid
 * writes the maps and pins what the child made. */
static int
create_in_userns(struct namespace_job *job, struct error *err)
{
  pid_t child;
  int status, ret;
  struct error reap_err = ERROR_INIT;

  if (pipe2(job->to_child, O_CLOEXEC) < 0)
    return error_set_errno(err, errno, "create namespaces: pipe");
  if (pipe2(job->from_child, O_CLOEXEC) < 0)
    {
      ret = error_set_errno(err, errno, "create namespaces: pipe");
      close_fd(&job->to_child[0]);
      close_fd(&job->to_child[1]);
      return ret;
    }
  ret = process_fork(userns_child, job, &child, err);
  close_fd(&job->to_child[0]);
  close_fd(&job->from_child[1]);
  if (ret == 0)
    {
      ret = userns_parent(job, child, err);
      close_fd(&job->to_child[1]);
      if (process_reap(child, &status, &reap_err) < 0)
        log_warn("namespace helper: %s", error_message(&reap_err));
      error_clear(&reap_err);
    }
  close_fd(&job->to_child[1]);
  close_fd(&job->from_child[0]);
  return ret;
}

static int
validate_request(const struct pod_namespaces_request *request, struct error *err)
{
  for (size_t i = 0; i < request->n_sysctls; i++)
    {
      enum pod_namespace_kind kind;
      if (sysctl_namespace_of(request->sysctls[i].key, &kind, err) < 0)
        return -1;
      if (!(request->kinds & kind))
        return error_set(err, EINVAL,
                         "sysctl \"%s\" needs the pod's own %s namespace, and the pod uses the "
                         "host's",
                         request->sysctls[i].key, pod_namespace_file_name(kind));
    }
  return 0;
}

static int
create_in_thread(struct namespace_job *job, struct error *err)
{
  pthread_t thread;
  int code = pthread_create(&thread, NULL, namespace_thread, job);

  if (code != 0)
    return error_set_errno(err, code, "create namespaces: thread");
  pthread_join(thread, NULL);
  if (job->ret < 0)
    error_move(err, &job->err);
  return job->ret;
}

int
pod_namespaces_create(const struct pod_namespaces_request *request, struct error *err)
{
  struct namespace_job job
      = { .request = request, .err = ERROR_INIT, .to_child = { -1, -1 }, .from_child = { -1, -1 } };
  bool userns = request->userns && request->userns->enabled;
  int ret;

  if (validate_request(request, err) < 0)
    return -1;
  for (size_t i = 0; i < N_KINDS; i++)
    if (request->kinds & namespace_kinds[i].kind)
      job.flags |= namespace_kinds[i].clone_flag;
  job.hostname = (request->kinds & POD_NAMESPACE_UTS) ? request->hostname : NULL;
  job.sysctl_paths = xcalloc(request->n_sysctls + 1, sizeof *job.sysctl_paths);
  for (size_t i = 0; i < request->n_sysctls; i++)
    job.sysctl_paths[i] = sysctl_path(request->sysctls[i].key);
  ret = mkdir_p(request->dir, 0700, err);
  if (ret == 0)
    ret = userns ? create_in_userns(&job, err) : create_in_thread(&job, err);
  strv_free(job.sysctl_paths);
  if (ret < 0)
    {
      struct error cleanup_err = ERROR_INIT;

      if (pod_namespaces_remove(request->dir, &cleanup_err) < 0)
        log_warn("roll back namespaces: %s", error_message(&cleanup_err));
      error_clear(&cleanup_err);
      return -1;
    }
  return 0;
}

static int
unpin(const char *dir, const char *name, struct error *err)
{
  cleanup_free char *path = xasprintf("%s/%s", dir, name);

  if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
    return error_set_errno(err, errno, "unmount %s", path);
  if (unlink(path) < 0 && errno != ENOENT)
    return error_set_errno(err, errno, "remove %s", path);
  return 0;
}

int
pod_namespaces_remove(const char *dir, struct error *err)
{
  for (size_t i = 0; i < N_KINDS; i++)
    if (unpin(dir, namespace_kinds[i].name, err) < 0)
      return -1;
  if (rmdir(dir) < 0 && errno != ENOENT)
    return error_set_errno(err, errno, "remove %s", dir);
  return 0;
}

struct connect_job
{
  const char *netns_path;
  uint16_t port;
  int fd;
  struct error err;
};

/* Tries 127.0.0.1, then ::1, as dialing "localhost" does. */
static int
connect_localhost(uint16_t port, struct error *err)
{
  struct sockaddr_in v4 = { .sin_family = AF_INET,
                            .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  struct sockaddr_in6 v6
      = { .sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = IN6ADDR_LOOPBACK_INIT };
  const struct sockaddr *addrs[2] = { (struct sockaddr *)&v4, (struct sockaddr *)&v6 };
  const socklen_t lens[2] = { sizeof v4, sizeof v6 };
  int saved = 0;

  for (int i = 0; i < 2; i++)
    {
      int fd = socket(addrs[i]->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0)
        {
          saved = saved ? saved : errno;
          continue;
        }
      if (connect(fd, addrs[i], lens[i]) == 0)
        return fd;
      /* The first address's error says most ("connection refused"). */
      saved = saved ? saved : errno;
      close(fd);
    }
  return error_set_errno(err, saved, "connect to localhost:%u", (unsigned)port);
}

static void *
connect_thread(void *object)
{
  struct connect_job *job = object;
  cleanup_close int ns = open(job->netns_path, O_RDONLY | O_CLOEXEC);

  if (ns < 0 || setns(ns, CLONE_NEWNET) < 0)
    {
      error_set_errno(&job->err, errno, "enter network namespace %s", job->netns_path);
      return NULL;
    }
  job->fd = connect_localhost(job->port, &job->err);
  return NULL;
}

int
pod_namespace_connect_localhost(const char *netns_path, uint16_t port, struct error *err)
{
  struct connect_job job = { netns_path, port, -1, ERROR_INIT };
  pthread_t thread;
  int code;

  if (netns_path == NULL)
    return connect_localhost(port, err);
  /* A thread of its own enters the namespace and ends with it; the socket
   * stays in the namespace it was made in. */
  code = pthread_create(&thread, NULL, connect_thread, &job);
  if (code != 0)
    return error_set_errno(err, code, "connect in %s: thread", netns_path);
  pthread_join(thread, NULL);
  if (job.fd < 0)
    error_move(err, &job.err);
  return job.fd;
}
