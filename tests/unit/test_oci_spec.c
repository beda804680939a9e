/* Unit tests of pod/oci_spec: CRI messages built with the generated
 * *_init functions go through the builders; the JSON comes back through
 * common/json and its fields are checked: the args merge table, env,
 * cwd, mounts with propagation and overrides, read-only root, privileged,
 * capabilities, namespaces per mode, resources, devices, oom clamp,
 * seccomp and user hooks, AppArmor, annotations, and the pause spec. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/cleanup.h"
#include "common/error.h"
#include "common/json.h"
#include "common/util.h"
#include "pod/capabilities.h"
#include "pod/oci_spec.h"
#include "pod/image_volume.h"
#include "pod/userns.h"

#include <errno.h>
#include <linux/capability.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#define SANDBOX_ID "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"
#define CONTAINER_ID "c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0"
#define NS_DIR "/run/crid/ns/" SANDBOX_ID

/* "/" is a shared mount in this mountinfo, private in the other. */
static const char shared_mountinfo[] = "27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
                                       "22 27 0:21 / /proc rw,relatime - proc proc rw\n";
static const char private_mountinfo[] = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n";
static const char slave_mountinfo[] = "27 1 254:0 / / rw,relatime master:3 - ext4 /dev/vda rw\n";

/* A kubelet-like CreateContainer: PID CONTAINER, network and IPC of the
 * pod, image busybox with Entrypoint/Cmd/Env/WorkingDir. */
struct fixture
{
  Runtime__V1__ContainerConfig config;
  Runtime__V1__ContainerMetadata metadata;
  Runtime__V1__ImageSpec image_spec;
  Runtime__V1__LinuxContainerConfig linux_config;
  Runtime__V1__LinuxContainerSecurityContext sc;
  Runtime__V1__NamespaceOption ns;
  Runtime__V1__LinuxContainerResources resources;
  Runtime__V1__Capability caps;

  Runtime__V1__PodSandboxConfig sandbox;
  Runtime__V1__PodSandboxMetadata sandbox_md;
  Runtime__V1__LinuxPodSandboxConfig sandbox_linux;
  Runtime__V1__LinuxSandboxSecurityContext sandbox_sc;
  Runtime__V1__NamespaceOption sandbox_ns;

  struct image_config image;
  char *image_env[4];
  char *image_entrypoint[3];
  char *image_cmd[3];

  struct oci_container_params params;
  char *tmp; /* a scratch directory */
};

static void
fixture_init(struct fixture *f)
{
  memset(f, 0, sizeof(*f));
  runtime__v1__container_config__init(&f->config);
  runtime__v1__container_metadata__init(&f->metadata);
  runtime__v1__image_spec__init(&f->image_spec);
  runtime__v1__linux_container_config__init(&f->linux_config);
  runtime__v1__linux_container_security_context__init(&f->sc);
  runtime__v1__namespace_option__init(&f->ns);
  runtime__v1__linux_container_resources__init(&f->resources);
  runtime__v1__capability__init(&f->caps);
  runtime__v1__pod_sandbox_config__init(&f->sandbox);
  runtime__v1__pod_sandbox_metadata__init(&f->sandbox_md);
  runtime__v1__linux_pod_sandbox_config__init(&f->sandbox_linux);
  runtime__v1__linux_sandbox_security_context__init(&f->sandbox_sc);
  runtime__v1__namespace_option__init(&f->sandbox_ns);

  f->metadata.name = "app";
  f->image_spec.image = "sha256:abcd";
  f->config.metadata = &f->metadata;
  f->config.image = &f->image_spec;
  f->ns.network = RUNTIME__V1__NAMESPACE_MODE__POD;
  f->ns.ipc = RUNTIME__V1__NAMESPACE_MODE__POD;
  f->ns.pid = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
  f->sc.namespace_options = &f->ns;
  f->sc.capabilities = &f->caps;
  f->linux_config.security_context = &f->sc;
  f->linux_config.resources = &f->resources;
  f->config.linux = &f->linux_config;

  f->sandbox_md.name = "pod";
  f->sandbox_md.namespace_ = "default";
  f->sandbox_md.uid = "uid-1";
  f->sandbox.metadata = &f->sandbox_md;
  f->sandbox.hostname = "podhost";
  f->sandbox_ns = f->ns;
  f->sandbox_sc.namespace_options = &f->sandbox_ns;
  f->sandbox_linux.security_context = &f->sandbox_sc;
  f->sandbox_linux.cgroup_parent = "/kubepods/poduid-1";
  f->sandbox.linux = &f->sandbox_linux;

  f->image_env[0] = "PATH=/image/bin";
  f->image_env[1] = "A=image";
  f->image_env[2] = "B=image";
  f->image_entrypoint[0] = "/entry";
  f->image_entrypoint[1] = "--flag";
  f->image_cmd[0] = "cmd";
  f->image_cmd[1] = "arg";
  f->image.env = f->image_env;
  f->image.entrypoint = f->image_entrypoint;
  f->image.cmd = f->image_cmd;
  f->image.working_dir = "/work";

  f->params.container_id = CONTAINER_ID;
  f->params.sandbox_id = SANDBOX_ID;
  f->params.config = &f->config;
  f->params.sandbox_config = &f->sandbox;
  f->params.image = &f->image;
  f->params.image_name = "docker.io/library/busybox:latest";
  f->params.rootfs = "/var/lib/crid/containers/" CONTAINER_ID "/rootfs";
  f->params.netns_path = NS_DIR "/net";
  f->params.ipcns_path = NS_DIR "/ipc";
  f->params.utsns_path = NS_DIR "/uts";
  f->params.hostname_path = "/var/lib/crid/sandboxes/" SANDBOX_ID "/hostname";
  f->params.resolv_conf_path = "/var/lib/crid/sandboxes/" SANDBOX_ID "/resolv.conf";
  f->params.shm_path = "/run/crid/sandboxes/" SANDBOX_ID "/shm";
  f->params.cgroups_path = "/kubepods/poduid-1/crid-" CONTAINER_ID;
  f->params.apparmor = OCI_APPARMOR_DISABLED;
  f->params.cgroup_mode = CGROUP_MODE_HYBRID;
  f->params.mountinfo = shared_mountinfo;

  f->tmp = xstrdup("/tmp/crid-spec-XXXXXX");
  assert_non_null(mkdtemp(f->tmp));
}

static int
setup(void **state)
{
  struct fixture *f = xmalloc(sizeof(*f));
  fixture_init(f);
  *state = f;
  return 0;
}

static int
teardown(void **state)
{
  struct fixture *f = *state;
  cleanup_free char *cmd = xasprintf("rm -rf '%s'", f->tmp);
  if (system(cmd) != 0)
    return -1;
  free(f->tmp);
  free(f);
  return 0;
}

/* ---- helpers ------------------------------------------------------------ */

static struct json_value *
parse(const char *json)
{
  struct error err = ERROR_INIT;
  struct json_value *v = json_parse(json, strlen(json), &err);
  if (v == NULL)
    fail_msg("%s", error_message(&err));
  return v;
}

static struct json_value *
build(struct fixture *f)
{
  struct error err = ERROR_INIT;
  cleanup_free char *json = NULL;

  if (oci_spec_container(&f->params, &json, &err) < 0)
    fail_msg("%s", error_message(&err));
  return parse(json);
}

/* The error code; the message must contain want (when given). */
static int
build_error(struct fixture *f, const char *want)
{
  struct error err = ERROR_INIT;
  char *json = NULL;
  int code;

  assert_int_equal(oci_spec_container(&f->params, &json, &err), -1);
  assert_null(json);
  if (want && strstr(error_message(&err), want) == NULL)
    fail_msg("error \"%s\" does not contain \"%s\"", error_message(&err), want);
  code = err.code;
  error_clear(&err);
  return code;
}

/* Dotted path of object members: "process.user.uid". */
static const struct json_value *
at(const struct json_value *v, const char *path)
{
  cleanup_free char *copy = xstrdup(path);
  char *save = NULL;

  for (char *key = strtok_r(copy, ".", &save); key && v; key = strtok_r(NULL, ".", &save))
    v = json_object_get(v, key);
  return v;
}

static int64_t
int_at(const struct json_value *v, const char *path)
{
  int64_t n;
  if (!json_integer(at(v, path), &n))
    fail_msg("%s is not an integer", path);
  return n;
}

static const char *
string_at(const struct json_value *v, const char *path)
{
  const char *s = json_string(at(v, path));
  if (s == NULL)
    fail_msg("%s is not a string", path);
  return s;
}

static bool
has_string(const struct json_value *array, const char *s)
{
  for (size_t i = 0; i < json_array_size(array); i++)
    if (json_string(json_array_at(array, i))
        && strcmp(json_string(json_array_at(array, i)), s) == 0)
      return true;
  return false;
}

