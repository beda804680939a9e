/* tests/unit/proc_self: what a test sees of its own process in /proc, to
 * check that code under test leaves no thread or fd behind.  Needs cmocka
 * included before it. */
#ifndef CRID_TESTS_UNIT_PROC_SELF_H
#define CRID_TESTS_UNIT_PROC_SELF_H

#include <dirent.h>
#include <stdio.h>

/* Entries of a directory in /proc/self: "task" (threads), "fd" (the count
 * includes the fd this call reads it with: compare counts, not values). */
static inline int
proc_self_count(const char *name)
{
  char path[64];
  DIR *dir;
  struct dirent *entry;
  int n = 0;

  snprintf(path, sizeof path, "/proc/self/%s", name);
  dir = opendir(path);
  assert_non_null(dir);
  while ((entry = readdir(dir)) != NULL)
    if (entry->d_name[0] != '.')
      n++;
  closedir(dir);
  return n;
}

#endif
