/* RunPodSandbox, StopPodSandbox and RemovePodSandbox.
 *
 * Run: reserve the name, pin the namespaces (setting hostname and sysctls
 * inside them), write the pod files, mount shm, CNI ADD, start the pause
 * process through crid-conmon, persist.  Every step that succeeded pushes
 * its undo, so a failure leaves nothing behind. */
#include "pod/layout.h"
#include "pod/sandbox.h"
#include "pod/events.h"
#include "common/failpoint.h"
#include "common/process.h"
#include "pod/capabilities.h"
#include "pod/seccomp.h"

#include "pod/cgroup.h"
#include "pod/pause_rootfs.h"
#include "pod/container.h"
#include "pod/monitor.h"
#include "pod/namespace.h"
#include "pod/oci_runtime.h"
#include "pod/oci_spec.h"
#include "pod/pod_files.h"
#include "pod/pod_manager.h"
#include "pod/userns.h"
#include "common/atomic_file.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/undo.h"
#include "common/util.h"
#include "common/trash.h"
#include "netcni/cni_config.h"
#include "netcni/cni_exec.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PAUSE_STOP_TIMEOUT_MS 5000
/* A monitor that died writes no exit file: the wait for one is bounded. */
#define MONITOR_END_TIMEOUT_MS 3000

char *
sandbox_reservation_key(const Runtime__V1__PodSandboxConfig *config)
{
  const Runtime__V1__PodSandboxMetadata *m = config->metadata;
  return xasprintf("%s_%s_%s_%u", m->name, m->namespace_, m->uid, m->attempt);
}

/* Checks the request before anything is created. */
static int
validate_config(const Runtime__V1__PodSandboxConfig *config, struct error *err)
{
  const Runtime__V1__PodSandboxMetadata *m;

  if (config == NULL || config->metadata == NULL)
    return error_set(err, EINVAL, "sandbox config with metadata is required");
  m = config->metadata;
  if (m->name[0] == '\0' || m->namespace_[0] == '\0' || m->uid[0] == '\0')
    return error_set(err, EINVAL, "sandbox metadata needs a name, a namespace and a uid");
  if (strchr(m->name, '_') || strchr(m->namespace_, '_'))
    return error_set(err, EINVAL, "sandbox name and namespace may not contain '_'");
  if (strlen(config->hostname) > 64 || strpbrk(config->hostname, "/ \n"))
    {
      cleanup_free char *hostname
          = quote_untrusted(config->hostname, strlen(config->hostname), 256);
      return error_set(err, EINVAL, "invalid hostname %s", hostname);
    }
  if (config->log_directory[0] && config->log_directory[0] != '/')
    {
      cleanup_free char *log_directory
          = quote_untrusted(config->log_directory, strlen(config->log_directory), 256);
      return error_set(err, EINVAL, "log directory %s is not absolute", log_directory);
    }
  return 0;
}

static void
read_namespace_options(struct sandbox *sandbox)
{
  const Runtime__V1__LinuxPodSandboxConfig *linux_config = sandbox->config->linux;
  const Runtime__V1__NamespaceOption *options = NULL;

  if (linux_config && linux_config->security_context)
    options = linux_config->security_context->namespace_options;
  sandbox->pid_mode = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
  if (options == NULL)
    return;
  sandbox->host_network = options->network == RUNTIME__V1__NAMESPACE_MODE__NODE;
  sandbox->host_ipc = options->ipc == RUNTIME__V1__NAMESPACE_MODE__NODE;
  sandbox->pid_mode = options->pid;
}

static struct sandbox *
sandbox_from_request(struct pod_manager *manager, const uint8_t *bytes, size_t len,
                     struct error *err)
{
  struct sandbox *sandbox = sandbox_new();
  const struct pod_runtime_handler *handler;

  sandbox->request_bytes = xmalloc(len);
  memcpy(sandbox->request_bytes, bytes, len);
  sandbox->request_len = len;
  sandbox->request = runtime__v1__run_pod_sandbox_request__unpack(NULL, len, bytes);
  if (sandbox->request == NULL)
    {
      error_set(err, EINVAL, "request does not decode");
      goto fail;
    }
  sandbox->config = sandbox->request->config;
  if (validate_config(sandbox->config, err) < 0)
    goto fail;
  handler = pod_manager_handler(manager, sandbox->request->runtime_handler);
  if (handler == NULL)
    {
      const char *name = sandbox->request->runtime_handler;
      cleanup_free char *quoted = quote_untrusted(name, strlen(name), 256);
      error_set(err, EINVAL, "unknown runtime handler %s", quoted);
      goto fail;
    }
  sandbox->handler = xstrdup(handler->name);
  if (id_generate(sandbox->id, err) < 0)
    goto fail;
  sandbox->reservation = sandbox_reservation_key(sandbox->config);
  sandbox->created_at = time_realtime_ns();
  read_namespace_options(sandbox);
  return sandbox;

fail:
  sandbox_unref(sandbox);
  return NULL;
}

