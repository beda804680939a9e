#include "pod/pod_files.h"
#include "common/atomic_file.h"
#include "common/cleanup.h"
#include "common/util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define HOST_RESOLV_CONF "/etc/resolv.conf"

int
pod_write_hostname(const char *path, const char *hostname, struct error *err)
{
  cleanup_free char *text = xasprintf("%s\n", hostname);
  return replace_file(path, text, strlen(text), 0644, err);
}

static bool
text_is_single_line(const char *s)
{
  return strpbrk(s, "\n\r") == NULL;
}

static int
check_dns_entries(char **entries, size_t n, const char *what, struct error *err)
{
  for (size_t i = 0; i < n; i++)
    if (entries[i][0] == '\0' || !text_is_single_line(entries[i]) || strchr(entries[i], ' '))
      return error_set(err, EINVAL, "invalid DNS %s \"%s\"", what, entries[i]);
  return 0;
}

static char *
join(char **entries, size_t n)
{
  size_t len = 1;
  char *out;
  for (size_t i = 0; i < n; i++)
    len += strlen(entries[i]) + 1;
  out = xcalloc(1, len);
  for (size_t i = 0; i < n; i++)
    {
      if (i)
        strcat(out, " ");
      strcat(out, entries[i]);
    }
  return out;
}

int
pod_write_resolv_conf(const char *path, const Runtime__V1__DNSConfig *dns, struct error *err)
{
  cleanup_free char *text = NULL;
  cleanup_free char *searches = NULL;
  cleanup_free char *options = NULL;
  size_t len;

  if (dns == NULL || (dns->n_servers == 0 && dns->n_searches == 0 && dns->n_options == 0))
    {
      if (read_file(HOST_RESOLV_CONF, 1 << 20, &text, &len, err) < 0)
        {
          if (err->code != ENOENT)
            return error_wrap(err, "copy the host's resolv.conf");
          error_clear(err);
          text = xstrdup("");
          len = 0;
        }
      return replace_file(path, text, len, 0644, err);
    }
  if (check_dns_entries(dns->servers, dns->n_servers, "server", err) < 0
      || check_dns_entries(dns->searches, dns->n_searches, "search domain", err) < 0
      || check_dns_entries(dns->options, dns->n_options, "option", err) < 0)
    return -1;
  searches = join(dns->searches, dns->n_searches);
  options = join(dns->options, dns->n_options);
  text = xstrdup("");
  for (size_t i = 0; i < dns->n_servers; i++)
    {
      char *next = xasprintf("%snameserver %s\n", text, dns->servers[i]);
      free(text);
      text = next;
    }
  if (dns->n_searches)
    {
      char *next = xasprintf("%ssearch %s\n", text, searches);
      free(text);
      text = next;
    }
  if (dns->n_options)
    {
      char *next = xasprintf("%soptions %s\n", text, options);
      free(text);
      text = next;
    }
  return replace_file(path, text, strlen(text), 0644, err);
}

int
pod_mount_shm(const char *path, int64_t size, struct error *err)
{
  cleanup_free char *options = xasprintf("mode=1777,size=%lld", (long long)size);

  if (mkdir_p(path, 0755, err) < 0)
    return -1;
  if (mount("shm", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, options) < 0)
    return error_set_errno(err, errno, "mount shm at %s", path);
  return 0;
}

int
pod_unmount_shm(const char *path, struct error *err)
{
  if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
    return error_set_errno(err, errno, "unmount %s", path);
  if (rmdir(path) < 0 && errno != ENOENT)
    return error_set_errno(err, errno, "remove %s", path);
  return 0;
}
