/* Unit tests of pod/cdi_spec (JSON and YAML spec files, validation,
 * qualified names) and pod/cdi (requested names, resolution, conflicts,
 * directory priority), with spec files in a scratch directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/cleanup.h"
#include "common/error.h"
#include "common/util.h"
#include "common/trash.h"
#include "pod/cdi.h"
#include "pod/cdi_spec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct cdi_spec *
parse_ok(const char *text, enum cdi_format format)
{
  struct error err = ERROR_INIT;
  struct cdi_spec *spec = NULL;

  if (cdi_spec_parse(text, strlen(text), format, &spec, &err) < 0)
    fail_msg("unexpected error: %s", error_message(&err));
  return spec;
}

/* The error message, which must contain want. */
static void
parse_fails(const char *text, enum cdi_format format, const char *want)
{
  struct error err = ERROR_INIT;
  struct cdi_spec *spec = NULL;

  if (cdi_spec_parse(text, strlen(text), format, &spec, &err) == 0)
    fail_msg("parsed, but wanted an error with %s: %s", want, text);
  assert_int_equal(err.code, EINVAL);
  if (strstr(error_message(&err), want) == NULL)
    fail_msg("error %s does not say %s", error_message(&err), want);
  error_clear(&err);
}

static const char full_json[]
    = "{\"cdiVersion\": \"0.7.0\", \"kind\": \"vendor.com/gpu\","
      " \"containerEdits\": {\"env\": [\"SPEC=1\"], \"additionalGids\": [0, 44]},"
      " \"devices\": [{\"name\": \"gpu0\", \"annotations\": {\"a\": \"b\"},"
      "   \"containerEdits\": {\"deviceNodes\": [{\"path\": \"/dev/gpu0\", \"hostPath\": "
      "\"/dev/null\", \"type\": \"c\", \"major\": 1, \"minor\": 3, \"fileMode\": 438,"
      " \"permissions\": \"rw\", \"uid\": 7, \"gid\": 8}],"
      "   \"mounts\": [{\"hostPath\": \"/opt/lib\", \"containerPath\": \"/usr/lib/gpu\", \"type\": "
      "\"bind\", \"options\": [\"ro\", \"rbind\"]}],"
      "   \"hooks\": [{\"hookName\": \"createContainer\", \"path\": \"/bin/hook\", \"args\": "
      "[\"hook\", \"x\"], \"env\": [\"A=1\"], \"timeout\": 5}]}}]}";

static const char full_yaml[] = "---\n"
                                "cdiVersion: 0.7.0\n"
                                "kind: vendor.com/gpu\n"
                                "containerEdits:\n"
                                "  env: [SPEC=1]\n"
                                "  additionalGids: [0, 44]\n"
                                "devices:\n"
                                "- name: gpu0\n"
                                "  annotations: {a: b}\n"
                                "  containerEdits:\n"
                                "    deviceNodes:\n"
                                "    - path: /dev/gpu0\n"
                                "      hostPath: /dev/null\n"
                                "      type: c\n"
                                "      major: 1\n"
                                "      minor: 3\n"
                                "      fileMode: 0666\n"
                                "      permissions: rw\n"
                                "      uid: 7\n"
                                "      gid: 8\n"
                                "    mounts:\n"
                                "    - hostPath: /opt/lib\n"
                                "      containerPath: /usr/lib/gpu\n"
                                "      type: bind\n"
                                "      options: [ro, rbind]\n"
                                "    hooks:\n"
                                "    - hookName: createContainer\n"
                                "      path: /bin/hook\n"
                                "      args: [hook, x]\n"
                                "      env: [\"A=1\"]\n"
                                "      timeout: 5\n";

