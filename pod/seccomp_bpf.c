#include "pod/seccomp_bpf.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"

/* Distinct profiles seen in practice are few (the default one per
 * capability set, a handful of Localhost files). */
#define SECCOMP_BPF_CACHE_SIZE 32

static void
filter_release(scmp_filter_ctx *ctx)
{
  if (*ctx)
    seccomp_release(*ctx);
}
#define cleanup_filter __attribute__((cleanup(filter_release)))

static bool
action_takes_errno(const char *name)
{
  return strcmp(name, "SCMP_ACT_ERRNO") == 0 || strcmp(name, "SCMP_ACT_TRACE") == 0;
}

/* The action value crun gives the name; false for one it does not know. */
static bool
action_value(const char *name, uint32_t errno_ret, uint32_t *out)
{
  static const struct
  {
    const char *name;
    uint32_t action;
  } fixed[] = {
    { "SCMP_ACT_ALLOW", SCMP_ACT_ALLOW },
    { "SCMP_ACT_KILL", SCMP_ACT_KILL },
    { "SCMP_ACT_KILL_THREAD", SCMP_ACT_KILL_THREAD },
    { "SCMP_ACT_KILL_PROCESS", SCMP_ACT_KILL_PROCESS },
    { "SCMP_ACT_LOG", SCMP_ACT_LOG },
    { "SCMP_ACT_TRAP", SCMP_ACT_TRAP },
  };

  if (name == NULL)
    return false;
  if (strcmp(name, "SCMP_ACT_ERRNO") == 0)
    return *out = SCMP_ACT_ERRNO(errno_ret), true;
  if (strcmp(name, "SCMP_ACT_TRACE") == 0)
    return *out = SCMP_ACT_TRACE(errno_ret), true;
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
    if (strcmp(name, fixed[i].name) == 0)
      return *out = fixed[i].action, true;
  return false;
}

