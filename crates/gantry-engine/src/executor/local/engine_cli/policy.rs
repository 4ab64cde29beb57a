//! The allow-list: which subcommands and options of the engine CLI a step
//! may use, parsed the way podman's flag parser reads them (`--name value`,
//! `--name=value`, `-t value`, `-tvalue`, clusters of short flags).

/// Why a command was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refused {
    #[error("the engine CLI needs a subcommand (build, push, tag, pull, images, version, info)")]
    NoSubcommand,
    #[error(
        "global option {0:?} is refused: it chooses the engine's storage, runtime or connection"
    )]
    GlobalOption(String),
    #[error("`{subcommand}` is refused: {why}")]
    Subcommand {
        subcommand: String,
        why: &'static str,
    },
    #[error("option {option:?} of `{subcommand}` is refused: {why}")]
    Option {
        subcommand: String,
        option: String,
        why: &'static str,
    },
    #[error("option {option:?} of `{subcommand}` needs a value")]
    MissingValue { subcommand: String, option: String },
    #[error("argument {argument:?} of `{subcommand}` is refused: {why}")]
    Argument {
        subcommand: String,
        argument: String,
        why: &'static str,
    },
}

/// An allowed command, written out again in a form whose path arguments
/// sit alone (`-f FILE`, not `-fFILE`), with the built-image label added to
/// a build.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Allowed {
    pub argv: Vec<String>,
    /// Arguments that name a path beneath the workspace.
    pub paths: Vec<PathArg>,
}

/// An argument of [`Allowed::argv`] that names a path beneath the
/// workspace, replaced by its open descriptor when the step starts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PathArg {
    pub index: usize,
    pub kind: PathKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PathKind {
    /// A build's context directory.
    Directory,
    /// A build's `-f` file.
    File,
}

/// Checks `argv` (the program first) against the allow-list.
pub fn check(argv: &[String]) -> Result<Allowed, Refused> {
    let Some((program, args)) = argv.split_first() else {
        return Err(Refused::NoSubcommand);
    };
    let Some((subcommand, rest)) = args.split_first() else {
        return Err(Refused::NoSubcommand);
    };
    if subcommand.starts_with('-') {
        return Err(Refused::GlobalOption(subcommand.clone()));
    }
    let (name, rest) = match subcommand.as_str() {
        "buildx" => match rest.split_first() {
            Some((build, rest)) if build == "build" => ("buildx build", rest),
            _ => {
                return Err(Refused::Subcommand {
                    subcommand: "buildx".into(),
                    why: "of buildx only `buildx build` is allowed",
                });
            }
        },
        other => (other, rest),
    };
    let rules = rules_of(name)?;
    let parsed = parse(name, rules, rest)?;
    let mut out: Vec<String> = std::iter::once(program.clone())
        .chain(name.split(' ').map(str::to_owned))
        .collect();
    let mut paths = Vec::new();
    if rules.builds {
        out.push("--label".into());
        // What `pruneImages` may remove, as for bakes.
        out.push(format!("{}=1", gantry_container::labels::BUILT));
    }
    for token in &parsed {
        match token {
            Token::Flag(text) => out.push(text.clone()),
            Token::Valued(option, value) => {
                (rules.check_value)(option, value).map_err(|why| Refused::Option {
                    subcommand: name.into(),
                    option: format!("{option} {value}"),
                    why,
                })?;
                out.push(option.clone());
                if rules.builds && matches!(option.as_str(), "-f" | "--file") {
                    paths.push(PathArg {
                        index: out.len(),
                        kind: PathKind::File,
                    });
                }
                out.push(value.clone());
            }
            Token::Positional(_) => {}
        }
    }
    let positionals: Vec<&String> = parsed
        .iter()
        .filter_map(|t| match t {
            Token::Positional(p) => Some(p),
            _ => None,
        })
        .collect();
    (rules.check_positionals)(&positionals).map_err(|(argument, why)| Refused::Argument {
        subcommand: name.into(),
        argument,
        why,
    })?;
    if !positionals.is_empty() {
        // After `--`, so that a context or image named like an option stays
        // an argument.
        out.push("--".into());
    }
    for positional in positionals {
        if rules.builds {
            paths.push(PathArg {
                index: out.len(),
                kind: PathKind::Directory,
            });
        }
        out.push(positional.clone());
    }
    Ok(Allowed { argv: out, paths })
}

/// A refused argument and why.
type ArgumentRefusal = (String, &'static str);

/// What one subcommand allows.
struct Rules {
    /// Options without a value (`--pull` and `--pull=always` alike).
    flags: &'static [&'static str],
    /// Options with a value.
    valued: &'static [&'static str],
    /// Options refused for a reason worth telling.
    refused: &'static [(&'static str, &'static str)],
    check_value: fn(&str, &str) -> Result<(), &'static str>,
    check_positionals: fn(&[&String]) -> Result<(), ArgumentRefusal>,
    /// Builds an image: labelled, its context and file beneath the workspace.
    builds: bool,
}