static void
assert_strings(const struct json_value *array, const char *const *want)
{
  size_t n = 0;
  while (want[n])
    n++;
  if (json_array_size(array) != n)
    fail_msg("%zu strings, want %zu", json_array_size(array), n);
  for (size_t i = 0; i < n; i++)
    assert_string_equal(json_string(json_array_at(array, i)), want[i]);
}

static const struct json_value *
find_by(const struct json_value *array, const char *key, const char *value)
{
  for (size_t i = 0; i < json_array_size(array); i++)
    {
      const char *s = json_object_get_string(json_array_at(array, i), key);
      if (s && strcmp(s, value) == 0)
        return json_array_at(array, i);
    }
  return NULL;
}

static const struct json_value *
mount_at(const struct json_value *spec, const char *destination)
{
  return find_by(at(spec, "mounts"), "destination", destination);
}

static size_t
count_mounts(const struct json_value *spec, const char *destination)
{
  const struct json_value *mounts = at(spec, "mounts");
  size_t n = 0;
  for (size_t i = 0; i < json_array_size(mounts); i++)
    if (strcmp(json_object_get_string(json_array_at(mounts, i), "destination"), destination) == 0)
      n++;
  return n;
}

static const struct json_value *
namespace_of(const struct json_value *spec, const char *type)
{
  return find_by(at(spec, "linux.namespaces"), "type", type);
}

static int
own_oom_floor(void)
{
  struct error err = ERROR_INIT;
  int floor;
  assert_int_equal(oci_oom_score_adj_floor(&floor, &err), 0);
  return floor;
}

/* ---- args, env, cwd ----------------------------------------------------- */

struct args_case
{
  const char *command[3];
  const char *args[3];
  bool image_entrypoint;
  bool image_cmd;
  const char *want[6]; /* want[0] NULL = "no command specified" */
};

static void
test_args_merge_table(void **state)
{
  const struct args_case cases[] = {
    /* CRI command replaces Entrypoint and Cmd; CRI args follow it. */
    { { "/bin/sh", "-c" }, { "echo hi" }, true, true, { "/bin/sh", "-c", "echo hi" } },
    { { "/bin/true" }, { NULL }, true, true, { "/bin/true" } },
    /* No CRI command: Entrypoint + CRI args, else Entrypoint + Cmd. */
    { { NULL }, { "x", "y" }, true, true, { "/entry", "--flag", "x", "y" } },
    { { NULL }, { NULL }, true, true, { "/entry", "--flag", "cmd", "arg" } },
    { { NULL }, { NULL }, false, true, { "cmd", "arg" } },
    { { NULL }, { "only" }, false, true, { "only" } },
    { { NULL }, { NULL }, true, false, { "/entry", "--flag" } },
    { { "/c" }, { NULL }, false, false, { "/c" } },
    { { NULL }, { NULL }, false, false, { NULL } },
  };
  struct fixture *f = *state;

  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    {
      const struct args_case *c = &cases[i];
      struct error err = ERROR_INIT;
      char **out = NULL;

      f->config.command = (char **)c->command;
      f->config.n_command = strv_length((char **)c->command);
      f->config.args = (char **)c->args;
      f->config.n_args = strv_length((char **)c->args);
      f->image.entrypoint = c->image_entrypoint ? f->image_entrypoint : NULL;
      f->image.cmd = c->image_cmd ? f->image_cmd : NULL;
      if (c->want[0] == NULL)
        {
          assert_int_equal(oci_container_args(&f->config, &f->image, &out, &err), -1);
          assert_int_equal(err.code, EINVAL);
          assert_string_equal(err.message, "no command specified");
          error_clear(&err);
          assert_int_equal(build_error(f, "no command specified"), EINVAL);
          continue;
        }
      assert_int_equal(oci_container_args(&f->config, &f->image, &out, &err), 0);
      assert_int_equal(strv_length(out), strv_length((char **)c->want));
      for (size_t j = 0; c->want[j]; j++)
        assert_string_equal(out[j], c->want[j]);
      strv_free(out);

      /* And through the builder. */
      cleanup_json struct json_value *spec = build(f);
      assert_strings(at(spec, "process.args"), c->want);
    }

  /* Without an image config at all. */
  f->config.command = NULL;
  f->config.n_command = 0;
  f->config.args = NULL;
  f->config.n_args = 0;
  f->params.image = NULL;
  assert_int_equal(build_error(f, "no command specified"), EINVAL);
}

static Runtime__V1__KeyValue *
key_value(const char *key, const char *value)
{
  Runtime__V1__KeyValue *kv = xmalloc(sizeof(*kv));
  runtime__v1__key_value__init(kv);
  kv->key = (char *)key;
  kv->value.data = (uint8_t *)value;
  kv->value.len = strlen(value);
  return kv;
}

static void
test_env_image_then_cri(void **state)
{
  struct fixture *f = *state;
  Runtime__V1__KeyValue *envs[3]
      = { key_value("A", "cri"), key_value("C", "x=y"), key_value("HOSTNAME", "mine") };

  f->config.envs = envs;
  f->config.n_envs = 2;
  {
    cleanup_json struct json_value *spec = build(f);
    const char *want[]
        = { "HOSTNAME=podhost", "PATH=/image/bin", "A=cri", "B=image", "C=x=y", NULL };
    assert_strings(at(spec, "process.env"), want);
  }

  /* No PATH anywhere: the default one comes first; CRI may set HOSTNAME. */
  f->image_env[0] = "A=image";
  f->image_env[1] = NULL;
  f->config.n_envs = 3;
  {
    cleanup_json struct json_value *spec = build(f);
    const char *want[] = { "PATH=" OCI_DEFAULT_PATH, "HOSTNAME=mine", "A=cri", "C=x=y", NULL };
    assert_strings(at(spec, "process.env"), want);
  }

  /* Bad names and values. */
  envs[0]->key = "";
  assert_int_equal(build_error(f, "environment variable"), EINVAL);
  envs[0]->key = "A=B";
  assert_int_equal(build_error(f, "A=B"), EINVAL);
  envs[0]->key = "A";
  envs[0]->value.data = (uint8_t *)"a\0b";
  envs[0]->value.len = 3;
  assert_int_equal(build_error(f, "NUL"), EINVAL);
  for (size_t i = 0; i < 3; i++)
    free(envs[i]);
}

static void
test_cwd(void **state)
{
  struct fixture *f = *state;

  {
    cleanup_json struct json_value *spec = build(f);
    assert_string_equal(string_at(spec, "process.cwd"), "/work");
  }
  f->config.working_dir = "/cri";
  {
    cleanup_json struct json_value *spec = build(f);
    assert_string_equal(string_at(spec, "process.cwd"), "/cri");
  }
  f->config.working_dir = "";
  f->image.working_dir = NULL;
  {
    cleanup_json struct json_value *spec = build(f);
    assert_string_equal(string_at(spec, "process.cwd"), "/");
  }
  f->image.working_dir = "rel";
  {
    cleanup_json struct json_value *spec = build(f);
    assert_string_equal(string_at(spec, "process.cwd"), "/rel");
  }
  f->config.working_dir = "relative";
  assert_int_equal(build_error(f, "not absolute"), EINVAL);
}

/* ---- the whole default container ------------------------------------------ */

