/* Text views of JSON replies for people (see render.c). */
#ifndef AGENTCTL_RENDER_H
#define AGENTCTL_RENDER_H

#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

/* Writes one scalar's text to buf (times by key name, see render.c). */
void render_scalar(const char *key, const json_t *v, char *buf, size_t len);

/* Writes v as aligned key: value lines and tables to f. */
void render_text(FILE *f, const json_t *v);

#endif
