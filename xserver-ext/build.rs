//! Build script: generates the X server's struct layouts and function declarations from the
//! installed `xserver-xorg-dev` headers with bindgen, and compiles the small C glue for the
//! server's static-inline helpers and macro-initialised module data.

use std::path::PathBuf;

fn main() {
    let include = [
        "/usr/include/xorg",
        "/usr/include/pixman-1",
        "/usr/include/X11/dri",
        "/usr/include/libdrm",
    ];
    println!("cargo:rerun-if-changed=csrc/wrapper.h");
    println!("cargo:rerun-if-changed=csrc/glue.c");
    println!("cargo:rerun-if-changed=/usr/include/xorg/xorg-server.h");

    let mut b = bindgen::Builder::default()
        .header("csrc/wrapper.h")
        .allowlist_function(
            "LoadExtensionList|AddExtension|AddCallback|FindAllClientResources|LookupResourceName|WriteToClient\
             |GetGlyphPicture|MakeAtom|NameForAtom|dixLookupResourceByType|ResourceClientBits",
        )
        .allowlist_var(
            "ProcVector|screenInfo|serverGeneration|lastResourceType|BITMAP_SCANLINE_PAD\
             |MODINFOSTRING1|MODINFOSTRING2|ABI_EXTENSION_VERSION|XORG_VERSION_CURRENT\
             |ABI_CLASS_EXTENSION|MOD_CLASS_EXTENSION|serverClient|RT_WINDOW|RT_PIXMAP|DixGetAttrAccess\
             |inputInfo",
        )
        .allowlist_type(
            "_Window|_Pixmap|_GC|_Cursor|_CursorBits|_ColormapRec|_Picture|_GlyphSet|_Glyph\
             |_Client|_Screen|ScreenInfo|_ExtensionEntry|ExtensionModule|_Font|_PictFormat\
             |_SourcePict|_PictureScreen|XF86ModuleData|_FontProp|_GlyphHashSet|_PictFilter|SHAREDCOLOR\
             |_DeviceIntRec|_XkbInterest|InputInfo|_GrabRec|_GrabInfoRec|NewClientInfoRec|ClientState",
        )
        .derive_debug(false)
        .derive_default(false)
        .layout_tests(false)
        .clang_macro_fallback()
        // Server functions are looked up at run time (dlsym on the running server), so the .so
        // has no undefined server symbols and loads harmlessly into non-X processes.
        .dynamic_library_name("ServerFns")
        .dynamic_link_require_all(true)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
    for i in include {
        b = b.clang_arg(format!("-I{i}"));
    }
    let bindings = b
        .generate()
        .expect("bindgen failed on the xorg server headers");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    bindings
        .write_to_file(out.join("xorg.rs"))
        .expect("writing bindings");

    let mut cc = cc::Build::new();
    cc.file("csrc/glue.c")
        .warnings(true)
        .flag_if_supported("-fvisibility=hidden");
    for i in include {
        cc.include(i);
    }
    cc.compile("guievict_glue");
}
