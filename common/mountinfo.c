/* Parsing /proc/self/mountinfo; see mountinfo.h. */
#include "common/mountinfo.h"
#include "common/util.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static char *
unescape(const char *s, size_t len)
{
  char *out = xmalloc(len + 1);
  size_t j = 0;

  for (size_t i = 0; i < len; i++)
    {
      if (s[i] == '\\' && i + 3 < len && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0'
          && s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7')
        {
          out[j++] = (char)(((s[i + 1] - '0') << 6) | ((s[i + 2] - '0') << 3) | (s[i + 3] - '0'));
          i += 3;
        }
      else
        out[j++] = s[i];
    }
  out[j] = '\0';
  return out;
}

/* The space-separated field at *p (advanced past it), or NULL at the end. */
static const char *
next_field(const char **p, const char *end, size_t *len)
{
  const char *start = *p;

  while (start < end && *start == ' ')
    start++;
  if (start >= end)
    return NULL;
  *p = start;
  while (*p < end && **p != ' ')
    (*p)++;
  *len = (size_t)(*p - start);
  return start;
}

static bool
parse_line(const char *line, const char *end, struct mount_entry *out)
{
  const char *p = line, *field = NULL, *mountpoint = NULL, *optional_start;
  size_t len = 0, mountpoint_len = 0;

  for (int i = 0; i < 6; i++)
    {
      field = next_field(&p, end, &len);
      if (field == NULL)
        return false;
      if (i == 4)
        {
          mountpoint = field;
          mountpoint_len = len;
        }
    }
  /* Optional fields up to the lone "-", then the file system type. */
  optional_start = p;
  while ((field = next_field(&p, end, &len)) && !(len == 1 && field[0] == '-'))
    ;
  if (field == NULL)
    return false;
  {
    const char *optional_end = field;
    const char *type = next_field(&p, end, &len);
    if (type == NULL)
      return false;
    while (optional_start < optional_end && *optional_start == ' ')
      optional_start++;
    while (optional_end > optional_start && optional_end[-1] == ' ')
      optional_end--;
    out->mountpoint = unescape(mountpoint, mountpoint_len);
    out->optional = xstrndup(optional_start, (size_t)(optional_end - optional_start));
    out->fstype = xstrndup(type, len);
  }
  return true;
}

void
mount_table_parse(const char *text, struct mount_table *out)
{
  size_t capacity = 0;

  out->entries = NULL;
  out->n = 0;
  for (const char *line = text; line && *line;)
    {
      const char *end = line + strcspn(line, "\n");
      struct mount_entry entry;

      if (parse_line(line, end, &entry))
        {
          if (out->n == capacity)
            {
              capacity = capacity ? capacity * 2 : 64;
              out->entries = xrealloc(out->entries, capacity * sizeof *out->entries);
            }
          out->entries[out->n++] = entry;
        }
      line = *end ? end + 1 : end;
    }
}

int
mount_table_read(struct mount_table *out, struct error *err)
{
  char *text = NULL;

  out->entries = NULL;
  out->n = 0;
  if (read_file("/proc/self/mountinfo", MOUNTINFO_MAX_SIZE, &text, NULL, err) < 0)
    return error_wrap(err, "read the mount table");
  mount_table_parse(text, out);
  free(text);
  return 0;
}

void
mount_table_clear(struct mount_table *table)
{
  for (size_t i = 0; i < table->n; i++)
    {
      free(table->entries[i].mountpoint);
      free(table->entries[i].optional);
      free(table->entries[i].fstype);
    }
  free(table->entries);
  table->entries = NULL;
  table->n = 0;
}

bool
mount_path_within(const char *path, const char *mount_point)
{
  size_t len = strlen(mount_point);

  if (strcmp(mount_point, "/") == 0)
    return path[0] == '/';
  return strncmp(path, mount_point, len) == 0 && (path[len] == '/' || path[len] == '\0');
}

const struct mount_entry *
mount_table_holder(const struct mount_table *table, const char *path)
{
  const struct mount_entry *best = NULL;
  size_t best_len = 0;

  /* Later lines stack on earlier ones at the same mount point. */
  for (size_t i = 0; i < table->n; i++)
    {
      size_t len = strlen(table->entries[i].mountpoint);
      if (mount_path_within(path, table->entries[i].mountpoint) && len >= best_len)
        {
          best = &table->entries[i];
          best_len = len;
        }
    }
  return best;
}