static void
check_full(const struct cdi_spec *spec)
{
  const struct cdi_edits *e = &spec->devices[0].edits;

  assert_string_equal(spec->vendor, "vendor.com");
  assert_string_equal(spec->class_name, "gpu");
  assert_int_equal(spec->n_devices, 1);
  assert_string_equal(spec->devices[0].name, "gpu0");
  assert_string_equal(spec->edits.env[0], "SPEC=1");
  assert_int_equal(spec->edits.n_additional_gids, 2);
  assert_int_equal(spec->edits.additional_gids[1], 44);
  assert_int_equal(e->n_device_nodes, 1);
  assert_string_equal(e->device_nodes[0].path, "/dev/gpu0");
  assert_string_equal(e->device_nodes[0].host_path, "/dev/null");
  assert_int_equal(e->device_nodes[0].type, 'c');
  assert_int_equal(e->device_nodes[0].major, 1);
  assert_int_equal(e->device_nodes[0].minor, 3);
  assert_true(e->device_nodes[0].has_file_mode);
  assert_int_equal(e->device_nodes[0].file_mode, 0666);
  assert_string_equal(e->device_nodes[0].permissions, "rw");
  assert_int_equal(e->device_nodes[0].uid, 7);
  assert_int_equal(e->device_nodes[0].gid, 8);
  assert_int_equal(e->n_mounts, 1);
  assert_string_equal(e->mounts[0].container_path, "/usr/lib/gpu");
  assert_string_equal(e->mounts[0].options[1], "rbind");
  assert_int_equal(e->n_hooks, 1);
  assert_string_equal(e->hooks[0].hook_name, "createContainer");
  assert_string_equal(e->hooks[0].args[1], "x");
  assert_string_equal(e->hooks[0].env[0], "A=1");
  assert_int_equal(e->hooks[0].timeout, 5);
}

static void
test_json_and_yaml_agree(void **state)
{
  struct cdi_spec *json = parse_ok(full_json, CDI_FORMAT_JSON);
  struct cdi_spec *yaml = parse_ok(full_yaml, CDI_FORMAT_YAML);

  check_full(json);
  check_full(yaml);
  cdi_spec_free(json);
  cdi_spec_free(yaml);
}

static void
test_yaml_scalars(void **state)
{
  /* A device named 0 is the string "0"; a quoted number is a string too;
   * 0x and 0o integers; a null member is absent. */
  struct cdi_spec *spec = parse_ok("cdiVersion: \"0.5.0\"\n"
                                   "kind: v.io/c\n"
                                   "devices:\n"
                                   "- name: 0\n"
                                   "  containerEdits:\n"
                                   "    env: [\"X=1\"]\n"
                                   "    deviceNodes:\n"
                                   "    - {path: /dev/x, major: 0x10, minor: 0o7, uid: ~}\n",
                                   CDI_FORMAT_YAML);

  assert_string_equal(spec->devices[0].name, "0");
  assert_int_equal(spec->devices[0].edits.device_nodes[0].major, 16);
  assert_int_equal(spec->devices[0].edits.device_nodes[0].minor, 7);
  assert_false(spec->devices[0].edits.device_nodes[0].has_uid);
  cdi_spec_free(spec);
}

static void
test_versions(void **state)
{
  struct cdi_spec *spec;

  /* The newest, with a 'v', and the oldest with plain edits. */
  spec = parse_ok("{\"cdiVersion\": \"v1.1.0\", \"kind\": \"a.b/c\", \"devices\": [{\"name\": "
                  "\"d\", \"containerEdits\": {\"netDevices\": [{\"hostInterfaceName\": \"eth1\", "
                  "\"name\": \"net1\"}]}}]}",
                  CDI_FORMAT_JSON);
  assert_int_equal(spec->devices[0].edits.n_net_devices, 1);
  cdi_spec_free(spec);
  spec = parse_ok("{\"cdiVersion\": \"0.3.0\", \"kind\": \"a.b/c\", \"devices\": [{\"name\": "
                  "\"d\", \"containerEdits\": {\"env\": [\"A=b\"]}}]}",
                  CDI_FORMAT_JSON);
  cdi_spec_free(spec);
  parse_fails("{\"cdiVersion\": \"1.2.0\", \"kind\": \"a.b/c\", \"devices\": [{\"name\": \"d\", "
              "\"containerEdits\": {\"env\": [\"A=b\"]}}]}",
              CDI_FORMAT_JSON, "not a released CDI version");
  /* Fields newer than the version said. */
  parse_fails("{\"cdiVersion\": \"0.4.0\", \"kind\": \"a.b/c\", \"devices\": [{\"name\": \"d\", "
              "\"containerEdits\": {\"deviceNodes\": [{\"path\": \"/dev/a\", \"hostPath\": "
              "\"/dev/b\"}]}}]}",
              CDI_FORMAT_JSON, "deviceNodes.hostPath needs at least 0.5.0");
  parse_fails("{\"cdiVersion\": \"0.6.0\", \"kind\": \"a.b/c\", \"devices\": [{\"name\": \"d\", "
              "\"containerEdits\": {\"additionalGids\": [5]}}]}",
              CDI_FORMAT_JSON, "additionalGids needs at least 0.7.0");
  parse_fails("{\"cdiVersion\": \"0.5.0\", \"kind\": \"a.b/c.d\", \"devices\": [{\"name\": \"d\", "
              "\"containerEdits\": {\"env\": [\"A=b\"]}}]}",
              CDI_FORMAT_JSON, "needs at least 0.6.0");
  parse_fails("{\"cdiVersion\": \"0.4.0\", \"kind\": \"a.b/c\", \"devices\": [{\"name\": \"0d\", "
              "\"containerEdits\": {\"env\": [\"A=b\"]}}]}",
              CDI_FORMAT_JSON, "needs at least 0.5.0");
}

