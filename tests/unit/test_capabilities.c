/* Unit tests of pod/capabilities: the default set, add/drop/ambient with
 * and without the CAP_ prefix, ALL, unknown names, the host bounding
 * set as the limit of everything, and the OCI JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/cleanup.h"
#include "common/error.h"
#include "common/json.h"
#include "common/util.h"
#include "pod/capabilities.h"

#include <errno.h>
#include <linux/capability.h>
#include <stdlib.h>
#include <string.h>

#define BIT(cap) CAPABILITY_BIT(cap)

/* Every capability this libcap names except CAP_SYS_RESOURCE: the shape
 * of this machine's bounding set. */
static uint64_t
bounding_without_sys_resource(void)
{
  return capabilities_known() & ~BIT(CAP_SYS_RESOURCE);
}

static int
compute(char **add, size_t n_add, char **drop, size_t n_drop, char **ambient, size_t n_ambient,
        bool privileged, uint64_t bounding, struct capability_sets *sets, struct error *err)
{
  Runtime__V1__Capability cri;

  runtime__v1__capability__init(&cri);
  cri.add_capabilities = add;
  cri.n_add_capabilities = n_add;
  cri.drop_capabilities = drop;
  cri.n_drop_capabilities = n_drop;
  cri.add_ambient_capabilities = ambient;
  cri.n_add_ambient_capabilities = n_ambient;
  return capabilities_compute(&cri, privileged, bounding, sets, err);
}

static void
test_default_set_is_containerds(void **state)
{
  uint64_t d = capabilities_default();
  struct capability_sets sets;
  struct error err = ERROR_INIT;

  assert_int_equal(__builtin_popcountll(d), 14);
  assert_true(d & BIT(CAP_CHOWN));
  assert_true(d & BIT(CAP_AUDIT_WRITE));
  assert_true(d & BIT(CAP_NET_BIND_SERVICE));
  assert_false(d & BIT(CAP_SYS_ADMIN));
  assert_false(d & BIT(CAP_NET_ADMIN));

  assert_int_equal(capabilities_compute(NULL, false, capabilities_known(), &sets, &err), 0);
  assert_true(sets.bounding == d && sets.effective == d && sets.permitted == d);
  /* Never in inheritable (CVE-2022-24769). */
  assert_true(sets.inheritable == 0 && sets.ambient == 0);
}

static void
test_names_with_and_without_prefix(void **state)
{
  const char *names[] = { "NET_ADMIN", "net_admin", "CAP_NET_ADMIN", "cap_Net_Admin", NULL };
  struct error err = ERROR_INIT;
  int cap;

  for (size_t i = 0; names[i]; i++)
    {
      assert_int_equal(capability_from_name(names[i], &cap, &err), 0);
      assert_int_equal(cap, CAP_NET_ADMIN);
    }
  cleanup_free char *name = capability_oci_name(CAP_SYS_PTRACE);
  assert_string_equal(name, "CAP_SYS_PTRACE");
}

static void
test_unknown_names_are_einval(void **state)
{
  const char *bad[]
      = { "FOO", "CAP_FOO", "12", "", "CAP_", "chown,kill", "ALL", "cap_chown+ep", NULL };
  struct error err = ERROR_INIT;
  int cap;

  for (size_t i = 0; bad[i]; i++)
    {
      assert_int_equal(capability_from_name(bad[i], &cap, &err), -1);
      assert_int_equal(err.code, EINVAL);
      assert_non_null(strstr(err.message, bad[i]));
      error_clear(&err);
    }

  char *add[] = { "NET_ADMIN", "NOT_A_CAP" };
  struct capability_sets sets;
  assert_int_equal(compute(add, 2, NULL, 0, NULL, 0, false, ~0ULL, &sets, &err), -1);
  assert_int_equal(err.code, EINVAL);
  assert_non_null(strstr(err.message, "NOT_A_CAP"));
  error_clear(&err);
  char *drop[] = { "bogus" };
  assert_int_equal(compute(NULL, 0, drop, 1, NULL, 0, false, ~0ULL, &sets, &err), -1);
  assert_non_null(strstr(err.message, "bogus"));
  error_clear(&err);
}

