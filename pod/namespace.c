#include "pod/namespace.h"

#include "common/cleanup.h"
#include "common/log.h"
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

/* Pins the calling thread's namespace of that name at <dir>/<name>. */
static int
pin_namespace(const char *dir, const char *name, struct error *err)
{
  cleanup_free char *source = xasprintf("/proc/thread-self/ns/%s", name);
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

static int
write_sysctl(const struct sysctl_setting *setting, struct error *err)
{
  cleanup_free char *path = xasprintf("/proc/sys/%s", setting->key);
  size_t len = strlen(setting->value);
  cleanup_close int fd = -1;

  for (char *p = path + strlen("/proc/sys/"); *p; p++)
    if (*p == '.')
      *p = '/';
  /* /proc/sys/net and the IPC entries are those of the opening thread's
   * namespaces. */
  fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, setting->value, len) != (ssize_t)len)
    return error_set_errno(err, errno == ENOENT ? EINVAL : errno, "set sysctl %s=%s", setting->key,
                           setting->value);
  return 0;
}

struct namespace_job
{
  const struct pod_namespaces_request *request;
  int flags;
  struct error err;
  int ret;
};

/* Runs in a thread of its own: unshare(2) of network, IPC and UTS
 * namespaces moves only the calling thread, which sets them up and pins
 * them; they then outlive it.  Cheaper than a forked helper, which copies
 * crid's page tables and has to be reaped. */
static int
namespace_setup(struct namespace_job *job)
{
  const struct pod_namespaces_request *request = job->request;
  const char *hostname = (request->kinds & POD_NAMESPACE_UTS) ? request->hostname : NULL;

  if (job->flags && unshare(job->flags) < 0)
    return error_set_errno(&job->err, errno, "create namespaces");
  if ((job->flags & CLONE_NEWNET) && loopback_up() < 0)
    return error_set_errno(&job->err, errno, "bring up loopback in the pod network namespace");
  if (hostname && sethostname(hostname, strlen(hostname)) < 0)
    return error_set_errno(&job->err, errno, "set hostname \"%s\"", hostname);
  for (size_t i = 0; i < request->n_sysctls; i++)
    if (write_sysctl(&request->sysctls[i], &job->err) < 0)
      return -1;
  for (size_t i = 0; i < N_KINDS; i++)
    if ((request->kinds & namespace_kinds[i].kind)
        && pin_namespace(request->dir, namespace_kinds[i].name, &job->err) < 0)
      return -1;
  return 0;
}

static void *
namespace_thread(void *object)
{
  struct namespace_job *job = object;
  job->ret = namespace_setup(job);
  return NULL;
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

int
pod_namespaces_create(const struct pod_namespaces_request *request, struct error *err)
{
  struct namespace_job job = { .request = request, .err = ERROR_INIT };
  pthread_t thread;
  int code;

  if (validate_request(request, err) < 0)
    return -1;
  for (size_t i = 0; i < N_KINDS; i++)
    if (request->kinds & namespace_kinds[i].kind)
      job.flags |= namespace_kinds[i].clone_flag;
  if (mkdir_p(request->dir, 0700, err) < 0)
    return -1;
  code = pthread_create(&thread, NULL, namespace_thread, &job);
  if (code != 0)
    return error_set_errno(err, code, "create namespaces: thread");
  pthread_join(thread, NULL);
  if (job.ret < 0)
    {
      struct error cleanup_err = ERROR_INIT;

      error_move(err, &job.err);
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
