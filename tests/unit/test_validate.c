/* Unit tests of crid/validate.c (the checks every request passes where it
 * enters) and of the bounded-input rules it shares: the UTF-8 checker and
 * sanitizer, path_has_dot_dot and time_remaining_ms (common/util.c), the
 * JSON writer's UTF-8 (common/json.c), oci_check_mount and
 * oci_check_resources (pod/oci_spec.c), the state_dir length check and
 * the duration clamp (crid/config.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "crid/config.h"
#include "crid/validate.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/toml.h"
#include "common/util.h"
#include "pod/oci_spec.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- UTF-8 -------------------------------------------------------------- */

/* An independent decoder: decodes each code point, then checks that it
 * used its shortest form, is no surrogate and is at most U+10FFFF. */
static size_t
reference_prefix(const unsigned char *s, size_t len)
{
  size_t i = 0;

  while (i < len)
    {
      unsigned c = s[i];
      uint32_t cp, min;
      size_t n;

      if (c < 0x80)
        {
          i++;
          continue;
        }
      if ((c & 0xe0) == 0xc0)
        n = 2, cp = c & 0x1f, min = 0x80;
      else if ((c & 0xf0) == 0xe0)
        n = 3, cp = c & 0x0f, min = 0x800;
      else if ((c & 0xf8) == 0xf0)
        n = 4, cp = c & 0x07, min = 0x10000;
      else
        return i;
      if (i + n > len)
        return i;
      for (size_t k = 1; k < n; k++)
        {
          if ((s[i + k] & 0xc0) != 0x80)
            return i;
          cp = cp << 6 | (s[i + k] & 0x3f);
        }
      if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return i;
      i += n;
    }
  return i;
}

static void
assert_utf8(const char *s, size_t len, size_t want_prefix)
{
  assert_int_equal(utf8_valid_prefix(s, len), want_prefix);
  assert_int_equal(utf8_is_valid(s, len), want_prefix == len);
}

static void
test_utf8_known_sequences(void **state)
{
  assert_utf8("", 0, 0);
  assert_utf8("plain ascii", 11, 11);
  assert_utf8("x\xc3\xa9", 3, 3);        /* U+00E9 */
  assert_utf8("\xe2\x98\x83", 3, 3);     /* U+2603 */
  assert_utf8("\xed\x9f\xbf", 3, 3);     /* U+D7FF, before the surrogates */
  assert_utf8("\xee\x80\x80", 3, 3);     /* U+E000, after them */
  assert_utf8("\xef\xbf\xbf", 3, 3);     /* U+FFFF */
  assert_utf8("\xf0\x9f\x98\x80", 4, 4); /* U+1F600 */
  assert_utf8("\xf4\x8f\xbf\xbf", 4, 4); /* U+10FFFF, the last */
  assert_utf8("ab\xff", 3, 2);           /* never in UTF-8 */
  assert_utf8("ab\xfe", 3, 2);
  assert_utf8("\x80", 1, 0);             /* a lone continuation */
  assert_utf8("\xc0\x80", 2, 0);         /* overlong NUL */
  assert_utf8("\xc1\xbf", 2, 0);         /* overlong */
  assert_utf8("\xe0\x80\x80", 3, 0);     /* overlong */
  assert_utf8("\xe0\x9f\xbf", 3, 0);     /* overlong U+07FF */
  assert_utf8("\xf0\x80\x80\x80", 4, 0); /* overlong */
  assert_utf8("\xf0\x8f\xbf\xbf", 4, 0); /* overlong U+FFFF */
  assert_utf8("a\xed\xa0\x80", 4, 1);    /* surrogate U+D800 */
  assert_utf8("a\xed\xbf\xbf", 4, 1);    /* surrogate U+DFFF */
  assert_utf8("\xf4\x90\x80\x80", 4, 0); /* U+110000 */
  assert_utf8("\xf5\x80\x80\x80", 4, 0); /* lead byte beyond */
  assert_utf8("ok\xe2\x98", 4, 2);       /* truncated */
  assert_utf8("ok\xf0\x9f\x98", 5, 2);   /* truncated */
  assert_utf8("\xc3\xa9\xc3", 3, 2);     /* truncated after a valid one */
  assert_utf8("\xe2\x28\xa1", 3, 0);     /* bad continuation */
  assert_utf8("\xc3\xa9 \xe2\x98\x83 ok", 9, 9);
}

