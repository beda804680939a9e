/* Unit tests of crid/config: defaults, every key and type, errors with
 * file:line and key, drop-in order, finalize, the TOML/JSON output, and
 * the differences a reload sees. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "crid/config.h"
#include "common/cleanup.h"
#include "common/error.h"
#include "common/json.h"
#include "common/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int
merge(struct crid_config *c, const char *text, struct error *err)
{
  return config_merge_text(c, "test.conf", text, strlen(text), err);
}

static void
merge_ok(struct crid_config *c, const char *text)
{
  struct error err = ERROR_INIT;
  if (merge(c, text, &err) < 0)
    fail_msg("unexpected error: %s", error_message(&err));
}

static void
finalize_ok(struct crid_config *c)
{
  struct error err = ERROR_INIT;
  if (config_finalize(c, &err) < 0)
    fail_msg("unexpected error: %s", error_message(&err));
}

static void
assert_strv_equal(char **a, char **b)
{
  assert_int_equal(strv_length(a), strv_length(b));
  for (size_t i = 0; a[i]; i++)
    assert_string_equal(a[i], b[i]);
}

static void
assert_config_equal(const struct crid_config *a, const struct crid_config *b)
{
  assert_string_equal(a->root, b->root);
  assert_string_equal(a->state_dir, b->state_dir);
  assert_string_equal(a->log_level, b->log_level);
  assert_string_equal(a->listen, b->listen);
  assert_string_equal(a->stream_address, b->stream_address);
  assert_int_equal(a->stream_port, b->stream_port);
  assert_string_equal(a->default_runtime, b->default_runtime);
  assert_string_equal(a->cgroup_manager, b->cgroup_manager);
  assert_string_equal(a->conmon, b->conmon);
  assert_int_equal(a->shm_size, b->shm_size);
  assert_int_equal(a->n_runtimes, b->n_runtimes);
  for (size_t i = 0; i < a->n_runtimes; i++)
    {
      assert_string_equal(a->runtimes[i].name, b->runtimes[i].name);
      assert_string_equal(a->runtimes[i].runtime_path, b->runtimes[i].runtime_path);
      assert_string_equal(a->runtimes[i].runtime_root, b->runtimes[i].runtime_root);
      assert_strv_equal(a->runtimes[i].allowed_annotations, b->runtimes[i].allowed_annotations);
    }
  assert_string_equal(a->pause_image, b->pause_image);
  assert_int_equal(a->max_concurrent_downloads, b->max_concurrent_downloads);
  assert_int_equal(a->pull_progress_timeout, b->pull_progress_timeout);
  assert_int_equal(a->n_registries, b->n_registries);
  for (size_t i = 0; i < a->n_registries; i++)
    {
      assert_string_equal(a->registries[i].prefix, b->registries[i].prefix);
      assert_string_equal(a->registries[i].location, b->registries[i].location);
      assert_int_equal(a->registries[i].insecure, b->registries[i].insecure);
      assert_string_equal(a->registries[i].ca_dir, b->registries[i].ca_dir);
      assert_strv_equal(a->registries[i].mirrors, b->registries[i].mirrors);
    }
  assert_string_equal(a->network_dir, b->network_dir);
  assert_strv_equal(a->plugin_dirs, b->plugin_dirs);
  assert_int_equal(a->enable_metrics, b->enable_metrics);
  assert_string_equal(a->metrics_host, b->metrics_host);
  assert_int_equal(a->metrics_port, b->metrics_port);
}

static void
test_defaults(void **state)
{
  struct crid_config c;
  const char *runc = access("/usr/sbin/runc", F_OK) == 0 ? "/usr/sbin/runc" : "/usr/bin/runc";
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  cleanup_free char *conmon = NULL;

  assert_true(n > 0);
  exe[n] = '\0';
  *strrchr(exe, '/') = '\0';
  conmon = xasprintf("%s/crid-conmon", exe);

  config_init(&c);
  assert_string_equal(c.root, "/var/lib/crid");
  assert_string_equal(c.state_dir, "/run/crid");
  assert_string_equal(c.log_level, "info");
  assert_string_equal(c.listen, "/run/crid/crid.sock");
  assert_string_equal(c.stream_address, "127.0.0.1");
  assert_int_equal(c.stream_port, 0);
  assert_string_equal(c.default_runtime, "crun");
  assert_string_equal(c.cgroup_manager, "cgroupfs");
  assert_string_equal(c.conmon, "");
  assert_int_equal(c.shm_size, 67108864);
  assert_int_equal(c.n_runtimes, 2);
  assert_string_equal(c.runtimes[0].name, "crun");
  assert_string_equal(c.runtimes[0].runtime_path, "/usr/bin/crun");
  assert_string_equal(c.runtimes[0].runtime_root, "");
  assert_null(c.runtimes[0].allowed_annotations[0]);
  assert_string_equal(c.runtimes[1].name, "runc");
  assert_string_equal(c.runtimes[1].runtime_path, runc);
  assert_string_equal(c.pause_image, "");
  assert_int_equal(c.max_concurrent_downloads, 3);
  assert_int_equal(c.pull_progress_timeout, 60);
  assert_int_equal(c.n_registries, 0);
  assert_string_equal(c.network_dir, "/etc/cni/net.d");
  assert_int_equal(strv_length(c.plugin_dirs), 2);
  assert_string_equal(c.plugin_dirs[0], "/opt/cni/bin");
  assert_string_equal(c.plugin_dirs[1], "/usr/lib/cni");
  assert_false(c.enable_metrics);
  assert_string_equal(c.metrics_host, "127.0.0.1");
  assert_int_equal(c.metrics_port, 9537);

  finalize_ok(&c);
  /* What was configured stays as it is (crid config prints it); the path
   * to run is derived. */
  assert_string_equal(c.conmon, "");
  assert_string_equal(c.conmon_path, conmon);
  assert_string_equal(c.runtimes[0].runtime_root, "/run/crid/runtimes/crun");
  assert_string_equal(c.runtimes[1].runtime_root, "/run/crid/runtimes/runc");
  assert_ptr_equal(config_find_runtime(&c, "runc"), &c.runtimes[1]);
  assert_ptr_equal(config_find_runtime(&c, ""), &c.runtimes[0]);
  assert_ptr_equal(config_find_runtime(&c, NULL), &c.runtimes[0]);
  assert_null(config_find_runtime(&c, "kata"));
  assert_null(config_find_registry(&c, "docker.io"));
  config_free(&c);
}

