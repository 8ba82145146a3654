/* Busy multi-threaded xcb client for the hijack stress test (tests/xvfb/tests/hijack_stress.rs).
 * Three threads share one xcb connection and, until the deadline, send nonstop:
 *   - void requests (ChangeProperty of a per-thread property with a running counter),
 *   - round trips (GetProperty of that property: the value must be the one just written),
 *   - checked requests (ChangeProperty_checked: xcb_request_check must return NULL),
 *   - InternAtom of a per-thread name: the atom must never change.
 * Prints "OK <requests>" and exits 0, or "FAIL ..." and exits 1 on any inconsistency or
 * connection error. Usage: hijack_stress_client <seconds>  (DISPLAY from the environment). */
#include <xcb/xcb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static xcb_connection_t *conn;
static xcb_window_t win;
static double deadline;
static useconds_t pause_us;
static volatile int failed;
static unsigned long total[3];

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fail(const char *what, int t, unsigned long i) {
    failed = 1;
    printf("FAIL thread %d iteration %lu: %s (connection error %d)\n", t, i, what,
           xcb_connection_has_error(conn));
    fflush(stdout);
}

static void *worker(void *arg) {
    int t = (int)(long)arg;
    char name[32];
    snprintf(name, sizeof name, "GUIEVICT_STRESS_%d", t);
    xcb_intern_atom_reply_t *ar =
        xcb_intern_atom_reply(conn, xcb_intern_atom(conn, 0, strlen(name), name), NULL);
    if (!ar) { fail("intern atom", t, 0); return NULL; }
    xcb_atom_t prop = ar->atom;
    free(ar);
    unsigned long i = 0;
    while (!failed && now() < deadline) {
        uint32_t v = (uint32_t)(i * 3 + t);
        xcb_change_property(conn, XCB_PROP_MODE_REPLACE, win, prop, XCB_ATOM_CARDINAL, 32, 1, &v);
        xcb_get_property_reply_t *gr = xcb_get_property_reply(
            conn, xcb_get_property(conn, 0, win, prop, XCB_ATOM_CARDINAL, 0, 1), NULL);
        if (!gr) { fail("get property: no reply", t, i); break; }
        if (xcb_get_property_value_length(gr) != 4 ||
            *(uint32_t *)xcb_get_property_value(gr) != v) {
            free(gr);
            fail("get property: wrong value", t, i);
            break;
        }
        free(gr);
        v += 1;
        xcb_generic_error_t *e = xcb_request_check(
            conn, xcb_change_property_checked(conn, XCB_PROP_MODE_REPLACE, win, prop,
                                              XCB_ATOM_CARDINAL, 32, 1, &v));
        if (e) { free(e); fail("checked change property: error", t, i); break; }
        if (i % 16 == 0) {
            xcb_intern_atom_reply_t *r2 =
                xcb_intern_atom_reply(conn, xcb_intern_atom(conn, 0, strlen(name), name), NULL);
            if (!r2 || r2->atom != prop) { free(r2); fail("intern atom changed", t, i); break; }
            free(r2);
        }
        if (xcb_connection_has_error(conn)) { fail("connection error", t, i); break; }
        if (pause_us) usleep(pause_us);
        i++;
    }
    total[t] = i;
    return NULL;
}

int main(int argc, char **argv) {
    double secs = argc > 1 ? atof(argv[1]) : 5;
    pause_us = argc > 2 ? (useconds_t)atoi(argv[2]) : 0;
    conn = xcb_connect(NULL, NULL);
    if (xcb_connection_has_error(conn)) { printf("FAIL connect\n"); return 1; }
    xcb_screen_t *s = xcb_setup_roots_iterator(xcb_get_setup(conn)).data;
    win = xcb_generate_id(conn);
    xcb_create_window(conn, XCB_COPY_FROM_PARENT, win, s->root, 0, 0, 10, 10, 0,
                      XCB_WINDOW_CLASS_INPUT_OUTPUT, s->root_visual, 0, NULL);
    xcb_flush(conn);
    printf("READY\n");
    fflush(stdout);
    deadline = now() + secs;
    pthread_t th[3];
    for (long t = 0; t < 3; t++) pthread_create(&th[t], NULL, worker, (void *)t);
    for (int t = 0; t < 3; t++) pthread_join(th[t], NULL);
    if (failed) return 1;
    printf("OK %lu\n", total[0] + total[1] + total[2]);
    return 0;
}