static void
test_invalid_specs(void **state)
{
  static const struct
  {
    const char *text;
    const char *want;
  } cases[] = {
    { "[]", "must be an object" },
    { "{\"cdiVersion\": \"0.6.0\", \"kind\": \"a.b/c\", \"devices\": []}", "at least one device" },
    { "{\"cdiVersion\": \"0.6.0\", \"kind\": \"abc\", \"devices\": []}", "not vendor.com/class" },
    { "{\"cdiVersion\": \"0.6.0\", \"kind\": \"a.b/c/d\", \"devices\": []}", "invalid class" },
    { "{\"cdiVersion\": \"0.6.0\", \"kind\": \"-a/c\", \"devices\": []}", "invalid vendor" },
    { "{\"kind\": \"a.b/c\", \"devices\": []}", "cdiVersion: is required" },
    { "{\"cdiVersion\": \"0.6.0\", \"kind\": \"a.b/c\", \"devices\": [{\"name\": \"d\"}]}",
      "no containerEdits" },
    { "{\"cdiVersion\": \"0.6.0\", \"kind\": \"a.b/c\", \"devices\": [{\"name\": \"d-\", "
      "\"containerEdits\": {\"env\": [\"A=b\"]}}]}",
      "device name \"d-\"" },
    { "{\"cdiVersion\": \"0.6.0\", \"kind\": \"a.b/c\", \"devices\": [{\"name\": \"d\", "
      "\"containerEdits\": {\"env\": [\"=b\"]}}]}",
      "devices[0].containerEdits.env: \"=b\" is not KEY=value" },
    { "{\"cdiVersion\": \"0.6.0\", \"kind\": \"a.b/c\", \"devices\": [{\"name\": \"d\", "
      "\"containerEdits\": {\"deviceNodes\": [{\"path\": \"dev/x\"}]}}]}",
      "deviceNodes[0].path: \"dev/x\" is not an absolute path" },
    { "{\"cdiVersion\": \"0.6.0\", \"kind\": \"a.b/c\", \"devices\": [{\"name\": \"d\", "
      "\"containerEdits\": {\"deviceNodes\": [{\"path\": \"/dev/x\", \"type\": \"z\"}]}}]}",
      "device type \"z\"" },
    { "{\"cdiVersion\": \"0.6.0\", \"kind\": \"a.b/c\", \"devices\": [{\"name\": \"d\", "
      "\"containerEdits\": {\"deviceNodes\": [{\"path\": \"/dev/x\", \"permissions\": "
      "\"rx\"}]}}]}",
      "permissions \"rx\"" },
    { "{\"cdiVersion\": \"0.6.0\", \"kind\": \"a.b/c\", \"devices\": [{\"name\": \"d\", "
      "\"containerEdits\": {\"deviceNodes\": [{\"path\": \"/dev/x\", \"major\": -1}]}}]}",
      "major: must be in" },
    { "{\"cdiVersion\": \"0.6.0\", \"kind\": \"a.b/c\", \"devices\": [{\"name\": \"d\", "
      "\"containerEdits\": {\"mounts\": [{\"hostPath\": \"/a\"}]}}]}",
      "containerPath: is required" },
    { "{\"cdiVersion\": \"0.6.0\", \"kind\": \"a.b/c\", \"devices\": [{\"name\": \"d\", "
      "\"containerEdits\": {\"hooks\": [{\"hookName\": \"later\", \"path\": \"/bin/x\"}]}}]}",
      "hook name \"later\"" },
    { "{\"cdiVersion\": \"0.6.0\", \"kind\": \"a.b/c\", \"devices\": [{\"name\": \"d\", "
      "\"containerEdits\": {\"hooks\": [{\"hookName\": \"poststop\", \"path\": \"/bin/x\", "
      "\"timeout\": 0}]}}]}",
      "timeout: must be in" },
    { "{\"cdiVersion\": \"0.6.0\", \"kind\": \"a.b/c\", \"devices\": [{\"name\": \"d\", "
      "\"containerEdits\": {\"env\": [\"A=b\"], \"typo\": 1}}]}",
      "unknown key \"typo\"" },
    { "{\"cdiVersion\": \"0.6.0\", \"kind\": \"a.b/c\", \"devices\": [{\"name\": \"d\", "
      "\"containerEdits\": {\"env\": [\"A=b\"]}}, {\"name\": \"d\", \"containerEdits\": "
      "{\"env\": [\"A=b\"]}}]}",
      "defined twice" },
    { "{\"cdiVersion\": \"1.1.0\", \"kind\": \"a.b/c\", \"devices\": [{\"name\": \"d\", "
      "\"containerEdits\": {\"netDevices\": [{\"hostInterfaceName\": \"a\", \"name\": \"b\"}, "
      "{\"hostInterfaceName\": \"a\", \"name\": \"c\"}]}}]}",
      "repeats the host interface" },
  };

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    parse_fails(cases[i].text, CDI_FORMAT_JSON, cases[i].want);
  parse_fails("a: [1, 2", CDI_FORMAT_YAML, "YAML: line");
  parse_fails("a: &x [1]\nb: *x\n", CDI_FORMAT_YAML, "aliases are not allowed");
  parse_fails("a: 1\n---\nb: 2\n", CDI_FORMAT_YAML, "more than one YAML document");
  parse_fails("", CDI_FORMAT_YAML, "empty YAML document");
  parse_fails("{\"a\": 1", CDI_FORMAT_JSON, "");
}

