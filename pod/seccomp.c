/* The OCI seccomp object of a container: crid's built-in profile, or a
 * node's profile file converted for this host; see seccomp.h for the
 * rules.  libseccomp is used only to check syscall and architecture
 * names: the filter itself is built by the OCI runtime. */
#include "pod/seccomp.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"
#include "pod/capabilities.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#define LOCALHOST_PREFIX "localhost/"
#define MAX_ARCHES 16
#define ARG_INDEX_MAX 5 /* a syscall has six arguments */

/* The OCI architecture names are libseccomp's macro names. */
#define ARCH(token)                                                                                \
  {                                                                                                \
#token, token                                                                                  \
  }
static const struct
{
  const char *name;
  uint32_t token;
} arch_names[] = {
  ARCH(SCMP_ARCH_X86),      ARCH(SCMP_ARCH_X86_64),      ARCH(SCMP_ARCH_X32),
  ARCH(SCMP_ARCH_ARM),      ARCH(SCMP_ARCH_AARCH64),     ARCH(SCMP_ARCH_MIPS),
  ARCH(SCMP_ARCH_MIPS64),   ARCH(SCMP_ARCH_MIPS64N32),   ARCH(SCMP_ARCH_MIPSEL),
  ARCH(SCMP_ARCH_MIPSEL64), ARCH(SCMP_ARCH_MIPSEL64N32), ARCH(SCMP_ARCH_PPC),
  ARCH(SCMP_ARCH_PPC64),    ARCH(SCMP_ARCH_PPC64LE),     ARCH(SCMP_ARCH_S390),
  ARCH(SCMP_ARCH_S390X),    ARCH(SCMP_ARCH_PARISC),      ARCH(SCMP_ARCH_PARISC64),
  ARCH(SCMP_ARCH_RISCV64),
};

/* A host: the Docker arch name its rules test, and the architectures
 * whose programs it runs (a 64-bit x86 kernel also runs i386 and x32
 * binaries, which a filter must cover or they would meet the bad-arch
 * action).  The same families as containerd's and Docker's archMap. */
struct host_arch
{
  uint32_t native;
  unsigned docker_bit;
  const char *docker_name;
  uint32_t family[3];
  size_t n_family;
};

static const struct host_arch host_arches[] = {
  { SCMP_ARCH_X86_64,
    SECCOMP_ARCH_AMD64,
    "amd64",
    { SCMP_ARCH_X86_64, SCMP_ARCH_X86, SCMP_ARCH_X32 },
    3 },
  { SCMP_ARCH_AARCH64, SECCOMP_ARCH_ARM64, "arm64", { SCMP_ARCH_AARCH64, SCMP_ARCH_ARM }, 2 },
  { SCMP_ARCH_X86, SECCOMP_ARCH_X86, "x86", { SCMP_ARCH_X86 }, 1 },
  { SCMP_ARCH_ARM, SECCOMP_ARCH_ARM, "arm", { SCMP_ARCH_ARM }, 1 },
  { SCMP_ARCH_PPC64LE, SECCOMP_ARCH_PPC64LE, "ppc64le", { SCMP_ARCH_PPC64LE }, 1 },
  { SCMP_ARCH_S390X, SECCOMP_ARCH_S390X, "s390x", { SCMP_ARCH_S390X, SCMP_ARCH_S390 }, 2 },
  { SCMP_ARCH_S390, SECCOMP_ARCH_S390, "s390", { SCMP_ARCH_S390 }, 1 },
  { SCMP_ARCH_RISCV64, SECCOMP_ARCH_RISCV64, "riscv64", { SCMP_ARCH_RISCV64 }, 1 },
};

static const char *const actions[] = {
  "SCMP_ACT_KILL",        "SCMP_ACT_KILL_PROCESS",
  "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
  "SCMP_ACT_ERRNO",       "SCMP_ACT_TRACE",
  "SCMP_ACT_ALLOW",       "SCMP_ACT_LOG",
  "SCMP_ACT_NOTIFY",      NULL,
};

static const char *const operators[] = {
  "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE",        "SCMP_CMP_EQ",
  "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ", NULL,
};

static const char *const filter_flags[] = {
  "SECCOMP_FILTER_FLAG_TSYNC",
  "SECCOMP_FILTER_FLAG_LOG",
  "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
  "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
  NULL,
};