struct run_context
{
  struct pod_manager *manager;
  struct sandbox *sandbox;
};

static int
undo_reserve(void *object, struct error *err)
{
  struct run_context *ctx = object;
  pod_manager_unreserve(ctx->manager, ctx->sandbox);
  return 0;
}

static int
remove_sandbox_dirs(struct pod_manager *manager, const char *id, struct error *err)
{
  cleanup_free char *dir = layout_sandbox_dir(manager, id);
  cleanup_free char *state_dir = layout_entry(manager, LAYOUT_POD_STATE, id);
  if (remove_tree(dir, err) < 0 || remove_tree(state_dir, err) < 0)
    return -1;
  return 0;
}

static int
undo_dirs(void *object, struct error *err)
{
  struct run_context *ctx = object;
  return remove_sandbox_dirs(ctx->manager, ctx->sandbox->id, err);
}

static int
step_dirs(struct run_context *ctx, struct error *err)
{
  cleanup_free char *dir = layout_sandbox_dir(ctx->manager, ctx->sandbox->id);
  cleanup_free char *state_dir = layout_entry(ctx->manager, LAYOUT_POD_STATE, ctx->sandbox->id);
  if (mkdir_p(dir, 0700, err) < 0 || mkdir_p(state_dir, 0700, err) < 0)
    return -1;
  return 0;
}

static size_t
collect_sysctls(const struct sandbox *sandbox, struct sysctl_setting **out)
{
  const Runtime__V1__LinuxPodSandboxConfig *linux_config = sandbox->config->linux;
  size_t n = linux_config ? linux_config->n_sysctls : 0;
  struct sysctl_setting *settings = xcalloc(n + 1, sizeof *settings);

  for (size_t i = 0; i < n; i++)
    {
      settings[i].key = linux_config->sysctls[i]->key;
      settings[i].value = linux_config->sysctls[i]->value;
    }
  *out = settings;
  return n;
}

static int
undo_namespaces(void *object, struct error *err)
{
  struct run_context *ctx = object;
  cleanup_free char *dir = layout_namespace_dir(ctx->manager, ctx->sandbox->id);
  ctx->sandbox->namespaces_pinned = false;
  return pod_namespaces_remove(dir, err);
}

static int
step_namespaces(struct run_context *ctx, struct error *err)
{
  struct sandbox *sandbox = ctx->sandbox;
  cleanup_free char *dir = layout_namespace_dir(ctx->manager, sandbox->id);
  cleanup_free struct sysctl_setting *sysctls = NULL;
  struct pod_namespaces_request request = { 0 };
  struct pod_userns userns;

  if (pod_userns_of_sandbox(sandbox->config, &userns, err) < 0)
    return -1;
  if (userns.enabled
      && !pod_manager_handler(ctx->manager, sandbox->handler)->features.user_namespaces)
    return error_set(err, EINVAL, "runtime handler \"%s\" cannot run pods in a user namespace here",
                     sandbox->handler);
  request.userns = &userns;
  request.dir = dir;
  request.n_sysctls = collect_sysctls(sandbox, &sysctls);
  request.sysctls = sysctls;
  /* A host-network pod also keeps the host's UTS namespace: its hostname
   * is the node's, as with the other runtimes. */
  if (!sandbox->host_network)
    request.kinds |= POD_NAMESPACE_NET | POD_NAMESPACE_UTS;
  if (!sandbox->host_ipc)
    request.kinds |= POD_NAMESPACE_IPC;
  request.hostname = sandbox->config->hostname[0] ? sandbox->config->hostname : NULL;
  if (request.kinds == 0 && request.n_sysctls == 0 && !userns.enabled)
    return 0;
  sandbox->namespaces_pinned = true;
  if (sandbox_save_intent(ctx->manager, sandbox, err) < 0)
    return -1;
  if (pod_namespaces_create(&request, err) < 0)
    return -1;
  failpoint("sandbox.after-namespaces");
  return 0;
}

static int
step_files(struct run_context *ctx, struct error *err)
{
  struct sandbox *sandbox = ctx->sandbox;
  cleanup_free char *dir = layout_sandbox_dir(ctx->manager, sandbox->id);
  cleanup_free char *hostname_path = xasprintf("%s/hostname", dir);
  cleanup_free char *resolv_path = xasprintf("%s/resolv.conf", dir);
  char host[256] = "";
  const char *hostname = sandbox->config->hostname;

  if (sandbox->host_network || hostname[0] == '\0')
    {
      gethostname(host, sizeof host - 1);
      hostname = host;
    }
  if (pod_write_hostname(hostname_path, hostname, err) < 0)
    return error_wrap(err, "write hostname");
  if (pod_write_resolv_conf(resolv_path, sandbox->config->dns_config, err) < 0)
    return error_wrap(err, "write resolv.conf");
  return 0;
}

