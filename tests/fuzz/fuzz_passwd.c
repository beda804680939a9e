/* libFuzzer harness for the parsers of an image's /etc/passwd and
 * /etc/group (pod/user.c): image content is untrusted.  The input is split
 * at its first NUL into the two files, written into a scratch root file
 * system, and a user name and a uid are resolved against them, as
 * CreateContainer does.  Built and run by `make fuzz`.
 *
 * Every run resolves or fails with a message; a resolved user's groups
 * stay within the kernel's limit. */
#include "pod/user.h"
#include "common/util.h"
#include "common/trash.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char root[64];

static void
write_file(const char *name, const uint8_t *data, size_t len)
{
  char path[128];
  FILE *f;

  snprintf(path, sizeof path, "%s/etc/%s", root, name);
  f = fopen(path, "we");
  if (f == NULL)
    abort();
  if (len && fwrite(data, 1, len, f) != len)
    abort();
  fclose(f);
}

static void
remove_root(void)
{
  struct error err = ERROR_INIT;
  remove_tree(root, &err);
  error_clear(&err);
}

static void
resolve(const struct user_request *req)
{
  struct user_resolved resolved;
  struct error err = ERROR_INIT;

  if (user_resolve(root, req, &resolved, &err) == 0)
    {
      if (resolved.user.n_additional_gids > USER_MAX_GROUPS)
        abort();
    }
  else if (err.message == NULL)
    abort();
  user_resolved_clear(&resolved);
  error_clear(&err);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const uint8_t *nul = memchr(data, 0, size);
  size_t passwd_len = nul ? (size_t)(nul - data) : size;
  struct user_request by_name = { .image_user = "daemon" };
  struct user_request by_uid = { .image_user = "1:2" };
  struct user_request strict = { .image_user = "root", .strict_groups = true };

  if (root[0] == '\0')
    {
      char etc[80];
      snprintf(root, sizeof root, "/tmp/crid-fuzz-passwd-%d", (int)getpid());
      snprintf(etc, sizeof etc, "%s/etc", root);
      mkdir_p(etc, 0700, &(struct error)ERROR_INIT);
      atexit(remove_root);
    }
  write_file("passwd", data, passwd_len);
  write_file("group", nul ? nul + 1 : data, nul ? size - passwd_len - 1 : 0);
  resolve(&by_name);
  resolve(&by_uid);
  resolve(&strict);
  return 0;
}
