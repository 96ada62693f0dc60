//! ACL: SETUSER, GETUSER, DELUSER, LIST, USERS, WHOAMI, CAT, GENPASS, DRYRUN, HELP.
//! The users live in [`crate::acl::Acl`]; these commands read and change them.

use std::io::Read;

use super::ctx::ExecCtx;
use super::{CmdError, CommandId, CommandSpec, Exec, Flags};
use crate::acl::category;
use crate::protocol::{Args, Reply};

const ADMIN: Flags = Flags::ADMIN
    .with(Flags::NOSCRIPT)
    .with(Flags::LOADING)
    .with(Flags::STALE);
const PLAIN: Flags = Flags::NOSCRIPT.with(Flags::LOADING).with(Flags::STALE);

/// ACL's subcommands.
pub const SUBS: &[CommandSpec] = &[
    CommandSpec::new(
        "acl|setuser",
        -3,
        "server",
        "6.0.0",
        "Creates and modifies an ACL user and its rules.",
    )
    .flags(ADMIN),
    CommandSpec::new(
        "acl|getuser",
        3,
        "server",
        "6.0.0",
        "Lists the ACL rules of a user.",
    )
    .flags(ADMIN),
    CommandSpec::new(
        "acl|deluser",
        -3,
        "server",
        "6.0.0",
        "Deletes ACL users, and terminates their connections.",
    )
    .flags(ADMIN),
    CommandSpec::new(
        "acl|list",
        2,
        "server",
        "6.0.0",
        "Dumps the effective rules in ACL file format.",
    )
    .flags(ADMIN),
    CommandSpec::new("acl|users", 2, "server", "6.0.0", "Lists all ACL users.").flags(ADMIN),
    CommandSpec::new(
        "acl|whoami",
        2,
        "server",
        "6.0.0",
        "Returns the authenticated username of the current connection.",
    )
    .flags(PLAIN),
    CommandSpec::new(
        "acl|cat",
        -2,
        "server",
        "6.0.0",
        "Lists the ACL categories, or the commands inside a category.",
    )
    .flags(PLAIN),
    CommandSpec::new(
        "acl|genpass",
        -2,
        "server",
        "6.0.0",
        "Generates a pseudorandom, secure password that can be used to identify ACL users.",
    )
    .flags(PLAIN),
    CommandSpec::new(
        "acl|log",
        -2,
        "server",
        "6.0.0",
        "Lists recent security events generated due to commands rejected by ACL rules.",
    )
    .flags(ADMIN),
    CommandSpec::new(
        "acl|dryrun",
        -4,
        "server",
        "7.0.0",
        "Simulates the execution of a command by a user, without executing the command.",
    )
    .flags(ADMIN),
    CommandSpec::new(
        "acl|help",
        2,
        "server",
        "6.0.0",
        "Returns helpful text about the different subcommands.",
    )
    .flags(PLAIN),
];