static int
undo_shm(void *object, struct error *err)
{
  struct run_context *ctx = object;
  cleanup_free char *path = layout_shm_path(ctx->manager, ctx->sandbox->id);
  ctx->sandbox->shm_mounted = false;
  return pod_unmount_shm(path, err);
}

static int
step_shm(struct run_context *ctx, struct error *err)
{
  cleanup_free char *path = layout_shm_path(ctx->manager, ctx->sandbox->id);
  if (ctx->sandbox->host_ipc)
    return 0;
  ctx->sandbox->shm_mounted = true;
  if (sandbox_save_intent(ctx->manager, ctx->sandbox, err) < 0)
    return -1;
  if (pod_mount_shm(path, ctx->manager->options.shm_size, err) < 0)
    return -1;
  failpoint("sandbox.after-shm");
  return 0;
}

static const char *
annotation(const Runtime__V1__PodSandboxConfig *config, const char *key)
{
  for (size_t i = 0; i < config->n_annotations; i++)
    if (strcmp(config->annotations[i]->key, key) == 0)
      return config->annotations[i]->value;
  return NULL;
}

/* A Kubernetes quantity ("10M", "1Gi", "500k") in units; -1 if invalid. */
static int64_t
parse_quantity(const char *text)
{
  static const struct
  {
    const char *suffix;
    int64_t factor;
  } suffixes[] = {
    { "Ki", 1LL << 10 },   { "Mi", 1LL << 20 },      { "Gi", 1LL << 30 },
    { "Ti", 1LL << 40 },   { "k", 1000LL },          { "M", 1000000LL },
    { "G", 1000000000LL }, { "T", 1000000000000LL }, { "", 1 },
  };
  char *end;
  long long value = strtoll(text, &end, 10);

  if (end == text || value < 0)
    return -1;
  for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++)
    if (strcmp(end, suffixes[i].suffix) == 0)
      return value > INT64_MAX / suffixes[i].factor ? -1 : value * suffixes[i].factor;
  return -1;
}

static int
write_bandwidth(struct json_writer *writer, const Runtime__V1__PodSandboxConfig *config,
                struct error *err)
{
  const char *ingress = annotation(config, "kubernetes.io/ingress-bandwidth");
  const char *egress = annotation(config, "kubernetes.io/egress-bandwidth");
  /* Burst as CRI-O sets it: effectively unlimited. */
  const int64_t burst = (int64_t)UINT32_MAX * 8 - 1;

  if (ingress == NULL && egress == NULL)
    return 0;
  json_write_key(writer, "bandwidth");
  json_begin_object(writer);
  for (int i = 0; i < 2; i++)
    {
      const char *text = i == 0 ? ingress : egress;
      int64_t rate;
      if (text == NULL)
        continue;
      rate = parse_quantity(text);
      if (rate <= 0)
        {
          cleanup_free char *quoted = quote_untrusted(text, strlen(text), 256);
          return error_set(err, EINVAL, "invalid bandwidth annotation %s", quoted);
        }
      json_write_key(writer, i == 0 ? "ingressRate" : "egressRate");
      json_write_int(writer, rate);
      json_write_key(writer, i == 0 ? "ingressBurst" : "egressBurst");
      json_write_int(writer, burst);
    }
  json_end_object(writer);
  return 0;
}

static void
write_port_mappings(struct json_writer *writer, const Runtime__V1__PodSandboxConfig *config)
{
  static const char *const protocols[] = { "tcp", "udp", "sctp" };

  json_write_key(writer, "portMappings");
  json_begin_array(writer);
  for (size_t i = 0; i < config->n_port_mappings; i++)
    {
      const Runtime__V1__PortMapping *mapping = config->port_mappings[i];
      if (mapping->host_port <= 0)
        continue;
      json_begin_object(writer);
      json_write_key(writer, "hostPort");
      json_write_int(writer, mapping->host_port);
      json_write_key(writer, "containerPort");
      json_write_int(writer, mapping->container_port);
      json_write_key(writer, "protocol");
      json_write_string(writer,
                        (unsigned)mapping->protocol < 3 ? protocols[mapping->protocol] : "tcp");
      json_write_key(writer, "hostIP");
      json_write_string(writer, mapping->host_ip);
      json_end_object(writer);
    }
  json_end_array(writer);
}

static struct json_value *
capability_args(const Runtime__V1__PodSandboxConfig *config, struct error *err)
{
  struct json_writer *writer = json_writer_new(false);
  cleanup_free char *text = NULL;
  size_t len;

  json_begin_object(writer);
  write_port_mappings(writer, config);
  if (write_bandwidth(writer, config, err) < 0)
    {
      json_writer_free(writer);
      return NULL;
    }
  json_end_object(writer);
  text = json_writer_finish(writer, &len);
  return json_parse(text, len, err);
}

