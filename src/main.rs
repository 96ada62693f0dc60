//! The `terrace` binary: parses the command line and hands over to the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use terrace::config::{Config, LogFormat, Size};
use terrace::server::{self, ServerOptions};

/// Terrace: a Redis-protocol cache cluster (the Terracotta Server Array rebuilt in Rust).
#[derive(Parser)]
#[command(name = "terrace", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a server. Without -f: dev mode on the embedded config (127.0.0.1:6379).
    Server {
        /// The cluster config file (YAML).
        #[arg(short = 'f', long = "config", env = "TERRACE_CONFIG")]
        config: Option<PathBuf>,
        /// This server's name in the config (needed when it lists several servers).
        #[arg(short = 'n', long = "name", env = "TERRACE_NAME")]
        name: Option<String>,
        /// Listen on this port instead of the configured one (0 = any free port).
        #[arg(long)]
        port: Option<u16>,
        /// Listen on this address instead of the configured one.
        #[arg(long)]
        bind: Option<String>,
        /// Connection worker threads (default: one per core but one, at least one).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Heap tier budget instead of the configured `storage.heap` (e.g. 256m, 0).
        #[arg(long, value_parser = Size::parse)]
        heap: Option<Size>,
        /// Off-heap tier size instead of the configured `storage.offheap` (e.g. 4g; 0 = none).
        #[arg(long, value_parser = Size::parse)]
        offheap: Option<Size>,
        /// Start even if a fast-restart file is damaged: back the files up, keep every
        /// record before the damage, drop the rest.
        #[arg(long)]
        repair: bool,
        /// Log filter (error, warn, info, debug, trace, or tracing directives).
        #[arg(long = "log-level", env = "TERRACE_LOG")]
        log_level: Option<String>,
        /// Log lines as text or JSON (default: the config's `logging.format`).
        #[arg(long = "log-format", env = "TERRACE_LOG_FORMAT")]
        log_format: Option<LogFormat>,
        /// Serve Prometheus metrics on this port instead of the configured `metrics_port`.
        #[arg(long)]
        metrics_port: Option<u16>,
    },
    /// Print every server and voter of a cluster config with its role, state, epoch,
    /// replication lag and memory (exit 1 when one does not answer).
    Status {
        /// The cluster config file (YAML).
        #[arg(short = 'f', long = "config", env = "TERRACE_CONFIG")]
        config: PathBuf,
        /// How long to wait for each server, in milliseconds.
        #[arg(long, default_value_t = 1000)]
        timeout_ms: u64,
        /// Print JSON (an array of objects) instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Exit 0 when a server answers PING (a voter: its group-port handshake), 1 otherwise:
    /// for container health checks. Without a config: the dev server on 127.0.0.1:6379.
    Health {
        /// The cluster config file (YAML).
        #[arg(short = 'f', long = "config", env = "TERRACE_CONFIG")]
        config: Option<PathBuf>,
        /// The server or voter to check (needed when the config lists several).
        #[arg(short = 'n', long = "name", env = "TERRACE_NAME")]
        name: Option<String>,
        /// How long to wait for the answer, in milliseconds.
        #[arg(long, default_value_t = 2000)]
        timeout_ms: u64,
    },
    /// Safe cluster shutdown (the seeds' order): every mirror first, then the actives, so
    /// the actives hold everything and a restart brings them back first.
    Shutdown {
        /// The cluster config file (YAML).
        #[arg(short = 'f', long = "config", env = "TERRACE_CONFIG")]
        config: PathBuf,
        /// How long to wait for each server's answer, in milliseconds.
        #[arg(long, default_value_t = 2000)]
        timeout_ms: u64,
    },
    /// Planned switchover: a PASSIVE-STANDBY mirror of the stripe becomes its active and
    /// the old active its mirror, with no acknowledged write lost.
    Failover {
        /// The cluster config file (YAML).
        #[arg(short = 'f', long = "config", env = "TERRACE_CONFIG")]
        config: PathBuf,
        /// The stripe whose active hands over.
        #[arg(long)]
        stripe: String,
        /// The mirror to promote (default: the most caught-up PASSIVE-STANDBY one).
        #[arg(long)]
        to: Option<String>,
        /// How long the mirror may take to catch up, in milliseconds.
        #[arg(long, default_value_t = 10000)]
        timeout_ms: u64,
    },
    /// Stop a server. An active hands over to a PASSIVE-STANDBY mirror first; one without
    /// such a mirror is refused unless --force.
    Stop {
        /// The cluster config file (YAML).
        #[arg(short = 'f', long = "config", env = "TERRACE_CONFIG")]
        config: PathBuf,
        /// The server to stop.
        name: String,
        /// Stop it even if it is an active with no PASSIVE-STANDBY mirror.
        #[arg(long)]
        force: bool,
        /// How long to wait for the server, in milliseconds.
        #[arg(long, default_value_t = 2000)]
        timeout_ms: u64,
    },
    /// Run a voter: a control-plane member that holds no cache data (it keeps a majority
    /// for failover in stripes of two servers).
    Voter {
        /// The cluster config file (YAML).
        #[arg(short = 'f', long = "config", env = "TERRACE_CONFIG")]
        config: PathBuf,
        /// This voter's name in the config.
        #[arg(short = 'n', long = "name", env = "TERRACE_NAME")]
        name: String,
        /// Log filter (error, warn, info, debug, trace, or tracing directives).
        #[arg(long = "log-level", env = "TERRACE_LOG")]
        log_level: Option<String>,
        /// Log lines as text or JSON (default: the config's `logging.format`).
        #[arg(long = "log-format", env = "TERRACE_LOG_FORMAT")]
        log_format: Option<LogFormat>,
    },
    /// List the commands this build serves (one name a line), or with --markdown the
    /// README's table of them, from the one command table.
    Commands {
        /// Print the markdown tables (one per command group) instead of the names.
        #[arg(long)]
        markdown: bool,
        /// With --markdown: write the tables into this README between its
        /// `<!-- commands:begin ... -->` and `<!-- commands:end -->` lines instead of printing.
        #[arg(long, requires = "markdown")]
        readme: Option<PathBuf>,
    },
    /// Validate a config file: prints a summary, or every error with its field path.
    Check {
        /// The cluster config file (YAML).
        #[arg(short = 'f', long = "config", env = "TERRACE_CONFIG")]
        config: PathBuf,
        /// Also print the effective config with every default filled in.
        #[arg(long)]
        print_config: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Commands { markdown, readme } => commands(markdown, readme),
        Cmd::Status {
            config,
            timeout_ms,
            json,
        } => match load_for_cli(&config) {
            Ok(c) => {
                use std::io::IsTerminal;
                let list = terrace::admin::status::status(
                    &c,
                    std::time::Duration::from_millis(timeout_ms),
                );
                if json {
                    println!("{}", terrace::admin::status::render_json(&list));
                } else {
                    let colour =
                        std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
                    print!("{}", terrace::admin::status::render(&list, colour));
                }
                if list.iter().all(|s| s.is_up()) {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                }
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
        Cmd::Failover {
            config,
            stripe,
            to,
            timeout_ms,
        } => report(load_for_cli(&config).and_then(|c| {
            terrace::admin::ops::failover(
                &c,
                &stripe,
                to.as_deref(),
                std::time::Duration::from_millis(timeout_ms),
            )
        })),
        Cmd::Stop {
            config,
            name,
            force,
            timeout_ms,
        } => report(load_for_cli(&config).and_then(|c| {
            terrace::admin::ops::stop(
                &c,
                &name,
                force,
                std::time::Duration::from_millis(timeout_ms),
            )
        })),
        Cmd::Health {
            config,
            name,
            timeout_ms,
        } => {
            let cfg = match config.as_ref().map(|p| load_for_cli(p)).transpose() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            report(terrace::admin::health::check(
                cfg.as_ref(),
                name.as_deref(),
                std::time::Duration::from_millis(timeout_ms),
            ))
        }
        Cmd::Shutdown { config, timeout_ms } => report(load_for_cli(&config).and_then(|c| {
            terrace::admin::ops::shutdown(&c, std::time::Duration::from_millis(timeout_ms))
        })),
        Cmd::Voter {
            config,
            name,
            log_level,
            log_format,
        } => {
            let cfg = match Config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            init_logging(
                log_level.as_deref().unwrap_or(&cfg.logging.level),
                log_format.unwrap_or(cfg.logging.format),
            );
            run_async(Some(1), terrace::voter::run(cfg, &name))
        }
        Cmd::Check {
            config,
            print_config,
        } => match Config::load(&config) {
            Ok(c) => {
                println!("{}: OK", config.display());
                print!("{}", c.summary());
                if print_config {
                    print!("{}", c.to_yaml());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
        Cmd::Server {
            config,
            name,
            port,
            bind,
            threads,
            heap,
            offheap,
            repair,
            log_level,
            log_format,
            metrics_port,
        } => {
            let file = config.as_ref().map(|p| p.display().to_string());
            let loaded = match &config {
                Some(p) => Config::load(p),
                None => Ok(Config::dev()),
            };
            let cfg = match loaded.and_then(|mut c| {
                if heap.is_none() && offheap.is_none() && metrics_port.is_none() {
                    return Ok(c);
                }
                if let Some(mp) = metrics_port {
                    // The server this process runs (or the only one, in dev mode).
                    for s in c.cluster.stripes.iter_mut().flat_map(|s| &mut s.servers) {
                        if name.as_deref().is_none_or(|n| n == s.name) {
                            s.metrics_port = Some(mp);
                        }
                    }
                }
                c.storage.heap = heap.unwrap_or(c.storage.heap);
                if let Some(o) = offheap {
                    c.storage.offheap = o;
                    for s in c.cluster.stripes.iter_mut().flat_map(|s| &mut s.servers) {
                        s.offheap = None;
                    }
                }
                c.validate(file.as_deref().unwrap_or("<embedded dev config>"))
            }) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            init_logging(
                log_level.as_deref().unwrap_or(&cfg.logging.level),
                log_format.unwrap_or(cfg.logging.format),
            );
            let placement = match cfg.placement(
                name.as_deref(),
                file.as_deref().unwrap_or("<embedded dev config>"),
            ) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            let opts = ServerOptions {
                config: cfg,
                placement,
                config_file: file,
                bind,
                port,
                threads,
                repair,
            };
            run_async(None, server::run(opts))
        }
    }
}

/// Loads a config for an operator command, and this process's TLS context from its
/// `tls:` section (the CLI speaks TLS to the ports that do, with the server's certificate).
fn load_for_cli(path: &std::path::Path) -> Result<Config, String> {
    let c = Config::load(path).map_err(|e| e.to_string())?;
    terrace::tls::install(&c.tls)?;
    Ok(c)
}

/// Runs `main` on a multi-threaded tokio runtime (`workers` threads, default one per
/// core) and turns its outcome into the exit code.
fn run_async<E: std::fmt::Display>(
    workers: Option<usize>,
    main: impl std::future::Future<Output = Result<(), E>>,
) -> ExitCode {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = workers {
        b.worker_threads(n);
    }
    let rt = match b.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(main);
    // The run has already waited as long as shutdown may take; do not let dropping the
    // runtime wait again for a worker join that timed out.
    rt.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints an operation's outcome: exit 0 when it was done, 1 when refused or failed.
fn report(r: Result<String, String>) -> ExitCode {
    match r {
        Ok(msg) => {
            println!("{msg}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

/// Logs to stderr, as text or one JSON object per line; RUST_LOG wins over the config and
/// --log-level.
fn init_logging(level: &str, format: LogFormat) {
    // openraft narrates every election at info: keep it to warnings unless asked.
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| {
        if level.contains("openraft") {
            level.to_string()
        } else {
            format!("{level},openraft=warn")
        }
    });
    let filter = tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|_| {
        eprintln!("invalid log filter '{filter}', using 'info'");
        tracing_subscriber::EnvFilter::new("info")
    });
    // Colours only for a terminal (and never with NO_COLOR): log files stay plain text.
    let ansi = {
        use std::io::IsTerminal;
        std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
    };
    // A log line that cannot be written (stderr closed) is dropped: reporting it would
    // panic the task that logged, which may be the one handling SIGTERM.
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .log_internal_errors(false)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => fmt.init(),
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
    }
}

/// `terrace commands`: the names, the markdown, or the README rewritten.
fn commands(markdown: bool, readme: Option<PathBuf>) -> ExitCode {
    use terrace::command::{SPECS, docs};
    if !markdown {
        for s in SPECS {
            println!("{}", s.name);
        }
        return ExitCode::SUCCESS;
    }
    let table = docs::markdown();
    let Some(path) = readme else {
        print!("{table}");
        return ExitCode::SUCCESS;
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("terrace commands: cannot read {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    };
    let Some(new) = docs::splice(&text, &table) else {
        eprintln!(
            "terrace commands: {} has no `{}` ... `{}` lines",
            path.display(),
            docs::BEGIN,
            docs::END
        );
        return ExitCode::FAILURE;
    };
    if new != text
        && let Err(e) = std::fs::write(&path, new)
    {
        eprintln!("terrace commands: cannot write {}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