/* Every string of one, two and three bytes, against the reference. */
static void
test_utf8_exhaustive_short_strings(void **state)
{
  unsigned char s[3];

  for (unsigned a = 0; a < 256; a++)
    {
      s[0] = a;
      assert_int_equal(utf8_valid_prefix((char *)s, 1), reference_prefix(s, 1));
      for (unsigned b = 0; b < 256; b++)
        {
          s[1] = b;
          assert_int_equal(utf8_valid_prefix((char *)s, 2), reference_prefix(s, 2));
          /* Only lead bytes make a third byte interesting. */
          if (a < 0xe0 && b < 0xe0)
            continue;
          for (unsigned c = 0; c < 256; c++)
            {
              s[2] = c;
              if (utf8_valid_prefix((char *)s, 3) != reference_prefix(s, 3))
                fail_msg("%02x %02x %02x: %zu, reference %zu", a, b, c,
                         utf8_valid_prefix((char *)s, 3), reference_prefix(s, 3));
            }
        }
    }
}

static uint64_t
next_random(uint64_t *x)
{
  /* xorshift64*: deterministic, so a failure reproduces. */
  *x ^= *x >> 12;
  *x ^= *x << 25;
  *x ^= *x >> 27;
  return *x * 2685821657736338717ULL;
}

/* Bytes biased toward what makes UTF-8 interesting: lead bytes,
 * continuations and the edges of the valid ranges. */
static unsigned char
random_byte(uint64_t *x)
{
  static const unsigned char edges[]
      = { 0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2,
          0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xf7, 0xf8, 0xfe, 0xff };
  uint64_t r = next_random(x);

  switch (r % 5)
    {
    case 0:
      return 'a' + (r >> 8) % 26;
    case 1:
      return 0x80 + (r >> 8) % 0x40;
    case 2:
      return 0xc0 + (r >> 8) % 0x38;
    case 3:
      return edges[(r >> 8) % sizeof edges];
    default:
      return (unsigned char)(r >> 8);
    }
}

static size_t
encode(uint32_t cp, unsigned char *out)
{
  if (cp < 0x80)
    return out[0] = cp, 1;
  if (cp < 0x800)
    return out[0] = 0xc0 | cp >> 6, out[1] = 0x80 | (cp & 0x3f), 2;
  if (cp < 0x10000)
    return out[0] = 0xe0 | cp >> 12, out[1] = 0x80 | ((cp >> 6) & 0x3f),
           out[2] = 0x80 | (cp & 0x3f), 3;
  return out[0] = 0xf0 | cp >> 18, out[1] = 0x80 | ((cp >> 12) & 0x3f),
         out[2] = 0x80 | ((cp >> 6) & 0x3f), out[3] = 0x80 | (cp & 0x3f), 4;
}

/* Random strings against the reference (utf8_valid_prefix and the
 * utf8_is_valid the TOML reader uses too); valid strings built from random code
 * points pass, and each stays agreed on after one random byte changes. */
static void
test_utf8_fuzz(void **state)
{
  uint64_t x = 0x9e3779b97f4a7c15ULL;
  unsigned char s[64];

  for (int round = 0; round < 300000; round++)
    {
      size_t len = next_random(&x) % 24;
      for (size_t i = 0; i < len; i++)
        s[i] = random_byte(&x);
      size_t got = utf8_valid_prefix((char *)s, len);
      if (got != reference_prefix(s, len))
        fail_msg("round %d: %zu, reference %zu", round, got, reference_prefix(s, len));
      assert_int_equal(reference_prefix(s, len) == len, utf8_is_valid((char *)s, len));
    }
  for (int round = 0; round < 100000; round++)
    {
      size_t len = 0;
      while (len < sizeof s - 4 && next_random(&x) % 8 != 0)
        {
          uint32_t cp = next_random(&x) % 0x110000;
          if (cp >= 0xd800 && cp <= 0xdfff)
            continue;
          len += encode(cp, s + len);
        }
      assert_true(utf8_is_valid((char *)s, len));
      if (len == 0)
        continue;
      s[next_random(&x) % len] = random_byte(&x);
      assert_int_equal(utf8_valid_prefix((char *)s, len), reference_prefix(s, len));
    }
}

/* Every byte outside a well-formed sequence becomes U+FFFD, so what crid
 * writes as JSON (config.json, state.json) always reads back. */