static void
test_defaults(void **state)
{
  struct fixture *f = *state;
  cleanup_json struct json_value *spec = build(f);
  const struct json_value *m;

  assert_string_equal(string_at(spec, "ociVersion"), OCI_VERSION);
  assert_string_equal(string_at(spec, "root.path"), f->params.rootfs);
  assert_false(json_bool(at(spec, "root.readonly")));
  assert_false(json_bool(at(spec, "process.terminal")));
  assert_false(json_bool(at(spec, "process.noNewPrivileges")));
  assert_int_equal(int_at(spec, "process.user.uid"), 0);
  assert_int_equal(int_at(spec, "process.user.gid"), 0);
  assert_null(at(spec, "process.user.additionalGids"));
  assert_null(at(spec, "process.apparmorProfile"));
  assert_null(at(spec, "hostname")); /* the pod's UTS namespace has it */
  assert_null(at(spec, "linux.seccomp"));
  assert_null(at(spec, "linux.rootfsPropagation"));
  assert_null(at(spec, "linux.sysctl"));
  assert_string_equal(string_at(spec, "linux.cgroupsPath"), f->params.cgroups_path);

  /* rlimits: RLIMIT_NOFILE, soft = hard, never above 1048576. */
  const struct json_value *rlimit = json_array_at(at(spec, "process.rlimits"), 0);
  assert_string_equal(json_object_get_string(rlimit, "type"), "RLIMIT_NOFILE");
  assert_int_equal(int_at(rlimit, "soft"), int_at(rlimit, "hard"));
  assert_true(int_at(rlimit, "hard") > 0 && int_at(rlimit, "hard") <= OCI_NOFILE_LIMIT);

  /* Default mounts, in the facts' shape. */
  m = mount_at(spec, "/proc");
  assert_string_equal(json_object_get_string(m, "type"), "proc");
  m = mount_at(spec, "/dev");
  assert_string_equal(json_object_get_string(m, "type"), "tmpfs");
  assert_true(has_string(json_object_get(m, "options"), "mode=755"));
  m = mount_at(spec, "/dev/pts");
  assert_true(has_string(json_object_get(m, "options"), "newinstance"));
  assert_true(has_string(json_object_get(m, "options"), "gid=5"));
  m = mount_at(spec, "/dev/mqueue");
  assert_string_equal(json_object_get_string(m, "type"), "mqueue");
  m = mount_at(spec, "/sys");
  assert_true(has_string(json_object_get(m, "options"), "ro"));
  m = mount_at(spec, "/sys/fs/cgroup");
  assert_string_equal(json_object_get_string(m, "type"), "cgroup");
  assert_true(has_string(json_object_get(m, "options"), "ro"));
  /* The pod's files and shm. */
  m = mount_at(spec, "/etc/hostname");
  assert_string_equal(json_object_get_string(m, "source"), f->params.hostname_path);
  assert_false(has_string(json_object_get(m, "options"), "ro"));
  m = mount_at(spec, "/etc/resolv.conf");
  assert_string_equal(json_object_get_string(m, "source"), f->params.resolv_conf_path);
  assert_true(has_string(json_object_get(m, "options"), "rbind"));
  m = mount_at(spec, "/dev/shm");
  assert_string_equal(json_object_get_string(m, "type"), "bind");
  assert_string_equal(json_object_get_string(m, "source"), f->params.shm_path);

  /* Masked and read-only paths: the defaults. */
  assert_true(has_string(at(spec, "linux.maskedPaths"), "/proc/kcore"));
  assert_true(has_string(at(spec, "linux.maskedPaths"), "/sys/firmware"));
  assert_int_equal(json_array_size(at(spec, "linux.maskedPaths")), 11);
  assert_true(has_string(at(spec, "linux.readonlyPaths"), "/proc/sys"));
  assert_int_equal(json_array_size(at(spec, "linux.readonlyPaths")), 5);

  /* Devices: deny all, nothing else. */
  const struct json_value *rules = at(spec, "linux.resources.devices");
  assert_int_equal(json_array_size(rules), 1);
  assert_false(json_bool(json_object_get(json_array_at(rules, 0), "allow")));
  assert_string_equal(json_object_get_string(json_array_at(rules, 0), "access"), "rwm");
  assert_null(at(spec, "linux.devices"));

  /* Annotations (keys have dots: no at() here). */
  const struct json_value *a = json_object_get(spec, "annotations");
  assert_string_equal(json_object_get_string(a, OCI_ANNOTATION_CONTAINER_TYPE), "container");
  assert_string_equal(json_object_get_string(a, OCI_ANNOTATION_SANDBOX_ID), SANDBOX_ID);
  assert_string_equal(json_object_get_string(a, OCI_ANNOTATION_CONTAINER_NAME), "app");
  assert_string_equal(json_object_get_string(a, OCI_ANNOTATION_IMAGE_NAME),
                      "docker.io/library/busybox:latest");
  assert_string_equal(json_object_get_string(a, OCI_ANNOTATION_SANDBOX_NAME), "pod");
  assert_string_equal(json_object_get_string(a, OCI_ANNOTATION_SANDBOX_NAMESPACE), "default");
}

/* ---- mounts --------------------------------------------------------------- */

static Runtime__V1__Mount *
cri_mount(const char *container_path, const char *host_path, bool readonly, int propagation)
{
  Runtime__V1__Mount *m = xmalloc(sizeof(*m));
  runtime__v1__mount__init(m);
  m->container_path = (char *)container_path;
  m->host_path = (char *)host_path;
  m->readonly = readonly;
  m->propagation = (Runtime__V1__MountPropagation)propagation;
  return m;
}

static void
free_mounts(Runtime__V1__Mount **mounts, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free(mounts[i]);
}

static void
test_cri_mounts_and_propagation(void **state)
{
  struct fixture *f = *state;
  cleanup_free char *data = xasprintf("%s/data", f->tmp);
  cleanup_free char *missing = xasprintf("%s/not/yet", f->tmp);
  Runtime__V1__Mount *mounts[4] = {
    cri_mount("/data/sub/", data, true, RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_PRIVATE),
    cri_mount("/data", data, false, RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_HOST_TO_CONTAINER),
    cri_mount("/etc/hosts", data, false, RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_PRIVATE),
    cri_mount("/new", missing, false, RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_PRIVATE),
  };
  struct stat st;

  assert_int_equal(mkdir(data, 0755), 0);
  f->config.mounts = mounts;
  f->config.n_mounts = 4;
  {
    cleanup_json struct json_value *spec = build(f);
    const struct json_value *m = mount_at(spec, "/data/sub");
    const char *ro[] = { "rbind", "rprivate", "ro", NULL };
    assert_string_equal(json_object_get_string(m, "type"), "bind");
    assert_string_equal(json_object_get_string(m, "source"), data);
    assert_strings(json_object_get(m, "options"), ro);
    const char *slave[] = { "rbind", "rslave", NULL };
    assert_strings(json_object_get(mount_at(spec, "/data"), "options"), slave);
    assert_string_equal(string_at(spec, "linux.rootfsPropagation"), "rslave");
    assert_non_null(mount_at(spec, "/etc/hosts"));

    /* Parents before children, whatever the request's order. */
    const struct json_value *list = at(spec, "mounts");
    size_t parent = 0, child = 0;
    for (size_t i = 0; i < json_array_size(list); i++)
      {
        const char *d = json_object_get_string(json_array_at(list, i), "destination");
        if (strcmp(d, "/data") == 0)
          parent = i;
        if (strcmp(d, "/data/sub") == 0)
          child = i;
      }
    assert_true(parent < child);
  }
  /* A missing source became a directory. */
  assert_int_equal(stat(missing, &st), 0);
  assert_true(S_ISDIR(st.st_mode));

  /* Bidirectional: rshared, and the root propagation follows. */
  mounts[1]->propagation = RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_BIDIRECTIONAL;
  {
    cleanup_json struct json_value *spec = build(f);
    const char *shared[] = { "rbind", "rshared", NULL };
    assert_strings(json_object_get(mount_at(spec, "/data"), "options"), shared);
    assert_string_equal(string_at(spec, "linux.rootfsPropagation"), "rshared");
  }
  /* ... which needs a shared source mount. */
  f->params.mountinfo = private_mountinfo;
  assert_int_equal(build_error(f, "not a shared mount"), EINVAL);
  f->params.mountinfo = slave_mountinfo;
  assert_int_equal(build_error(f, "not a shared mount"), EINVAL);
  mounts[1]->propagation = RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_HOST_TO_CONTAINER;
  {
    cleanup_json struct json_value *spec = build(f);
    assert_string_equal(string_at(spec, "linux.rootfsPropagation"), "rslave");
  }
  f->params.mountinfo = private_mountinfo;
  assert_int_equal(build_error(f, "not a shared or slave mount"), EINVAL);
  f->params.mountinfo = shared_mountinfo;

  /* Bad mounts. */
  mounts[0]->container_path = "relative";
  assert_int_equal(build_error(f, "not absolute"), EINVAL);
  mounts[0]->container_path = "/data/sub";
  mounts[0]->host_path = "";
  assert_int_equal(build_error(f, "no host path"), EINVAL);
  mounts[0]->host_path = data;
  /* A relative host path is refused before any source is created: the
   * missing source of another mount stays missing. */
  assert_int_equal(rmdir(missing), 0);
  mounts[2]->host_path = "relative/source";
  assert_int_equal(build_error(f, "host path \"relative/source\" is not absolute"), EINVAL);
  assert_int_equal(stat(missing, &st), -1);
  mounts[2]->host_path = data;
  mounts[0]->propagation = 7;
  assert_int_equal(build_error(f, "propagation"), EINVAL);
  mounts[0]->propagation = RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_PRIVATE;

  /* Recursive read-only: the source crid made read-only throughout
   * (pod/volume_sources.h) is bound read-only, for every runtime. */
  mounts[0]->recursive_read_only = true;
  {
    cleanup_json struct json_value *spec = build(f);
    const char *rro[] = { "rbind", "rprivate", "ro", NULL };
    assert_strings(json_object_get(mount_at(spec, "/data/sub"), "options"), rro);
  }
  mounts[0]->readonly = false;
  assert_int_equal(build_error(f, "recursive read-only"), EINVAL);
  free_mounts(mounts, 4);
}

