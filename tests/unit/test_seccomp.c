/* Unit tests of pod/seccomp: the built-in profile (shape, capability
 * rules, clone/clone3 without CAP_SYS_ADMIN), the profile types and
 * privileged, Localhost files in Docker and OCI form (archMap,
 * includes/excludes, unknown syscalls skipped, big argument values),
 * refused profiles (bad JSON, unknown action/operator/arch, missing
 * file), the legacy path strings, and, when run as root with crun and a
 * static busybox on the host, a real container showing the default
 * filter blocks unshare(2) while plain programs run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/cleanup.h"
#include "common/error.h"
#include "common/json.h"
#include "common/util.h"
#include "pod/capabilities.h"
#include "pod/seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define BIT(cap) CAPABILITY_BIT(cap)

struct fixture
{
  char dir[64];
};

static int
setup(void **state)
{
  struct fixture *f = xcalloc(1, sizeof *f);

  strcpy(f->dir, "/tmp/crid-test-seccomp-XXXXXX");
  if (mkdtemp(f->dir) == NULL)
    return -1;
  *state = f;
  return 0;
}

static int
teardown(void **state)
{
  struct fixture *f = *state;
  cleanup_free char *cmd = xasprintf("rm -rf '%s'", f->dir);

  if (system(cmd) != 0)
    return -1;
  free(f);
  return 0;
}

static char *
write_profile(struct fixture *f, const char *name, const char *text)
{
  char *path = xasprintf("%s/%s", f->dir, name);
  FILE *file = fopen(path, "w");

  assert_non_null(file);
  fputs(text, file);
  fclose(file);
  return path;
}

static struct json_value *
parse(const char *json)
{
  struct error err = ERROR_INIT;
  struct json_value *v;

  assert_non_null(json);
  v = json_parse(json, strlen(json), &err);
  if (v == NULL)
    fail_msg("not JSON: %s", error_message(&err));
  return v;
}

static bool
names_contain(const struct json_value *rule, const char *name)
{
  const struct json_value *names = json_object_get(rule, "names");

  for (size_t i = 0; i < json_array_size(names); i++)
    if (strcmp(json_string(json_array_at(names, i)), name) == 0)
      return true;
  return false;
}

/* The first rule naming `name` with `action` (NULL: any), or NULL. */
static const struct json_value *
find_rule(const struct json_value *profile, const char *name, const char *action)
{
  const struct json_value *syscalls = json_object_get(profile, "syscalls");

  for (size_t i = 0; i < json_array_size(syscalls); i++)
    {
      const struct json_value *rule = json_array_at(syscalls, i);
      if (!names_contain(rule, name))
        continue;
      if (action && strcmp(json_object_get_string(rule, "action"), action) != 0)
        continue;
      return rule;
    }
  return NULL;
}

/* Allowed without argument conditions. */
static bool
allowed(const struct json_value *profile, const char *name)
{
  const struct json_value *syscalls = json_object_get(profile, "syscalls");

  for (size_t i = 0; i < json_array_size(syscalls); i++)
    {
      const struct json_value *rule = json_array_at(syscalls, i);
      if (names_contain(rule, name)
          && strcmp(json_object_get_string(rule, "action"), "SCMP_ACT_ALLOW") == 0
          && json_array_size(json_object_get(rule, "args")) == 0)
        return true;
    }
  return false;
}

static size_t
count_names(const struct json_value *profile)
{
  const struct json_value *syscalls = json_object_get(profile, "syscalls");
  size_t n = 0;

  for (size_t i = 0; i < json_array_size(syscalls); i++)
    n += json_array_size(json_object_get(json_array_at(syscalls, i), "names"));
  return n;
}

static bool
host_is_x86_64(void)
{
  return seccomp_arch_native() == SCMP_ARCH_X86_64;
}

static void
test_default_profile_shape(void **state)
{
  struct error err = ERROR_INIT;
  cleanup_free char *json = NULL;
  cleanup_json struct json_value *p = NULL;
  const struct json_value *arches;
  int64_t n;

  assert_int_equal(seccomp_default_profile(capabilities_default(), &json, &err), 0);
  p = parse(json);
  assert_string_equal(json_object_get_string(p, "defaultAction"), "SCMP_ACT_ERRNO");
  assert_true(json_integer(json_object_get(p, "defaultErrnoRet"), &n));
  assert_int_equal(n, EPERM);
  arches = json_object_get(p, "architectures");
  if (host_is_x86_64())
    {
      assert_int_equal(json_array_size(arches), 3);
      assert_string_equal(json_string(json_array_at(arches, 0)), "SCMP_ARCH_X86_64");
      assert_string_equal(json_string(json_array_at(arches, 1)), "SCMP_ARCH_X86");
      assert_string_equal(json_string(json_array_at(arches, 2)), "SCMP_ARCH_X32");
      assert_true(allowed(p, "arch_prctl"));
      assert_true(allowed(p, "modify_ldt"));
    }
  assert_true(count_names(p) > 300);
  assert_true(allowed(p, "read"));
  assert_true(allowed(p, "execve"));
  assert_true(allowed(p, "chown32")); /* an i386 name: kept for 32-bit programs */
  assert_true(allowed(p, "chroot"));  /* CAP_SYS_CHROOT is a default */
  assert_true(allowed(p, "ptrace"));  /* kernel >= 4.8 */
  /* Machine-specific calls of other architectures are not in. */
  assert_false(allowed(p, "s390_runtime_instr"));
  assert_false(allowed(p, "cacheflush"));
}

