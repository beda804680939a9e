/* Capability sets of a container's process; see capabilities.h for the
 * rules.  libcap only names and validates capabilities here: the sets
 * themselves are bit masks, and no capability of crid is ever changed. */
#include "pod/capabilities.h"
#include "common/cleanup.h"
#include "common/util.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/capability.h>

#define STATUS_MAX_SIZE (64 * 1024)

uint64_t
capabilities_default(void)
{
  static const int defaults[] = {
    CAP_CHOWN,   CAP_DAC_OVERRIDE, CAP_FSETID,           CAP_FOWNER,
    CAP_MKNOD,   CAP_NET_RAW,      CAP_SETGID,           CAP_SETUID,
    CAP_SETFCAP, CAP_SETPCAP,      CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT,
    CAP_KILL,    CAP_AUDIT_WRITE,
  };
  uint64_t set = 0;

  for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
    set |= CAPABILITY_BIT(defaults[i]);
  return set;
}

char *
capability_oci_name(int cap)
{
  char *text;
  char *name;

  if (cap < 0 || cap > 63)
    return NULL;
  text = cap_to_name((cap_value_t)cap);
  if (text == NULL)
    return NULL;
  /* libcap prints a bare number for a capability it has no name for;
   * runtimes would refuse such a name, so it does not exist for us. */
  if (strncasecmp(text, "cap_", 4) != 0)
    {
      cap_free(text);
      return NULL;
    }
  name = xstrdup(text);
  cap_free(text);
  for (char *p = name; *p; p++)
    *p = (char)toupper((unsigned char)*p);
  return name;
}

uint64_t
capabilities_known(void)
{
  uint64_t set = 0;

  for (int cap = 0; cap < 64; cap++)
    {
      cleanup_free char *name = capability_oci_name(cap);
      if (name)
        set |= CAPABILITY_BIT(cap);
    }
  return set;
}

int
capabilities_parse_status(const char *status_text, uint64_t *out, struct error *err)
{
  const char *line = status_text;

  while (line && *line)
    {
      if (strncmp(line, "CapBnd:", 7) == 0)
        {
          char *end;
          errno = 0;
          uint64_t value = strtoull(line + 7, &end, 16);
          if (errno != 0 || end == line + 7 || (*end != '\n' && *end != '\0'))
            return error_set(err, EINVAL, "malformed CapBnd line in the process status");
          *out = value;
          return 0;
        }
      line = strchr(line, '\n');
      if (line)
        line++;
    }
  return error_set(err, ENOENT, "no CapBnd line in the process status");
}

int
capabilities_host_bounding(uint64_t *out, struct error *err)
{
  cleanup_free char *text = NULL;
  uint64_t bounding;

  if (read_file("/proc/self/status", STATUS_MAX_SIZE, &text, NULL, err) < 0)
    return error_wrap(err, "read the bounding capability set");
  if (capabilities_parse_status(text, &bounding, err) < 0)
    return error_wrap(err, "/proc/self/status");
  *out = bounding & capabilities_known();
  return 0;
}

/* "net_admin" and "CAP_NET_ADMIN" alike; letters, digits and '_' only,
 * because cap_from_name would also take a bare number or a list. */
int
capability_from_name(const char *name, int *cap, struct error *err)
{
  const char *bare = name;
  cleanup_free char *lower = NULL;
  cap_value_t value;

  if (strncasecmp(bare, "CAP_", 4) == 0)
    bare += 4;
  if (!isalpha((unsigned char)bare[0]))
    return error_set(err, EINVAL, "unknown capability \"%s\"", name);
  for (const char *p = bare; *p; p++)
    if (!isalnum((unsigned char)*p) && *p != '_')
      return error_set(err, EINVAL, "unknown capability \"%s\"", name);
  lower = xasprintf("cap_%s", bare);
  for (char *p = lower; *p; p++)
    *p = (char)tolower((unsigned char)*p);
  if (cap_from_name(lower, &value) < 0 || value < 0 || value > 63)
    return error_set(err, EINVAL, "unknown capability \"%s\"", name);
  *cap = (int)value;
  return 0;
}