/* An image volume is bound from where crid mounted it (pod/image_volume.h),
 * read-only whatever the request says; the checks of its fields come
 * first. */
static void
test_image_volume_mounts(void **state)
{
  struct fixture *f = *state;
  cleanup_free char *source = xasprintf("%s/image-volumes/0/sub", f->tmp);
  Runtime__V1__ImageSpec image = RUNTIME__V1__IMAGE_SPEC__INIT;
  Runtime__V1__Mount *mounts[1]
      = { cri_mount("/opt/tools", "", false, RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_PRIVATE) };
  struct image_volume volume = { .mount_index = 0, .image_id = "sha256:abcd", .source = source };
  struct image_volumes volumes = { .items = &volume, .n = 1 };

  image.image = "localhost/tools:1";
  mounts[0]->image = &image;
  mounts[0]->image_sub_path = "sub";
  f->config.mounts = mounts;
  f->config.n_mounts = 1;
  assert_int_equal(build_error(f, "the image volume is not mounted"), EINVAL);
  f->params.image_volumes = &volumes;
  {
    cleanup_json struct json_value *spec = build(f);
    const struct json_value *m = mount_at(spec, "/opt/tools");
    const char *options[] = { "rbind", "rprivate", "ro", "nosuid", "nodev", NULL };
    assert_string_equal(json_object_get_string(m, "type"), "bind");
    assert_string_equal(json_object_get_string(m, "source"), source);
    assert_strings(json_object_get(m, "options"), options);
  }
  mounts[0]->image_sub_path = "a/../../etc";
  assert_int_equal(build_error(f, "must be relative, without \"..\""), EINVAL);
  mounts[0]->image_sub_path = "/etc";
  assert_int_equal(build_error(f, "must be relative"), EINVAL);
  mounts[0]->image_sub_path = "";
  mounts[0]->host_path = "/srv";
  assert_int_equal(build_error(f, "both a host path and an image"), EINVAL);
  mounts[0]->host_path = "";
  image.image = "";
  assert_int_equal(build_error(f, "names no image"), EINVAL);
  image.image = "localhost/tools:1";
  mounts[0]->propagation = RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_BIDIRECTIONAL;
  assert_int_equal(build_error(f, "bidirectional"), EINVAL);
  mounts[0]->image = NULL;
  mounts[0]->host_path = f->tmp;
  mounts[0]->propagation = RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_PRIVATE;
  mounts[0]->image_sub_path = "sub";
  assert_int_equal(build_error(f, "an image sub path needs an image"), EINVAL);
  free_mounts(mounts, 1);
}

static void
test_cri_mounts_override_defaults(void **state)
{
  struct fixture *f = *state;
  Runtime__V1__Mount *mounts[3] = {
    cri_mount("/etc/resolv.conf", f->tmp, true, 0),
    cri_mount("/dev/shm/", f->tmp, false, 0),
    cri_mount("/proc", f->tmp, false, 0),
  };

  f->config.mounts = mounts;
  f->config.n_mounts = 3;
  {
    cleanup_json struct json_value *spec = build(f);
    assert_int_equal(count_mounts(spec, "/etc/resolv.conf"), 1);
    assert_int_equal(count_mounts(spec, "/dev/shm"), 1);
    assert_int_equal(count_mounts(spec, "/proc"), 1);
    assert_string_equal(json_object_get_string(mount_at(spec, "/etc/resolv.conf"), "source"),
                        f->tmp);
    assert_string_equal(json_object_get_string(mount_at(spec, "/dev/shm"), "source"), f->tmp);
    assert_string_equal(json_object_get_string(mount_at(spec, "/proc"), "type"), "bind");
    assert_non_null(mount_at(spec, "/dev/pts"));
  }
  /* A /dev of the user's replaces everything under /dev. */
  mounts[0]->container_path = "/dev";
  {
    cleanup_json struct json_value *spec = build(f);
    assert_int_equal(count_mounts(spec, "/dev"), 1);
    assert_null(mount_at(spec, "/dev/pts"));
    assert_null(mount_at(spec, "/dev/mqueue"));
    assert_int_equal(count_mounts(spec, "/dev/shm"), 1); /* the user's own */
  }
  free_mounts(mounts, 3);
}

static void
test_shm_per_ipc_mode(void **state)
{
  struct fixture *f = *state;

  f->ns.ipc = RUNTIME__V1__NAMESPACE_MODE__NODE;
  {
    cleanup_json struct json_value *spec = build(f);
    assert_string_equal(json_object_get_string(mount_at(spec, "/dev/shm"), "source"), "/dev/shm");
    assert_null(namespace_of(spec, "ipc"));
  }
  f->ns.ipc = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
  {
    cleanup_json struct json_value *spec = build(f);
    assert_string_equal(json_object_get_string(mount_at(spec, "/dev/shm"), "type"), "tmpfs");
    assert_non_null(namespace_of(spec, "ipc"));
    assert_null(json_object_get(namespace_of(spec, "ipc"), "path"));
  }
  f->ns.ipc = RUNTIME__V1__NAMESPACE_MODE__POD;
  f->params.shm_path = NULL;
  {
    cleanup_json struct json_value *spec = build(f);
    assert_string_equal(json_object_get_string(mount_at(spec, "/dev/shm"), "type"), "tmpfs");
  }
  f->params.hostname_path = NULL;
  f->params.resolv_conf_path = NULL;
  {
    cleanup_json struct json_value *spec = build(f);
    assert_null(mount_at(spec, "/etc/hostname"));
    assert_null(mount_at(spec, "/etc/resolv.conf"));
  }
}

static void
test_readonly_rootfs(void **state)
{
  struct fixture *f = *state;

  f->sc.readonly_rootfs = true;
  f->sc.no_new_privs = true;
  f->config.tty = true;
  cleanup_json struct json_value *spec = build(f);
  assert_true(json_bool(at(spec, "root.readonly")));
  assert_true(json_bool(at(spec, "process.noNewPrivileges")));
  assert_true(json_bool(at(spec, "process.terminal")));
  assert_true(has_string(json_object_get(mount_at(spec, "/etc/hostname"), "options"), "ro"));
  assert_true(has_string(json_object_get(mount_at(spec, "/etc/resolv.conf"), "options"), "ro"));
  assert_false(has_string(json_object_get(mount_at(spec, "/dev/shm"), "options"), "ro"));
}

/* ---- security ------------------------------------------------------------- */

static void
test_masked_paths_verbatim(void **state)
{
  struct fixture *f = *state;
  char *masked[] = { "/proc/one" };
  char *readonly[] = { "/proc/two", "/proc/three" };

  f->sc.masked_paths = masked;
  f->sc.n_masked_paths = 1;
  f->sc.readonly_paths = readonly;
  f->sc.n_readonly_paths = 2;
  cleanup_json struct json_value *spec = build(f);
  const char *want_masked[] = { "/proc/one", NULL };
  const char *want_ro[] = { "/proc/two", "/proc/three", NULL };
  assert_strings(at(spec, "linux.maskedPaths"), want_masked);
  assert_strings(at(spec, "linux.readonlyPaths"), want_ro);
}

static void
test_capabilities_in_spec(void **state)
{
  struct fixture *f = *state;
  char *add[] = { "NET_ADMIN", "cap_sys_time" };
  char *drop[] = { "CHOWN" };
  char *ambient[] = { "NET_RAW" };

  f->caps.add_capabilities = add;
  f->caps.n_add_capabilities = 2;
  f->caps.drop_capabilities = drop;
  f->caps.n_drop_capabilities = 1;
  f->caps.add_ambient_capabilities = ambient;
  f->caps.n_add_ambient_capabilities = 1;
  {
    cleanup_json struct json_value *spec = build(f);
    const struct json_value *bounding = at(spec, "process.capabilities.bounding");
    assert_true(has_string(bounding, "CAP_NET_ADMIN"));
    assert_true(has_string(bounding, "CAP_SYS_TIME"));
    assert_true(has_string(bounding, "CAP_KILL"));
    assert_false(has_string(bounding, "CAP_CHOWN"));
    assert_true(has_string(at(spec, "process.capabilities.effective"), "CAP_NET_ADMIN"));
    assert_true(has_string(at(spec, "process.capabilities.permitted"), "CAP_NET_ADMIN"));
    const struct json_value *inheritable = at(spec, "process.capabilities.inheritable");
    assert_true(has_string(inheritable, "CAP_NET_ADMIN"));
    assert_true(has_string(inheritable, "CAP_NET_RAW"));
    assert_false(has_string(inheritable, "CAP_KILL")); /* defaults never */
    const char *want_ambient[] = { "CAP_NET_RAW", NULL };
    assert_strings(at(spec, "process.capabilities.ambient"), want_ambient);
  }
  /* ALL means what crid holds: here CAP_SYS_RESOURCE may be missing. */
  char *all[] = { "ALL" };
  uint64_t host;
  struct error err = ERROR_INIT;
  assert_int_equal(capabilities_host_bounding(&host, &err), 0);
  f->caps.add_capabilities = all;
  f->caps.n_add_capabilities = 1;
  f->caps.n_drop_capabilities = 0;
  f->caps.n_add_ambient_capabilities = 0;
  {
    cleanup_json struct json_value *spec = build(f);
    const struct json_value *bounding = at(spec, "process.capabilities.bounding");
    assert_int_equal(json_array_size(bounding), __builtin_popcountll(host));
    assert_int_equal(has_string(bounding, "CAP_SYS_RESOURCE"),
                     (host & CAPABILITY_BIT(CAP_SYS_RESOURCE)) != 0);
  }
  char *unknown[] = { "CAP_BOGUS" };
  f->caps.add_capabilities = unknown;
  assert_int_equal(build_error(f, "CAP_BOGUS"), EINVAL);
}