static void
test_qualified_names(void **state)
{
  struct error err = ERROR_INIT;
  char *vendor, *class_name, *name;
  static const char *const bad[] = { "vendor.com/class", "class=name",        "/class=name",
                                     "vendor.com/=name", "vendor.com/class=", "vendor.com/cl/ass=x",
                                     "1vendor/class=x",  "vendor/class=-x",   NULL };

  assert_int_equal(
      cdi_parse_qualified_name("nvidia.com/gpu=0:mig-1.2", &vendor, &class_name, &name, &err), 0);
  assert_string_equal(vendor, "nvidia.com");
  assert_string_equal(class_name, "gpu");
  assert_string_equal(name, "0:mig-1.2");
  free(vendor);
  free(class_name);
  free(name);
  for (size_t i = 0; bad[i]; i++)
    {
      if (cdi_parse_qualified_name(bad[i], &vendor, &class_name, &name, &err) == 0)
        fail_msg("%s parsed", bad[i]);
      assert_int_equal(err.code, EINVAL);
      error_clear(&err);
    }
}

static void
test_requested_names(void **state)
{
  Runtime__V1__CDIDevice d1 = RUNTIME__V1__CDIDEVICE__INIT;
  Runtime__V1__CDIDevice *devices[] = { &d1 };
  Runtime__V1__ContainerConfig__AnnotationsEntry a1
      = RUNTIME__V1__CONTAINER_CONFIG__ANNOTATIONS_ENTRY__INIT;
  Runtime__V1__ContainerConfig__AnnotationsEntry a2
      = RUNTIME__V1__CONTAINER_CONFIG__ANNOTATIONS_ENTRY__INIT;
  Runtime__V1__ContainerConfig__AnnotationsEntry *annotations[] = { &a1, &a2 };
  Runtime__V1__PodSandboxConfig__AnnotationsEntry p1
      = RUNTIME__V1__POD_SANDBOX_CONFIG__ANNOTATIONS_ENTRY__INIT;
  Runtime__V1__PodSandboxConfig__AnnotationsEntry *pod_annotations[] = { &p1 };
  Runtime__V1__ContainerConfig config = RUNTIME__V1__CONTAINER_CONFIG__INIT;
  Runtime__V1__PodSandboxConfig pod = RUNTIME__V1__POD_SANDBOX_CONFIG__INIT;
  struct error err = ERROR_INIT;
  char **names = NULL;

  d1.name = (char *)"a.com/x=1";
  a1.key = (char *)"cdi.k8s.io/plugin_b";
  a1.value = (char *)"a.com/x=3,a.com/x=1";
  a2.key = (char *)"other/key";
  a2.value = (char *)"not a device";
  p1.key = (char *)"cdi.k8s.io/pod";
  p1.value = (char *)"b.com/y=2";
  config.n_cdi_devices = 1;
  config.cdi_devices = devices;
  config.n_annotations = 2;
  config.annotations = annotations;
  pod.n_annotations = 1;
  pod.annotations = pod_annotations;
  assert_int_equal(cdi_requested_devices(&config, &pod, &names, &err), 0);
  assert_int_equal(strv_length(names), 3);
  assert_string_equal(names[0], "a.com/x=1");
  assert_string_equal(names[1], "a.com/x=3");
  assert_string_equal(names[2], "b.com/y=2");
  strv_free(names);

  a1.value = (char *)"a.com/x=3,unqualified";
  assert_int_equal(cdi_requested_devices(&config, &pod, &names, &err), -1);
  assert_int_equal(err.code, EINVAL);
  assert_non_null(strstr(error_message(&err), "container annotation \"cdi.k8s.io/plugin_b\""));
  error_clear(&err);

  config.n_cdi_devices = 0;
  config.n_annotations = 0;
  assert_int_equal(cdi_requested_devices(&config, NULL, &names, &err), 0);
  assert_null(names);
}