const READS_HOST: &str = "it reads or writes a path of the host, outside the workspace";
const MOUNTS: &str = "it mounts something of the host into the build";
const PRIVILEGE: &str = "it widens what the build may do on the host";
const CREDENTIALS: &str = "the server's registry credentials are not for steps; give the stage `registry:` access and list the image in `images:`";

const BUILD_REFUSED: &[(&str, &str)] = &[
    ("-v", MOUNTS),
    ("--volume", MOUNTS),
    ("--mount", MOUNTS),
    ("--build-context", MOUNTS),
    ("--secret", MOUNTS),
    ("--ssh", MOUNTS),
    ("--iidfile", READS_HOST),
    ("-o", READS_HOST),
    ("--output", READS_HOST),
    ("--build-arg-file", READS_HOST),
    ("--ignorefile", READS_HOST),
    ("--authfile", CREDENTIALS),
    ("--creds", CREDENTIALS),
    ("--cert-dir", READS_HOST),
    ("--security-opt", PRIVILEGE),
    ("--cap-add", PRIVILEGE),
    ("--device", PRIVILEGE),
    ("--userns", PRIVILEGE),
    ("--isolation", PRIVILEGE),
    ("--runtime", PRIVILEGE),
    ("--cgroup-parent", PRIVILEGE),
    ("--ipc", PRIVILEGE),
    ("--pid", PRIVILEGE),
    ("--uts", PRIVILEGE),
];

const PUSH_PULL_REFUSED: &[(&str, &str)] = &[
    ("--authfile", CREDENTIALS),
    ("--creds", CREDENTIALS),
    ("--cert-dir", READS_HOST),
    ("--digestfile", READS_HOST),
    ("--sign-by", READS_HOST),
    ("--decryption-key", READS_HOST),
    ("--encryption-key", READS_HOST),
];

const BUILD: Rules = Rules {
    flags: &[
        "--no-cache",
        "--pull",
        "-q",
        "--quiet",
        "--rm",
        "--force-rm",
        "--squash",
        "--squash-all",
        "--layers",
        "--tls-verify",
    ],
    valued: &[
        "-t",
        "--tag",
        "-f",
        "--file",
        "--build-arg",
        "--target",
        "--platform",
        "--label",
        "--annotation",
        "--cache-from",
        "--network",
        "--format",
        "--progress",
        "--arch",
        "--os",
        "--variant",
        "--jobs",
        "--timestamp",
    ],
    refused: BUILD_REFUSED,
    check_value: build_value,
    check_positionals: one_context,
    builds: true,
};

const PUSH: Rules = Rules {
    flags: &["-q", "--quiet", "--tls-verify", "-a", "--all-tags"],
    valued: &["--format", "--compression-format", "--retry"],
    refused: PUSH_PULL_REFUSED,
    check_value: any_value,
    check_positionals: one_image,
    builds: false,
};

const PULL: Rules = Rules {
    flags: &["-q", "--quiet", "--tls-verify", "-a", "--all-tags"],
    valued: &["--platform", "--arch", "--os", "--variant", "--retry"],
    refused: PUSH_PULL_REFUSED,
    check_value: any_value,
    check_positionals: one_image,
    builds: false,
};

const TAG: Rules = Rules {
    flags: &[],
    valued: &[],
    refused: &[],
    check_value: any_value,
    check_positionals: images,
    builds: false,
};

const IMAGES: Rules = Rules {
    flags: &[
        "-a",
        "--all",
        "-q",
        "--quiet",
        "--digests",
        "--no-trunc",
        "-n",
        "--noheading",
    ],
    valued: &["--format", "-f", "--filter", "--sort"],
    refused: &[],
    check_value: any_value,
    check_positionals: images,
    builds: false,
};

const ABOUT: Rules = Rules {
    flags: &[],
    valued: &["-f", "--format"],
    refused: &[],
    check_value: any_value,
    check_positionals: none,
    builds: false,
};

fn rules_of(subcommand: &str) -> Result<&'static Rules, Refused> {
    let why = match subcommand {
        "build" | "buildx build" => return Ok(&BUILD),
        "push" => return Ok(&PUSH),
        "pull" => return Ok(&PULL),
        "tag" => return Ok(&TAG),
        "images" => return Ok(&IMAGES),
        "version" | "info" => return Ok(&ABOUT),
        "login" | "logout" => {
            "it would store registry credentials in the server's engine configuration, shared by every pipeline; give the stage `registry:` access and list the image in `images:`"
        }
        "run" | "exec" | "create" | "start" | "cp" | "container" | "pod" | "kube" => {
            "it runs or reaches a container with the engine's own rights (the server's or its runner's), unconfined (a step that needs an image runs in it: give the step that image)"
        }
        "save" | "load" | "export" | "import" | "commit" | "diff" | "mount" => {
            "it reads or writes image files on the host, outside the workspace"
        }
        "volume" | "system" | "machine" | "unshare" | "network" | "secret" | "manifest"
        | "generate" | "play" | "rm" | "rmi" | "kill" | "stop" | "prune" => {
            "it changes the engine's state beyond building images"
        }
        _ => "it is not on the allow-list (build, push, tag, pull, images, version, info)",
    };
    Err(Refused::Subcommand {
        subcommand: subcommand.into(),
        why,
    })
}