static void
test_utf8_sanitize_and_json_strings(void **state)
{
  size_t len;
  cleanup_free char *out = utf8_sanitize("a\xff"
                                         "b\xe2\x98",
                                         5, &len);
  cleanup_free char *text = NULL;
  cleanup_json struct json_value *value = NULL;
  struct json_writer *w = json_writer_new(false);
  struct error err = ERROR_INIT;

  assert_int_equal(len, 11);
  assert_memory_equal(out,
                      "a\xef\xbf\xbd"
                      "b\xef\xbf\xbd\xef\xbf\xbd",
                      12);
  free(out);
  out = utf8_sanitize("ok \xc3\xa9", 5, &len);
  assert_int_equal(len, 5);
  assert_string_equal(out, "ok \xc3\xa9");

  json_begin_object(w);
  json_write_key(w, "log\xff");
  json_write_string(w, "/var/log/\xc0\x80.log");
  json_end_object(w);
  text = json_writer_finish(w, &len);
  value = json_parse(text, len, &err);
  if (value == NULL)
    fail_msg("%s", error_message(&err));
  assert_string_equal(json_object_get_string(value, "log\xef\xbf\xbd"),
                      "/var/log/\xef\xbf\xbd\xef\xbf\xbd.log");
}

/* ---- a request to validate ----------------------------------------------- */

struct fixture
{
  Runtime__V1__CreateContainerRequest request;
  Runtime__V1__ContainerConfig config;
  Runtime__V1__ContainerMetadata metadata;
  Runtime__V1__ImageSpec image;
  char *command[3];
  Runtime__V1__Mount mount;
  Runtime__V1__Mount *mounts[1];
  Runtime__V1__KeyValue env;
  Runtime__V1__KeyValue *envs[1];
  Runtime__V1__ContainerConfig__LabelsEntry label;
  Runtime__V1__ContainerConfig__LabelsEntry *labels[1];
  Runtime__V1__ContainerConfig__AnnotationsEntry annotation;
  Runtime__V1__ContainerConfig__AnnotationsEntry *annotations[1];
  Runtime__V1__LinuxContainerConfig linux_config;
  Runtime__V1__LinuxContainerResources resources;
  Runtime__V1__HugepageLimit huge;
  Runtime__V1__HugepageLimit *huges[1];
  Runtime__V1__LinuxContainerResources__UnifiedEntry unified;
  Runtime__V1__LinuxContainerResources__UnifiedEntry *unifieds[1];
  Runtime__V1__PodSandboxConfig sandbox;
  Runtime__V1__PodSandboxMetadata sandbox_metadata;
  Runtime__V1__PortMapping port;
  Runtime__V1__PortMapping *ports[1];
  char *big; /* a large label value, freed at teardown */
  struct error err;
};

