/* Test fixture for e2e_refuse.rs: preloaded into Xvfb (LD_PRELOAD, next to the GUIEVICT
 * extension), it makes the server answer "not present" to QueryExtension for the extension
 * named in GUIEVICT_TEST_HIDE_EXTENSION. Xvfb cannot disable some extensions with `-extension`
 * ("Present can not be disabled"), yet servers without them exist (Xnest, older servers,
 * remote-display servers); to every client this server is one of them.
 *
 * How: ProcVector[X_QueryExtension] is wrapped; a request naming the hidden extension has one
 * byte of its name changed in the request buffer before the server's own handler runs, which
 * then answers present=false in order. Looked up with dlsym, so that in a process that is not
 * an X server (xkbcomp, sh, started by Xvfb) this library does nothing.
 *
 * Build: cc -shared -fPIC -o refuse_hide_extension.so refuse_hide_extension.c -ldl */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

typedef int (*proc_fn)(void *client);

static proc_fn orig_query_extension;
static char hidden[64];

/* The first member of the server's ClientRec is the current request's buffer. */
struct client_head {
    unsigned char *request_buffer;
};

static int query_extension(void *client) {
    unsigned char *req = ((struct client_head *)client)->request_buffer;
    size_t want = strlen(hidden);
    /* xQueryExtensionReq: opcode, pad, length (2), nbytes (2), pad (2), then the name. */
    size_t nbytes = (size_t)req[4] | ((size_t)req[5] << 8);
    if (want > 0 && nbytes == want && memcmp(req + 8, hidden, want) == 0)
        req[8] ^= 0x20; /* "Present" -> "present": no such extension */
    return orig_query_extension(client);
}

__attribute__((constructor)) static void init(void) {
    proc_fn *pv = (proc_fn *)dlsym(RTLD_DEFAULT, "ProcVector");
    const char *name = getenv("GUIEVICT_TEST_HIDE_EXTENSION");
    if (!pv || !name)
        return;
    strncpy(hidden, name, sizeof hidden - 1);
    orig_query_extension = pv[98]; /* X_QueryExtension */
    pv[98] = query_extension;
}
