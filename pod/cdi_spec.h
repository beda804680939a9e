/* pod/cdi_spec: one CDI (Container Device Interface) spec file, parsed and
 * validated into plain C structs.  Owns the CDI data model, the rules a
 * spec must follow (known cdiVersion, and that it is at least the version
 * whose fields the spec uses; kind "vendor/class"; device names; edits),
 * the syntax of fully qualified device names ("vendor.com/class=name"),
 * and the reading of YAML spec files (libyaml) into the same tree JSON
 * ones give (common/json.h), so both go through one validator.
 *
 * Spec files come from drivers and device plugins: untrusted bytes.  Every
 * error names where in the file it is ("devices[1].containerEdits.mounts[0]
 * .containerPath: ..."); unknown keys are errors, as in the reference
 * implementation, so a typo cannot silently drop an edit. */
#ifndef CRID_POD_CDI_SPEC_H
#define CRID_POD_CDI_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* The newest released CDI spec version crid reads. */
#define CDI_VERSION_NEWEST "1.1.0"
/* Spec files are a few KB; anything beyond this is not a spec. */
#define CDI_SPEC_MAX_SIZE (4 * 1024 * 1024)

enum cdi_format
{
  CDI_FORMAT_JSON,
  CDI_FORMAT_YAML,
};

struct cdi_device_node
{
  char *path;      /* in the container; absolute */
  char *host_path; /* NULL: path */
  char type;       /* 'b', 'c', 'u', 'p'; 0: the host node's */
  int64_t major;   /* 0 with type b/c/u: the host node's (as are minor) */
  int64_t minor;
  bool has_file_mode;
  uint32_t file_mode;
  char *permissions; /* NULL: "rwm"; "none": no cgroup access rule */
  bool has_uid;
  uint32_t uid;
  bool has_gid;
  uint32_t gid;
};

struct cdi_mount
{
  char *host_path;
  char *container_path; /* absolute */
  char *type;           /* NULL: a bind mount */
  char **options;       /* NULL-terminated; NULL when none */
};

struct cdi_hook
{
  char *hook_name; /* prestart, createRuntime, createContainer, startContainer, poststart,
                      poststop */
  char *path;      /* absolute */
  char **args;     /* NULL-terminated; NULL when none */
  char **env;      /* likewise */
  bool has_timeout;
  int64_t timeout; /* seconds, > 0 */
};

struct cdi_edits
{
  char **env; /* "KEY=value", NULL-terminated; NULL when none */
  struct cdi_device_node *device_nodes;
  size_t n_device_nodes;
  struct cdi_mount *mounts;
  size_t n_mounts;
  struct cdi_hook *hooks;
  size_t n_hooks;
  uint32_t *additional_gids;
  size_t n_additional_gids;
  /* Parsed and validated, but not applied by crid (pod/cdi.c refuses a
   * device that carries them). */
  bool has_intel_rdt;
  size_t n_net_devices;
};

struct cdi_device
{
  char *name;
  struct cdi_edits edits;
};

struct cdi_spec
{
  char *version; /* as written, e.g. "0.6.0" or "v0.6.0" */
  char *vendor;  /* kind = vendor/class */
  char *class_name;
  struct cdi_edits edits; /* applied once when any of its devices is */
  struct cdi_device *devices;
  size_t n_devices;
};

/* Parses and validates one spec file's bytes.  EINVAL with where and
 * what is wrong. */
int cdi_spec_parse(const char *text, size_t len, enum cdi_format format, struct cdi_spec **out,
                   struct error *err);
void cdi_spec_free(struct cdi_spec *spec);

/* The format a file name says (".json" or ".yaml"); false for any other
 * name, which is not a spec file. */
bool cdi_spec_format_of(const char *file_name, enum cdi_format *format);

bool cdi_vendor_is_valid(const char *vendor);
bool cdi_class_is_valid(const char *class_name);
bool cdi_device_name_is_valid(const char *name);

/* "vendor/class=name" split into its parts (the caller frees them); EINVAL
 * saying which part is wrong. */
int cdi_parse_qualified_name(const char *qualified, char **vendor, char **class_name, char **name,
                             struct error *err);

/* Edits: deep copies appended, and freeing. */
void cdi_edits_clear(struct cdi_edits *edits);

#endif
