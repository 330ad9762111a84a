//! What the command line says about itself: every argument of every command has help text and
//! an example value, every command an example that parses; `--help` shows them; `jars man` is
//! a roff page naming every command.

use clap::CommandFactory;
use jars::cli::{manual, Cli};

use super::{jars, stderr, stdout};

/// `line` split as a shell splits it (single quotes only), up to a pipe or redirection.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let (mut word, mut quoted, mut started) = (String::new(), false, false);
    for c in line.chars() {
        match c {
            '\'' => (quoted, started) = (!quoted, true),
            ' ' if !quoted => {
                if started {
                    words.push(std::mem::take(&mut word));
                }
                started = false;
            }
            _ => (word, started) = (word + &c.to_string(), true),
        }
    }
    if started {
        words.push(word);
    }
    let end = words
        .iter()
        .position(|w| matches!(w.as_str(), "|" | ">" | ">>"))
        .unwrap_or(words.len());
    words.truncate(end);
    words
}

/// The subcommand names `argv` selects, e.g. `["user", "add"]`.
fn selected(argv: &[String]) -> Vec<String> {
    let matches = Cli::command()
        .try_get_matches_from(argv)
        .unwrap_or_else(|e| panic!("{argv:?} does not parse: {e}"));
    let mut path = Vec::new();
    let mut m = &matches;
    while let Some((name, sub)) = m.subcommand() {
        path.push(name.to_string());
        m = sub;
    }
    path
}

fn check_argument(command: &str, arg: &clap::Arg) {
    let id = arg.get_id().as_str();
    let help = arg
        .get_help()
        .map(|h| h.to_string())
        .unwrap_or_else(|| panic!("{command}: {id} has no help text"));
    assert!(help.len() > 10, "{command}: {id}: {help:?}");
    // Flags are their own example; a value needs one, or the list of values it may be.
    if arg.get_action().takes_values() && arg.get_possible_values().is_empty() {
        assert!(
            help.contains("e.g. "),
            "{command}: {id} has no example: {help:?}"
        );
    }
}

#[test]
fn every_argument_has_help_and_every_command_an_example_that_parses() {
    let mut cli = Cli::command();
    cli.build();
    for arg in cli.get_arguments() {
        if !matches!(arg.get_id().as_str(), "help" | "version") {
            check_argument("jars", arg);
        }
    }
    let commands = manual::commands(&cli);
    let names: Vec<&str> = commands.iter().map(|c| c.get_name()).collect();
    assert!(
        names.len() >= 17 && names.contains(&"status") && names.contains(&"man"),
        "{names:?}"
    );
    for command in commands {
        let path = command.get_bin_name().expect("built").to_string();
        assert!(command.get_about().is_some(), "{path}: no about");
        for arg in manual::own_arguments(command) {
            check_argument(&path, arg);
        }
        let example = command
            .get_after_help()
            .map(|h| h.to_string())
            .unwrap_or_else(|| panic!("{path}: no example"));
        let example = example
            .strip_prefix("Example: ")
            .unwrap_or_else(|| panic!("{path}: {example:?}"));
        let argv = shell_words(example);
        assert_eq!(
            selected(&argv).join(" "),
            path.trim_start_matches("jars "),
            "{path}'s example runs another command: {example}"
        );
    }
}

#[test]
fn help_of_every_command_shows_each_argument_and_the_example() {
    let dir = tempfile::tempdir().unwrap();
    let mut cli = Cli::command();
    cli.build();
    for command in manual::commands(&cli) {
        let path = command.get_bin_name().unwrap().to_string();
        let args: Vec<&str> = path.split(' ').skip(1).chain(["--help"]).collect();
        let out = jars(dir.path(), &args);
        assert_eq!(out.status.code(), Some(0), "{path}: {}", stderr(&out));
        let help = stdout(&out);
        assert!(help.contains("Example: jars "), "{path}: {help}");
        assert!(help.contains("Global options:"), "{path}: {help}");
        for arg in manual::own_arguments(command) {
            let text = arg.get_help().unwrap().to_string();
            let first_words: String = text.chars().take(30).collect();
            assert!(
                help.contains(&first_words),
                "{path}: {first_words:?} in {help}"
            );
        }
    }
    // The arguments the issue named, with their examples.
    for (args, needle) in [
        (&["user", "add", "-h"][..], "<NAME>  The user's name"),
        (&["ticket", "-h"], "e.g. 5e0b9230-"),
        (&["event", "create", "-h"], "--owner <NAME>"),
        (&["event", "create", "-h"], "e.g. 'Drive time'"),
        (&["event", "create", "-h"], "--private"),
        (&["event", "list", "-h"], "--all"),
    ] {
        let help = stdout(&jars(dir.path(), args));
        assert!(help.contains(needle), "{args:?}: {needle:?} in {help}");
    }
}

#[test]
fn man_writes_a_roff_page_naming_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = jars(dir.path(), &["man"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        !dir.path().join("jars-data").exists(),
        "man touches no data dir"
    );
    let page = stdout(&out);
    assert!(page.contains(".TH jars 1"), "no title: {page}");
    assert!(page.contains(".SH SYNOPSIS") && page.contains(".SH COMMANDS"));
    // What a technician looks up without the sources at hand (issue 29 #13).
    for section in ["ENVIRONMENT", "FILES", "SIGNALS", "EXIT STATUS", "SEE ALSO"] {
        assert!(
            page.contains(&format!(".SH \"{section}\""))
                || page.contains(&format!(".SH {section}\n")),
            "no {section}"
        );
    }
    for needle in [
        "JARS_LISTEN",
        "JARS_DATABASE_URL",
        "RUST_LOG",
        "users.toml",
        "jwt\\-private.pem",
        "SIGHUP",
        "SIGTERM",
        "64",
        "69",
        "130",
    ] {
        assert!(page.contains(needle), "no {needle} in the page");
    }
    let mut cli = Cli::command();
    cli.build();
    for command in manual::commands(&cli) {
        let path = command.get_bin_name().unwrap();
        assert!(
            page.contains(&format!(".SS \"{path} ")),
            "no section for {path}"
        );
        for arg in manual::own_arguments(command) {
            if let Some(long) = arg.get_long() {
                let flag = format!("\\fB\\-\\-{}\\fR", long.replace('-', "\\-"));
                assert!(page.contains(&flag), "{path}: no {flag}");
            }
        }
    }
}

/// man(1) itself formats the page.
#[cfg_attr(
    not(jars_has = "man"),
    ignore = "needs man(1), not found when the tests were built (man-db)"
)]
#[test]
fn man_formats_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let out = jars(dir.path(), &["man"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let file = dir.path().join("jars.1");
    std::fs::write(&file, &out.stdout).unwrap();
    let shown = std::process::Command::new("man")
        .arg("-l")
        .arg(&file)
        .env("MANWIDTH", "100")
        .env("MAN_KEEP_FORMATTING", "")
        .output()
        .expect("man(1) runs");
    assert!(
        shown.status.success(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(text.contains("jars event create [OPTIONS] --owner <NAME> --title <TITLE>"));
    assert!(
        text.contains("Example: jars user add alice --admin"),
        "{text}"
    );
    for section in ["ENVIRONMENT", "FILES", "SIGNALS", "EXIT STATUS"] {
        assert!(
            text.contains(&format!("\n{section}\n")),
            "no {section} in {text}"
        );
    }
}
