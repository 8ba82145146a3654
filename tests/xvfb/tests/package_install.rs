//! The Debian package, installed as a user would get it: `scripts/build-deb.sh` packages the
//! release build, `dpkg-deb -x` unpacks it into a fresh directory (no root install into this
//! system), and everything then runs from the unpacked tree: its `guievict` finds its own hijack
//! library and extension beside it (relocatable, no override variables), two Xvfb servers load
//! the installed extension, an xterm is hijacked and moved between them by the installed
//! binary (window and display given in the order), the demo runs on it, and the man
//! pages and completions are there and describe the real commands.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use xvfb_harness::*;

/// Build the package from the release artifacts and unpack it; (the .deb, the unpacked root).
fn build_and_unpack(dir: &Path) -> (PathBuf, PathBuf) {
    let deb = dir.join("guievict.deb");
    let out = Command::new(workspace_root().join("scripts/build-deb.sh"))
        .arg("--no-build")
        .arg(&deb)
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .expect("running scripts/build-deb.sh");
    assert!(
        out.status.success(),
        "build-deb.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let root = dir.join("root");
    let ok = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&root)
        .status()
        .expect("dpkg-deb -x");
    assert!(ok.success(), "dpkg-deb -x failed");
    (deb, root)
}

/// The installed `guievict`, with no override variable pointing back into the build tree.
fn installed(root: &Path, args: &[&str]) -> std::process::Output {
    Command::new(root.join("usr/bin/guievict"))
        .args(args)
        .env_remove("GUIEVICT_XEXT")
        .env_remove("GUIEVICT_HIJACK")
        .env_remove("GUIEVICT_BIN")
        .output()
        .expect("running the installed guievict")
}