static void
invocation_for(const struct pod_manager *manager, const struct sandbox *sandbox, const char *netns,
               char *args, struct cni_invocation *invocation)
{
  invocation->container_id = sandbox->id;
  invocation->netns = netns;
  invocation->ifname = "eth0";
  invocation->args = args;
  invocation->plugin_dirs = manager->options.cni_plugin_dirs;
  invocation->timeout_seconds = manager->options.cni_timeout_seconds;
}

static char *
cni_args_for(const struct sandbox *sandbox)
{
  const Runtime__V1__PodSandboxMetadata *m = sandbox->config->metadata;
  return xasprintf("IgnoreUnknown=1;K8S_POD_NAMESPACE=%s;K8S_POD_NAME=%s;"
                   "K8S_POD_INFRA_CONTAINER_ID=%s;K8S_POD_UID=%s",
                   m->namespace_, m->name, sandbox->id, m->uid);
}

/* CNI DEL with the configuration and result ADD used; the netns may be gone. */
static int
network_detach(struct pod_manager *manager, struct sandbox *sandbox, struct error *err)
{
  cleanup_free char *ns_dir = layout_namespace_dir(manager, sandbox->id);
  cleanup_free char *netns = xasprintf("%s/net", ns_dir);
  cleanup_free char *args = cni_args_for(sandbox);
  cleanup_json struct json_value *capabilities = NULL;
  struct cni_network_list *network = NULL;
  struct cni_invocation invocation = { 0 };
  int ret;

  if (!sandbox->network_attached)
    return 0;
  if (sandbox->network_config == NULL
      || cni_network_list_parse("saved network", sandbox->network_config,
                                strlen(sandbox->network_config), &network, err)
             < 0)
    return error_wrap(err, "tear down the pod network");
  /* The same capability arguments as ADD: portmap removes its rules only
   * when it is told the mappings again.  They derive from the stored
   * request, so they survive a restart. */
  capabilities = capability_args(sandbox->config, err);
  if (capabilities == NULL)
    {
      cni_network_list_free(network);
      return error_wrap(err, "tear down the pod network");
    }
  invocation_for(manager, sandbox, access(netns, F_OK) == 0 ? netns : "", args, &invocation);
  invocation.capability_args = capabilities;
  ret = cni_del(network, &invocation, sandbox->network_result, err);
  cni_network_list_free(network);
  if (ret < 0)
    return error_wrap(err, "tear down the pod network");
  sandbox->network_attached = false;
  return 0;
}

static int
undo_network(void *object, struct error *err)
{
  struct run_context *ctx = object;
  return network_detach(ctx->manager, ctx->sandbox, err);
}

static int
step_network(struct run_context *ctx, struct error *err)
{
  struct sandbox *sandbox = ctx->sandbox;
  struct pod_manager *manager = ctx->manager;
  cleanup_free char *ns_dir = layout_namespace_dir(manager, sandbox->id);
  cleanup_free char *netns = xasprintf("%s/net", ns_dir);
  cleanup_free char *args = cni_args_for(sandbox);
  cleanup_json struct json_value *capabilities = NULL;
  struct cni_network_list *network = NULL;
  struct cni_invocation invocation = { 0 };
  char *result = NULL;

  if (sandbox->host_network)
    return 0;
  if (cni_config_load_default(manager->options.cni_config_dir, &network, err) < 0)
    return -1;
  if (network == NULL)
    return error_set(err, EBUSY, "no CNI network configuration in %s",
                     manager->options.cni_config_dir);
  capabilities = capability_args(sandbox->config, err);
  if (capabilities == NULL)
    {
      cni_network_list_free(network);
      return -1;
    }
  sandbox->network_name = xstrdup(network->name);
  sandbox->network_config = cni_network_list_to_text(network);
  invocation_for(manager, sandbox, netns, args, &invocation);
  invocation.capability_args = capabilities;
  /* From here on DEL is owed, even when ADD fails half-way.  The IP lease
   * outlives a reboot, so this record must too. */
  sandbox->network_attached = true;
  if (sandbox_save(manager, sandbox, err) < 0)
    {
      cni_network_list_free(network);
      return -1;
    }
  if (cni_add(network, &invocation, &result, err) < 0)
    {
      struct error del_err = ERROR_INIT;
      if (network_detach(manager, sandbox, &del_err) < 0)
        log_warn("%s", error_message(&del_err));
      error_clear(&del_err);
      cni_network_list_free(network);
      return -1;
    }
  cni_network_list_free(network);
  failpoint("sandbox.after-network-add");
  sandbox->network_result = result;
  if (cni_result_ips(result, "eth0", &sandbox->ips, err) < 0)
    return -1;
  /* DEL goes better with the result ADD gave (prevResult); the record of
   * the ADD itself is already durable. */
  return sandbox_save_intent(manager, sandbox, err);
}