static void
test_default_blocks_namespaces_without_sys_admin(void **state)
{
  struct error err = ERROR_INIT;
  cleanup_free char *json = NULL;
  cleanup_json struct json_value *p = NULL;
  const struct json_value *rule, *arg;
  int64_t n;

  assert_int_equal(seccomp_default_profile(capabilities_default(), &json, &err), 0);
  p = parse(json);
  assert_null(find_rule(p, "unshare", NULL));
  assert_null(find_rule(p, "mount", NULL));
  assert_null(find_rule(p, "setns", NULL));
  assert_null(find_rule(p, "bpf", NULL));
  assert_null(find_rule(p, "kcmp", NULL));
  assert_null(find_rule(p, "reboot", NULL));
  assert_null(find_rule(p, "open_by_handle_at", NULL));
  assert_false(allowed(p, "clone"));

  /* clone only without namespace flags. */
  rule = find_rule(p, "clone", "SCMP_ACT_ALLOW");
  assert_non_null(rule);
  assert_int_equal(json_array_size(json_object_get(rule, "args")), 1);
  arg = json_array_at(json_object_get(rule, "args"), 0);
  assert_string_equal(json_object_get_string(arg, "op"), "SCMP_CMP_MASKED_EQ");
  assert_true(json_integer(json_object_get(arg, "index"), &n));
  if (host_is_x86_64())
    assert_int_equal(n, 0);
  assert_true(json_integer(json_object_get(arg, "value"), &n));
  assert_int_equal(n, 0x7E020000);
  assert_true(json_integer(json_object_get(arg, "valueTwo"), &n));
  assert_int_equal(n, 0);

  /* clone3 fails with ENOSYS, so libcs fall back to the filtered clone. */
  rule = find_rule(p, "clone3", "SCMP_ACT_ERRNO");
  assert_non_null(rule);
  assert_true(json_integer(json_object_get(rule, "errnoRet"), &n));
  assert_int_equal(n, ENOSYS);

  /* socket: every family but AF_VSOCK. */
  rule = find_rule(p, "socket", "SCMP_ACT_ALLOW");
  assert_non_null(rule);
  arg = json_array_at(json_object_get(rule, "args"), 0);
  assert_string_equal(json_object_get_string(arg, "op"), "SCMP_CMP_NE");
}

static void
test_default_capability_rules(void **state)
{
  struct error err = ERROR_INIT;
  cleanup_free char *json = NULL;
  cleanup_json struct json_value *p = NULL;
  uint64_t caps = capabilities_default() | BIT(CAP_SYS_ADMIN) | BIT(CAP_SYS_PTRACE)
                  | BIT(CAP_SYS_TIME) | BIT(CAP_SYS_MODULE) | BIT(CAP_DAC_READ_SEARCH);

  assert_int_equal(seccomp_default_profile(caps, &json, &err), 0);
  p = parse(json);
  assert_true(allowed(p, "unshare"));
  assert_true(allowed(p, "mount"));
  assert_true(allowed(p, "setns"));
  assert_true(allowed(p, "clone"));
  assert_true(allowed(p, "clone3"));
  assert_null(find_rule(p, "clone3", "SCMP_ACT_ERRNO"));
  assert_true(allowed(p, "kcmp"));
  assert_true(allowed(p, "process_madvise"));
  assert_true(allowed(p, "settimeofday"));
  assert_true(allowed(p, "finit_module"));
  assert_true(allowed(p, "open_by_handle_at"));
  assert_false(allowed(p, "reboot")); /* CAP_SYS_BOOT not held */
  assert_false(allowed(p, "acct"));

  free(json);
  json = NULL;
  json_free(p);
  p = NULL;
  /* Without CAP_SYS_CHROOT (dropped by the pod), no chroot. */
  assert_int_equal(
      seccomp_default_profile(capabilities_default() & ~BIT(CAP_SYS_CHROOT), &json, &err), 0);
  p = parse(json);
  assert_false(allowed(p, "chroot"));
}

