/* embed.h: files compiled into the library (the trusted Lua glue, the demo policy). */
#ifndef HC_EMBED_H
#define HC_EMBED_H
#include <stddef.h>
typedef struct hc_embedded { const char *name; const char *data; size_t size; } hc_embedded;
extern const hc_embedded hc_embedded_lua[];      /* the glue, by path under lua/ */
extern const hc_embedded hc_embedded_policies[]; /* the shipped policies, by file name */
const hc_embedded *hc_embedded_find(const hc_embedded *table, const char *name);
#endif