static bool
pause_has_exited(const struct pod_manager *manager, const struct sandbox *sandbox)
{
  cleanup_free char *exits = layout_area(manager, LAYOUT_EXITS);
  struct error err = ERROR_INIT;
  int status;
  int ret = monitor_read_exit(exits, sandbox->id, &status, &err);

  error_clear(&err);
  if (ret > 0)
    return true;
  return sandbox->pause_pid <= 0 || (kill(sandbox->pause_pid, 0) < 0 && errno == ESRCH);
}

/* Stops the pause process
 (it exits on SIGTERM), then deletes it from the
 * runtime. */
static int
pause_destroy(struct pod_manager *manager, struct sandbox *sandbox, struct error *err)
{
  cleanup_free char *socket_dir = layout_monitor_dir(manager, sandbox->id);
  struct oci_runtime runtime;

  if (!sandbox->pause_created)
    return 0;
  pod_manager_runtime(manager, sandbox->handler, &runtime);
  /* A pause that never started sits in the runtime's init, which ignores
   * SIGTERM: delete --force alone ends it. */
  if (sandbox->pause_started && !pause_has_exited(manager, sandbox))
    {
      if (oci_runtime_kill(&runtime, sandbox->id, SIGTERM, false, err) < 0)
        return -1;
      process_wait_ended(sandbox->pause_pid, PAUSE_STOP_TIMEOUT_MS);
      if (!pause_has_exited(manager, sandbox)
          && oci_runtime_kill(&runtime, sandbox->id, SIGKILL, true, err) < 0)
        return -1;
    }
  if (oci_runtime_delete(&runtime, sandbox->id, err) < 0)
    return -1;
  monitor_wait_ended(socket_dir, MONITOR_END_TIMEOUT_MS);
  container_remove_monitor_files(manager, sandbox->id);
  sandbox->pause_created = false;
  sandbox->pause_started = false;
  return 0;
}

static int
undo_pause(void *object, struct error *err)
{
  struct run_context *ctx = object;
  return pause_destroy(ctx->manager, ctx->sandbox, err);
}

/* The pod's seccomp profile applies to the pause process too; it holds
 * the default capabilities, so the filter is the one for those. */
static int
pause_seccomp(const struct pod_manager *manager, const struct sandbox *sandbox, char **json,
              struct error *err)
{
  const Runtime__V1__LinuxPodSandboxConfig *linux_config = sandbox->config->linux;
  const Runtime__V1__LinuxSandboxSecurityContext *sc
      = linux_config ? linux_config->security_context : NULL;
  const Runtime__V1__SecurityProfile *profile;
  Runtime__V1__SecurityProfile legacy;

  if (seccomp_profile_of_sandbox(sc, &legacy, &profile, err) < 0)
    return -1;
  return seccomp_profile_for(profile, capabilities_default(), sc && sc->privileged,
                             manager->options.seccomp_use_default_when_empty, json, err);
}

static int
write_pause_bundle(struct run_context *ctx, const char *bundle, struct error *err)
{
  struct sandbox *sandbox = ctx->sandbox;
  struct pod_manager *manager = ctx->manager;
  cleanup_free char *ns_dir = layout_namespace_dir(manager, sandbox->id);
  cleanup_free char *config_path = xasprintf("%s/config.json", bundle);
  cleanup_free char *json = NULL;
  cleanup_free char *seccomp = NULL;
  cleanup_free char *seccomp_bpf = NULL;
  cleanup_free char *rootfs = NULL;
  cleanup_strv char **args = NULL;
  cleanup_free char *userns_path = xasprintf("%s/user", ns_dir);
  struct oci_sandbox_params params = { 0 };
  struct pod_userns userns;

  if (pause_rootfs_get(manager->pause, &rootfs, &args, err) < 0)
    return -1;
  if (pod_userns_of_sandbox(sandbox->config, &userns, err) < 0)
    return -1;
  params.userns = &userns;
  params.userns_path = userns_path;
  params.config = sandbox->config;
  params.rootfs = rootfs;
  params.args = args;
  params.namespace_dir = sandbox->namespaces_pinned ? ns_dir : NULL;
  params.host_network = sandbox->host_network;
  params.host_ipc = sandbox->host_ipc;
  params.pid_mode = sandbox->pid_mode;
  params.cgroups_path = sandbox->cgroups_path;
  params.sandbox_id = sandbox->id;
  if (pause_seccomp(manager, sandbox, &seccomp, err) < 0)
    return error_wrap(err, "seccomp profile of the pod");
  params.seccomp_json = seccomp;
  if (pod_manager_seccomp_bpf(manager, sandbox->handler, seccomp, &seccomp_bpf, err) < 0)
    return error_wrap(err, "seccomp filter of the pod");
  params.seccomp_bpf = seccomp_bpf;
  if (mkdir_p(bundle, 0700, err) < 0 || oci_spec_sandbox(&params, &json, err) < 0)
    return -1;
  return replace_file(config_path, json, strlen(json), 0600, err);
}

