//! The crate-wide error: each module's error type, wrapped.

use crate::config::ConfigError;
use crate::server::ServerError;

/// Any error a Terrace entry point can return.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A config file problem.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The server could not run.
    #[error(transparent)]
    Server(#[from] ServerError),
}

/// `Result` with the crate [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