/* A CreateContainerRequest that passes, with one of each thing checked. */
static int
setup(void **state)
{
  struct fixture *f = calloc(1, sizeof *f);

  runtime__v1__create_container_request__init(&f->request);
  runtime__v1__container_config__init(&f->config);
  runtime__v1__container_metadata__init(&f->metadata);
  runtime__v1__image_spec__init(&f->image);
  runtime__v1__mount__init(&f->mount);
  runtime__v1__key_value__init(&f->env);
  runtime__v1__container_config__labels_entry__init(&f->label);
  runtime__v1__container_config__annotations_entry__init(&f->annotation);
  runtime__v1__linux_container_config__init(&f->linux_config);
  runtime__v1__linux_container_resources__init(&f->resources);
  runtime__v1__hugepage_limit__init(&f->huge);
  runtime__v1__linux_container_resources__unified_entry__init(&f->unified);
  runtime__v1__pod_sandbox_config__init(&f->sandbox);
  runtime__v1__pod_sandbox_metadata__init(&f->sandbox_metadata);
  runtime__v1__port_mapping__init(&f->port);

  f->request.pod_sandbox_id = "0123";
  f->request.config = &f->config;
  f->request.sandbox_config = &f->sandbox;
  f->metadata.name = "web";
  f->config.metadata = &f->metadata;
  f->image.image = "busybox:1";
  f->config.image = &f->image;
  f->command[0] = "/bin/sh";
  f->command[1] = "-c";
  f->config.command = f->command;
  f->config.n_command = 2;
  f->config.log_path = "web/0.log";
  f->mount.container_path = "/data";
  f->mount.host_path = "/srv/data";
  f->mounts[0] = &f->mount;
  f->config.mounts = f->mounts;
  f->config.n_mounts = 1;
  f->env.key = "HOME";
  f->env.value.data = (uint8_t *)"/root";
  f->env.value.len = 5;
  f->envs[0] = &f->env;
  f->config.envs = f->envs;
  f->config.n_envs = 1;
  f->label.key = "app";
  f->label.value = "caf\xc3\xa9";
  f->labels[0] = &f->label;
  f->config.labels = f->labels;
  f->config.n_labels = 1;
  f->annotation.key = "note";
  f->annotation.value = "\xe2\x98\x83";
  f->annotations[0] = &f->annotation;
  f->config.annotations = f->annotations;
  f->config.n_annotations = 1;
  f->huge.page_size = "2MB";
  f->huge.limit = 1 << 30;
  f->huges[0] = &f->huge;
  f->resources.hugepage_limits = f->huges;
  f->resources.n_hugepage_limits = 1;
  f->unified.key = "memory.high";
  f->unified.value = "max";
  f->unifieds[0] = &f->unified;
  f->resources.unified = f->unifieds;
  f->resources.n_unified = 1;
  f->resources.cpu_shares = 1024;
  f->resources.oom_score_adj = 500;
  f->linux_config.resources = &f->resources;
  f->config.linux = &f->linux_config;
  f->sandbox_metadata.name = "pod";
  f->sandbox.metadata = &f->sandbox_metadata;
  f->port.container_port = 80;
  f->port.host_port = 8080;
  f->port.host_ip = "127.0.0.1";
  f->ports[0] = &f->port;
  f->sandbox.port_mappings = f->ports;
  f->sandbox.n_port_mappings = 1;
  *state = f;
  return 0;
}

static int
teardown(void **state)
{
  struct fixture *f = *state;

  error_clear(&f->err);
  free(f->big);
  free(f);
  return 0;
}

static void
assert_valid(struct fixture *f)
{
  int ret = validate_request(&f->request.base, &f->err);

  if (ret < 0)
    fail_msg("refused: %s", error_message(&f->err));
  error_clear(&f->err);
}

/* Refused with EINVAL and a message that holds each of the NULL-ended
 * fragments. */
static void
assert_refused(struct fixture *f, ...)
{
  const char *fragment;
  va_list ap;

  assert_int_equal(validate_request(&f->request.base, &f->err), -1);
  assert_int_equal(f->err.code, EINVAL);
  va_start(ap, f);
  while ((fragment = va_arg(ap, const char *)) != NULL)
    if (strstr(error_message(&f->err), fragment) == NULL)
      fail_msg("\"%s\" not in \"%s\"", fragment, error_message(&f->err));
  va_end(ap);
  error_clear(&f->err);
}

static void
test_valid_request_passes(void **state)
{
  assert_valid(*state);
}

/* ---- strings are UTF-8 ------------------------------------------------- */

static void
test_invalid_utf8_names_the_field(void **state)
{
  struct fixture *f = *state;

  f->config.log_path = "web/\xff.log";
  assert_refused(f, "config.log_path", "UTF-8", "byte 4", NULL);
  f->config.log_path = "web/0.log";

  f->metadata.name = "w\xc0\x80";
  assert_refused(f, "config.metadata.name", NULL);
  f->metadata.name = "web";

  f->command[1] = "\xed\xa0\x80";
  assert_refused(f, "config.command[1]", NULL);
  f->command[1] = "-c";

  f->mount.host_path = "/srv/\xfe";
  assert_refused(f, "config.mounts[0].host_path", NULL);
  f->mount.host_path = "/srv/data";

  f->image.image = "busybox\xf5";
  assert_refused(f, "config.image.image", NULL);
  f->image.image = "busybox:1";

  f->request.pod_sandbox_id = "\x80";
  assert_refused(f, "pod_sandbox_id", NULL);
  f->request.pod_sandbox_id = "0123";

  f->sandbox_metadata.name = "p\xff";
  assert_refused(f, "sandbox_config.metadata.name", NULL);
  f->sandbox_metadata.name = "pod";

  f->unified.value = "\xff";
  assert_refused(f, "config.linux.resources.unified[\"memory.high\"]", NULL);
  f->unified.value = "max";
  assert_valid(f);
}