static int
step_pause(struct run_context *ctx, struct error *err)
{
  struct sandbox *sandbox = ctx->sandbox;
  struct pod_manager *manager = ctx->manager;
  cleanup_free char *bundle = layout_pause_bundle(manager, sandbox->id);
  cleanup_free char *socket_dir = layout_monitor_dir(manager, sandbox->id);
  cleanup_free char *exits = layout_area(manager, LAYOUT_EXITS);
  const Runtime__V1__LinuxPodSandboxConfig *linux_config = sandbox->config->linux;
  struct oci_runtime runtime;
  struct monitor_launch launch = { 0 };
  pid_t monitor_pid;

  sandbox->cgroup_parent = xstrdup(linux_config ? linux_config->cgroup_parent : "");
  if (cgroup_sandbox_path(sandbox->cgroup_parent, sandbox->id, manager->options.systemd_cgroup,
                          &sandbox->cgroups_path, err)
      < 0)
    return -1;
  if (write_pause_bundle(ctx, bundle, err) < 0)
    return error_wrap(err, "pause bundle");
  pod_manager_runtime(manager, sandbox->handler, &runtime);
  launch = (struct monitor_launch){ .conmon_path = manager->options.conmon_path,
                                    .runtime = &runtime,
                                    .id = sandbox->id,
                                    .bundle = bundle,
                                    .exit_dir = exits,
                                    .socket_dir = socket_dir,
                                    .start = true };
  /* From here on the runtime may hold state for it: delete is owed.
   * Nothing happens to the pause between create and start (the network
   * is set up beside it), so one `run --detach` saves a runtime call. */
  sandbox->pause_created = true;
  sandbox->pause_started = true;
  if (sandbox_save_intent(manager, sandbox, err) < 0)
    return -1;
  if (monitor_create(&launch, &sandbox->pause_pid, &monitor_pid, err) < 0)
    return error_wrap(err, "run the pause container");
  failpoint("sandbox.after-pause");
  return 0;
}

struct network_job
{
  undo_function fn;
  void *object;
  const char *log_method;
  const char *log_request_id;
  struct error err;
  int ret;
};

static void *
network_job_run(void *object)
{
  struct network_job *job = object;

  log_context_set(job->log_method, job->log_request_id);
  job->ret = job->fn(job->object, &job->err);
  return NULL;
}

/* Runs the network step in a thread of its own while the pause step runs
 * in this one.  CNI needs only the pinned netns, and the pause only joins
 * that netns by path, so the plugins and the runtime (tens of
 * milliseconds each, in other processes) overlap, when the pod starts and
 * when it stops.  The two steps touch separate fields of the sandbox.
 * When both fail, the network's error is returned: a CNI failure is what
 * the caller has to act on. */
static int
network_beside_pause(struct run_context *ctx, undo_function network, undo_function pause,
                     struct error *err)
{
  struct network_job job = { .fn = network, .object = ctx, .err = ERROR_INIT };
  pthread_t thread;
  int ret;

  log_context_get(&job.log_method, &job.log_request_id);
  if (pthread_create(&thread, NULL, network_job_run, &job) != 0)
    {
      ret = network(ctx, err);
      return ret < 0 ? ret : pause(ctx, err);
    }
  ret = pause(ctx, err);
  pthread_join(thread, NULL);
  if (job.ret < 0)
    {
      if (ret < 0)
        log_warn("%s", error_message(err));
      error_move(err, &job.err);
      return -1;
    }
  return ret;
}

static int
network_up(void *object, struct error *err)
{
  return step_network(object, err);
}

static int
pause_up(void *object, struct error *err)
{
  return step_pause(object, err);
}

static int
run_steps(struct run_context *ctx, struct undo_list *undo, struct error *err)
{
  int ret;

  if (pod_manager_reserve(ctx->manager, ctx->sandbox, err) < 0)
    return -1;
  undo_push(undo, "name reservation", undo_reserve, ctx);
  undo_push(undo, "sandbox directories", undo_dirs, ctx);
  if (step_dirs(ctx, err) < 0)
    return -1;
  /* The record exists before the first side effect: a crash from here on
   * leaves something recovery can roll back. */
  ctx->sandbox->creating = true;
  if (sandbox_save_intent(ctx->manager, ctx->sandbox, err) < 0)
    return -1;
  failpoint("sandbox.after-record");
  undo_push(undo, "namespaces", undo_namespaces, ctx);
  if (step_namespaces(ctx, err) < 0 || step_files(ctx, err) < 0)
    return -1;
  undo_push(undo, "shm", undo_shm, ctx);
  if (step_shm(ctx, err) < 0)
    return -1;
  undo_push(undo, "network", undo_network, ctx);
  undo_push(undo, "pause container", undo_pause, ctx);
  if (network_beside_pause(ctx, network_up, pause_up, err) < 0)
    return -1;
  pthread_mutex_lock(&ctx->sandbox->lock);
  ret = sandbox_change_state(ctx->manager, ctx->sandbox, SANDBOX_READY, err);
  pthread_mutex_unlock(&ctx->sandbox->lock);
  if (ret < 0)
    return -1;
  failpoint("sandbox.after-ready");
  return 0;
}

