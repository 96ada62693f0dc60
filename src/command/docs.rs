//! The supported-command list in README.md, rendered from the command table ([`SPECS`]).
//!
//! README.md holds the rendered table between [`BEGIN`] and [`END`];
//! `terrace commands --markdown --readme README.md` (what `tools/gen-commands` runs)
//! rewrites it, and a unit test fails when it is out of date. Reads the table only.

use super::{CommandSpec, SPECS};

/// The marker line before the generated section.
pub const BEGIN: &str = "<!-- commands:begin (generated from src/command/mod.rs by tools/gen-commands; do not edit) -->";
/// The marker line after it.
pub const END: &str = "<!-- commands:end -->";

/// Every command as markdown: one table per group, in the order the groups first appear
/// in the table. Columns: the command, its Redis arity, its summary, its subcommands.
pub fn markdown() -> String {
    render(SPECS)
}

fn render(specs: &[CommandSpec]) -> String {
    let mut groups: Vec<&str> = Vec::new();
    for s in specs {
        if !groups.contains(&s.group) {
            groups.push(s.group);
        }
    }
    let mut out = String::new();
    out.push_str(&format!(
        "{} commands. Arity is Redis's: `N` = exactly N words with the name, \
         `-N` = at least N.\n",
        specs.len()
    ));
    for g in groups {
        out.push_str(&format!("\n**{g}**\n\n"));
        out.push_str("| command | arity | summary | subcommands |\n");
        out.push_str("| --- | --- | --- | --- |\n");
        for s in specs.iter().filter(|s| s.group == g) {
            let subs: Vec<String> = s
                .subcommands
                .iter()
                .map(|sub| {
                    let name = sub.name.split_once('|').map_or(sub.name, |(_, n)| n);
                    name.to_ascii_uppercase()
                })
                .collect();
            out.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                s.name.to_ascii_uppercase(),
                s.arity,
                cell(s.summary),
                subs.join(", ")
            ));
        }
    }
    out
}

/// Text that is safe inside a markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// `readme` with the text between the [`BEGIN`] and [`END`] lines replaced by `table`;
/// `None` when the markers are missing or out of order.
pub fn splice(readme: &str, table: &str) -> Option<String> {
    let begin = readme.find(BEGIN)?;
    let after_begin = begin + BEGIN.len();
    let end = after_begin + readme[after_begin..].find(END)?;
    Some(format!(
        "{}\n{}{}",
        &readme[..after_begin],
        table,
        &readme[end..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_groups_subcommands_and_escapes() {
        static SUBS: &[CommandSpec] = &[
            CommandSpec::new("obj|encoding", 3, "generic", "1.0.0", "Enc."),
            CommandSpec::new("obj|help", 2, "generic", "1.0.0", "Help."),
        ];
        let specs = [
            CommandSpec::new("get", 2, "string", "1.0.0", "Gets a | value."),
            CommandSpec::new("obj", -2, "generic", "1.0.0", "Container.").subs(SUBS),
            CommandSpec::new("set", -3, "string", "1.0.0", "Sets."),
        ];
        let md = render(&specs);
        assert!(md.starts_with("3 commands."), "{md}");
        let string_at = md.find("**string**").expect("string group");
        let generic_at = md.find("**generic**").expect("generic group");
        assert!(string_at < generic_at, "groups in first-appearance order");
        assert!(md.contains("| GET | 2 | Gets a \\| value. |  |\n"), "{md}");
        assert!(md.contains("| SET | -3 | Sets. |  |\n"), "{md}");
        assert!(
            md.contains("| OBJ | -2 | Container. | ENCODING, HELP |\n"),
            "{md}"
        );
        // SET is listed under string, before generic starts.
        assert!(md.find("| SET |").expect("set") < generic_at);
    }

    #[test]
    fn splice_replaces_only_between_the_markers() {
        let readme = format!("intro\n{BEGIN}\nold\n{END}\noutro\n");
        assert_eq!(
            splice(&readme, "new\n").as_deref(),
            Some(format!("intro\n{BEGIN}\nnew\n{END}\noutro\n").as_str())
        );
        assert_eq!(splice("no markers", "x"), None);
        assert_eq!(splice(&format!("{END}\n{BEGIN}\n"), "x"), None);
    }

    /// README.md's command list is the table's: regenerate it with tools/gen-commands.
    #[test]
    fn readme_command_list_is_up_to_date() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
        let readme = std::fs::read_to_string(path).expect("read README.md");
        let fresh = splice(&readme, &markdown())
            .unwrap_or_else(|| panic!("README.md lacks the `{BEGIN}` ... `{END}` markers"));
        assert!(
            fresh == readme,
            "README.md's command list differs from the command table in src/command/mod.rs: \
             run `tools/gen-commands` (or `cargo run -- commands --markdown --readme README.md`) \
             and commit README.md"
        );
    }
}