static void
test_add_goes_to_all_but_ambient(void **state)
{
  char *add[] = { "NET_ADMIN", "cap_sys_time" };
  struct capability_sets sets;
  struct error err = ERROR_INIT;
  uint64_t added = BIT(CAP_NET_ADMIN) | BIT(CAP_SYS_TIME);

  assert_int_equal(compute(add, 2, NULL, 0, NULL, 0, false, capabilities_known(), &sets, &err), 0);
  assert_true(sets.bounding == (capabilities_default() | added));
  assert_true(sets.effective == sets.bounding && sets.permitted == sets.bounding);
  /* Only the added ones are inheritable, not the defaults. */
  assert_true(sets.inheritable == added);
  assert_true(sets.ambient == 0);
}

static void
test_drop_removes_from_every_set(void **state)
{
  char *add[] = { "NET_ADMIN" };
  char *drop[] = { "CHOWN", "CAP_KILL", "net_admin" };
  struct capability_sets sets;
  struct error err = ERROR_INIT;

  assert_int_equal(compute(add, 1, drop, 3, NULL, 0, false, capabilities_known(), &sets, &err), 0);
  uint64_t gone = BIT(CAP_CHOWN) | BIT(CAP_KILL) | BIT(CAP_NET_ADMIN);
  uint64_t any = sets.bounding | sets.effective | sets.permitted | sets.inheritable | sets.ambient;
  assert_true((any & gone) == 0);
  assert_true(sets.bounding == (capabilities_default() & ~gone));
}

static void
test_all_in_add_and_drop(void **state)
{
  uint64_t host = bounding_without_sys_resource();
  struct capability_sets sets;
  struct error err = ERROR_INIT;

  /* ALL = everything crid itself holds; CAP_SYS_RESOURCE is not there. */
  char *all[] = { "ALL" };
  char *chown[] = { "CHOWN" };
  assert_int_equal(compute(all, 1, chown, 1, NULL, 0, false, host, &sets, &err), 0);
  assert_true(sets.bounding == (host & ~BIT(CAP_CHOWN)));
  assert_true(sets.effective == sets.bounding && sets.permitted == sets.bounding);
  assert_false(sets.bounding & BIT(CAP_SYS_RESOURCE));

  /* drop ALL, add one: only that one. */
  char *all_lower[] = { "all" };
  char *bind[] = { "NET_BIND_SERVICE" };
  assert_int_equal(compute(bind, 1, all_lower, 1, NULL, 0, false, host, &sets, &err), 0);
  assert_true(sets.bounding == BIT(CAP_NET_BIND_SERVICE));
  assert_true(sets.effective == BIT(CAP_NET_BIND_SERVICE));
  assert_true(sets.ambient == 0);

  /* drop ALL alone: nothing at all. */
  assert_int_equal(compute(NULL, 0, all, 1, NULL, 0, false, host, &sets, &err), 0);
  assert_true((sets.bounding | sets.effective | sets.permitted | sets.inheritable | sets.ambient)
              == 0);
}

static void
test_ambient_goes_to_all_five(void **state)
{
  char *ambient[] = { "NET_RAW", "CAP_NET_ADMIN" };
  char *drop[] = { "ALL" };
  struct capability_sets sets;
  struct error err = ERROR_INIT;
  uint64_t want = BIT(CAP_NET_RAW) | BIT(CAP_NET_ADMIN);

  assert_int_equal(compute(NULL, 0, drop, 1, ambient, 2, false, capabilities_known(), &sets, &err),
                   0);
  assert_true(sets.bounding == want && sets.effective == want && sets.permitted == want);
  assert_true(sets.inheritable == want && sets.ambient == want);
}