/* Every key, with the syntax a hand-written file may use. */
static const char full_config[] = "# crid test configuration\n"
                                  "[crid]\n"
                                  "root = \"/srv/crid\"   # trailing comment\n"
                                  "state_dir = '/run/crid-test'\n"
                                  "log_level = \"DEBUG\"\n"
                                  "\n"
                                  "[crid.api]\n"
                                  "listen = \"/run/crid-test/crid.sock\"\n"
                                  "stream_address = \"::1\"\n"
                                  "stream_port = 10_010\n"
                                  "\n"
                                  "[crid.runtime]\n"
                                  "default_runtime = \"runc\"\n"
                                  "cgroup_manager = \"systemd\"\n"
                                  "conmon = \"/usr/libexec/crid/crid-conmon\"\n"
                                  "shm_size = 0x1000_0000\n"
                                  "\n"
                                  "[crid.runtime.runtimes.crun]\n"
                                  "runtime_root = \"/run/crun-test\"\n"
                                  "allowed_annotations = [\n"
                                  "  \"io.kubernetes.cri-o.userns-mode\",  # why\n"
                                  "  # a comment line inside the array\n"
                                  "  'io.kubernetes.cri-o.Devices',\n"
                                  "]\n"
                                  "\n"
                                  "[crid.runtime.runtimes.\"kata-qemu\"]\n"
                                  "runtime_path = \"/opt/kata/bin/kata-runtime\"\n"
                                  "\n"
                                  "[crid.image]\n"
                                  "pause_image = \"registry.k8s.io/pause:3.9\"\n"
                                  "max_concurrent_downloads = 8\n"
                                  "pull_progress_timeout = 0\n"
                                  "\n"
                                  "[crid.image.registries.\"127.0.0.1:5000\"]\n"
                                  "insecure = true\n"
                                  "ca_dir = \"/etc/crid/certs.d/127.0.0.1:5000\"\n"
                                  "\n"
                                  "[crid.image.registries.'docker.io']\n"
                                  "location = \"mirror.example\"\n"
                                  "mirrors = [\"a.example\", \"b.example:443\"]\n"
                                  "\n"
                                  "[crid.network]\n"
                                  "network_dir = \"/etc/cni/test.d\"\n"
                                  "plugin_dirs = [\"/opt/test-cni/bin\",\n"
                                  "               \"/usr/lib/cni\"]\n"
                                  "\n"
                                  "[crid.metrics]\n"
                                  "enable_metrics = true\n"
                                  "metrics_host = \"0.0.0.0\"\n"
                                  "metrics_port = 9090\n";

