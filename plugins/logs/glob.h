/* Path patterns for file sources: '*', '?', '[...]' within one path segment
 * (fnmatch rules, a leading '.' only matched explicitly) and "**" as a whole
 * segment for any number of directories. Pure code, unit tested. */
#ifndef LOGS_GLOB_H
#define LOGS_GLOB_H

#include <stdbool.h>
#include <stddef.h>

/* Deepest "**" descent: bounds the walk and breaks symlink cycles. */
#define GLOB_MAX_DEPTH 16

/* Called for each regular file found, and (is_link) for each symbolic link
 * the walk did not take; return < 0 to stop the walk. */
typedef int (*glob_fn)(const char *path, bool is_link, void *ud);

bool glob_has_magic(const char *s);
/* Whether path matches the absolute pattern. */
bool glob_match(const char *pattern, const char *path);
/* Writes the longest directory prefix of pattern without magic (the
 * directory to watch for new files) into buf. Returns 0 or -ENAMETOOLONG. */
int glob_base_dir(const char *pattern, char *buf, size_t size);
/* Walks the file system for regular files matching the absolute pattern.
 * Returns 0, or the callback's negative value. Unreadable directories are
 * skipped. Unless follow is set, symbolic links are never taken: not as the
 * file, not as a directory met by '*' or '**', and not as a named directory
 * below one (each link met is passed to fn with is_link) (the fixed prefix before the first magic
 * segment is the admin's own and is resolved as usual). */
int glob_walk(const char *pattern, bool follow, glob_fn fn, void *ud);

#endif
