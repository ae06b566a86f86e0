/* The plugin loader: dlopen()s every *.so in the plugin directory and checks
 * it before any of its code runs. A refused file is logged with its path and
 * the reason, fully unwound (dlclose), and skipped; the daemon goes on.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host.h"

int plugin_check_file(const char *path, const struct stat *st, bool dev, const char **ret_why)
{
    if (!S_ISREG(st->st_mode)) {
        *ret_why = "not a regular file";
        return -EPERM;
    }
    if (dev)
        return 0;
    /* Whoever can write the file can run code as agentd. */
    if (st->st_uid != 0) {
        *ret_why = "not owned by root";
        return -EPERM;
    }
    if (st->st_mode & (S_IWGRP | S_IWOTH)) {
        *ret_why = "writable by group or others";
        return -EPERM;
    }
    return 0;
}

struct plugin_module *plugin_module_find(const char *name)
{
    for (struct plugin_module *m = host.modules; m; m = m->next)
        if (strcmp(m->desc->name, name) == 0)
            return m;
    return NULL;
}

static struct plugin_module *module_by_file(const char *file)
{
    for (struct plugin_module *m = host.modules; m; m = m->next)
        if (m->dl && strcmp(m->file, file) == 0)
            return m;
    return NULL;
}

static void module_append(struct plugin_module *mod)
{
    struct plugin_module **pp;

    for (pp = &host.modules; *pp; pp = &(*pp)->next)
        ;
    *pp = mod;
}

static bool valid_plugin_name(const char *name)
{
    if (!name || !*name || strlen(name) > 64)
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
            return false;
    return strcmp(name, "agentd") != 0;
}

/* Loads one file; returns 1 if a module was added, 0 if refused (logged). */
static int load_one(const char *path, bool dev)
{
    const struct agentd_plugin *desc;
    struct plugin_module *mod, *other;
    const char *why = NULL;
    struct stat st;
    void *dl;

    if (module_by_file(path))
        return 0;
    if (stat(path, &st) < 0) {
        log_error("plugin %s: refused: %s", path, strerror(errno));
        return 0;
    }
    if (plugin_check_file(path, &st, dev, &why) < 0) {
        log_error("plugin %s: refused: %s", path, why);
        return 0;
    }
    dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        log_error("plugin %s: refused: %s", path, dlerror());
        return 0;
    }
    desc = dlsym(dl, AGENTD_PLUGIN_SYMBOL);
    if (!desc) {
        log_error("plugin %s: refused: no '%s' symbol", path, AGENTD_PLUGIN_SYMBOL);
        goto refuse;
    }
    if (desc->abi != AGENTD_PLUGIN_ABI) {
        log_error("plugin %s: refused: ABI version %u, this agentd supports %u", path, desc->abi,
                  AGENTD_PLUGIN_ABI);
        goto refuse;
    }
    if (!valid_plugin_name(desc->name)) {
        log_error("plugin %s: refused: invalid plugin name", path);
        goto refuse;
    }
    other = plugin_module_find(desc->name);
    if (other) {
        log_error("plugin %s: refused: duplicate plugin name '%s' (already loaded from %s)", path,
                  desc->name, other->file);
        goto refuse;
    }
    mod = calloc(1, sizeof(*mod));
    if (!mod || !(mod->file = strdup(path))) {
        free(mod);
        log_error("plugin %s: refused: out of memory", path);
        goto refuse;
    }
    mod->desc = desc;
    mod->dl = dl;
    module_append(mod);
    log_debug("plugin %s: loaded '%s'", path, desc->name);
    return 1;

refuse:
    dlclose(dl);
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int plugin_scan_dir(const char *dir)
{
    const char *devenv = getenv("AGENTD_PLUGIN_DEV");
    bool dev = devenv && strcmp(devenv, "1") == 0;
    char **names = NULL, path[PATH_MAX];
    size_t n = 0, cap = 0;
    struct dirent *de;
    int added = 0;
    DIR *d;

    d = opendir(dir);
    if (!d)
        return -errno;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (de->d_name[0] == '.' || len < 4 || strcmp(de->d_name + len - 3, ".so") != 0)
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **nn = ncap > 4096 ? NULL : realloc(names, ncap * sizeof(*nn));
            if (!nn)
                break;
            names = nn;
            cap = ncap;
        }
        if (!(names[n] = strdup(de->d_name)))
            break;
        n++;
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof(*names), cmp_names);
    for (size_t i = 0; i < n; i++) {
        if (snprintf(path, sizeof(path), "%s/%s", dir, names[i]) < (int)sizeof(path))
            added += load_one(path, dev);
        free(names[i]);
    }
    free(names);
    return added;
}

void plugin_register_builtins(void)
{
    for (size_t i = 0; builtin_plugins[i]; i++) {
        struct plugin_module *mod;
        if (plugin_module_find(builtin_plugins[i]->name))
            continue;
        mod = calloc(1, sizeof(*mod));
        if (!mod || !(mod->file = strdup("built-in"))) {
            free(mod);
            continue;
        }
        mod->desc = builtin_plugins[i];
        module_append(mod);
    }
}

void plugin_modules_free(void)
{
    while (host.modules) {
        struct plugin_module *m = host.modules;
        host.modules = m->next;
        if (m->dl)
            dlclose(m->dl);
        free(m->file);
        free(m);
    }
}