static void
test_every_key(void **state)
{
  struct crid_config c;
  const struct runtime_handler_config *crun, *kata;
  const struct registry_config *local, *hub;

  config_init(&c);
  merge_ok(&c, full_config);
  assert_string_equal(c.root, "/srv/crid");
  assert_string_equal(c.state_dir, "/run/crid-test");
  assert_string_equal(c.log_level, "debug"); /* normalized */
  assert_string_equal(c.listen, "/run/crid-test/crid.sock");
  assert_string_equal(c.stream_address, "::1");
  assert_int_equal(c.stream_port, 10010);
  assert_string_equal(c.default_runtime, "runc");
  assert_string_equal(c.cgroup_manager, "systemd");
  assert_string_equal(c.conmon, "/usr/libexec/crid/crid-conmon");
  assert_int_equal(c.shm_size, 0x10000000);
  assert_int_equal(c.n_runtimes, 3);
  crun = config_find_runtime(&c, "crun");
  assert_string_equal(crun->runtime_path, "/usr/bin/crun"); /* untouched default */
  assert_string_equal(crun->runtime_root, "/run/crun-test");
  assert_int_equal(strv_length(crun->allowed_annotations), 2);
  assert_string_equal(crun->allowed_annotations[0], "io.kubernetes.cri-o.userns-mode");
  assert_string_equal(crun->allowed_annotations[1], "io.kubernetes.cri-o.Devices");
  kata = config_find_runtime(&c, "kata-qemu");
  assert_non_null(kata);
  assert_string_equal(kata->runtime_path, "/opt/kata/bin/kata-runtime");
  assert_string_equal(kata->runtime_root, "");
  assert_null(kata->allowed_annotations[0]);
  /* Kept in name order. */
  assert_string_equal(c.runtimes[0].name, "crun");
  assert_string_equal(c.runtimes[1].name, "kata-qemu");
  assert_string_equal(c.runtimes[2].name, "runc");
  assert_string_equal(c.pause_image, "registry.k8s.io/pause:3.9");
  assert_int_equal(c.max_concurrent_downloads, 8);
  assert_int_equal(c.pull_progress_timeout, 0);
  assert_int_equal(c.n_registries, 2);
  local = config_find_registry(&c, "127.0.0.1:5000");
  assert_non_null(local);
  assert_true(local->insecure);
  assert_string_equal(local->location, "");
  assert_string_equal(local->ca_dir, "/etc/crid/certs.d/127.0.0.1:5000");
  assert_null(local->mirrors[0]);
  hub = config_find_registry(&c, "docker.io");
  assert_non_null(hub);
  assert_false(hub->insecure);
  assert_string_equal(hub->location, "mirror.example");
  assert_int_equal(strv_length(hub->mirrors), 2);
  assert_string_equal(hub->mirrors[1], "b.example:443");
  assert_string_equal(c.network_dir, "/etc/cni/test.d");
  assert_int_equal(strv_length(c.plugin_dirs), 2);
  assert_string_equal(c.plugin_dirs[0], "/opt/test-cni/bin");
  assert_true(c.enable_metrics);
  assert_string_equal(c.metrics_host, "0.0.0.0");
  assert_int_equal(c.metrics_port, 9090);

  finalize_ok(&c);
  assert_string_equal(c.conmon, "/usr/libexec/crid/crid-conmon");
  assert_string_equal(config_find_runtime(&c, "crun")->runtime_root, "/run/crun-test");
  assert_string_equal(config_find_runtime(&c, "kata-qemu")->runtime_root,
                      "/run/crid-test/runtimes/kata-qemu");
  assert_string_equal(config_find_runtime(&c, "")->name, "runc");
  config_free(&c);
}

static void
test_dotted_keys_escapes_and_inline_tables(void **state)
{
  struct crid_config c;

  config_init(&c);
  merge_ok(&c, "crid.log_level = 'warning'\n"
               "crid.api.listen = \"/tmp/caf\\u00e9 \\\"q\\\"\\tx.sock\"\n"
               "[crid.runtime]\n"
               "runtimes.youki = { runtime_path = '/usr/bin/youki', "
               "allowed_annotations = [] }\n"
               "[crid.image]\n"
               "registries.\"quay.io\".mirrors = [ ]\n");
  assert_string_equal(c.log_level, "warn");
  assert_string_equal(c.listen, "/tmp/caf\xc3\xa9 \"q\"\tx.sock");
  assert_string_equal(config_find_runtime(&c, "youki")->runtime_path, "/usr/bin/youki");
  assert_non_null(config_find_registry(&c, "quay.io"));
  config_free(&c);
}

struct error_case
{
  const char *text;
  const char *message;
};

