/* Parsing /proc/<pid>/net/dev; see net_dev.h. */
#include "pod/net_dev.h"
#include "common/cleanup.h"
#include "common/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NET_DEV_HEADER_LINES 2
#define NET_DEV_COUNTERS 16
#define QUOTE_MAX 120

/* The counters' positions on a line (receive first, then transmit). */
enum
{
  RX_BYTES = 0,
  RX_PACKETS = 1,
  RX_ERRORS = 2,
  RX_DROPPED = 3,
  TX_BYTES = 8,
  TX_PACKETS = 9,
  TX_ERRORS = 10,
  TX_DROPPED = 11,
};

static int
bad_line(const char *line, size_t len, const char *why, struct error *err)
{
  cleanup_free char *quoted = quote_untrusted(line, len, QUOTE_MAX);
  return error_set(err, EINVAL, "net/dev: %s in line %s", why, quoted);
}

/* Sixteen unsigned decimal numbers separated by blanks, up to end. */
static bool
parse_counters(const char *p, const char *end, uint64_t counters[NET_DEV_COUNTERS])
{
  for (int i = 0; i < NET_DEV_COUNTERS; i++)
    {
      char *next;
      while (p < end && (*p == ' ' || *p == '\t'))
        p++;
      if (p >= end || !isdigit((unsigned char)*p))
        return false;
      errno = 0;
      counters[i] = strtoull(p, &next, 10);
      if (errno || next > end)
        return false;
      p = next;
    }
  while (p < end && (*p == ' ' || *p == '\t'))
    p++;
  return p == end;
}

static int
parse_line(const char *line, size_t len, struct net_dev_interface *out, struct error *err)
{
  const char *end = line + len;
  const char *name = line;
  const char *colon;
  uint64_t c[NET_DEV_COUNTERS];
  size_t name_len;

  while (name < end && *name == ' ')
    name++;
  colon = memchr(name, ':', (size_t)(end - name));
  if (colon == NULL)
    return bad_line(line, len, "no ':'", err);
  name_len = (size_t)(colon - name);
  if (name_len == 0 || name_len >= NET_DEV_NAME_MAX || memchr(name, ' ', name_len))
    return bad_line(line, len, "bad interface name", err);
  if (!parse_counters(colon + 1, end, c))
    return bad_line(line, len, "not sixteen counters", err);
  memset(out, 0, sizeof *out);
  memcpy(out->name, name, name_len);
  out->rx_bytes = c[RX_BYTES];
  out->rx_packets = c[RX_PACKETS];
  out->rx_errors = c[RX_ERRORS];
  out->rx_dropped = c[RX_DROPPED];
  out->tx_bytes = c[TX_BYTES];
  out->tx_packets = c[TX_PACKETS];
  out->tx_errors = c[TX_ERRORS];
  out->tx_dropped = c[TX_DROPPED];
  return 0;
}

int
net_dev_parse(const char *text, struct net_dev_interface **out, size_t *n, struct error *err)
{
  cleanup_free struct net_dev_interface *list = NULL;
  size_t count = 0;
  int line_no = 0;

  for (const char *line = text; *line; line_no++)
    {
      const char *newline = strchr(line, '\n');
      size_t len = newline ? (size_t)(newline - line) : strlen(line);
      struct net_dev_interface entry;

      if (line_no >= NET_DEV_HEADER_LINES && len > 0)
        {
          if (parse_line(line, len, &entry, err) < 0)
            return -1;
          if (strcmp(entry.name, "lo") != 0)
            {
              if (count == NET_DEV_MAX_INTERFACES)
                return error_set(err, E2BIG, "net/dev: more than %d interfaces",
                                 NET_DEV_MAX_INTERFACES);
              list = xrealloc(list, (count + 1) * sizeof *list);
              list[count++] = entry;
            }
        }
      line += len + (newline ? 1 : 0);
    }
  if (line_no < NET_DEV_HEADER_LINES)
    return error_set(err, EINVAL, "net/dev: no header");
  *out = steal_pointer(&list);
  *n = count;
  return 0;
}

size_t
net_dev_default_index(const struct net_dev_interface *interfaces, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (strcmp(interfaces[i].name, "eth0") == 0)
      return i;
  return 0;
}