static void
test_everything_limited_to_bounding(void **state)
{
  uint64_t host = bounding_without_sys_resource() & ~BIT(CAP_KILL);
  char *add[] = { "SYS_RESOURCE", "SYS_ADMIN" };
  char *ambient[] = { "SYS_RESOURCE" };
  struct capability_sets sets;
  struct error err = ERROR_INIT;

  assert_int_equal(compute(add, 2, NULL, 0, ambient, 1, false, host, &sets, &err), 0);
  uint64_t any = sets.bounding | sets.effective | sets.permitted | sets.inheritable | sets.ambient;
  assert_false(any & BIT(CAP_SYS_RESOURCE));
  assert_false(any & BIT(CAP_KILL)); /* a default, but not held by the host */
  assert_true(sets.bounding & BIT(CAP_SYS_ADMIN));

  /* Privileged: the whole bounding set, add/drop ignored, not inheritable. */
  char *drop[] = { "SYS_ADMIN" };
  assert_int_equal(compute(NULL, 0, drop, 1, NULL, 0, true, host, &sets, &err), 0);
  assert_true(sets.bounding == host && sets.effective == host && sets.permitted == host);
  assert_true(sets.inheritable == 0 && sets.ambient == 0);
}

static void
test_host_bounding_set(void **state)
{
  uint64_t value, host;
  struct error err = ERROR_INIT;
  cleanup_free char *status = NULL;

  assert_int_equal(capabilities_parse_status("Name:\tx\nCapInh:\t0000000000000000\n"
                                             "CapBnd:\t000001fffeffffff\nCapAmb:\t0\n",
                                             &value, &err),
                   0);
  assert_true(value == 0x1fffeffffffULL);
  assert_false(value & BIT(CAP_SYS_RESOURCE));
  assert_int_equal(capabilities_parse_status("Name:\tx\n", &value, &err), -1);
  assert_int_equal(err.code, ENOENT);
  error_clear(&err);
  assert_int_equal(capabilities_parse_status("CapBnd:\tzz\n", &value, &err), -1);
  assert_int_equal(err.code, EINVAL);
  error_clear(&err);

  /* The real one agrees with the kernel's line, within what libcap names. */
  assert_int_equal(capabilities_host_bounding(&host, &err), 0);
  assert_int_equal(read_file("/proc/self/status", 1 << 16, &status, NULL, &err), 0);
  assert_int_equal(capabilities_parse_status(status, &value, &err), 0);
  assert_true(host == (value & capabilities_known()));
}

static bool
array_has(const struct json_value *array, const char *s)
{
  for (size_t i = 0; i < json_array_size(array); i++)
    if (strcmp(json_string(json_array_at(array, i)), s) == 0)
      return true;
  return false;
}

static void
test_json_names(void **state)
{
  struct capability_sets sets = { .bounding = BIT(CAP_CHOWN) | BIT(CAP_NET_ADMIN),
                                  .effective = BIT(CAP_CHOWN),
                                  .permitted = BIT(CAP_CHOWN),
                                  .inheritable = 0,
                                  .ambient = 0 };
  struct json_writer *w = json_writer_new(false);
  struct error err = ERROR_INIT;
  cleanup_free char *text = NULL;
  size_t len;

  capabilities_write_json(w, &sets);
  text = json_writer_finish(w, &len);
  cleanup_json struct json_value *v = json_parse(text, len, &err);
  assert_non_null(v);
  const struct json_value *bounding = json_object_get(v, "bounding");
  assert_int_equal(json_array_size(bounding), 2);
  assert_true(array_has(bounding, "CAP_CHOWN"));
  assert_true(array_has(bounding, "CAP_NET_ADMIN"));
  assert_int_equal(json_array_size(json_object_get(v, "effective")), 1);
  assert_true(json_is_array(json_object_get(v, "inheritable")));
  assert_int_equal(json_array_size(json_object_get(v, "ambient")), 0);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_default_set_is_containerds),
    cmocka_unit_test(test_names_with_and_without_prefix),
    cmocka_unit_test(test_unknown_names_are_einval),
    cmocka_unit_test(test_add_goes_to_all_but_ambient),
    cmocka_unit_test(test_drop_removes_from_every_set),
    cmocka_unit_test(test_all_in_add_and_drop),
    cmocka_unit_test(test_ambient_goes_to_all_five),
    cmocka_unit_test(test_everything_limited_to_bounding),
    cmocka_unit_test(test_host_bounding_set),
    cmocka_unit_test(test_json_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
