//! COMMAND: COUNT, INFO, DOCS, LIST, GETKEYS, HELP — all generated from the one table.

use bytes::Bytes;

use super::ctx::ExecCtx;
use super::keys::help;
use super::spec::{CommandSpec, Flags};
use super::{CmdError, CommandId, Exec, SPECS};
use crate::protocol::{Args, Reply};
use crate::store::pattern;

/// COMMAND's subcommands.
pub const SUBS: &[CommandSpec] = &[
    CommandSpec::new(
        "command|count",
        2,
        "server",
        "2.8.13",
        "Returns a count of commands.",
    )
    .flags(Flags::LOADING.with(Flags::STALE)),
    CommandSpec::new(
        "command|info",
        -2,
        "server",
        "2.8.13",
        "Returns information about one, multiple or all commands.",
    )
    .flags(Flags::LOADING.with(Flags::STALE)),
    CommandSpec::new(
        "command|docs",
        -2,
        "server",
        "7.0.0",
        "Returns documentary information about one, multiple or all commands.",
    )
    .flags(Flags::LOADING.with(Flags::STALE)),
    CommandSpec::new(
        "command|list",
        -2,
        "server",
        "7.0.0",
        "Returns a list of command names.",
    )
    .flags(Flags::LOADING.with(Flags::STALE)),
    CommandSpec::new(
        "command|getkeys",
        -3,
        "server",
        "2.8.13",
        "Extracts the key names from an arbitrary command.",
    )
    .flags(Flags::LOADING.with(Flags::STALE)),
    CommandSpec::new(
        "command|help",
        2,
        "server",
        "5.0.0",
        "Returns helpful text about the different subcommands.",
    )
    .flags(Flags::LOADING.with(Flags::STALE)),
];