static const struct error_case error_cases[] = {
  /* syntax */
  { "[crid]\nroot =\n", "test.conf:2: missing value" },
  { "[crid]\nroot = \"/tmp/unterminated\n", "test.conf:2: unterminated string" },
  { "[crid\nroot = \"/tmp/x\"\n",
    "test.conf:1: expected ']' to close the table header, found end of line" },
  { "[crid]\n\n\nlog_level \"info\"\n",
    "test.conf:4: expected '=' after key log_level, found '\"'" },
  { "[crid]\nlog_level = \"info\" trailing\n", "test.conf:2: expected end of line, found 't'" },
  { "[crid]\nroot = \"/a\\qb\"\n", "test.conf:2: invalid escape sequence \\q" },
  { "[crid]\nroot = \"/a\"\n\nroot = \"/b\"\n",
    "test.conf:4: duplicate key crid.root (first defined at line 2)" },
  { "crid.root = \"/a\"\n[crid]\n",
    "test.conf:2: table [crid] was already defined by dotted keys at line 1" },
  { "[crid.api]\n[crid]\n[crid.api]\n",
    "test.conf:3: duplicate table [crid.api] (first defined at line 1)" },
  /* unknown keys and tables */
  { "# a comment\n[crid.runtime]\ncgroup_mangler = 1\n",
    "test.conf:3: key crid.runtime.cgroup_mangler: unknown key" },
  { "# a comment\n[crid]\nno_such_key = 1\n", "test.conf:3: key crid.no_such_key: unknown key" },
  { "[crid.metrics]\nenable = true\n", "test.conf:2: key crid.metrics.enable: unknown key" },
  { "foo = 1\n", "test.conf:1: key foo: unknown key" },
  { "[crid.nonsense]\nx = 1\n", "test.conf:1: unknown table [crid.nonsense]" },
  { "[crio.runtime]\n", "test.conf:1: unknown table [crio]" },
  { "[crid]\nnetwork.cni.dir = \"/x\"\n", "test.conf:2: unknown table [crid.network.cni]" },
  { "[crid.runtime.runtimes.crun]\nruntime_type = \"oci\"\n",
    "test.conf:2: key crid.runtime.runtimes.crun.runtime_type: unknown key" },
  /* wrong types */
  { "[crid.metrics]\nmetrics_port = \"lots\"\n",
    "test.conf:2: key crid.metrics.metrics_port: expected an integer, got a string" },
  { "[crid.metrics]\nenable_metrics = 1\n",
    "test.conf:2: key crid.metrics.enable_metrics: expected a boolean, got an integer" },
  { "[crid]\nroot = [\"/a\"]\n", "test.conf:2: key crid.root: expected a string, got an array" },
  { "[crid]\nroot = {a = \"/b\"}\n", "test.conf:2: key crid.root: expected a string, got a table" },
  { "[crid.network]\nplugin_dirs = \"/opt/cni/bin\"\n",
    "test.conf:2: key crid.network.plugin_dirs: expected an array of strings, got a string" },
  { "[crid.network]\nplugin_dirs = [\n  \"/opt/cni/bin\",\n  42,\n]\n",
    "test.conf:4: key crid.network.plugin_dirs: expected an array of strings, item 2 is an "
    "integer" },
  { "[crid]\napi = 1\n", "test.conf:2: key crid.api: expected a table, got an integer" },
  { "crid = \"x\"\n", "test.conf:1: key crid: expected a table, got a string" },
  { "[crid.runtime.runtimes]\ncrun = \"/usr/bin/crun\"\n",
    "test.conf:2: key crid.runtime.runtimes.crun: expected a table (a runtime handler), got a "
    "string" },
  { "[crid.image.registries.\"127.0.0.1:5000\"]\ninsecure = \"yes\"\n",
    "test.conf:2: key crid.image.registries.\"127.0.0.1:5000\".insecure: expected a boolean, got "
    "a string" },
  /* bad values */
  { "[crid.runtime]\ncgroup_manager = \"foo\"\n",
    "test.conf:2: key crid.runtime.cgroup_manager: must be one of cgroupfs, systemd (got "
    "\"foo\")" },
  { "[crid]\nlog_level = \"loud\"\n",
    "test.conf:2: key crid.log_level: must be one of fatal, error, warn, info, debug, trace (got "
    "\"loud\")" },
  { "[crid.api]\nstream_port = -1\n",
    "test.conf:2: key crid.api.stream_port: must be between 0 and 65535 (got -1)" },
  { "[crid.metrics]\nmetrics_port = 65536\n",
    "test.conf:2: key crid.metrics.metrics_port: must be between 0 and 65535 (got 65536)" },
  { "[crid.runtime]\nshm_size = 0\n",
    "test.conf:2: key crid.runtime.shm_size: must be at least 1 (got 0)" },
  { "[crid.image]\nmax_concurrent_downloads = 65\n",
    "test.conf:2: key crid.image.max_concurrent_downloads: must be between 1 and 64 (got 65)" },
  { "[crid.image]\npull_progress_timeout = -5\n",
    "test.conf:2: key crid.image.pull_progress_timeout: must be between 0 and 2147483647 (got "
    "-5)" },
  { "[crid]\nroot = \"var/lib/crid\"\n",
    "test.conf:2: key crid.root: must be an absolute path (got \"var/lib/crid\")" },
  { "[crid]\nstate_dir = \"\"\n", "test.conf:2: key crid.state_dir: must be an absolute path (got "
                                  "\"\")" },
  { "[crid.api]\nlisten = \"crid.sock\"\n",
    "test.conf:2: key crid.api.listen: must be an absolute path (got \"crid.sock\")" },
  { "[crid.api]\nstream_address = \"\"\n",
    "test.conf:2: key crid.api.stream_address: must not be empty" },
  { "[crid.runtime]\nconmon = \"crid-conmon\"\n",
    "test.conf:2: key crid.runtime.conmon: must be an absolute path (got \"crid-conmon\")" },
  { "[crid.runtime.runtimes.crun]\nruntime_path = \"crun\"\n",
    "test.conf:2: key crid.runtime.runtimes.crun.runtime_path: must be an absolute path (got "
    "\"crun\")" },
  { "[crid.network]\nnetwork_dir = \"net.d\\n\"\n",
    "test.conf:2: key crid.network.network_dir: must be an absolute path (got \"net.d\\n\")" },
  { "[crid.network]\nplugin_dirs = [\"/a\",\n\"opt\"]\n",
    "test.conf:3: key crid.network.plugin_dirs: item 2 must be an absolute path (got \"opt\")" },
  { "[crid]\nroot = \"/a\\u0000b\"\n", "test.conf:2: key crid.root: must not contain a NUL "
                                       "character" },
  { "[crid.runtime.runtimes.\"..\"]\n",
    "test.conf:1: key crid.runtime.runtimes.\"..\": invalid runtime handler name" },
  { "[crid.runtime.runtimes.\"a/b\"]\n",
    "test.conf:1: key crid.runtime.runtimes.\"a/b\": invalid runtime handler name" },
  { "[crid.image.registries.\"https://docker.io\"]\n",
    "test.conf:1: key crid.image.registries.\"https://docker.io\": invalid registry name" },
  { "[crid.image.registries.\"\"]\n",
    "test.conf:1: key crid.image.registries.\"\": invalid registry name" },
  { "[crid.image.registries.\"quay.io\"]\nmirrors = [\"\"]\n",
    "test.conf:2: key crid.image.registries.\"quay.io\".mirrors: item 1 must not be empty" },
};