static bool
is_all(const char *name)
{
  return strcasecmp(name, "ALL") == 0 || strcasecmp(name, "CAP_ALL") == 0;
}

static bool
list_has_all(char **names, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (is_all(names[i]))
      return true;
  return false;
}

/* The union of the named capabilities, "ALL" skipped. */
static int
names_to_set(char **names, size_t n, uint64_t *out, struct error *err)
{
  uint64_t set = 0;

  for (size_t i = 0; i < n; i++)
    {
      int cap;
      if (is_all(names[i]))
        continue;
      if (capability_from_name(names[i], &cap, err) < 0)
        return -1;
      set |= CAPABILITY_BIT(cap);
    }
  *out = set;
  return 0;
}

static void
sets_add(struct capability_sets *sets, uint64_t caps, bool ambient)
{
  sets->bounding |= caps;
  sets->effective |= caps;
  sets->permitted |= caps;
  sets->inheritable |= caps;
  if (ambient)
    sets->ambient |= caps;
}

static void
sets_keep(struct capability_sets *sets, uint64_t mask)
{
  sets->bounding &= mask;
  sets->effective &= mask;
  sets->permitted &= mask;
  sets->inheritable &= mask;
  sets->ambient &= mask;
}

int
capabilities_compute(const Runtime__V1__Capability *cri, bool privileged, uint64_t host_bounding,
                     struct capability_sets *out, struct error *err)
{
  struct capability_sets sets = { 0 };
  uint64_t add = 0, drop = 0, ambient = 0;

  if (privileged)
    {
      sets.bounding = sets.effective = sets.permitted = host_bounding;
      *out = sets;
      return 0;
    }
  sets.bounding = sets.effective = sets.permitted = capabilities_default();
  if (cri)
    {
      /* Validate every name before anything is applied. */
      if (names_to_set(cri->add_capabilities, cri->n_add_capabilities, &add, err) < 0
          || names_to_set(cri->drop_capabilities, cri->n_drop_capabilities, &drop, err) < 0
          || names_to_set(cri->add_ambient_capabilities, cri->n_add_ambient_capabilities, &ambient,
                          err)
                 < 0)
        return error_wrap(err, "capabilities");
      if (list_has_all(cri->add_capabilities, cri->n_add_capabilities))
        sets_add(&sets, host_bounding, false);
      if (list_has_all(cri->drop_capabilities, cri->n_drop_capabilities))
        sets_keep(&sets, 0);
      sets_add(&sets, add, false);
      sets_keep(&sets, ~drop);
      if (list_has_all(cri->add_ambient_capabilities, cri->n_add_ambient_capabilities))
        ambient |= host_bounding;
      sets_add(&sets, ambient, true);
    }
  sets_keep(&sets, host_bounding);
  *out = sets;
  return 0;
}

static void
write_set(struct json_writer *writer, const char *key, uint64_t set)
{
  json_write_key(writer, key);
  json_begin_array(writer);
  for (int cap = 0; cap < 64; cap++)
    {
      cleanup_free char *name = NULL;
      if (!(set & CAPABILITY_BIT(cap)))
        continue;
      name = capability_oci_name(cap);
      if (name)
        json_write_string(writer, name);
    }
  json_end_array(writer);
}

void
capabilities_write_json(struct json_writer *writer, const struct capability_sets *sets)
{
  json_begin_object(writer);
  write_set(writer, "bounding", sets->bounding);
  write_set(writer, "effective", sets->effective);
  write_set(writer, "permitted", sets->permitted);
  write_set(writer, "inheritable", sets->inheritable);
  write_set(writer, "ambient", sets->ambient);
  json_end_object(writer);
}
