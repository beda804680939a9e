/* CreateContainer, StartContainer, StopContainer, RemoveContainer,
 * ReopenContainerLog, UpdateContainerResources and learning of exits.
 *
 * Create: reserve the name, resolve the image, mount the overlay rootfs,
 * write config.json, run `<runtime> create` through crid-conmon, persist.
 * Every step that succeeded pushes its undo, so a failure leaves nothing.
 *
 * On disk: <root>/containers/<id>/ is the OCI bundle (config.json,
 * rootfs/) and holds upper/, work/, request.pb and state.json; the
 * monitor's files are in <state>/conmon/<id>/ (ctl, attach, oom, pid
 * files) and its exit file is <state>/exits/<id>. */
#include "pod/layout.h"
#include "pod/container.h"
#include "pod/container_resources.h"
#include "pod/signal_name.h"
#include "common/trash.h"
#include "pod/cdi.h"
#include "common/failpoint.h"
#include "pod/capabilities.h"
#include "pod/seccomp.h"
#include "pod/user.h"
#include "pod/cgroup.h"
#include "pod/monitor.h"
#include "pod/oci_runtime.h"
#include "pod/oci_spec.h"
#include "pod/pod_manager.h"
#include "pod/container_userns.h"
#include "pod/volume_sources.h"
#include "pod/rootfs.h"
#include "pod/sandbox.h"
#include "common/atomic_file.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/process.h"
#include "common/undo.h"
#include "common/util.h"
#include "image/manifest.h"
#include "image/store.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* After SIGKILL a container is gone at once; its monitor then drains the
 * output for at most 2 s before it writes the exit file. */
#define KILL_WAIT_MS 10000
#define REOPEN_WAIT_MS 5000

/* ---- Stop signal ----------------------------------------------------- */

/* CRI stop_signal (1.33+) first, then the image's StopSignal, then TERM. */
static int
choose_stop_signal(const Runtime__V1__ContainerConfig *config, const struct image_config *image,
                   struct error *err)
{
  if (config->stop_signal != RUNTIME__V1__SIGNAL__RUNTIME_DEFAULT)
    {
      const ProtobufCEnumValue *value = protobuf_c_enum_descriptor_get_value(
          &runtime__v1__signal__descriptor, config->stop_signal);
      int signo = value ? signal_parse(value->name) : -1;
      if (signo < 0)
        return error_set(err, EINVAL, "unknown stop signal %d", (int)config->stop_signal);
      return signo;
    }
  if (image && image->stop_signal && image->stop_signal[0])
    {
      int signo = signal_parse(image->stop_signal);
      if (signo < 0)
        return error_set(err, EINVAL, "the image's stop signal \"%s\" is not a signal",
                         image->stop_signal);
      return signo;
    }
  return SIGTERM;
}

/* ---- Exits ----------------------------------------------------------- */