/* What rules are decided against, and the architectures whose syscall
 * tables a name must be found in. */
struct target
{
  uint64_t caps;
  unsigned kernel; /* major << 8 | minor */
  uint32_t native;
  const struct host_arch *host; /* NULL on a host crid has no family for */
  uint32_t tokens[MAX_ARCHES];
  size_t n_tokens;
};

static uint32_t
arch_token(const char *name)
{
  for (size_t i = 0; i < sizeof(arch_names) / sizeof(arch_names[0]); i++)
    if (strcmp(arch_names[i].name, name) == 0)
      return arch_names[i].token;
  return 0;
}

static const char *
arch_name(uint32_t token)
{
  for (size_t i = 0; i < sizeof(arch_names) / sizeof(arch_names[0]); i++)
    if (arch_names[i].token == token)
      return arch_names[i].name;
  return NULL;
}

/* "6.1.0-13-amd64" -> 6 << 8 | 1; "4.8" likewise.  -1 when it does not
 * start with major.minor. */
static int
parse_kernel_version(const char *text)
{
  char *end;
  unsigned long major, minor;

  if (text == NULL || *text < '0' || *text > '9')
    return -1;
  major = strtoul(text, &end, 10);
  if (*end != '.' || end[1] < '0' || end[1] > '9')
    return -1;
  minor = strtoul(end + 1, &end, 10);
  if (major > 0xffff || minor > 0xff)
    return -1;
  return (int)((major << 8) | minor);
}

static unsigned
running_kernel(void)
{
  struct utsname u;
  int version;

  if (uname(&u) < 0)
    return 0;
  version = parse_kernel_version(u.release);
  return version < 0 ? 0 : (unsigned)version;
}

static void
target_add_token(struct target *t, uint32_t token)
{
  for (size_t i = 0; i < t->n_tokens; i++)
    if (t->tokens[i] == token)
      return;
  if (t->n_tokens < MAX_ARCHES)
    t->tokens[t->n_tokens++] = token;
}

static void
target_init(struct target *t, uint64_t caps)
{
  memset(t, 0, sizeof *t);
  t->caps = caps;
  t->kernel = running_kernel();
  t->native = seccomp_arch_native();
  for (size_t i = 0; i < sizeof(host_arches) / sizeof(host_arches[0]); i++)
    if (host_arches[i].native == t->native)
      t->host = &host_arches[i];
}

/* Whether libseccomp knows the syscall on one of the target's arches.
 * A name that exists only on another architecture resolves to a
 * negative pseudo number, which libseccomp accepts and ignores (and uses
 * for the socketcall/ipc multiplexers of 32-bit x86): only a name it
 * cannot resolve at all would make the runtime fail. */
static bool
syscall_known(const struct target *t, const char *name)
{
  for (size_t i = 0; i < t->n_tokens; i++)
    if (seccomp_syscall_resolve_name_arch(t->tokens[i], name) != __NR_SCMP_ERROR)
      return true;
  return false;
}

/* Writes {"names": [...known ones...], "action": ..., ...} up to the
 * names; false (nothing written) when no name is known. */
static bool
write_rule_names(struct json_writer *w, const struct target *t, const char *const *names,
                 size_t n_names)
{
  bool any = false;

  for (size_t i = 0; i < n_names; i++)
    {
      if (!syscall_known(t, names[i]))
        {
          log_debug("seccomp: syscall %s unknown to libseccomp on this host, skipped", names[i]);
          continue;
        }
      if (!any)
        {
          json_begin_object(w);
          json_write_key(w, "names");
          json_begin_array(w);
          any = true;
        }
      json_write_string(w, names[i]);
    }
  if (any)
    json_end_array(w);
  return any;
}

/* --- the built-in profile ------------------------------------------------ */

static bool
builtin_rule_applies(const struct seccomp_builtin_rule *rule, const struct target *t)
{
  unsigned arch = t->host ? t->host->docker_bit : 0;

  if ((rule->caps_all & t->caps) != rule->caps_all)
    return false;
  if (rule->caps_none & t->caps)
    return false;
  if (rule->arches && !(rule->arches & arch))
    return false;
  if (rule->not_arches & arch)
    return false;
  return rule->min_kernel == 0 || t->kernel >= rule->min_kernel;
}

