//! The README's command lines and the binary's `--help` agree: every subcommand the binary
//! has is shown in the README's "Using it" block, every long flag a README line gives a
//! subcommand is one its `--help` lists, and every long flag its `--help` lists is on one of
//! the README's lines for it; and `dkg --help` names every misbehaviour `--faulty` accepts.
//!
//! The README is the data: a new flag or subcommand needs a line (or a word) in its
//! "Using it" block, nothing here.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

const EXE: &str = env!("CARGO_BIN_EXE_dealer-free-sis");

/// The sections whose `sh` blocks hold command lines.
const SECTIONS: [&str; 2] = ["## Using it", "## A cluster of real nodes"];
/// The section that must show every subcommand.
const USAGE: &str = "## Using it";

/// `dealer-free-sis ARGS --help`'s text.
fn help(words: &[String]) -> String {
    let out = Command::new(EXE)
        .args(words)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success(), "{words:?} --help failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The subcommands a `--help` lists (its "Commands:" section, without `help`).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| *w != "help")
        .map(str::to_owned)
        .collect()
}

/// The long flags a `--help` lists (its option lines; aliases and descriptions not taken).
fn help_flags(help: &str) -> BTreeSet<String> {
    help.lines()
        .filter(|l| l.starts_with("  -") || l.starts_with("      --"))
        .filter_map(|l| l.trim_start().split("  ").next())
        .flat_map(|head| head.split([' ', ',']))
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .filter(|w| !matches!(*w, "--help" | "--version"))
        .map(str::to_owned)
        .collect()
}

/// The long flags named in a README command line.
fn line_flags(line: &str) -> BTreeSet<String> {
    let mut flags = BTreeSet::new();
    let mut rest = line;
    while let Some(at) = rest.find("--") {
        let name: String = rest[at + 2..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
            .collect();
        if !name.is_empty()
            && rest[..at]
                .chars()
                .last()
                .is_none_or(|c| !c.is_alphanumeric())
        {
            flags.insert(format!("--{name}"));
        }
        rest = &rest[at + 2 + name.len()..];
    }
    flags
}

/// The README's command lines of `section`: each line of its `sh` blocks that starts with
/// `dealer-free-sis `, with its indented continuation lines, comments dropped.
fn command_lines(readme: &str, section: &str) -> Vec<String> {
    let body: String = readme
        .split("\n## ")
        .find(|s| format!("## {s}").starts_with(section) || s.starts_with(section))
        .unwrap_or_else(|| panic!("README has no section {section:?}"))
        .to_owned();
    let mut lines: Vec<String> = Vec::new();
    let mut in_sh = false;
    // The last line was a command line of this block (an indented line continues it).
    let mut continuing = false;
    for line in body.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") {
            in_sh = !in_sh && trimmed == "```sh";
            continuing = false;
            continue;
        }
        if !in_sh {
            continue;
        }
        let code = line.split("  #").next().unwrap_or_default();
        if let Some(command) = code.strip_prefix("dealer-free-sis ") {
            lines.push(command.to_owned());
            continuing = true;
        } else if continuing
            && code.starts_with(' ')
            && let Some(last) = lines.last_mut()
        {
            last.push(' ');
            last.push_str(code.trim());
        } else {
            continuing = false;
        }
    }
    lines
}

/// The command words a README line starts with (`cluster up`, `search`), by the binary's
/// own list of subcommands.
fn command_of(line: &str, tree: &BTreeMap<String, Vec<String>>) -> Option<Vec<String>> {
    let mut words = line.split_whitespace();
    let first = words.next()?.to_owned();
    let subs = tree.get(&first)?;
    if subs.is_empty() {
        return Some(vec![first]);
    }
    let second = words.next()?;
    subs.iter()
        .any(|s| s == second)
        .then(|| vec![first, second.to_owned()])
}

#[test]
fn the_readme_usage_lines_and_every_help_list_the_same_flags() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    // Every command and subcommand the binary has.
    let mut tree: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for command in subcommands(&help(&[])) {
        let subs = subcommands(&help(std::slice::from_ref(&command)));
        tree.insert(command, subs);
    }
    let mut problems = Vec::new();
    let mut documented: BTreeMap<Vec<String>, BTreeSet<String>> = BTreeMap::new();
    let mut in_usage: BTreeSet<Vec<String>> = BTreeSet::new();
    for section in SECTIONS {
        for line in command_lines(&readme, section) {
            match command_of(&line, &tree) {
                Some(words) => {
                    if section == USAGE {
                        in_usage.insert(words.clone());
                    }
                    documented
                        .entry(words)
                        .or_default()
                        .extend(line_flags(&line));
                }
                None => problems.push(format!(
                    "README ({section}): `dealer-free-sis {line}` names no subcommand the \
                     binary has"
                )),
            }
        }
    }
    for (command, subs) in &tree {
        let all: Vec<Vec<String>> = if subs.is_empty() {
            vec![vec![command.clone()]]
        } else {
            subs.iter()
                .map(|s| vec![command.clone(), s.clone()])
                .collect()
        };
        for words in all {
            if !in_usage.contains(&words) {
                problems.push(format!(
                    "`{}` has no line in the README's \"Using it\" block",
                    words.join(" ")
                ));
            }
        }
    }
    for (words, readme_flags) in &documented {
        let listed = help_flags(&help(words));
        let name = words.join(" ");
        for flag in readme_flags.difference(&listed) {
            problems.push(format!(
                "README gives `{name}` {flag}, which `{name} --help` does not list"
            ));
        }
        for flag in listed.difference(readme_flags) {
            problems.push(format!(
                "`{name} --help` lists {flag}, which no README line for `{name}` shows"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn dkg_help_names_every_misbehaviour_faulty_accepts() {
    let text = help(&["dkg".to_owned()]);
    let names = dealer_free::dkg::faults::MISBEHAVIOUR_NAMES;
    let mut count = 0;
    for name in names.split(',').map(str::trim) {
        count += 1;
        assert!(text.contains(name), "{name} missing in dkg --help:\n{text}");
        let plain = name.split(':').next().unwrap();
        assert!(
            plain
                .parse::<dealer_free::dkg::faults::Misbehaviour>()
                .is_ok()
                || name.contains(':'),
            "{name} is not accepted by --faulty"
        );
    }
    assert!(count >= 8, "{names}");
}

#[test]
fn the_helpers_read_what_they_should() {
    let text = "Options:\n  -n, --nodes <N>  Number\n      --json  JSON [aliases: --other]\n  \
                -h, --help  Print help\n";
    assert_eq!(
        help_flags(text).into_iter().collect::<Vec<_>>(),
        ["--json", "--nodes"]
    );
    assert_eq!(
        line_flags("split --threshold T [--scheme a|b] -o DIR x--y FILE")
            .into_iter()
            .collect::<Vec<_>>(),
        ["--scheme", "--threshold"]
    );
}
