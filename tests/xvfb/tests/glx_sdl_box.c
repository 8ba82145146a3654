/* Test fixture for e2e_glx.rs: an SDL2 program with SDL's default renderer (OpenGL through
 * GLX on X11): a dark window whose orange bars count the key presses, redrawn every 30 ms.
 * Build: cc -o glx_sdl_box glx_sdl_box.c $(pkg-config --cflags --libs sdl2) */
#include <SDL2/SDL.h>
int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    if (SDL_Init(SDL_INIT_VIDEO) != 0) { SDL_Log("SDL_Init: %s", SDL_GetError()); return 1; }
    SDL_Window *w = SDL_CreateWindow("sdl-box", 40, 40, 320, 200, 0);
    SDL_Renderer *r = SDL_CreateRenderer(w, -1, 0);
    if (!w || !r) { SDL_Log("window/renderer: %s", SDL_GetError()); return 1; }
    SDL_RendererInfo info;
    SDL_GetRendererInfo(r, &info);
    SDL_Log("renderer %s", info.name);
    int n = 0, run = 1;
    while (run) {
        SDL_Event e;
        while (SDL_PollEvent(&e)) {
            if (e.type == SDL_QUIT) run = 0;
            if (e.type == SDL_KEYDOWN) n++;
        }
        SDL_SetRenderDrawColor(r, 20, 20, 60, 255);
        SDL_RenderClear(r);
        SDL_SetRenderDrawColor(r, 200, 80, 40, 255);
        for (int i = 0; i < n && i < 20; i++) {
            SDL_Rect b = {10 + i * 15, 80, 10, 40};
            SDL_RenderFillRect(r, &b);
        }
        SDL_RenderPresent(r);
        SDL_Delay(30);
    }
    SDL_Quit();
    return 0;
}