static const char *
builtin_op_name(enum seccomp_builtin_op op)
{
  switch (op)
    {
    case SECCOMP_BUILTIN_EQ:
      return "SCMP_CMP_EQ";
    case SECCOMP_BUILTIN_NE:
      return "SCMP_CMP_NE";
    case SECCOMP_BUILTIN_MASKED_EQ:
      return "SCMP_CMP_MASKED_EQ";
    }
  abort();
}

static void
write_builtin_rule(struct json_writer *w, const struct seccomp_builtin_rule *rule,
                   const struct target *t)
{
  cleanup_free char *copy = xstrdup(rule->names);
  cleanup_free const char **names = xcalloc(strlen(copy) / 2 + 1, sizeof *names);
  size_t n = 0;
  char *save = NULL;

  for (char *name = strtok_r(copy, " ", &save); name; name = strtok_r(NULL, " ", &save))
    names[n++] = name;
  if (!write_rule_names(w, t, names, n))
    return;
  json_write_key(w, "action");
  json_write_string(w, rule->action == SECCOMP_BUILTIN_ALLOW ? "SCMP_ACT_ALLOW" : "SCMP_ACT_ERRNO");
  if (rule->action == SECCOMP_BUILTIN_ERRNO)
    {
      json_write_key(w, "errnoRet");
      json_write_int(w, rule->errno_ret);
    }
  if (rule->has_arg)
    {
      json_write_key(w, "args");
      json_begin_array(w);
      json_begin_object(w);
      json_write_key(w, "index");
      json_write_int(w, rule->arg_index);
      json_write_key(w, "value");
      json_write_int(w, (int64_t)rule->arg_value);
      json_write_key(w, "valueTwo");
      json_write_int(w, (int64_t)rule->arg_value_two);
      json_write_key(w, "op");
      json_write_string(w, builtin_op_name(rule->arg_op));
      json_end_object(w);
      json_end_array(w);
    }
  json_end_object(w);
}

int
seccomp_default_profile(uint64_t capabilities, char **json, struct error *err)
{
  struct json_writer *w = json_writer_new(false);
  struct target t;

  target_init(&t, capabilities);
  if (t.host)
    for (size_t i = 0; i < t.host->n_family; i++)
      target_add_token(&t, t.host->family[i]);
  else
    target_add_token(&t, t.native);

  json_begin_object(w);
  json_write_key(w, "defaultAction");
  json_write_string(w, "SCMP_ACT_ERRNO");
  json_write_key(w, "defaultErrnoRet");
  json_write_int(w, EPERM);
  json_write_key(w, "architectures");
  json_begin_array(w);
  for (size_t i = 0; i < t.n_tokens; i++)
    if (arch_name(t.tokens[i]))
      json_write_string(w, arch_name(t.tokens[i]));
  json_end_array(w);
  json_write_key(w, "syscalls");
  json_begin_array(w);
  for (size_t i = 0; i < seccomp_builtin_n_rules; i++)
    if (builtin_rule_applies(&seccomp_builtin_rules[i], &t))
      write_builtin_rule(w, &seccomp_builtin_rules[i], &t);
  json_end_array(w);
  json_end_object(w);
  *json = json_writer_finish(w, NULL);
  (void)err;
  return 0;
}

/* --- profile files --------------------------------------------------------- */

/* One includes/excludes object, decided for the target. */
struct conditions
{
  bool has_caps, all_caps_held, any_cap_held;
  bool has_arches, arch_listed;
  bool has_min_kernel;
  unsigned min_kernel;
};

/* A uint64 argument value: a non-negative JSON integer, or one above
 * INT64_MAX, which the parser keeps as text (checked here digit by
 * digit so "1e3" or "1.5" cannot pass). */
static bool
valid_u64(const struct json_value *value)
{
  int64_t n;
  struct json_writer *w;
  const char *text;
  char *end;
  bool ok;

  if (json_integer(value, &n))
    return n >= 0;
  if (!json_is_number(value))
    return false;
  w = json_writer_new(false);
  json_write_value(w, value);
  text = json_writer_text(w, NULL);
  errno = 0;
  ok = text[0] >= '0' && text[0] <= '9';
  if (ok)
    {
      strtoull(text, &end, 10);
      ok = *end == '\0' && errno == 0;
    }
  json_writer_free(w);
  return ok;
}