/* ---- resolution against spec files in scratch directories -------------- */

static char scratch[64];

static char *
write_spec(const char *dir, const char *name, const char *text)
{
  char *path = xasprintf("%s/%s/%s", scratch, dir, name);
  FILE *f = fopen(path, "we");

  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  return path;
}

static int
setup_dirs(void **state)
{
  struct error err = ERROR_INIT;
  char *low, *high;

  snprintf(scratch, sizeof scratch, "/tmp/crid-test-cdi-%d", (int)getpid());
  low = xasprintf("%s/low", scratch);
  high = xasprintf("%s/high", scratch);
  if (mkdir_p(low, 0755, &err) < 0 || mkdir_p(high, 0755, &err) < 0)
    return -1;
  free(low);
  free(high);
  return 0;
}

static int
teardown_dirs(void **state)
{
  struct error err = ERROR_INIT;
  return remove_tree(scratch, &err);
}

#define SPEC(kind, devices)                                                                        \
  "{\"cdiVersion\": \"0.6.0\", \"kind\": \"" kind "\", \"devices\": [" devices "]}"
#define DEVICE(name, edits) "{\"name\": \"" name "\", \"containerEdits\": {" edits "}}"

static int
resolve(struct cdi_registry *registry, const char *const *names, struct cdi_edits *out,
        struct error *err)
{
  return cdi_resolve(registry, (char *const *)names, out, err);
}

