#include "pod/oci_runtime.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/process.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#define RUNTIME_TIMEOUT_MS (60 * 1000)
#define RUNTIME_MAX_OUTPUT (256 * 1024)

/* `<runtime> [--systemd-cgroup] --root R`: the options every command
 * takes before its name.  Returns the number of entries written. */
static size_t
global_args(const struct oci_runtime *runtime, const char **argv)
{
  size_t n = 0;

  argv[n++] = runtime->path;
  if (runtime->systemd_cgroup)
    argv[n++] = "--systemd-cgroup";
  argv[n++] = "--root";
  argv[n++] = runtime->root;
  return n;
}

/* Runs `<runtime> <global options> <args...>` with input on its stdin. */
static int
run_runtime_input(const struct oci_runtime *runtime, const char *const *args, const char *input,
                  struct process_result *result, struct error *err)
{
  const char *argv[OCI_RUNTIME_MAX_ARGS];
  size_t n = global_args(runtime, argv);
  struct process_spec spec = { 0 };

  for (size_t i = 0; args[i] && n < OCI_RUNTIME_MAX_ARGS - 1; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  spec.path = runtime->path;
  spec.argv = (char *const *)argv;
  spec.input = input;
  spec.input_len = input ? strlen(input) : 0;
  spec.timeout_ms = RUNTIME_TIMEOUT_MS;
  spec.max_output = RUNTIME_MAX_OUTPUT;
  return process_run(&spec, result, err);
}

static int
run_runtime(const struct oci_runtime *runtime, const char *const *args,
            struct process_result *result, struct error *err)
{
  return run_runtime_input(runtime, args, NULL, result, err);
}

/* The runtime's own words, trimmed, for an error message. */
static const char *
runtime_message(struct process_result *result)
{
  char *text = result->stderr_len ? result->stderr_text : result->stdout_text;
  size_t len = strlen(text);
  while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
    text[--len] = '\0';
  return text;
}

static bool
says_not_found(struct process_result *result)
{
  const char *text = runtime_message(result);
  return strstr(text, "does not exist") || strstr(text, "not found")
         || strstr(text, "No such file");
}

static bool
says_not_running(struct process_result *result)
{
  const char *text = runtime_message(result);
  return strstr(text, "not running") || strstr(text, "process already finished")
         || strstr(text, "No such process") || strstr(text, "stopped");
}

int
oci_runtime_start(const struct oci_runtime *runtime, const char *id, struct error *err)
{
  const char *args[] = { "start", id, NULL };
  struct process_result result;
  int ret = 0;

  if (run_runtime(runtime, args, &result, err) < 0)
    return -1;
  if (result.exit_code != 0)
    ret = error_set(err, EIO, "%s start %s: %s", runtime->name, id, runtime_message(&result));
  process_result_free(&result);
  return ret;
}

int
oci_runtime_kill(const struct oci_runtime *runtime, const char *id, int signo, bool all,
                 struct error *err)
{
  char signal_text[16];
  const char *args_all[] = { "kill", "--all", id, signal_text, NULL };
  const char *args_one[] = { "kill", id, signal_text, NULL };
  struct process_result result;
  int ret = 0;

  snprintf(signal_text, sizeof signal_text, "%d", signo);
  if (run_runtime(runtime, all ? args_all : args_one, &result, err) < 0)
    return -1;
  if (result.exit_code != 0 && !says_not_found(&result) && !says_not_running(&result))
    ret = error_set(err, EIO, "%s kill %s %d: %s", runtime->name, id, signo,
                    runtime_message(&result));
  process_result_free(&result);
  return ret;
}

int
oci_runtime_delete(const struct oci_runtime *runtime, const char *id, struct error *err)
{
  const char *args[] = { "delete", "--force", id, NULL };
  struct process_result result;
  int ret = 0;

  if (run_runtime(runtime, args, &result, err) < 0)
    return -1;
  if (result.exit_code != 0 && !says_not_found(&result))
    ret = error_set(err, EIO, "%s delete %s: %s", runtime->name, id, runtime_message(&result));
  process_result_free(&result);
  return ret;
}

int
oci_runtime_update(const struct oci_runtime *runtime, const char *id, const char *resources_json,
                   struct error *err)
{
  const char *args[] = { "update", "--resources", "-", id, NULL };
  struct process_result result;
  int ret = 0;