static void
test_profile_types(void **state)
{
  struct fixture *f = *state;
  struct error err = ERROR_INIT;
  Runtime__V1__SecurityProfile sp;
  cleanup_free char *path
      = write_profile(f, "allow.json", "{\"defaultAction\":\"SCMP_ACT_ALLOW\"}");
  char *json = NULL;
  uint64_t caps = capabilities_default();

  runtime__v1__security_profile__init(&sp);
  sp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined;
  assert_int_equal(seccomp_profile_for(&sp, caps, false, false, &json, &err), 0);
  assert_null(json);

  /* RuntimeDefault: the built-in profile. */
  sp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__RuntimeDefault;
  assert_int_equal(seccomp_profile_for(&sp, caps, false, false, &json, &err), 0);
  assert_non_null(json);
  assert_non_null(strstr(json, "\"defaultAction\":\"SCMP_ACT_ERRNO\""));
  free(json);
  /* No message at all is Unconfined, as the CRI defines it (critest
   * v1.32 "should support nil profile, which is unconfined"). */
  assert_int_equal(seccomp_profile_for(NULL, caps, false, false, &json, &err), 0);
  assert_null(json);
  /* seccomp_use_default_when_empty: RuntimeDefault then; a profile named
   * Unconfined stays unconfined. */
  assert_int_equal(seccomp_profile_for(NULL, caps, false, true, &json, &err), 0);
  assert_non_null(json);
  assert_non_null(strstr(json, "\"defaultAction\":\"SCMP_ACT_ERRNO\""));
  free(json);
  sp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined;
  assert_int_equal(seccomp_profile_for(&sp, caps, false, true, &json, &err), 0);
  assert_null(json);

  /* Privileged: no filter, whatever is asked for (critest v1.32 "should
   * ignore a seccomp profile that blocks setting hostname when
   * privileged"). */
  assert_int_equal(seccomp_profile_for(&sp, caps, true, false, &json, &err), 0);
  assert_null(json);
  assert_int_equal(seccomp_profile_for(NULL, caps, true, false, &json, &err), 0);
  assert_null(json);
  sp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost;
  sp.localhost_ref = path;
  assert_int_equal(seccomp_profile_for(&sp, caps, true, false, &json, &err), 0);
  assert_null(json);
  assert_int_equal(seccomp_profile_for(&sp, caps, false, false, &json, &err), 0);
  assert_non_null(json);
  assert_non_null(strstr(json, "SCMP_ACT_ALLOW"));
  free(json);

  /* "localhost/<path>" is tolerated. */
  {
    cleanup_free char *ref = xasprintf("localhost/%s", path);
    sp.localhost_ref = ref;
    assert_int_equal(seccomp_profile_for(&sp, caps, false, false, &json, &err), 0);
    free(json);
  }

  sp.profile_type = 7;
  assert_int_equal(seccomp_profile_for(&sp, caps, false, false, &json, &err), -1);
  assert_int_equal(err.code, EINVAL);
  error_clear(&err);
}

static const char docker_profile[]
    = "{\n"
      "  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n"
      "  \"defaultErrnoRet\": 1,\n"
      "  \"archMap\": [\n"
      "    {\"architecture\": \"SCMP_ARCH_AARCH64\", \"subArchitectures\": [\"SCMP_ARCH_ARM\"]},\n"
      "    {\"architecture\": \"SCMP_ARCH_X86_64\",\n"
      "     \"subArchitectures\": [\"SCMP_ARCH_X86\", \"SCMP_ARCH_X32\"]},\n"
      "    {\"architecture\": \"SCMP_ARCH_RISCV64\", \"subArchitectures\": null}\n"
      "  ],\n"
      "  \"syscalls\": [\n"
      "    {\"names\": [\"read\", \"write\", \"no_such_syscall_at_all\"],\n"
      "     \"action\": \"SCMP_ACT_ALLOW\", \"comment\": \"basics\"},\n"
      "    {\"name\": \"getpid\", \"action\": \"SCMP_ACT_ALLOW\"},\n"
      "    {\"names\": [\"mount\"], \"action\": \"SCMP_ACT_ALLOW\",\n"
      "     \"includes\": {\"caps\": [\"CAP_SYS_ADMIN\"]}},\n"
      "    {\"names\": [\"reboot\"], \"action\": \"SCMP_ACT_ALLOW\",\n"
      "     \"includes\": {\"caps\": [\"CAP_SYS_BOOT\", \"CAP_SYS_ADMIN\"]}},\n"
      "    {\"names\": [\"clone\"], \"action\": \"SCMP_ACT_ALLOW\",\n"
      "     \"args\": [{\"index\": 0, \"value\": 2114060288, \"valueTwo\": null, \"op\": "
      "\"SCMP_CMP_MASKED_EQ\"}],\n"
      "     \"excludes\": {\"caps\": [\"CAP_SYS_ADMIN\"], \"arches\": [\"s390\", \"s390x\"]}},\n"
      "    {\"names\": [\"arch_prctl\"], \"action\": \"SCMP_ACT_ALLOW\",\n"
      "     \"includes\": {\"arches\": [\"amd64\", \"x32\"]}},\n"
      "    {\"names\": [\"cacheflush\"], \"action\": \"SCMP_ACT_ALLOW\",\n"
      "     \"includes\": {\"arches\": [\"arm\", \"arm64\"]}},\n"
      "    {\"names\": [\"ptrace\"], \"action\": \"SCMP_ACT_ALLOW\",\n"
      "     \"includes\": {\"minKernel\": \"4.8\"}},\n"
      "    {\"names\": [\"kcmp\"], \"action\": \"SCMP_ACT_ALLOW\",\n"
      "     \"includes\": {\"minKernel\": \"999.0\"}},\n"
      "    {\"names\": [\"uname\"], \"action\": \"SCMP_ACT_ALLOW\",\n"
      "     \"excludes\": {\"minKernel\": \"3.0\"}},\n"
      "    {\"names\": [\"getuid\"], \"action\": \"SCMP_ACT_ALLOW\",\n"
      "     \"includes\": {\"caps\": [\"CAP_NO_SUCH_THING\"]}},\n"
      "    {\"names\": [\"getgid\"], \"action\": \"SCMP_ACT_ERRNO\"},\n"
      "    {\"names\": [\"only_unknown_1\", \"only_unknown_2\"], \"action\": \"SCMP_ACT_ALLOW\"},\n"
      "    {\"names\": [\"kill\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 13}\n"
      "  ]\n"
      "}\n";