static int
string_array(const struct json_value *value, const char *what, struct error *err)
{
  if (value == NULL || json_is_null(value))
    return 0;
  if (!json_is_array(value))
    return error_set(err, EINVAL, "%s: not an array", what);
  for (size_t i = 0; i < json_array_size(value); i++)
    if (!json_is_string(json_array_at(value, i)))
      return error_set(err, EINVAL, "%s[%zu]: not a string", what, i);
  return 0;
}

static bool
cap_held(const struct target *t, const char *name)
{
  struct error ignored = ERROR_INIT;
  int cap;

  /* A capability this host cannot name is one no container holds. */
  if (capability_from_name(name, &cap, &ignored) < 0)
    {
      error_clear(&ignored);
      return false;
    }
  return (t->caps & CAPABILITY_BIT(cap)) != 0;
}

static int
parse_conditions(const struct json_value *node, const char *what, const struct target *t,
                 struct conditions *c, struct error *err)
{
  const struct json_value *caps = json_object_get(node, "caps");
  const struct json_value *arches = json_object_get(node, "arches");
  const struct json_value *min_kernel = json_object_get(node, "minKernel");

  memset(c, 0, sizeof *c);
  if (node == NULL || json_is_null(node))
    return 0;
  if (!json_is_object(node))
    return error_set(err, EINVAL, "%s: not an object", what);
  if (string_array(caps, what, err) < 0 || string_array(arches, what, err) < 0)
    return -1;
  c->has_caps = json_array_size(caps) > 0;
  c->all_caps_held = true;
  for (size_t i = 0; i < json_array_size(caps); i++)
    {
      bool held = cap_held(t, json_string(json_array_at(caps, i)));
      c->all_caps_held &= held;
      c->any_cap_held |= held;
    }
  c->has_arches = json_array_size(arches) > 0;
  for (size_t i = 0; i < json_array_size(arches); i++)
    if (t->host && strcmp(json_string(json_array_at(arches, i)), t->host->docker_name) == 0)
      c->arch_listed = true;
  if (min_kernel && !json_is_null(min_kernel))
    {
      int version = parse_kernel_version(json_string(min_kernel));
      if (version < 0)
        return error_set(err, EINVAL, "%s: bad minKernel (want \"major.minor\")", what);
      c->has_min_kernel = true;
      c->min_kernel = (unsigned)version;
    }
  return 0;
}

static bool
rule_applies(const struct conditions *in, const struct conditions *ex, const struct target *t)
{
  if (ex->arch_listed || ex->any_cap_held)
    return false;
  if (ex->has_min_kernel && t->kernel >= ex->min_kernel)
    return false;
  if (in->has_arches && !in->arch_listed)
    return false;
  if (in->has_caps && !in->all_caps_held)
    return false;
  return !in->has_min_kernel || t->kernel >= in->min_kernel;
}

/* A member, with JSON null taken as absent (Go's decoders, which wrote
 * most profiles, treat it so). */
static const struct json_value *
member(const struct json_value *object, const char *key)
{
  const struct json_value *value = json_object_get(object, key);

  return json_is_null(value) ? NULL : value;
}

static int
check_args(const struct json_value *args, const char *what, struct error *err)
{
  if (args == NULL || json_is_null(args))
    return 0;
  if (!json_is_array(args))
    return error_set(err, EINVAL, "%s.args: not an array", what);
  for (size_t i = 0; i < json_array_size(args); i++)
    {
      const struct json_value *arg = json_array_at(args, i);
      const struct json_value *value = member(arg, "value");
      const struct json_value *value_two = member(arg, "valueTwo");
      const char *op = json_object_get_string(arg, "op");
      int64_t index;

      if (!json_is_object(arg))
        return error_set(err, EINVAL, "%s.args[%zu]: not an object", what, i);
      if (!json_integer(json_object_get(arg, "index"), &index) || index < 0
          || index > ARG_INDEX_MAX)
        return error_set(err, EINVAL, "%s.args[%zu]: index must be 0 to %d", what, i,
                         ARG_INDEX_MAX);
      if ((value && !valid_u64(value)) || (value_two && !valid_u64(value_two)))
        return error_set(err, EINVAL, "%s.args[%zu]: value is not an unsigned 64-bit integer", what,
                         i);
      if (!str_in_list(operators, op))
        return error_set(err, EINVAL, "%s.args[%zu]: unknown operator %s", what, i,
                         op ? op : "(none)");
    }
  return 0;
}

