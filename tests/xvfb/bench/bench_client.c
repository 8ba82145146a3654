/* Benchmark client for guievict-bench: a small xcb program that measures X request rates on
 * its own connection, on command. It connects to $DISPLAY, maps a 120x120 window, prints
 * "READY <window>" and then reads commands on stdin, one per line:
 *
 *   measure <test> <ms>   run one test for <ms> milliseconds and print one line
 *                         "RESULT <test> <per second>"; tests:
 *                    pointer:  QueryPointer round trips (request + reply)
 *                    putimage: PutImage 100x100 ZPixmap, pipelined, synced at the end
 *                    rect:     10x10 filled rectangles (PolyFillRectangle, 50 per request),
 *                              synced at the end
 *   quit           exit 0
 *
 * Between commands the client sits in read(0), never inside libxcb, so `guievict hijack`
 * always finds it at a safe point and the measurement is not disturbed by the injection.
 * Any X error or connection error is printed as "ERROR …" and ends the process with status 1:
 * a benchmark must never count failed requests as fast ones.
 *
 * Usage: bench_client [X Y]   (window position; give every concurrent client its own spot so
 *                               that no window obscures another — obscured drawing is clipped
 *                               away and would look faster)
 * Build: cc -O2 bench_client.c -lxcb -o bench_client
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xcb/xcb.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die_conn(xcb_connection_t *c, const char *what) {
    printf("ERROR connection error %d during %s\n", xcb_connection_has_error(c), what);
    fflush(stdout);
    exit(1);
}

/* One round trip that also reports any error queued for earlier void requests. */
static void sync_checked(xcb_connection_t *c, const char *what) {
    xcb_generic_error_t *err = NULL;
    xcb_get_input_focus_reply_t *r =
        xcb_get_input_focus_reply(c, xcb_get_input_focus(c), &err);
    if (!r) {
        if (err) {
            printf("ERROR X error %d during %s\n", err->error_code, what);
            fflush(stdout);
            exit(1);
        }
        die_conn(c, what);
    }
    free(r);
    /* Errors of unchecked void requests arrive as events. */
    xcb_generic_event_t *ev;
    while ((ev = xcb_poll_for_event(c)) != NULL) {
        if (ev->response_type == 0) {
            printf("ERROR X error %d during %s\n", ((xcb_generic_error_t *)ev)->error_code,
                   what);
            fflush(stdout);
            exit(1);
        }
        free(ev);
    }
    if (xcb_connection_has_error(c))
        die_conn(c, what);
}

static double bench_pointer(xcb_connection_t *c, xcb_window_t win, double secs) {
    double t0 = now_s(), t;
    long n = 0;
    do {
        for (int i = 0; i < 20; i++) {
            xcb_generic_error_t *err = NULL;
            xcb_query_pointer_reply_t *r =
                xcb_query_pointer_reply(c, xcb_query_pointer(c, win), &err);
            if (!r) {
                if (err) {
                    printf("ERROR X error %d during QueryPointer\n", err->error_code);
                    fflush(stdout);
                    exit(1);
                }
                die_conn(c, "QueryPointer");
            }
            free(r);
            n++;
        }
        t = now_s();
    } while (t - t0 < secs);
    return (double)n / (t - t0);
}

static double bench_putimage(xcb_connection_t *c, xcb_window_t win, xcb_gcontext_t gc,
                             uint8_t depth, const uint8_t *data, uint32_t len, double secs) {
    double t0 = now_s(), t;
    long n = 0;
    do {
        for (int i = 0; i < 50; i++) {
            xcb_put_image(c, XCB_IMAGE_FORMAT_Z_PIXMAP, win, gc, 100, 100, (int16_t)(i % 20),
                          0, 0, depth, len, data);
            n++;
        }
        xcb_flush(c);
        t = now_s();
    } while (t - t0 < secs);
    sync_checked(c, "PutImage");
    t = now_s();
    return (double)n / (t - t0);
}