static void
test_localhost_docker_form(void **state)
{
  struct fixture *f = *state;
  struct error err = ERROR_INIT;
  cleanup_free char *path = write_profile(f, "docker.json", docker_profile);
  cleanup_free char *json = NULL;
  cleanup_json struct json_value *p = NULL;
  Runtime__V1__SecurityProfile sp;
  const struct json_value *arches, *rule;
  int64_t n;

  if (!host_is_x86_64())
    skip();
  runtime__v1__security_profile__init(&sp);
  sp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost;
  sp.localhost_ref = path;
  assert_int_equal(seccomp_profile_for(&sp, capabilities_default(), false, false, &json, &err), 0);
  p = parse(json);
  assert_null(json_object_get(p, "archMap"));
  assert_string_equal(json_object_get_string(p, "defaultAction"), "SCMP_ACT_ERRNO");
  assert_true(json_integer(json_object_get(p, "defaultErrnoRet"), &n));
  assert_int_equal(n, 1);
  arches = json_object_get(p, "architectures");
  assert_int_equal(json_array_size(arches), 3);
  assert_string_equal(json_string(json_array_at(arches, 0)), "SCMP_ARCH_X86_64");
  assert_string_equal(json_string(json_array_at(arches, 2)), "SCMP_ARCH_X32");

  assert_true(allowed(p, "read"));
  assert_true(allowed(p, "write"));
  assert_null(find_rule(p, "no_such_syscall_at_all", NULL)); /* skipped, rule kept */
  assert_true(allowed(p, "getpid"));                         /* old "name" form */
  assert_null(find_rule(p, "mount", NULL));                  /* no CAP_SYS_ADMIN */
  assert_null(find_rule(p, "reboot", NULL));
  rule = find_rule(p, "clone", NULL); /* excludes: not s390, no CAP_SYS_ADMIN */
  assert_non_null(rule);
  assert_string_equal(json_object_get_string(json_array_at(json_object_get(rule, "args"), 0), "op"),
                      "SCMP_CMP_MASKED_EQ");
  assert_null(json_object_get(rule, "includes"));
  assert_null(json_object_get(rule, "excludes"));
  assert_null(json_object_get(rule, "comment"));
  assert_true(allowed(p, "arch_prctl"));
  assert_null(find_rule(p, "cacheflush", NULL));
  assert_true(allowed(p, "ptrace"));
  assert_null(find_rule(p, "kcmp", NULL));
  assert_null(find_rule(p, "uname", NULL));
  assert_null(find_rule(p, "getuid", NULL));
  assert_null(find_rule(p, "getgid", NULL)); /* same as the default: dropped */
  assert_null(find_rule(p, "only_unknown_1", NULL));
  rule = find_rule(p, "kill", "SCMP_ACT_ERRNO");
  assert_non_null(rule);
  assert_true(json_integer(json_object_get(rule, "errnoRet"), &n));
  assert_int_equal(n, 13);

  /* With CAP_SYS_ADMIN: mount in, the flag-filtered clone out. */
  free(json);
  json = NULL;
  json_free(p);
  p = NULL;
  assert_int_equal(seccomp_profile_for(&sp, capabilities_default() | BIT(CAP_SYS_ADMIN), false,
                                       false, &json, &err),
                   0);
  p = parse(json);
  assert_true(allowed(p, "mount"));
  assert_null(find_rule(p, "clone", NULL));
  assert_null(find_rule(p, "reboot", NULL)); /* needs CAP_SYS_BOOT as well */
}