static void
write_args(struct json_writer *w, const struct json_value *args)
{
  if (json_array_size(args) == 0)
    return;
  json_write_key(w, "args");
  json_begin_array(w);
  for (size_t i = 0; i < json_array_size(args); i++)
    {
      const struct json_value *arg = json_array_at(args, i);
      const struct json_value *value = member(arg, "value");
      const struct json_value *value_two = member(arg, "valueTwo");
      int64_t index = 0;

      json_integer(json_object_get(arg, "index"), &index);
      json_begin_object(w);
      json_write_key(w, "index");
      json_write_int(w, index);
      json_write_key(w, "value");
      if (value)
        json_write_value(w, value); /* keeps values above INT64_MAX exact */
      else
        json_write_int(w, 0);
      if (value_two)
        {
          json_write_key(w, "valueTwo");
          json_write_value(w, value_two);
        }
      json_write_key(w, "op");
      json_write_string(w, json_object_get_string(arg, "op"));
      json_end_object(w);
    }
  json_end_array(w);
}

/* The profile-wide facts a rule is checked and compared against. */
struct profile
{
  const char *default_action;
  bool has_default_errno;
  int64_t default_errno;
  bool has_listener;
};

static int
check_errno(const struct json_value *value, const char *what, bool *has, int64_t *out,
            struct error *err)
{
  *has = false;
  if (value == NULL || json_is_null(value))
    return 0;
  if (!json_integer(value, out) || *out < 0 || *out > 4095)
    return error_set(err, EINVAL, "%s: errnoRet must be an errno number", what);
  *has = true;
  return 0;
}

/* A rule with the default's action and errno changes nothing, and
 * libseccomp refuses such a rule: runc drops it too. */
static bool
same_as_default(const struct profile *p, const char *action, bool has_errno, int64_t errno_ret)
{
  int64_t mine = has_errno ? errno_ret : EPERM;
  int64_t theirs = p->has_default_errno ? p->default_errno : EPERM;

  if (strcmp(action, p->default_action) != 0)
    return false;
  if (strcmp(action, "SCMP_ACT_ERRNO") == 0 || strcmp(action, "SCMP_ACT_TRACE") == 0)
    return mine == theirs;
  return true;
}

/* The names of a rule: Docker's old single "name" or "names". */
static int
rule_names(const struct json_value *rule, const char *what, const char ***names, size_t *n,
           struct error *err)
{
  const struct json_value *list = json_object_get(rule, "names");
  const struct json_value *one = json_object_get(rule, "name");

  *names = NULL;
  *n = 0;
  if (one && !json_is_null(one) && !json_is_string(one))
    return error_set(err, EINVAL, "%s.name: not a string", what);
  if (string_array(list, what, err) < 0)
    return -1;
  if (json_string(one) && json_string(one)[0] && json_array_size(list) > 0)
    return error_set(err, EINVAL, "%s: both name and names", what);
  *names = xcalloc(json_array_size(list) + 1, sizeof **names);
  for (size_t i = 0; i < json_array_size(list); i++)
    (*names)[(*n)++] = json_string(json_array_at(list, i));
  if (json_string(one) && json_string(one)[0])
    (*names)[(*n)++] = json_string(one);
  return 0;
}