static void
test_invalid_utf8_in_maps(void **state)
{
  struct fixture *f = *state;

  f->label.value = "caf\xe9"; /* Latin-1, not UTF-8 */
  assert_refused(f, "config.labels[\"app\"]", "byte 3", NULL);
  f->label.value = "ok";
  f->label.key = "k\xff";
  assert_refused(f, "config.labels[\"k\\xff\"]", "key is not valid UTF-8", NULL);
  f->label.key = "app";
  f->annotation.value = "\xe2\x98";
  assert_refused(f, "config.annotations[\"note\"]", NULL);
}

/* Env values are `bytes` in this CRI release: anything goes there, but
 * not in the key. */
static void
test_bytes_fields_are_not_checked(void **state)
{
  struct fixture *f = *state;

  f->env.value.data = (uint8_t *)"\xff\xfe";
  f->env.value.len = 2;
  assert_valid(f);
  f->env.key = "H\xffOME";
  assert_refused(f, "config.envs[0].key", NULL);
}

/* A huge invalid value is quoted in part, escaped. */
static void
test_error_quotes_little_of_the_input(void **state)
{
  struct fixture *f = *state;

  f->big = xmalloc(1024 * 1024 + 1);
  memset(f->big, 'x', 1024 * 1024);
  f->big[1024 * 1024] = '\0';
  f->big[1024 * 1024 - 1] = (char)0xff;
  f->config.log_path = f->big;
  assert_int_equal(validate_request(&f->request.base, &f->err), -1);
  assert_true(strlen(error_message(&f->err)) < 512);
  assert_non_null(strstr(error_message(&f->err), "..."));
  error_clear(&f->err);
  f->label.key = f->big;
  assert_int_equal(validate_request(&f->request.base, &f->err), -1);
  assert_true(strlen(error_message(&f->err)) < 512);
}

/* ---- labels plus annotations at most 256 KiB ----------------------------- */

static void
test_labels_and_annotations_at_most_256_KiB(void **state)
{
  struct fixture *f = *state;
  /* app + note + the annotation's 3 bytes of value */
  size_t rest = VALIDATE_METADATA_MAX - strlen("app") - strlen("note") - 3;

  f->big = xmalloc(rest + 16);
  memset(f->big, 'v', rest + 15);
  f->big[rest] = '\0';
  f->label.value = f->big;
  assert_valid(f);
  f->big[rest] = 'v';
  f->big[rest + 1] = '\0';
  assert_refused(f, "config: labels and annotations take 262145 bytes", "262144", NULL);
  /* Per object: the pod counts its own (here the same entry, as a map
   * entry of another type with the same layout). */
  f->config.n_labels = 0;
  f->big[rest + 1] = 'v';
  f->big[rest + 15] = '\0';
  f->sandbox.labels = (Runtime__V1__PodSandboxConfig__LabelsEntry **)f->labels;
  f->sandbox.n_labels = 1;
  assert_refused(f, "sandbox_config: labels and annotations take", NULL);
}

/* ---- rules of message types --------------------------------------------- */

static void
test_relative_mount_host_path_is_refused(void **state)
{
  struct fixture *f = *state;

  f->mount.host_path = "relative/dir";
  assert_refused(f, "config.mounts[0]", "host path \"relative/dir\" is not absolute", NULL);
  f->mount.host_path = "";
  assert_valid(f); /* no source at all: refused when config.json is built */
  f->mount.host_path = "/srv/data";
  f->mount.container_path = "data";
  assert_refused(f, "config.mounts[0]", "destination \"data\" is not absolute", NULL);
}

static void
test_unified_keys_are_checked_in_updates(void **state)
{
  struct fixture *f = *state;
  Runtime__V1__UpdateContainerResourcesRequest update
      = RUNTIME__V1__UPDATE_CONTAINER_RESOURCES_REQUEST__INIT;

  update.container_id = "0123";
  update.linux = &f->resources;
  assert_int_equal(validate_request(&update.base, &f->err), 0);
  f->unified.key = "../../escape";
  assert_int_equal(validate_request(&update.base, &f->err), -1);
  assert_int_equal(f->err.code, EINVAL);
  assert_non_null(strstr(error_message(&f->err), "linux: invalid unified cgroup key"));
  error_clear(&f->err);
  f->unified.key = "memory.high/x";
  assert_int_equal(validate_request(&update.base, &f->err), -1);
  error_clear(&f->err);
  f->unified.key = "";
  assert_int_equal(validate_request(&update.base, &f->err), -1);
  error_clear(&f->err);
  f->unified.key = "memory.high";
  /* The same rule in CreateContainer. */
  f->unified.key = "a..b";
  assert_refused(f, "config.linux.resources", "unified", NULL);
}