static void
test_privileged(void **state)
{
  struct fixture *f = *state;
  char *drop[] = { "ALL" };
  uint64_t host;
  struct error err = ERROR_INIT;

  f->sc.privileged = true;
  f->caps.drop_capabilities = drop; /* ignored when privileged */
  f->caps.n_drop_capabilities = 1;
  /* Only inside a privileged pod. */
  assert_int_equal(build_error(f, "privileged"), EINVAL);
  f->sandbox_sc.privileged = true;
  f->params.cgroup_mode = CGROUP_MODE_UNIFIED;

  cleanup_json struct json_value *spec = build(f);
  assert_int_equal(capabilities_host_bounding(&host, &err), 0);
  assert_int_equal(json_array_size(at(spec, "process.capabilities.bounding")),
                   __builtin_popcountll(host));
  assert_int_equal(json_array_size(at(spec, "process.capabilities.effective")),
                   __builtin_popcountll(host));
  assert_null(at(spec, "linux.maskedPaths"));
  assert_null(at(spec, "linux.readonlyPaths"));
  assert_true(has_string(json_object_get(mount_at(spec, "/sys"), "options"), "rw"));
  assert_false(has_string(json_object_get(mount_at(spec, "/sys"), "options"), "ro"));
  assert_true(has_string(json_object_get(mount_at(spec, "/sys/fs/cgroup"), "options"), "rw"));
  /* No cgroup namespace, even on a unified host. */
  assert_null(namespace_of(spec, "cgroup"));
  /* Every device: allow-all and the host's nodes listed. */
  const struct json_value *rules = at(spec, "linux.resources.devices");
  assert_int_equal(json_array_size(rules), 1);
  assert_true(json_bool(json_object_get(json_array_at(rules, 0), "allow")));
  const struct json_value *null_dev = find_by(at(spec, "linux.devices"), "path", "/dev/null");
  assert_non_null(null_dev);
  assert_string_equal(json_object_get_string(null_dev, "type"), "c");
  assert_int_equal(int_at(null_dev, "major"), 1);
  assert_int_equal(int_at(null_dev, "minor"), 3);
  assert_null(find_by(at(spec, "linux.devices"), "path", "/dev/console"));
  assert_null(find_by(at(spec, "linux.devices"), "path", "/dev/pts/ptmx"));
}

static void
test_cgroup_namespace_on_unified(void **state)
{
  struct fixture *f = *state;

  {
    cleanup_json struct json_value *spec = build(f);
    assert_null(namespace_of(spec, "cgroup"));
  }
  f->params.cgroup_mode = CGROUP_MODE_UNIFIED;
  {
    cleanup_json struct json_value *spec = build(f);
    assert_non_null(namespace_of(spec, "cgroup"));
  }
}

static void
test_apparmor(void **state)
{
  struct fixture *f = *state;
  Runtime__V1__SecurityProfile profile;

  runtime__v1__security_profile__init(&profile);
  profile.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost;
  profile.localhost_ref = "localhost/my-profile";
  f->sc.apparmor = &profile;
  /* Not on this host (the default here): asking for a profile fails. */
  f->params.apparmor = OCI_APPARMOR_DISABLED;
  assert_int_equal(build_error(f, "AppArmor"), EINVAL);
  f->params.apparmor = OCI_APPARMOR_ENABLED;
  {
    cleanup_json struct json_value *spec = build(f);
    assert_string_equal(string_at(spec, "process.apparmorProfile"), "my-profile");
  }
  profile.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__RuntimeDefault;
  {
    cleanup_json struct json_value *spec = build(f);
    assert_null(at(spec, "process.apparmorProfile"));
  }
  profile.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined;
  {
    cleanup_json struct json_value *spec = build(f);
    assert_string_equal(string_at(spec, "process.apparmorProfile"), "unconfined");
  }
  f->params.apparmor = OCI_APPARMOR_DISABLED;
  {
    cleanup_json struct json_value *spec = build(f);
    assert_null(at(spec, "process.apparmorProfile"));
  }
  /* The host's own answer: no AppArmor module, no AppArmor. */
  if (access("/sys/module/apparmor/parameters/enabled", F_OK) != 0)
    assert_false(oci_apparmor_host_enabled());
}

static void
test_user_and_seccomp_hooks(void **state)
{
  struct fixture *f = *state;
  Runtime__V1__Int64Value uid, gid;
  int64_t groups[] = { 10, 20 };
  const uint32_t resolved_groups[] = { 7 };
  struct oci_user user
      = { .uid = 1000, .gid = 1001, .additional_gids = resolved_groups, .n_additional_gids = 1 };

  /* From the security context when nothing was resolved. */
  runtime__v1__int64_value__init(&uid);
  runtime__v1__int64_value__init(&gid);
  uid.value = 33;
  gid.value = 44;
  f->sc.run_as_user = &uid;
  f->sc.run_as_group = &gid;
  f->sc.supplemental_groups = groups;
  f->sc.n_supplemental_groups = 2;
  {
    cleanup_json struct json_value *spec = build(f);
    assert_int_equal(int_at(spec, "process.user.uid"), 33);
    assert_int_equal(int_at(spec, "process.user.gid"), 44);
    assert_int_equal(json_array_size(at(spec, "process.user.additionalGids")), 2);
  }
  /* pod/user.c's answer wins. */
  f->params.user = &user;
  f->params.seccomp_json = "{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"architectures\":"
                           "[\"SCMP_ARCH_X86_64\"],\"syscalls\":[{\"names\":[\"read\"],"
                           "\"action\":\"SCMP_ACT_ALLOW\"}]}";
  {
    cleanup_json struct json_value *spec = build(f);
    assert_int_equal(int_at(spec, "process.user.uid"), 1000);
    assert_int_equal(int_at(spec, "process.user.gid"), 1001);
    assert_int_equal(int_at(json_array_at(at(spec, "process.user.additionalGids"), 0), ""), 7);
    assert_string_equal(string_at(spec, "linux.seccomp.defaultAction"), "SCMP_ACT_ERRNO");
    assert_int_equal(json_array_size(at(spec, "linux.seccomp.syscalls")), 1);
  }
  f->params.seccomp_json = "{not json";
  assert_int_equal(build_error(f, "seccomp"), EINVAL);
  f->params.seccomp_json = "[]";
  assert_int_equal(build_error(f, "seccomp"), EINVAL);
}

/* ---- namespaces ----------------------------------------------------------- */

static void
assert_namespace(const struct json_value *spec, const char *type, const char *path)
{
  const struct json_value *ns = namespace_of(spec, type);
  if (ns == NULL)
    fail_msg("no %s namespace", type);
  if (path)
    assert_string_equal(json_object_get_string(ns, "path"), path);
  else
    assert_null(json_object_get(ns, "path"));
}

