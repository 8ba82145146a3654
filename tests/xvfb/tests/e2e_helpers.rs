//! Issue 13: helpers that hold an X connection for an application but leave its process tree.
//! GTK/GIO starts `dbus-launch --autolaunch`, which daemonises and keeps an X connection to the
//! display; `guievict move --pid` cannot take it along and must say so rather than stay
//! silent. The test stands a real X client in for it — xlogo run under the name `dbus-launch`
//! (a symlink: the kernel names the process after it), started apart from the app — and
//! checks that the move of the app names the helper's pid as not moved, and that the helper
//! indeed stays on A while the app goes to B.
use std::process::Command;
use std::time::Duration;
use xvfb_harness::*;

#[test]
fn a_move_names_the_dbus_launch_helper_it_leaves_behind() {
    with_timeout(60, || {
        let a = Xvfb::start().expect("Xvfb A");
        let b = Xvfb::start().expect("Xvfb B");
        let dir = artifacts_dir().join(format!("helpers-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let fake = dir.join("dbus-launch");
        std::os::unix::fs::symlink("/usr/bin/xlogo", &fake).expect("symlink");
        let fake = fake.to_str().expect("utf-8 path").to_string();
        let helper = App::spawn(&a.display, &[&fake, "-geometry", "100x100+300+0"])
            .expect("the stand-in helper");
        let hw = wait_for_window(&a.display, helper.pid, Duration::from_secs(20))
            .expect("helper window");
        let app = App::spawn(&a.display, &["xclock", "-geometry", "100x100+0+0"]).expect("xclock");
        wait_for_window(&a.display, app.pid, Duration::from_secs(20)).expect("xclock window");

        let out = Command::new(guievict_bin())
            .args(["move", "--pid", &app.pid.to_string(), &b.display])
            .output()
            .expect("guievict move");
        let err = String::from_utf8_lossy(&out.stderr);
        eprintln!("{err}");
        assert!(out.status.success(), "move failed: {err}");
        assert!(
            err.contains(&format!("dbus-launch (pid {})", helper.pid)) && err.contains("not moved"),
            "the move did not name the helper it left behind: {err}"
        );
        wait_for_window(&b.display, app.pid, Duration::from_secs(10)).expect("xclock on B");
        assert!(
            windows_of_pid(&a.display, helper.pid).is_ok_and(|ws| ws.contains(&hw)),
            "the helper's window left A"
        );

        // Nothing to say when the helper is on another display than the app.
        let out = Command::new(guievict_bin())
            .args(["move", "--pid", &app.pid.to_string(), &a.display])
            .output()
            .expect("guievict move back");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "move back failed: {err}");
        assert!(
            !err.contains("dbus-launch"),
            "a helper on another display was named: {err}"
        );
    });
}