static void
test_hugepage_sizes_are_range_checked(void **state)
{
  struct fixture *f = *state;
  static const char *const good[] = { "4KB", "64KB", "2MB", "32MB", "512MB", "1GB", "16GB" };
  static const char *const bad[]
      = { "",      "0MB", "02MB", "3MB",  "2mb", "2M",  "2MBx",
          "32GB",  "2KB", "-2MB", "2 MB", "GB",  "1TB", "99999999999999999999GB",
          "../2MB" };

  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
    {
      f->huge.page_size = (char *)good[i];
      assert_valid(f);
    }
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    {
      f->huge.page_size = (char *)bad[i];
      assert_refused(f, "config.linux.resources: hugepage_limits[0]: page size", NULL);
    }
  f->huge.page_size = "2MB";
  f->huge.limit = (uint64_t)INT64_MAX + 1;
  assert_refused(f, "hugepage_limits[0]: limit", NULL);
}

static void
test_oom_score_adj_and_cpu_shares_are_range_checked(void **state)
{
  struct fixture *f = *state;

  f->resources.oom_score_adj = -1000;
  assert_valid(f);
  f->resources.oom_score_adj = 1000;
  assert_valid(f);
  f->resources.oom_score_adj = 1001;
  assert_refused(f, "oom_score_adj 1001 is outside [-1000, 1000]", NULL);
  f->resources.oom_score_adj = -1001;
  assert_refused(f, "oom_score_adj", NULL);
  f->resources.oom_score_adj = INT64_MIN;
  assert_refused(f, "oom_score_adj", NULL);
  f->resources.oom_score_adj = 0;

  f->resources.cpu_shares = 0;
  assert_valid(f);
  f->resources.cpu_shares = 262144;
  assert_valid(f);
  f->resources.cpu_shares = 262145;
  assert_refused(f, "cpu_shares 262145 is outside [0, 262144]", NULL);
  f->resources.cpu_shares = -1;
  assert_refused(f, "cpu_shares", NULL);
}

static void
test_port_mappings_are_range_checked(void **state)
{
  struct fixture *f = *state;

  f->port.protocol = RUNTIME__V1__PROTOCOL__SCTP;
  f->port.host_ip = "::1";
  assert_valid(f);
  f->port.host_ip = "";
  assert_valid(f);
  f->port.protocol = 3;
  assert_refused(f, "sandbox_config.port_mappings[0]", "protocol 3", NULL);
  f->port.protocol = RUNTIME__V1__PROTOCOL__UDP;
  f->port.host_port = 65536;
  assert_refused(f, "host_port 65536", NULL);
  f->port.host_port = -1;
  assert_refused(f, "host_port -1", NULL);
  f->port.host_port = 0;
  f->port.container_port = 0;
  assert_valid(f); /* no host port: nothing is mapped */
  f->port.host_port = 65535;
  assert_refused(f, "container_port 0 is outside [1, 65535]", NULL);
  f->port.container_port = 70000;
  assert_refused(f, "container_port 70000", NULL);
  f->port.container_port = 65535;
  assert_valid(f);
  f->port.host_ip = "localhost";
  assert_refused(f, "host_ip \"localhost\" is not an IPv4 or IPv6 address", NULL);
  f->port.host_ip = "1.2.3.4.5";
  assert_refused(f, "host_ip", NULL);
  f->port.host_ip = "fe80::1%eth0";
  assert_refused(f, "host_ip", NULL);
}

static void
test_log_path_with_dot_dot_in_a_name_is_valid(void **state)
{
  struct fixture *f = *state;

  f->config.log_path = "a..b.log";
  assert_valid(f);
  f->config.log_path = "web/..0.log";
  assert_valid(f);
  f->config.log_path = "../escape.log";
  assert_refused(f, "config: log_path \"../escape.log\" has a \"..\" component", NULL);
  f->config.log_path = "web/../../x.log";
  assert_refused(f, "log_path", NULL);
  f->config.log_path = "..";
  assert_refused(f, "log_path", NULL);

  assert_false(path_has_dot_dot(""));
  assert_false(path_has_dot_dot("a..b.log"));
  assert_false(path_has_dot_dot("/x/...y/..z"));
  assert_false(path_has_dot_dot("/x/./y"));
  assert_true(path_has_dot_dot(".."));
  assert_true(path_has_dot_dot("../"));
  assert_true(path_has_dot_dot("/a/.."));
  assert_true(path_has_dot_dot("a//../b"));
}

