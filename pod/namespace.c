#include "pod/namespace.h"
#include "common/children.h"

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
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

/* What the child needs, prepared before fork: after fork in a threaded
 * process only async-signal-safe calls are allowed, so no allocation. */
struct child_plan
{
  int flags;
  const char *hostname;
  char **sysctl_paths;
  const struct sysctl_setting *sysctls;
  size_t n_sysctls;
  int report_fd;
};

static void __attribute__((noreturn)) child_fail(const struct child_plan *plan, int step)
{
  int codes[2] = { step, errno };
  if (write(plan->report_fd, codes, sizeof codes) < 0)
    _exit(2);
  _exit(1);
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

enum child_step
{
  STEP_UNSHARE = 1,
  STEP_LOOPBACK,
  STEP_HOSTNAME,
  STEP_SYSCTL, /* + index */
};

static void __attribute__((noreturn)) child_main(const struct child_plan *plan)
{
  if (unshare(plan->flags) < 0)
    child_fail(plan, STEP_UNSHARE);
  if ((plan->flags & CLONE_NEWNET) && loopback_up() < 0)
    child_fail(plan, STEP_LOOPBACK);
  if (plan->hostname && sethostname(plan->hostname, strlen(plan->hostname)) < 0)
    child_fail(plan, STEP_HOSTNAME);
  for (size_t i = 0; i < plan->n_sysctls; i++)
    {
      int fd = open(plan->sysctl_paths[i], O_WRONLY | O_CLOEXEC);
      size_t len = strlen(plan->sysctls[i].value);
      if (fd < 0 || write(fd, plan->sysctls[i].value, len) != (ssize_t)len)
        child_fail(plan, STEP_SYSCTL + (int)i);
      close(fd);
    }
  /* Stay until the parent has bind-mounted our namespaces. */
  if (write(plan->report_fd, "", 1) < 0)
    _exit(2);
  pause();
  _exit(0);
}

static int
explain_child_failure(const struct child_plan *plan, const int codes[2], struct error *err)
{
  int step = codes[0], code = codes[1];

  if (step == STEP_UNSHARE)
    return error_set_errno(err, code, "create namespaces");
  if (step == STEP_LOOPBACK)
    return error_set_errno(err, code, "bring up loopback in the pod network namespace");
  if (step == STEP_HOSTNAME)
    return error_set_errno(err, code, "set hostname \"%s\"", plan->hostname);
  if (step >= STEP_SYSCTL && (size_t)(step - STEP_SYSCTL) < plan->n_sysctls)
    return error_set_errno(err, code == ENOENT ? EINVAL : code, "set sysctl %s=%s",
                           plan->sysctls[step - STEP_SYSCTL].key,
                           plan->sysctls[step - STEP_SYSCTL].value);
  return error_set(err, EIO, "namespace helper failed");
}

static int
pin_namespace(pid_t pid, const char *dir, const char *name, struct error *err)
{
  cleanup_free char *source = xasprintf("/proc/%d/ns/%s", (int)pid, name);
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

static void
free_sysctl_paths(char **paths, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free(paths[i]);
  free(paths);
}

static char **
sysctl_paths_of(const struct pod_namespaces_request *request)
{
  char **paths = xcalloc(request->n_sysctls + 1, sizeof *paths);
  for (size_t i = 0; i < request->n_sysctls; i++)
    {
      char *path = xasprintf("/proc/sys/%s", request->sysctls[i].key);
      for (char *p = path + strlen("/proc/sys/"); *p; p++)
        if (*p == '.')
          *p = '/';
      paths[i] = path;
    }
  return paths;
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
run_child(struct child_plan *plan, pid_t *out, struct error *err)
{
  int fds[2];
  int codes[2];
  ssize_t n;
  pid_t pid;

  if (pipe2(fds, O_CLOEXEC) < 0)
    return error_set_errno(err, errno, "pipe");
  plan->report_fd = fds[1];
  children_lock();
  pid = fork();
  if (pid > 0)
    children_claim(pid);
  if (pid != 0)
    children_unlock();
  if (pid < 0)
    {
      close(fds[0]);
      close(fds[1]);
      return error_set_errno(err, errno, "fork");
    }
  if (pid == 0)
    {
      close(fds[0]);
      child_main(plan);
    }
  close(fds[1]);
  do
    n = read(fds[0], codes, sizeof codes);
  while (n < 0 && errno == EINTR);
  close(fds[0]);
  *out = pid;
  if (n == 1)
    return 0;
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  children_release(pid);
  if (n == (ssize_t)sizeof codes)
    return explain_child_failure(plan, codes, err);
  return error_set(err, EIO, "namespace helper exited early");
}

int
pod_namespaces_create(const struct pod_namespaces_request *request, struct error *err)
{
  struct child_plan plan = { 0 };
  pid_t pid = -1;
  int ret = 0;

  if (validate_request(request, err) < 0)
    return -1;
  for (size_t i = 0; i < N_KINDS; i++)
    if (request->kinds & namespace_kinds[i].kind)
      plan.flags |= namespace_kinds[i].clone_flag;
  plan.hostname = (request->kinds & POD_NAMESPACE_UTS) ? request->hostname : NULL;
  plan.sysctls = request->sysctls;
  plan.n_sysctls = request->n_sysctls;
  plan.sysctl_paths = sysctl_paths_of(request);
  if (mkdir_p(request->dir, 0700, err) < 0)
    {
      free_sysctl_paths(plan.sysctl_paths, plan.n_sysctls);
      return -1;
    }
  if (run_child(&plan, &pid, err) < 0)
    {
      pid = -1;
      ret = -1;
    }
  for (size_t i = 0; ret == 0 && i < N_KINDS; i++)
    if (request->kinds & namespace_kinds[i].kind)
      ret = pin_namespace(pid, request->dir, namespace_kinds[i].name, err);
  if (pid > 0)
    {
      kill(pid, SIGKILL);
      waitpid(pid, NULL, 0);
      children_release(pid);
    }
  free_sysctl_paths(plan.sysctl_paths, plan.n_sysctls);
  if (ret < 0)
    {
      struct error cleanup_err = ERROR_INIT;
      if (pod_namespaces_remove(request->dir, &cleanup_err) < 0)
        log_warn("roll back namespaces: %s", error_message(&cleanup_err));
      error_clear(&cleanup_err);
    }
  return ret;
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
