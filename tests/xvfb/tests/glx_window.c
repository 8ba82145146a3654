/* Test fixture for e2e_glx.rs: a GLX 1.3 program (glXCreateNewContext + glXCreateWindow, direct
 * rendering with Mesa's software renderer) that draws a triangle on Expose and, on each key
 * press, clears with the next background colour, so a test sees that the context still draws
 * after a move. Build: cc -o glx_window glx_window.c -lGL -lX11 */
#include <X11/Xlib.h>
#include <GL/gl.h>
#include <GL/glx.h>
#include <stdio.h>
int main(void) {
    Display *d = XOpenDisplay(NULL);
    if (!d) { fprintf(stderr, "no display\n"); return 1; }
    int attrs[] = {GLX_DOUBLEBUFFER, True, GLX_RED_SIZE, 8, GLX_DRAWABLE_TYPE, GLX_WINDOW_BIT,
                   None};
    int n = 0;
    GLXFBConfig *cfgs = glXChooseFBConfig(d, DefaultScreen(d), attrs, &n);
    if (!cfgs || n == 0) { fprintf(stderr, "no FBConfig\n"); return 1; }
    XVisualInfo *vi = glXGetVisualFromFBConfig(d, cfgs[0]);
    Window root = RootWindow(d, vi->screen);
    XSetWindowAttributes swa;
    swa.colormap = XCreateColormap(d, root, vi->visual, AllocNone);
    swa.event_mask = ExposureMask | KeyPressMask | StructureNotifyMask;
    swa.background_pixel = 0;
    Window w = XCreateWindow(d, root, 3, 3, 320, 240, 0, vi->depth, InputOutput, vi->visual,
                             CWColormap | CWEventMask | CWBackPixel, &swa);
    XStoreName(d, w, "glx-window");
    GLXContext ctx = glXCreateNewContext(d, cfgs[0], GLX_RGBA_TYPE, NULL, True);
    GLXWindow gw = glXCreateWindow(d, cfgs[0], w, NULL);
    XMapWindow(d, w);
    glXMakeContextCurrent(d, gw, gw, ctx);
    printf("direct=%d\n", glXIsDirect(d, ctx));
    fflush(stdout);
    int keys = 0;
    for (;;) {
        XEvent ev;
        XNextEvent(d, &ev);
        if (ev.type == KeyPress)
            keys++;
        if (ev.type == Expose || ev.type == ConfigureNotify || ev.type == KeyPress) {
            glClearColor(0.15f * (keys % 6), 0.2f, 0.6f, 1.0f);
            glClear(GL_COLOR_BUFFER_BIT);
            glBegin(GL_TRIANGLES);
            glColor3f(1, 0, 0); glVertex2f(-0.8f, -0.8f);
            glColor3f(0, 1, 0); glVertex2f(0.8f, -0.8f);
            glColor3f(0, 0, 1); glVertex2f(0.0f, 0.8f);
            glEnd();
            glXSwapBuffers(d, gw);
        }
    }
}