enum Token {
    /// A flag as written (`--pull=always` keeps its value attached).
    Flag(String),
    /// An option and its value.
    Valued(String, String),
    Positional(String),
}

fn parse(subcommand: &str, rules: &Rules, args: &[String]) -> Result<Vec<Token>, Refused> {
    let refuse = |option: &str, why| Refused::Option {
        subcommand: subcommand.into(),
        option: option.into(),
        why,
    };
    let judge = |name: &str| -> Result<Option<bool>, Refused> {
        if let Some((_, why)) = rules.refused.iter().find(|(n, _)| *n == name) {
            return Err(refuse(name, why));
        }
        if rules.flags.contains(&name) {
            return Ok(Some(false));
        }
        if rules.valued.contains(&name) {
            return Ok(Some(true));
        }
        Err(refuse(
            name,
            "it is not on the allow-list of options for builder steps",
        ))
    };
    let mut tokens = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--" {
            tokens.extend(args.by_ref().map(|a| Token::Positional(a.clone())));
            break;
        }
        if let Some(long) = arg.strip_prefix("--") {
            let (name, attached) = match long.split_once('=') {
                Some((name, value)) => (format!("--{name}"), Some(value)),
                None => (arg.clone(), None),
            };
            let takes_value = judge(&name)?.unwrap_or_default();
            if !takes_value {
                tokens.push(Token::Flag(arg.clone()));
                continue;
            }
            let value = match attached {
                Some(value) => value.to_owned(),
                None => args.next().cloned().ok_or_else(|| Refused::MissingValue {
                    subcommand: subcommand.into(),
                    option: name.clone(),
                })?,
            };
            tokens.push(Token::Valued(name, value));
        } else if arg.len() > 1 && arg.starts_with('-') {
            // A cluster of short options: flags, and at most one with a
            // value, which takes the rest of the cluster or the next word.
            let cluster = &arg[1..];
            for (at, letter) in cluster.char_indices() {
                let name = format!("-{letter}");
                if !judge(&name)?.unwrap_or_default() {
                    tokens.push(Token::Flag(name));
                    continue;
                }
                let attached = &cluster[at + letter.len_utf8()..];
                let value = if attached.is_empty() {
                    args.next().cloned().ok_or_else(|| Refused::MissingValue {
                        subcommand: subcommand.into(),
                        option: name.clone(),
                    })?
                } else {
                    attached.trim_start_matches('=').to_owned()
                };
                tokens.push(Token::Valued(name, value));
                break;
            }
        } else {
            tokens.push(Token::Positional(arg.clone()));
        }
    }
    Ok(tokens)
}

fn any_value(_: &str, _: &str) -> Result<(), &'static str> {
    Ok(())
}

fn build_value(option: &str, value: &str) -> Result<(), &'static str> {
    if option == "--network" && matches!(value, "host" | "ns:/proc/1/ns/net") {
        return Err("the build would share the server's network namespace");
    }
    if option == "--network" && value.starts_with("ns:") {
        return Err("the build would join a network namespace of the host");
    }
    Ok(())
}

fn one_context(positionals: &[&String]) -> Result<(), ArgumentRefusal> {
    match positionals {
        [context] if context.as_str() == "-" || context.contains("://") => Err((
            context.to_string(),
            "the build context must be a directory beneath the workspace",
        )),
        [_] => Ok(()),
        [] => Err((String::new(), "a build needs one context directory")),
        [_, extra, ..] => Err((extra.to_string(), "a build takes one context directory")),
    }
}

fn one_image(positionals: &[&String]) -> Result<(), ArgumentRefusal> {
    match positionals {
        [_] => images(positionals),
        [] => Err((String::new(), "it needs one image")),
        [_, extra, ..] => Err((
            extra.to_string(),
            "only one image is allowed: a destination may be a path of the host",
        )),
    }
}

/// Image references, never a transport that names a path of the host
/// (`dir:/…`, `oci-archive:/…`, `docker-archive:/…`).
fn images(positionals: &[&String]) -> Result<(), ArgumentRefusal> {
    const PATH_TRANSPORTS: &[&str] = &[
        "dir",
        "oci",
        "oci-archive",
        "docker-archive",
        "docker-daemon",
        "containers-storage",
        "sif",
        "ostree",
        "tarball",
    ];
    for image in positionals {
        if let Some((transport, _)) = image.split_once(':')
            && PATH_TRANSPORTS.contains(&transport)
        {
            return Err((
                image.to_string(),
                "it names a transport that reads or writes the host",
            ));
        }
    }
    Ok(())
}

fn none(positionals: &[&String]) -> Result<(), ArgumentRefusal> {
    match positionals.first() {
        Some(extra) => Err((extra.to_string(), "it takes no arguments")),
        None => Ok(()),
    }
}
