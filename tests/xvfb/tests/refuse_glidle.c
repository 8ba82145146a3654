/* Test fixture for e2e_refuse.rs: an idle GLX program (one window, one GLX context; draws a
 * triangle on Expose and then waits). Build: cc -o refuse_glidle refuse_glidle.c -lGL -lX11 */
#include <X11/Xlib.h>
#include <GL/gl.h>
#include <GL/glx.h>
#include <stdio.h>
#include <stdlib.h>
int main(void) {
    Display *d = XOpenDisplay(NULL);
    if (!d) { fprintf(stderr, "no display\n"); return 1; }
    int attrs[] = {GLX_RGBA, GLX_DOUBLEBUFFER, GLX_DEPTH_SIZE, 16, None};
    XVisualInfo *vi = glXChooseVisual(d, DefaultScreen(d), attrs);
    if (!vi) { fprintf(stderr, "no visual\n"); return 1; }
    Window root = RootWindow(d, vi->screen);
    XSetWindowAttributes swa;
    swa.colormap = XCreateColormap(d, root, vi->visual, AllocNone);
    swa.event_mask = ExposureMask | KeyPressMask | StructureNotifyMask;
    swa.background_pixel = 0;
    Window w = XCreateWindow(d, root, 3, 3, 160, 120, 0, vi->depth, InputOutput, vi->visual,
                             CWColormap | CWEventMask | CWBackPixel, &swa);
    XStoreName(d, w, "glidle");
    GLXContext ctx = glXCreateContext(d, vi, NULL, True);
    XMapWindow(d, w);
    glXMakeCurrent(d, w, ctx);
    printf("direct=%d\n", glXIsDirect(d, ctx));
    fflush(stdout);
    for (;;) {
        XEvent ev;
        XNextEvent(d, &ev);
        if (ev.type == Expose || ev.type == ConfigureNotify) {
            glClearColor(0.1f, 0.2f, 0.6f, 1.0f);
            glClear(GL_COLOR_BUFFER_BIT);
            glBegin(GL_TRIANGLES);
            glColor3f(1, 0, 0); glVertex2f(-0.8f, -0.8f);
            glColor3f(0, 1, 0); glVertex2f(0.8f, -0.8f);
            glColor3f(0, 0, 1); glVertex2f(0.0f, 0.8f);
            glEnd();
            glXSwapBuffers(d, w);
        }
    }
}