static int
convert_rule(struct json_writer *w, const struct json_value *rule, size_t index,
             const struct profile *p, const struct target *t, struct error *err)
{
  char what[64];
  const char *action = json_object_get_string(rule, "action");
  const struct json_value *args = json_object_get(rule, "args");
  cleanup_free const char **names = NULL;
  struct conditions in, ex;
  bool has_errno;
  int64_t errno_ret;
  size_t n_names;

  snprintf(what, sizeof what, "syscalls[%zu]", index);
  if (!json_is_object(rule))
    return error_set(err, EINVAL, "%s: not an object", what);
  if (!str_in_list(actions, action))
    return error_set(err, EINVAL, "%s: unknown action %s", what, action ? action : "(none)");
  if (strcmp(action, "SCMP_ACT_NOTIFY") == 0 && !p->has_listener)
    return error_set(err, EINVAL, "%s: SCMP_ACT_NOTIFY without listenerPath", what);
  if (check_errno(json_object_get(rule, "errnoRet"), what, &has_errno, &errno_ret, err) < 0
      || check_args(args, what, err) < 0 || rule_names(rule, what, &names, &n_names, err) < 0)
    return -1;
  if (parse_conditions(json_object_get(rule, "includes"), what, t, &in, err) < 0
      || parse_conditions(json_object_get(rule, "excludes"), what, t, &ex, err) < 0)
    return -1;

  if (!rule_applies(&in, &ex, t))
    return 0;
  if (same_as_default(p, action, has_errno, errno_ret))
    {
      log_debug("seccomp: %s has the default action, dropped", what);
      return 0;
    }
  if (!write_rule_names(w, t, names, n_names))
    return 0;
  json_write_key(w, "action");
  json_write_string(w, action);
  if (has_errno)
    {
      json_write_key(w, "errnoRet");
      json_write_int(w, errno_ret);
    }
  write_args(w, args);
  json_end_object(w);
  return 0;
}

/* The architectures of the result: the host's archMap entry (its
 * architecture and subArchitectures), or "architectures" as given. */
static int
profile_arches(const struct json_value *root, const struct target *t, const char **out, size_t *n,
               struct error *err)
{
  const struct json_value *list = json_object_get(root, "architectures");
  const struct json_value *map = json_object_get(root, "archMap");
  const char *native = arch_name(t->native);

  *n = 0;
  if (json_array_size(list) > 0 && json_array_size(map) > 0)
    return error_set(err, EINVAL, "both architectures and archMap");
  if (string_array(list, "architectures", err) < 0)
    return -1;
  if (map && !json_is_null(map) && !json_is_array(map))
    return error_set(err, EINVAL, "archMap: not an array");
  for (size_t i = 0; i < json_array_size(list) && *n < MAX_ARCHES; i++)
    out[(*n)++] = json_string(json_array_at(list, i));
  for (size_t i = 0; i < json_array_size(map); i++)
    {
      const struct json_value *entry = json_array_at(map, i);
      const struct json_value *subs = json_object_get(entry, "subArchitectures");
      const char *arch = json_object_get_string(entry, "architecture");

      if (!json_is_object(entry) || arch == NULL)
        return error_set(err, EINVAL, "archMap[%zu]: no architecture", i);
      if (string_array(subs, "archMap.subArchitectures", err) < 0)
        return -1;
      if (native == NULL || strcmp(arch, native) != 0)
        continue;
      out[(*n)++] = arch;
      for (size_t j = 0; j < json_array_size(subs) && *n < MAX_ARCHES; j++)
        out[(*n)++] = json_string(json_array_at(subs, j));
      break;
    }
  for (size_t i = 0; i < *n; i++)
    if (arch_token(out[i]) == 0)
      return error_set(err, EINVAL, "unknown architecture %s", out[i]);
  return 0;
}

static int
write_header(struct json_writer *w, const struct json_value *root, const struct profile *p,
             const char *const *arches, size_t n_arches, struct error *err)
{
  const struct json_value *flags = json_object_get(root, "flags");

  if (string_array(flags, "flags", err) < 0)
    return -1;
  for (size_t i = 0; i < json_array_size(flags); i++)
    if (!str_in_list(filter_flags, json_string(json_array_at(flags, i))))
      return error_set(err, EINVAL, "unknown flag %s", json_string(json_array_at(flags, i)));

  json_write_key(w, "defaultAction");
  json_write_string(w, p->default_action);
  if (p->has_default_errno)
    {
      json_write_key(w, "defaultErrnoRet");
      json_write_int(w, p->default_errno);
    }
  if (n_arches > 0)
    {
      json_write_key(w, "architectures");
      json_begin_array(w);
      for (size_t i = 0; i < n_arches; i++)
        json_write_string(w, arches[i]);
      json_end_array(w);
    }
  if (json_array_size(flags) > 0)
    {
      json_write_key(w, "flags");
      json_write_value(w, flags);
    }
  if (p->has_listener)
    {
      json_write_key(w, "listenerPath");
      json_write_string(w, json_object_get_string(root, "listenerPath"));
      if (json_object_get_string(root, "listenerMetadata"))
        {
          json_write_key(w, "listenerMetadata");
          json_write_string(w, json_object_get_string(root, "listenerMetadata"));
        }
    }
  return 0;
}

