use super::policy::{PathKind, Refused};
use super::*;

fn argv(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_owned).collect()
}

/// `expected`: the command as it will run, or the refusal's message.
fn check_command(line: &str, expected: Result<&str, &str>) {
    let got = check(&argv(line))
        .map(|allowed| allowed.argv.join(" "))
        .map_err(|refused| refused.to_string());
    assert_eq!(
        got.as_deref().map_err(String::as_str),
        expected,
        "for {line:?}"
    );
}

#[test]
fn builds_and_image_chores_are_allowed_and_builds_are_labelled() {
    check_command(
        "podman build -t reg/app:1 -f Containerfile .",
        Ok("podman build --label io.gantry.built=1 -t reg/app:1 -f Containerfile -- ."),
    );
    check_command(
        "podman buildx build --tag=reg/app --build-arg A=1 --no-cache --network none ctx",
        Ok(
            "podman buildx build --label io.gantry.built=1 --tag reg/app --build-arg A=1 --no-cache --network none -- ctx",
        ),
    );
    check_command(
        "podman build -qt app --pull=always .",
        Ok("podman build --label io.gantry.built=1 -q -t app --pull=always -- ."),
    );
    check_command("podman push reg/app:1", Ok("podman push -- reg/app:1"));
    check_command(
        "podman push --tls-verify=false 127.0.0.1:5055/app:1",
        Ok("podman push --tls-verify=false -- 127.0.0.1:5055/app:1"),
    );
    check_command("podman tag a b", Ok("podman tag -- a b"));
    check_command("podman pull -q busybox", Ok("podman pull -q -- busybox"));
    check_command(
        "podman images --format {{.ID}}",
        Ok("podman images --format {{.ID}}"),
    );
    check_command("podman version", Ok("podman version"));
    check_command("podman info", Ok("podman info"));
}

#[test]
fn subcommands_that_reach_the_host_are_refused() {
    check_command(
        "podman run -v /:/h busybox cat /h/etc/shadow",
        Err(
            "`run` is refused: it runs or reaches a container with the engine's own rights (the server's or its runner's), unconfined (a step that needs an image runs in it: give the step that image)",
        ),
    );
    for subcommand in ["exec", "cp", "create"] {
        assert!(matches!(
            check(&argv(&format!("podman {subcommand} x"))),
            Err(Refused::Subcommand { .. })
        ));
    }
    for subcommand in ["save -o /tmp/x app", "load -i /x", "export c", "import /x"] {
        assert!(matches!(
            check(&argv(&format!("podman {subcommand}"))),
            Err(Refused::Subcommand { .. })
        ));
    }
    for subcommand in [
        "volume ls",
        "system prune",
        "machine init",
        "unshare sh",
        "frobnicate",
    ] {
        assert!(matches!(
            check(&argv(&format!("podman {subcommand}"))),
            Err(Refused::Subcommand { .. })
        ));
    }
    check_command(
        "podman buildx ls",
        Err("`buildx` is refused: of buildx only `buildx build` is allowed"),
    );
    check_command(
        "podman login -u me --password-stdin reg",
        Err(
            "`login` is refused: it would store registry credentials in the server's engine configuration, shared by every pipeline; give the stage `registry:` access and list the image in `images:`",
        ),
    );
    check_command(
        "podman --root /tmp/x build .",
        Err(
            "global option \"--root\" is refused: it chooses the engine's storage, runtime or connection",
        ),
    );
    check_command(
        "podman",
        Err("the engine CLI needs a subcommand (build, push, tag, pull, images, version, info)"),
    );
}