static void
test_localhost_oci_form(void **state)
{
  struct fixture *f = *state;
  struct error err = ERROR_INIT;
  cleanup_free char *path
      = write_profile(f, "oci.json",
                      "{\"defaultAction\": \"SCMP_ACT_ALLOW\",\n"
                      " \"architectures\": [\"SCMP_ARCH_X86_64\", \"SCMP_ARCH_X86\"],\n"
                      " \"flags\": [\"SECCOMP_FILTER_FLAG_LOG\"],\n"
                      " \"syscalls\": [\n"
                      "  {\"names\": [\"unshare\", \"setns\", \"future_call_2099\"],\n"
                      "   \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 1},\n"
                      "  {\"names\": [\"personality\"], \"action\": \"SCMP_ACT_KILL_PROCESS\",\n"
                      "   \"args\": [{\"index\": 0, \"value\": 18446744073709551615,\n"
                      "             \"valueTwo\": 0, \"op\": \"SCMP_CMP_EQ\"}]},\n"
                      "  {\"names\": [\"getpid\"], \"action\": \"SCMP_ACT_ALLOW\"},\n"
                      "  {\"names\": [\"uname\"], \"action\": \"SCMP_ACT_LOG\"}\n"
                      " ]}\n");
  cleanup_free char *json = NULL;
  cleanup_json struct json_value *p = NULL;
  Runtime__V1__SecurityProfile sp;
  const struct json_value *rule;

  runtime__v1__security_profile__init(&sp);
  sp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost;
  sp.localhost_ref = path;
  assert_int_equal(seccomp_profile_for(&sp, capabilities_default(), false, false, &json, &err), 0);
  p = parse(json);
  assert_string_equal(json_object_get_string(p, "defaultAction"), "SCMP_ACT_ALLOW");
  assert_null(json_object_get(p, "defaultErrnoRet"));
  assert_int_equal(json_array_size(json_object_get(p, "architectures")), 2);
  assert_string_equal(json_string(json_array_at(json_object_get(p, "flags"), 0)),
                      "SECCOMP_FILTER_FLAG_LOG");
  rule = find_rule(p, "unshare", "SCMP_ACT_ERRNO");
  assert_non_null(rule);
  assert_true(names_contain(rule, "setns"));
  assert_false(names_contain(rule, "future_call_2099"));
  assert_null(find_rule(p, "getpid", NULL)); /* ALLOW under ALLOW: dropped */
  assert_non_null(find_rule(p, "uname", "SCMP_ACT_LOG"));
  /* A value above INT64_MAX survives exactly. */
  assert_non_null(strstr(json, "\"value\":18446744073709551615"));
  rule = find_rule(p, "personality", "SCMP_ACT_KILL_PROCESS");
  assert_non_null(rule);
}

static void
expect_refused(struct fixture *f, const char *text, const char *needle)
{
  struct error err = ERROR_INIT;
  cleanup_free char *path = write_profile(f, "bad.json", text);
  char *json = NULL;
  Runtime__V1__SecurityProfile sp;

  runtime__v1__security_profile__init(&sp);
  sp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost;
  sp.localhost_ref = path;
  assert_int_equal(seccomp_profile_for(&sp, capabilities_default(), false, false, &json, &err), -1);
  assert_null(json);
  assert_int_equal(err.code, EINVAL);
  if (strstr(error_message(&err), path) == NULL || strstr(error_message(&err), needle) == NULL)
    fail_msg("message \"%s\" lacks the file or \"%s\"", error_message(&err), needle);
  error_clear(&err);
}