static int
convert_tree(const struct json_value *root, const struct target *t_in, struct json_writer *w,
             struct error *err)
{
  const struct json_value *syscalls = json_object_get(root, "syscalls");
  const char *arches[MAX_ARCHES];
  struct target t = *t_in;
  struct profile p = { 0 };
  size_t n_arches;

  if (!json_is_object(root))
    return error_set(err, EINVAL, "not a JSON object");
  p.default_action = json_object_get_string(root, "defaultAction");
  if (!str_in_list(actions, p.default_action))
    return error_set(err, EINVAL, "unknown defaultAction %s",
                     p.default_action ? p.default_action : "(none)");
  if (check_errno(json_object_get(root, "defaultErrnoRet"), "defaultErrnoRet", &p.has_default_errno,
                  &p.default_errno, err)
      < 0)
    return -1;
  p.has_listener = json_object_get_string(root, "listenerPath") != NULL
                   && json_object_get_string(root, "listenerPath")[0] != '\0';
  if (strcmp(p.default_action, "SCMP_ACT_NOTIFY") == 0 && !p.has_listener)
    return error_set(err, EINVAL, "defaultAction SCMP_ACT_NOTIFY without listenerPath");
  if (profile_arches(root, &t, arches, &n_arches, err) < 0)
    return -1;
  for (size_t i = 0; i < n_arches; i++)
    target_add_token(&t, arch_token(arches[i]));
  target_add_token(&t, t.native);
  if (syscalls && !json_is_null(syscalls) && !json_is_array(syscalls))
    return error_set(err, EINVAL, "syscalls: not an array");

  json_begin_object(w);
  if (write_header(w, root, &p, arches, n_arches, err) < 0)
    return -1;
  json_write_key(w, "syscalls");
  json_begin_array(w);
  for (size_t i = 0; i < json_array_size(syscalls); i++)
    if (convert_rule(w, json_array_at(syscalls, i), i, &p, &t, err) < 0)
      return -1;
  json_end_array(w);
  json_end_object(w);
  return 0;
}

int
seccomp_profile_convert(const char *text, size_t len, const char *name, uint64_t capabilities,
                        char **json, struct error *err)
{
  cleanup_json struct json_value *root = json_parse(text, len, err);
  struct json_writer *w;
  struct target t;

  if (root == NULL)
    {
      err->code = EINVAL;
      return error_wrap(err, "seccomp profile %s", name);
    }
  target_init(&t, capabilities);
  w = json_writer_new(false);
  if (convert_tree(root, &t, w, err) < 0)
    {
      json_writer_free(w);
      err->code = EINVAL;
      return error_wrap(err, "seccomp profile %s", name);
    }
  *json = json_writer_finish(w, NULL);
  return 0;
}

/* Reads a profile file.  Opened non-blocking and checked to be a regular
 * file first: a path naming a FIFO would otherwise hang the call. */
static int
read_profile(const char *path, char **text, size_t *len, struct error *err)
{
  cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  cleanup_free char *buffer = NULL;
  struct stat st;
  size_t used = 0;

  if (fd < 0 && (errno == ENOENT || errno == ENOTDIR))
    return error_set(err, EINVAL, "seccomp profile %s not found", path);
  if (fd < 0)
    return error_set_errno(err, errno, "seccomp profile %s: open", path);
  if (fstat(fd, &st) < 0)
    return error_set_errno(err, errno, "seccomp profile %s: stat", path);
  if (!S_ISREG(st.st_mode))
    return error_set(err, EINVAL, "seccomp profile %s: not a regular file", path);
  if (st.st_size > SECCOMP_PROFILE_MAX_SIZE)
    return error_set(err, EINVAL, "seccomp profile %s: larger than %d bytes", path,
                     SECCOMP_PROFILE_MAX_SIZE);
  buffer = xmalloc(SECCOMP_PROFILE_MAX_SIZE + 1);
  for (;;)
    {
      ssize_t n = read(fd, buffer + used, SECCOMP_PROFILE_MAX_SIZE + 1 - used);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return error_set_errno(err, errno, "seccomp profile %s: read", path);
      if (n == 0)
        break;
      used += (size_t)n;
      if (used > SECCOMP_PROFILE_MAX_SIZE)
        return error_set(err, EINVAL, "seccomp profile %s: larger than %d bytes", path,
                         SECCOMP_PROFILE_MAX_SIZE);
    }
  buffer[used] = '\0';
  *text = steal_pointer(&buffer);
  *len = used;
  return 0;
}