/* ---- oci_spec's checks on their own -------------------------------------- */

static void
test_oci_checks_directly(void **state)
{
  struct fixture *f = *state;

  assert_int_equal(oci_check_resources(&f->resources, &f->err), 0);
  assert_int_equal(oci_check_mount(&f->mount, &f->err), 0);
  f->mount.host_path = "./here";
  assert_int_equal(oci_check_mount(&f->mount, &f->err), -1);
  assert_int_equal(f->err.code, EINVAL);
  error_clear(&f->err);
  f->resources.oom_score_adj = 5000;
  assert_int_equal(oci_check_resources(&f->resources, &f->err), -1);
  assert_int_equal(f->err.code, EINVAL);
}

/* ---- timeouts clamp ------------------------------------------------------ */

static void
test_timeouts_clamp_instead_of_overflowing(void **state)
{
  int64_t seconds = 0;

  assert_int_equal(time_remaining_ms(0), -1);
  assert_int_equal(time_remaining_ms(time_monotonic_ns() - 1000), 0);
  assert_int_equal(time_remaining_ms(INT64_MAX), INT_MAX);
  assert_int_equal(time_remaining_ms(time_monotonic_ns() + 30LL * 24 * 3600 * 1000000000), INT_MAX);
  assert_true(time_remaining_ms(time_monotonic_ns() + 2000000000LL) > 1000);

  assert_int_equal(config_parse_duration("4h", &seconds), 0);
  assert_int_equal(seconds, 4 * 3600);
  assert_int_equal(config_parse_duration("1000000000h1000000000h", &seconds), 0);
  assert_int_equal(seconds, CONFIG_DURATION_MAX_S);
  assert_true(seconds <= INT64_MAX / 1000000000 / 2);
}

/* ---- state_dir short enough for the monitors' sockets ------------------- */

static void
test_state_dir_too_long_for_sockets_is_refused(void **state)
{
  struct fixture *f = *state;
  struct crid_config c;
  char longest[64];

  config_init(&c);
  assert_int_equal(config_check_state_dir(&c, &f->err), 0); /* /run/crid */
  /* 27 bytes + "/conmon/" + 64 + "/console" = 107, a sun_path's room. */
  snprintf(longest, sizeof longest, "/%026d", 0);
  assert_int_equal(strlen(longest), 27);
  free(c.state_dir);
  c.state_dir = xstrdup(longest);
  assert_int_equal(config_check_state_dir(&c, &f->err), 0);
  free(c.state_dir);
  c.state_dir = xasprintf("%s0", longest);
  assert_int_equal(config_check_state_dir(&c, &f->err), -1);
  assert_int_equal(f->err.code, EINVAL);
  assert_non_null(strstr(error_message(&f->err), "crid.state_dir"));
  assert_non_null(strstr(error_message(&f->err), "28 bytes long, at most 27 fit"));
  config_free(&c);
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_utf8_known_sequences),
    cmocka_unit_test(test_utf8_exhaustive_short_strings),
    cmocka_unit_test(test_utf8_fuzz),
    cmocka_unit_test(test_utf8_sanitize_and_json_strings),
    T(test_valid_request_passes),
    T(test_invalid_utf8_names_the_field),
    T(test_invalid_utf8_in_maps),
    T(test_bytes_fields_are_not_checked),
    T(test_error_quotes_little_of_the_input),
    T(test_labels_and_annotations_at_most_256_KiB),
    T(test_relative_mount_host_path_is_refused),
    T(test_unified_keys_are_checked_in_updates),
    T(test_hugepage_sizes_are_range_checked),
    T(test_oom_score_adj_and_cpu_shares_are_range_checked),
    T(test_port_mappings_are_range_checked),
    T(test_log_path_with_dot_dot_in_a_name_is_valid),
    T(test_oci_checks_directly),
    T(test_timeouts_clamp_instead_of_overflowing),
    T(test_state_dir_too_long_for_sockets_is_refused),
  };
#undef T
  return cmocka_run_group_tests_name("validate", tests, NULL, NULL);
}