/// A parsed ACL call.
#[derive(Debug)]
pub enum AclCmd<'a> {
    /// ACL SETUSER name rule...
    SetUser(&'a [u8], Vec<&'a [u8]>),
    /// ACL GETUSER name
    GetUser(&'a [u8]),
    /// ACL DELUSER name...
    DelUser(Vec<&'a [u8]>),
    /// ACL LIST
    List,
    /// ACL USERS
    Users,
    /// ACL WHOAMI
    WhoAmI,
    /// ACL CAT [category]
    Cat(Option<&'a [u8]>),
    /// ACL GENPASS [bits]
    GenPass(u32),
    /// ACL DRYRUN user command arg...
    DryRun(&'a [u8], Vec<&'a [u8]>),
    /// ACL LOG [count]
    Log(usize),
    /// ACL LOG RESET
    LogReset,
    /// ACL HELP
    Help,
}

impl<'a> Exec<'a> for AclCmd<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let sub = args.bytes()?;
        let upper = String::from_utf8_lossy(sub).to_ascii_uppercase();
        let wrong = || {
            CmdError::err(format!(
                "unknown subcommand or wrong number of arguments for '{}'. Try ACL HELP.",
                super::lossy(sub, 128)
            ))
        };
        Ok(match upper.as_str() {
            "SETUSER" => AclCmd::SetUser(args.bytes()?, args.rest()),
            "GETUSER" => AclCmd::GetUser(args.bytes()?),
            "DELUSER" => AclCmd::DelUser(args.rest()),
            "LIST" => AclCmd::List,
            "USERS" => AclCmd::Users,
            "WHOAMI" => AclCmd::WhoAmI,
            "CAT" if args.remaining() <= 1 => AclCmd::Cat(args.next_opt()),
            "GENPASS" if args.remaining() <= 1 => {
                let bits = match args.next_opt() {
                    None => 256,
                    Some(b) => crate::protocol::args::parse_i64(b)?,
                };
                if !(1..=4096).contains(&bits) {
                    return Err(CmdError::err(
                        "ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096",
                    ));
                }
                AclCmd::GenPass(bits as u32)
            }
            "DRYRUN" => AclCmd::DryRun(args.bytes()?, args.rest()),
            "LOG" if args.remaining() <= 1 => match args.next_opt() {
                None => AclCmd::Log(10),
                Some(a) if a.eq_ignore_ascii_case(b"reset") => AclCmd::LogReset,
                Some(a) => {
                    let n = crate::protocol::args::parse_i64(a)
                        .ok()
                        .and_then(|n| usize::try_from(n).ok())
                        .ok_or_else(|| CmdError::err("value is out of range, must be positive"))?;
                    AclCmd::Log(n)
                }
            },
            "HELP" => AclCmd::Help,
            "CAT" | "GENPASS" | "LOG" => return Err(wrong()),
            _ => {
                return Err(CmdError::UnknownSubcommand {
                    cmd: "ACL",
                    sub: super::lossy(sub, 128),
                });
            }
        })
    }

    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let acl = &ctx.server.acl;
        Ok(match self {
            AclCmd::SetUser(name, rules) => {
                let name = std::str::from_utf8(name).map_err(|_| {
                    CmdError::err("Usernames can't contain spaces or null characters")
                })?;
                acl.set_user(name, &rules)?;
                if let Some(u) = acl.get(name) {
                    ctx.server.pubsub.disconnect_denied(&u);
                }
                Reply::Ok
            }
            AclCmd::GetUser(name) => {
                let Some(u) = std::str::from_utf8(name).ok().and_then(|n| acl.get(n)) else {
                    return Ok(Reply::Nil);
                };
                let s = |v: &str| Reply::bulk(v);
                Reply::Map(vec![
                    (
                        s("flags"),
                        Reply::Array(u.flags().into_iter().map(s).collect()),
                    ),
                    (
                        s("passwords"),
                        Reply::Array(u.password_hashes().iter().map(|h| s(h)).collect()),
                    ),
                    (s("commands"), s(&u.describe_commands())),
                    (s("keys"), s(&u.describe_keys())),
                    (s("channels"), s(&u.describe_channels())),
                    (s("selectors"), Reply::Array(Vec::new())),
                ])
            }
            AclCmd::DelUser(names) => {
                let names: Vec<&str> = names
                    .iter()
                    .filter_map(|n| std::str::from_utf8(n).ok())
                    .collect();
                let n = acl.del_users(&names)?;
                // Their connections end (this one too, after its reply).
                for h in ctx.server.clients.all() {
                    let user = h.meta.lock().user.clone();
                    if names.contains(&user.as_str()) {
                        h.kill();
                    }
                }
                Reply::Int(n as i64)
            }
            AclCmd::List => Reply::Array(
                acl.all()
                    .iter()
                    .map(|u| Reply::bulk(u.describe()))
                    .collect(),
            ),
            AclCmd::Users => Reply::Array(acl.all().iter().map(|u| Reply::bulk(&u.name)).collect()),
            AclCmd::WhoAmI => Reply::bulk(&ctx.client.user.name),
            AclCmd::Cat(None) => {
                Reply::Array(category::ALL.iter().map(|(n, _)| Reply::bulk(n)).collect())
            }
            AclCmd::Cat(Some(c)) => {
                let name = String::from_utf8_lossy(c);
                let set = category::by_name(&name)
                    .filter(|s| *s != category::Categories::MAX)
                    .ok_or_else(|| CmdError::err(format!("Unknown category '{name}'")))?;
                Reply::Array(
                    category::commands_in(set)
                        .into_iter()
                        .map(Reply::bulk)
                        .collect(),
                )
            }
            AclCmd::GenPass(bits) => {
                let mut bytes = vec![0u8; bits.div_ceil(8) as usize];
                std::fs::File::open("/dev/urandom")
                    .and_then(|mut f| f.read_exact(&mut bytes))
                    .map_err(|e| CmdError::err(format!("cannot read random bytes: {e}")))?;
                let mut hex = crate::acl::user::hex(&bytes);
                hex.truncate(bits.div_ceil(4) as usize);
                Reply::bulk(hex)
            }
            AclCmd::DryRun(name, args) => {
                let name = String::from_utf8_lossy(name);
                let u = acl
                    .get(&name)
                    .ok_or_else(|| CmdError::err(format!("User '{name}' not found")))?;
                if args.first().and_then(|n| CommandId::lookup(n)).is_none() {
                    let cmd = args.first().map_or(String::new(), |n| super::lossy(n, 128));
                    return Err(CmdError::err(format!("Command '{cmd}' not found")));
                }
                // Arity and the subcommand as a request is checked.
                let (id, spec) = super::resolve(&args)?;
                match crate::acl::check(&u, id, spec, &args) {
                    Ok(()) => Reply::Ok,
                    Err(d) => {
                        let arg = match d {
                            crate::acl::Denied::Key(p) | crate::acl::Denied::Channel(p) => {
                                args.get(p).copied()
                            }
                            crate::acl::Denied::Command => None,
                        };
                        Reply::bulk(d.message(&u, spec, arg))
                    }
                }
            }
            AclCmd::Log(n) => acl.log.reply(n, crate::store::now_ms()),
            AclCmd::LogReset => {
                acl.log.reset();
                Reply::Ok
            }
            AclCmd::Help => super::keys::help(
                "ACL",
                &[
                    "CAT [<category>]",
                    "    List all commands that belong to <category>, or all command categories",
                    "    when no category is specified.",
                    "DELUSER <username> [<username> ...]",
                    "    Delete a list of users.",
                    "DRYRUN <username> <command> [<arg> ...]",
                    "    Returns whether the user can execute the given command without executing the command.",
                    "GETUSER <username>",
                    "    Get the user's details.",
                    "GENPASS [<bits>]",
                    "    Generate a secure 256-bit user password. The optional `bits` argument can",
                    "    be used to specify a different size.",
                    "LIST",
                    "    Show users details in config file format.",
                    "LOG [<count> | RESET]",
                    "    Show the ACL log entries.",
                    "SETUSER <username> <attribute> [<attribute> ...]",
                    "    Create or modify a user with the specified attributes.",
                    "USERS",
                    "    List all the registered usernames.",
                    "WHOAMI",
                    "    Return the current connection username.",
                ],
            ),
        })
    }
}
