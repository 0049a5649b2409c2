//! Bulk data through the proxy with real tools: `scp` of 100 MiB arrives
//! intact (SHA-256 compared), and `git clone` over ssh of a bare
//! repository on the node side works.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Read as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use common::{run_ok, Env};

fn sha256(path: &Path) -> String {
    let out = run_ok(Command::new("sha256sum").arg(path));
    out.split_whitespace().next().unwrap().to_owned()
}

#[test]
fn scp_of_100_mib_and_git_clone_through_the_proxy() {
    let env = Env::start();
    let dir = env.sshd.dir();

    // 100 MiB of random bytes, there and back.
    let source = dir.join("payload.bin");
    {
        let mut random = std::fs::File::open("/dev/urandom").unwrap().take(100 << 20);
        let mut file = std::fs::File::create(&source).unwrap();
        std::io::copy(&mut random, &mut file).unwrap();
    }
    let uploaded = dir.join("uploaded.bin");
    let started = Instant::now();
    let out = Command::new("scp")
        .arg("-F")
        .arg(&env.ssh_config)
        .arg(&source)
        .arg(format!("web-1:{}", uploaded.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scp up: {}\nproxy log:\n{}\nsshd log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        env.proxy_logs(),
        env.sshd.log()
    );
    let up = started.elapsed();
    let downloaded = dir.join("downloaded.bin");
    let started = Instant::now();
    run_ok(
        Command::new("scp")
            .arg("-F")
            .arg(&env.ssh_config)
            .arg(format!("web-1:{}", uploaded.display()))
            .arg(&downloaded),
    );
    let down = started.elapsed();
    let want = sha256(&source);
    assert_eq!(sha256(&uploaded), want, "the upload changed on the way");
    assert_eq!(sha256(&downloaded), want, "the download changed on the way");
    println!(
        "scp 100 MiB through the proxy (debug build): up {:.1} s, down {:.1} s",
        up.as_secs_f64(),
        down.as_secs_f64()
    );
    let log = std::fs::read_to_string(env.proxy_log()).unwrap();
    assert!(
        log.contains("\"event\":\"close\""),
        "no close event with byte counts:\n{log}"
    );
    for f in [&source, &uploaded, &downloaded] {
        std::fs::remove_file(f).unwrap();
    }

    // git clone over ssh: a bare repository on the node side.
    let work = dir.join("work");
    let bare = dir.join("repo.git");
    let git = |args: &[&str], cwd: &Path| {
        run_ok(
            Command::new("git")
                .args([
                    "-c",
                    "user.name=Signet Test",
                    "-c",
                    "user.email=test@signet.invalid",
                    "-c",
                    "init.defaultBranch=main",
                ])
                .args(args)
                .current_dir(cwd)
                .env(
                    "GIT_SSH_COMMAND",
                    format!("ssh -F {}", env.ssh_config.display()),
                ),
        )
    };
    std::fs::create_dir(&work).unwrap();
    git(&["init", "-q"], &work);
    std::fs::write(work.join("README"), "through the proxy\n").unwrap();
    git(&["add", "README"], &work);
    git(&["commit", "-q", "-m", "first"], &work);
    git(
        &[
            "clone",
            "-q",
            "--bare",
            work.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
        &dir,
    );
    let clone = dir.join("clone");
    git(
        &[
            "clone",
            "-q",
            &format!("web-1:{}", bare.display()),
            clone.to_str().unwrap(),
        ],
        &dir,
    );
    assert_eq!(
        std::fs::read_to_string(clone.join("README")).unwrap(),
        "through the proxy\n"
    );
    assert_eq!(
        git(&["rev-parse", "HEAD"], &clone),
        git(&["rev-parse", "HEAD"], &work)
    );
    // And a push back through the proxy.
    std::fs::write(clone.join("second"), "2\n").unwrap();
    git(&["add", "second"], &clone);
    git(&["commit", "-q", "-m", "second"], &clone);
    git(&["push", "-q", "origin", "HEAD"], &clone);
    assert_eq!(
        git(&["rev-parse", "HEAD"], &clone),
        git(&["rev-parse", "HEAD"], &bare)
    );
}
