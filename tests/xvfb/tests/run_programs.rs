//! X.Org's own test programs under `guievict run` give the same results as direct: rendercheck
//! (RENDER correctness, pixel-exact checks done by the program itself) and x11perf (completes
//! every test it is asked for).
use std::process::Command;
use xvfb_harness::*;

fn output(display: &str, via_guievict: bool, argv: &[&str]) -> String {
    let bin = guievict_bin();
    let mut cmd = if via_guievict {
        let mut c = Command::new(&bin);
        c.args(["run", "--display", display, "--"]).args(argv);
        c
    } else {
        let mut c = Command::new(argv[0]);
        c.args(&argv[1..]);
        c
    };
    let out = cmd.env("DISPLAY", display).output().expect("run program");
    assert!(
        out.status.success(),
        "{argv:?} (via guievict: {via_guievict}) failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn rendercheck_same_results_under_run() {
    with_timeout(180, || {
        if !std::path::Path::new("/usr/bin/rendercheck").exists() {
            skip("rendercheck not installed (it comes with x11-apps)");
            return;
        }
        let x = Xvfb::start().expect("Xvfb");
        let argv = [
            "rendercheck",
            "-t",
            "fill,blend,repeat,gradients",
            "-o",
            "over,src,add",
        ];
        let summary = |s: &str| {
            s.lines()
                .find(|l| l.contains("tests passed of"))
                .map(str::to_string)
                .unwrap_or_else(|| panic!("no summary in rendercheck output:\n{s}"))
        };
        let direct = summary(&output(&x.display, false, &argv));
        let relayed = summary(&output(&x.display, true, &argv));
        eprintln!("direct: {direct}\nunder guievict run: {relayed}");
        assert_eq!(direct, relayed);
        let n: Vec<&str> = direct.split_whitespace().collect();
        assert_eq!(n[0], n[4], "rendercheck itself fails directly: {direct}");
    });
}

#[test]
fn x11perf_completes_under_run() {
    with_timeout(180, || {
        let x = Xvfb::start().expect("Xvfb");
        let argv = [
            "x11perf",
            "-repeat",
            "1",
            "-time",
            "1",
            "-pointer",
            "-rect10",
            "-putimage10",
            "-copywinwin10",
        ];
        let tests = |s: &str| s.lines().filter(|l| l.contains("reps @")).count();
        let direct = output(&x.display, false, &argv);
        let relayed = output(&x.display, true, &argv);
        assert_eq!(tests(&direct), 4, "direct x11perf output:\n{direct}");
        assert_eq!(tests(&relayed), 4, "x11perf under guievict run:\n{relayed}");
    });
}
