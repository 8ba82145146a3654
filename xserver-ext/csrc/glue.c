/* C glue for the GUIEVICT extension.
 *
 * Why C here: everything below is a `static inline` function or a macro in the X server's
 * headers (region accessors, the devPrivates lookup behind GetPictureScreen).
 * bindgen cannot emit bodies for static inline functions or evaluate these macros, and copying
 * their logic into Rust would hand-copy server internals. So they are compiled from the very
 * headers the server was built with, and Rust calls these tiny exported wrappers. No logic of
 * the extension lives here. */
#include <xorg-server.h>
#include <xorgVersion.h>
#include <dix.h>
#include <regionstr.h>
#include <scrnintstr.h>
#include <picturestr.h>
#include <servermd.h>
#include <xf86Module.h>

/* Number of rectangles of a region (RegionNumRects is static inline). */
int guievict_region_num_rects(RegionPtr r) { return r ? RegionNumRects(r) : 0; }

/* Rectangles of a region (RegionRects is static inline). */
BoxPtr guievict_region_rects(RegionPtr r) { return r ? RegionRects(r) : NULL; }

/* The RENDER screen private (GetPictureScreenIfSet uses static inline dixLookupPrivate).
 * The key is referenced weakly so that this library still loads into processes that are not
 * X servers (where the constructor then does nothing). */
#pragma weak PictureScreenPrivateKeyRec
PictureScreenPtr guievict_picture_screen(ScreenPtr s)
{
    if (!s || &PictureScreenPrivateKeyRec == NULL)
        return NULL;
    return GetPictureScreenIfSet(s);
}

/* Bytes per row of a 1-bit bitmap (BitmapBytePad macro). */
int guievict_bitmap_byte_pad(int w) { return BitmapBytePad(w); }
