//! `tandem deploy compose` from the command line, without Docker: a deployment folder
//! is written for an existing cluster file, and cluster flags beside `--cluster` are
//! refused rather than silently ignored (the file decides them).

use std::process::Command;

fn tandem(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(args)
        .output()
        .expect("run tandem")
}

#[test]
fn deploy_from_a_cluster_file_refuses_cluster_flags_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let keygen = tandem(&[
        "keygen",
        "--clients",
        "1",
        "--addresses",
        "r0:7100,r1:7100,r2:7100,r3:7100",
        "--out",
        keys.to_str().unwrap(),
    ]);
    assert!(keygen.status.success(), "{keygen:?}");
    let cluster = keys.join("cluster.toml");
    let cluster = cluster.to_str().unwrap();
    let out = dir.path().join("deploy");
    let out = out.to_str().unwrap();

    for flag in [
        &["--replicas", "7"][..],
        &["--executor", "sequential"][..],
        &["--protocol", "hotstuff"][..],
        &["--protocol-param", "window=512"][..],
    ] {
        let mut args = vec!["deploy", "compose", "--cluster", cluster, "--out", out];
        args.extend_from_slice(flag);
        let refused = tandem(&args);
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(
            !refused.status.success(),
            "{flag:?} was accepted beside --cluster"
        );
        assert!(
            stderr.contains(flag[0]) && stderr.contains("--cluster"),
            "the error names neither {} nor --cluster: {stderr}",
            flag[0]
        );
    }
    assert!(
        !std::path::Path::new(out).exists(),
        "a refused deploy wrote its folder"
    );

    let written = tandem(&["deploy", "compose", "--cluster", cluster, "--out", out]);
    assert!(written.status.success(), "{written:?}");
    let compose = std::fs::read_to_string(dir.path().join("deploy/compose.yaml")).unwrap();
    for replica in ["r0", "r1", "r2", "r3"] {
        assert!(
            compose.contains(replica),
            "{replica} missing from compose.yaml"
        );
    }
}