/* CNI DEL for a pod whose record is lost: the network configuration in
 * force now, the id (host-local releases the address it holds for it) and
 * the netns if it is still pinned. */
static void
salvage_network(struct pod_manager *manager, const char *id)
{
  cleanup_free char *ns_dir = layout_namespace_dir(manager, id);
  cleanup_free char *netns = xasprintf("%s/net", ns_dir);
  cleanup_free char *args = xasprintf("IgnoreUnknown=1;K8S_POD_INFRA_CONTAINER_ID=%s", id);
  struct sandbox stand_in = { 0 };
  struct cni_network_list *network = NULL;
  struct cni_invocation invocation = { 0 };
  struct error err = ERROR_INIT;

  snprintf(stand_in.id, sizeof stand_in.id, "%s", id);
  if (cni_config_load_default(manager->options.cni_config_dir, &network, &err) < 0
      || network == NULL)
    {
      log_warn("recovery: sandbox %.12s: no network configuration to tear its network down", id);
      error_clear(&err);
      return;
    }
  invocation_for(manager, &stand_in, access(netns, F_OK) == 0 ? netns : "", args, &invocation);
  if (cni_del(network, &invocation, NULL, &err) < 0)
    log_warn("recovery: sandbox %.12s: %s", id, error_message(&err));
  error_clear(&err);
  cni_network_list_free(network);
}

void
sandbox_salvage(struct pod_manager *manager, const char *id)
{
  cleanup_free char *socket_dir = layout_monitor_dir(manager, id);
  cleanup_free char *ns_dir = layout_namespace_dir(manager, id);
  cleanup_free char *shm = layout_shm_path(manager, id);
  pid_t monitor = monitor_read_pid(socket_dir);
  struct error err = ERROR_INIT;

  log_warn("recovery: removing what sandbox %.12s may have left: its pause, monitor, network, "
           "namespaces, shm and files",
           id);
  for (size_t i = 0; i < manager->options.n_handlers; i++)
    {
      struct oci_runtime runtime;
      pod_manager_runtime(manager, manager->options.handlers[i].name, &runtime);
      if (oci_runtime_delete(&runtime, id, &err) < 0)
        log_warn("recovery: sandbox %.12s: %s", id, error_message(&err));
      error_clear(&err);
    }
  if (monitor > 0)
    {
      kill(monitor, SIGKILL);
      process_wait_ended(monitor, MONITOR_END_TIMEOUT_MS);
    }
  salvage_network(manager, id);
  if (pod_unmount_shm(shm, &err) < 0 || pod_namespaces_remove(ns_dir, &err) < 0
      || remove_sandbox_dirs(manager, id, &err) < 0)
    log_warn("recovery: sandbox %.12s: %s", id, error_message(&err));
  error_clear(&err);
  container_remove_monitor_files(manager, id);
  if (cgroup_remove_named((char *[]){ (char *)id, NULL }, &err) < 0)
    log_warn("recovery: %.12s: %s", id, error_message(&err));
  error_clear(&err);
}

void
sandbox_roll_back(struct pod_manager *manager, struct sandbox *sandbox)
{
  struct run_context ctx = { manager, sandbox };
  static const struct
  {
    const char *what;
    undo_function fn;
  } steps[] = {
    { "pause container", undo_pause }, { "network", undo_network },          { "shm", undo_shm },
    { "namespaces", undo_namespaces }, { "sandbox directories", undo_dirs },
  };

  log_info("recovery: sandbox %.12s was being created when crid stopped: rolling it back",
           sandbox->id);
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
    {
      struct error err = ERROR_INIT;
      if (steps[i].fn(&ctx, &err) < 0)
        log_warn("recovery: sandbox %.12s: undo %s: %s", sandbox->id, steps[i].what,
                 error_message(&err));
      error_clear(&err);
    }
}

int
sandbox_run(struct pod_manager *manager, const uint8_t *request_bytes, size_t request_len,
            struct sandbox **out, struct error *err)
{
  struct undo_list undo = UNDO_INIT;
  struct run_context ctx = { manager, NULL };

  ctx.sandbox = sandbox_from_request(manager, request_bytes, request_len, err);
  if (ctx.sandbox == NULL)
    return -1;
  cgroup_prepare_attach();
  pthread_rwlock_wrlock(&ctx.sandbox->op_lock);
  if (run_steps(&ctx, &undo, err) < 0)
    {
      undo_run(&undo);
      ctx.sandbox->removed = true;
      pthread_rwlock_unlock(&ctx.sandbox->op_lock);
      sandbox_unref(ctx.sandbox);
      return -1;
    }
  undo_forget(&undo);
  pthread_rwlock_unlock(&ctx.sandbox->op_lock);
  log_info("sandbox %.12s (%s) ready, pause pid %d", ctx.sandbox->id, ctx.sandbox->reservation,
           (int)ctx.sandbox->pause_pid);
  *out = ctx.sandbox;
  return 0;
}