static int64_t
file_mtime_ns(const char *path)
{
  struct stat st;
  if (stat(path, &st) < 0)
    return time_realtime_ns();
  return (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
}

/* With lock held: reads the exit file; true when the container has
 * ended (now or before). */
static bool
refresh_locked(struct pod_manager *manager, struct container *container)
{
  cleanup_free char *exits = layout_area(manager, LAYOUT_EXITS);
  cleanup_free char *exit_path = xasprintf("%s/%s", exits, container->id);
  cleanup_free char *socket_dir = layout_monitor_dir(manager, container->id);
  cleanup_free char *oom_path = xasprintf("%s/oom", socket_dir);
  struct error err = ERROR_INIT;
  int status = 0, ret;

  struct container_change change = { .state = CONTAINER_EXITED };

  if (container->state == CONTAINER_EXITED)
    return true;
  if (container->removed || !container->runtime_created || container->starting)
    return false;
  ret = monitor_read_exit(exits, container->id, &status, &err);
  if (ret < 0)
    {
      log_warn("container %.12s: %s", container->id, error_message(&err));
      error_clear(&err);
      return false;
    }
  if (ret == 0)
    {
      /* No exit file: the monitor still runs, or it is gone (a reboot,
       * a kill) and nobody will ever write one. */
      if (process_alive(container->pid) || process_alive(monitor_read_pid(socket_dir)))
        return false;
      /* The monitor may have written the file just now. */
      ret = monitor_read_exit(exits, container->id, &status, &err);
      error_clear(&err);
    }
  if (ret > 0)
    {
      change.exit_code = status;
      change.at = file_mtime_ns(exit_path);
      change.oom_killed = access(oom_path, F_OK) == 0;
      log_info("container %.12s exited with status %d%s", container->id, status,
               change.oom_killed ? " (OOM killed)" : "");
    }
  else
    {
      change.exit_code = 255;
      change.at = time_realtime_ns();
      change.message = "the container and its monitor are gone";
    }
  if (container_change_state(manager, container, &change, &err) < 0)
    log_warn("%s", error_message(&err));
  error_clear(&err);
  return true;
}

void
container_refresh(struct pod_manager *manager, struct container *container)
{
  pthread_mutex_lock(&container->lock);
  refresh_locked(manager, container);
  pthread_mutex_unlock(&container->lock);
}

static bool
has_ended(struct pod_manager *manager, struct container *container)
{
  bool ended;
  pthread_mutex_lock(&container->lock);
  ended = refresh_locked(manager, container);
  pthread_mutex_unlock(&container->lock);
  return ended;
}

/* The monitor writes the exit file and then ends: its end (seen on a
 * pidfd, no polling delay) is when the file is there to read.  The exit
 * watcher's event may come a moment later, so this does not wait for it.
 * A monitor that died without writing the file leaves the poll. */
static bool
wait_for_end(struct pod_manager *manager, struct container *container, int64_t timeout_ms)
{
  cleanup_free char *socket_dir = layout_monitor_dir(manager, container->id);
  int64_t deadline = time_monotonic_ns() + timeout_ms * 1000000LL;
  pid_t monitor = monitor_read_pid(socket_dir);

  while (!has_ended(manager, container))
    {
      int64_t left_ms = (deadline - time_monotonic_ns()) / 1000000LL;

      if (left_ms <= 0)
        return false;
      if (monitor > 0)
        {
          process_wait_ended(monitor, (int)left_ms);
          monitor = 0;
          continue;
        }
      usleep(10000);
    }
  return true;
}

/* ---- Create ---------------------------------------------------------- */

struct create_context
{
  struct pod_manager *manager;
  struct container *container;
  struct sandbox *sandbox;
  struct image_config *image;
  char **layer_dirs;
  char *dir;
  struct cdi_edits cdi; /* of the CDI devices asked for */
  bool has_cdi;
  struct container_userns userns;
  struct volume_sources volumes; /* prepared bind sources */
};

static int
validate_config(const Runtime__V1__CreateContainerRequest *request, struct error *err)
{
  const Runtime__V1__ContainerConfig *config = request->config;

  if (config == NULL || config->metadata == NULL)
    return error_set(err, EINVAL, "container config with metadata is required");
  if (config->metadata->name[0] == '\0')
    return error_set(err, EINVAL, "container metadata needs a name");
  if (!path_component_is_valid(config->metadata->name) || strchr(config->metadata->name, '_'))
    {
      cleanup_free char *name
          = quote_untrusted(config->metadata->name, strlen(config->metadata->name), 256);
      return error_set(err, EINVAL, "invalid container name %s", name);
    }
  if (config->image == NULL || config->image->image[0] == '\0')
    return error_set(err, EINVAL, "container config names no image");
  /* A ".." component could climb out of the pod's log directory;
   * "a..b.log" cannot. */
  if (path_has_dot_dot(config->log_path))
    {
      cleanup_free char *log_path
          = quote_untrusted(config->log_path, strlen(config->log_path), 256);
      return error_set(err, EINVAL, "log path %s has a \"..\" component", log_path);
    }
  return 0;
}

static struct container *
container_from_request(const uint8_t *bytes, size_t len, struct error *err)
{
  struct container *container = container_new();

  container->request_bytes = xmalloc(len ? len : 1);
  memcpy(container->request_bytes, bytes, len);
  container->request_len = len;
  container->request = runtime__v1__create_container_request__unpack(NULL, len, bytes);
  if (container->request == NULL)
    {
      error_set(err, EINVAL, "request does not decode");
      goto fail;
    }
  if (validate_config(container->request, err) < 0)
    goto fail;
  container->config = container->request->config;
  if (id_generate(container->id, err) < 0)
    goto fail;
  container->created_at = time_realtime_ns();
  return container;

fail:
  container_unref(container);
  return NULL;
}

static int
undo_reserve(void *object, struct error *err)
{
  struct create_context *ctx = object;
  pod_manager_unreserve_container(ctx->manager, ctx->container);
  return 0;
}

static int
undo_dir(void *object, struct error *err)
{
  struct create_context *ctx = object;
  return remove_tree(ctx->dir, err);
}

static int
undo_rootfs(void *object, struct error *err)
{
  struct create_context *ctx = object;
  if (rootfs_unmount(ctx->dir, err) < 0)
    return -1;
  ctx->container->rootfs_mounted = false;
  return 0;
}

static int
step_image(struct create_context *ctx, struct error *err)
{
  struct container *container = ctx->container;
  const Runtime__V1__ImageSpec *spec = container->config->image;
  struct image_store *store = ctx->manager->options.images;
  struct image_volumes volumes = { 0 };

  if (store == NULL)
    return error_set(err, EIO, "no image store");
  if (image_store_layer_dirs(store, spec->image, &container->image_id, &ctx->layer_dirs, err) < 0
      || image_store_config(store, container->image_id, &ctx->image, err) < 0)
    {
      cleanup_free char *image = quote_untrusted(spec->image, strlen(spec->image), 256);
      return error_wrap(err, "image %s", image);
    }
  container->image_name
      = xstrdup(spec->user_specified_image[0] ? spec->user_specified_image : spec->image);
  if (image_volumes_resolve(store, container->config, &volumes, err) < 0)
    return -1;
  /* RemoveImage's in-use check reads them under lock. */
  pthread_mutex_lock(&container->lock);
  container->image_volumes = volumes;
  pthread_mutex_unlock(&container->lock);
  return 0;
}

/* Before anything is made: an unknown device or a conflict costs nothing
 * to undo. */
static int
step_cdi(struct create_context *ctx, struct error *err)
{
  cleanup_strv char **names = NULL;

  if (cdi_requested_devices(ctx->container->config, ctx->sandbox->config, &names, err) < 0)
    return -1;
  ctx->has_cdi = names != NULL;
  if (names && cdi_resolve(ctx->manager->cdi, names, &ctx->cdi, err) < 0)
    return -1;
  return 0;
}

static int
step_log_path(struct create_context *ctx, struct error *err)
{
  struct container *container = ctx->container;
  const char *log_dir = ctx->sandbox->config->log_directory;
  const char *log_path = container->config->log_path;
  cleanup_free char *parent = NULL;
  char *slash;

  if (log_path[0] == '\0')
    return 0;
  if (log_path[0] == '/')
    container->log_path = xstrdup(log_path);
  else if (log_dir[0])
    container->log_path = xasprintf("%s/%s", log_dir, log_path);
  else
    {
      cleanup_free char *quoted = quote_untrusted(log_path, strlen(log_path), 256);
      return error_set(err, EINVAL, "log path %s is relative, but the pod has no log directory",
                       quoted);
    }
  parent = xstrdup(container->log_path);
  slash = strrchr(parent, '/');
  if (slash && slash != parent)
    {
      *slash = '\0';
      if (mkdir_p(parent, 0755, err) < 0)
        return error_wrap(err, "container log directory");
    }
  return 0;
}

/* The pid namespace of the container a debug container targets. */
static char *
target_pidns(struct create_context *ctx)
{
  const Runtime__V1__LinuxContainerConfig *linux_config = ctx->container->config->linux;
  const Runtime__V1__NamespaceOption *o = NULL;
  struct container *target;
  struct container_snapshot snapshot;
  struct error ignored = ERROR_INIT;
  char *path = NULL;

  if (linux_config && linux_config->security_context)
    o = linux_config->security_context->namespace_options;
  if (o == NULL || o->pid != RUNTIME__V1__NAMESPACE_MODE__TARGET || o->target_id[0] == '\0')
    return NULL;
  target = pod_manager_find_container(ctx->manager, o->target_id, &ignored);
  error_clear(&ignored);
  if (target == NULL)
    return NULL;
  if (container_snapshot_take(ctx->manager, target, &snapshot, &ignored) == 0
      && snapshot.state == CONTAINER_RUNNING && snapshot.pid > 0)
    path = xasprintf("/proc/%d/ns/pid", (int)snapshot.pid);
  error_clear(&ignored);
  container_snapshot_clear(&snapshot);
  container_unref(target);
  return path;
}

/* The process identity from the image's /etc/passwd and /etc/group (read
 * inside the mounted rootfs, never following a link out of it) and the
 * seccomp filter for the container's capabilities. */
static int
resolve_security(struct create_context *ctx, const char *rootfs, struct user_resolved *user,
                 char **seccomp, struct error *err)
{
  const Runtime__V1__LinuxContainerConfig *linux_config = ctx->container->config->linux;
  const Runtime__V1__LinuxContainerSecurityContext *sc
      = linux_config ? linux_config->security_context : NULL;
  const Runtime__V1__SecurityProfile *profile;
  Runtime__V1__SecurityProfile legacy;
  struct user_request request;
  struct capability_sets sets;
  uint64_t bounding;

  if (seccomp_profile_of_container(sc, &legacy, &profile, err) < 0)
    return -1;
  user_request_for_container(sc, ctx->image ? ctx->image->user : NULL, &request);
  if (user_resolve(rootfs, &request, user, err) < 0)
    return -1;
  if (capabilities_host_bounding(&bounding, err) < 0
      || capabilities_compute(sc ? sc->capabilities : NULL, sc && sc->privileged, bounding, &sets,
                              err)
             < 0)
    return -1;
  return seccomp_profile_for(profile, sets.bounding, sc && sc->privileged,
                             ctx->manager->options.seccomp_use_default_when_empty, seccomp, err);
}

static int
step_bundle(struct create_context *ctx, struct error *err)

{
  struct container *container = ctx->container;
  struct sandbox *sandbox = ctx->sandbox;
  struct pod_manager *manager = ctx->manager;
  cleanup_free char *ns_dir = layout_namespace_dir(manager, sandbox->id);
  cleanup_free char *sandbox_files = layout_sandbox_dir(manager, sandbox->id);
  cleanup_free char *netns = xasprintf("%s/net", ns_dir);
  cleanup_free char *ipcns = xasprintf("%s/ipc", ns_dir);
  cleanup_free char *utsns = xasprintf("%s/uts", ns_dir);
  cleanup_free char *pod_pidns = NULL;
  cleanup_free char *target = target_pidns(ctx);
  cleanup_free char *hostname = xasprintf("%s/hostname", sandbox_files);
  cleanup_free char *resolv = xasprintf("%s/resolv.conf", sandbox_files);
  cleanup_free char *shm = layout_shm_path(manager, sandbox->id);
  cleanup_free char *rootfs = xasprintf("%s/rootfs", ctx->dir);
  cleanup_free char *config_path = xasprintf("%s/config.json", ctx->dir);
  cleanup_free char *json = NULL;
  cleanup_free char *seccomp = NULL;
  cleanup_free char *seccomp_bpf = NULL;
  struct user_resolved user = { 0 };
  struct oci_container_params p = { 0 };
  int ret;

  if (cgroup_container_path(sandbox->cgroup_parent ? sandbox->cgroup_parent : "", container->id,
                            manager->options.systemd_cgroup, &container->cgroups_path, err)
      < 0)
    return -1;
  if (sandbox->pause_pid > 0)
    pod_pidns = xasprintf("/proc/%d/ns/pid", (int)sandbox->pause_pid);
  p.container_id = container->id;
  p.sandbox_id = sandbox->id;
  p.config = container->config;
  p.sandbox_config = sandbox->config;
  p.image = ctx->image;
  p.image_name = container->image_name;
  p.rootfs = rootfs;
  if (sandbox->namespaces_pinned)
    {
      p.netns_path = sandbox->host_network ? NULL : netns;
      p.utsns_path = sandbox->host_network ? NULL : utsns;
      p.ipcns_path = sandbox->host_ipc ? NULL : ipcns;
    }
  p.pod_pidns_path = pod_pidns;
  p.target_pidns_path = target;
  p.hostname_path = hostname;
  p.resolv_conf_path = resolv;
  p.shm_path = sandbox->shm_mounted ? shm : NULL;
  p.cgroups_path = container->cgroups_path;
  p.cdi = ctx->has_cdi ? &ctx->cdi : NULL;
  p.userns = &ctx->userns.pod;
  p.userns_path = ctx->userns.path;
  p.mount_sources = ctx->volumes.paths;
  if (resolve_security(ctx, rootfs, &user, &seccomp, err) < 0)
    {
      user_resolved_clear(&user);
      return -1;
    }
  p.user = &user.user;
  /* ContainerStatus.user: what config.json says, saved with the record. */
  pthread_mutex_lock(&container->lock);
  container_user_set(&container->user, user.user.uid, user.user.gid, user.user.additional_gids,
                     user.user.n_additional_gids);
  pthread_mutex_unlock(&container->lock);
  p.seccomp_json = seccomp;
  ret = pod_manager_seccomp_bpf(manager, container->handler, seccomp, &seccomp_bpf, err);
  p.seccomp_bpf = seccomp_bpf;
  p.image_volumes = &container->image_volumes;
  if (ret == 0)
    ret = oci_spec_container(&p, &json, err);
  user_resolved_clear(&user);
  if (ret < 0)
    return -1;
  return replace_file(config_path, json, strlen(json), 0600, err);
}

static void
remove_cgroup(struct pod_manager *manager, struct container *container)
{
  cleanup_free char *fs_path = NULL;
  struct error err = ERROR_INIT;

  /* The runtime's delete removes it; this catches what a killed runtime
   * left behind. */
  if (container->cgroups_path == NULL
      || cgroup_path_to_fs(container->cgroups_path, manager->options.systemd_cgroup, &fs_path, &err)
             < 0
      || cgroup_remove(fs_path, &err) < 0)
    log_debug("container %.12s: %s", container->id, error_message(&err));
  error_clear(&err);
}

static int
destroy_in_runtime(struct pod_manager *manager, struct container *container, struct error *err)
{
  struct oci_runtime runtime;

  if (!container->runtime_created)
    return 0;
  pod_manager_runtime(manager, container->handler, &runtime);
  if (!has_ended(manager, container))
    {
      if (oci_runtime_kill(&runtime, container->id, SIGKILL, false, err) < 0)
        return -1;
      wait_for_end(manager, container, KILL_WAIT_MS);
    }
  if (oci_runtime_delete(&runtime, container->id, err) < 0)
    return -1;
  /* The monitor writes the exit file last: once it is there (or the
   * monitor is gone) nothing of it races with the removal of its files. */
  wait_for_end(manager, container, KILL_WAIT_MS);
  container->runtime_created = false;
  return 0;
}

/* What crid-conmon leaves for a container or pod: its socket dir and its
 * exit file. */
void
container_remove_monitor_files(const struct pod_manager *manager, const char *id)
{
  cleanup_free char *socket_dir = layout_monitor_dir(manager, id);
  cleanup_free char *exits = layout_area(manager, LAYOUT_EXITS);

  monitor_remove_files(socket_dir, exits, id);
}

static int
undo_monitor(void *object, struct error *err)
{
  struct create_context *ctx = object;
  if (destroy_in_runtime(ctx->manager, ctx->container, err) < 0)
    return -1;
  /* A runtime that failed half-way through create may leave the cgroup
   * it made (crun does, when a resource cannot be written). */
  remove_cgroup(ctx->manager, ctx->container);
  container_remove_monitor_files(ctx->manager, ctx->container->id);
  return 0;
}

static int
step_monitor(struct create_context *ctx, struct error *err)
{
  struct container *container = ctx->container;
  struct pod_manager *manager = ctx->manager;
  cleanup_free char *socket_dir = layout_monitor_dir(manager, container->id);
  cleanup_free char *exits = layout_area(manager, LAYOUT_EXITS);
  struct oci_runtime runtime;
  struct monitor_launch launch;
  pid_t monitor_pid;

  pod_manager_runtime(manager, container->handler, &runtime);
  launch = (struct monitor_launch){ .conmon_path = manager->options.conmon_path,
                                    .runtime = &runtime,
                                    .id = container->id,
                                    .bundle = ctx->dir,
                                    .exit_dir = exits,
                                    .socket_dir = socket_dir,
                                    .log_path = container->log_path,
                                    .terminal = container->config->tty,
                                    .stdin_open = container->config->stdin,
                                    .stdin_once = container->config->stdin_once };
  /* From here on the runtime may hold state for it: delete is owed. */
  container->runtime_created = true;
  if (monitor_create(&launch, &container->pid, &monitor_pid, err) < 0)
    return -1;
  return 0;
}

/* The runtime has bound the prepared volume sources into the container's
 * mount namespace, which keeps its own copies: crid's go at once.  Kept,
 * they would pin what is mounted below a source on the host (the host
 * could not unmount and remove it while the container lives). */
static void
release_volume_sources(struct create_context *ctx)
{
  struct error err = ERROR_INIT;

  if (ctx->volumes.n && rootfs_unmount_volumes(ctx->dir, &err) < 0)
    log_warn("container %.12s: %s", ctx->container->id, error_message(&err));
  error_clear(&err);
}

static int
create_steps(struct create_context *ctx, struct undo_list *undo, struct error *err)
{
  struct container *container = ctx->container;
  int signo, ret;

  container->reservation = container_reservation_key(ctx->sandbox->id, container->config);
  if (pod_manager_reserve_container(ctx->manager, container, err) < 0)
    return -1;
  undo_push(undo, "name reservation", undo_reserve, ctx);
  if (step_image(ctx, err) < 0 || step_cdi(ctx, err) < 0 || step_log_path(ctx, err) < 0
      || container_userns_open(ctx->manager, ctx->sandbox, container->config, &ctx->userns, err)
             < 0)
    return -1;
  signo = choose_stop_signal(container->config, ctx->image, err);
  if (signo < 0)
    return -1;
  container->stop_signal = signo;
  ctx->dir = layout_container_dir(ctx->manager, container->id);
  undo_push(undo, "container directory", undo_dir, ctx);
  if (mkdir_p(ctx->dir, 0700, err) < 0)
    return -1;
  /* The record exists, and says what may exist, before each side effect:
   * a crash from here on leaves something recovery can roll back. */
  container->creating = true;
  container->rootfs_mounted = true;
  if (container_save_intent(ctx->manager, container, err) < 0)
    return -1;
  failpoint("container.after-record");
  undo_push(undo, "root file system", undo_rootfs, ctx);
  if (rootfs_mount(ctx->dir, ctx->layer_dirs, container_userns_idmap(&ctx->userns), err) < 0
      || image_volumes_mount(ctx->manager->options.images, ctx->dir, container->config,
                             container_userns_idmap(&ctx->userns), &container->image_volumes, err)
             < 0
      || container_userns_own_dir(&ctx->userns, ctx->dir, err) < 0
      || volume_sources_prepare(ctx->dir, container->config, ctx->userns.fd, &ctx->volumes, err)
             < 0)
    return -1;
  failpoint("container.after-rootfs");
  if (step_bundle(ctx, err) < 0)
    return error_wrap(err, "container config");
  container->runtime_created = true;
  if (container_save_intent(ctx->manager, container, err) < 0)
    return -1;
  undo_push(undo, "container", undo_monitor, ctx);
  if (step_monitor(ctx, err) < 0)
    return -1;
  release_volume_sources(ctx);
  failpoint("container.after-monitor");
  pthread_mutex_lock(&container->lock);
  ret = container_change_state(ctx->manager, container,
                               &(struct container_change){ .state = CONTAINER_CREATED }, err);
  pthread_mutex_unlock(&container->lock);
  if (ret < 0)
    return -1;
  failpoint("container.after-created");
  return 0;
}

void
container_orphan_reaped(struct pod_manager *manager, pid_t pid, int status)
{
  size_t n;
  struct container **containers = pod_manager_list_containers(manager, &n);

  for (size_t i = 0; i < n; i++)
    {
      struct container *c = containers[i];
      cleanup_free char *exits = NULL;
      cleanup_free char *path = NULL;
      cleanup_free char *temp = NULL;
      cleanup_free char *text = NULL;
      cleanup_close int fd = -1;
      bool ours;

      /* Not a snapshot: its refresh would find the process gone and no
       * exit file yet, and record the exit as lost. */
      pthread_mutex_lock(&c->lock);
      ours = c->pid == pid && !c->removed && c->state != CONTAINER_EXITED;
      pthread_mutex_unlock(&c->lock);
      if (!ours)
        continue;
      /* The container's own parent, its monitor, is gone (else it would
       * have reaped it): its exit file is written here, as the monitor
       * would have, so the real status is not lost. */
      exits = layout_area(manager, LAYOUT_EXITS);
      path = xasprintf("%s/%s", exits, c->id);
      temp = xasprintf("%s/.%s.crid", exits, c->id);
      text = xasprintf("%d", process_exit_code(status));
      if (access(path, F_OK) == 0)
        break;
      log_warn("container %.12s: its monitor is gone; crid reaped it: status %s", c->id, text);
      fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      if (fd < 0 || write_all(fd, text, strlen(text)) < 0 || rename(temp, path) < 0)
        log_warn("container %.12s: write %s: %s", c->id, path, strerror(errno));
      break;
    }
  pod_manager_release_containers(containers, n);
}

void
container_salvage(struct pod_manager *manager, const char *id)
{
  cleanup_free char *dir = layout_container_dir(manager, id);
  cleanup_free char *socket_dir = layout_monitor_dir(manager, id);
  pid_t monitor = monitor_read_pid(socket_dir);
  struct error err = ERROR_INIT;

  log_warn("recovery: removing what container %.12s may have left: its runtime state, monitor, "
           "root file system and files",
           id);
  /* Which handler ran it is in the record: every one is asked. */
  for (size_t i = 0; i < manager->options.n_handlers; i++)
    {
      struct oci_runtime runtime;
      pod_manager_runtime(manager, manager->options.handlers[i].name, &runtime);
      if (oci_runtime_kill(&runtime, id, SIGKILL, true, &err) < 0
          || oci_runtime_delete(&runtime, id, &err) < 0)
        log_warn("recovery: container %.12s: %s", id, error_message(&err));
      error_clear(&err);
    }
  if (monitor > 0)
    {
      kill(monitor, SIGKILL);
      process_wait_ended(monitor, KILL_WAIT_MS);
    }
  if (rootfs_unmount(dir, &err) < 0 || remove_tree(dir, &err) < 0)
    log_warn("recovery: container %.12s: %s", id, error_message(&err));
  error_clear(&err);
  container_remove_monitor_files(manager, id);
  if (cgroup_remove_named((char *[]){ (char *)id, NULL }, &err) < 0)
    log_warn("recovery: %.12s: %s", id, error_message(&err));
  error_clear(&err);
}

void
container_reconcile(struct pod_manager *manager, struct container *container)
{
  struct oci_runtime runtime;
  struct error err = ERROR_INIT;
  enum oci_status status;
  pid_t pid;

  if (container->state != CONTAINER_CREATED || !container->runtime_created)
    return;
  pod_manager_runtime(manager, container->handler, &runtime);
  if (oci_runtime_state(&runtime, container->id, &status, &pid, &err) < 0)
    {
      log_warn("recovery: container %.12s: %s", container->id, error_message(&err));
      error_clear(&err);
      return;
    }
  if (status != OCI_STATUS_RUNNING)
    return; /* created still, or ended: the exit file tells */
  log_info("recovery: container %.12s was started when crid stopped: running, pid %d",
           container->id, (int)pid);
  pthread_mutex_lock(&container->lock);
  if (container_change_state(manager, container,
                             &(struct container_change){
                                 .state = CONTAINER_RUNNING, .at = time_realtime_ns(), .pid = pid },
                             &err)
      < 0)
    log_warn("recovery: %s", error_message(&err));
  pthread_mutex_unlock(&container->lock);
  error_clear(&err);
}

void
container_roll_back(struct pod_manager *manager, struct container *container)
{
  struct create_context ctx = { .manager = manager, .container = container };
  struct error err = ERROR_INIT;

  log_info("recovery: container %.12s was being created when crid stopped: rolling it back",
           container->id);
  ctx.dir = layout_container_dir(manager, container->id);
  if (undo_monitor(&ctx, &err) < 0 || undo_rootfs(&ctx, &err) < 0 || undo_dir(&ctx, &err) < 0)
    log_warn("recovery: container %.12s: %s", container->id, error_message(&err));
  error_clear(&err);
  free(ctx.dir);
}

int
container_create(struct pod_manager *manager, const uint8_t *request_bytes, size_t request_len,
                 struct container **out, struct error *err)
{
  struct undo_list undo = UNDO_INIT;
  struct create_context ctx = { .manager = manager, .userns = CONTAINER_USERNS_INIT };
  bool ready;
  int ret = 0;

  ctx.container = container_from_request(request_bytes, request_len, err);
  if (ctx.container == NULL)
    return -1;
  cgroup_prepare_attach();
  ctx.sandbox = pod_manager_find_sandbox(manager, ctx.container->request->pod_sandbox_id, err);
  if (ctx.sandbox == NULL)
    {
      container_unref(ctx.container);
      return -1;
    }
  snprintf(ctx.container->sandbox_id, sizeof ctx.container->sandbox_id, "%s", ctx.sandbox->id);
  ctx.container->handler = xstrdup(ctx.sandbox->handler);
  /* Held for reading, the pod's op_lock keeps it from being stopped under
   * us while other containers of the pod are created beside. */
  pthread_rwlock_rdlock(&ctx.sandbox->op_lock);
  pthread_mutex_lock(&ctx.container->op_lock);
  pthread_mutex_lock(&ctx.sandbox->lock);
  ready = !ctx.sandbox->removed && !ctx.sandbox->creating && ctx.sandbox->state == SANDBOX_READY;
  pthread_mutex_unlock(&ctx.sandbox->lock);
  if (!ready)
    ret = error_set(err, EIO, "pod sandbox %s is not ready", ctx.sandbox->id);
  else if (create_steps(&ctx, &undo, err) < 0)
    ret = -1;
  if (ret < 0)
    {
      undo_run(&undo);
      ctx.container->removed = true;
    }
  else
    undo_forget(&undo);
  pthread_mutex_unlock(&ctx.container->op_lock);
  pthread_rwlock_unlock(&ctx.sandbox->op_lock);
  sandbox_unref(ctx.sandbox);
  strv_free(ctx.layer_dirs);
  image_config_free(ctx.image);
  cdi_edits_clear(&ctx.cdi);
  container_userns_clear(&ctx.userns);
  volume_sources_clear(&ctx.volumes);
  free(ctx.dir);
  if (ret < 0)
    {
      error_wrap(err, "create container %s",
                 ctx.container->config ? ctx.container->config->metadata->name : "");
      container_unref(ctx.container);
      return -1;
    }
  log_info("container %.12s (%s) created, pid %d", ctx.container->id, ctx.container->reservation,
           (int)ctx.container->pid);
  *out = ctx.container;
  return 0;
}

/* ---- Start, stop, remove --------------------------------------------- */

int
container_start(struct pod_manager *manager, struct container *container, struct error *err)
{
  struct oci_runtime runtime;
  enum container_state state;
  int ret = 0;

  pthread_mutex_lock(&container->op_lock);
  pthread_mutex_lock(&container->lock);
  refresh_locked(manager, container);
  state = container->state;
  container->starting = !container->removed && state == CONTAINER_CREATED;
  pthread_mutex_unlock(&container->lock);
  if (container->removed)
    ret = error_set(err, ENOENT, "container %s not found", container->id);
  else if (state != CONTAINER_CREATED)
    ret = error_set(err, EINVAL, "container %s is not in the created state", container->id);
  else
    {
      pod_manager_runtime(manager, container->handler, &runtime);
      ret = oci_runtime_start(&runtime, container->id, err);
      if (ret == 0)
        failpoint("container.after-start");
    }
  pthread_mutex_lock(&container->lock);
  container->starting = false;
  if (ret == 0)
    ret = container_change_state(
        manager, container,
        &(struct container_change){ .state = CONTAINER_RUNNING, .at = time_realtime_ns() }, err);
  /* An exit seen during the start is recorded after it. */
  refresh_locked(manager, container);
  pthread_mutex_unlock(&container->lock);
  if (ret == 0)
    log_info("container %.12s started", container->id);
  pthread_mutex_unlock(&container->op_lock);
  return ret;
}

#define STOP_TIMEOUT_MAX_S (366LL * 24 * 3600)

/* True when pid is the init of its pid namespace and has no handler for
 * signo: the kernel then drops signo (only SIGKILL and SIGSTOP reach such
 * an init from outside).  A container stopped right after its start can
 * be caught before its process installed its handler. */
static bool
init_drops_signal(pid_t pid, int signo)
{
  cleanup_free char *path = xasprintf("/proc/%d/status", (int)pid);
  cleanup_file FILE *status = fopen(path, "re");
  char line[512];
  bool ns_init = false, caught = true;

  while (status && fgets(line, sizeof line, status))
    {
      if (str_has_prefix(line, "NSpid:"))
        {
          char *last = strrchr(line, '\t');
          ns_init = last && strtol(last + 1, NULL, 10) == 1;
        }
      else if (str_has_prefix(line, "SigCgt:"))
        caught = (strtoull(line + 7, NULL, 16) >> (signo - 1)) & 1;
    }
  return status && ns_init && !caught;
}

/* Sends signo and waits up to timeout_ms for the end.  A signal the
 * container's init dropped (no handler yet) is sent again once it has
 * one, rather than waiting out the whole grace period for nothing. */
static int
signal_and_wait(struct pod_manager *manager, struct container *container,
                const struct oci_runtime *runtime, int signo, int64_t timeout_ms, bool *ended,
                struct error *err)
{
  int64_t deadline = time_monotonic_ns() + timeout_ms * 1000000LL;
  pid_t pid = container->pid;
  bool dropped = pid > 0 && init_drops_signal(pid, signo);

  if (oci_runtime_kill(runtime, container->id, signo, false, err) < 0)
    return -1;
  while (dropped)
    {
      int64_t left_ms = (deadline - time_monotonic_ns()) / 1000000LL;
      if (left_ms <= 0)
        break;
      if (wait_for_end(manager, container, left_ms < 100 ? left_ms : 100))
        {
          *ended = true;
          return 0;
        }
      if (!init_drops_signal(pid, signo))
        {
          log_debug("container %.12s: signal %d came before its handler; sending it again",
                    container->id, signo);
          if (oci_runtime_kill(runtime, container->id, signo, false, err) < 0)
            return -1;
          dropped = false;
        }
    }
  {
    int64_t left_ms = (deadline - time_monotonic_ns()) / 1000000LL;
    *ended = wait_for_end(manager, container, left_ms > 0 ? left_ms : 0);
  }
  return 0;
}

static int
stop_locked(struct pod_manager *manager, struct container *container, int64_t timeout_s,
            struct error *err)
{
  struct oci_runtime runtime;
  int signo;

  if (container->removed || !container->runtime_created || has_ended(manager, container))
    return 0;
  pod_manager_runtime(manager, container->handler, &runtime);
  pthread_mutex_lock(&container->lock);
  /* A created container sits in the runtime's init: only KILL ends it. */
  signo = container->state == CONTAINER_CREATED ? SIGKILL : container->stop_signal;
  pthread_mutex_unlock(&container->lock);
  /* No timeout a client can send may overflow the clock arithmetic. */
  if (timeout_s > STOP_TIMEOUT_MAX_S)
    timeout_s = STOP_TIMEOUT_MAX_S;
  if (timeout_s > 0 && signo != SIGKILL)
    {
      bool ended = false;
      if (signal_and_wait(manager, container, &runtime, signo, timeout_s * 1000, &ended, err) < 0)
        return -1;
      if (ended)
        return 0;
      log_info("container %.12s did not stop within %lld s: killing it", container->id,
               (long long)timeout_s);
    }
  if (oci_runtime_kill(&runtime, container->id, SIGKILL, false, err) < 0)
    return -1;
  failpoint("container.stop-after-kill");
  if (!wait_for_end(manager, container, KILL_WAIT_MS))
    return error_set(err, ETIMEDOUT, "container %s did not exit after SIGKILL", container->id);
  return 0;
}

int
container_stop(struct pod_manager *manager, struct container *container, int64_t timeout_s,
               struct error *err)
{
  int ret;

  pthread_mutex_lock(&container->op_lock);
  ret = stop_locked(manager, container, timeout_s, err);
  pthread_mutex_unlock(&container->op_lock);
  if (ret < 0)
    return error_wrap(err, "stop container %s", container->id);
  return 0;
}

void
container_release_ended(struct pod_manager *manager, struct container *container)
{
  cleanup_free char *dir = layout_container_dir(manager, container->id);
  struct error err = ERROR_INIT;
  bool ended;

  pthread_mutex_lock(&container->op_lock);
  pthread_mutex_lock(&container->lock);
  ended = !container->removed && !container->creating && container->state == CONTAINER_EXITED;
  pthread_mutex_unlock(&container->lock);
  if (ended && (container->runtime_created || container->rootfs_mounted))
    {
      if (destroy_in_runtime(manager, container, &err) == 0)
        {
          remove_cgroup(manager, container);
          if (rootfs_unmount(dir, &err) == 0)
            container->rootfs_mounted = false;
        }
      if (err.code)
        log_warn("container %.12s: release after its end: %s", container->id, error_message(&err));
      error_clear(&err);
      /* A crash before this record only makes the removal redo it. */
      pthread_mutex_lock(&container->lock);
      if (container_save_intent(manager, container, &err) < 0)
        log_warn("%s", error_message(&err));
      pthread_mutex_unlock(&container->lock);
      error_clear(&err);
    }
  pthread_mutex_unlock(&container->op_lock);
}

static int
remove_locked(struct pod_manager *manager, struct container *container, struct error *err)
{
  cleanup_free char *dir = layout_container_dir(manager, container->id);

  if (container->removed)
    return 0;
  if (destroy_in_runtime(manager, container, err) < 0)
    return -1;
  failpoint("container.remove-after-runtime-delete");
  remove_cgroup(manager, container);
  if (rootfs_unmount(dir, err) < 0)
    return -1;
  failpoint("container.remove-after-unmount");
  container->rootfs_mounted = false;
  /* Only once the overlay is surely gone: the deletion must not walk into
   * a mounted image.  The directory leaves the API's view at once; its
   * files (the writable layer) are deleted in the background. */
  if (trash_discard(manager->trash, dir, err) < 0)
    return -1;
  container_remove_monitor_files(manager, container->id);
  pthread_mutex_lock(&container->lock);
  container_change_removed(manager, container);
  pthread_mutex_unlock(&container->lock);
  pod_manager_unreserve_container(manager, container);
  log_info("container %.12s removed", container->id);
  return 0;
}

int
container_remove(struct pod_manager *manager, struct container *container, struct error *err)
{
  int ret;

  pthread_mutex_lock(&container->op_lock);
  ret = remove_locked(manager, container, err);
  pthread_mutex_unlock(&container->op_lock);
  if (ret < 0)
    return error_wrap(err, "remove container %s", container->id);
  return 0;
}

/* The pod's containers, referenced. */
static struct container **
pod_containers(struct pod_manager *manager, const char *sandbox_id, size_t *n)
{
  size_t total;
  struct container **all = pod_manager_list_containers(manager, &total);

  *n = 0;
  for (size_t i = 0; i < total; i++)
    if (strcmp(all[i]->sandbox_id, sandbox_id) == 0)
      all[(*n)++] = all[i];
    else
      container_unref(all[i]);
  return all;
}

int
container_stop_pod(struct pod_manager *manager, const char *sandbox_id, int64_t timeout_s,
                   struct error *err)
{
  size_t n;
  struct container **list = pod_containers(manager, sandbox_id, &n);
  int ret = 0;

  for (size_t i = 0; i < n && ret == 0; i++)
    ret = container_stop(manager, list[i], timeout_s, err);
  pod_manager_release_containers(list, n);
  return ret;
}

int
container_remove_pod(struct pod_manager *manager, const char *sandbox_id, struct error *err)
{
  size_t n;
  struct container **list = pod_containers(manager, sandbox_id, &n);
  int ret = 0;

  for (size_t i = 0; i < n && ret == 0; i++)
    ret = container_remove(manager, list[i], err);
  pod_manager_release_containers(list, n);
  return ret;
}

/* ---- Logs and resources ---------------------------------------------- */

int
container_reopen_log(struct pod_manager *manager, struct container *container, struct error *err)
{
  cleanup_free char *socket_dir = layout_monitor_dir(manager, container->id);
  cleanup_free char *ctl = xasprintf("%s/ctl", socket_dir);
  int64_t deadline = time_monotonic_ns() + REOPEN_WAIT_MS * 1000000LL;
  cleanup_close int fd = -1;

  if (has_ended(manager, container) || container->removed)
    return error_set(err, EINVAL, "container %s is not running", container->id);
  if (container->log_path == NULL)
    return 0;
  /* Non-blocking: a monitor that is gone must not hang the call. */
  fd = open(ctl, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    return error_set_errno(err, errno, "open %s", ctl);
  if (write(fd, "2\n", 2) != 2)
    return error_set_errno(err, errno, "write %s", ctl);
  while (access(container->log_path, F_OK) < 0)
    {
      if (time_monotonic_ns() >= deadline)
        return error_set(err, ETIMEDOUT, "the monitor did not reopen %s", container->log_path);
      usleep(5000);
    }
  return 0;
}

const Runtime__V1__LinuxContainerResources *
container_resources(const struct container *container)
{
  if (container->resources)
    return container->resources;
  if (container->config && container->config->linux)
    return container->config->linux->resources;
  return NULL;
}

/* With op_lock held: `<runtime> update --resources -`. */
static int
update_in_runtime(struct pod_manager *manager, struct container *container,
                  const Runtime__V1__LinuxContainerResources *resources, struct error *err)
{
  cleanup_free char *json = container_resources_json(resources);
  struct oci_runtime runtime;

  pod_manager_runtime(manager, container->handler, &runtime);
  return oci_runtime_update(&runtime, container->id, json, err);
}

int
container_update_resources(struct pod_manager *manager, struct container *container,
                           const Runtime__V1__LinuxContainerResources *resources, struct error *err)
{
  Runtime__V1__LinuxContainerResources *previous = NULL;
  int ret = 0;

  if (resources == NULL)
    return 0;
  pthread_mutex_lock(&container->op_lock);
  if (container->removed || has_ended(manager, container))
    ret = error_set(err, EINVAL, "container %s is not running", container->id);
  else if (update_in_runtime(manager, container, resources, err) < 0)
    {
      /* A runtime writes one cgroup file after the other (crun stops at
       * the first it cannot write, after those before it): put back what
       * is in force, so that a refused update changes nothing.  Fields
       * nothing set before cannot be put back; the runtime's defaults
       * are not known here. */
      const Runtime__V1__LinuxContainerResources *current = container_resources(container);
      struct error rollback_err = ERROR_INIT;
      if (current && update_in_runtime(manager, container, current, &rollback_err) < 0)
        log_warn("container %.12s: restore the resources after a refused update: %s", container->id,
                 error_message(&rollback_err));
      error_clear(&rollback_err);
      ret = -1;
    }
  if (ret == 0)
    {
      /* The runtime applied it: from now on this is what ContainerStatus
       * reports, also after a restart. */
      pthread_mutex_lock(&container->lock);
      previous = container->resources;
      container->resources = container_resources_merge(container_resources(container), resources);
      ret = container_save(manager, container, err);
      pthread_mutex_unlock(&container->lock);
      if (previous)
        runtime__v1__linux_container_resources__free_unpacked(previous, NULL);
    }
  pthread_mutex_unlock(&container->op_lock);
  return ret;
}
