/* Headers bindgen reads to produce the X server's struct layouts (build.rs). Order matters:
 * xorg-server.h carries the configuration the other headers depend on. */
#include <xorg-server.h>
#include <dix.h>
#include <dixstruct.h>
#include <resource.h>
#include <dixaccess.h>
#include <extension.h>
#include <extnsionst.h>
#include <windowstr.h>
#include <pixmapstr.h>
#include <gcstruct.h>
#include <cursorstr.h>
#include <colormapst.h>
#include <scrnintstr.h>
#include <regionstr.h>
#include <dixfontstr.h>
#include <X11/fonts/fontstruct.h>
#include <picturestr.h>
#include <glyphstr.h>
#include <servermd.h>
#include <xf86Module.h>
#include <os.h>
#include <registry.h>
#include <xorgVersion.h>
#include <inputstr.h>
#include <xkbsrv.h>