static void
test_namespaces_per_mode(void **state)
{
  struct fixture *f = *state;

  /* kubelet's usual pod. */
  {
    cleanup_json struct json_value *spec = build(f);
    assert_namespace(spec, "network", NS_DIR "/net");
    assert_namespace(spec, "ipc", NS_DIR "/ipc");
    assert_namespace(spec, "uts", NS_DIR "/uts");
    assert_namespace(spec, "pid", NULL);
    assert_namespace(spec, "mount", NULL);
    assert_null(namespace_of(spec, "user"));
  }
  /* shareProcessNamespace: the pause's PID namespace. */
  f->ns.pid = RUNTIME__V1__NAMESPACE_MODE__POD;
  assert_int_equal(build_error(f, "POD"), EINVAL);
  f->params.pod_pidns_path = "/proc/4242/ns/pid";
  {
    cleanup_json struct json_value *spec = build(f);
    assert_namespace(spec, "pid", "/proc/4242/ns/pid");
  }
  /* Ephemeral container targeting another one. */
  f->ns.pid = RUNTIME__V1__NAMESPACE_MODE__TARGET;
  f->ns.target_id = "other";
  assert_int_equal(build_error(f, "TARGET"), EINVAL);
  f->params.target_pidns_path = "/proc/77/ns/pid";
  {
    cleanup_json struct json_value *spec = build(f);
    assert_namespace(spec, "pid", "/proc/77/ns/pid");
  }
  /* hostPID, hostNetwork, hostIPC: none of them. */
  f->ns.pid = RUNTIME__V1__NAMESPACE_MODE__NODE;
  f->ns.network = RUNTIME__V1__NAMESPACE_MODE__NODE;
  f->ns.ipc = RUNTIME__V1__NAMESPACE_MODE__NODE;
  f->params.netns_path = NULL;
  f->params.utsns_path = NULL;
  f->params.ipcns_path = NULL;
  {
    cleanup_json struct json_value *spec = build(f);
    assert_null(namespace_of(spec, "pid"));
    assert_null(namespace_of(spec, "network"));
    assert_null(namespace_of(spec, "uts"));
    assert_null(namespace_of(spec, "ipc"));
    assert_namespace(spec, "mount", NULL);
    /* HOSTNAME is the pod's hostname still. */
    assert_true(has_string(at(spec, "process.env"), "HOSTNAME=podhost"));
  }
  f->ns.pid = 9;
  assert_int_equal(build_error(f, "PID namespace mode"), EINVAL);

  /* No options of the container's own (crictl): the pod's. */
  f->sc.namespace_options = NULL;
  f->sandbox_ns.pid = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
  f->sandbox_ns.network = RUNTIME__V1__NAMESPACE_MODE__NODE;
  {
    cleanup_json struct json_value *spec = build(f);
    assert_namespace(spec, "pid", NULL);
    assert_null(namespace_of(spec, "network"));
  }
  /* Nor the pod's: POD network/IPC, own PID. */
  f->sandbox_sc.namespace_options = NULL;
  f->params.netns_path = NS_DIR "/net";
  {
    cleanup_json struct json_value *spec = build(f);
    assert_namespace(spec, "pid", NULL);
    assert_namespace(spec, "network", NS_DIR "/net");
  }
  /* A UTS namespace of its own (the pod pinned none) gets the pod's name. */
  f->params.utsns_path = NULL;
  {
    cleanup_json struct json_value *spec = build(f);
    assert_namespace(spec, "uts", NULL);
    assert_string_equal(string_at(spec, "hostname"), "podhost");
  }
}

static void
test_user_namespace_of_the_pod(void **state)
{
  struct fixture *f = *state;
  Runtime__V1__UserNamespace userns;
  Runtime__V1__IDMapping mapping;
  Runtime__V1__IDMapping *mappings[] = { &mapping };
  struct pod_userns pod = { .enabled = true, .n_uids = 1, .n_gids = 1 };
  int64_t value;

  runtime__v1__user_namespace__init(&userns);
  runtime__v1__idmapping__init(&mapping);
  userns.mode = RUNTIME__V1__NAMESPACE_MODE__NODE;
  f->ns.userns_options = &userns;
  {
    cleanup_json struct json_value *spec = build(f);
    assert_null(namespace_of(spec, "user"));
    assert_null(at(spec, "linux.uidMappings"));
  }
  userns.mode = RUNTIME__V1__NAMESPACE_MODE__POD;
  mapping.host_id = 100000;
  mapping.length = 65536;
  userns.uids = mappings;
  userns.n_uids = 1;
  userns.gids = mappings;
  userns.n_gids = 1;
  assert_int_equal(build_error(f, "the pod has no user namespace"), EINVAL);

  /* The pod's: joined by path, its mappings written for the runtime. */
  pod.uids[0] = (struct pod_id_range){ 0, 100000, 65536 };
  pod.gids[0] = pod.uids[0];
  f->params.userns = &pod;
  f->params.userns_path = NS_DIR "/user";
  {
    cleanup_json struct json_value *spec = build(f);
    const struct json_value *user = namespace_of(spec, "user");
    const struct json_value *uids = at(spec, "linux.uidMappings");
    assert_non_null(user);
    assert_string_equal(json_object_get_string(user, "path"), NS_DIR "/user");
    assert_int_equal(json_array_size(uids), 1);
    assert_true(json_integer(json_object_get(json_array_at(uids, 0), "hostID"), &value));
    assert_int_equal(value, 100000);
    assert_true(json_integer(json_object_get(json_array_at(uids, 0), "size"), &value));
    assert_int_equal(value, 65536);
    assert_int_equal(json_array_size(at(spec, "linux.gidMappings")), 1);
  }
}

/* ---- resources, devices, oom ---------------------------------------------- */

static void
test_resources(void **state)
{
  struct fixture *f = *state;
  Runtime__V1__HugepageLimit huge;
  Runtime__V1__HugepageLimit *huges[] = { &huge };
  Runtime__V1__LinuxContainerResources__UnifiedEntry unified;
  Runtime__V1__LinuxContainerResources__UnifiedEntry *unifieds[] = { &unified };

  {
    cleanup_json struct json_value *spec = build(f);
    assert_null(at(spec, "linux.resources.cpu"));
    assert_null(at(spec, "linux.resources.memory"));
  }
  runtime__v1__hugepage_limit__init(&huge);
  runtime__v1__linux_container_resources__unified_entry__init(&unified);
  f->resources.cpu_shares = 512;
  f->resources.cpu_quota = 50000;
  f->resources.cpu_period = 100000;
  f->resources.cpuset_cpus = "0-1";
  f->resources.cpuset_mems = "0";
  f->resources.memory_limit_in_bytes = 64 << 20;
  f->resources.memory_swap_limit_in_bytes = 128 << 20;
  huge.page_size = "2MB";
  huge.limit = 4 << 21;
  f->resources.hugepage_limits = huges;
  f->resources.n_hugepage_limits = 1;
  unified.key = "memory.high";
  unified.value = "50000000";
  f->resources.unified = unifieds;
  f->resources.n_unified = 1;
  {
    cleanup_json struct json_value *spec = build(f);
    assert_int_equal(int_at(spec, "linux.resources.cpu.shares"), 512);
    assert_int_equal(int_at(spec, "linux.resources.cpu.quota"), 50000);
    assert_int_equal(int_at(spec, "linux.resources.cpu.period"), 100000);
    assert_string_equal(string_at(spec, "linux.resources.cpu.cpus"), "0-1");
    assert_string_equal(string_at(spec, "linux.resources.cpu.mems"), "0");
    assert_int_equal(int_at(spec, "linux.resources.memory.limit"), 64 << 20);
    assert_int_equal(int_at(spec, "linux.resources.memory.swap"), 128 << 20);
    const struct json_value *h = json_array_at(at(spec, "linux.resources.hugepageLimits"), 0);
    assert_string_equal(json_object_get_string(h, "pageSize"), "2MB");
    assert_int_equal(int_at(h, "limit"), 4 << 21);
    const struct json_value *u = at(spec, "linux.resources.unified");
    assert_string_equal(json_object_get_string(u, "memory.high"), "50000000");
    assert_null(at(spec, "linux.resources.pids"));
  }
  unified.key = "../escape";
  assert_int_equal(build_error(f, "unified"), EINVAL);
}