static double bench_rect(xcb_connection_t *c, xcb_window_t win, xcb_gcontext_t gc,
                         double secs) {
    xcb_rectangle_t rects[50];
    for (int i = 0; i < 50; i++) {
        rects[i].x = (int16_t)((i % 10) * 11);
        rects[i].y = (int16_t)((i / 10) * 11);
        rects[i].width = 10;
        rects[i].height = 10;
    }
    double t0 = now_s(), t;
    long n = 0;
    do {
        for (int i = 0; i < 100; i++) {
            xcb_poly_fill_rectangle(c, win, gc, 50, rects);
            n += 50;
        }
        xcb_flush(c);
        t = now_s();
    } while (t - t0 < secs);
    sync_checked(c, "PolyFillRectangle");
    t = now_s();
    return (double)n / (t - t0);
}

int main(int argc, char **argv) {
    int16_t x = argc > 2 ? (int16_t)atoi(argv[1]) : 0;
    int16_t y = argc > 2 ? (int16_t)atoi(argv[2]) : 0;
    int screen_num = 0;
    xcb_connection_t *c = xcb_connect(NULL, &screen_num);
    if (xcb_connection_has_error(c)) {
        printf("ERROR cannot connect to $DISPLAY\n");
        return 1;
    }
    xcb_screen_iterator_t it = xcb_setup_roots_iterator(xcb_get_setup(c));
    for (int i = 0; i < screen_num; i++)
        xcb_screen_next(&it);
    xcb_screen_t *s = it.data;
    xcb_window_t win = xcb_generate_id(c);
    uint32_t vals[2] = {s->white_pixel, 0};
    xcb_create_window(c, XCB_COPY_FROM_PARENT, win, s->root, x, y, 120, 120, 0,
                      XCB_WINDOW_CLASS_INPUT_OUTPUT, s->root_visual, XCB_CW_BACK_PIXEL, vals);
    static const char title[] = "guievict-bench-client";
    xcb_change_property(c, XCB_PROP_MODE_REPLACE, win, XCB_ATOM_WM_NAME, XCB_ATOM_STRING, 8,
                        sizeof title - 1, title);
    xcb_map_window(c, win);
    xcb_gcontext_t gc = xcb_generate_id(c);
    uint32_t gcv[2] = {s->black_pixel, 0};
    xcb_create_gc(c, gc, win, XCB_GC_FOREGROUND, gcv);
    /* 100x100 image at the root depth; 32 bits per pixel for depth 24/32, 16 for 15/16. */
    uint8_t depth = s->root_depth;
    uint32_t bpp = depth > 16 ? 4 : 2;
    uint32_t len = 100 * 100 * bpp;
    uint8_t *data = malloc(len);
    if (!data)
        return 1;
    for (uint32_t i = 0; i < len; i++)
        data[i] = (uint8_t)(i * 7);
    sync_checked(c, "setup");
    printf("READY %u\n", win);
    fflush(stdout);

    char line[128];
    while (fgets(line, sizeof line, stdin)) {
        int ms;
        char test[16];
        if (strncmp(line, "quit", 4) == 0)
            break;
        if (sscanf(line, "measure %15s %d", test, &ms) == 2 && ms > 0) {
            double secs = ms / 1000.0, rate;
            if (strcmp(test, "pointer") == 0)
                rate = bench_pointer(c, win, secs);
            else if (strcmp(test, "putimage") == 0)
                rate = bench_putimage(c, win, gc, depth, data, len, secs);
            else if (strcmp(test, "rect") == 0)
                rate = bench_rect(c, win, gc, secs);
            else {
                printf("ERROR unknown test %s\n", test);
                fflush(stdout);
                continue;
            }
            printf("RESULT %s %.1f\n", test, rate);
            fflush(stdout);
        } else {
            printf("ERROR unknown command %s", line);
            fflush(stdout);
        }
    }
    xcb_disconnect(c);
    free(data);
    return 0;
}
