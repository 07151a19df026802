//! `quotatrack completions SHELL` and `quotatrack manpage` through the
//! real binary: each output names every command (and `log`'s subcommands).

use clap::CommandFactory;
use quotatrack::cli::Args;

/// Every visible command, `log`'s subcommands as `log export` and so on
/// (built first: each command's arguments and subcommands are deferred).
fn commands() -> Vec<String> {
    let mut root = Args::command();
    root.build();
    let mut names = Vec::new();
    for command in root.get_subcommands().filter(|c| !c.is_hide_set()) {
        names.push(command.get_name().to_owned());
        for sub in command
            .get_subcommands()
            .filter(|c| !c.is_hide_set() && c.get_name() != "help")
        {
            names.push(format!("{} {}", command.get_name(), sub.get_name()));
        }
    }
    names
}

fn run(args: &[&str]) -> String {
    let output = crate::support::quotatrack(args, b"");
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn completions_for_each_shell_name_every_command() {
    let names = commands();
    for wanted in [
        "status",
        "history",
        "statusline",
        "completions",
        "manpage",
        "log export",
    ] {
        assert!(
            names.iter().any(|name| name == wanted),
            "{wanted} missing from {names:?}"
        );
    }
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let script = run(&["completions", shell]);
        for name in &names {
            let last = name.rsplit(' ').next().unwrap();
            assert!(script.contains(last), "{shell} completions do not mention {name}");
        }
        // The flags of the new commands are completed too.
        for flag in ["--output", "--since", "--every"] {
            // fish writes `-l output` for `--output`.
            let fish = format!("-l {}", &flag[2..]);
            assert!(
                script.contains(flag) || script.contains(&fish),
                "{shell} completions do not mention {flag}"
            );
        }
    }
    let output = crate::support::quotatrack(&["completions", "tcsh"], b"");
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn the_man_page_describes_every_command_with_its_options() {
    let page = run(&["manpage"]);
    assert!(
        page.starts_with(".ie") || page.contains(".TH quotatrack"),
        "{}",
        &page[..200.min(page.len())]
    );
    for name in commands() {
        let heading = format!(".SS \"quotatrack {}\"", name.replace('-', "\\-"));
        assert!(page.contains(&heading), "the man page has no section {heading}");
    }
    assert!(
        page.contains("\\fB\\-\\-output\\fR"),
        "status --output is not described"
    );
}