static int
stop_locked(struct pod_manager *manager, struct sandbox *sandbox, struct error *err)
{
  cleanup_free char *ns_dir = layout_namespace_dir(manager, sandbox->id);
  cleanup_free char *shm = layout_shm_path(manager, sandbox->id);
  struct run_context ctx = { manager, sandbox };
  int ret;

  /* The pod's containers first: they live in its namespaces.  Kubelet has
   * stopped them with their grace periods already; what is left is
   * killed. */
  if (container_stop_pod(manager, sandbox->id, 0, err) < 0)
    return error_wrap(err, "stop sandbox %s", sandbox->id);
  if (network_beside_pause(&ctx, undo_network, undo_pause, err) < 0)
    return error_wrap(err, "stop sandbox %s", sandbox->id);
  failpoint("sandbox.stop-after-network-and-pause");
  if (sandbox->shm_mounted || access(shm, F_OK) == 0)
    {
      if (pod_unmount_shm(shm, err) < 0)
        return error_wrap(err, "stop sandbox %s", sandbox->id);
      sandbox->shm_mounted = false;
    }
  if (sandbox->namespaces_pinned)
    {
      if (pod_namespaces_remove(ns_dir, err) < 0)
        return error_wrap(err, "stop sandbox %s", sandbox->id);
      sandbox->namespaces_pinned = false;
    }
  pthread_mutex_lock(&sandbox->lock);
  ret = sandbox_change_state(manager, sandbox, SANDBOX_NOTREADY, err);
  pthread_mutex_unlock(&sandbox->lock);
  return ret;
}

int
sandbox_stop(struct pod_manager *manager, struct sandbox *sandbox, struct error *err)
{
  int ret = 0;

  pthread_rwlock_wrlock(&sandbox->op_lock);
  if (!sandbox->removed)
    ret = stop_locked(manager, sandbox, err);
  pthread_rwlock_unlock(&sandbox->op_lock);
  if (ret == 0)
    log_info("sandbox %.12s stopped", sandbox->id);
  return ret;
}

int
sandbox_remove(struct pod_manager *manager, struct sandbox *sandbox, struct error *err)
{
  int ret = 0;

  pthread_rwlock_wrlock(&sandbox->op_lock);
  if (!sandbox->removed)
    {
      ret = container_remove_pod(manager, sandbox->id, err);
      if (ret == 0)
        failpoint("sandbox.remove-after-containers");
      if (ret == 0)
        ret = stop_locked(manager, sandbox, err);
      if (ret == 0)
        ret = remove_sandbox_dirs(manager, sandbox->id, err);
      if (ret == 0)
        {
          pthread_mutex_lock(&sandbox->lock);
          sandbox_change_removed(manager, sandbox);
          pthread_mutex_unlock(&sandbox->lock);
          pod_manager_unreserve(manager, sandbox);
          log_info("sandbox %.12s removed", sandbox->id);
        }
    }
  pthread_rwlock_unlock(&sandbox->op_lock);
  return ret;
}

void
sandbox_refresh(struct pod_manager *manager, struct sandbox *sandbox)
{
  struct error err = ERROR_INIT;

  pthread_mutex_lock(&sandbox->lock);
  if (!sandbox->removed && !sandbox->creating && sandbox->state == SANDBOX_READY
      && pause_has_exited(manager, sandbox))
    {
      log_info("sandbox %.12s: the pause process is gone; not ready", sandbox->id);
      if (sandbox_change_state(manager, sandbox, SANDBOX_NOTREADY, &err) < 0)
        log_warn("%s", error_message(&err));
      error_clear(&err);
    }
  pthread_mutex_unlock(&sandbox->lock);
}

int
sandbox_connect_port(struct pod_manager *manager, struct sandbox *sandbox, uint16_t port,
                     struct error *err)
{
  cleanup_free char *ns_dir = layout_namespace_dir(manager, sandbox->id);
  cleanup_free char *netns = xasprintf("%s/net", ns_dir);
  struct sandbox_snapshot snapshot;
  bool ready;

  ready = sandbox_snapshot_take(manager, sandbox, &snapshot, err) == 0
          && snapshot.state == SANDBOX_READY;
  sandbox_snapshot_clear(&snapshot);
  error_clear(err);
  if (!ready)
    return error_set(err, EINVAL, "pod sandbox %s is not ready", sandbox->id);
  return pod_namespace_connect_localhost(sandbox->host_network ? NULL : netns, port, err);
}
