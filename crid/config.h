/* crid/config: crid's configuration, from embedded defaults, the TOML main
 * file, drop-ins and command-line flags, in that order of precedence
 * (later wins).  Owns the schema (every key, its type and default), the
 * error messages that name file:line and key, and the commented TOML that
 * `crid config` prints and crid reads back unchanged. */
#ifndef CRID_CONFIG_H
#define CRID_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "image/registry.h"

struct json_writer;

#define CONFIG_DEFAULT_FILE "/etc/crid/crid.conf"
#define CONFIG_DEFAULT_DIR "/etc/crid/crid.conf.d"

/* [crid.runtime.runtimes.NAME]: one runtime handler. */
struct runtime_handler_config
{
  char *name;
  char *runtime_path;         /* the OCI runtime binary */
  char *runtime_root;         /* its --root; "" = <state_dir>/runtimes/<name> */
  char **allowed_annotations; /* NULL-terminated */
  char *seccomp_precompile;   /* auto | always | never */
};

struct crid_config
{
  /* [crid] */
  char *root;
  char *state_dir;
  char *log_level;
  /* [crid.api] */
  char *listen;
  char *stream_address;
  int64_t stream_port;
  char *stream_idle_timeout; /* a duration, config_parse_duration() */
  int64_t stream_max_sessions;
  char *stream_tls_cert; /* "" = plain HTTP */
  char *stream_tls_key;
  char *stream_tls_ca; /* "" = no client certificates asked for */
  /* [crid.runtime] */
  char *default_runtime;
  char *cgroup_manager; /* "cgroupfs" or "systemd" */
  char *conmon;         /* "" = crid-conmon beside the crid binary */
  char *conmon_path;    /* the one to run, set by config_finalize; not a key */
  int64_t shm_size;     /* bytes of each pod's /dev/shm */
  char **cdi_spec_dirs; /* NULL-terminated */
  /* No seccomp profile named: RuntimeDefault rather than Unconfined
   * (CRI-O's key of the same name). */
  bool seccomp_use_default_when_empty;
  struct runtime_handler_config *runtimes;
  size_t n_runtimes;
  /* [crid.image] */
  char *pause_image; /* "" = the built-in pause root filesystem */
  int64_t max_concurrent_downloads;
  int64_t pull_progress_timeout; /* seconds without progress; 0 = none */
  struct registry_config *registries;
  size_t n_registries;
  /* [crid.network] */
  char *network_dir;
  char **plugin_dirs; /* NULL-terminated */
  /* [crid.metrics] */
  bool enable_metrics;
  char *metrics_host;
  int64_t metrics_port;
  /* [crid.stats] */
  int64_t collection_period; /* seconds between the stats collector's passes */
};

/* Fills c with the embedded defaults. */
void config_init(struct crid_config *c);
void config_free(struct crid_config *c);

/* Merges one TOML file into c.  Unknown key, wrong type, bad value or
 * syntax error: -1 with "FILE:LINE: ..." naming the key. */
int config_merge_file(struct crid_config *c, const char *path, struct error *err);
/* Same, from text in memory; name is used in messages in place of a path. */
int config_merge_text(struct crid_config *c, const char *name, const char *text, size_t len,
                      struct error *err);

/* Loads main_file (a missing file is fine unless must_exist) and then
 * every *.conf of dir in lexical order (a missing dir is fine). */
int config_load(struct crid_config *c, const char *main_file, bool must_exist, const char *dir,
                struct error *err);

/* Checks cross-key rules (the default runtime exists, cgroup manager is
 * known, ...) and resolves the "" defaults that depend on other keys. */
int config_finalize(struct crid_config *c, struct error *err);

/* crid-conmon binds <state_dir>/conmon/<64-hex id>/console in a
 * sockaddr_un (conmon/main.c): with a longer state_dir every container
 * would fail at create.  EINVAL naming the limit; the daemon checks it
 * before it starts (`crid config` and `crid image` need no sockets). */
int config_check_state_dir(const struct crid_config *c, struct error *err);

const struct runtime_handler_config *config_find_runtime(const struct crid_config *c,
                                                         const char *name);
/* Whether the handler gets filters compiled by crid: seccomp_precompile,
 * where "auto" means the runtime binary is crun (the runtime that reads
 * them from run.oci.seccomp_bpf_data). */
bool config_runtime_takes_compiled_seccomp(const struct runtime_handler_config *r);
const struct registry_config *config_find_registry(const struct crid_config *c, const char *prefix);

/* One difference config_diff() found. */
enum config_change_kind
{
  CONFIG_KEY_CHANGED,  /* key has another value */
  CONFIG_ITEM_ADDED,   /* a new member of a table of items */
  CONFIG_ITEM_REMOVED, /* a member of a table of items is gone */
};

struct config_change
{
  enum config_change_kind kind;
  const char *table; /* dotted path: "crid.api", "crid.image.registries" */
  const char *item;  /* the member ("crun", "registry.example:5000"); NULL in plain tables */
  const char *what;  /* what a member is ("runtime handler", "registry"); NULL likewise */
  const char *key;   /* the key; NULL when an item was added or removed */
};

typedef void (*config_change_fn)(void *arg, const struct config_change *change);

/* Calls fn for every key whose value differs between old and fresh, in
 * schema order (for a reload to apply or report each one). */
void config_diff(const struct crid_config *old, const struct crid_config *fresh,
                 config_change_fn fn, void *arg);

/* Replaces dst's registry tables by src's, which are left empty. */
void config_move_registries(struct crid_config *dst, struct crid_config *src);

/* The effective configuration as commented TOML that config_merge_* reads
 * back to an equal configuration.  Caller frees. */
char *config_to_toml(const struct crid_config *c);

/* The effective configuration as one JSON object (Status verbose info). */
void config_write_json(const struct crid_config *c, struct json_writer *writer);

/* The longest duration config_parse_duration() returns; longer ones are
 * clamped to it (100 years: seconds * 1e9 still fits an int64). */
#define CONFIG_DURATION_MAX_S (100LL * 366 * 24 * 3600)

/* "4h", "1h30m", "90s", "0" -> seconds (at most CONFIG_DURATION_MAX_S);
 * -1 when not such a duration. */
int config_parse_duration(const char *text, int64_t *seconds);

#endif