static void
test_devices(void **state)
{
  struct fixture *f = *state;
  Runtime__V1__Device dev, dir_dev;
  Runtime__V1__Device *devices[] = { &dev, &dir_dev };
  cleanup_free char *file = xasprintf("%s/file", f->tmp);
  struct stat null_st;

  assert_int_equal(stat("/dev/null", &null_st), 0);
  runtime__v1__device__init(&dev);
  runtime__v1__device__init(&dir_dev);
  dev.host_path = "/dev/null";
  dev.container_path = "/dev/xnull";
  dev.permissions = "rw";
  f->config.devices = devices;
  f->config.n_devices = 1;
  {
    cleanup_json struct json_value *spec = build(f);
    const struct json_value *d = find_by(at(spec, "linux.devices"), "path", "/dev/xnull");
    assert_non_null(d);
    assert_string_equal(json_object_get_string(d, "type"), "c");
    assert_int_equal(int_at(d, "major"), 1);
    assert_int_equal(int_at(d, "minor"), 3);
    assert_int_equal(int_at(d, "fileMode"), null_st.st_mode & 07777);
    assert_int_equal(int_at(d, "uid"), null_st.st_uid);
    const struct json_value *rules = at(spec, "linux.resources.devices");
    assert_int_equal(json_array_size(rules), 2);
    /* deny all first, then the allow rule */
    assert_false(json_bool(json_object_get(json_array_at(rules, 0), "allow")));
    const struct json_value *allow = json_array_at(rules, 1);
    assert_true(json_bool(json_object_get(allow, "allow")));
    assert_string_equal(json_object_get_string(allow, "type"), "c");
    assert_int_equal(int_at(allow, "major"), 1);
    assert_int_equal(int_at(allow, "minor"), 3);
    assert_string_equal(json_object_get_string(allow, "access"), "rw");
  }
  /* A directory of devices: each node under the container path. */
  assert_int_equal(mknod(file, S_IFREG | 0600, 0), 0);
  dir_dev.host_path = "/dev";
  dir_dev.container_path = "/hostdev";
  dir_dev.permissions = "";
  f->config.n_devices = 2;
  {
    cleanup_json struct json_value *spec = build(f);
    const struct json_value *d = find_by(at(spec, "linux.devices"), "path", "/hostdev/zero");
    assert_non_null(d);
    assert_int_equal(int_at(d, "minor"), 5);
    /* empty permissions = rwm */
    const struct json_value *rules = at(spec, "linux.resources.devices");
    assert_string_equal(json_object_get_string(json_array_at(rules, 2), "access"), "rwm");
  }
  f->config.n_devices = 1;
  dev.permissions = "rwx";
  assert_int_equal(build_error(f, "permissions"), EINVAL);
  dev.permissions = "r";
  dev.host_path = file;
  assert_int_equal(build_error(f, "not a device"), EINVAL);
  dev.host_path = "/dev/does-not-exist";
  assert_int_equal(build_error(f, "/dev/does-not-exist"), ENOENT);
  dev.host_path = "/dev/null";
  dev.container_path = "relative";
  assert_int_equal(build_error(f, "not absolute"), EINVAL);
  /* No container path: the host's. */
  dev.container_path = "";
  {
    cleanup_json struct json_value *spec = build(f);
    assert_non_null(find_by(at(spec, "linux.devices"), "path", "/dev/null"));
  }
}

static void
test_oom_score_adj_clamp(void **state)
{
  struct fixture *f = *state;
  int floor = own_oom_floor();

  assert_int_equal(oci_oom_score_adj_clamp(-998, 0), 0);
  assert_int_equal(oci_oom_score_adj_clamp(-998, -999), -998);
  assert_int_equal(oci_oom_score_adj_clamp(-1000, -999), -999);
  assert_int_equal(oci_oom_score_adj_clamp(500, 0), 500);
  assert_int_equal(oci_oom_score_adj_clamp(1001, 0), 1000);
  assert_int_equal(oci_oom_score_adj_clamp(5000000000LL, -5), 1000);
  assert_int_equal(oci_oom_score_adj_clamp(-5000000000LL, -5), -5);

  f->resources.oom_score_adj = -998;
  {
    cleanup_json struct json_value *spec = build(f);
    assert_int_equal(int_at(spec, "process.oomScoreAdj"), floor > -998 ? floor : -998);
  }
  f->resources.oom_score_adj = 1000;
  {
    cleanup_json struct json_value *spec = build(f);
    assert_int_equal(int_at(spec, "process.oomScoreAdj"), 1000);
  }
  /* Beyond the kernel's range it is refused, not clamped. */
  f->resources.oom_score_adj = 2000;
  assert_int_equal(build_error(f, "oom_score_adj 2000 is outside [-1000, 1000]"), EINVAL);
  f->resources.oom_score_adj = 999;
  {
    cleanup_json struct json_value *spec = build(f);
    assert_int_equal(int_at(spec, "process.oomScoreAdj"), floor > 999 ? floor : 999);
  }

  /* A crid that runs at 500 may not hand out less: checked in a child,
   * which can raise its own value without privileges. */
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0)
    {
      FILE *adj = fopen("/proc/self/oom_score_adj", "w");
      char *json = NULL;
      struct error err = ERROR_INIT;
      if (adj == NULL || fprintf(adj, "500\n") < 0 || fclose(adj) != 0)
        _exit(2);
      f->resources.oom_score_adj = 100;
      if (oci_spec_container(&f->params, &json, &err) < 0)
        _exit(3);
      _exit(strstr(json, "\"oomScoreAdj\": 500") || strstr(json, "\"oomScoreAdj\":500") ? 0 : 4);
    }
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- the pause container -------------------------------------------------- */

static struct json_value *
build_sandbox(const struct oci_sandbox_params *p)
{
  struct error err = ERROR_INIT;
  cleanup_free char *json = NULL;

  if (oci_spec_sandbox(p, &json, &err) < 0)
    fail_msg("%s", error_message(&err));
  return parse(json);
}

static void
sandbox_params(struct fixture *f, struct oci_sandbox_params *p)
{
  memset(p, 0, sizeof(*p));
  p->sandbox_id = SANDBOX_ID;
  p->config = &f->sandbox;
  p->rootfs = "/var/lib/crid/pause/rootfs";
  p->namespace_dir = NS_DIR;
  p->pid_mode = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
  p->shm_path = f->params.shm_path;
  p->cgroups_path = "/kubepods/poduid-1/crid-" SANDBOX_ID;
  p->cgroup_mode = CGROUP_MODE_HYBRID;
}

static void
test_sandbox_spec(void **state)
{
  struct fixture *f = *state;
  struct oci_sandbox_params p;
  int floor = own_oom_floor();

  sandbox_params(f, &p);
  cleanup_json struct json_value *spec = build_sandbox(&p);
  const char *args[] = { "/pause", NULL };
  assert_strings(at(spec, "process.args"), args);
  const char *env[] = { "PATH=" OCI_DEFAULT_PATH, NULL };
  assert_strings(at(spec, "process.env"), env);
  assert_string_equal(string_at(spec, "process.cwd"), "/");
  assert_int_equal(int_at(spec, "process.user.uid"), 0);
  assert_true(json_bool(at(spec, "process.noNewPrivileges")));
  assert_true(json_bool(at(spec, "root.readonly")));
  assert_string_equal(string_at(spec, "root.path"), "/var/lib/crid/pause/rootfs");
  assert_string_equal(string_at(spec, "hostname"), "podhost");
  assert_string_equal(string_at(spec, "linux.cgroupsPath"), p.cgroups_path);
  assert_int_equal(int_at(spec, "process.oomScoreAdj"), floor > -998 ? floor : -998);
  assert_int_equal(json_array_size(at(spec, "process.capabilities.bounding")), 14);
  assert_int_equal(json_array_size(at(spec, "process.capabilities.inheritable")), 0);
  assert_namespace(spec, "network", NS_DIR "/net");
  assert_namespace(spec, "ipc", NS_DIR "/ipc");
  assert_namespace(spec, "uts", NS_DIR "/uts");
  assert_namespace(spec, "pid", NULL);
  assert_namespace(spec, "mount", NULL);
  assert_null(namespace_of(spec, "cgroup"));
  assert_string_equal(json_object_get_string(mount_at(spec, "/dev/shm"), "source"), p.shm_path);
  assert_non_null(mount_at(spec, "/proc"));
  assert_non_null(mount_at(spec, "/dev/pts"));
  assert_non_null(mount_at(spec, "/dev/mqueue"));
  assert_non_null(mount_at(spec, "/sys/fs/cgroup"));
  assert_null(mount_at(spec, "/etc/resolv.conf"));
  assert_int_equal(json_array_size(at(spec, "linux.maskedPaths")), 11);
  assert_null(at(spec, "linux.seccomp"));
  assert_null(at(spec, "linux.resources.cpu"));
  const struct json_value *a = json_object_get(spec, "annotations");
  assert_string_equal(json_object_get_string(a, OCI_ANNOTATION_CONTAINER_TYPE), "sandbox");
  assert_string_equal(json_object_get_string(a, OCI_ANNOTATION_SANDBOX_ID), SANDBOX_ID);
  assert_string_equal(json_object_get_string(a, OCI_ANNOTATION_SANDBOX_NAME), "pod");
  assert_string_equal(json_object_get_string(a, OCI_ANNOTATION_SANDBOX_NAMESPACE), "default");
  assert_string_equal(json_object_get_string(a, OCI_ANNOTATION_SANDBOX_UID), "uid-1");
}

