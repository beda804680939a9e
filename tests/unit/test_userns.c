/* pod/userns: the checks of a pod's user namespace options and the text
 * of its maps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "common/cleanup.h"
#include "common/error.h"
#include "pod/userns.h"
#include <errno.h>
#include <string.h>

struct options
{
  Runtime__V1__NamespaceOption ns;
  Runtime__V1__UserNamespace userns;
  Runtime__V1__IDMapping ranges[POD_USERNS_MAX_RANGES + 1];
  Runtime__V1__IDMapping *uids[POD_USERNS_MAX_RANGES + 1];
  Runtime__V1__IDMapping gid;
  Runtime__V1__IDMapping *gids[1];
};

/* Mode POD, one uid range 0 -> 100000 x 65536, the same for gids. */
static void
options_init(struct options *o)
{
  runtime__v1__namespace_option__init(&o->ns);
  runtime__v1__user_namespace__init(&o->userns);
  o->ns.network = RUNTIME__V1__NAMESPACE_MODE__POD;
  o->ns.ipc = RUNTIME__V1__NAMESPACE_MODE__POD;
  o->ns.pid = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
  o->ns.userns_options = &o->userns;
  o->userns.mode = RUNTIME__V1__NAMESPACE_MODE__POD;
  for (size_t i = 0; i <= POD_USERNS_MAX_RANGES; i++)
    {
      runtime__v1__idmapping__init(&o->ranges[i]);
      o->uids[i] = &o->ranges[i];
    }
  o->ranges[0] = (Runtime__V1__IDMapping)RUNTIME__V1__IDMAPPING__INIT;
  o->ranges[0].host_id = 100000;
  o->ranges[0].length = 65536;
  o->gid = o->ranges[0];
  o->gids[0] = &o->gid;
  o->userns.uids = o->uids;
  o->userns.n_uids = 1;
  o->userns.gids = o->gids;
  o->userns.n_gids = 1;
}

/* EINVAL with want in the message, or 0 when want is NULL. */
static void
expect(struct options *o, const char *want)
{
  struct error err = ERROR_INIT;
  int ret = pod_userns_check_options(&o->ns, &err);

  if (want == NULL)
    {
      if (ret != 0)
        fail_msg("refused: %s", error_message(&err));
      return;
    }
  assert_int_equal(ret, -1);
  assert_int_equal(err.code, EINVAL);
  if (strstr(error_message(&err), want) == NULL)
    fail_msg("error \"%s\" does not contain \"%s\"", error_message(&err), want);
  error_clear(&err);
}

static void
set_range(struct options *o, size_t i, uint32_t container_id, uint32_t host_id, uint32_t length)
{
  o->ranges[i].container_id = container_id;
  o->ranges[i].host_id = host_id;
  o->ranges[i].length = length;
}

static void
test_valid(void **state)
{
  struct options o;

  options_init(&o);
  expect(&o, NULL);
  /* Several disjoint ranges, root in the second. */
  set_range(&o, 0, 1000, 300000, 1000);
  set_range(&o, 1, 0, 100000, 1000);
  o.userns.n_uids = 2;
  expect(&o, NULL);
  /* Up to the last id there is. */
  set_range(&o, 1, 0, 4294967295u - 1000, 1000);
  expect(&o, NULL);
  /* NODE: the host's, with no mappings. */
  options_init(&o);
  o.userns.mode = RUNTIME__V1__NAMESPACE_MODE__NODE;
  o.userns.n_uids = 0;
  o.userns.n_gids = 0;
  expect(&o, NULL);
  o.ns.network = RUNTIME__V1__NAMESPACE_MODE__NODE;
  expect(&o, NULL);
}

static void
test_refused(void **state)
{
  struct options o;

  options_init(&o);
  o.userns.mode = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
  expect(&o, "mode CONTAINER is not supported");
  o.userns.mode = RUNTIME__V1__NAMESPACE_MODE__TARGET;
  expect(&o, "mode TARGET is not supported");
  o.userns.mode = 17;
  expect(&o, "not supported");
  options_init(&o);
  o.userns.mode = RUNTIME__V1__NAMESPACE_MODE__NODE;
  expect(&o, "NODE takes no uid or gid mappings");

  options_init(&o);
  set_range(&o, 0, 1, 100000, 65536);
  expect(&o, "do not map container uid 0");
  /* critest's "more than one mapping": the same container ids twice. */
  options_init(&o);
  set_range(&o, 1, 0, 200000, 65536);
  o.userns.n_uids = 2;
  expect(&o, "overlap in container ids");
  set_range(&o, 1, 70000, 150000, 100);
  expect(&o, "overlap in host ids");
  options_init(&o);
  for (size_t i = 0; i <= POD_USERNS_MAX_RANGES; i++)
    set_range(&o, i, i * 10, 100000 + i * 10, 10);
  o.userns.n_uids = POD_USERNS_MAX_RANGES + 1;
  expect(&o, "at most 5");
  options_init(&o);
  set_range(&o, 0, 0, 100000, 0);
  expect(&o, "length 0");
  set_range(&o, 0, 0, 4294967295u - 10, 11);
  expect(&o, "goes past");
  set_range(&o, 0, 4294967295u, 100000, 1);
  expect(&o, "goes past");
  set_range(&o, 0, 0, 0, 65536);
  expect(&o, "host's root");
  options_init(&o);
  o.userns.n_gids = 0;
  expect(&o, "needs gid mappings");
  options_init(&o);
  o.ns.ipc = RUNTIME__V1__NAMESPACE_MODE__NODE;
  expect(&o, "host's network, IPC or PID");
}

static void
test_map_text_and_host_ids(void **state)
{
  const struct pod_id_range ranges[] = { { 0, 100000, 1000 }, { 5000, 300000, 10 } };
  cleanup_free char *text = pod_userns_map_text(ranges, 2);
  uint32_t host;

  assert_string_equal(text, "0 100000 1000\n5000 300000 10\n");
  assert_true(pod_userns_host_id(ranges, 2, 0, &host));
  assert_int_equal(host, 100000);
  assert_true(pod_userns_host_id(ranges, 2, 5009, &host));
  assert_int_equal(host, 300009);
  assert_false(pod_userns_host_id(ranges, 2, 1000, &host));
  assert_false(pod_userns_host_id(ranges, 2, 5010, &host));
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_valid),
    cmocka_unit_test(test_refused),
    cmocka_unit_test(test_map_text_and_host_ids),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