#[test]
fn build_options_that_reach_the_host_are_refused() {
    check_command(
        "podman build -v /:/h .",
        Err("option \"-v\" of `build` is refused: it mounts something of the host into the build"),
    );
    check_command(
        "podman build --volume=/:/h .",
        Err(
            "option \"--volume\" of `build` is refused: it mounts something of the host into the build",
        ),
    );
    for option in [
        "--mount type=bind,src=/,dst=/h",
        "--build-context h=/",
        "--secret id=k,src=/etc/shadow",
        "--ssh default",
        "--iidfile /tmp/id",
        "-o /tmp/out",
        "--output type=local,dest=/",
        "--authfile /root/auth.json",
        "--cert-dir /etc",
        "--security-opt seccomp=unconfined",
        "--cap-add ALL",
        "--device /dev/sda",
        "--userns host",
        "--isolation chroot",
        "--add-host a:1.2.3.4",
        "-qv /:/h",
    ] {
        let line = format!("podman build {option} .");
        assert!(
            matches!(check(&argv(&line)), Err(Refused::Option { .. })),
            "{line}"
        );
    }
    check_command(
        "podman build --network host .",
        Err(
            "option \"--network host\" of `build` is refused: the build would share the server's network namespace",
        ),
    );
    check_command(
        "podman build --network=host .",
        Err(
            "option \"--network host\" of `build` is refused: the build would share the server's network namespace",
        ),
    );
    check_command(
        "podman build -t",
        Err("option \"-t\" of `build` needs a value"),
    );
}

#[test]
fn build_contexts_and_image_transports_that_name_host_paths_are_refused() {
    check_command(
        "podman build -",
        Err(
            "argument \"-\" of `build` is refused: the build context must be a directory beneath the workspace",
        ),
    );
    check_command(
        "podman build https://example.com/repo.git",
        Err(
            "argument \"https://example.com/repo.git\" of `build` is refused: the build context must be a directory beneath the workspace",
        ),
    );
    check_command(
        "podman build a b",
        Err("argument \"b\" of `build` is refused: a build takes one context directory"),
    );
    check_command(
        "podman push app oci-archive:/tmp/app.tar",
        Err(
            "argument \"oci-archive:/tmp/app.tar\" of `push` is refused: only one image is allowed: a destination may be a path of the host",
        ),
    );
    check_command(
        "podman pull dir:/var/lib/gantry",
        Err(
            "argument \"dir:/var/lib/gantry\" of `pull` is refused: it names a transport that reads or writes the host",
        ),
    );
    check_command(
        "podman tag app docker-archive:/tmp/x",
        Err(
            "argument \"docker-archive:/tmp/x\" of `tag` is refused: it names a transport that reads or writes the host",
        ),
    );
}

#[test]
fn the_context_and_file_are_marked_as_paths() {
    let allowed = check(&argv("podman build -f sub/Containerfile -t a sub")).unwrap();
    let marked: Vec<(&str, PathKind)> = allowed
        .paths
        .iter()
        .map(|p| (allowed.argv[p.index].as_str(), p.kind))
        .collect();
    assert_eq!(
        marked,
        [
            ("sub/Containerfile", PathKind::File),
            ("sub", PathKind::Directory)
        ]
    );
}

#[test]
fn paths_open_beneath_the_workspace_and_links_out_are_refused() {
    let workspace = tempfile::tempdir().unwrap();
    let root = workspace.path();
    std::fs::create_dir(root.join("app")).unwrap();
    std::fs::write(root.join("app/Containerfile"), "FROM x\n").unwrap();
    std::os::unix::fs::symlink("/", root.join("app/out")).unwrap();

    let allowed = check(&argv("podman build -f Containerfile .")).unwrap();
    let (opened_argv, fds) = open_paths(&allowed, root, Some("app")).unwrap();
    assert_eq!(fds.len(), 2);
    assert!(opened_argv[5].starts_with("/dev/fd/"), "{opened_argv:?}");
    let opened = std::fs::read_link(format!(
        "/proc/self/fd/{}",
        &opened_argv[5]["/dev/fd/".len()..]
    ));
    assert_eq!(
        opened.unwrap(),
        root.canonicalize().unwrap().join("app/Containerfile")
    );

    for line in [
        "podman build out",
        "podman build ../..",
        "podman build /",
        "podman build -f out/etc/passwd .",
    ] {
        let allowed = check(&argv(line)).unwrap();
        assert!(open_paths(&allowed, root, Some("app")).is_err(), "{line}");
    }
}
