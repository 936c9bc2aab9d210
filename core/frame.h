/*
** frame.h: splitting a byte stream into JSON-RPC frames: ndjson (one JSON text per line) or
** lsp (Content-Length headers). Memory is bounded: a frame over the cap is skipped as it
** arrives, never buffered whole.
*/
#ifndef HC_FRAME_H
#define HC_FRAME_H

#include <stddef.h>
#include "buf.h"
#include "hostcall.h"


#define HC_LSP_MAX_HEADER 8192   /* a header block longer than this cannot be resynchronised */

typedef enum {
  HC_FRAME_NONE = 0,    /* need more input */
  HC_FRAME_OK,          /* *frame, *len hold one frame (valid until the next call) */
  HC_FRAME_OVERSIZE,    /* a frame over the cap was (or is being) skipped: answer -32002 size */
  HC_FRAME_BAD,         /* a malformed lsp header block, skipped: answer -32700 with *msg */
  HC_FRAME_FATAL        /* the stream cannot be resynchronised: answer -32700 and close */
} hc_frame_event;

typedef struct hc_framer {
  hc_framing mode;
  size_t max;           /* request_bytes */
  hc_buf in;            /* unconsumed input */
  size_t pos;           /* start of unconsumed bytes in `in` */
  size_t scan;          /* ndjson: bytes after pos already known to hold no newline */
  size_t skip;          /* lsp: body bytes still to discard */
  int discarding;       /* ndjson: dropping an oversized line until its newline */
  const char *msg;      /* message for HC_FRAME_BAD / HC_FRAME_FATAL */
  size_t event_bytes;   /* bytes of the frame an OVERSIZE/BAD event is about (as far as seen) */
} hc_framer;

void hc_framer_init(hc_framer *f, hc_framing mode, size_t max);
void hc_framer_free(hc_framer *f);
/* Give the framer n bytes of input; returns -1 when memory runs out. */
int hc_framer_feed(hc_framer *f, const char *data, size_t n);
/* Reserve room to read straight into the buffer: returns a pointer to at least `want` bytes. */
char *hc_framer_space(hc_framer *f, size_t want);
/* After reading `n` bytes into hc_framer_space's pointer. */
void hc_framer_commit(hc_framer *f, size_t n);
/* Next event; frames point into the framer's buffer and stay valid until the next feed/space. */
hc_frame_event hc_framer_next(hc_framer *f, const char **frame, size_t *len);
/* At end of input: an ndjson line without its final newline is still a frame. */
hc_frame_event hc_framer_eof(hc_framer *f, const char **frame, size_t *len);
/* Bytes buffered and not yet consumed (for tests and memory accounting). */
size_t hc_framer_pending(const hc_framer *f);

#endif
