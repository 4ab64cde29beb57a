//! The command tree as a newcomer reads it through `--help`.

use clap::CommandFactory;

use super::Cli;

/// Every command and subcommand, with its path (`gantry apt repo create`).
fn commands() -> Vec<(String, clap::Command)> {
    fn walk(path: &str, command: &clap::Command, into: &mut Vec<(String, clap::Command)>) {
        for sub in command.get_subcommands() {
            let path = format!("{path} {}", sub.get_name());
            into.push((path.clone(), sub.clone()));
            walk(&path, sub, into);
        }
    }
    let mut all = Vec::new();
    walk("gantry", &Cli::command(), &mut all);
    all
}

#[test]
fn every_subcommand_says_what_it_does_in_its_help() {
    let silent: Vec<String> = commands()
        .into_iter()
        .filter(|(_, command)| {
            command
                .get_about()
                .is_none_or(|about| about.to_string().trim().is_empty())
        })
        .map(|(path, _)| path)
        .collect();
    assert!(silent.is_empty(), "commands without help text: {silent:#?}");
}

#[test]
fn every_option_says_what_it_is_in_its_help() {
    let mut silent = Vec::new();
    for (path, command) in commands() {
        for argument in command.get_arguments() {
            let id = argument.get_id().as_str();
            // Positional arguments speak through their value names (`<NAME>`).
            let generated = matches!(
                argument.get_action(),
                clap::ArgAction::Help
                    | clap::ArgAction::HelpShort
                    | clap::ArgAction::HelpLong
                    | clap::ArgAction::Version
            );
            if generated || argument.is_global_set() || argument.is_positional() {
                continue;
            }
            if argument
                .get_help()
                .is_none_or(|help| help.to_string().trim().is_empty())
            {
                silent.push(format!("{path}: {id}"));
            }
        }
    }
    assert!(silent.is_empty(), "options without help text: {silent:#?}");
}

#[test]
fn the_command_tree_is_consistent() {
    Cli::command().debug_assert();
}