static void
test_sandbox_host_namespaces_and_user(void **state)
{
  struct fixture *f = *state;
  struct oci_sandbox_params p;
  Runtime__V1__Int64Value uid, gid;
  int64_t groups[] = { 3000 };
  Runtime__V1__LinuxContainerResources resources;

  sandbox_params(f, &p);
  p.host_network = true;
  p.host_ipc = true;
  p.pid_mode = RUNTIME__V1__NAMESPACE_MODE__NODE;
  p.namespace_dir = NULL;
  p.shm_path = NULL;
  p.cgroup_mode = CGROUP_MODE_UNIFIED;
  p.seccomp_json = "{\"defaultAction\":\"SCMP_ACT_ALLOW\"}";
  runtime__v1__int64_value__init(&uid);
  runtime__v1__int64_value__init(&gid);
  uid.value = 65535;
  gid.value = 65534;
  f->sandbox_sc.run_as_user = &uid;
  f->sandbox_sc.run_as_group = &gid;
  f->sandbox_sc.supplemental_groups = groups;
  f->sandbox_sc.n_supplemental_groups = 1;
  runtime__v1__linux_container_resources__init(&resources);
  resources.oom_score_adj = 1000;
  resources.cpu_shares = 2;
  f->sandbox_linux.resources = &resources;
  {
    cleanup_json struct json_value *spec = build_sandbox(&p);
    assert_null(namespace_of(spec, "network"));
    assert_null(namespace_of(spec, "uts"));
    assert_null(namespace_of(spec, "ipc"));
    assert_null(namespace_of(spec, "pid"));
    assert_namespace(spec, "mount", NULL);
    assert_namespace(spec, "cgroup", NULL);
    assert_null(at(spec, "hostname")); /* never rename the host */
    assert_string_equal(json_object_get_string(mount_at(spec, "/dev/shm"), "source"), "/dev/shm");
    assert_int_equal(int_at(spec, "process.user.uid"), 65535);
    assert_int_equal(int_at(spec, "process.user.gid"), 65534);
    assert_int_equal(int_at(json_array_at(at(spec, "process.user.additionalGids"), 0), ""), 3000);
    assert_int_equal(int_at(spec, "process.oomScoreAdj"), 1000);
    assert_string_equal(string_at(spec, "linux.seccomp.defaultAction"), "SCMP_ACT_ALLOW");
    /* Pod-level resources stay on the pod cgroup (kubelet's). */
    assert_null(at(spec, "linux.resources.cpu"));
  }
  /* Nothing pinned, nothing from the host: new namespaces; own shm. */
  p.host_network = false;
  p.host_ipc = false;
  {
    cleanup_json struct json_value *spec = build_sandbox(&p);
    assert_namespace(spec, "network", NULL);
    assert_namespace(spec, "uts", NULL);
    assert_namespace(spec, "ipc", NULL);
    assert_string_equal(json_object_get_string(mount_at(spec, "/dev/shm"), "type"), "tmpfs");
  }
  /* A resolved user wins. */
  struct oci_user user = { .uid = 5, .gid = 6 };
  p.user = &user;
  {
    cleanup_json struct json_value *spec = build_sandbox(&p);
    assert_int_equal(int_at(spec, "process.user.uid"), 5);
    assert_null(at(spec, "process.user.additionalGids"));
  }
  struct error err = ERROR_INIT;
  char *json = NULL;
  p.rootfs = NULL;
  assert_int_equal(oci_spec_sandbox(&p, &json, &err), -1);
  assert_int_equal(err.code, EINVAL);
  error_clear(&err);
}

/* CDI edits (pod/cdi.h merged them): after CRI's, replacing what CRI put
 * at the same variable, device path or mount point; a cgroup rule per
 * b/c node unless "none"; groups added once; hooks by kind. */
static void
test_cdi_edits(void **state)
{
  struct fixture *f = *state;
  Runtime__V1__KeyValue *envs[1] = { key_value("SHARED", "cri") };
  Runtime__V1__Mount *mounts[1] = { cri_mount("/mnt/cdi", "/", false, 0) };
  uint32_t own_gids[1] = { 10 };
  struct oci_user user
      = { .uid = 1000, .gid = 100, .additional_gids = own_gids, .n_additional_gids = 1 };
  char *env[] = { "SHARED=cdi", "NEW=1", NULL };
  char *options[] = { "ro", "rbind", NULL };
  char *args[] = { "hook", "now", NULL };
  struct cdi_device_node nodes[] = {
    { .path = "/dev/cdi0",
      .type = 'c',
      .major = 1,
      .minor = 3,
      .has_file_mode = true,
      .file_mode = 0666,
      .permissions = "wr" },
    { .path = "/dev/cdi-none",
      .type = 'c',
      .major = 1,
      .minor = 5,
      .permissions = "none",
      .has_uid = true,
      .uid = 7 },
  };
  struct cdi_mount cdi_mounts[]
      = { { .host_path = "/opt/lib", .container_path = "/mnt/cdi", .options = options } };
  struct cdi_hook hooks[] = {
    { .hook_name = "createRuntime",
      .path = "/bin/hook",
      .args = args,
      .has_timeout = true,
      .timeout = 3 },
    { .hook_name = "poststop", .path = "/bin/after" },
  };
  uint32_t gids[] = { 10, 44 };
  struct cdi_edits edits = { .env = env,
                             .device_nodes = nodes,
                             .n_device_nodes = 2,
                             .mounts = cdi_mounts,
                             .n_mounts = 1,
                             .hooks = hooks,
                             .n_hooks = 2,
                             .additional_gids = gids,
                             .n_additional_gids = 2 };

  f->config.envs = envs;
  f->config.n_envs = 1;
  f->config.mounts = mounts;
  f->config.n_mounts = 1;
  f->params.user = &user;
  f->params.cdi = &edits;
  {
    cleanup_json struct json_value *spec = build(f);
    const struct json_value *env_list = at(spec, "process.env");
    const struct json_value *node = find_by(at(spec, "linux.devices"), "path", "/dev/cdi0");
    const struct json_value *none = find_by(at(spec, "linux.devices"), "path", "/dev/cdi-none");
    const struct json_value *rules = at(spec, "linux.resources.devices");
    const struct json_value *mount = mount_at(spec, "/mnt/cdi");
    const struct json_value *hook = json_array_at(at(spec, "hooks.createRuntime"), 0);
    const char *want_options[] = { "ro", "rbind", NULL };
    const char *want_args[] = { "hook", "now", NULL };
    const struct json_value *groups = at(spec, "process.user.additionalGids");
    int64_t n;

    assert_true(has_string(env_list, "SHARED=cdi"));
    assert_false(has_string(env_list, "SHARED=cri"));
    assert_true(has_string(env_list, "NEW=1"));
    assert_non_null(node);
    assert_string_equal(json_object_get_string(node, "type"), "c");
    assert_int_equal(int_at(node, "fileMode"), 0666);
    assert_int_equal(int_at(node, "uid"), 1000);
    assert_int_equal(int_at(none, "uid"), 7);
    /* One rule for /dev/cdi0 with its access in rwm order, none for "none". */
    for (size_t i = 0; i < json_array_size(rules); i++)
      {
        const struct json_value *rule = json_array_at(rules, i);
        if (json_integer(json_object_get(rule, "minor"), &n) && n == 5)
          fail_msg("a cgroup rule for a node with permissions none");
        if (n == 3)
          assert_string_equal(json_object_get_string(rule, "access"), "rw");
      }
    assert_int_equal(count_mounts(spec, "/mnt/cdi"), 1);
    assert_string_equal(json_object_get_string(mount, "source"), "/opt/lib");
    assert_string_equal(json_object_get_string(mount, "type"), "bind");
    assert_strings(json_object_get(mount, "options"), want_options);
    assert_string_equal(json_object_get_string(hook, "path"), "/bin/hook");
    assert_strings(json_object_get(hook, "args"), want_args);
    assert_int_equal(int_at(hook, "timeout"), 3);
    assert_string_equal(
        json_object_get_string(json_array_at(at(spec, "hooks.poststop"), 0), "path"), "/bin/after");
    assert_null(at(spec, "hooks.prestart"));
    assert_int_equal(json_array_size(groups), 2);
    assert_true(json_integer(json_array_at(groups, 1), &n) && n == 44);
  }
  f->params.cdi = NULL;
  {
    cleanup_json struct json_value *spec = build(f);
    assert_null(at(spec, "hooks"));
    assert_true(has_string(at(spec, "process.env"), "SHARED=cri"));
  }
  f->config.n_mounts = 0;
  f->config.n_envs = 0;
  free_mounts(mounts, 1);
  free(envs[0]);
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
  const struct CMUnitTest tests[] = {
    T(test_args_merge_table),
    T(test_env_image_then_cri),
    T(test_cwd),
    T(test_defaults),
    T(test_cri_mounts_and_propagation),
    T(test_image_volume_mounts),
    T(test_cri_mounts_override_defaults),
    T(test_shm_per_ipc_mode),
    T(test_readonly_rootfs),
    T(test_masked_paths_verbatim),
    T(test_capabilities_in_spec),
    T(test_privileged),
    T(test_cgroup_namespace_on_unified),
    T(test_apparmor),
    T(test_user_and_seccomp_hooks),
    T(test_namespaces_per_mode),
    T(test_user_namespace_of_the_pod),
    T(test_resources),
    T(test_devices),
    T(test_cdi_edits),
    T(test_oom_score_adj_clamp),
    T(test_sandbox_spec),
    T(test_sandbox_host_namespaces_and_user),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