static void
test_errors_name_file_line_and_key(void **state)
{
  for (size_t i = 0; i < sizeof error_cases / sizeof error_cases[0]; i++)
    {
      struct crid_config c;
      struct error err = ERROR_INIT;

      config_init(&c);
      if (merge(&c, error_cases[i].text, &err) == 0)
        fail_msg("accepted: %s", error_cases[i].text);
      assert_int_equal(err.code, EINVAL);
      assert_string_equal(err.message, error_cases[i].message);
      error_clear(&err);
      config_free(&c);
    }
}

/* A file with an error anywhere changes nothing, even keys before it. */
static void
test_failed_merge_changes_nothing(void **state)
{
  struct crid_config c, fresh;
  struct error err = ERROR_INIT;

  config_init(&c);
  config_init(&fresh);
  assert_int_equal(merge(&c,
                         "[crid]\nroot = \"/elsewhere\"\n"
                         "[crid.runtime.runtimes.new]\nruntime_path = \"/x\"\n"
                         "[crid.metrics]\nmetrics_port = 70000\n",
                         &err),
                   -1);
  assert_string_equal(err.message,
                      "test.conf:6: key crid.metrics.metrics_port: must be between 0 and 65535 "
                      "(got 70000)");
  assert_config_equal(&c, &fresh);
  error_clear(&err);
  config_free(&c);
  config_free(&fresh);
}

static void
test_later_merge_overrides_single_keys(void **state)
{
  struct crid_config c;

  config_init(&c);
  merge_ok(&c, "[crid.runtime.runtimes.runc]\nruntime_path = \"/opt/runc\"\n"
               "allowed_annotations = [\"a\"]\n"
               "[crid.network]\nplugin_dirs = [\"/a\", \"/b\", \"/c\"]\n");
  merge_ok(&c, "[crid.runtime.runtimes.runc]\nruntime_root = \"/run/r\"\n"
               "[crid.network]\nplugin_dirs = [\"/d\"]\n");
  assert_string_equal(c.runtimes[1].runtime_path, "/opt/runc");
  assert_string_equal(c.runtimes[1].runtime_root, "/run/r");
  assert_string_equal(c.runtimes[1].allowed_annotations[0], "a");
  /* An array is replaced as a whole. */
  assert_int_equal(strv_length(c.plugin_dirs), 1);
  assert_string_equal(c.plugin_dirs[0], "/d");
  config_free(&c);
}