  if (run_runtime_input(runtime, args, resources_json, &result, err) < 0)
    return -1;
  if (result.exit_code != 0)
    ret = error_set(err, EIO, "%s update %s: %s", runtime->name, id, runtime_message(&result));
  process_result_free(&result);
  return ret;
}

size_t
oci_runtime_exec_argv(const struct oci_runtime *runtime, const char *id,
                      const struct oci_exec_options *options, const char **argv)
{
  size_t n = global_args(runtime, argv);

  argv[n++] = "exec";
  argv[n++] = "--detach";
  argv[n++] = "--process";
  argv[n++] = options->process_path;
  argv[n++] = "--pid-file";
  argv[n++] = options->pid_file;
  if (options->console_socket)
    {
      argv[n++] = "--tty";
      argv[n++] = "--console-socket";
      argv[n++] = options->console_socket;
    }
  argv[n++] = id;
  argv[n] = NULL;
  return n;
}

static enum oci_status
status_from_text(const char *text)
{
  static const struct
  {
    const char *name;
    enum oci_status status;
  } names[] = {
    { "creating", OCI_STATUS_CREATING }, { "created", OCI_STATUS_CREATED },
    { "running", OCI_STATUS_RUNNING },   { "stopped", OCI_STATUS_STOPPED },
    { "paused", OCI_STATUS_RUNNING },
  };
  for (size_t i = 0; text && i < sizeof names / sizeof names[0]; i++)
    if (strcmp(text, names[i].name) == 0)
      return names[i].status;
  return OCI_STATUS_UNKNOWN;
}

int
oci_runtime_state(const struct oci_runtime *runtime, const char *id, enum oci_status *status,
                  pid_t *pid, struct error *err)
{
  const char *args[] = { "state", id, NULL };
  struct process_result result;
  cleanup_json struct json_value *state = NULL;
  int64_t value = 0;

  *status = OCI_STATUS_UNKNOWN;
  *pid = 0;
  if (run_runtime(runtime, args, &result, err) < 0)
    return -1;
  if (result.exit_code != 0)
    {
      int ret = 0;
      if (says_not_found(&result))
        *status = OCI_STATUS_ABSENT;
      else
        ret = error_set(err, EIO, "%s state %s: %s", runtime->name, id, runtime_message(&result));
      process_result_free(&result);
      return ret;
    }
  state = json_parse(result.stdout_text, result.stdout_len, err);
  process_result_free(&result);
  if (state == NULL)
    return error_wrap(err, "%s state %s", runtime->name, id);
  *status = status_from_text(json_object_get_string(state, "status"));
  if (json_integer(json_object_get(state, "pid"), &value))
    *pid = (pid_t)value;
  return 0;
}

int
oci_runtime_list(const struct oci_runtime *runtime, char ***ids, struct error *err)
{
  const char *args[] = { "list", "--format", "json", NULL };
  struct process_result result;
  cleanup_json struct json_value *list = NULL;
  size_t n = 0;

  *ids = NULL;
  if (run_runtime(runtime, args, &result, err) < 0)
    return -1;
  if (result.exit_code != 0)
    {
      int ret = error_set(err, EIO, "%s list: %s", runtime->name, runtime_message(&result));
      process_result_free(&result);
      return ret;
    }
  list = json_parse(result.stdout_text, result.stdout_len, err);
  process_result_free(&result);
  if (list == NULL)
    return error_wrap(err, "%s list", runtime->name);
  /* runc says null for none. */
  *ids = xcalloc(json_array_size(list) + 1, sizeof **ids);
  for (size_t i = 0; i < json_array_size(list); i++)
    {
      const char *id = json_object_get_string(json_array_at(list, i), "id");
      if (id)
        (*ids)[n++] = xstrdup(id);
    }
  return 0;
}

static bool
lists_string(const struct json_value *array, const char *s)
{
  for (size_t i = 0; i < json_array_size(array); i++)
    if (json_string(json_array_at(array, i))
        && strcmp(json_string(json_array_at(array, i)), s) == 0)
      return true;
  return false;
}

int
oci_runtime_features(const char *path, struct oci_runtime_features *out, struct error *err)
{
  const char *argv[] = { path, "features", NULL };
  struct process_spec spec = { .path = path,
                               .argv = (char *const *)argv,
                               .timeout_ms = RUNTIME_TIMEOUT_MS,
                               .max_output = RUNTIME_MAX_OUTPUT };
  struct process_result result = { 0 };
  struct error parse_err = ERROR_INIT;
  struct json_value *features;

  memset(out, 0, sizeof *out);
  out->user_namespaces = true;
  if (process_run(&spec, &result, err) < 0)
    return error_wrap(err, "%s features", path);
  /* Runtimes older than the features command know no more than the OCI
   * basics: nothing to report. */
  features = result.exit_code == 0 ? json_parse(result.stdout_text, result.stdout_len, &parse_err)
                                   : NULL;
  error_clear(&parse_err);
  if (features)
    {
      const struct json_value *namespaces
          = json_object_get(json_object_get(features, "linux"), "namespaces");
      out->recursive_read_only = lists_string(json_object_get(features, "mountOptions"), "rro");
      out->user_namespaces = namespaces == NULL || lists_string(namespaces, "user");
    }
  json_free(features);
  process_result_free(&result);
  return 0;
}

void
oci_runtime_unpin_binary(const char *pinned)
{
  /* A crid killed twice may have left more than one mount stacked. */
  for (int i = 0; i < 8 && umount2(pinned, MNT_DETACH) == 0; i++)
    ;
  unlink(pinned);
}

int
oci_runtime_pin_binary(const char *binary, const char *dir, const char *name, char **pinned,
                       struct error *err)
{
  cleanup_free char *target = xasprintf("%s/%s", dir, name);
  int fd;

  if (mkdir_p(dir, 0700, err) < 0)
    return -1;
  oci_runtime_unpin_binary(target); /* left by a crid that did not stop cleanly */
  fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0500);
  if (fd < 0)
    return error_set_errno(err, errno, "create %s", target);
  close(fd);
  if (mount(binary, target, NULL, MS_BIND, NULL) < 0
      || mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0)
    {
      int saved = errno;
      oci_runtime_unpin_binary(target);
      return error_set_errno(err, saved, "bind %s read-only at %s", binary, target);
    }
  *pinned = steal_pointer(&target);
  return 0;
}