/// A parsed COMMAND call.
#[derive(Debug)]
pub enum CommandCmd<'a> {
    /// COMMAND or COMMAND INFO with no names: every command.
    All,
    /// COMMAND COUNT
    Count,
    /// COMMAND INFO name ...
    Info(Vec<&'a [u8]>),
    /// COMMAND DOCS [name ...]
    Docs(Vec<&'a [u8]>),
    /// COMMAND LIST [FILTERBY PATTERN p]
    List(Option<&'a [u8]>),
    /// COMMAND LIST FILTERBY ACLCAT category
    ListCat(crate::acl::category::Categories),
    /// COMMAND GETKEYS cmd arg ...
    GetKeys(Vec<&'a [u8]>),
    /// COMMAND HELP
    Help,
}

impl<'a> Exec<'a> for CommandCmd<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let Some(sub) = args.next_opt() else {
            return Ok(CommandCmd::All);
        };
        Ok(
            match String::from_utf8_lossy(sub).to_ascii_uppercase().as_str() {
                "COUNT" => CommandCmd::Count,
                "INFO" if args.is_empty() => CommandCmd::All,
                "INFO" => CommandCmd::Info(args.rest()),
                "DOCS" => CommandCmd::Docs(args.rest()),
                "GETKEYS" => CommandCmd::GetKeys(args.rest()),
                "HELP" => CommandCmd::Help,
                "LIST" => {
                    if args.is_empty() {
                        CommandCmd::List(None)
                    } else {
                        if !args.eat("FILTERBY") {
                            return Err(CmdError::Syntax);
                        }
                        match args.keyword()?.as_str() {
                            "PATTERN" => CommandCmd::List(Some(args.bytes()?)),
                            "ACLCAT" => {
                                let name = String::from_utf8_lossy(args.bytes()?).into_owned();
                                // An unknown category matches nothing, as in Redis.
                                CommandCmd::ListCat(
                                    crate::acl::category::by_name(&name)
                                        .filter(|c| *c != crate::acl::category::Categories::MAX)
                                        .unwrap_or(0),
                                )
                            }
                            // No modules: that filter matches nothing.
                            "MODULE" => {
                                args.bytes()?;
                                CommandCmd::List(Some(b"\x00no-match"))
                            }
                            _ => return Err(CmdError::Syntax),
                        }
                    }
                }
                _ => {
                    return Err(CmdError::UnknownSubcommand {
                        cmd: "COMMAND",
                        sub: super::lossy(sub, 128),
                    });
                }
            },
        )
    }

    fn exec(self, _: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        Ok(match self {
            CommandCmd::All => Reply::Array(SPECS.iter().map(info).collect()),
            CommandCmd::Count => Reply::Int(SPECS.len() as i64),
            CommandCmd::Info(names) => Reply::Array(
                names
                    .iter()
                    .map(|n| CommandId::lookup(n).map_or(Reply::Nil, |id| info(id.spec())))
                    .collect(),
            ),
            CommandCmd::Docs(names) => {
                let specs: Vec<&CommandSpec> = if names.is_empty() {
                    SPECS.iter().collect()
                } else {
                    names
                        .iter()
                        .filter_map(|n| CommandId::lookup(n))
                        .map(CommandId::spec)
                        .collect()
                };
                Reply::Map(
                    specs
                        .into_iter()
                        .map(|s| (Reply::bulk(s.name), docs(s)))
                        .collect(),
                )
            }
            CommandCmd::List(pat) => Reply::Array(
                SPECS
                    .iter()
                    .filter(|s| {
                        pat.as_ref()
                            .is_none_or(|p| pattern::matches(p, s.name.as_bytes(), true))
                    })
                    .map(|s| Reply::bulk(s.name))
                    .collect(),
            ),
            CommandCmd::ListCat(set) => Reply::Array(
                crate::acl::category::commands_in(set)
                    .into_iter()
                    .map(Reply::bulk)
                    .collect(),
            ),
            CommandCmd::GetKeys(cmd) => getkeys(&cmd)?,
            CommandCmd::Help => help(
                "COMMAND",
                &[
                    "(no subcommand)",
                    "    Return details about all Redis commands.",
                    "COUNT",
                    "    Return the total number of commands in this Redis server.",
                    "LIST",
                    "    Return a list of all commands in this Redis server.",
                    "INFO [<command-name> ...]",
                    "    Return details about multiple Redis commands.",
                    "DOCS [<command-name> ...]",
                    "    Return documentation details about multiple Redis commands.",
                    "GETKEYS <full-command>",
                    "    Return the keys from a full Redis command.",
                ],
            ),
        })
    }
}

/// One COMMAND INFO entry (Redis 7 shape: name, arity, flags, first, last, step, ACL
/// categories, tips, key specs, subcommands).
fn info(s: &CommandSpec) -> Reply {
    let (first, last, step) = s.key_triple();
    Reply::Array(vec![
        Reply::bulk(s.name),
        Reply::Int(i64::from(s.arity)),
        // Keys found by a count among the arguments: Redis's `movablekeys`.
        Reply::Set(
            s.flags
                .names()
                .chain((s.numkeys != 0).then_some("movablekeys"))
                .map(Reply::status)
                .collect(),
        ),
        Reply::Int(first),
        Reply::Int(last),
        Reply::Int(step),
        Reply::Set(
            crate::acl::category::names(crate::acl::category::of(s))
                .map(|n| Reply::status(format!("@{n}")))
                .collect(),
        ),
        Reply::Array(Vec::new()),
        Reply::Array(Vec::new()),
        Reply::Array(s.subcommands.iter().map(info).collect()),
    ])
}

fn docs(s: &CommandSpec) -> Reply {
    let mut m = vec![
        (Reply::bulk("summary"), Reply::bulk(s.summary)),
        (Reply::bulk("since"), Reply::bulk(s.since)),
        (Reply::bulk("group"), Reply::bulk(s.group)),
    ];
    if !s.subcommands.is_empty() {
        m.push((
            Reply::bulk("subcommands"),
            Reply::Map(
                s.subcommands
                    .iter()
                    .map(|c| (Reply::bulk(c.name), docs(c)))
                    .collect(),
            ),
        ));
    }
    Reply::Map(m)
}

fn getkeys(cmd: &[&[u8]]) -> Result<Reply, CmdError> {
    let Some(id) = cmd.first().and_then(|n| CommandId::lookup(n)) else {
        return Err(CmdError::err("Invalid command specified"));
    };
    let mut spec = id.spec();
    if let Some(sub) = spec.sub(cmd) {
        spec = sub;
    }
    if !spec.arity_ok(cmd.len()) {
        return Err(CmdError::err(
            "Invalid number of arguments specified for command",
        ));
    }
    if !spec.keys.named() {
        return Err(CmdError::err("The command has no key arguments"));
    }
    let keys: Vec<Bytes> = spec
        .key_positions(cmd)
        .map(|p| Bytes::copy_from_slice(cmd[p]))
        .collect();
    if keys.is_empty() && spec.numkeys != 0 {
        // A key count that is not a positive integer within the arguments.
        return Err(CmdError::err("Invalid arguments specified for command"));
    }
    Ok(Reply::bulks(keys))
}