static bool
operator_value(const char *name, enum scmp_compare *out)
{
  static const struct
  {
    const char *name;
    enum scmp_compare op;
  } ops[] = {
    { "SCMP_CMP_NE", SCMP_CMP_NE },
    { "SCMP_CMP_LT", SCMP_CMP_LT },
    { "SCMP_CMP_LE", SCMP_CMP_LE },
    { "SCMP_CMP_EQ", SCMP_CMP_EQ },
    { "SCMP_CMP_GE", SCMP_CMP_GE },
    { "SCMP_CMP_GT", SCMP_CMP_GT },
    { "SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ },
  };

  for (size_t i = 0; name && i < sizeof ops / sizeof ops[0]; i++)
    if (strcmp(name, ops[i].name) == 0)
      return *out = ops[i].op, true;
  return false;
}

/* Values above INT64_MAX stay text in the parsed tree. */
static uint64_t
json_u64(const struct json_value *value)
{
  struct json_writer *w;
  uint64_t n;
  int64_t small;

  if (value == NULL)
    return 0;
  if (json_integer(value, &small))
    return (uint64_t)small;
  w = json_writer_new(false);
  json_write_value(w, value);
  n = strtoull(json_writer_text(w, NULL), NULL, 10);
  json_writer_free(w);
  return n;
}

static uint32_t
errno_of(const struct json_value *object, const char *key)
{
  int64_t n = EPERM;
  json_integer(json_object_get(object, key), &n);
  return (uint32_t)n;
}

static int
add_architectures(scmp_filter_ctx ctx, const struct json_value *arches, struct error *err)
{
  for (size_t i = 0; i < json_array_size(arches); i++)
    {
      const char *name = json_string(json_array_at(arches, i));
      char lower[32] = "";
      uint32_t token;
      int ret;

      if (name == NULL)
        return error_set(err, EINVAL, "seccomp architecture %zu is not a string", i);
      if (strncmp(name, "SCMP_ARCH_", 10) == 0)
        name += 10;
      for (size_t j = 0; name[j] && j < sizeof lower - 1; j++)
        lower[j] = (char)(name[j] >= 'A' && name[j] <= 'Z' ? name[j] - 'A' + 'a' : name[j]);
      token = seccomp_arch_resolve_name(lower);
      if (token == 0)
        return error_set(err, EINVAL, "unknown seccomp architecture %s", name);
      ret = seccomp_arch_add(ctx, token);
      if (ret < 0 && ret != -EEXIST)
        return error_set_errno(err, -ret, "seccomp: add architecture %s", name);
    }
  return 0;
}

/* A rule's argument conditions: all in one rule (ANDed), unless an
 * argument index repeats, in which case each condition is a rule of its
 * own (ORed), which is what runtimes do with such profiles. */
static int
add_rule_with_args(scmp_filter_ctx ctx, uint32_t action, int nr, const struct json_value *args,
                   const char *name, struct error *err)
{
  struct scmp_arg_cmp cmp[6];
  unsigned seen[6] = { 0 };
  size_t n = json_array_size(args);
  bool repeated = false;
  int ret = 0;

  if (n > 6)
    n = 6;
  for (size_t k = 0; k < n; k++)
    {
      const struct json_value *arg = json_array_at(args, k);
      int64_t index = -1;
      enum scmp_compare op;

      json_integer(json_object_get(arg, "index"), &index);
      if (index < 0 || index >= 6)
        return error_set(err, EINVAL, "seccomp rule %s: argument index out of range", name);
      if (!operator_value(json_object_get_string(arg, "op"), &op))
        return error_set(err, EINVAL, "seccomp rule %s: unknown operator", name);
      repeated |= seen[index]++ > 0;
      cmp[k] = (struct scmp_arg_cmp){ .arg = (unsigned)index,
                                      .op = op,
                                      .datum_a = json_u64(json_object_get(arg, "value")),
                                      .datum_b = json_u64(json_object_get(arg, "valueTwo")) };
    }
  if (!repeated)
    ret = seccomp_rule_add_array(ctx, action, nr, (unsigned)n, cmp);
  else
    for (size_t k = 0; k < n && ret == 0; k++)
      ret = seccomp_rule_add_array(ctx, action, nr, 1, &cmp[k]);
  if (ret < 0)
    return error_set_errno(err, -ret, "seccomp: add rule for %s", name);
  return 0;
}

static int
add_syscall_rule(scmp_filter_ctx ctx, const struct json_value *rule, uint32_t default_action,
                 struct error *err)
{
  const char *action_name = json_object_get_string(rule, "action");
  const struct json_value *names = json_object_get(rule, "names");
  const struct json_value *args = json_object_get(rule, "args");
  uint32_t action;

  if (!action_value(action_name, errno_of(rule, "errnoRet"), &action))
    return error_set(err, EINVAL, "unknown seccomp action %s",
                     action_name ? action_name : "(none)");
  if (action == default_action)
    return 0;
  for (size_t i = 0; i < json_array_size(names); i++)
    {
      const char *name = json_string(json_array_at(names, i));
      int nr = name ? seccomp_syscall_resolve_name(name) : __NR_SCMP_ERROR;
      int ret;

      /* pod/seccomp.c kept only names libseccomp knows for some listed
       * architecture; one unknown natively is skipped, as runtimes do. */
      if (nr == __NR_SCMP_ERROR)
        continue;
      if (json_array_size(args) > 0)
        {
          if (add_rule_with_args(ctx, action, nr, args, name, err) < 0)
            return -1;
          continue;
        }
      ret = seccomp_rule_add(ctx, action, nr, 0);
      if (ret < 0)
        return error_set_errno(err, -ret, "seccomp: add rule for %s", name);
    }
  return 0;
}

static bool
needs_the_runtime(const struct json_value *root)
{
  const struct json_value *syscalls = json_object_get(root, "syscalls");

  if (json_object_get(root, "listenerPath") != NULL)
    return true;
  for (size_t i = 0; i < json_array_size(syscalls); i++)
    {
      const char *action = json_object_get_string(json_array_at(syscalls, i), "action");
      if (action && strcmp(action, "SCMP_ACT_NOTIFY") == 0)
        return true;
    }
  return false;
}

static char *
export_base64(scmp_filter_ctx ctx, struct error *err)
{
  cleanup_close int fd = memfd_create("crid-seccomp", MFD_CLOEXEC);
  cleanup_free unsigned char *program = NULL;
  struct stat st;
  char *text;
  int ret;

  if (fd < 0)
    return error_set_errno(err, errno, "seccomp: memfd_create"), NULL;
  ret = seccomp_export_bpf(ctx, fd);
  if (ret < 0)
    return error_set_errno(err, -ret, "seccomp: export the filter"), NULL;
  if (fstat(fd, &st) < 0)
    return error_set_errno(err, errno, "seccomp: stat the filter"), NULL;
  program = xmalloc((size_t)st.st_size + 1);
  if (pread(fd, program, (size_t)st.st_size, 0) != st.st_size)
    return error_set(err, EIO, "seccomp: read back the filter"), NULL;
  text = xmalloc(4 * (((size_t)st.st_size + 2) / 3) + 1);
  EVP_EncodeBlock((unsigned char *)text, program, (int)st.st_size);
  return text;
}

int
seccomp_bpf_compile(const char *oci_json, char **base64, struct error *err)
{
  cleanup_json struct json_value *root = json_parse(oci_json, strlen(oci_json), err);
  cleanup_filter scmp_filter_ctx ctx = NULL;
  const struct json_value *syscalls;
  const char *default_name;
  uint32_t default_action;

  *base64 = NULL;
  if (root == NULL)
    return error_wrap(err, "seccomp profile");
  if (needs_the_runtime(root))
    return 0;
  default_name = json_object_get_string(root, "defaultAction");
  if (!action_value(default_name, errno_of(root, "defaultErrnoRet"), &default_action)
      || (json_object_get(root, "defaultErrnoRet") && !action_takes_errno(default_name)))
    return error_set(err, EINVAL, "seccomp: bad default action %s",
                     default_name ? default_name : "(none)");
  ctx = seccomp_init(default_action);
  if (ctx == NULL)
    return error_set(err, EINVAL, "seccomp: cannot initialise a filter");
  if (add_architectures(ctx, json_object_get(root, "architectures"), err) < 0)
    return -1;
  syscalls = json_object_get(root, "syscalls");
  for (size_t i = 0; i < json_array_size(syscalls); i++)
    if (add_syscall_rule(ctx, json_array_at(syscalls, i), default_action, err) < 0)
      return -1;
  *base64 = export_base64(ctx, err);
  return *base64 ? 0 : -1;
}

struct cache_entry
{
  char *profile;
  char *base64; /* NULL: left to the runtime */
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cache_entry cache[SECCOMP_BPF_CACHE_SIZE];
static size_t cache_next; /* the slot replaced next, round robin */

static bool
cache_lookup(const char *profile, char **base64)
{
  bool found = false;

  pthread_mutex_lock(&cache_lock);
  for (size_t i = 0; i < SECCOMP_BPF_CACHE_SIZE && !found; i++)
    if (cache[i].profile && strcmp(cache[i].profile, profile) == 0)
      {
        *base64 = cache[i].base64 ? xstrdup(cache[i].base64) : NULL;
        found = true;
      }
  pthread_mutex_unlock(&cache_lock);
  return found;
}

static void
cache_store(const char *profile, const char *base64)
{
  struct cache_entry *slot;

  pthread_mutex_lock(&cache_lock);
  slot = &cache[cache_next];
  cache_next = (cache_next + 1) % SECCOMP_BPF_CACHE_SIZE;
  free(slot->profile);
  free(slot->base64);
  slot->profile = xstrdup(profile);
  slot->base64 = base64 ? xstrdup(base64) : NULL;
  pthread_mutex_unlock(&cache_lock);
}

int
seccomp_bpf_for(const char *oci_json, char **base64, struct error *err)
{
  if (cache_lookup(oci_json, base64))
    return 0;
  /* Two callers may compile the same profile at once; both results are
   * equal, and the cost is paid only on the first pods after a start. */
  if (seccomp_bpf_compile(oci_json, base64, err) < 0)
    return -1;
  cache_store(oci_json, *base64);
  return 0;
}