/* -------------------------------------------------------------- files */

static char *
make_temp_dir(void)
{
  char *dir = xstrdup("/tmp/crid-config-XXXXXX");
  assert_non_null(mkdtemp(dir));
  return dir;
}

static void
write_text(const char *dir, const char *name, const char *text)
{
  cleanup_free char *path = xasprintf("%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  assert_int_equal(fclose(f), 0);
}

static void
remove_tree(const char *dir)
{
  cleanup_free char *command = xasprintf("rm -rf '%s'", dir);
  assert_int_equal(system(command), 0);
}

static void
test_dropins_in_lexical_order(void **state)
{
  cleanup_free char *dir = make_temp_dir();
  cleanup_free char *main_file = xasprintf("%s/crid.conf", dir);
  cleanup_free char *conf_d = xasprintf("%s/conf.d", dir);
  cleanup_free char *subdir = xasprintf("%s/conf.d/50-dir.conf", dir);
  struct crid_config c;
  struct error err = ERROR_INIT;

  assert_int_equal(mkdir(conf_d, 0700), 0);
  assert_int_equal(mkdir(subdir, 0700), 0);
  write_text(dir, "crid.conf",
             "[crid]\nlog_level = \"info\"\nroot = \"/main\"\n"
             "[crid.runtime]\ncgroup_manager = \"systemd\"\n");
  /* Written in reverse order so directory order cannot pass by accident. */
  write_text(conf_d, "20-b.conf", "[crid]\nlog_level = \"error\"\n");
  write_text(conf_d, "10-a.conf",
             "[crid]\nlog_level = \"warn\"\nstate_dir = \"/from-a\"\n"
             "[crid.runtime.runtimes.crun]\nruntime_root = \"/a-root\"\n");
  write_text(conf_d, "90-z.conf.disabled", "[crid]\nlog_level = \"trace\"\n");
  write_text(conf_d, "README", "not toml at all [[[");
  write_text(conf_d, ".hidden.conf", "not toml either [[[");

  config_init(&c);
  assert_int_equal(config_load(&c, main_file, true, conf_d, &err), 0);
  assert_string_equal(c.log_level, "error");
  assert_string_equal(c.root, "/main");
  assert_string_equal(c.state_dir, "/from-a");
  assert_string_equal(c.cgroup_manager, "systemd");
  assert_string_equal(c.runtimes[0].runtime_root, "/a-root");
  assert_string_equal(c.runtimes[0].runtime_path, "/usr/bin/crun");
  config_free(&c);

  /* An error in a drop-in names the drop-in. */
  write_text(conf_d, "30-bad.conf", "\n[crid.metrics]\nbogus = 1\n");
  config_init(&c);
  assert_int_equal(config_load(&c, main_file, true, conf_d, &err), -1);
  {
    cleanup_free char *expected
        = xasprintf("%s/30-bad.conf:3: key crid.metrics.bogus: unknown key", conf_d);
    assert_string_equal(err.message, expected);
  }
  error_clear(&err);
  config_free(&c);
  remove_tree(dir);
}

static void
test_missing_files(void **state)
{
  cleanup_free char *dir = make_temp_dir();
  cleanup_free char *missing = xasprintf("%s/nope.conf", dir);
  cleanup_free char *missing_dir = xasprintf("%s/nope.d", dir);
  cleanup_free char *expected = xasprintf("open %s: No such file or directory", missing);
  struct crid_config c;
  struct error err = ERROR_INIT;

  config_init(&c);
  assert_int_equal(config_load(&c, missing, false, missing_dir, &err), 0);
  assert_int_equal(config_load(&c, NULL, false, NULL, &err), 0);
  assert_int_equal(config_load(&c, missing, true, missing_dir, &err), -1);
  assert_int_equal(err.code, ENOENT);
  assert_string_equal(err.message, expected);
  error_clear(&err);
  assert_int_equal(config_merge_file(&c, missing, &err), -1);
  error_clear(&err);
  config_free(&c);
  remove_tree(dir);
}

/* ----------------------------------------------------------- finalize */

static void
assert_finalize_error(struct crid_config *c, const char *expected)
{
  struct error err = ERROR_INIT;
  assert_int_equal(config_finalize(c, &err), -1);
  assert_int_equal(err.code, EINVAL);
  assert_string_equal(err.message, expected);
  error_clear(&err);
}

static void
test_finalize_errors(void **state)
{
  struct crid_config c;

  config_init(&c);
  merge_ok(&c, "[crid.runtime]\ndefault_runtime = \"nope\"\n");
  assert_finalize_error(
      &c, "key crid.runtime.default_runtime: no runtime handler \"nope\" is configured "
          "(configured: crun, runc)");
  config_free(&c);

  /* Values that came from flags rather than files are checked, too. */
  config_init(&c);
  free(c.root);
  c.root = xstrdup("relative/root");
  assert_finalize_error(&c, "key crid.root: must be an absolute path (got \"relative/root\")");
  config_free(&c);

  config_init(&c);
  free(c.log_level);
  c.log_level = xstrdup("chatty");
  assert_finalize_error(&c, "key crid.log_level: must be one of fatal, error, warn, info, "
                            "debug, trace (got \"chatty\")");
  config_free(&c);

  config_init(&c);
  free(c.log_level);
  c.log_level = xstrdup("TRACE");
  finalize_ok(&c);
  assert_string_equal(c.log_level, "trace");
  config_free(&c);
}

static void
test_runtime_path_from_PATH(void **state)
{
  cleanup_free char *dir = make_temp_dir();
  cleanup_free char *tool = xasprintf("%s/my-runtime", dir);
  cleanup_free char *old_path = getenv("PATH") ? xstrdup(getenv("PATH")) : NULL;
  cleanup_free char *search = xasprintf("relative:%s", dir);
  struct crid_config c;

  setenv("PATH", "/nonexistent", 1);
  config_init(&c);
  merge_ok(&c, "[crid.runtime.runtimes.my-runtime]\n");
  assert_finalize_error(&c, "key crid.runtime.runtimes.my-runtime.runtime_path: not set, and no "
                            "executable my-runtime in $PATH");
  config_free(&c);

  write_text(dir, "my-runtime", "#!/bin/sh\n");
  assert_int_equal(chmod(tool, 0755), 0);
  setenv("PATH", search, 1);
  config_init(&c);
  merge_ok(&c, "[crid.runtime.runtimes.my-runtime]\n");
  finalize_ok(&c);
  assert_string_equal(config_find_runtime(&c, "my-runtime")->runtime_path, tool);
  config_free(&c);

  if (old_path)
    setenv("PATH", old_path, 1);
  else
    unsetenv("PATH");
  remove_tree(dir);
}

/* ------------------------------------------------------------- output */

static void
set_string(char **field, const char *value)
{
  free(*field);
  *field = xstrdup(value);
}

static void
test_toml_round_trip(void **state)
{
  struct crid_config c, again;
  cleanup_free char *first = NULL;
  cleanup_free char *second = NULL;
  struct error err = ERROR_INIT;

  config_init(&c);
  merge_ok(&c, full_config);
  /* pause_image must be a reference: free text goes in stream_address. */
  set_string(&c.stream_address, "odd \"quoted\" \\ back\\slash\ttab\nnewline \x01 caf\xc3\xa9");
  set_string(&c.conmon, "/opt/'single'");
  merge_ok(&c, "[crid.image.registries.\"[::1]:5000\"]\n"
               "[crid.runtime.runtimes.\"x.y\"]\nruntime_path = \"/x\"\n"
               "allowed_annotations = [\"a=b\", \"#not a comment\", \"]\"]\n");
  finalize_ok(&c);
  first = config_to_toml(&c);
  assert_non_null(strstr(first, "[crid.image.registries.\"127.0.0.1:5000\"]\n"));
  assert_non_null(strstr(first, "[crid.runtime.runtimes.\"x.y\"]\n"));
  assert_non_null(strstr(first, "\n# "));

  config_init(&again);
  if (config_merge_text(&again, "again.conf", first, strlen(first), &err) < 0)
    fail_msg("output does not read back: %s\n%s", error_message(&err), first);
  finalize_ok(&again);
  assert_config_equal(&c, &again);
  second = config_to_toml(&again);
  assert_string_equal(first, second);
  config_free(&c);
  config_free(&again);
}

static void
test_toml_output_of_defaults_reads_back(void **state)
{
  struct crid_config c, again;
  cleanup_free char *text = NULL;

  config_init(&c);
  finalize_ok(&c);
  text = config_to_toml(&c);
  /* Every line is a comment, a header, a key or blank. */
  for (char *line = text; *line; line = strchr(line, '\n') + 1)
    assert_true(*line == '#' || *line == '[' || *line == '\n' || strchr(line, '=') != NULL);
  config_init(&again);
  merge_ok(&again, text);
  finalize_ok(&again);
  assert_config_equal(&c, &again);
  config_free(&c);
  config_free(&again);
}

static void
test_json_output(void **state)
{
  struct crid_config c;
  struct json_writer *writer = json_writer_new(false);
  cleanup_free char *text = NULL;
  cleanup_json struct json_value *doc = NULL;
  struct error err = ERROR_INIT;
  const struct json_value *crid, *runtime, *registry;
  int64_t n;

  config_init(&c);
  merge_ok(&c, full_config);
  finalize_ok(&c);
  config_write_json(&c, writer);
  text = json_writer_finish(writer, NULL);
  doc = json_parse(text, strlen(text), &err);
  assert_non_null(doc);
  crid = json_object_get(doc, "crid");
  assert_string_equal(json_object_get_string(crid, "root"), "/srv/crid");
  assert_string_equal(json_object_get_string(json_object_get(crid, "api"), "listen"),
                      "/run/crid-test/crid.sock");
  runtime = json_object_get(crid, "runtime");
  assert_true(json_integer(json_object_get(runtime, "shm_size"), &n));
  assert_int_equal(n, 0x10000000);
  assert_string_equal(
      json_object_get_string(json_object_get(json_object_get(runtime, "runtimes"), "kata-qemu"),
                             "runtime_path"),
      "/opt/kata/bin/kata-runtime");
  registry = json_object_get(json_object_get(json_object_get(crid, "image"), "registries"),
                             "127.0.0.1:5000");
  assert_true(json_bool(json_object_get(registry, "insecure")));
  assert_int_equal(json_array_size(json_object_get(registry, "mirrors")), 0);
  assert_int_equal(
      json_array_size(json_object_get(json_object_get(crid, "network"), "plugin_dirs")), 2);
  assert_true(json_bool(json_object_get(json_object_get(crid, "metrics"), "enable_metrics")));
  config_free(&c);
}

/* config_diff: what a reload sees. */
struct seen_changes
{
  char lines[16][128];
  size_t n;
};

static void
record_change(void *arg, const struct config_change *change)
{
  struct seen_changes *seen = arg;
  static const char *const kinds[] = { "changed", "added", "removed" };

  assert_true(seen->n < 16);
  snprintf(seen->lines[seen->n++], sizeof seen->lines[0], "%s %s %s %s", change->table,
           change->item ? change->item : "-", change->key ? change->key : "-", kinds[change->kind]);
}

static void
test_diff_names_every_changed_key(void **state)
{
  struct crid_config a, b;
  struct seen_changes seen = { 0 };

  config_init(&a);
  config_init(&b);
  merge_ok(&a, "[crid.image.registries.\"r1:5000\"]\ninsecure = true\n"
               "[crid.image.registries.\"gone:5000\"]\nlocation = \"x\"\n");
  merge_ok(&b, "[crid]\nlog_level = \"debug\"\n"
               "[crid.api]\nstream_port = 1234\n"
               "[crid.network]\nplugin_dirs = [\"/opt/cni/bin\"]\n"
               "[crid.image.registries.\"r1:5000\"]\ninsecure = true\nmirrors = [\"m:1\"]\n"
               "[crid.image.registries.\"new:5000\"]\n"
               "[crid.runtime.runtimes.extra]\nruntime_path = \"/bin/true\"\n");
  config_diff(&a, &b, record_change, &seen);
  assert_int_equal(seen.n, 7);
  assert_string_equal(seen.lines[0], "crid - log_level changed");
  assert_string_equal(seen.lines[1], "crid.api - stream_port changed");
  assert_string_equal(seen.lines[2], "crid.runtime.runtimes extra - added");
  assert_string_equal(seen.lines[3], "crid.image.registries gone:5000 - removed");
  assert_string_equal(seen.lines[4], "crid.image.registries r1:5000 mirrors changed");
  assert_string_equal(seen.lines[5], "crid.image.registries new:5000 - added");
  assert_string_equal(seen.lines[6], "crid.network - plugin_dirs changed");

  seen.n = 0;
  config_diff(&b, &b, record_change, &seen);
  assert_int_equal(seen.n, 0);

  /* The registry tables move; the source is left without any. */
  config_move_registries(&a, &b);
  assert_int_equal(a.n_registries, 2);
  assert_non_null(config_find_registry(&a, "new:5000"));
  assert_null(config_find_registry(&a, "gone:5000"));
  assert_int_equal(b.n_registries, 0);
  config_free(&a);
  config_free(&b);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_defaults),
    cmocka_unit_test(test_every_key),
    cmocka_unit_test(test_dotted_keys_escapes_and_inline_tables),
    cmocka_unit_test(test_errors_name_file_line_and_key),
    cmocka_unit_test(test_failed_merge_changes_nothing),
    cmocka_unit_test(test_later_merge_overrides_single_keys),
    cmocka_unit_test(test_dropins_in_lexical_order),
    cmocka_unit_test(test_missing_files),
    cmocka_unit_test(test_finalize_errors),
    cmocka_unit_test(test_runtime_path_from_PATH),
    cmocka_unit_test(test_toml_round_trip),
    cmocka_unit_test(test_toml_output_of_defaults_reads_back),
    cmocka_unit_test(test_json_output),
    cmocka_unit_test(test_diff_names_every_changed_key),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