fn stdout_line(o: &std::process::Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn multiarch() -> String {
    let o = Command::new("gcc")
        .arg("-print-multiarch")
        .output()
        .expect("gcc -print-multiarch");
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn the_package_installs_into_a_clean_tree_and_moves_an_xterm_from_there() {
    with_timeout(240, || {
        let dir = artifacts_dir().join(format!("package-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let (deb, root) = build_and_unpack(&dir);

        // Control data: the fields apt needs.
        let info = Command::new("dpkg-deb")
            .args(["-f"])
            .arg(&deb)
            .args(["Package", "Version", "Architecture", "Depends"])
            .output()
            .expect("dpkg-deb -f");
        let info = String::from_utf8_lossy(&info.stdout);
        assert!(info.contains("Package: guievict"), "{info}");
        assert!(info.contains("Depends: libc6"), "{info}");

        // Files where Debian puts them.
        let ma = multiarch();
        let lib = root.join(format!("usr/lib/{ma}/guievict"));
        for f in [
            root.join("usr/bin/guievict"),
            lib.join("libguievict_hijack.so"),
            lib.join("libguievict_xext.so"),
            // The Xorg module (a link to the same file).
            root.join("usr/lib/xorg/modules/extensions/libguievict.so"),
        ] {
            let len = std::fs::metadata(&f)
                .unwrap_or_else(|e| panic!("{}: {e}", f.display()))
                .len();
            assert!(len > 0, "{} is empty", f.display());
        }
        assert_eq!(
            std::fs::canonicalize(root.join("usr/lib/xorg/modules/extensions/libguievict.so"))
                .expect("module link resolves"),
            std::fs::canonicalize(lib.join("libguievict_xext.so")).expect("ext"),
            "the Xorg module is not the extension"
        );

        // Man pages and completions generated from the real command line.
        let man = root.join("usr/share/man/man1");
        for page in [
            "guievict.1.gz",
            "guievict-move.1.gz",
            "guievict-doctor.1.gz",
        ] {
            let p = man.join(page);
            let o = Command::new("zcat").arg(&p).output().expect("zcat");
            let text = String::from_utf8_lossy(&o.stdout);
            assert!(text.contains(".TH"), "{} is not a man page", p.display());
        }
        let move_page = Command::new("zcat")
            .arg(man.join("guievict-move.1.gz"))
            .output()
            .expect("zcat");
        assert!(
            String::from_utf8_lossy(&move_page.stdout).contains("either order"),
            "the move page does not say that DISPLAY and WINDOW come in either order"
        );
        assert!(
            !man.join("guievict-generate.1.gz").exists(),
            "the hidden generate command got a man page"
        );
        for (f, shell) in [
            ("usr/share/bash-completion/completions/guievict", "bash"),
            ("usr/share/zsh/vendor-completions/_guievict", "zsh"),
            ("usr/share/fish/vendor_completions.d/guievict.fish", "fish"),
        ] {
            let text = std::fs::read_to_string(root.join(f))
                .unwrap_or_else(|e| panic!("{shell} completion {f}: {e}"));
            for word in ["move", "doctor", "replicate"] {
                assert!(text.contains(word), "{shell} completion lacks {word}");
            }
        }
        // The systemd user unit runs the watcher of `guievict protect` with the packaged binary.
        let unit =
            std::fs::read_to_string(root.join("usr/lib/systemd/user/guievict-protect@.service"))
                .expect("systemd user unit");
        assert!(
            unit.contains("ExecStart=/usr/bin/guievict protect --foreground --display %I"),
            "{unit}"
        );
        assert!(
            man.join("guievict-protect.1.gz").exists(),
            "no man page for protect"
        );
        // bash can load its completion and knows the subcommands.
        let o = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source {} && complete -p guievict",
                root.join("usr/share/bash-completion/completions/guievict")
                    .display()
            ))
            .output()
            .expect("bash");
        assert!(
            o.status.success(),
            "bash cannot load the completion: {}",
            String::from_utf8_lossy(&o.stderr)
        );

        // The unpacked binary finds its libraries relative to itself.
        let hijack = stdout_line(&installed(&root, &["hijack-path"]));
        let ext = stdout_line(&installed(&root, &["ext-path"]));
        let real_root = std::fs::canonicalize(&root).expect("root");
        assert!(
            Path::new(&hijack).starts_with(&real_root),
            "hijack-path {hijack} is not in the unpacked tree"
        );
        assert!(
            Path::new(&ext).starts_with(&real_root),
            "ext-path {ext} is not in the unpacked tree"
        );

        // Two servers with the installed extension; the installed doctor agrees.
        let server = || {
            Xvfb::start_with(XvfbOptions {
                preload_ext: false,
                env: vec![("LD_PRELOAD".into(), ext.clone())],
                ..Default::default()
            })
            .expect("Xvfb with the installed extension")
        };
        let a = server();
        let b = server();
        for d in [&a.display, &b.display] {
            let o = installed(&root, &["doctor", "--display", d, "--json"]);
            let v: serde_json::Value =
                serde_json::from_slice(&o.stdout).expect("doctor --json output");
            let ext_check = v["checks"]
                .as_array()
                .expect("checks")
                .iter()
                .find(|c| c["name"] == "guievict-extension")
                .expect("an extension check");
            assert_eq!(ext_check["verdict"], "ok", "doctor on {d}: {v}");
        }

        // An xterm moved A → B by the installed binary, window first, display second.
        let app = App::spawn(&a.display, &["xterm", "-geometry", "60x10+0+0", "-e", "sh"])
            .expect("xterm");
        let o = Command::new(root.join("usr/bin/guievict"))
            .args(["move", &format!("{:#x}", app.window), &b.display])
            .args(["--display", &a.display])
            .env_remove("GUIEVICT_XEXT")
            .env_remove("GUIEVICT_HIJACK")
            .output()
            .expect("installed guievict move");
        assert!(
            o.status.success(),
            "installed move failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let w =
            wait_for_window(&b.display, app.pid, Duration::from_secs(10)).expect("the xterm on B");
        // The library injected is the installed one.
        let maps = std::fs::read_to_string(format!("/proc/{}/maps", app.pid)).expect("maps");
        assert!(
            maps.contains(&hijack),
            "the xterm does not map the installed {hijack}"
        );
        // Typing reaches it on B.
        let file = dir.join("typed");
        xtest_type(
            &b.display,
            Some(w),
            &format!("echo installed > {}\n", file.display()),
        )
        .expect("type");
        wait_for_file(&file, "installed", Duration::from_secs(10));
        // `list --display B` from the installed binary knows it is hijacked and on B.
        let o = installed(&root, &["list", "--display", &b.display, "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("list --json");
        let row = v["clients"]
            .as_array()
            .expect("clients")
            .iter()
            .find(|c| c["pid"] == app.pid)
            .unwrap_or_else(|| panic!("xterm {} not listed on B: {v}", app.pid));
        assert_eq!(row["hijacked"], true, "{row}");
        assert_eq!(row["connections"][0], b.display.as_str(), "{row}");
        drop(app);

        // The demo, run on the installed tree.
        let demo_out = dir.join("demo");
        let o = Command::new(target_dir().join("release/guievict-demo"))
            .arg(&demo_out)
            .env("GUIEVICT_BIN", root.join("usr/bin/guievict"))
            .env("GUIEVICT_XEXT", &ext)
            .env_remove("GUIEVICT_HIJACK")
            .output()
            .expect("guievict-demo");
        let result = std::fs::read_to_string(demo_out.join("RESULT.txt")).unwrap_or_default();
        assert!(
            o.status.success() && result.contains("windows left on A: 0"),
            "the demo on the installed tree failed: {}\n{result}",
            String::from_utf8_lossy(&o.stderr)
        );
        let _ = std::fs::remove_dir_all(&dir);
    });
}