static void
test_resolution(void **state)
{
  cleanup_free char *low_dir = xasprintf("%s/low", scratch);
  cleanup_free char *high_dir = xasprintf("%s/high", scratch);
  char *dirs[] = { low_dir, high_dir, NULL };
  cleanup_free char *a = NULL, *b = NULL, *c = NULL, *bad = NULL;
  struct cdi_registry *registry;
  struct cdi_edits edits = { 0 };
  struct error err = ERROR_INIT;

  a = write_spec(
      "low", "a.json",
      "{\"cdiVersion\": \"0.6.0\", \"kind\": \"t.io/dev\", \"containerEdits\": "
      "{\"env\": [\"SPEC=a\"]}, \"devices\": [" DEVICE(
          "one",
          "\"env\": [\"ONE=1\"], \"deviceNodes\": [{\"path\": \"/dev/one\", "
          "\"hostPath\": \"/dev/null\"}]") "," DEVICE("two",
                                                      "\"env\": [\"SHARED=2\"]") "," DEVICE("low",
                                                                                            "\"env"
                                                                                            "\": "
                                                                                            "[\"WHO"
                                                                                            "=low\""
                                                                                            "]") "]"
                                                                                                 "}");
  b = write_spec("low", "b.yaml",
                 "cdiVersion: 0.6.0\nkind: t.io/other\ndevices:\n- name: three\n"
                 "  containerEdits:\n    env: [SHARED=3]\n    mounts:\n"
                 "    - {hostPath: /tmp, containerPath: /mnt/t}\n"
                 "- name: twin\n  containerEdits:\n    env: [X=1]\n");
  c = write_spec("high", "c.json", SPEC("t.io/dev", DEVICE("low", "\"env\": [\"WHO=high\"]")));
  bad = write_spec("low", "zz-bad.json", "{\"cdiVersion\": 1}");
  free(write_spec("low", "ignored.txt", "not a spec"));
  free(write_spec("low", "twin.yaml",
                  "cdiVersion: 0.6.0\nkind: t.io/other\ndevices:\n- name: twin\n"
                  "  containerEdits:\n    env: [X=2]\n"));
  registry = cdi_registry_open(dirs);

  {
    const char *names[] = { "t.io/dev=one", "t.io/dev=one", "t.io/other=three", NULL };
    assert_int_equal(resolve(registry, names, &edits, &err), 0);
    /* Spec-level edits first, once; the host node's numbers filled in. */
    assert_int_equal(strv_length(edits.env), 3);
    assert_string_equal(edits.env[0], "SPEC=a");
    assert_string_equal(edits.env[1], "ONE=1");
    assert_string_equal(edits.env[2], "SHARED=3");
    assert_int_equal(edits.n_device_nodes, 1);
    assert_int_equal(edits.device_nodes[0].type, 'c');
    assert_int_equal(edits.device_nodes[0].major, 1);
    assert_int_equal(edits.device_nodes[0].minor, 3);
    assert_int_equal(edits.n_mounts, 1);
    cdi_edits_clear(&edits);
  }
  {
    /* The later directory wins. */
    const char *names[] = { "t.io/dev=low", NULL };
    assert_int_equal(resolve(registry, names, &edits, &err), 0);
    assert_string_equal(edits.env[0], "WHO=high");
    cdi_edits_clear(&edits);
  }
  {
    const char *names[] = { "t.io/dev=two", "t.io/other=three", NULL };
    assert_int_equal(resolve(registry, names, &edits, &err), -1);
    assert_int_equal(err.code, EINVAL);
    assert_non_null(strstr(error_message(&err), "t.io/dev=two"));
    assert_non_null(strstr(error_message(&err), "t.io/other=three"));
    assert_non_null(strstr(error_message(&err), "b.yaml"));
    assert_non_null(strstr(error_message(&err), "environment variable \"SHARED\""));
    error_clear(&err);
    cdi_edits_clear(&edits);
  }
  {
    const char *names[] = { "t.io/dev=nope", NULL };
    assert_int_equal(resolve(registry, names, &edits, &err), -1);
    assert_int_equal(err.code, ENOENT);
    assert_non_null(strstr(error_message(&err), "unknown CDI device t.io/dev=nope"));
    error_clear(&err);
    cdi_edits_clear(&edits);
  }
  {
    const char *names[] = { "t.io/other=twin", NULL };
    assert_int_equal(resolve(registry, names, &edits, &err), -1);
    assert_non_null(strstr(error_message(&err), "defined by both"));
    assert_non_null(strstr(error_message(&err), "twin.yaml"));
    error_clear(&err);
    cdi_edits_clear(&edits);
  }
  cdi_registry_free(registry);
}

static void
test_bad_host_node(void **state)
{
  cleanup_free char *low_dir = xasprintf("%s/low", scratch);
  char *dirs[] = { low_dir, NULL };
  cleanup_free char *path = write_spec(
      "low", "node.json",
      SPEC("t.io/node",
           DEVICE("gone", "\"deviceNodes\": [{\"path\": \"/dev/crid-no-such\"}]") "," DEVICE(
               "given", "\"deviceNodes\": [{\"path\": \"/dev/crid-no-such\", \"type\": \"c\", "
                        "\"major\": 10, \"minor\": 200}]")));
  struct cdi_registry *registry = cdi_registry_open(dirs);
  struct cdi_edits edits = { 0 };
  struct error err = ERROR_INIT;
  const char *gone[] = { "t.io/node=gone", NULL };
  const char *given[] = { "t.io/node=given", NULL };

  assert_int_equal(resolve(registry, gone, &edits, &err), -1);
  assert_int_equal(err.code, ENOENT);
  assert_non_null(strstr(error_message(&err), "node.json"));
  error_clear(&err);
  cdi_edits_clear(&edits);
  /* Fully given: no host node needed. */
  assert_int_equal(resolve(registry, given, &edits, &err), 0);
  assert_int_equal(edits.device_nodes[0].major, 10);
  cdi_edits_clear(&edits);
  cdi_registry_free(registry);
  unlink(path);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_json_and_yaml_agree),
    cmocka_unit_test(test_yaml_scalars),
    cmocka_unit_test(test_versions),
    cmocka_unit_test(test_invalid_specs),
    cmocka_unit_test(test_qualified_names),
    cmocka_unit_test(test_requested_names),
    cmocka_unit_test(test_resolution),
    cmocka_unit_test(test_bad_host_node),
  };
  return cmocka_run_group_tests(tests, setup_dirs, teardown_dirs);
}
