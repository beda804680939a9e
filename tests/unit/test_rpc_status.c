/* Unit tests of the error-to-gRPC-status mapping and the method table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "crid/rpc.h"

#include <errno.h>
#include <grpc/status.h>
#include <string.h>

static void
test_error_codes_map_to_grpc_status(void **state)
{
  assert_int_equal(rpc_status_from_error_code(0), GRPC_STATUS_OK);
  assert_int_equal(rpc_status_from_error_code(ENOENT), GRPC_STATUS_NOT_FOUND);
  assert_int_equal(rpc_status_from_error_code(EINVAL), GRPC_STATUS_INVALID_ARGUMENT);
  assert_int_equal(rpc_status_from_error_code(EEXIST), GRPC_STATUS_ALREADY_EXISTS);
  assert_int_equal(rpc_status_from_error_code(ETIMEDOUT), GRPC_STATUS_DEADLINE_EXCEEDED);
  assert_int_equal(rpc_status_from_error_code(ENOSYS), GRPC_STATUS_UNIMPLEMENTED);
  assert_int_equal(rpc_status_from_error_code(EBUSY), GRPC_STATUS_FAILED_PRECONDITION);
  assert_int_equal(rpc_status_from_error_code(EAGAIN), GRPC_STATUS_UNAVAILABLE);
  assert_int_equal(rpc_status_from_error_code(EIO), GRPC_STATUS_UNKNOWN);
  assert_int_equal(rpc_status_from_error_code(EPERM), GRPC_STATUS_UNKNOWN);
}

static void
test_every_proto_method_is_routed(void **state)
{
  rpc_table_init();
  assert_int_equal(rpc_table_size(), runtime__v1__runtime_service__descriptor.n_methods
                                         + runtime__v1__image_service__descriptor.n_methods);
  assert_non_null(rpc_table_lookup("/runtime.v1.RuntimeService/Version"));
  assert_non_null(rpc_table_lookup("/runtime.v1.ImageService/PullImage"));
  assert_non_null(rpc_table_lookup("/runtime.v1.RuntimeService/GetContainerEvents"));
  assert_null(rpc_table_lookup("/runtime.v1alpha2.RuntimeService/Version"));
  assert_non_null(rpc_table_lookup("/runtime.v1.RuntimeService/Version")->handler);
  assert_true(rpc_table_lookup("/runtime.v1.RuntimeService/Version")->quiet);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_error_codes_map_to_grpc_status),
    cmocka_unit_test(test_every_proto_method_is_routed),
  };
  return cmocka_run_group_tests_name("rpc_status", tests, NULL, NULL);
}