static void
test_localhost_refused(void **state)
{
  struct fixture *f = *state;

  expect_refused(f, "{\"defaultAction\": \"SCMP_ACT_ERRNO\", ", "parse JSON");
  expect_refused(f, "[]", "not a JSON object");
  expect_refused(f, "{\"syscalls\": []}", "defaultAction");
  expect_refused(f, "{\"defaultAction\": \"SCMP_ACT_MAYBE\"}", "SCMP_ACT_MAYBE");
  expect_refused(f,
                 "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": ["
                 "{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\"},"
                 "{\"names\": [\"write\"], \"action\": \"SCMP_ACT_PERMIT\"}]}",
                 "syscalls[1]: unknown action SCMP_ACT_PERMIT");
  /* Refused even when the rule would not apply to this container. */
  expect_refused(f,
                 "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": ["
                 "{\"names\": [\"mount\"], \"action\": \"SCMP_ACT_NOPE\","
                 " \"includes\": {\"caps\": [\"CAP_SYS_ADMIN\"]}}]}",
                 "SCMP_ACT_NOPE");
  expect_refused(f,
                 "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": ["
                 "{\"names\": [\"socket\"], \"action\": \"SCMP_ACT_ALLOW\","
                 " \"args\": [{\"index\": 0, \"value\": 1, \"op\": \"SCMP_CMP_ABOUT\"}]}]}",
                 "unknown operator SCMP_CMP_ABOUT");
  expect_refused(f,
                 "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": ["
                 "{\"names\": [\"socket\"], \"action\": \"SCMP_ACT_ALLOW\","
                 " \"args\": [{\"index\": 6, \"value\": 1, \"op\": \"SCMP_CMP_EQ\"}]}]}",
                 "index");
  expect_refused(f,
                 "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": ["
                 "{\"names\": [\"socket\"], \"action\": \"SCMP_ACT_ALLOW\","
                 " \"args\": [{\"index\": 0, \"value\": -1, \"op\": \"SCMP_CMP_EQ\"}]}]}",
                 "unsigned");
  expect_refused(f,
                 "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": ["
                 "{\"names\": [\"socket\"], \"action\": \"SCMP_ACT_ALLOW\","
                 " \"args\": [{\"index\": 0, \"value\": 1.5, \"op\": \"SCMP_CMP_EQ\"}]}]}",
                 "unsigned");
  expect_refused(f,
                 "{\"defaultAction\": \"SCMP_ACT_ERRNO\","
                 " \"architectures\": [\"SCMP_ARCH_VAX\"]}",
                 "unknown architecture SCMP_ARCH_VAX");
  expect_refused(f,
                 "{\"defaultAction\": \"SCMP_ACT_ERRNO\","
                 " \"architectures\": [\"SCMP_ARCH_X86_64\"],"
                 " \"archMap\": [{\"architecture\": \"SCMP_ARCH_X86_64\"}]}",
                 "both architectures and archMap");
  expect_refused(f, "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"flags\": [\"FLAG_FAST\"]}",
                 "unknown flag FLAG_FAST");
  expect_refused(f,
                 "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": ["
                 "{\"names\": [\"read\"], \"action\": \"SCMP_ACT_NOTIFY\"}]}",
                 "listenerPath");
  expect_refused(f,
                 "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": ["
                 "{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\","
                 " \"includes\": {\"minKernel\": \"recent\"}}]}",
                 "minKernel");
}

static void
test_localhost_missing_and_bad_refs(void **state)
{
  struct fixture *f = *state;
  struct error err = ERROR_INIT;
  Runtime__V1__SecurityProfile sp;
  cleanup_free char *missing = xasprintf("%s/nope.json", f->dir);
  cleanup_free char *fifo = xasprintf("%s/fifo", f->dir);
  char *json = NULL;

  runtime__v1__security_profile__init(&sp);
  sp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost;

  sp.localhost_ref = missing;
  assert_int_equal(seccomp_profile_for(&sp, 0, false, false, &json, &err), -1);
  assert_int_equal(err.code, EINVAL);
  {
    cleanup_free char *want = xasprintf("seccomp profile %s not found", missing);
    assert_string_equal(error_message(&err), want);
  }
  error_clear(&err);

  sp.localhost_ref = "profiles/relative.json";
  assert_int_equal(seccomp_profile_for(&sp, 0, false, false, &json, &err), -1);
  assert_int_equal(err.code, EINVAL);
  assert_non_null(strstr(error_message(&err), "absolute"));
  error_clear(&err);

  sp.localhost_ref = "";
  assert_int_equal(seccomp_profile_for(&sp, 0, false, false, &json, &err), -1);
  assert_int_equal(err.code, EINVAL);
  error_clear(&err);

  /* A FIFO would block a plain open(); refused instead. */
  assert_int_equal(mkfifo(fifo, 0600), 0);
  sp.localhost_ref = fifo;
  assert_int_equal(seccomp_profile_for(&sp, 0, false, false, &json, &err), -1);
  assert_int_equal(err.code, EINVAL);
  assert_non_null(strstr(error_message(&err), "not a regular file"));
  error_clear(&err);

  sp.localhost_ref = f->dir;
  assert_int_equal(seccomp_profile_for(&sp, 0, false, false, &json, &err), -1);
  assert_int_equal(err.code, EINVAL);
  error_clear(&err);
  assert_null(json);
}

static void
test_legacy_path(void **state)
{
  struct error err = ERROR_INIT;
  Runtime__V1__SecurityProfile sp;

  assert_int_equal(seccomp_profile_from_legacy_path("", &sp, &err), 0);
  assert_int_equal(seccomp_profile_from_legacy_path(NULL, &sp, &err), 0);
  assert_int_equal(seccomp_profile_from_legacy_path("runtime/default", &sp, &err), 1);
  assert_int_equal(sp.profile_type, RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__RuntimeDefault);
  assert_int_equal(seccomp_profile_from_legacy_path("docker/default", &sp, &err), 1);
  assert_int_equal(sp.profile_type, RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__RuntimeDefault);
  assert_int_equal(seccomp_profile_from_legacy_path("unconfined", &sp, &err), 1);
  assert_int_equal(sp.profile_type, RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined);
  assert_int_equal(seccomp_profile_from_legacy_path("localhost//etc/p.json", &sp, &err), 1);
  assert_int_equal(sp.profile_type, RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost);
  assert_string_equal(sp.localhost_ref, "/etc/p.json");
  assert_int_equal(seccomp_profile_from_legacy_path("strict", &sp, &err), -1);
  assert_int_equal(err.code, EINVAL);
  error_clear(&err);
}

/* --- a real container --------------------------------------------------- */

static bool
can_run_containers(const char *runtime)
{
  struct stat st;

  return geteuid() == 0 && access(runtime, X_OK) == 0 && stat("/usr/bin/busybox", &st) == 0
         && getenv("CRID_TEST_NO_CONTAINERS") == NULL;
}

static void
write_caps(FILE *out, uint64_t caps)
{
  static const char *const sets[] = { "bounding", "effective", "permitted" };

  fputs("\"capabilities\":{", out);
  for (size_t s = 0; s < 3; s++)
    {
      bool first = true;
      fprintf(out, "%s\"%s\":[", s ? "," : "", sets[s]);
      for (int cap = 0; cap < 64; cap++)
        {
          cleanup_free char *name = (caps & BIT(cap)) ? capability_oci_name(cap) : NULL;
          if (name == NULL)
            continue;
          fprintf(out, "%s\"%s\"", first ? "" : ",", name);
          first = false;
        }
      fputs("]", out);
    }
  fputs("}", out);
}

/* Runs `busybox <args>` in a container holding caps under the filter
 * seccomp_json; returns its exit status, its output in *output. */
static int
run_container(struct fixture *f, const char *runtime, const char *args_json, uint64_t caps,
              const char *seccomp_json, char **output)
{
  cleanup_free char *bundle = xasprintf("%s/bundle", f->dir);
  cleanup_free char *rootfs = xasprintf("%s/rootfs", bundle);
  cleanup_free char *config = xasprintf("%s/config.json", bundle);
  cleanup_free char *cmd = NULL;
  char buffer[4096];
  size_t used = 0, n;
  FILE *out, *pipe;
  int status;

  cmd = xasprintf("mkdir -p %s/bin %s/proc %s/dev %s/tmp && cp /usr/bin/busybox %s/bin/", rootfs,
                  rootfs, rootfs, rootfs, rootfs);
  assert_int_equal(system(cmd), 0);
  free(cmd);
  out = fopen(config, "w");
  assert_non_null(out);
  fprintf(out,
          "{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"rootfs\"},\"hostname\":\"t\","
          "\"process\":{\"cwd\":\"/\",\"user\":{\"uid\":0,\"gid\":0},"
          "\"env\":[\"PATH=/bin\"],\"args\":%s,\"noNewPrivileges\":true,",
          args_json);
  write_caps(out, caps);
  fprintf(out, "},\"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\"},"
               "{\"destination\":\"/dev\",\"type\":\"tmpfs\",\"source\":\"tmpfs\"}],"
               "\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"mount\"},"
               "{\"type\":\"ipc\"},{\"type\":\"uts\"},{\"type\":\"network\"}]");
  if (seccomp_json)
    fprintf(out, ",\"seccomp\":%s", seccomp_json);
  fputs("}}", out);
  fclose(out);

  cmd = xasprintf("cd %s && %s --root %s/state run --no-pivot crid-test-seccomp-%d 2>&1 "
                  "</dev/null; echo \"exit=$?\"",
                  bundle, runtime, f->dir, (int)getpid());
  pipe = popen(cmd, "r");
  assert_non_null(pipe);
  while (used < sizeof buffer - 1 && (n = fread(buffer + used, 1, sizeof buffer - 1 - used, pipe)))
    used += n;
  buffer[used] = '\0';
  status = pclose(pipe);
  assert_true(WIFEXITED(status));
  *output = xstrdup(buffer);
  return atoi(strstr(buffer, "exit=") ? strstr(buffer, "exit=") + 5 : "-1");
}

static void
default_profile_in(struct fixture *f, const char *runtime)
{
  struct error err = ERROR_INIT;
  uint64_t with_admin = capabilities_default() | BIT(CAP_SYS_ADMIN);
  cleanup_free char *confined = NULL;
  cleanup_free char *admin_profile = NULL;
  const char *mount_args
      = "[\"busybox\",\"sh\",\"-c\",\"mkdir -p /tmp/m && mount -t tmpfs t /tmp/m\"]";
  char *output = NULL;
  int status;

  if (!can_run_containers(runtime))
    skip();
  /* A host where even an unfiltered container cannot start (no cgroup
   * access, nested without privileges) says nothing about seccomp. */
  if (run_container(f, runtime, "[\"busybox\",\"true\"]", with_admin, NULL, &output) != 0)
    {
      print_message("%s cannot run containers here: %s", runtime, output);
      free(output);
      skip();
    }
  free(output);
  /* The container holds CAP_SYS_ADMIN, but the filter is the one of a
   * container without it: only seccomp can refuse unshare(2) here. */
  assert_int_equal(seccomp_default_profile(capabilities_default(), &confined, &err), 0);
  status = run_container(f, runtime, "[\"busybox\",\"true\"]", with_admin, confined, &output);
  if (status != 0)
    fail_msg("%s: true failed under the default profile: %s", runtime, output);
  free(output);

  status = run_container(f, runtime, "[\"busybox\",\"unshare\",\"-m\",\"true\"]", with_admin,
                         confined, &output);
  if (status == 0 || strstr(output, "Operation not permitted") == NULL)
    fail_msg("%s: unshare was not refused with EPERM (exit %d): %s", runtime, status, output);
  free(output);

  /* busybox mount words EPERM its own way. */
  status = run_container(f, runtime, mount_args, with_admin, confined, &output);
  if (status == 0 || strstr(output, "permission denied") == NULL)
    fail_msg("%s: mount was not refused with EPERM (exit %d): %s", runtime, status, output);
  free(output);

  /* The profile of a container with CAP_SYS_ADMIN lets the same run. */
  assert_int_equal(seccomp_default_profile(with_admin, &admin_profile, &err), 0);
  status = run_container(f, runtime, "[\"busybox\",\"unshare\",\"-m\",\"true\"]", with_admin,
                         admin_profile, &output);
  if (status != 0)
    fail_msg("%s: unshare failed with CAP_SYS_ADMIN's profile: %s", runtime, output);
  free(output);
  status = run_container(f, runtime, mount_args, with_admin, admin_profile, &output);
  if (status != 0)
    fail_msg("%s: mount failed with CAP_SYS_ADMIN's profile: %s", runtime, output);
  free(output);

  /* A converted Docker-form file loads too: everything allowed but
   * unshare (for containers with CAP_SYS_ADMIN), uname killed for a
   * flag value above INT64_MAX only. */
  {
    cleanup_free char *path = write_profile(
        f, "docker-run.json",
        "{\"defaultAction\": \"SCMP_ACT_ALLOW\",\n"
        " \"archMap\": [{\"architecture\": \"SCMP_ARCH_X86_64\",\n"
        "              \"subArchitectures\": [\"SCMP_ARCH_X86\", \"SCMP_ARCH_X32\"]},\n"
        "             {\"architecture\": \"SCMP_ARCH_AARCH64\", \"subArchitectures\": null}],\n"
        " \"syscalls\": [\n"
        "  {\"names\": [\"unshare\", \"brand_new_call\"], \"action\": \"SCMP_ACT_ERRNO\",\n"
        "   \"errnoRet\": 1, \"includes\": {\"caps\": [\"CAP_SYS_ADMIN\"]}},\n"
        "  {\"names\": [\"uname\"], \"action\": \"SCMP_ACT_KILL_PROCESS\",\n"
        "   \"args\": [{\"index\": 0, \"value\": 18446744073709551615,\n"
        "             \"op\": \"SCMP_CMP_EQ\"}]}]}\n");
    cleanup_free char *converted = NULL;
    Runtime__V1__SecurityProfile sp;

    runtime__v1__security_profile__init(&sp);
    sp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost;
    sp.localhost_ref = path;
    assert_int_equal(seccomp_profile_for(&sp, with_admin, false, false, &converted, &err), 0);
    status = run_container(f, runtime, "[\"busybox\",\"uname\"]", with_admin, converted, &output);
    if (status != 0)
      fail_msg("%s: uname failed under the converted profile: %s", runtime, output);
    free(output);
    status = run_container(f, runtime, "[\"busybox\",\"unshare\",\"-m\",\"true\"]", with_admin,
                           converted, &output);
    if (status == 0 || strstr(output, "Operation not permitted") == NULL)
      fail_msg("%s: unshare not refused by the converted profile (exit %d): %s", runtime, status,
               output);
    free(output);
  }
}

static void
test_default_profile_in_crun(void **state)
{
  default_profile_in(*state, "/usr/bin/crun");
}

static void
test_default_profile_in_runc(void **state)
{
  default_profile_in(*state, "/usr/sbin/runc");
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
  const struct CMUnitTest tests[] = {
    T(test_default_profile_shape),
    T(test_default_blocks_namespaces_without_sys_admin),
    T(test_default_capability_rules),
    T(test_profile_types),
    T(test_localhost_docker_form),
    T(test_localhost_oci_form),
    T(test_localhost_refused),
    T(test_localhost_missing_and_bad_refs),
    T(test_legacy_path),
    T(test_default_profile_in_crun),
    T(test_default_profile_in_runc),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