static int
localhost_profile(const char *ref, uint64_t capabilities, char **json, struct error *err)
{
  cleanup_free char *text = NULL;
  size_t len = 0;

  if (ref && str_has_prefix(ref, LOCALHOST_PREFIX))
    ref += strlen(LOCALHOST_PREFIX);
  if (ref == NULL || ref[0] == '\0')
    return error_set(err, EINVAL, "seccomp profile: Localhost without localhost_ref");
  if (ref[0] != '/')
    return error_set(err, EINVAL, "seccomp profile %s: not an absolute path", ref);
  if (read_profile(ref, &text, &len, err) < 0)
    {
      if (err->code != EINVAL)
        err->code = EINVAL;
      return -1;
    }
  return seccomp_profile_convert(text, len, ref, capabilities, json, err);
}

int
seccomp_profile_for(const Runtime__V1__SecurityProfile *profile, uint64_t capabilities,
                    bool privileged, bool default_when_empty, char **json, struct error *err)
{
  /* No profile at all is Unconfined, as the CRI defines it (containerd
   * does the same; the kubelet sends RuntimeDefault when it wants it),
   * unless the operator asked for confinement then. */
  Runtime__V1__SecurityProfile__ProfileType type
      = profile              ? profile->profile_type
        : default_when_empty ? RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__RuntimeDefault
                             : RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined;

  *json = NULL;
  /* A privileged container runs without any filter, whatever it names. */
  if (privileged)
    return 0;
  switch (type)
    {
    case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined:
      return 0;
    case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__RuntimeDefault:
      return seccomp_default_profile(capabilities, json, err);
    case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost:
      return localhost_profile(profile->localhost_ref, capabilities, json, err);
    default:
      return error_set(err, EINVAL, "unknown seccomp profile type %d", (int)type);
    }
}

int
seccomp_profile_from_legacy_path(const char *path, Runtime__V1__SecurityProfile *out,
                                 struct error *err)
{
  runtime__v1__security_profile__init(out);
  if (path == NULL || path[0] == '\0')
    return 0;
  if (strcmp(path, "runtime/default") == 0 || strcmp(path, "docker/default") == 0)
    out->profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__RuntimeDefault;
  else if (strcmp(path, "unconfined") == 0)
    out->profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined;
  else if (str_has_prefix(path, LOCALHOST_PREFIX))
    {
      out->profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost;
      out->localhost_ref = (char *)path + strlen(LOCALHOST_PREFIX);
    }
  else
    return error_set(err, EINVAL, "unknown seccomp profile %s", path);
  return 1;
}

/* The deprecated fields are read here only, where their use is meant. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static int
effective(const Runtime__V1__SecurityProfile *profile, const char *legacy_path,
          Runtime__V1__SecurityProfile *storage, const Runtime__V1__SecurityProfile **out,
          struct error *err)
{
  *out = profile;
  if (profile != NULL || legacy_path == NULL || legacy_path[0] == '\0')
    return 0;
  if (seccomp_profile_from_legacy_path(legacy_path, storage, err) < 0)
    return -1;
  *out = storage;
  return 0;
}

int
seccomp_profile_of_container(const Runtime__V1__LinuxContainerSecurityContext *sc,
                             Runtime__V1__SecurityProfile *storage,
                             const Runtime__V1__SecurityProfile **out, struct error *err)
{
  *out = NULL;
  if (sc == NULL)
    return 0;
  return effective(sc->seccomp, sc->seccomp_profile_path, storage, out, err);
}

int
seccomp_profile_of_sandbox(const Runtime__V1__LinuxSandboxSecurityContext *sc,
                           Runtime__V1__SecurityProfile *storage,
                           const Runtime__V1__SecurityProfile **out, struct error *err)
{
  *out = NULL;
  if (sc == NULL)
    return 0;
  return effective(sc->seccomp, sc->seccomp_profile_path, storage, out, err);
}
#pragma GCC diagnostic pop
