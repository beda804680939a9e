/* Errors become gRPC status codes here and nowhere else. */
#include "crid/rpc.h"

#include <errno.h>
#include <grpc/status.h>

int
rpc_status_from_error_code(int code)
{
  switch (code)
    {
    case 0:
      return GRPC_STATUS_OK;
    case ENOENT:
      return GRPC_STATUS_NOT_FOUND;
    case EINVAL:
      return GRPC_STATUS_INVALID_ARGUMENT;
    case EEXIST:
      return GRPC_STATUS_ALREADY_EXISTS;
    case ETIMEDOUT:
      return GRPC_STATUS_DEADLINE_EXCEEDED;
    case ENOSYS:
      return GRPC_STATUS_UNIMPLEMENTED;
    case EBUSY:
      return GRPC_STATUS_FAILED_PRECONDITION;
    case ECANCELED:
      return GRPC_STATUS_CANCELLED;
    case EAGAIN:
      return GRPC_STATUS_UNAVAILABLE;
    case ENOBUFS: /* a bounded table is full */
      return GRPC_STATUS_RESOURCE_EXHAUSTED;
    default:
      return GRPC_STATUS_UNKNOWN;
    }
}
